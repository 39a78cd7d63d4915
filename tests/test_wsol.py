"""stl.wsol: the WSOL benchmark's metrics on hand-computed cases, CAM / Grad-CAM on the real
EfficientNet-Lite0, RISE's determinism and behaviour on a toy classifier, the STL heatmap
rule, STL+'s re-ranking and the score-map files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from stl.wsol.heatmaps import (RISEConfig, RISEMasks, cam_maps, conv_head, normalize_map, rise_saliency,
                               stl_heatmap, to_scoremap)
from stl.wsol.metrics import (WSOLScores, box_ious, boxes_at_thresholds, cam_thresholds, iou_matrix, resize_box,
                              scoremap_ious)


# ----------------------------------------------------------------------------- metrics
def test_thresholds_and_box_mapping():
    t = cam_thresholds()
    assert len(t) == 100 and t[0] == 0 and abs(t[-1] - 0.99) < 1e-12
    # int(x * 224 / W) on all four coordinates (image 500 x 400)
    assert resize_box((100, 50, 399, 299), (500, 400)) == (44, 28, 178, 167)


def test_iou_uses_inclusive_pixels():
    assert iou_matrix([[0, 0, 9, 9]], [[0, 0, 4, 9]])[0, 0] == pytest.approx(0.5)
    assert iou_matrix([[0, 0, 9, 9]], [[10, 10, 19, 19]])[0, 0] == 0.0
    assert iou_matrix([[5, 5, 5, 5]], [[5, 5, 5, 5]])[0, 0] == 1.0  # one pixel


def two_blobs():
    s = np.zeros((224, 224))
    s[10:60, 20:100] = 1.0  # big blob: x 20..99, y 10..59
    s[150:170, 150:190] = 0.6  # small blob: x 150..189, y 150..169
    return s


def test_boxes_from_contours():
    s = two_blobs()
    # tau = 0: mask = pixels > 0; the benchmark's box is [x, y, x + w, y + h] (one past the end)
    (big,) = boxes_at_thresholds(s, [0.0], all_contours=False)
    assert big.tolist() == [[20, 10, 100, 60]]
    (both,) = boxes_at_thresholds(s, [0.0], all_contours=True)
    assert sorted(both.tolist()) == [[20, 10, 100, 60], [150, 150, 190, 170]]
    # tau = 0.7: level int(0.7 * 255) = 178 > uint8(0.6 * 255) = 153 -> the small blob is gone
    (hi,) = boxes_at_thresholds(s, [0.7], all_contours=True)
    assert hi.tolist() == [[20, 10, 100, 60]]
    # a pixel equal to the level is NOT in the mask (strictly greater, cv2.THRESH_BINARY)
    flat = np.zeros((224, 224))
    flat[100:110, 100:110] = 0.5  # uint8 127
    flat[0, 0] = 1.0  # max 255 -> level int(0.5 * 255) = 127
    (b,) = boxes_at_thresholds(flat, [0.5], all_contours=True)
    assert b.tolist() == [[0, 0, 1, 1]]
    # an empty map gives the box [0, 0, 0, 0]
    (z,) = boxes_at_thresholds(np.zeros((224, 224)), [0.3], all_contours=False)
    assert z.tolist() == [[0, 0, 0, 0]]
    with pytest.raises(ValueError):
        boxes_at_thresholds(s * 2, [0.5], False)


def test_v2_counts_every_contour_v1_only_the_largest():
    s = two_blobs()
    gt = [[150, 150, 190, 170]]  # exactly the small blob's box
    largest, every = scoremap_ious(s, gt)
    assert largest.max() == 0.0  # the largest contour is the big blob at every tau
    assert every[0] == 1.0 and every[int(0.7 * 100)] == 0.0  # small blob found at tau 0, gone at 0.7
    sc = WSOLScores()
    sc.add("a", largest, every, True)
    assert sc.max_box_acc() == 0.0
    assert sc.max_box_acc_v2() == pytest.approx(100.0)


def test_iou_thresholds_03_05_07():
    sc = WSOLScores()
    # a box method: IoU 0.6 with the ground truth (60 x 100 inside 100 x 100)
    largest, every = box_ious([0, 0, 59, 99], [[0, 0, 99, 99]], len(sc.thresholds))
    assert largest[0] == pytest.approx(0.6)
    sc.add("a", largest, every, True)
    assert sc.max_box_acc_at(0.3) == 100 and sc.max_box_acc_at(0.5) == 100 and sc.max_box_acc_at(0.7) == 0
    assert sc.max_box_acc_v2() == pytest.approx(200 / 3)
    assert sc.max_box_acc() == 100


def test_each_iou_threshold_picks_its_own_best_tau():
    sc = WSOLScores(thresholds=np.array([0.1, 0.2, 0.3]))
    sc.add("a", [0.8, 0.4, 0.0], [0.8, 0.4, 0.0], True)
    sc.add("b", [0.0, 0.6, 0.9], [0.0, 0.6, 0.9], False)
    # delta 0.3: best tau 0.2 (100); 0.5: 50; 0.7: 50 -> 66.7; one common tau would give 50
    assert sc.max_box_acc_v2() == pytest.approx(200 / 3)
    assert sc.max_box_acc() == 50.0
    assert sc.best_threshold() == 0.1  # first maximum
    # Top-1 Loc at tau* = 0.1: image a hits and its class is right; b misses
    assert sc.top1_loc() == 50.0 and sc.gt_known_loc() == 50.0
    sub = sc.subset(["b"])
    assert len(sub) == 1 and sub.max_box_acc() == 100.0 and sub.top1_loc() == 0.0


def test_top1_loc_needs_the_right_class():
    sc = WSOLScores()
    n = len(sc.thresholds)
    sc.add("a", np.ones(n), np.ones(n), True)
    sc.add("b", np.ones(n), np.ones(n), False)
    assert sc.gt_known_loc() == 100.0 and sc.top1_loc() == 50.0


# ----------------------------------------------------------------------------- score maps
def test_scoremap_normalisation():
    m = normalize_map(np.array([[2.0, 4.0], [6.0, 10.0]]))
    assert m.min() == 0 and m.max() == 1 and m[0, 1] == pytest.approx(0.25)
    assert not normalize_map(np.full((3, 3), 7.0)).any()
    s = to_scoremap(np.random.default_rng(0).random((7, 7)))
    assert s.shape == (224, 224) and s.dtype == np.float64 and s.min() == 0 and s.max() == 1


# ----------------------------------------------------------------------------- CAM / Grad-CAM
@pytest.fixture(scope="module")
def chelsea_input():
    from skimage import data

    from stl.core.localization import resize_to_input

    return resize_to_input(data.chelsea(), (224, 224)).astype(np.float32)[None]


def test_cam_is_features_times_classifier_weights(lite0, chelsea_input):
    import torch

    from stl.models.base import LOGITS
    from stl.models.efficientnet import MEAN, STD

    head = conv_head(lite0)
    assert head.cam_applies
    logits_ref = lite0.forward(chelsea_input, (LOGITS,))[LOGITS][0]
    cls = int(logits_ref.argmax())
    assert 281 <= cls <= 285  # a cat class (tabby, tiger cat, Persian, Siamese, Egyptian cat)
    out = cam_maps(head, chelsea_input, [[cls, 0]])
    np.testing.assert_allclose(out["logits"][0], logits_ref, rtol=1e-4, atol=1e-4)
    # manual: the head conv's feature map times the _fc weights of the class (no bias)
    net = lite0.net
    with torch.no_grad():
        x = torch.from_numpy(((chelsea_input.transpose(0, 3, 1, 2) - MEAN) / STD).astype(np.float32))
        f = net.extract_features(x)[0].float()
        w = net._fc.weight.detach().float()
    manual = torch.einsum("k,khw->hw", w[cls], f).numpy()
    assert out["cam"].shape == (1, 2, 7, 7)
    np.testing.assert_allclose(out["cam"][0, 0], manual, rtol=1e-4, atol=1e-3)
    # the spatial mean of CAM_c plus the bias is the class score (GAP + linear head)
    assert manual.mean() + float(net._fc.bias[cls].detach()) == pytest.approx(float(logits_ref[cls]), rel=1e-4,
                                                                               abs=1e-3)
    # class-specific: the map of class 0 (tench) differs
    assert not np.allclose(out["cam"][0, 1], out["cam"][0, 0])


def test_gradcam_equals_relu_cam_for_a_gap_linear_head(lite0, chelsea_input):
    head = conv_head(lite0)
    out = cam_maps(head, chelsea_input, [[282, 285, 0]])
    hw = 7 * 7
    # alpha_k = W[c, k] / (h w) -> Grad-CAM = relu(CAM) / (h w)
    np.testing.assert_allclose(out["gradcam"][0] * hw, np.maximum(out["cam"][0], 0), rtol=1e-4, atol=1e-4)
    # so their score maps coincide wherever CAM is positive
    assert out["gradcam"][0, 0].max() > 0


# ----------------------------------------------------------------------------- RISE
class ToyClassifier:
    """P(class 0) = share of the region R (rows 0..7, columns 0..7) still visible (value 255)."""

    from stl.models.base import ClassList

    input_size = (32, 32)
    mask_color = np.zeros(3, np.float32)
    preferred_batch_size = 64
    classes = ClassList(["a", "b"], ["a", "b"])
    name = "toy"

    def __call__(self, images, outputs=("prob",), batch_size=64):
        images = np.asarray(images, np.float32)
        if images.ndim == 3:
            images = images[None]
        r = images[:, :8, :8, 0].mean((1, 2)) / 255.0
        return {"prob": np.stack([r, 1 - r], 1)}


def test_rise_masks_are_deterministic_with_a_seed():
    a = RISEMasks((32, 32), RISEConfig(num_masks=20, seed=3)).masks(0, 20)
    b = RISEMasks((32, 32), RISEConfig(num_masks=20, seed=3)).masks(0, 20)
    c = RISEMasks((32, 32), RISEConfig(num_masks=20, seed=4)).masks(0, 20)
    assert a.shape == (20, 32, 32) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # generated in pieces = generated at once
    np.testing.assert_array_equal(RISEMasks((32, 32), RISEConfig(num_masks=20, seed=3)).masks(5, 9), a[5:9])


def test_rise_finds_the_region_the_classifier_looks_at():
    clf = ToyClassifier()
    image = np.full((32, 32, 3), 255.0, np.float32)
    masks = RISEMasks((32, 32), RISEConfig(num_masks=400, seed=0))
    s1, full = rise_saliency(clf, image, masks, [0])
    s2, _ = rise_saliency(clf, image, masks, [0])
    np.testing.assert_array_equal(s1, s2)
    assert full[0] == pytest.approx(1.0)
    assert s1[0, :8, :8].mean() > s1[0, 16:, 16:].mean() + 0.1


# ----------------------------------------------------------------------------- STL heatmap
def test_stl_heatmap_rules_on_windows():
    from stl.core.localization import Windows

    boxes = np.array([[0, 0, 9, 9], [0, 0, 4, 4], [20, 20, 30, 30], [2, 2, 3, 3]], np.float64)
    scores = np.array([1.0, 0.5, 0.3, -0.2])  # box 2 lies outside the image; a negative drop counts 0
    w = Windows(boxes=boxes, scores=scores, segmentation=np.zeros(4, int), level=np.zeros(4, int),
                label=np.full(4, -1), input_boxes=boxes, image_size=(10, 12))
    area = stl_heatmap(w)  # default rule "area"
    assert area.shape == (10, 12)
    assert area[0, 0] == pytest.approx(1.0 / 100 + 0.5 / 25)
    assert area[9, 9] == pytest.approx(1.0 / 100)
    assert abs(area[0, 11]) < 1e-12 and abs(area[9, 11]) < 1e-12  # no window; the box at 20..30 is dropped
    s = stl_heatmap(w, rule="sum")
    assert s[0, 0] == pytest.approx(1.5) and s[9, 9] == pytest.approx(1.0)
    m = stl_heatmap(w, rule="mean")
    assert m[0, 0] == pytest.approx(0.75) and m[9, 9] == pytest.approx(1.0)
    assert m[2, 2] == pytest.approx(1.5 / 3)  # three windows cover it, one with drop 0
    only_first = stl_heatmap((boxes, scores), (10, 12), rule="sum", top=1)
    assert only_first[0, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        stl_heatmap(w, rule="max")


# ----------------------------------------------------------------------------- STL+
def test_stlplus_rerank_keeps_the_top_k_set():
    from stl.wsol.stlplus import STLPlusConfig, rerank, select_weights

    boxes = np.array([[0, 0, 99, 99], [10, 10, 60, 60], [20, 20, 90, 90], [5, 5, 6, 6], [0, 0, 1, 1]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.05])
    feats = {"drop": scores[:3] / 0.9, "crop": np.array([1.0, 0.9, 0.2]), "area": np.array([1.0, 0.26, 0.5]),
             "mass": np.zeros(3)}
    b, s, order = rerank(boxes, scores, feats, STLPlusConfig(alpha=1.0, beta=1.0, gamma=0.0, top_k=3))
    # s = drop + crop - area = [1.0, 1.529, 0.078]: window 1 first; the rest keep STL's order
    assert order.tolist() == [1, 0, 2, 3, 4]
    assert set(map(tuple, b[:3])) == set(map(tuple, boxes[:3]))
    assert np.all(np.diff(s) < 0)
    # the selection finds weights that put the right window first
    items = [{"boxes": boxes, "scores": scores, "features": feats, "gt": np.array([[10, 10, 60, 60]])}]
    best, rows = select_weights(items)
    assert rows and max(r["top1_hit_rate"] for r in rows) == 1.0
    assert rerank(boxes, scores, feats, best)[2][0] == 1


def test_stlplus_is_registered():
    from stl.proposals import available_methods

    assert {"STL+-WL", "STL+-CL"} <= set(available_methods())


# ----------------------------------------------------------------------------- files
def test_scoremap_files_in_wsolevaluation_layout(tmp_path, ilsvrc_dir, lite0):
    from stl.data import get_dataset
    from stl.experiments.wsol import build_selection, classifier_pass, scoremap_path

    ds = get_dataset("ilsvrc2012_val", root=ilsvrc_dir)
    sel = build_selection(ds, lite0, limit=2)
    preds = classifier_pass(sel, lite0, tmp_path, "lite0", ["CAM", "GRAD-CAM"], progress=False)
    names = (ilsvrc_dir / "metadata" / "image_ids.txt").read_text().split()[:2]
    for name in names:
        for m in ("CAM", "GRAD-CAM"):
            p = tmp_path / "scoremaps" / m / (name + ".npy")  # <root>/<image id>.npy, as evaluation.py reads
            assert p == scoremap_path(tmp_path, m, name) and p.exists()
            s = np.load(p)
            assert s.dtype == np.float64 and s.shape == (224, 224) and s.min() == 0.0 and s.max() == 1.0
    assert set(json.loads((tmp_path / "predictions__lite0.json").read_text())) == set(sel.ids) == set(preds)
    # resuming: nothing is recomputed
    p = scoremap_path(tmp_path, "CAM", names[0])
    before = p.stat().st_mtime_ns
    classifier_pass(sel, lite0, tmp_path, "lite0", ["CAM", "GRAD-CAM"], progress=False)
    assert p.stat().st_mtime_ns == before
    # the ground truth in the 224 frame is the benchmark's int(x * 224 / W)
    info = sel.infos[sel.ids[0]]
    line = (ilsvrc_dir / "metadata" / "localization.txt").read_text().splitlines()[0].split(",")
    size = [ln.split(",") for ln in (ilsvrc_dir / "metadata" / "image_sizes.txt").read_text().splitlines()
            if ln.startswith(line[0] + ",")][0]
    assert tuple(info.gt224[0]) == resize_box([float(v) for v in line[1:]], (int(size[1]), int(size[2])))


class _FakeWindows:
    """Three fixed windows per image (whole image, centre, top-left quarter): stands in for STL in the
    pipeline test (STL itself costs minutes per image on a CPU)."""

    name = "fake"
    needs_label = False
    uses_classifier = False

    def propose(self, image, labels=None, image_id=None):
        h, w = image.shape[:2]
        return (np.array([[0, 0, w - 1, h - 1], [w * .2, h * .2, w * .8, h * .8], [0, 0, w / 2, h / 2]]),
                np.array([0.9, 0.5, 0.2]))

    def propose_batch(self, images, labels=None, image_ids=None):
        return [self.propose(im) for im in images]


def test_pipeline_reads_stl_windows_from_the_run_store(tmp_path, ilsvrc_dir, lite0, monkeypatch):
    from stl import resources
    from stl.data import get_dataset
    from stl.runner import run_method, run_path
    from stl.experiments.wsol import BenchmarkOptions, run_wsol, scoremap_path

    ds = get_dataset("ilsvrc2012_val", root=ilsvrc_dir)
    ids = ds.image_ids[:2]
    runs = tmp_path / "runs"
    store = run_path(runs, ds.key, "STL-WL", "lite0", True)
    run_method(get_dataset("ilsvrc2012_val", root=ilsvrc_dir).select(ids), _FakeWindows(), store,
               method_name="STL-WL", model="lite0", progress=False)
    opt = BenchmarkOptions(out=tmp_path / "out", runs=runs, model="lite0",
                           methods=["CAM", "STL-WL", "WHOLE-IMAGE", "CENTER"],
                           limit=2, stl_compute=False, figure_images=2, progress=False, ci=(0.95, 200, 0),
                           freeze_plus=True)
    frozen = tmp_path / "stlplus_weights.json"
    monkeypatch.setattr(resources, "config", lambda name: frozen)
    rep = run_wsol(ds, lite0, opt)
    m = rep["methods"]
    assert m["CAM"]["images"] == 2 and m["STL-WL"]["images"] == 2 and m["STL-WL-HEAT"]["images"] == 2
    assert m["STL+-WL"]["images"] == 2 and rep["stl_images_by_half"] == [2, 0]
    # the STL box method scores its first window: the whole image here, so it scores as WHOLE-IMAGE
    for k in ("max_box_acc", "max_box_acc_v2", "top1_loc"):
        assert m["STL-WL"][k] == m["WHOLE-IMAGE"][k]
    assert (tmp_path / "out" / "figure__lite0.png").exists()
    assert scoremap_path(tmp_path / "out", "STL-WL-HEAT", ds.original_annotation(ids[0])["name"]).exists()
    assert rep["stlplus"]["STL+-WL"]["selected_on_images"] == 2
    # --freeze-plus: the selected weights and what they were selected on, in the package resource
    from stl.wsol.stlplus import frozen_weights

    entry = json.loads(frozen.read_text())["methods"]["STL+-WL"]
    assert entry["weights"] == rep["stlplus"]["STL+-WL"]["config"]
    assert entry["selection"]["image_ids"] == list(ids) and entry["selection"]["num_images"] == 2
    assert frozen_weights("STL+-WL").identity() == entry["weights"]
    assert "MaxBoxAccV2" in rep["text"] and "60.0" in rep["text"]  # published rows beside ours
    # --ci: every metric with its per-image bootstrap interval around it
    iv = m["CAM"]["intervals"]
    assert iv["max_box_acc_v2"]["low"] <= m["CAM"]["max_box_acc_v2"] <= iv["max_box_acc_v2"]["high"]
    assert rep["ci"] == {"level": 0.95, "resamples": 200, "seed": 0, "method": "percentile", "unit": "image"}
    assert "95% per-image bootstrap interval" in rep["text"] and "] |" in rep["text"]
    # the paper's protocol: each method's paired difference to CENTER on the same images
    h1 = rep["protocol"]["half1"]
    d = h1["STL+-WL"]["paired_vs_center"]["top1_hit_rate"]
    assert d["diff"] == pytest.approx(h1["STL+-WL"]["top1_hit_rate"] - h1["CENTER"]["top1_hit_rate"])
    assert d["low"] <= d["diff"] <= d["high"] and "paired_vs_center" not in h1["CENTER"]
    assert "Paired difference to CENTER on the same 2 images" in rep["text"]
    # WSOL metrics: every method's paired difference to CAM on the STL images
    pc = rep["paired_vs_cam"]["STL-WL"]["max_box_acc_v2"]
    assert pc["diff"] == pytest.approx(rep["methods_on_stl_images"]["STL-WL"]["max_box_acc_v2"]
                                       - rep["methods_on_stl_images"]["CAM"]["max_box_acc_v2"])
    assert pc["low"] <= pc["diff"] <= pc["high"] and "CAM" not in rep["paired_vs_cam"]
    assert "Paired difference to CAM (same backbone) on the same 2 STL images" in rep["text"]
    # what made the table: the command, the commit and the images, in the JSON and atop the Markdown
    prov = json.loads((tmp_path / "out" / "wsol__lite0.json").read_text())["provenance"]
    assert prov["image_ids"] == list(ids) and prov["stl_image_ids_by_half"] == [list(ids), []]
    assert prov["command"] == "run_wsol (Python API)" and prov["commit"]
    md = (tmp_path / "out" / "wsol__lite0.md").read_text()
    assert md.startswith("command: `run_wsol (Python API)`  \ncode: commit ")


def test_cli_registers_wsol(capsys):
    from stl.cli import COMMANDS, main

    assert "wsol" in COMMANDS
    with pytest.raises(SystemExit) as e:
        main(["wsol", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--rise-masks" in out and "--stl-limit" in out and "4000" in out


def test_frozen_weights_default_to_the_prior_and_reach_the_method(tmp_path, monkeypatch):
    from stl import resources
    from stl.proposals.stlplus import STLPlusMethod
    from stl.wsol.stlplus import STLPlusConfig, freeze_weights, frozen_weights

    from stubs import StubClassifier

    path = tmp_path / "w.json"
    monkeypatch.setattr(resources, "config", lambda name: path)
    assert frozen_weights("STL+-WL") == STLPlusConfig()  # nothing frozen: the prior
    cfg = STLPlusConfig(alpha=0.25, beta=1.0, gamma=0.5)
    freeze_weights(path, "STL+-WL", cfg, {"num_images": 3, "image_ids": ["a", "b", "c"]})
    freeze_weights(path, "STL+-CL", STLPlusConfig(alpha=2.0), {"num_images": 3})
    assert frozen_weights("STL+-WL") == cfg and frozen_weights("STL+-CL").alpha == 2.0  # both kept
    assert STLPlusMethod(StubClassifier(), class_level=True).plus.alpha == 2.0  # STL+-CL's own
    given = STLPlusMethod(StubClassifier(), plus=STLPlusConfig(), class_level=True).plus
    assert given == STLPlusConfig()  # weights given explicitly win


def test_onnx_lite0_takes_cam_from_its_torch_twin_and_other_engines_are_a_user_error(lite0, chelsea_input):
    """``--engine onnx``: CAM / Grad-CAM come from the same weights in PyTorch (ONNX Runtime has no
    gradients), equal to the built-in engine's; a classifier with neither is one clear user error."""
    pytest.importorskip("onnxruntime")
    from stl.errors import OptionError
    from stl.models.onnx import lite0_onnx_classifier

    onnx = lite0_onnx_classifier(threads=1)
    head = conv_head(onnx)
    assert head.cam_applies and "ONNX export" in head.cam_note
    a, b = cam_maps(head, chelsea_input, [[282]]), cam_maps(conv_head(lite0), chelsea_input, [[282]])
    np.testing.assert_allclose(a["cam"], b["cam"], rtol=1e-4, atol=1e-4)  # same weights (threads may differ)
    with pytest.raises(OptionError, match="CAM / Grad-CAM need a PyTorch engine"):
        conv_head(ToyClassifier())


def test_paired_wsol_difference_by_hand():
    """a - b of MaxBoxAccV2 / MaxBoxAcc / Top-1 Loc on the common images, the same draws for both."""
    from stl.evaluation.bootstrap import percentile_interval, resample_indices
    from stl.experiments.wsol.scoring import paired_wsol
    from stl.wsol.metrics import WSOLScores

    rng = np.random.default_rng(0)
    a, b = WSOLScores(), WSOLScores()
    t = len(a.thresholds)
    for k in range(30):
        a.add(f"i{k}", np.full(t, rng.uniform(0.3, 0.9)), np.full(t, rng.uniform(0.3, 0.9)), bool(k % 3))
        b.add(f"i{k}", np.full(t, 0.2), np.full(t, 0.2), True)  # never a hit at IoU 0.3 or above
    b.add("only-b", np.ones(t), np.ones(t), True)
    d = paired_wsol(a, b, [f"i{k}" for k in range(30)] + ["only-b"], (0.9, 200, 3))
    assert d["max_box_acc_v2"]["images"] == 30  # only-b is not in a
    assert d["max_box_acc_v2"]["diff"] == pytest.approx(a.max_box_acc_v2())
    assert d["top1_loc"]["diff"] == pytest.approx(a.top1_loc())
    # the interval: a's own metric on each resample of the 30 images (b's is 0 on every one)
    boot = [WSOLScores(image_ids=[a.image_ids[i] for i in idx], iou_largest=[a.iou_largest[i] for i in idx],
                       iou_all=[a.iou_all[i] for i in idx], correct_class=[a.correct_class[i] for i in idx]
                       ).max_box_acc() for idx in resample_indices(30, 200, 3)]
    lo, hi = percentile_interval(np.asarray(boot), 0.9)
    assert (d["max_box_acc"]["low"], d["max_box_acc"]["high"]) == pytest.approx((float(lo), float(hi)))
    same = paired_wsol(a, a, a.image_ids, (0.95, 100, 0))
    assert all(v["diff"] == v["low"] == v["high"] == 0 for v in same.values())
