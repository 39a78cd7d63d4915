"""`stl export`: every format read back with its consumer's reader (pycocotools COCO / loadRes,
scipy.io.loadmat + the Fast R-CNN loader's `[:, (1, 0, 3, 2)] - 1`, the detectron2 / mmdetection
proposal lookups), boxes, order and scores checked against the run."""
from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, missing

from stl.proposals import ProposalMethod


class Grid(ProposalMethod):
    """Four windows per image with fractional corners and distinct scores (hand-checkable)."""

    name = "GRID"

    def propose(self, image, labels=None, image_id=None):
        h, w = image.shape[:2]
        boxes = np.array([[0, 0, w - 1, h - 1], [10.5, 20.25, w / 2, h / 2], [w / 4, 5, w - 10, h - 3.5],
                          [3, 4, 3, 4]], np.float64)
        return boxes, np.array([0.9, 0.5, 0.25, -0.125])


class Nothing(ProposalMethod):
    name = "NOTHING"

    def propose(self, image, labels=None, image_id=None):
        return np.zeros((0, 4)), np.zeros(0)


def _run(photos, tmp_path, method=None, labels=True):
    from stl.data import get_dataset
    from stl.runner import run_method

    ds = get_dataset("folder", root=photos, labels_from_folders=labels)
    path = tmp_path / "runs" / f"{(method or Grid()).name}.h5"
    run_method(ds, method or Grid(), path, method_name=(method or Grid()).name, progress=False)
    return path


def stl(*argv):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "stl.cli", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def run(photos, tmp_path):
    return _run(photos, tmp_path)


def _stored(run):
    from stl.runner import load_run

    return load_run(run)


def test_coco_results_with_pycocotools(run, tmp_path):
    try:
        from pycocotools.coco import COCO
    except ImportError as e:
        missing(f"pycocotools: {e} (`make setup`)")
    r = stl("export", run, "--format", "coco", "--out", tmp_path / "res.json")
    assert r.returncode == 0, r.stderr
    gt = COCO(str(tmp_path / "res_images.json"))
    dt = gt.loadRes(str(tmp_path / "res.json"))
    stored = _stored(run)
    assert [gt.imgs[i]["file_name"] for i in sorted(gt.imgs)] == stored.image_ids
    names = {c["id"]: c["name"] for c in gt.dataset["categories"]}
    assert sorted(names.values()) == ["n02123045", "n07920052", "sub"]
    for img_id in sorted(gt.imgs):
        iid = gt.imgs[img_id]["file_name"]
        anns = dt.loadAnns(dt.getAnnIds(imgIds=[img_id]))
        assert {names[a["category_id"]] for a in anns} == {iid.split("/")[-2]}  # the folder's label
        anns.sort(key=lambda a: -a["score"])
        b = stored.boxes[iid].astype(np.float64)
        want = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1], 1)  # x, y, w, h
        np.testing.assert_allclose([a["bbox"] for a in anns], want, atol=1e-3)
        np.testing.assert_allclose([a["score"] for a in anns], stored.scores[iid], rtol=1e-6)
        np.testing.assert_allclose([a["area"] for a in anns], want[:, 2] * want[:, 3], rtol=1e-4)  # loadRes's
    # chelsea is 451 x 300: the whole-image window is [0, 0, 451, 300] in COCO
    chelsea = next(i for i in gt.imgs if gt.imgs[i]["file_name"].endswith("chelsea.png"))
    assert (gt.imgs[chelsea]["width"], gt.imgs[chelsea]["height"]) == (451, 300)
    top = max(dt.loadAnns(dt.getAnnIds(imgIds=[chelsea])), key=lambda a: a["score"])
    assert top["bbox"] == [0, 0, 451, 300]


def test_coco_pseudo_gt_top1_per_image_and_label(run, tmp_path):
    try:
        from pycocotools.coco import COCO
    except ImportError as e:
        missing(f"pycocotools: {e} (`make setup`)")
    out = tmp_path / "gt.json"
    r = stl("export", run, "--format", "coco-pseudo-gt", "--out", out)
    assert r.returncode == 0 and "note: pseudo ground truth from GRID" in r.stdout, r.stderr
    gt = COCO(str(out))
    stored = _stored(run)
    assert len(gt.anns) == 3 and len(gt.imgs) == 3
    for a in gt.anns.values():
        iid = gt.imgs[a["image_id"]]["file_name"]
        b = stored.boxes[iid][0]
        assert a["bbox"] == pytest.approx([b[0], b[1], b[2] - b[0] + 1, b[3] - b[1] + 1], abs=1e-3)
        assert a["iscrowd"] == 0 and a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3], rel=1e-5)
        assert gt.cats[a["category_id"]]["name"] == iid.split("/")[-2]
    assert gt.cats[1].get("words", "").startswith("tabby")
    r = stl("export", run, "--format", "coco-pseudo-gt", "--per-image", "2", "--out", out)
    assert r.returncode == 0 and len(json.loads(out.read_text())["annotations"]) == 6


def test_detectron2_and_mmdet_pickles(run, tmp_path, photos):
    stored = _stored(run)
    assert stl("export", run, "--format", "detectron2", "--out", tmp_path / "d2.pkl").returncode == 0
    with open(tmp_path / "d2.pkl", "rb") as f:
        p = pickle.load(f, encoding="latin1")
    # detectron2.data.detection_utils.load_proposals_into_dataset: ids -> index by str(id), BoxMode(bbox_mode)
    dataset_dicts = [{"image_id": k} for k in (3, 1, 2)]  # the coco files' image ids, any order
    id_to_index = {str(i): k for k, i in enumerate(p["ids"]) if str(i) in {str(r["image_id"]) for r in dataset_dicts}}
    assert p["bbox_mode"] == 0 and set(id_to_index) == {"1", "2", "3"}
    for rec in dataset_dicts:
        i = id_to_index[str(rec["image_id"])]
        boxes, logits = p["boxes"][i], p["objectness_logits"][i]
        iid = stored.image_ids[rec["image_id"] - 1]
        assert boxes.dtype == np.float32 and boxes.shape == (4, 4) and logits.dtype == np.float32
        b = stored.boxes[iid]
        np.testing.assert_allclose(boxes, np.c_[b[:, :2], b[:, 2:] + 1], rtol=1e-6)  # XYXY_ABS edges
        np.testing.assert_allclose(logits, stored.scores[iid])
    assert stl("export", run, "--format", "mmdet", "--out", tmp_path / "mm.pkl").returncode == 0
    with open(tmp_path / "mm.pkl", "rb") as f:
        mm = pickle.load(f)
    assert len(mm) == len(stored.image_ids)
    for iid in stored.image_ids:  # mmdet 3 BaseDetDataset.load_proposals: key = <folder>/<file name>
        img_path = str(photos / iid)
        key = os.path.join(os.path.split(os.path.split(img_path)[0])[-1], os.path.split(img_path)[-1])
        b = stored.boxes[iid]
        np.testing.assert_allclose(mm[key]["bboxes"], np.c_[b[:, :2], b[:, 2:] + 1], rtol=1e-6)
        assert mm[key]["bboxes"].dtype == np.float32
        np.testing.assert_allclose(mm[key]["scores"], stored.scores[iid])


def test_fast_rcnn_mat_voc_txt_and_csv(run, tmp_path):
    import scipy.io

    stored = _stored(run)
    assert stl("export", run, "--format", "fast-rcnn-mat", "--out", tmp_path / "ss.mat").returncode == 0
    raw = scipy.io.loadmat(str(tmp_path / "ss.mat"))["boxes"].ravel()  # fast-rcnn's _load_selective_search_roidb
    order = (tmp_path / "ss.txt").read_text().split("\n")[:-1]
    assert order == stored.image_ids and len(raw) == len(order)
    for i, iid in enumerate(order):
        boxes = raw[i][:, (1, 0, 3, 2)] - 1
        want = np.round(stored.boxes[iid].astype(np.float64))
        np.testing.assert_array_equal(boxes, want)
        assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes >= 0).all()
    assert stl("export", run, "--format", "voc-txt", "--out", tmp_path / "det.txt").returncode == 0
    lines = (tmp_path / "det.txt").read_text().splitlines()
    assert len(lines) == 4 * len(stored.image_ids)
    first = lines[0].split()
    b = stored.boxes[stored.image_ids[0]][0]
    assert first[0] == stored.image_ids[0] and float(first[1]) == pytest.approx(0.9)
    assert [float(v) for v in first[2:]] == pytest.approx(list(b + 1), abs=0.05)  # 1-based
    assert stl("export", run, "--format", "csv", "--top", "2", "--out", tmp_path / "w.csv").returncode == 0
    rows = list(csv.DictReader(open(tmp_path / "w.csv")))
    assert len(rows) == 2 * len(stored.image_ids) and rows[1]["rank"] == "2"
    b = stored.boxes[rows[1]["image_id"]][1]
    assert [float(rows[1][k]) for k in ("x0", "y0", "x1", "y1")] == pytest.approx(list(b), abs=0.006)


def test_bad_exports_are_one_line_and_write_nothing(photos, tmp_path):
    empty = _run(photos, tmp_path, Nothing())
    out = tmp_path / "x.json"
    for argv, words in (([empty, "--format", "coco", "--out", out], ["no windows"]),
                        ([tmp_path / "nope.h5", "--format", "csv", "--out", out], ["nope.h5"]),
                        ([empty, "--format", "bogus"], ["--format", "bogus"])):
        r = stl("export", *argv)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("stl: error: "), r.stderr
        assert all(w in lines[0] for w in words), lines[0]
    unlabelled = _run(photos, tmp_path / "u", labels=False)
    r = stl("export", unlabelled, "--format", "coco-pseudo-gt", "--out", out)
    assert r.returncode == 2 and "needs image-level labels" in r.stderr, r.stderr
    assert not out.exists() and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".x.json*"))


def test_draw_figure_of_the_exported_boxes(run, tmp_path):
    from PIL import Image

    r = stl("export", run, "--format", "coco-pseudo-gt", "--out", tmp_path / "gt.json", "--draw", tmp_path / "gt.png")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "gt.png") as im:
        assert im.width > 600 and im.height > 200  # three panels in a row
