"""STL agglomeration: one hand-computed hierarchy with a stub classifier, determinism,
batching independence and bad inputs."""
import numpy as np
import pytest

from stl.core.config import DEFAULT, SegmentationConfig
from stl.core.localization import localize, localize_batch

from stl.models.base import FEATURE, LOGITS, PROB
from stubs import A_RGB, B_RGB, C_RGB, StubClassifier, three_block_context


def test_hand_computed_hierarchy():
    """Worked by hand (image 300 px, regions A|B|C of 100 px, STL-CL on class 0):
    drops d_A = 0.9 - 0.1 = 0.8, d_B = d_C = 0.
    s(A,B) = 1/4 (s_drop 0.2 + s_app 0.1364 + s_size 1/3 + s_fill 1)   = 0.4174
    s(B,C) = 1/4 (1 + 0.9091 + 1/3 + 1)                                 = 0.8106  <- merged first (D)
    s(A,C) = 1/4 (0.2 + 0.1364 + 1/3 + 2/3)                             = 0.3341
    then A+D -> E (the whole image, d = 0.8). Windows by drop: A 0.8, E 0.8, B, C, D 0;
    NMS (> 0.5): D overlaps E by 200/300 -> removed; B and D overlap exactly 0.5 -> kept.
    """
    clf = StubClassifier()
    ctx = three_block_context(clf)
    w = localize_batch([ctx], clf, [0])[0]
    np.testing.assert_allclose(w.input_boxes, [[0, 0, 9, 9], [0, 0, 29, 9], [10, 0, 19, 9], [20, 0, 29, 9]])
    np.testing.assert_allclose(w.scores, [0.8, 0.8, 0.0, 0.0], atol=1e-12)
    assert w.level.tolist() == [0, 2, 0, 0]
    # forwards: 1 full image + 3 masks + 3 crops + 2 merges x (mask + crop)
    assert w.num_forwards == 1 + 6 + 4


def test_first_merge_similarities_match_eq4():
    from stl.core.localization import _similarity_row
    from stl.core.similarity import l1_normalize

    clf = StubClassifier()
    ctx = three_block_context(clf)
    drops = np.array([0.8, 0.0, 0.0])
    hists = l1_normalize(np.array([A_RGB, B_RGB, C_RGB], float))
    boxes = ctx.segmentations[0].boxes
    sizes = ctx.segmentations[0].sizes.astype(float)
    row = _similarity_row(ctx, 0, np.array([1, 2]), drops, hists, boxes, sizes, None)
    np.testing.assert_allclose(row, [0.25 * (0.2 + 3 * 10 / 220 + 1 / 3 + 1), 0.25 * (0.2 + 3 * 10 / 220 + 1 / 3 + 2 / 3)])
    row_bc = _similarity_row(ctx, 1, np.array([2]), drops, hists, boxes, sizes, None)
    np.testing.assert_allclose(row_bc, [0.25 * (1 + 200 / 220 + 1 / 3 + 1)])


def test_wl_uses_top_classes_and_boxes_map_to_original_size():
    clf = StubClassifier()
    img = np.zeros((20, 60, 3), np.uint8)
    img[:, :20], img[:, 20:40], img[:, 40:] = A_RGB, B_RGB, C_RGB
    w = localize(img, clf, None, DEFAULT.replace(segmentation=SegmentationConfig(ks=(50,), color_spaces=("rgb",))))
    assert w.target_classes == [0, 1]
    assert w.image_size == (20, 60)
    assert w.boxes[:, 2].max() <= 59 and w.boxes[:, 3].max() <= 19


def test_adjacent_merge_option_runs_and_segment_mask_option():
    clf = StubClassifier()
    for cfg in (DEFAULT.replace(merge_pairs="adjacent"), DEFAULT.replace(mask_mode="segment")):
        ctx = three_block_context(clf, cfg)
        w = localize_batch([ctx], clf, [0], cfg)[0]
        assert w.scores[0] == pytest.approx(0.8)


def test_several_labels_pool_hierarchies():
    """STL-CL with two labels: one hierarchy per class, pooled, then NMS (Sec. 3). Class 0
    reacts to region A, class 1 to region C (TwoClassStub). Worked by hand:
    class 0: windows A 0.8, E (whole image) 0.8, B, C, B+C 0 (test_hand_computed_hierarchy);
    class 1: d_C = 0.8, d_A = d_B = 0; s(A,B) = 1/4 (1 + 0.1364 + 1/3 + 1) = 0.6174 beats
    s(B,C) = 1/4 (0.2 + 0.9091 + 1/3 + 1) = 0.6106, so A+B merges first (drop 0), then the
    whole image (0.8): windows C 0.8, E 0.8, A, B, A+B 0.
    Pooled at drop 0.8: A (class 0), C (class 1) and E once (the two copies overlap fully).
    A run whose second hierarchy contributed nothing would miss C at 0.8 with class 1."""
    clf = TwoClassStub()
    ctx = three_block_context(clf)
    w = localize_batch([ctx], clf, [["n0", "n1"]])[0]
    top = {tuple(b): int(lab) for b, s, lab in zip(w.input_boxes.tolist(), w.scores, w.label) if s > 0.7}
    assert set(top) == {(0, 0, 9, 9), (20, 0, 29, 9), (0, 0, 29, 9)}
    assert top[(0, 0, 9, 9)] == 0 and top[(20, 0, 29, 9)] == 1
    np.testing.assert_allclose(np.sort(w.scores)[::-1][:3], [0.8, 0.8, 0.8], atol=1e-12)
    assert (w.scores[3:] < 0.7).all()
    # each pooled window comes from the single-label run of its class
    single = {c: localize_batch([three_block_context(clf)], clf, [c])[0] for c in (0, 1)}
    for b, s, lab in zip(w.input_boxes.tolist(), w.scores, w.label):
        ref = single[int(lab)]
        assert any(rb == b and abs(rs - s) < 1e-12 for rb, rs in zip(ref.input_boxes.tolist(), ref.scores)), (b, lab)
    assert single[1].input_boxes[:2].tolist() in ([[20, 0, 29, 9], [0, 0, 29, 9]], [[0, 0, 29, 9], [20, 0, 29, 9]])


class TwoClassStub(StubClassifier):
    """p0 = 0.1 + 0.8 * (visible pixels of A) / 100 as StubClassifier; p1 likewise for C
    (columns 20-29). (Not a distribution; STL only reads the two scores.)"""

    def forward(self, images, outputs=(PROB, FEATURE)):
        images = np.asarray(images, np.float64)
        self.calls.append(len(images))
        vis = [(images[:, :, cols].sum(axis=3) > 0).sum(axis=(1, 2)) / 100.0 for cols in (slice(0, 10), slice(20, 30))]
        prob = np.stack([0.1 + 0.8 * vis[0], 0.1 + 0.8 * vis[1]], 1)
        return {PROB: prob, FEATURE: images.mean(axis=(1, 2)), LOGITS: np.log(prob)}


def test_real_model_deterministic_and_batch_independent(lite0):
    from skimage import data

    img = data.chelsea()[::2, ::2]
    cfg = DEFAULT.replace(segmentation=SegmentationConfig(color_spaces=("hsv",), ks=(100,)))
    a = localize(img, lite0, None, cfg)
    b = localize(img, lite0, None, cfg.replace(batch_size=7))
    assert len(a) > 5
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    assert a.scores[0] > 0.3  # masking (almost) the whole cat hurts "cat" a lot
    assert np.all(np.diff(a.scores) <= DEFAULT.drop_resolution)  # ranked at drop_resolution


@pytest.mark.parametrize("kind", ["gray", "rgba", "uint16", "1x1", "flat"])
def test_odd_images_give_windows_not_tracebacks(kind):
    clf = StubClassifier()
    rng = np.random.default_rng(0)
    img = {
        "gray": rng.integers(0, 255, (15, 40), dtype=np.uint8),
        "rgba": rng.integers(0, 255, (15, 40, 4), dtype=np.uint8),
        "uint16": rng.integers(0, 65535, (15, 40, 3), dtype=np.uint16),
        "1x1": np.full((1, 1, 3), 90, np.uint8),
        "flat": np.full((30, 30, 3), 90, np.uint8),
    }[kind]
    w = localize(img, clf)
    assert len(w) >= 1
    assert (w.boxes[:, 2] < img.shape[1]).all() and (w.boxes[:, 3] < img.shape[0]).all()
