"""stl.models.caffe: generated caffe_pb2 + model-file I/O without pycaffe (prototxt parsing, caffemodel read/write, errors)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import load_script
from stl import resources
from stl.models import ModelError
from stl.models.caffe import io as cp
from stl.models.preprocessing import load_mean

REPO = Path(__file__).resolve().parents[1]

TINY = """
name: "tiny"
input: "data"
input_dim: 2
input_dim: 3
input_dim: 8
input_dim: 8
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 group: 1
                      weight_filler { type: "xavier" } some_future_option: 3 }
}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "train_only" type: "Dropout" bottom: "conv1" top: "conv1" include { phase: TRAIN } }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def load_fetch_models():
    return load_script("models/fetch_models.py")


def test_parse_prototxt_legacy_inputs_unknown_fields_and_phase(tmp_path):
    p = tmp_path / "tiny.prototxt"
    p.write_text(TINY)
    net = cp.load_net(p)
    assert net.name == "tiny"
    assert [l.name for l in net.layer] == ["conv1", "relu1", "fc", "prob"]  # TRAIN-only layer dropped
    assert cp.input_shapes(net) == {"data": (2, 3, 8, 8)}
    conv = net.layer[0].convolution_param
    assert conv.num_output == 4 and list(conv.kernel_size) == [3] and list(conv.pad) == [1]
    assert conv.bias_term and conv.group == 1  # proto2 defaults
    assert net.layer[2].inner_product_param.axis == 1
    lrn = cp.LRNParameter()
    assert (lrn.local_size, lrn.alpha, lrn.beta, lrn.k) == (5, 1.0, 0.75, 1.0)
    pool = cp.PoolingParameter()
    assert pool.pool == 0 and pool.stride == 1 and pool.round_mode == 0


def test_input_layer_and_input_shape(tmp_path):
    net = cp.parse_net_text('input: "a" input_shape { dim: 1 dim: 3 dim: 5 dim: 7 }\n'
                            'layer { name: "in" type: "Input" top: "b" input_param { shape { dim: 2 dim: 4 } } }')
    assert cp.input_shapes(net) == {"a": (1, 3, 5, 7), "b": (2, 4)}


def test_v1_layers_are_upgraded():
    net = cp.load_net(cp.parse_net_text("""
        name: "old" input: "data" input_dim: 1 input_dim: 3 input_dim: 5 input_dim: 5
        layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
                 convolution_param { num_output: 2 kernel_size: 3 } }
        layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
        layers { name: "loss" type: SOFTMAX_LOSS bottom: "conv" top: "loss" include { phase: TRAIN } }
        layers { name: "pool" type: POOLING bottom: "conv" top: "pool" pooling_param { pool: AVE kernel_size: 3 } }
    """))
    assert [(l.name, l.type) for l in net.layer] == [("conv", "Convolution"), ("relu", "ReLU"), ("pool", "Pooling")]
    assert net.layer[0].convolution_param.num_output == 2
    assert net.layer[2].pooling_param.pool == cp.PoolingParameter.AVE


def test_prototxt_syntax_error_names_the_line(tmp_path):
    p = tmp_path / "bad.prototxt"
    p.write_text('name: "x"\nlayer {\n  name: "a"\n  type: "ReLU"\n  bottom: "data" top "y"\n}\n')
    with pytest.raises(ModelError, match=r"line 5"):
        cp.load_net(p)


def test_missing_prototxt():
    with pytest.raises(ModelError, match="not found"):
        cp.load_net("/nonexistent/deploy.prototxt")


def test_missing_and_corrupt_caffemodel(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        cp.load_weights(tmp_path / "none.caffemodel")
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        cp.load_weights(empty)
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError):
        cp.load_weights(junk)
    text = tmp_path / "swapped.caffemodel"
    text.write_text(TINY)
    with pytest.raises(ModelError, match="prototxt"):
        cp.load_weights(text)
    # a valid model truncated in the middle of a blob
    good = tmp_path / "good.caffemodel"
    cp.write_caffemodel(good, None, {"fc": [np.ones((50, 40), np.float32)]})
    trunc = tmp_path / "trunc.caffemodel"
    trunc.write_bytes(good.read_bytes()[:-1000])
    with pytest.raises(ModelError, match="not a Caffe"):
        cp.load_weights(trunc)


def test_write_caffemodel_round_trip(tmp_path):
    p = tmp_path / "tiny.prototxt"
    p.write_text(TINY)
    rng = np.random.default_rng(1)
    w = {"conv1": [rng.standard_normal((4, 3, 3, 3), dtype=np.float32), rng.standard_normal(4, dtype=np.float32)],
         "fc": [rng.standard_normal((5, 256), dtype=np.float32), rng.standard_normal(5, dtype=np.float32)]}
    out = cp.write_caffemodel(tmp_path / "m.caffemodel", p, w)
    back = cp.load_weights(out)
    assert set(back) == {"conv1", "fc"}
    for k in w:
        for a, b in zip(w[k], back[k]):
            assert b.dtype == np.float32 and b.shape == a.shape
            np.testing.assert_array_equal(a, b)
    # the file is an ordinary NetParameter: layer order, types and connections preserved
    net = cp.NetParameter()
    net.ParseFromString(out.read_bytes())
    assert [(l.name, l.type, list(l.bottom), list(l.top), len(l.blobs)) for l in net.layer] == [
        ("conv1", "Convolution", ["data"], ["conv1"], 2), ("relu1", "ReLU", ["conv1"], ["conv1"], 0),
        ("fc", "InnerProduct", ["conv1"], ["fc"], 2), ("prob", "Softmax", ["fc"], ["prob"], 0)]
    assert list(net.layer[0].blobs[0].shape.dim) == [4, 3, 3, 3]
    # and the standard (slow) protobuf decoding agrees with the fast path
    np.testing.assert_array_equal(cp.blob_to_array(net.layer[2].blobs[0]), w["fc"][0])
    with pytest.raises(ModelError, match="not in the net"):
        cp.write_caffemodel(tmp_path / "x.caffemodel", p, {"nope": [np.zeros(1)]})


def test_load_weights_legacy_blobs_and_v1_layers(tmp_path):
    """2014-era caffemodels (e.g. BVLC CaffeNet) use V1 'layers' and num/channels/height/width blobs."""
    net = cp.NetParameter(name="old")
    v1 = net.layers.add(name="fc6", type=cp.V1LayerParameter.INNER_PRODUCT)
    v1.bottom.append("pool5")
    v1.top.append("fc6")
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = v1.blobs.add(num=1, channels=1, height=3, width=4)
    b.data.extend(w.ravel().tolist())
    bias = v1.blobs.add(num=1, channels=1, height=1, width=3)
    bias.double_data.extend([0.5, 1.5, 2.5])  # double storage is converted to float32
    unpacked = net.layer.add(name="new", type="Convolution")  # non-packed floats: slow-path fallback
    blob = unpacked.blobs.add()
    blob.shape.dim.extend([2, 1])
    path = tmp_path / "old.caffemodel"
    data = net.SerializeToString()
    # append blob data [7, 8] of layer "new" as NON-packed fixed32 fields inside its BlobProto
    import struct
    raw_blob = blob.SerializeToString() + b"".join(b"\x2d" + struct.pack("<f", v) for v in (7.0, 8.0))
    layer_bytes = cp.LayerParameter(name="new", type="Convolution").SerializeToString()
    layer_bytes += b"\x3a" + bytes([len(raw_blob)]) + raw_blob
    del net.layer[:]
    data = net.SerializeToString() + b"\xa2\x06" + bytes([len(layer_bytes)]) + layer_bytes
    path.write_bytes(data)
    got = cp.load_weights(path)
    assert got["fc6"][0].shape == (1, 1, 3, 4)
    np.testing.assert_array_equal(got["fc6"][0].reshape(3, 4), w)
    np.testing.assert_array_equal(got["fc6"][1].ravel(), [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(got["new"][0], [[7.0], [8.0]])


def test_binaryproto_mean(tmp_path):
    mean = np.random.default_rng(2).uniform(0, 255, (3, 6, 7)).astype(np.float32)
    p = cp.write_blobproto(tmp_path / "mean.binaryproto", mean)
    np.testing.assert_array_equal(cp.read_blobproto(p), mean)
    np.testing.assert_array_equal(load_mean(p), mean)
    bad = tmp_path / "bad.binaryproto"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ModelError):
        cp.read_blobproto(bad)
    with pytest.raises(ModelError, match="not found"):
        cp.read_blobproto(tmp_path / "none.binaryproto")


def test_bvlc_deploy_prototxts_in_repo_match_generator():
    fm = load_fetch_models()
    for which in ("bvlc_reference_caffenet", "bvlc_alexnet"):
        p = resources.deploy_prototxt(which)
        assert p.read_text() == fm.deploy_prototxt(which)
        net = cp.load_net(p)
        assert cp.input_shapes(net) == {"data": (10, 3, 227, 227)}
        assert [l.name for l in net.layer][-3:] == ["drop7", "fc8", "prob"]


def test_bvlc_deploy_prototxts_match_upstream(shared_dir):
    for which in ("bvlc_reference_caffenet", "bvlc_alexnet"):
        ours = cp.load_net(resources.deploy_prototxt(which))
        upstream = cp.load_net(shared_dir / "models" / "caffe" / which / "deploy.prototxt")
        assert ours == upstream, which


def test_fetch_models_offline_message(tmp_path, monkeypatch, capsys):
    """Without network every file fails with its URL and a manual-placement hint; exit code 1."""
    fm = load_fetch_models()
    import urllib.request

    def offline(*a, **k):
        raise fm.urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    rc = fm.fetch(tmp_path / "w", only=["caffenet", "bing"], timeout=1, write_deploy=False)
    assert rc == 1
    err = capsys.readouterr().err
    assert "http://dl.caffe.berkeleyvision.org/bvlc_reference_caffenet.caffemodel" in err
    assert str(tmp_path / "w" / "bvlc_reference_caffenet.caffemodel") in err
    assert "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46" in err and "place it at" in err
    assert "ObjNessB2W8MAXBGR.idx.yml.gz" in err
    assert not any((tmp_path / "w").rglob("*.part"))  # no partial files left behind
    assert not (tmp_path / "w" / "bvlc_reference_caffenet.caffemodel").exists()


def test_fetch_models_skips_good_files_and_replaces_bad(tmp_path, monkeypatch, capsys):
    fm = load_fetch_models()
    payload = b"hello model"
    import hashlib
    import io

    remote = fm.Remote("x", "sub/m.bin", "http://example.invalid/m.bin", hashlib.sha1(payload).hexdigest())
    monkeypatch.setattr(fm, "FILES", [remote])

    class Resp(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    calls = []
    monkeypatch.setattr(fm.urllib.request, "urlopen", lambda *a, **k: calls.append(1) or Resp(payload))
    dest = tmp_path / "w"
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "m.bin").write_bytes(b"corrupt")
    assert fm.fetch(dest, write_deploy=False) == 0
    assert (dest / "sub" / "m.bin").read_bytes() == payload and len(calls) == 1
    assert fm.fetch(dest, write_deploy=False) == 0
    assert len(calls) == 1  # already present with the right checksum: skipped
    assert "already present" in capsys.readouterr().out
    # a download with the wrong checksum is rejected and never renamed into place
    monkeypatch.setattr(fm.urllib.request, "urlopen", lambda *a, **k: Resp(b"tampered"))
    (dest / "sub" / "m.bin").unlink()
    assert fm.fetch(dest, write_deploy=False) == 1
    assert not (dest / "sub" / "m.bin").exists() and not list((dest / "sub").glob("*.part"))


# ---------------------------------------------------------------------------
# the generated protobuf module
# ---------------------------------------------------------------------------
def test_committed_caffe_pb2_is_the_generator_output(tmp_path):
    """``make proto`` output == the committed caffe_pb2.py / raw_pb2.py (grpcio-tools pinned in requirements)."""
    import subprocess

    import stl
    from conftest import missing

    try:
        import grpc_tools  # noqa: F401
    except ImportError:
        missing("grpcio-tools not installed (make setup installs it)")
    root = Path(stl.__file__).resolve().parent.parent
    protos = ["stl/models/caffe/caffe.proto", "stl/models/caffe/raw.proto"]
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", f"--python_out={tmp_path}", *protos],
                   cwd=root, check=True)
    for proto in protos:
        generated = tmp_path / proto.replace(".proto", "_pb2.py")
        committed = root / proto.replace(".proto", "_pb2.py")
        assert committed.read_bytes() == generated.read_bytes(), f"{committed} is stale: run `make proto`"


def test_generated_classes_live_in_their_own_package_beside_pycaffes():
    """pycaffe registers ``caffe.*`` in protobuf's default pool; ours must not collide with it."""
    from google.protobuf import descriptor_pb2, descriptor_pool

    from stl.models.caffe import caffe_pb2, raw_pb2

    assert cp.NetParameter.DESCRIPTOR.full_name == "stl.caffe.NetParameter"
    assert caffe_pb2.DESCRIPTOR.package == "stl.caffe" and raw_pb2.DESCRIPTOR.package == "stl.caffe_raw"
    pool = descriptor_pool.Default()
    try:
        pool.FindMessageTypeByName("caffe.NetParameter")
    except KeyError:  # pycaffe not loaded in this process: register a stand-in the way its caffe_pb2 does
        fd = descriptor_pb2.FileDescriptorProto(name="caffe.proto", package="caffe")
        fd.message_type.add(name="NetParameter").field.add(name="name", number=1, type=9, label=1)
        pool.AddSerializedFile(fd.SerializeToString())
    assert pool.FindMessageTypeByName("caffe.NetParameter") is not cp.NetParameter.DESCRIPTOR


def test_raw_view_parses_the_same_weights_as_the_full_proto(tmp_path, rng):
    """The bytes-blob fast path (raw_pb2 + np.frombuffer) == the full caffe_pb2 parse, packed and legacy 4-D."""
    w = {"conv": [rng.standard_normal((4, 3, 2, 2)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]}
    path = cp.write_caffemodel(tmp_path / "m.caffemodel", None, w)
    net = cp.NetParameter()
    net.ParseFromString(path.read_bytes())
    slow = [cp.blob_to_array(b) for b in net.layer[0].blobs]
    fast = cp.load_weights(path)["conv"]
    for a, b, c in zip(fast, slow, w["conv"]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # unpacked floats (a valid but rare encoding) go the slow way and still agree
    blob = cp.BlobProto(num=1, channels=1, height=2, width=2)
    blob.data.extend([1.0, 2.0, 3.0, 4.0])
    layer = cp.LayerParameter(name="x")
    layer.blobs.add().CopyFrom(blob)
    net2 = cp.NetParameter(layer=[layer])
    p2 = tmp_path / "legacy.caffemodel"
    p2.write_bytes(net2.SerializeToString())
    np.testing.assert_array_equal(cp.load_weights(p2)["x"][0], np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2))
