"""The torch Caffe engine against hand-computed / independently computed (numpy) Caffe semantics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stl.models import FEATURE, LOGITS, PROB, ModelError, build_classifier
from stl.models.caffe import io as cp
from stl.models.caffe.classifier import TorchCaffeClassifier
from stl.models.caffe.layers import caffe_pool_output_size
from stl.models.caffe.net import CaffeNetModule
from stl.models.preprocessing import ILSVRC_MEAN_BGR


# ---------------------------------------------------------------------------
# numpy references: direct transcriptions of Caffe's CPU loops
# ---------------------------------------------------------------------------
FLT_MAX = float(np.finfo(np.float32).max)


def ref_pool(x, method, k, s, p, ceil=True):
    """caffe/layers/pooling_layer.cpp Forward_cpu (MAX / AVE) including Reshape's output size."""
    n, c, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = k, s, p

    def osize(size, kk, ss, pp):
        o = (int(math.ceil((size + 2 * pp - kk) / ss)) if ceil else (size + 2 * pp - kk) // ss) + 1
        if (ph or pw) and (o - 1) * ss >= size + pp:
            o -= 1
        return o

    oh, ow = osize(H, kh, sh, ph), osize(W, kw, sw, pw)
    out = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * sh - ph, j * sw - pw
            if method == "MAX":
                he, we = min(hs + kh, H), min(ws + kw, W)
                hs, ws = max(hs, 0), max(ws, 0)
                out[:, :, i, j] = x[:, :, hs:he, ws:we].max(axis=(2, 3), initial=-FLT_MAX)  # empty window: -FLT_MAX
            else:
                he, we = min(hs + kh, H + ph), min(ws + kw, W + pw)
                size = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, H), min(we, W)
                with np.errstate(invalid="ignore"):  # an empty window is 0/0 in Caffe too
                    out[:, :, i, j] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / size
    return out


def ref_lrn_across(x, n, alpha, beta, k):
    """scale_c = k + alpha/n * sum_{c' = c - (n-1)/2 .. c + (n-1)/2} x_c'^2 ; y = x * scale^-beta."""
    C = x.shape[1]
    half = (n - 1) // 2
    y = np.empty_like(x, dtype=np.float64)
    for c in range(C):
        lo, hi = max(0, c - half), min(C, c + half + 1)
        scale = k + alpha / n * (x[:, lo:hi].astype(np.float64) ** 2).sum(axis=1)
        y[:, c] = x[:, c] * scale ** -beta
    return y


def ref_lrn_within(x, n, alpha, beta):
    pad = (n - 1) // 2
    avg = ref_pool(x.astype(np.float64) ** 2, "AVE", (n, n), (1, 1), (pad, pad))
    return x * (1 + alpha * avg) ** -beta


def ref_conv(x, w, b, stride, pad, dilation, group):
    n, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (H + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (W + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    out = np.zeros((n, O, oh, ow))
    og = O // group
    for g in range(group):
        xs = xp[:, g * Cg:(g + 1) * Cg]
        ws = w[g * og:(g + 1) * og].astype(np.float64)
        for i in range(oh):
            for j in range(ow):
                hs, wsx = i * stride[0], j * stride[1]
                patch = xs[:, :, hs:hs + dilation[0] * (kh - 1) + 1:dilation[0], wsx:wsx + dilation[1] * (kw - 1) + 1:dilation[1]]
                out[:, g * og:(g + 1) * og, i, j] = np.einsum("nchw,ochw->no", patch, ws)
    if b is not None:
        out += b[None, :, None, None]
    return out


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def net_from(text, shape=(2, 3, 9, 9)):
    return cp.parse_net_text(f'input: "data" input_shape {{ {" ".join(f"dim: {d}" for d in shape)} }}\n' + text)


def run(net, x, outputs=None, weights=None):
    m = CaffeNetModule(net, weights)
    with torch.no_grad():
        out = m(torch.from_numpy(np.asarray(x, np.float32)), outputs)
    return {k: v.numpy() for k, v in out.items()}, m


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("size,k,p,s,expected", [
    (55, 3, 0, 2, 27),  # CaffeNet pool1
    (13, 3, 0, 2, 6),  # pool5
    (111, 3, 0, 2, 55),  # SqueezeNet pool1
    (6, 3, 0, 2, 3),  # ceil: windows may run past the border (floor would give 2)
    (6, 3, 1, 2, 4),  # padded, no clipping
    (5, 2, 1, 2, 3),  # padded: ceil gives 4 but the 4th window would start in the padding only
    (5, 1, 0, 3, 3),  # kernel < stride, no pad: Caffe keeps 3 (torch ceil_mode would say 2)
])
def test_pool_output_size(size, k, p, s, expected):
    assert caffe_pool_output_size(size, k, p, s, any_pad=p > 0) == expected


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_pooling_matches_caffe_loops(method, rng):
    cases = [((3, 3), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((2, 2), (2, 2), (1, 1)), ((3, 2), (2, 3), (1, 0)),
             ((1, 1), (3, 3), (0, 0)), ((4, 4), (3, 3), (2, 2)), ((5, 5), (1, 1), (2, 2)), ((2, 3), (1, 2), (1, 1))]
    for size in (5, 6, 9):
        x = rng.standard_normal((2, 3, size, size + 1)).astype(np.float32)
        for k, s, p in cases:
            if p[0] >= k[0] or p[1] >= k[1]:
                continue
            txt = (f'layer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param {{ pool: {method} '
                   f"kernel_h: {k[0]} kernel_w: {k[1]} stride_h: {s[0]} stride_w: {s[1]} pad_h: {p[0]} pad_w: {p[1]} }} }}")
            out, m = run(net_from(txt, x.shape), x)
            want = ref_pool(x, method, k, s, p)
            assert out["pool"].shape == want.shape, (size, k, s, p)
            assert m.blob_shapes["pool"] == want.shape
            np.testing.assert_allclose(out["pool"], want, rtol=1e-5, atol=1e-6, err_msg=str((size, k, s, p)))


def test_pooling_floor_round_mode(rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    out, _ = run(net_from('layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                          'pooling_param { pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR } }', x.shape), x)
    np.testing.assert_allclose(out["p"], ref_pool(x, "MAX", (3, 3), (2, 2), (0, 0), ceil=False))
    assert out["p"].shape == (1, 2, 2, 2)


def test_global_pooling(rng):
    x = rng.standard_normal((2, 4, 5, 7)).astype(np.float32)
    net = net_from('layer { name: "g" type: "Pooling" bottom: "data" top: "avg" pooling_param { pool: AVE global_pooling: true } }'
                   'layer { name: "m" type: "Pooling" bottom: "data" top: "max" pooling_param { pool: MAX global_pooling: true } }',
                   x.shape)
    out, m = run(net, x, ["avg", "max"])
    assert m.blob_shapes["avg"] == (2, 4, 1, 1)
    np.testing.assert_allclose(out["avg"][:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["max"][:, :, 0, 0], x.max(axis=(2, 3)))


# ---------------------------------------------------------------------------
# LRN, convolution, inner product, simple layers
# ---------------------------------------------------------------------------
def test_lrn_across_channels_hand_computed():
    # 1 pixel, channels 1..4, local_size 3, alpha 3 (alpha/n = 1), beta 0.5, k 2
    x = np.array([1, 2, 3, 4], np.float32).reshape(1, 4, 1, 1)
    out, _ = run(net_from('layer { name: "n" type: "LRN" bottom: "data" top: "n" '
                          'lrn_param { local_size: 3 alpha: 3 beta: 0.5 k: 2 } }', x.shape), x)
    sums = np.array([1 + 4, 1 + 4 + 9, 4 + 9 + 16, 9 + 16], np.float64)
    np.testing.assert_allclose(out["n"].ravel(), np.arange(1, 5) / np.sqrt(2 + sums), rtol=1e-6)


@pytest.mark.parametrize("n", [1, 3, 5, 7])
def test_lrn_across_channels(n, rng):
    x = (rng.standard_normal((2, 11, 4, 5)) * 20).astype(np.float32)
    out, _ = run(net_from(f'layer {{ name: "n" type: "LRN" bottom: "data" top: "n" '
                          f"lrn_param {{ local_size: {n} alpha: 0.0001 beta: 0.75 k: 1.5 }} }}", x.shape), x)
    np.testing.assert_allclose(out["n"], ref_lrn_across(x, n, 1e-4, 0.75, 1.5), rtol=2e-6, atol=1e-6)


def test_lrn_within_channel(rng):
    x = (rng.standard_normal((2, 3, 6, 7)) * 5).astype(np.float32)
    out, _ = run(net_from('layer { name: "n" type: "LRN" bottom: "data" top: "n" '
                          "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL } }", x.shape), x)
    np.testing.assert_allclose(out["n"], ref_lrn_within(x, 3, 0.5, 0.75), rtol=2e-6, atol=1e-6)


def test_lrn_even_size_is_rejected():
    with pytest.raises(ModelError, match="odd"):
        CaffeNetModule(net_from('layer { name: "n" type: "LRN" bottom: "data" top: "n" lrn_param { local_size: 4 } }'))


@pytest.mark.parametrize("group,stride,pad,dil,bias", [(1, 1, 0, 1, True), (2, 2, 1, 1, True), (3, 1, 2, 2, False),
                                                       (1, 3, 1, 1, True)])
def test_convolution(group, stride, pad, dil, bias, rng):
    x = rng.standard_normal((2, 6, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 6 // group, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    txt = (f'layer {{ name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param {{ num_output: 6 '
           f"kernel_size: 3 group: {group} stride: {stride} pad: {pad} dilation: {dil} bias_term: {str(bias).lower()} }} }}")
    weights = {"c": [w, b] if bias else [w]}
    out, m = run(net_from(txt, x.shape), x, weights=weights)
    want = ref_conv(x, w, b if bias else None, (stride, stride), (pad, pad), (dil, dil), group)
    assert m.blob_shapes["c"] == want.shape
    np.testing.assert_allclose(out["c"], want, rtol=1e-4, atol=1e-4)


def test_convolution_rectangular_params(rng):
    x = rng.standard_normal((1, 2, 7, 9)).astype(np.float32)
    w = rng.standard_normal((3, 2, 2, 3)).astype(np.float32)
    txt = ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 3 '
           "kernel_h: 2 kernel_w: 3 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 bias_term: false } }")
    out, _ = run(net_from(txt, x.shape), x, weights={"c": [w]})
    np.testing.assert_allclose(out["c"], ref_conv(x, w, None, (2, 1), (1, 0), (1, 1), 1), rtol=1e-4, atol=1e-5)


def test_inner_product_axis_transpose_and_legacy_shapes(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w = rng.standard_normal((7, 60)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    txt = ('layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 7 } }'
           'layer { name: "ipt" type: "InnerProduct" bottom: "data" top: "ipt" '
           "inner_product_param { num_output: 7 transpose: true } }"
           'layer { name: "ip2" type: "InnerProduct" bottom: "data" top: "ip2" '
           "inner_product_param { num_output: 7 axis: 2 bias_term: false } }")
    w2 = rng.standard_normal((7, 20)).astype(np.float32)
    # legacy 4-D blobs (1,1,out,in) / (1,1,1,out), as in 2014 caffemodels, are reshaped like Caffe does
    weights = {"ip": [w.reshape(1, 1, 7, 60), b.reshape(1, 1, 1, 7)], "ipt": [w.T.copy(), b], "ip2": [w2]}
    out, m = run(net_from(txt, x.shape), x, ["ip", "ipt", "ip2"], weights)
    want = x.reshape(2, -1) @ w.T + b
    np.testing.assert_allclose(out["ip"], want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["ipt"], want, rtol=1e-4, atol=1e-4)
    assert m.blob_shapes["ip2"] == (2, 3, 7)
    np.testing.assert_allclose(out["ip2"], x.reshape(2, 3, 20) @ w2.T, rtol=1e-4, atol=1e-4)


def test_relu_concat_softmax_eltwise_flatten(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    txt = ('layer { name: "lrelu" type: "ReLU" bottom: "data" top: "l" relu_param { negative_slope: 0.1 } }'
           'layer { name: "relu" type: "ReLU" bottom: "data" top: "r" }'
           'layer { name: "cat" type: "Concat" bottom: "l" bottom: "r" bottom: "data" top: "cat" }'
           'layer { name: "cat3" type: "Concat" bottom: "l" bottom: "r" top: "cat3" concat_param { axis: -1 } }'
           'layer { name: "sm" type: "Softmax" bottom: "data" top: "sm" }'
           'layer { name: "sum" type: "Eltwise" bottom: "l" bottom: "r" top: "sum" eltwise_param { coeff: 2 coeff: -1 } }'
           'layer { name: "flat" type: "Flatten" bottom: "data" top: "flat" }'
           'layer { name: "split" type: "Split" bottom: "data" top: "s1" top: "s2" }')
    out, m = run(net_from(txt, x.shape), x, ["l", "r", "cat", "cat3", "sm", "sum", "flat", "s1", "s2"])
    np.testing.assert_allclose(out["l"], np.where(x > 0, x, 0.1 * x), rtol=1e-6)
    np.testing.assert_array_equal(out["r"], np.maximum(x, 0))
    assert out["cat"].shape == (2, 9, 4, 4) and out["cat3"].shape == (2, 3, 4, 8)
    np.testing.assert_array_equal(out["cat"][:, 6:], x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out["sm"], e / e.sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(out["sum"], 2 * out["l"] - out["r"], rtol=1e-6, atol=1e-6)
    assert out["flat"].shape == (2, 48) and m.blob_shapes["flat"] == (2, 48)
    np.testing.assert_array_equal(out["s2"], x)


def test_in_place_layers_follow_pycaffe_blob_view(rng):
    """After the forward pass blob 'fc' is fc after the in-place relu and dropout (pycaffe's view)."""
    x = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    w = rng.standard_normal((4, 18)).astype(np.float32)
    txt = ('layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 4 } }'
           'layer { name: "relu" type: "ReLU" bottom: "fc" top: "fc" }'
           'layer { name: "drop" type: "Dropout" bottom: "fc" top: "fc" dropout_param { dropout_ratio: 0.9 } }'
           'layer { name: "out" type: "InnerProduct" bottom: "fc" top: "out" inner_product_param { num_output: 2 } }')
    weights = {"fc": [w, np.zeros(4, np.float32)], "out": [np.ones((2, 4), np.float32), np.zeros(2, np.float32)]}
    out, m = run(net_from(txt, x.shape), x, ["fc", "out"], weights)
    fc = np.maximum(x.reshape(3, -1) @ w.T, 0)  # dropout: identity at test time, no rescaling
    np.testing.assert_allclose(out["fc"], fc, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["out"], np.repeat(fc.sum(1, keepdims=True), 2, 1), rtol=1e-5, atol=1e-5)
    assert m.outputs == ["out"]
    # asking only for 'fc' stops after the last layer writing it and gives the same values
    only, _ = run(net_from(txt, x.shape), x, ["fc"], weights)
    np.testing.assert_array_equal(only["fc"], out["fc"])


def test_unsupported_layer_names_the_layer():
    with pytest.raises(ModelError, match=r"'my_weird_layer'.*'Deconvolution'"):
        CaffeNetModule(net_from('layer { name: "my_weird_layer" type: "Deconvolution" bottom: "data" top: "d" '
                                "convolution_param { num_output: 2 kernel_size: 2 } }"))


def test_weight_errors(rng):
    txt = 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 3 } }'
    net = net_from(txt)
    with pytest.raises(ModelError, match="no weights for layer 'c'"):
        CaffeNetModule(net, {})
    with pytest.raises(ModelError, match="'c' blob 0"):
        CaffeNetModule(net, {"c": [np.zeros((2, 3, 5, 5)), np.zeros(2)]})
    with pytest.raises(ModelError, match="1 blobs"):
        CaffeNetModule(net, {"c": [np.zeros((2, 3, 3, 3))]})
    with pytest.raises(ModelError, match="unknown bottom"):
        CaffeNetModule(net_from('layer { name: "r" type: "ReLU" bottom: "nope" top: "r" }'))


# ---------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------
TINY_NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 3 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
layer { name: "fc7" type: "InnerProduct" bottom: "norm1" top: "fc7" inner_product_param { num_output: 6 } }
layer { name: "relu7" type: "ReLU" bottom: "fc7" top: "fc7" }
layer { name: "fc8" type: "InnerProduct" bottom: "fc7" top: "fc8" inner_product_param { num_output: 4 } }
layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }
"""


@pytest.fixture
def tiny_model(tmp_path, rng):
    proto = tmp_path / "tiny.prototxt"
    proto.write_text(TINY_NET)
    shapes = CaffeNetModule(proto).param_shapes()
    weights = {k: [rng.standard_normal(s).astype(np.float32) * 0.1 for s in v] for k, v in shapes.items()}
    model = cp.write_caffemodel(tmp_path / "tiny.caffemodel", proto, weights)
    return proto, model, weights


def test_classifier_outputs(tiny_model, rng):
    proto, model, weights = tiny_model
    clf = build_classifier(f"{proto}:{model}")
    assert isinstance(clf, TorchCaffeClassifier)
    assert clf.input_size == (16, 16) and len(clf.classes) == 4 and clf.feature_name == "fc7"
    np.testing.assert_allclose(clf.mask_color, ILSVRC_MEAN_BGR[::-1], rtol=1e-6)
    imgs = rng.integers(0, 256, (5, 16, 16, 3)).astype(np.uint8)
    out = clf(imgs, outputs=(PROB, LOGITS, FEATURE), batch_size=2)
    assert out[PROB].shape == (5, 4) and out[LOGITS].shape == (5, 4) and out[FEATURE].shape == (5, 6)
    assert all(v.dtype == np.float32 for v in out.values())
    np.testing.assert_allclose(out[PROB].sum(1), 1, rtol=1e-6)
    e = np.exp(out[LOGITS] - out[LOGITS].max(1, keepdims=True))
    np.testing.assert_allclose(out[PROB], e / e.sum(1, keepdims=True), rtol=1e-5)
    assert (out[FEATURE] >= 0).all()  # fc7 after the in-place relu7
    # the network input is Caffe's: BGR, minus the mean
    blobs = clf.blobs(imgs[:1], ["data"])
    want = imgs[:1, :, :, ::-1].transpose(0, 3, 1, 2).astype(np.float32) - ILSVRC_MEAN_BGR[None, :, None, None]
    np.testing.assert_allclose(blobs["data"], want, rtol=1e-6)
    # independent numpy forward of the whole net
    x = want
    c = np.maximum(ref_conv(x, weights["conv1"][0], weights["conv1"][1], (2, 2), (0, 0), (1, 1), 1), 0)
    p = ref_pool(c, "MAX", (3, 3), (2, 2), (0, 0))
    nrm = ref_lrn_across(p, 5, 1e-4, 0.75, 1.0)
    fc7 = np.maximum(nrm.reshape(1, -1) @ weights["fc7"][0].T + weights["fc7"][1], 0)
    fc8 = fc7 @ weights["fc8"][0].T + weights["fc8"][1]
    np.testing.assert_allclose(out[FEATURE][:1], fc7, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[LOGITS][:1], fc8, rtol=1e-4, atol=1e-5)


def test_classifier_mean_options(tiny_model, rng):
    proto, model, _ = tiny_model
    mean_img = rng.uniform(90, 130, (3, 20, 20)).astype(np.float32)
    np.save(proto.parent / "mean.npy", mean_img)
    clf = TorchCaffeClassifier(proto, model, mean=proto.parent / "mean.npy")
    img = np.zeros((1, 16, 16, 3), np.uint8)
    np.testing.assert_allclose(clf.blobs(img, ["data"])["data"][0], -mean_img[:, 2:18, 2:18])
    clf_c = TorchCaffeClassifier(proto, model, mean=mean_img, mean_mode="channel")
    np.testing.assert_allclose(clf_c.mask_color, mean_img.reshape(3, -1).mean(1)[::-1], rtol=1e-5)
    np.testing.assert_allclose(clf_c.blobs(img, ["data"])["data"][0, :, 0, 0], -mean_img.reshape(3, -1).mean(1),
                               rtol=1e-5)


def test_classifier_reduced_precision_and_channels_last(tiny_model, rng):
    proto, model, _ = tiny_model
    imgs = rng.integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    ref = TorchCaffeClassifier(proto, model)(imgs, outputs=(PROB, FEATURE))
    cl = TorchCaffeClassifier(proto, model, channels_last=True)(imgs, outputs=(PROB, FEATURE))
    np.testing.assert_allclose(cl[PROB], ref[PROB], rtol=1e-5, atol=1e-6)
    bf = TorchCaffeClassifier(proto, model, precision="bf16")(imgs, outputs=(PROB, FEATURE))
    assert bf[PROB].dtype == np.float32
    np.testing.assert_allclose(bf[PROB], ref[PROB], atol=0.05)


def test_fully_convolutional_net_feature_is_pooled(tmp_path, rng):
    text = """
    input: "data" input_dim: 1 input_dim: 3 input_dim: 12 input_dim: 12
    layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 5 kernel_size: 3 } }
    layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
    layer { name: "drop" type: "Dropout" bottom: "conv1" top: "conv1" }
    layer { name: "conv_final" type: "Convolution" bottom: "conv1" top: "conv_final" convolution_param { num_output: 7 kernel_size: 1 pad: 1 } }
    layer { name: "pool_final" type: "Pooling" bottom: "conv_final" top: "pool_final" pooling_param { pool: AVE global_pooling: true } }
    """
    proto = tmp_path / "fcn.prototxt"
    proto.write_text(text)
    shapes = CaffeNetModule(proto).param_shapes()
    weights = {k: [rng.standard_normal(s).astype(np.float32) for s in v] for k, v in shapes.items()}
    clf = TorchCaffeClassifier(proto, weights, mean=np.zeros(3, np.float32))
    assert clf.logits_blob == "pool_final" and clf.prob_blob is None
    assert clf.feature_blob == "conv1" and clf.feature_pool and "global average" in clf.feature_name
    imgs = rng.integers(0, 256, (2, 12, 12, 3)).astype(np.uint8)
    out = clf(imgs, outputs=(PROB, LOGITS, FEATURE))
    conv1 = clf.blobs(imgs, ["conv1"])["conv1"]
    np.testing.assert_allclose(out[FEATURE], conv1.mean(axis=(2, 3)), rtol=1e-5)
    e = np.exp(out[LOGITS] - out[LOGITS].max(1, keepdims=True))
    np.testing.assert_allclose(out[PROB], e / e.sum(1, keepdims=True), rtol=1e-5)
    flat = TorchCaffeClassifier(proto, weights, feature_layer="conv1", feature_pool="none")
    assert flat(imgs, outputs=(FEATURE,))[FEATURE].shape == (2, 5 * 10 * 10)


def test_classifier_rejects_bad_input_and_missing_files(tiny_model):
    proto, model, _ = tiny_model
    clf = TorchCaffeClassifier(proto, model)
    with pytest.raises(ValueError, match="expected images of shape"):
        clf(np.zeros((1, 17, 16, 3), np.uint8))
    with pytest.raises(ModelError, match="not found"):
        TorchCaffeClassifier(proto, proto.parent / "missing.caffemodel")
    with pytest.raises(ModelError, match="not found"):
        build_classifier(f"{proto.parent / 'missing.prototxt'}:{model}")


def test_registry_messages_without_model_files(tmp_path, monkeypatch):
    monkeypatch.setenv("STL_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("STL_SHARED", str(tmp_path / "no_shared"))
    for name in ("caffenet", "alexnet"):
        with pytest.raises(ModelError, match=r"run `make models` \(needs internet\) or pass PROTOTXT:CAFFEMODEL"):
            build_classifier(name)
    with pytest.raises(ModelError, match="STL_SHARED"):
        build_classifier("squeezenet")


def test_default_mean_falls_back_to_channel_mean(tmp_path, monkeypatch, caplog):
    from stl.models.caffe import model_files as caffe_models

    monkeypatch.setenv("STL_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("STL_SHARED", str(tmp_path / "no_shared"))
    with caplog.at_level("WARNING"):
        mean = caffe_models.default_mean()
    np.testing.assert_array_equal(mean, ILSVRC_MEAN_BGR)
    assert "mean image not found" in caplog.text
    (tmp_path / "weights").mkdir()
    img = np.full((3, 256, 256), 7.0)
    np.save(tmp_path / "weights" / "ilsvrc_2012_mean.npy", img)
    np.testing.assert_array_equal(caffe_models.default_mean(), img)
