"""Hand-computed cases for the authors profile vs the corrected profile (fidelity issue,
items 1-8; the evaluation items 9-11 are in tests/test_authors_eval_cases.py)."""
from __future__ import annotations

import numpy as np
import pytest

from stl.core.boxes import iou_authors, iou_matrix, nms_authors, normalized_exclusive
from stl.core.config import DEFAULT, PROFILES, STLConfig
from stl.core.localization import ImageContext, pool_and_suppress, resize_to_input
from stl.models.base import PROB, FEATURE, Classifier, ClassList, center_square, crop_to_input
from stl.models.preprocessing import CaffePreprocessing
from stl.core.segmentation import segmentation_from_labels
from stl.core.similarity import drop_for_classes, drop_wl, top_classes

AUTHORS = STLConfig.for_profile("authors")
CORRECTED = STLConfig.for_profile("corrected")


def test_profiles():
    assert PROFILES == ("authors", "corrected")
    assert DEFAULT == AUTHORS and DEFAULT.profile == "authors"
    assert CORRECTED.profile == "corrected"
    differ = {k for k, v in AUTHORS.to_dict().items() if CORRECTED.to_dict()[k] != v}
    assert differ == {"profile", "mask_fill", "drop_rule", "box_convention", "input_resize", "crop_mode",
                      "caffe_mean", "similarity_rule"}
    assert STLConfig.for_profile("corrected", wl_top_classes=3).wl_top_classes == 3
    with pytest.raises(ValueError, match="known: authors, corrected"):
        STLConfig.for_profile("paper")
    with pytest.raises(ValueError, match="drop_rule must be one of"):
        STLConfig(drop_rule="clamp")


# -- item 1: Eq. 3 clamp once (authors) vs per class (paper text) ------------------------------
def test_item1_stl_wl_drop_example_vector():
    full = np.full(20, 1e-4)
    full[:5] = (.50, .20, .10, .05, .05)
    masked = np.full(20, 1e-4)
    masked[:5] = (.30, .35, .12, .05, .05)
    # authors: max(.20 - .15 - .02 + 0 + 0, 0) = 0.03; paper text: .20 + 0 + 0 + 0 + 0 = 0.20
    assert drop_wl(full, masked, 5, "sum_then_clamp") == pytest.approx(0.03, abs=1e-12)
    assert drop_wl(full, masked, 5, "clamp_then_sum") == pytest.approx(0.20, abs=1e-12)
    # a rise everywhere: the authors clamp the sum at 0
    assert drop_for_classes(full, full * 1.1, [0, 1], "sum_then_clamp") == 0.0
    # STL-CL (one class): the two rules agree
    for c in range(5):
        assert drop_for_classes(full, masked, [c], "sum_then_clamp") == drop_for_classes(full, masked, [c])


def test_item1_top_class_ties():
    p = np.array([0.1, 0.3, 0.3, 0.2, 0.1])
    assert top_classes(p, 3, "sum_then_clamp").tolist() == [2, 1, 3]  # np.argsort(p)[::-1]
    assert top_classes(p, 3, "clamp_then_sum").tolist() == [1, 2, 3]


# -- item 2: exact drops rank the windows ---------------------------------------------------------
def test_item2_exact_drops_rank_windows():
    boxes = np.array([[0, 0, 9, 9], [20, 20, 29, 29], [40, 40, 49, 49]], float)
    drops = np.array([1.0e-6, 3.0e-6, 2.0e-6])
    for cfg in (AUTHORS, CORRECTED):
        assert pool_and_suppress(boxes, drops, cfg, (227, 227)).tolist() == [1, 2, 0]
    # rounding at 1e-4 (the old default) would tie them all and keep pooled order
    assert pool_and_suppress(boxes, drops, AUTHORS.replace(drop_resolution=1e-4), (227, 227)).tolist() == [0, 1, 2]
    # exact ties keep pooled order (stable sort)
    assert pool_and_suppress(boxes, np.zeros(3), AUTHORS, (227, 227)).tolist() == [0, 1, 2]


# -- item 3: segmentation order --------------------------------------------------------------------
def test_item3_k_outer_colour_inner(rng):
    from stl.core.segmentation import initial_segmentations

    img = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    names = [s.name for s in initial_segmentations(img, DEFAULT.segmentation)]
    assert names == ["hsv_k50", "lab_k50", "hsv_k100", "lab_k100"]


# -- item 4: pixel conventions ---------------------------------------------------------------------
def _two_region_map(width):
    """Region 1: columns 2 .. 2+width-1, rows 3..12 (10 rows); region 0 elsewhere."""
    lm = np.zeros((20, 20), np.int32)
    lm[3:13, 2:2 + width] = 1
    return lm


@pytest.mark.parametrize("width,authors_kept,inclusive_kept", [(5, False, True), (6, True, True), (4, False, False)])
def test_item4_min_box_side(width, authors_kept, inclusive_kept):
    a = segmentation_from_labels("s", _two_region_map(width), 5, "authors")
    c = segmentation_from_labels("s", _two_region_map(width), 5, "inclusive")
    assert bool(a.keep[1]) is authors_kept
    assert bool(c.keep[1]) is inclusive_kept


def test_item4_boxes_and_pixel_counts():
    lm = _two_region_map(6)  # region 1: x 2..7, y 3..12 -> 60 pixels
    a = segmentation_from_labels("s", lm, 5, "authors")
    c = segmentation_from_labels("s", lm, 5, "inclusive")
    assert c.boxes[1].tolist() == [2, 3, 7, 12] and c.sizes[1] == 60
    # authors: (xmin, ymin, xmax, ymax) = (2, 3, 7, 12) sliced [3:12, 2:7] -> 9 x 5 = 45 pixels
    assert a.boxes[1].tolist() == [2, 3, 6, 11] and a.sizes[1] == 45
    # given label maps may be 1-based with gaps: relabelled in increasing order
    b = segmentation_from_labels("s", lm * 7 + 3, 5, "authors")
    np.testing.assert_array_equal(b.labels, lm)


def test_item4_authors_nms_iou_on_normalised_exclusive_boxes():
    # pixel-inclusive [0, 0, 9, 9] and [5, 0, 14, 9]: PASCAL IoU = 50 / 150 = 1/3
    a, b = np.array([[0, 0, 9, 9]], float), np.array([[5, 0, 14, 9]], float)
    na, nb = normalized_exclusive(a, (227, 227)), normalized_exclusive(b, (227, 227))
    assert na[0].tolist() == [0.0, 0.0, 10 / 227, 10 / 227]
    assert iou_authors(na[0], nb)[0] == pytest.approx(1 / 3, abs=1e-12)
    assert iou_matrix(a, b)[0, 0] == pytest.approx(1 / 3, abs=1e-12)
    # a box inside another: kept iff IoU <= 0.5
    big, small = [0, 0, 19, 19], [0, 0, 19, 9]  # IoU exactly 1/2 -> kept (not > 0.5)
    keep = nms_authors(np.array([big, small], float), np.array([1.0, 0.5]), 0.5, (227, 227))
    assert keep.tolist() == [0, 1]
    keep = nms_authors(np.array([big, [0, 0, 19, 10]], float), np.array([1.0, 0.5]), 0.5, (227, 227))
    assert keep.tolist() == [0]


class RecordingNet(Classifier):
    """Probability of class 0 = mean of the image's red channel / 255; records its inputs."""

    def __init__(self, size=(20, 20), mask_color=(122.68, 116.67, 104.01)):
        self.input_size = size
        self.classes = ClassList(["a", "b"], ["a", "b"])
        self.mask_color = np.asarray(mask_color, np.float32)
        self.seen = []

    def forward(self, images, outputs=(PROB, FEATURE)):
        images = np.asarray(images, np.float32)
        self.seen.extend(images)
        p0 = images[..., 0].mean(axis=(1, 2)) / 255.0
        out = {PROB: np.stack([p0, 1 - p0], 1), FEATURE: images.reshape(len(images), -1)[:, :4] + 1.0}
        return {k: out[k] for k in outputs}


def test_item4_and_5_mask_out_rectangle_and_colour():
    net = RecordingNet()
    img = np.full((20, 20, 3), 200, np.uint8)
    for cfg, box, colour in ((AUTHORS, (2, 3, 6, 11), (122, 116, 104)),
                             (CORRECTED, (2, 3, 7, 12), (122.68, 116.67, 104.01))):
        ctx = ImageContext(img, net, cfg, label_maps=[_two_region_map(6)])
        seg = ctx.segmentations[0]
        assert tuple(seg.boxes[1]) == box
        masked = ctx.masked_image(ctx.mask_key(0, seg.boxes[1], (1,)))
        x0, y0, x1, y1 = box
        np.testing.assert_allclose(masked[y0:y1 + 1, x0:x1 + 1], np.broadcast_to(np.float32(colour), (y1 - y0 + 1,
                                                                                                   x1 - x0 + 1, 3)))
        outside = np.ones((20, 20), bool)
        outside[y0:y1 + 1, x0:x1 + 1] = False
        assert np.all(masked[outside] == 200)
        # and through the classifier's forward_masked (what STL calls)
        out = net.forward_masked(ctx.image[None], [0], [box], (PROB,), ctx.mask_color)
        assert out[PROB][0, 0] == pytest.approx(masked[..., 0].mean() / 255, rel=1e-6)


def test_item5_caffe_mask_colour_from_the_real_mean(shared_dir):
    mean = np.load(shared_dir / "models" / "caffe" / "ilsvrc_2012_mean.npy")
    pre = CaffePreprocessing(mean, (227, 227), "authors_row255")
    g = pre.mask_color_rgb
    np.testing.assert_allclose(g, [122.68, 116.67, 104.01], atol=0.01)
    np.testing.assert_array_equal(np.floor(g), [122, 116, 104])


# -- item 6: resize to the network input -----------------------------------------------------------
def test_item6_skimage_bilinear_constant_border():
    img = np.full((2, 2, 3), 100, np.uint8)
    # source coordinate r = (i + 0.5) * 2 / 4 - 0.5: i=0 -> -0.25 = 0.25 * border(0) + 0.75 * a[0]
    out = resize_to_input(img, (4, 4), "skimage_bilinear")
    assert out.dtype == np.uint8
    expect = np.array([[56, 75, 75, 56], [75, 100, 100, 75], [75, 100, 100, 75], [56, 75, 75, 56]])
    np.testing.assert_array_equal(out[..., 0], expect)
    np.testing.assert_array_equal(resize_to_input(img, (4, 4), "antialiased")[..., 0], np.full((4, 4), 100))
    # no anti-aliasing when shrinking: a 1-px stripe pattern is sampled, not averaged
    stripes = np.zeros((8, 8, 3), np.uint8)
    stripes[:, ::2] = 255
    small = resize_to_input(stripes, (4, 4), "skimage_bilinear")[..., 0]
    # r = (j + 0.5) * 2 - 0.5 = 2j + 0.5: halfway between a white and a black column
    np.testing.assert_array_equal(small, np.full((4, 4), 128))
    # the image is used as is when it already has the input size
    np.testing.assert_array_equal(resize_to_input(stripes, (8, 8), "skimage_bilinear"), stripes)


# -- item 7: the s_app crop ------------------------------------------------------------------------
def test_item7_center_square():
    crop = np.arange(5 * 53).reshape(5, 53)
    np.testing.assert_array_equal(center_square(crop), crop[:, 24:29])  # (53 - 5) // 2 = 24
    tall = np.arange(7 * 2).reshape(7, 2)
    np.testing.assert_array_equal(center_square(tall), tall[2:4])


def test_item7_crop_becomes_its_central_square():
    crop = np.zeros((10, 30, 3), np.float32)
    crop[:, 10:20] = 200.0  # the central 10x10 square is uniform, the sides are black
    sq = crop_to_input(crop, (10, 10), "center_square")
    np.testing.assert_allclose(sq, 200.0, atol=1e-4)
    warped = crop_to_input(crop, (10, 10), "warp")
    assert warped[:, 0].max() < 1.0  # the whole box: black sides survive
    # STL hands the classifier the raw crop of the box: ImageContext.crop_pixels
    net = RecordingNet(size=(20, 20))
    img = np.zeros((20, 20, 3), np.uint8)
    ctx = ImageContext(img, net, AUTHORS, label_maps=[np.zeros((20, 20), int)])
    assert ctx.crop_pixels((2, 3, 6, 11)).shape == (9, 5, 3)


# -- item 8: the authors' mean-subtraction bug ----------------------------------------------------
def test_item8_row255_mean(shared_dir):
    mean = np.load(shared_dir / "models" / "caffe" / "ilsvrc_2012_mean.npy").astype(np.float32)
    bug = CaffePreprocessing(mean, (227, 227), "authors_row255").mean_image_bgr
    good = CaffePreprocessing(mean, (227, 227), "image").mean_image_bgr
    for y in (0, 100, 226):
        np.testing.assert_array_equal(bug[:, y, :], mean[:, 255, 14:241])
    np.testing.assert_array_equal(good, mean[:, 14:241, 14:241])
    diff = np.abs(bug - good)
    assert diff.mean() == pytest.approx(4.7, abs=0.1)
    assert diff.max() == pytest.approx(14, abs=1.0)
