"""Deep Compression decoder: synthetic round trip and the real SqueezeNet file."""
from __future__ import annotations

import numpy as np
import pytest

from stl.models import ModelError
from stl.models.caffe import io as cp
from stl.models.caffe import deep_compression as dc

NET = """
name: "small"
input: "data" input_dim: 1 input_dim: 3 input_dim: 10 input_dim: 10
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fire/conv1x1" type: "Convolution" bottom: "conv1" top: "f" convolution_param { num_output: 6 kernel_size: 1 } }
layer { name: "fc" type: "InnerProduct" bottom: "f" top: "fc" inner_product_param { num_output: 5 } }
"""


def encode_layer(weights, codebook, bits):
    """Independent encoder of the format described in shared/README.md / decode.py."""
    flat = weights.ravel()
    codes_full = np.array([int(np.argmin(np.abs(codebook - v))) for v in flat], np.uint8)
    codes, gaps = [], []
    last = -1
    for pos in np.flatnonzero(codes_full):
        gap = pos - last - 1
        while gap > 15:  # bridge with stored zeros (code 0)
            codes.append(0)
            gaps.append(15)
            gap -= 16
        codes.append(codes_full[pos])
        gaps.append(gap)
        last = pos
    codes, gaps = np.array(codes, np.uint8), np.array(gaps, np.uint8)

    def pack4(v):
        v = np.concatenate([v, np.zeros(len(v) % 2, np.uint8)])
        return (v[0::2] | (v[1::2] << 4)).astype(np.uint8)

    code_bytes = codes.tobytes() if bits == 8 else pack4(codes).tobytes()
    return len(codes), code_bytes + pack4(gaps).tobytes()


def write_compressed(path, layers):
    header, body = [], b""
    for weights, bias, codebook, bits in layers:
        nz, payload = encode_layer(weights, codebook, bits)
        header.append(nz)
        body += codebook.astype("<f4").tobytes() + bias.astype("<f4").tobytes() + payload
    path.write_bytes(np.array(header, "<u4").tobytes() + body)


@pytest.fixture
def synthetic(tmp_path, rng):
    proto = tmp_path / "small.prototxt"
    proto.write_text(NET)
    layers, expected = [], {}
    for name, shape, bits in [("conv1", (4, 3, 3, 3), 8), ("fire/conv1x1", (6, 4, 1, 1), 8), ("fc", (5, 384), 4)]:
        codebook = np.concatenate([[0.0], rng.standard_normal(2 ** bits - 1)]).astype(np.float32)
        codes = rng.integers(1, 2 ** bits, int(np.prod(shape)))
        codes[rng.random(codes.size) < 0.7] = 0  # sparse, with gaps longer than 15
        codes[:40] = 0
        w = codebook[codes].reshape(shape)
        b = rng.standard_normal(shape[0]).astype(np.float32)
        layers.append((w, b, codebook, bits))
        expected[name] = (w, b)
    net_file = tmp_path / "small.net"
    write_compressed(net_file, layers)
    return net_file, proto, expected


def test_decode_synthetic(synthetic):
    net_file, proto, expected = synthetic
    assert list(dc.compressed_layers(proto)) == ["conv1", "fire/conv1x1", "fc"]
    got = dc.decode(net_file, proto)
    for name, (w, b) in expected.items():
        np.testing.assert_array_equal(got[name][0], w)
        np.testing.assert_array_equal(got[name][1], b)


def test_convert_writes_a_standard_caffemodel(synthetic, tmp_path):
    net_file, proto, expected = synthetic
    out = dc.convert(net_file, proto, tmp_path / "out.caffemodel")
    back = cp.load_weights(out)
    for name, (w, b) in expected.items():
        np.testing.assert_array_equal(back[name][0], w)
        np.testing.assert_array_equal(back[name][1], b)
    # cached conversion: reused while the sources are unchanged, redone when they change
    cached = dc.cached_caffemodel(net_file, proto, tmp_path / "cache" / "m.caffemodel")
    mtime = cached.stat().st_mtime_ns
    assert dc.cached_caffemodel(net_file, proto, cached).stat().st_mtime_ns == mtime
    proto.write_text(NET + "\n# edited\n")
    dc.cached_caffemodel(net_file, proto, cached)
    assert (cached.with_name(cached.name + ".src")).read_text().split()[1] == dc._sha1(proto)


def test_truncated_and_mismatched_files(synthetic, tmp_path):
    net_file, proto, _ = synthetic
    trunc = tmp_path / "trunc.net"
    trunc.write_bytes(net_file.read_bytes()[:-50])
    with pytest.raises(ModelError, match="truncated"):
        dc.decode(trunc, proto)
    longer = tmp_path / "longer.net"
    longer.write_bytes(net_file.read_bytes() + b"\0" * 8)
    with pytest.raises(ModelError, match="trailing"):
        dc.decode(longer, proto)
    with pytest.raises(ModelError, match="not found"):
        dc.decode(tmp_path / "none.net", proto)


def squeezenet_files(shared_dir):
    d = shared_dir / "models" / "squeezenet_v1.0_deep_compression"
    return d / "compressed_SqueezeNet.net", d / "deploy.prototxt"


def test_real_squeezenet_decode(shared_dir):
    net_file, proto = squeezenet_files(shared_dir)
    layers = dc.decode_layers(net_file, proto)
    shapes = dc.compressed_layers(proto)
    assert len(layers) == 26 == len(shapes)
    header = np.frombuffer(net_file.read_bytes()[:4 * 26], "<u4")
    assert [l.nz for l in layers] == header.tolist()
    for layer, (name, (wshape, bshape)) in zip(layers, shapes.items()):
        assert layer.name == name
        assert layer.weights.shape == wshape and layer.bias.shape == bshape
        assert layer.codebook[0] == 0.0
        # every weight the file does not list is zero; listed entries with code 0 are gap bridges
        assert np.count_nonzero(layer.weights) == layer.stored_nonzero <= layer.nz
        assert layer.stored_nonzero >= 0.95 * layer.nz
        assert np.isfinite(layer.weights).all() and np.abs(layer.weights).max() < 5
    assert layers[0].weights.shape == (96, 3, 7, 7) and layers[-1].weights.shape == (1000, 512, 1, 1)
    total = sum(l.weights.size for l in layers)
    assert total == 1244448  # SqueezeNet v1.0 conv weights
    assert 0.25 < sum(l.stored_nonzero for l in layers) / total < 0.45  # ~ 3x pruning (Deep Compression)


def test_real_squeezenet_cached_caffemodel(shared_dir, tmp_path, monkeypatch):
    from stl.models.caffe import model_files as caffe_models

    monkeypatch.setenv("STL_SHARED", str(shared_dir))
    prototxt, model = caffe_models.squeezenet_paths()
    assert model.name == "squeezenet_v1.0.caffemodel" and model.is_file()
    weights = cp.load_weights(model)
    net_file, proto = squeezenet_files(shared_dir)
    direct = dc.decode(net_file, proto)
    assert set(weights) == set(direct)
    for k in direct:
        np.testing.assert_array_equal(weights[k][0], direct[k][0])
        np.testing.assert_array_equal(weights[k][1], direct[k][1])
