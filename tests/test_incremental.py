"""Incremental masked forwards (stl.modeling.incremental) equal full forwards of the masked images."""
from __future__ import annotations

import numpy as np
import pytest

from stl.models import LOGITS, PROB
from stl.models.caffe import incremental
from stl.models.base import mask_boxes
from stl.models.caffe.classifier import TorchCaffeClassifier
from stl.models.caffe.net import CaffeNetModule

# Every layer kind the incremental pass handles, and two it must fall back on.
NET = """
name: "every_local_layer"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 33 dim: 33 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 5 stride: 2 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1" lrn_param { local_size: 5 alpha: 0.001 beta: 0.75 } }
layer { name: "conv2" type: "Convolution" bottom: "norm1" top: "conv2"
        convolution_param { num_output: 8 kernel_size: 3 pad: 2 dilation: 2 group: 2 } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "conv2" }
layer { name: "scale2" type: "Scale" bottom: "conv2" top: "conv2" scale_param { bias_term: true } }
layer { name: "split" type: "Split" bottom: "conv2" top: "s1" top: "s2" }
layer { name: "conv3a" type: "Convolution" bottom: "s1" top: "conv3a" convolution_param { num_output: 6 kernel_size: 1 } }
layer { name: "conv3b" type: "Convolution" bottom: "s2" top: "conv3b"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 } }
layer { name: "tanh3" type: "TanH" bottom: "conv3b" top: "conv3b" }
layer { name: "concat3" type: "Concat" bottom: "conv3a" bottom: "conv3b" top: "concat3" }
layer { name: "conv4" type: "Convolution" bottom: "concat3" top: "conv4"
        convolution_param { num_output: 12 kernel_size: 3 pad: 1 } }
layer { name: "sum4" type: "Eltwise" bottom: "concat3" bottom: "conv4" top: "sum4" }
layer { name: "sig4" type: "Sigmoid" bottom: "sum4" top: "sum4" }
layer { name: "pool2" type: "Pooling" bottom: "sum4" top: "pool2" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "pool3" type: "Pooling" bottom: "pool2" top: "pool3"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool3" top: "fc" inner_product_param { num_output: 7 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def random_weights(net: CaffeNetModule, rng) -> dict:
    weights = {}
    for name, shapes in net.param_shapes().items():
        if name == "bn2":
            weights[name] = [rng.normal(0, 1, shapes[0]), rng.uniform(0.5, 2, shapes[1]), np.ones(shapes[2])]
        else:
            weights[name] = [rng.normal(0, 0.3, s) for s in shapes]
    return weights


@pytest.fixture
def every_layer_classifier(tmp_path):
    rng = np.random.default_rng(0)
    proto = tmp_path / "net.prototxt"
    proto.write_text(NET)
    weights = random_weights(CaffeNetModule(proto), rng)
    return TorchCaffeClassifier(proto, weights, mean=np.array([104.0, 117.0, 123.0]))


@pytest.mark.parametrize("a0, a1, kernel, stride, pad, out_size, expected", [
    (0, 0, 11, 4, 0, 55, (0, 0)),        # CaffeNet conv1, top-left pixel: only output 0
    (10, 10, 11, 4, 0, 55, (0, 2)),       # outputs 0..2 start at 0, 4, 8 and cover pixel 10
    (226, 226, 11, 4, 0, 55, (54, 54)),   # the last output covers 216..226
    (20, 30, 3, 1, 1, 13, (12, 12)),      # beyond the map: clipped to the last row
    (5, 7, 3, 2, 0, 27, (2, 3)),          # MAX pool 3/2: windows 4..6 and 6..8
    (0, 12, 3, 1, 1, 13, (0, 12)),        # the whole map
])
def test_output_rows_hand_computed(a0, a1, kernel, stride, pad, out_size, expected):
    lo, hi = incremental.output_rows(np.array([a0]), np.array([a1]), kernel, stride, pad, out_size)
    assert (int(lo[0]), int(hi[0])) == expected


def test_output_rows_agree_with_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(300):
        k, s, p = int(rng.integers(1, 8)), int(rng.integers(1, 5)), int(rng.integers(0, 3))
        size = int(rng.integers(k, 40))
        out_size = (size + 2 * p - k) // s + 1
        a0 = int(rng.integers(0, size))
        a1 = int(rng.integers(a0, size))
        touched = [j for j in range(out_size) if j * s - p <= a1 and j * s - p + k - 1 >= a0]
        lo, hi = incremental.output_rows(np.array([a0]), np.array([a1]), k, s, p, out_size)
        if touched:
            assert (int(lo[0]), int(hi[0])) == (touched[0], touched[-1]), (k, s, p, size, a0, a1)


def test_local_layers_of_the_test_net(every_layer_classifier):
    net = every_layer_classifier.net
    names = [l.layer_name for l in net.layers[:incremental.local_layer_count(net)]]
    assert names[-1] == "pool2"  # pool3 (AVE with clipped border windows) is not local


BOXES = np.array([[0, 0, 0, 0], [3, 4, 9, 8], [30, 30, 32, 32], [0, 10, 32, 12], [12, 0, 14, 32],
                  [5, 5, 27, 27], [31, 0, 32, 32], [0, 0, 32, 32], [16, 16, 16, 16]])


@pytest.mark.parametrize("sort_by_area", [False, True])
def test_every_layer_kind_matches_full_forward(every_layer_classifier, sort_by_area, monkeypatch):
    clf = every_layer_classifier
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (2, 33, 33, 3)).astype(np.float32)
    boxes = BOXES[np.argsort((BOXES[:, 2] - BOXES[:, 0] + 1) * (BOXES[:, 3] - BOXES[:, 1] + 1))] if sort_by_area else BOXES
    index = np.arange(len(boxes)) % 2
    full = clf.forward(mask_boxes(images, index, boxes, clf.mask_color), (PROB, LOGITS))
    windows = []
    real_op = incremental._window_op
    monkeypatch.setattr(incremental, "_window_op", lambda layer, x: windows.append(x.shape) or real_op(layer, x))
    for chunk in (slice(0, 4), slice(4, 9)):  # small boxes alone, then with the whole-image box
        inc = clf.forward_masked(images, index[chunk], boxes[chunk], (PROB, LOGITS))
        np.testing.assert_allclose(inc[LOGITS], full[LOGITS][chunk], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(inc[PROB], full[PROB][chunk], rtol=1e-5, atol=1e-6)
    assert windows and min(w[-1] for w in windows) < 16  # windows smaller than the maps were computed


def test_incremental_masking_can_be_switched_off(every_layer_classifier, monkeypatch):
    clf = every_layer_classifier
    clf.incremental_masking = False
    monkeypatch.setattr(incremental, "masked_forward", lambda *a, **k: pytest.fail("incremental path used"))
    images = np.zeros((1, 33, 33, 3), np.float32)
    out = clf.forward_masked(images, [0], [[1, 1, 5, 5]])
    assert out[PROB].shape == (1, 7)


def test_base_record_cache_is_bounded(every_layer_classifier):
    clf = every_layer_classifier
    clf.record_cache_size = 2
    rng = np.random.default_rng(3)
    for _ in range(4):
        clf.forward_masked(rng.integers(0, 256, (1, 33, 33, 3)).astype(np.float32), [0], [[1, 1, 5, 5]])
    assert len(clf._records) == 2


@pytest.mark.slow
def test_real_squeezenet_incremental_equals_full(ilsvrc_dir, shared_dir):
    from stl.io import read_image
    from stl.models import build_classifier

    clf = build_classifier("squeezenet")
    files = sorted((ilsvrc_dir / "val").glob("*.JPEG"))[:2]
    images = np.stack([read_image(f).astype(np.float32) for f in files])
    rng = np.random.default_rng(4)
    x0, y0 = rng.integers(0, 220, 24), rng.integers(0, 220, 24)
    boxes = np.stack([x0, y0, np.minimum(x0 + rng.integers(4, 80, 24), 226),
                      np.minimum(y0 + rng.integers(4, 80, 24), 226)], 1)
    index = np.arange(24) % 2
    inc = clf.forward_masked(images, index, boxes)[PROB]
    full = clf.forward(mask_boxes(images, index, boxes, clf.mask_color), (PROB,))[PROB]
    np.testing.assert_allclose(inc, full, rtol=1e-4, atol=1e-6)
    unmasked = clf.forward(images, (PROB,))[PROB][index]
    assert np.abs(inc - unmasked).max() > 1e-3  # the masks do change the output


@pytest.mark.slow
def test_stl_windows_identical_with_and_without_incremental(ilsvrc_dir, shared_dir):
    from stl.core.config import DEFAULT, SegmentationConfig
    from stl.io import read_image
    from stl.core.localization import localize
    from stl.models import build_classifier

    config = DEFAULT.replace(segmentation=SegmentationConfig(color_spaces=("lab",), ks=(100,)))
    image = read_image(ilsvrc_dir / "val" / "ILSVRC2012_val_00000347.JPEG")
    clf = build_classifier("squeezenet")
    fast = localize(image, clf, config=config)
    clf.incremental_masking = False
    slow = localize(image, clf, config=config)
    assert len(fast) > 10
    np.testing.assert_array_equal(fast.boxes, slow.boxes)
    np.testing.assert_allclose(fast.scores, slow.scores, rtol=1e-5, atol=1e-6)  # float rounding only


def test_size_groups_partition_by_box_size():
    boxes = np.array([[0, 0, 199, 199], [0, 0, 4, 4], [5, 5, 9, 9], [0, 0, 2, 6], [1, 1, 5, 5],
                      [0, 0, 100, 100], [0, 0, 199, 190], [3, 3, 7, 7]])
    groups = incremental.size_groups(boxes, ratio=1.5, min_group=2)
    flat = np.concatenate(groups)
    assert sorted(flat.tolist()) == list(range(len(boxes)))  # a partition
    # costs (h+32)(w+32): 1365 (item 3), 1369 (1, 2, 4, 7), 17689 (5), 51736 (6), 53824 (0);
    # item 6 joins 5 because a group needs min_group=2 items before it can close
    assert [sorted(g.tolist()) for g in groups] == [[1, 2, 3, 4, 7], [5, 6], [0]]


def test_layers_declare_their_locality_and_incremental_imports_only_that_protocol():
    """incremental must not switch over torch_caffe's classes: each layer says what it is."""
    import ast
    from pathlib import Path

    from stl.models.caffe import io as cp

    tree = ast.parse(Path(incremental.__file__).read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if "torch_caffe" in m], imported
    net = CaffeNetModule(cp.parse_net_text('input: "data" input_shape { dim: 1 dim: 4 dim: 9 dim: 9 }\n' + """
layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "r" type: "ReLU" bottom: "c" top: "c" }
layer { name: "pm" type: "Pooling" bottom: "c" top: "pm" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pa_in" type: "Pooling" bottom: "c" top: "pa_in" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "pa_pad" type: "Pooling" bottom: "c" top: "pa_pad" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pa_clip" type: "Pooling" bottom: "c" top: "pa_clip" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "g" type: "Pooling" bottom: "c" top: "g" pooling_param { pool: MAX global_pooling: true } }
layer { name: "la" type: "LRN" bottom: "c" top: "la" lrn_param { local_size: 3 } }
layer { name: "lw" type: "LRN" bottom: "c" top: "lw" lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL } }
layer { name: "cat" type: "Concat" bottom: "c" bottom: "la" top: "cat" }
layer { name: "ip" type: "InnerProduct" bottom: "cat" top: "ip" inner_product_param { num_output: 2 } }
"""))
    kinds = {l.layer_name: l.locality for l in net.layers}
    # 7x7 conv output: AVE 3/2 windows end at 6 (inside); AVE 2/2 ceil-rounds to 4 windows, the last clipped
    assert kinds == {"c": "window", "r": "pointwise", "pm": "window", "pa_in": "window", "pa_pad": "other",
                     "pa_clip": "other", "g": "other", "la": "pointwise", "lw": "other", "cat": "merge",
                     "ip": "other"}
    assert net.layers[0].window_geometry() == ((3, 3), (1, 1), (0, 0), 0.0)
    assert net.layers[2].window_geometry()[3] == float("-inf")
