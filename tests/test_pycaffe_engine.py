"""The pycaffe engine (real BVLC Caffe built by `make caffe`).

Skips where pycaffe is not importable; fails instead under STL_REQUIRE_ALL=1 (CI).
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import missing, shared_path
from stl import resources
from stl.models.base import FEATURE, LOGITS, PROB, ModelError, softmax

pytestmark = pytest.mark.caffe

TINY_NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 12 dim: 12 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc1" type: "InnerProduct" bottom: "conv1" top: "fc1" inner_product_param { num_output: 6 } }
layer { name: "relu2" type: "ReLU" bottom: "fc1" top: "fc1" }
layer { name: "fc2" type: "InnerProduct" bottom: "fc1" top: "fc2" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc2" top: "prob" }
"""


@pytest.fixture(scope="module")
def caffe(require_pycaffe):
    """pycaffe, or skip (fail under STL_REQUIRE_ALL=1) -- see conftest.require_pycaffe."""
    return require_pycaffe


def _randomize(net, seed=0):
    rng = np.random.default_rng(seed)
    for blobs in net.params.values():
        w = blobs[0].data
        w[...] = rng.standard_normal(w.shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / np.prod(w.shape[1:])))
        if len(blobs) > 1:
            blobs[1].data[...] = rng.uniform(-0.1, 0.1, blobs[1].data.shape).astype(np.float32)
    first = next(iter(net.params.values()))[0].data
    first *= np.float32(0.01)  # inputs are 0..255 minus the mean: keep the logits moderate (not one-hot)


def _saved_random_net(caffe, prototxt, path, seed=0):
    net = caffe.Net(str(prototxt), caffe.TEST)
    _randomize(net, seed)
    net.save(str(path))
    return path


@pytest.fixture(scope="module")
def tiny(caffe, tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    prototxt = d / "deploy.prototxt"
    prototxt.write_text(TINY_NET)
    return prototxt, _saved_random_net(caffe, prototxt, d / "tiny.caffemodel")


@pytest.fixture(scope="module")
def caffenet(caffe, tmp_path_factory):
    """CaffeNet's deploy prototxt with random weights saved by pycaffe (net.save)."""
    for p in (resources.deploy_prototxt("bvlc_reference_caffenet"),
              shared_path() / "models" / "caffe" / "bvlc_reference_caffenet" / "deploy.prototxt"):
        if p.is_file():
            prototxt = p
            break
    else:
        missing("CaffeNet deploy.prototxt not found (models/ or $STL_SHARED/models/caffe)")
    path = _saved_random_net(caffe, prototxt, tmp_path_factory.mktemp("caffenet") / "random.caffemodel")
    return prototxt, path


def _images(n, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.float32)


def test_caffenet_matches_manual_pycaffe(caffe, caffenet):
    from stl.models.caffe.pycaffe_engine import PyCaffeClassifier
    from stl.models.preprocessing import ILSVRC_MEAN_BGR

    prototxt, weights = caffenet
    clf = PyCaffeClassifier(prototxt, weights)
    assert clf.input_size == (227, 227)
    assert (clf.prob_blob, clf.logits_blob, clf.feature_blob) == ("prob", "fc8", "fc7")
    assert len(clf.classes) == 1000 and clf.missing_weights == []
    np.testing.assert_allclose(clf.mask_color, ILSVRC_MEAN_BGR[::-1], rtol=1e-6)

    images = _images(3, 227)
    out = clf(images, outputs=(PROB, LOGITS, FEATURE))
    assert out[PROB].shape == (3, 1000) and out[LOGITS].shape == (3, 1000) and out[FEATURE].shape == (3, 4096)
    assert all(v.dtype == np.float32 for v in out.values())
    np.testing.assert_allclose(out[PROB].sum(axis=1), 1.0, atol=1e-5)

    # manual pycaffe forward with hand-written Caffe preprocessing
    net = caffe.Net(str(prototxt), str(weights), caffe.TEST)
    x = images[..., ::-1].transpose(0, 3, 1, 2) - ILSVRC_MEAN_BGR[None, :, None, None]
    net.blobs["data"].reshape(*x.shape)
    net.reshape()
    net.blobs["data"].data[...] = x
    ref = net.forward()["prob"].copy()
    np.testing.assert_allclose(out[PROB], ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out[LOGITS], net.blobs["fc8"].data, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[FEATURE], net.blobs["fc7"].data, rtol=1e-5, atol=1e-5)
    assert out[FEATURE].min() >= 0.0  # fc7 after relu7 (in place)
    np.testing.assert_allclose(out[PROB], softmax(out[LOGITS].astype(np.float64)), rtol=1e-4, atol=1e-7)
    assert out[PROB].max() < 0.99  # the random net is not saturated: the comparison means something

    # a FEATURE-only forward (stops at drop7) gives the same fc7; batch size changes reshape the net
    feat = clf(images[:2], outputs=(FEATURE,))[FEATURE]
    np.testing.assert_allclose(feat, out[FEATURE][:2], rtol=1e-5, atol=1e-5)


def test_tiny_net_options(tiny):
    from stl.models.caffe.pycaffe_engine import PyCaffeClassifier

    prototxt, weights = tiny
    images = _images(4, 12, seed=1)
    clf = PyCaffeClassifier(prototxt, weights, mean=np.array([10.0, 20.0, 30.0]))
    assert clf.feature_blob == "fc1" and len(clf.classes) == 5 and clf.mean_mode == "channel"
    out = clf(images, outputs=(PROB, LOGITS, FEATURE), batch_size=3)
    np.testing.assert_allclose(out[PROB].sum(1), 1.0, atol=1e-5)
    raw = clf.blobs(images, ["fc2", "conv1"])
    np.testing.assert_allclose(out[LOGITS], raw["fc2"], rtol=1e-6)
    assert raw["conv1"].shape == (4, 4, 5, 5)
    # explicit layers; a 4-D feature blob is flattened or globally averaged
    clf2 = PyCaffeClassifier(prototxt, weights, mean=np.array([10.0, 20.0, 30.0]), feature_layer="conv1",
                             feature_pool="avg")
    f = clf2(images, outputs=(FEATURE,))[FEATURE]
    np.testing.assert_allclose(f, raw["conv1"].mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelError, match="no blob named"):
        PyCaffeClassifier(prototxt, weights, feature_layer="nope")
    with pytest.raises(ValueError, match="device"):
        PyCaffeClassifier(prototxt, weights, device="tpu")


def test_missing_model_file(tiny, tmp_path):
    from stl.models.caffe.pycaffe_engine import PyCaffeClassifier

    prototxt, weights = tiny
    with pytest.raises(ModelError, match="caffemodel not found"):
        PyCaffeClassifier(prototxt, tmp_path / "nope.caffemodel")
    with pytest.raises(ModelError, match="prototxt not found"):
        PyCaffeClassifier(tmp_path / "nope.prototxt", weights)


def test_corrupt_model_file(tiny, tmp_path):
    from stl.models.caffe.pycaffe_engine import PyCaffeClassifier

    prototxt, weights = tiny
    bad = tmp_path / "random.caffemodel"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match="corrupt caffemodel"):
        PyCaffeClassifier(prototxt, bad)
    truncated = tmp_path / "truncated.caffemodel"
    truncated.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelError, match="corrupt caffemodel"):
        PyCaffeClassifier(prototxt, truncated)
    bad_txt = tmp_path / "bad.prototxt"
    bad_txt.write_text("layer { name: 'data' type: 'Input' top: 'data' ")
    with pytest.raises(ModelError, match="cannot parse prototxt"):
        PyCaffeClassifier(bad_txt, weights)


def test_weights_of_another_net(caffe, tiny, tmp_path):
    """Shape mismatches and unknown layer types are ModelErrors, not Caffe aborts."""
    from stl.models.caffe.pycaffe_engine import PyCaffeClassifier

    prototxt, weights = tiny
    other = tmp_path / "other.prototxt"
    other.write_text(TINY_NET.replace("num_output: 6", "num_output: 7"))
    with pytest.raises(ModelError, match="layer 'fc1' blob 0 has shape"):
        PyCaffeClassifier(other, weights)
    unknown = tmp_path / "unknown.prototxt"
    unknown.write_text(TINY_NET.replace('type: "ReLU"', 'type: "NoSuchLayer"'))
    with pytest.raises(ModelError, match="NoSuchLayer"):
        PyCaffeClassifier(unknown, weights)


def test_missing_pycaffe_message(monkeypatch, tmp_path):
    from stl.models.caffe import pycaffe_engine

    monkeypatch.setitem(sys.modules, "caffe", None)  # makes `import caffe` raise ImportError
    with pytest.raises(ModelError, match="make caffe"):
        pycaffe_engine.PyCaffeClassifier(tmp_path / "a.prototxt", tmp_path / "b.caffemodel")


def test_cuda_on_cpu_only_build(tiny):
    from stl.models.caffe.pycaffe_engine import PyCaffeClassifier, _probe_gpu

    if _probe_gpu(0) is None:
        pytest.skip("this pycaffe runs on a GPU")
    with pytest.raises(ModelError, match="GPU"):
        PyCaffeClassifier(*tiny, device="cuda")
