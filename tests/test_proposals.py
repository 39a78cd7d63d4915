"""Proposal methods other than STL: SELSEARCH, EDGEBOXES, BING (OpenCV), MCG /
PRECOMPUTED (files), SLIDING-WINDOW and OCCLUSION-BOX (CNN baselines) and the
STL-WL+X fusions. Real images (skimage, ../shared); CNN tests use tiny grids."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from skimage import data

from stl.models.base import FEATURE, LOGITS, PROB, Classifier, ClassList
from stl.proposals import ProposalMethod, available_methods, build_method
from stl.proposals.cnn_baselines import occluder_boxes, sliding_window_boxes
from stl.proposals.fusion import FusionMethod
from stl.proposals.opencv_methods import MissingModelError, edge_boxes_from_maps, find_bing_models

TINY = [np.zeros((1, 1, 3), np.uint8), np.full((3, 3), 200, np.uint8), np.zeros((1, 7), np.uint8),
        np.zeros((20, 2, 3), np.uint8)]


def check_valid(boxes, scores, size, min_count=1):
    """Ranked, finite, pixel-inclusive boxes inside an (H, W) image."""
    h, w = size
    boxes = np.asarray(boxes)
    scores = np.asarray(scores)
    assert boxes.dtype == np.float64 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert scores.shape == (len(boxes),)
    assert len(boxes) >= min_count
    assert np.isfinite(boxes).all() and np.isfinite(scores).all()
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w - 1).all() and (boxes[:, 3] <= h - 1).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    assert (np.diff(scores) <= 0).all(), "scores must be ranked best first"


def same(a, b):
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.fixture(scope="module")
def chelsea():
    return data.chelsea()  # 300 x 451 RGB


@pytest.fixture(scope="module")
def ilsvrc_image(ilsvrc_dir):
    from stl.io import read_image

    files = sorted((ilsvrc_dir / "val").glob("*.JPEG"))
    if not files:
        pytest.skip("no ILSVRC images in ../shared")
    return read_image(files[0])


# -- a classifier with known outputs --------------------------------------------------

class StubClassifier(Classifier):
    """f(x) over 10 classes from m = mean(x) / 255:
    p = [0.6 m, 0.6 (1 - m), 0.05 x 8]. Records every batch it sees."""

    name = "stub"

    def __init__(self, input_size=(8, 8), mask_color=0.0):
        self.input_size = input_size
        self.classes = ClassList([f"c{i}" for i in range(10)], [f"class {i}" for i in range(10)])
        self.mask_color = np.full(3, mask_color, np.float32)
        self.seen = []

    @staticmethod
    def prob_of(m):
        m = np.asarray(m, np.float64).reshape(-1, 1)
        return np.concatenate([0.6 * m, 0.6 * (1 - m), np.full((len(m), 8), 0.05)], axis=1)

    def forward(self, images, outputs=(PROB, FEATURE)):
        images = np.asarray(images, np.float32)
        self.seen.extend(images.copy())
        m = images.reshape(len(images), -1).mean(axis=1) / 255.0
        p = self.prob_of(m).astype(np.float32)
        out = {PROB: p, LOGITS: np.log(np.maximum(p, 1e-12)),
               FEATURE: np.stack([m, 1 - m, np.ones_like(m)], 1).astype(np.float32)}
        return {k: out[k] for k in outputs}


def half_white(size=16):
    """Left half white (255), right half black."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:, : size // 2] = 255
    return img


# -- registry ---------------------------------------------------------------------------

def test_all_methods_registered():
    names = set(available_methods())
    for n in ("SELSEARCH", "SELSEARCH-OPENCV", "EDGEBOXES", "BING", "MCG", "PRECOMPUTED", "SLIDING-WINDOW",
              "OCCLUSION-BOX", "STL-WL+MCG", "STL-WL+EDGEBOXES", "EDGEBOXES-PUBLISHED", "MCG-PUBLISHED"):
        assert n in names


# -- Selective Search -------------------------------------------------------------------

def test_selective_search_real_image_deterministic(chelsea):
    ss = build_method("SELSEARCH-OPENCV")
    a = ss.propose(chelsea)
    check_valid(*a, chelsea.shape[:2], min_count=100)
    np.testing.assert_array_equal(a[1], np.arange(len(a[1]), 0, -1))  # score = descending rank
    assert len(np.unique(a[0], axis=0)) == len(a[0])  # OpenCV removes duplicate boxes
    # OpenCV ranks with the C library's rand(): without our srand() two calls would differ
    b = build_method("SELSEARCH-OPENCV").propose(chelsea)
    assert same(a, b)


def test_selective_search_max_side_and_gray(ilsvrc_image):
    ss = build_method("SELSEARCH-OPENCV", max_side=100)
    boxes, scores = ss.propose(ilsvrc_image)
    check_valid(boxes, scores, ilsvrc_image.shape[:2], min_count=10)
    assert boxes[:, 2].max() > 200  # mapped back to the 227 px original
    gray = ilsvrc_image.mean(axis=2).astype(np.uint8)
    check_valid(*ss.propose(gray), gray.shape)


def test_selective_search_tiny_images():
    ss = build_method("SELSEARCH-OPENCV")
    for im in TINY:
        boxes, scores = ss.propose(im)
        check_valid(boxes, scores, im.shape[:2])


# -- BING ---------------------------------------------------------------------------------

def test_bing_real_image(shared_dir, ilsvrc_image, chelsea):
    bing = build_method("BING")
    a = bing.propose(ilsvrc_image)
    check_valid(*a, ilsvrc_image.shape[:2], min_count=100)
    assert len(np.unique(a[0], axis=0)) == len(a[0])
    bing.propose(chelsea)
    assert same(a, bing.propose(ilsvrc_image))
    assert same(a, build_method("BING").propose(ilsvrc_image))
    # MAXBGR alone: OpenCV's rank codes are 300, 301, ... (negated as scores)
    assert a[1][0] == -300.0
    allv = build_method("BING", variants="all").propose(chelsea)
    check_valid(*allv, chelsea.shape[:2], min_count=100)


def test_bing_tiny_images(shared_dir):
    bing = build_method("BING")
    for im in TINY:
        boxes, scores = bing.propose(im)
        check_valid(boxes, scores, im.shape[:2], min_count=0)


def test_bing_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(MissingModelError, match="make models"):
        build_method("BING", model_dir=tmp_path)
    monkeypatch.setenv("STL_BING_MODELS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ObjNessB2W8MAXBGR"):
        find_bing_models()


# -- EdgeBoxes ----------------------------------------------------------------------------

def test_edgeboxes_without_model_raises_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("STL_EDGEBOXES_MODEL", raising=False)
    monkeypatch.setenv("STL_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("STL_SHARED", str(tmp_path / "shared"))
    with pytest.raises(MissingModelError, match=r"Structured Edge model.*make models"):
        build_method("EDGEBOXES")
    monkeypatch.setenv("STL_EDGEBOXES_MODEL", str(tmp_path / "nope.yml.gz"))
    with pytest.raises(FileNotFoundError, match="nope.yml.gz"):
        build_method("EDGEBOXES")


def test_edgeboxes_box_conversion_on_an_edge_map():
    """The EdgeBoxes stage (OpenCV 5 returns boxes and scores) on a hand-made edge map."""
    import cv2

    e = np.zeros((120, 160), np.float32)
    cv2.rectangle(e, (40, 30), (99, 89), 1.0, 1)
    e = cv2.GaussianBlur(e, (3, 3), 0)
    o = np.mod(np.arctan2(cv2.Sobel(e, cv2.CV_32F, 0, 1), cv2.Sobel(e, cv2.CV_32F, 1, 0)), np.pi).astype(np.float32)
    boxes, scores = edge_boxes_from_maps(e, o, (120, 160), max_boxes=50)
    check_valid(boxes, scores, (120, 160), min_count=1)
    assert scores[0] > 0
    with pytest.raises(TypeError):
        edge_boxes_from_maps(e, o, (120, 160), alfa=0.5)


def test_edgeboxes_real_model_if_installed(chelsea):
    from stl.proposals.opencv_methods import find_edgeboxes_model

    try:
        find_edgeboxes_model()
    except MissingModelError:
        pytest.skip("Structured Edge model not installed (make models); not reachable offline")
    eb = build_method("EDGEBOXES")
    a = eb.propose(chelsea)
    check_valid(*a, chelsea.shape[:2], min_count=100)
    assert same(a, eb.propose(chelsea))
    for im in TINY:
        check_valid(*eb.propose(im), im.shape[:2], min_count=0)


# -- MCG / PRECOMPUTED ----------------------------------------------------------------------

def write_mat(path: Path, **variables):
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), variables)


def test_mcg_reads_hosang_mat_files(tmp_path, chelsea):
    # Hosang's layout: <root>/<id[:4]>/<id>.mat, 1-based [x0 y0 x1 y1]; scores not sorted here
    boxes = np.array([[1, 1, 451, 300], [11, 21, 110, 220], [400, 250, 600, 400]], np.float64)
    write_mat(tmp_path / "ILSV" / "ILSVRC2012_val_00000001.mat", boxes=boxes, scores=np.array([[0.2], [0.9], [0.5]]),
              num_candidates=3)
    mcg = build_method("MCG", root=tmp_path)
    assert mcg.needs_image_id and mcg.name == "MCG"
    b, s = mcg.propose(chelsea, image_id="val/ILSVRC2012_val_00000001.JPEG")
    np.testing.assert_array_equal(s, [0.9, 0.5, 0.2])
    np.testing.assert_array_equal(b, [[10, 20, 109, 219], [399, 249, 450, 299], [0, 0, 450, 299]])
    check_valid(b, s, chelsea.shape[:2])
    # without the image nothing is clipped; the batch API takes image_ids
    (b2, _), = mcg.propose_batch([None], image_ids=["ILSVRC2012_val_00000001"])
    np.testing.assert_array_equal(b2[1], [399, 249, 599, 399])
    with pytest.raises(ValueError, match="image_id"):
        mcg.propose(chelsea)
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_val_00000002"):
        mcg.propose(chelsea, image_id="ILSVRC2012_val_00000002")
    empty = build_method("MCG", root=tmp_path, missing="empty").propose(chelsea, image_id="other")
    assert empty[0].shape == (0, 4)


def test_mcg_native_order_and_struct(tmp_path, monkeypatch):
    # raw MCG output: candidates.bboxes = [y0 x0 y1 x1] (1-based), file order = ranking
    bb = np.array([[21, 11, 220, 110], [1, 1, 5, 9]], np.float64)
    write_mat(tmp_path / "img1.mat", candidates={"bboxes": bb, "scores": np.array([[0.7], [0.3]])})
    write_mat(tmp_path / "img2.mat", boxes=bb)  # no scores; forced yxyx
    monkeypatch.setenv("STL_MCG_DIR", str(tmp_path))
    mcg = build_method("MCG")
    b, s = mcg.propose(np.zeros((300, 400, 3), np.uint8), image_id="img1")
    np.testing.assert_array_equal(b, [[10, 20, 109, 219], [0, 0, 8, 4]])
    b, s = build_method("MCG", box_order="yxyx").propose(None, image_id="img2")
    np.testing.assert_array_equal(b, [[10, 20, 109, 219], [0, 0, 8, 4]])
    np.testing.assert_array_equal(s, [2, 1])
    b, _ = build_method("MCG").propose(None, image_id="img2")  # "boxes" -> xyxy
    np.testing.assert_array_equal(b[0], [20, 10, 219, 109])


def test_precomputed_generic_and_path_ids(tmp_path, monkeypatch):
    from PIL import Image

    np.savez(tmp_path / "cat.npz", boxes=np.array([[0.0, 0, 4, 4]]), scores=np.array([1.0]))
    img_path = tmp_path / "cat.png"
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(img_path)
    m = build_method("PRECOMPUTED", root=tmp_path, one_based=False)
    b, _ = m.propose(str(img_path))  # id from the file name; clipped to the 3x3 image
    np.testing.assert_array_equal(b, [[0, 0, 2, 2]])
    with pytest.raises(ValueError, match="root"):
        monkeypatch.delenv("STL_PRECOMPUTED_DIR", raising=False)
        build_method("PRECOMPUTED")
    for im in TINY:  # clipping to tiny images
        check_valid(*m.propose(im, image_id="cat"), im.shape[:2])


# -- CNN baselines ------------------------------------------------------------------------------

def test_occlusion_drop_matches_hand_computation():
    clf = StubClassifier(input_size=(8, 8), mask_color=0.0)
    occ = build_method("OCCLUSION-BOX", classifier=clf, occluders=[(4, 2)], nms_iou=None)
    boxes, scores = occ.propose(half_white(16))
    # f(x): m = 0.5 -> p = [.3, .3, .05 ...], top-5 = classes 0..4. An occluder covering w of
    # the 32 white input pixels gives m' = (32 - w)/64 and a drop .3 - .6 m' = .6 w / 64.
    # 4x4 occluders at x, y in {0, 2, 4}: w = 16 at x = 0, 8 at x = 2, 0 at x = 4.
    np.testing.assert_allclose(scores, [0.15] * 3 + [0.075] * 3 + [0.0] * 3, atol=1e-6)
    np.testing.assert_array_equal(boxes[:3], [[0, 0, 7, 7], [0, 4, 7, 11], [0, 8, 7, 15]])  # x2 to the original
    np.testing.assert_array_equal(boxes[3:6, 0], [4, 4, 4])
    # the classifier saw f(x) first, then the masked images (box filled with mask_color)
    assert len(clf.seen) == 1 + 9
    assert (clf.seen[1][0:4, 0:4] == 0).all() and (clf.seen[1][4:, :4] == 255).all()
    in_boxes, drops, p_full = occ.drops(half_white(16))
    np.testing.assert_allclose(p_full[:2], [0.3, 0.3], atol=1e-6)
    # default NMS (IoU > 0.5) keeps a subset, still ranked
    kept = build_method("OCCLUSION-BOX", classifier=StubClassifier(), occluders=[(4, 2)]).propose(half_white(16))
    check_valid(*kept, (16, 16))
    assert len(kept[0]) <= 9 and kept[1][0] == pytest.approx(0.15)


def test_sliding_window_scores_crops_by_top5():
    clf = StubClassifier(input_size=(8, 8))
    sw = build_method("SLIDING-WINDOW", classifier=clf, scales=(0.5, 1.0), aspect_ratios=(1.0,), stride_fraction=1.0,
                      nms_iou=None)
    boxes, scores = sw.propose(half_white(16))
    # 8x8 windows: m = 1 (left) or 0 (right) -> top-5 = .6 + 4 x .05 = .8; whole image m = .5 -> .3+.3+3x.05
    np.testing.assert_allclose(scores, [0.8] * 4 + [0.75], atol=1e-6)
    np.testing.assert_array_equal(boxes, [[0, 0, 7, 7], [8, 0, 15, 7], [0, 8, 7, 15], [8, 8, 15, 15], [0, 0, 15, 15]])
    assert all(im.shape == (8, 8, 3) for im in clf.seen)  # crops warped to the input size
    img_scored = build_method("SLIDING-WINDOW", classifier=StubClassifier(), scales=(0.5,), aspect_ratios=(1.0,),
                              stride_fraction=1.0, score_classes="image", nms_iou=None).propose(half_white(16))
    np.testing.assert_allclose(img_scored[1], [0.75] * 4, atol=1e-6)


def test_default_grids():
    sw = sliding_window_boxes((227, 227))
    assert 300 <= len(sw) <= 400 and len(np.unique(sw, axis=0)) == len(sw)
    check_valid(sw, np.zeros(len(sw)), (227, 227))
    assert [0, 0, 226, 226] in sw.tolist()
    occ = occluder_boxes((227, 227))
    assert len(occ) == 18 * 18 + 11 * 11 + 9 * 9 + 6 * 6 + 4 * 4 + 3 * 3 + 2 * 2
    check_valid(occ, np.zeros(len(occ)), (227, 227))
    assert len(occluder_boxes((224, 224))) == len(occ)


def test_cnn_baselines_tiny_images_and_need_classifier():
    with pytest.raises(ValueError, match="classifier"):
        build_method("SLIDING-WINDOW")
    with pytest.raises(ValueError, match="classifier"):
        build_method("OCCLUSION-BOX")
    sw = build_method("SLIDING-WINDOW", classifier=StubClassifier())
    occ = build_method("OCCLUSION-BOX", classifier=StubClassifier())
    for im in TINY:
        check_valid(*sw.propose(im), im.shape[:2])
        check_valid(*occ.propose(im), im.shape[:2])


def test_cnn_baselines_on_lite0(lite0, ilsvrc_image):
    sw = build_method("SLIDING-WINDOW", classifier=lite0, scales=(0.6, 1.0), aspect_ratios=(1.0,),
                      stride_fraction=0.7)
    a = sw.propose(ilsvrc_image)
    check_valid(*a, ilsvrc_image.shape[:2])
    assert 0 < a[1][0] <= 1.0 + 1e-5
    assert same(a, sw.propose(ilsvrc_image))
    occ = build_method("OCCLUSION-BOX", classifier=lite0, occluders=[(112, 112)])
    b = occ.propose(ilsvrc_image)
    check_valid(*b, ilsvrc_image.shape[:2])
    assert same(b, occ.propose(ilsvrc_image))
    assert b[1][0] > 0


# -- fusion ----------------------------------------------------------------------------------------

class Fixed(ProposalMethod):
    def __init__(self, name, boxes):
        self.name = name
        self.boxes = np.asarray(boxes, np.float64)

    def propose(self, image, labels=None, image_id=None):
        return self.boxes, np.linspace(1, 0.5, len(self.boxes))


def test_fusion_order():
    first = Fixed("A", [[i, i, i + 1, i + 1] for i in range(15)])
    second = Fixed("B", [[100 + i, 0, 110 + i, 5] for i in range(4)])
    f = FusionMethod(first, second, k=10)
    boxes, scores = f.propose(np.zeros((5, 5, 3)))
    assert len(boxes) == 14
    np.testing.assert_array_equal(boxes[:10], first.boxes[:10])
    np.testing.assert_array_equal(boxes[10:], second.boxes)
    assert (np.diff(scores) < 0).all()
    from stl.proposals import ranked

    assert same(ranked(boxes, scores), (boxes, scores))
    assert f.name == "A+B" and not f.needs_image_id


def test_stl_wl_plus_mcg_end_to_end(tmp_path, chelsea):
    write_mat(tmp_path / "cat.mat", boxes=np.array([[1, 1, 10, 10], [5, 5, 50, 50]], np.float64),
              scores=np.array([0.9, 0.1]))
    clf = StubClassifier(input_size=(32, 32), mask_color=127.5)
    assert build_method("STL-WL+MCG", classifier=clf, root=tmp_path).k == 10
    f = build_method("STL-WL+MCG", classifier=clf, root=tmp_path, k=5)
    assert f.name == "STL-WL+MCG" and f.needs_image_id and f.uses_classifier
    small = chelsea[::6, ::6]
    stl_boxes, _ = build_method("STL-WL", classifier=clf).propose(small)
    assert len(stl_boxes) > 5
    (boxes, scores), = f.propose_batch([small], image_ids=["cat"])
    np.testing.assert_array_equal(boxes[:5], stl_boxes[:5])
    np.testing.assert_array_equal(boxes[5:], [[0, 0, 9, 9], [4, 4, 49, 49]])
    check_valid(boxes, scores, small.shape[:2])
    assert same((boxes, scores), f.propose(small, image_id="cat"))


def test_stl_wl_plus_edgeboxes_needs_the_model(tmp_path, monkeypatch):
    monkeypatch.delenv("STL_EDGEBOXES_MODEL", raising=False)
    monkeypatch.setenv("STL_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("STL_SHARED", str(tmp_path))
    with pytest.raises(MissingModelError):
        build_method("STL-WL+EDGEBOXES", classifier=StubClassifier())


# -- declared traits and options ----------------------------------------------------------------------

def test_every_method_declares_its_traits_and_the_built_method_agrees(tmp_path):
    from stl.proposals import TRAITS, method_traits

    expected = {  # what the paper's methods need
        "STL-CL": (True, True, False), "STL-WL": (True, False, False), "WHOLE-IMAGE": (False, False, False),
        "CENTER": (False, False, False), "SELSEARCH": (False, False, False), "BING": (False, False, False),
        "EDGEBOXES": (False, False, False), "SLIDING-WINDOW": (True, False, False),
        "OCCLUSION-BOX": (True, False, False), "MCG": (False, False, True), "PRECOMPUTED": (False, False, True),
        "STL-WL+MCG": (True, False, True), "STL-WL+EDGEBOXES": (True, False, False),
    }
    for name, traits in expected.items():
        assert tuple(method_traits(name)[t] for t in TRAITS) == traits, name
    clf = StubClassifier()
    for name in ("STL-CL", "STL-WL", "WHOLE-IMAGE", "CENTER", "SELSEARCH", "SLIDING-WINDOW", "OCCLUSION-BOX"):
        m = build_method(name, classifier=clf) if expected[name][0] else build_method(name)
        assert tuple(getattr(m, t) for t in TRAITS) == expected[name], name
    m = build_method("MCG", root=tmp_path)
    assert (m.uses_classifier, m.needs_label, m.needs_image_id) == expected["MCG"]


def test_a_misspelt_option_is_an_error_naming_the_valid_ones(tmp_path):
    with pytest.raises(TypeError, match=r"'fractoin'.*valid: fraction"):
        build_method("CENTER", fractoin=0.5)
    with pytest.raises(TypeError, match=r"'classifier'.*valid: \(none\)"):
        build_method("WHOLE-IMAGE", classifier=StubClassifier())
    with pytest.raises(TypeError, match=r"'max_sde'.*max_side"):
        build_method("SELSEARCH", max_sde=100)
    with pytest.raises(TypeError, match=r"'configg'.*classifier, config, progress"):
        build_method("STL-WL", classifier=StubClassifier(), configg=None)
    with pytest.raises(TypeError, match=r"'rot'.*root"):
        build_method("MCG", rot=tmp_path)
    with pytest.raises(TypeError, match=r"'alpah'"):
        build_method("STL-WL+EDGEBOXES", classifier=StubClassifier(), alpah=0.5)
    assert build_method("CENTER", fraction=0.5).fraction == 0.5


def test_a_factory_swallowing_options_cannot_register():
    from stl.proposals import register_method

    with pytest.raises(TypeError, match="takes \\*\\*kwargs"):
        @register_method("SWALLOWS-TEST")
        class Swallows(ProposalMethod):
            def __init__(self, a=1, **_):
                pass


def test_build_run_method_builds_once_and_asks_for_the_classifier_only_when_declared():
    from stl.core.config import STLConfig
    from stl.proposals import build_run_method

    asked = []

    def get_classifier():
        asked.append(1)
        return StubClassifier()

    assert build_run_method("CENTER", get_classifier).name == "CENTER" and not asked
    cfg = STLConfig(nms_iou=0.3)
    m = build_run_method("STL-CL", get_classifier, cfg)
    assert m.needs_label and m.config is cfg and len(asked) == 1
    sw = build_run_method("SLIDING-WINDOW", get_classifier, cfg)  # takes no config: not given one
    assert sw.uses_classifier and len(asked) == 2
