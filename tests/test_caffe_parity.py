"""The torch Caffe engine against real BVLC Caffe (pycaffe, built by `make caffe`).

* our generated caffe_pb2 (vendored caffe.proto) has pycaffe's field numbers and wire types;
* tiny nets with the tricky cases (ceil pooling with padding, AVE divisors, LRN both regions,
  grouped / dilated convolution, in-place layers) give the same blobs;
* caffemodels written by us load in Caffe and caffemodels saved by Caffe load in ours;
* a random-weight CaffeNet and the decoded real SqueezeNet agree through both classifiers:
  softmax max abs diff <= 1e-5, feature relative diff <= 1e-4.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch

from stl.models import FEATURE, LOGITS, PROB
from stl.models.caffe import io as cp
from stl.models.caffe.classifier import TorchCaffeClassifier
from stl.models.caffe.net import CaffeNetModule

pytestmark = pytest.mark.caffe

PROB_ATOL = 1e-5
FEATURE_RTOL = 1e-4


def rel_diff(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def pycaffe_classifier(prototxt, caffemodel, **kw):
    # our own module: an ImportError here is a bug, never a skip (only pycaffe itself may be missing,
    # and the require_pycaffe fixture turns that into a failure under STL_REQUIRE_ALL=1)
    from stl.models.caffe.pycaffe_engine import PyCaffeClassifier

    return PyCaffeClassifier(str(prototxt), str(caffemodel), device="cpu", **kw)


# ---------------------------------------------------------------------------
# proto field numbers
# ---------------------------------------------------------------------------
_WIRE = {  # FieldDescriptor type -> wire class (varint types are interchangeable on the wire)
    1: "fixed64", 2: "fixed32", 3: "varint", 4: "varint", 5: "varint", 8: "varint", 13: "varint", 14: "varint",
    9: "len", 11: "len", 12: "len",
}
# BVLC's PoolingParameter.round_mode (enum, 13) is a bool ceil_mode (13) in the brocolli-caffe fork.
_FORK_DIFFERENCES = {("PoolingParameter", "round_mode")}


def test_proto_field_numbers_match_caffe(require_pycaffe):
    from caffe.proto import caffe_pb2

    from stl.models.caffe import caffe_pb2 as ours

    checked = 0
    for name, cls in ours.DESCRIPTOR.message_types_by_name.items():
        cls = getattr(ours, name)
        theirs = getattr(caffe_pb2, name, None)
        if theirs is None:
            continue
        tf = theirs.DESCRIPTOR.fields_by_name
        for f in cls.DESCRIPTOR.fields:
            if (name, f.name) in _FORK_DIFFERENCES and f.name not in tf:
                continue
            assert f.name in tf, f"{name}.{f.name} not in caffe.proto"
            g = tf[f.name]
            assert f.number == g.number, f"{name}.{f.name}: number {f.number} != Caffe's {g.number}"
            assert _WIRE[f.type] == _WIRE[g.type], f"{name}.{f.name}: wire type differs"
            assert f.is_repeated == g.is_repeated, f"{name}.{f.name}: repeated or not"
            if f.type in (f.TYPE_MESSAGE, f.TYPE_ENUM):
                ours_t = (f.message_type or f.enum_type).name
                theirs_t = (g.message_type or g.enum_type).name
                assert ours_t == theirs_t, f"{name}.{f.name}: type {ours_t} != {theirs_t}"
            if f.type == f.TYPE_ENUM:
                for v in f.enum_type.values:
                    assert g.enum_type.values_by_name[v.name].number == v.number, f"{name}.{f.name}.{v.name}"
            if f.has_default_value and f.type != f.TYPE_MESSAGE:
                assert f.default_value == pytest.approx(g.default_value), f"{name}.{f.name}: default"
            checked += 1
    assert checked > 500


# ---------------------------------------------------------------------------
# tiny nets, blob by blob
# ---------------------------------------------------------------------------
TRICKY = """
name: "tricky"
input: "data" input_dim: 2 input_dim: 6 input_dim: 13 input_dim: 11
layer { name: "conv_g" type: "Convolution" bottom: "data" top: "conv_g"
        convolution_param { num_output: 8 kernel_size: 3 pad: 2 stride: 2 group: 2 dilation: 2 } }
layer { name: "relu_g" type: "ReLU" bottom: "conv_g" top: "conv_g" relu_param { negative_slope: 0.2 } }
layer { name: "pool_max_pad" type: "Pooling" bottom: "data" top: "pool_max_pad" pooling_param { pool: MAX kernel_size: 2 stride: 2 pad: 1 } }
layer { name: "pool_ave_pad" type: "Pooling" bottom: "data" top: "pool_ave_pad" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool_ave_rect" type: "Pooling" bottom: "data" top: "pool_ave_rect"
        pooling_param { pool: AVE kernel_h: 4 kernel_w: 2 stride_h: 3 stride_w: 2 pad_h: 2 pad_w: 1 } }
layer { name: "pool_max_ceil" type: "Pooling" bottom: "conv_g" top: "pool_max_ceil" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "pool_global" type: "Pooling" bottom: "conv_g" top: "pool_global" pooling_param { pool: AVE global_pooling: true } }
layer { name: "lrn_across" type: "LRN" bottom: "conv_g" top: "lrn_across" lrn_param { local_size: 5 alpha: 0.01 beta: 0.75 k: 2 } }
layer { name: "lrn_within" type: "LRN" bottom: "data" top: "lrn_within"
        lrn_param { local_size: 3 alpha: 0.1 beta: 0.75 norm_region: WITHIN_CHANNEL } }
layer { name: "cat" type: "Concat" bottom: "lrn_across" bottom: "conv_g" top: "cat" }
layer { name: "ip" type: "InnerProduct" bottom: "cat" top: "ip" inner_product_param { num_output: 10 } }
layer { name: "ipt" type: "InnerProduct" bottom: "pool_max_pad" top: "ipt" inner_product_param { num_output: 7 transpose: true } }
layer { name: "relu_ip" type: "ReLU" bottom: "ip" top: "ip" }
layer { name: "drop_ip" type: "Dropout" bottom: "ip" top: "ip" }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
"""


def test_tricky_layers_match_pycaffe(require_pycaffe, tmp_path, rng):
    caffe = require_pycaffe
    proto = tmp_path / "tricky.prototxt"
    proto.write_text(TRICKY)
    shapes = CaffeNetModule(proto).param_shapes()
    weights = {k: [rng.standard_normal(s).astype(np.float32) * 0.3 for s in v] for k, v in shapes.items()}
    model = cp.write_caffemodel(tmp_path / "tricky.caffemodel", proto, weights)
    caffe.set_mode_cpu()
    net = caffe.Net(str(proto), str(model), caffe.TEST)
    x = (rng.standard_normal((2, 6, 13, 11)) * 10).astype(np.float32)
    net.blobs["data"].data[...] = x
    net.forward()
    ours = CaffeNetModule(proto, model)
    names = [b for b in net.blobs if b != "data" and "_split_" not in b]  # Caffe adds Split blobs
    with torch.no_grad():
        out = ours(torch.from_numpy(x), names)
    for b in names:
        theirs = net.blobs[b].data
        mine = out[b].numpy()
        assert mine.shape == theirs.shape, b
        assert ours.blob_shapes[b][1:] == theirs.shape[1:], b
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(theirs).max()), err_msg=b)


def test_caffemodel_interchange(require_pycaffe, tmp_path, rng):
    """Ours -> Caffe -> net.save -> ours, and Caffe reads our legacy-free files bit-exactly."""
    caffe = require_pycaffe
    proto = tmp_path / "tricky.prototxt"
    proto.write_text(TRICKY)
    shapes = CaffeNetModule(proto).param_shapes()
    weights = {k: [rng.standard_normal(s).astype(np.float32) for s in v] for k, v in shapes.items()}
    model = cp.write_caffemodel(tmp_path / "ours.caffemodel", proto, weights)
    net = caffe.Net(str(proto), str(model), caffe.TEST)
    for k, blobs in weights.items():
        for i, a in enumerate(blobs):
            np.testing.assert_array_equal(net.params[k][i].data, a)
    saved = tmp_path / "saved_by_caffe.caffemodel"
    net.save(str(saved))
    back = cp.load_weights(saved)
    assert set(back) == set(weights)
    for k, blobs in weights.items():
        for a, b in zip(blobs, back[k]):
            np.testing.assert_array_equal(b, a)


# ---------------------------------------------------------------------------
# full classifiers
# ---------------------------------------------------------------------------
def load_images(shared_dir, n):
    from PIL import Image

    d = shared_dir / "data" / "ilsvrc2012-val-227"
    names = [l.split(",")[0] for l in (d / "metadata" / "class_labels.txt").read_text().split()][:n]
    return np.stack([np.asarray(Image.open(d / name).convert("RGB")) for name in names])


def compare(torch_clf, caffe_clf, images):
    a = torch_clf(images, outputs=(PROB, LOGITS, FEATURE), batch_size=8)
    b = caffe_clf(images, outputs=(PROB, LOGITS, FEATURE), batch_size=8)
    prob = float(np.abs(a[PROB] - b[PROB]).max())
    feat = rel_diff(a[FEATURE], b[FEATURE])
    logits = rel_diff(a[LOGITS], b[LOGITS])
    return prob, feat, logits, a, b


def test_random_caffenet_parity(require_pycaffe, shared_dir, rng):
    from stl.models.caffe import model_files as caffe_models

    prototxt, model = caffe_models.caffenet_random_paths()
    mean = caffe_models.default_mean()
    images = load_images(shared_dir, 8)
    t = TorchCaffeClassifier(prototxt, model, mean=mean)
    c = pycaffe_classifier(prototxt, model, mean=mean)
    assert t.feature_name == c.feature_name == "fc7"
    np.testing.assert_array_equal(t.mask_color, c.mask_color)
    prob, feat, logits, a, b = compare(t, c, images)
    print(f"random CaffeNet: prob max abs diff {prob:.2e}, fc7 rel diff {feat:.2e}, fc8 rel diff {logits:.2e}")
    assert prob <= PROB_ATOL and feat <= FEATURE_RTOL and logits <= FEATURE_RTOL
    assert (a[PROB].argmax(1) == b[PROB].argmax(1)).all()


def test_squeezenet_parity(require_pycaffe, shared_dir, monkeypatch):
    from stl.models import build_classifier

    monkeypatch.setenv("STL_SHARED", str(shared_dir))
    images = load_images(shared_dir, 16)
    t = build_classifier("squeezenet", engine="torch")
    c = build_classifier("squeezenet", engine="caffe")
    assert t.logits_blob == c.logits_blob == "pool_final"
    assert t.feature_blob == c.feature_blob == "fire9/concat"
    prob, feat, logits, a, b = compare(t, c, images)
    print(f"SqueezeNet: prob max abs diff {prob:.2e}, feature rel diff {feat:.2e}, logits rel diff {logits:.2e}")
    assert prob <= PROB_ATOL and feat <= FEATURE_RTOL and logits <= FEATURE_RTOL
    assert (a[PROB].argmax(1) == b[PROB].argmax(1)).all()
