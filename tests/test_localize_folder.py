"""`stl localize DIR` (one JSON per image, --export FORMAT) and Windows.to_coco()/.to_xywh():
the command line and the Python API return the same boxes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO


def test_windows_to_xywh_and_to_coco_by_hand():
    from stl.core.localization import Windows

    w = Windows(boxes=np.array([[0, 0, 9, 19], [2.5, 3, 4.5, 3]]), scores=np.array([0.7, 0.1]),
                segmentation=np.zeros(2, int), level=np.zeros(2, int), label=np.array([281, -1]),
                input_boxes=np.zeros((2, 4)), image_size=(20, 10))
    np.testing.assert_allclose(w.to_xywh(), [[0, 0, 10, 20], [2.5, 3, 3, 1]])
    assert w.to_coco(image_id=7, category_id=3) == [
        {"image_id": 7, "category_id": 3, "bbox": [0, 0, 10, 20], "score": 0.7, "label": 281},
        {"image_id": 7, "category_id": 3, "bbox": [2.5, 3, 3, 1], "score": 0.1, "label": -1}]


def test_localize_empty_folder_and_pseudo_gt_without_label(tmp_path):
    import skimage

    (tmp_path / "empty").mkdir()
    (tmp_path / "one").mkdir()
    shutil.copy(Path(skimage.data_dir) / "chelsea.png", tmp_path / "one" / "chelsea.png")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for argv, word in ((["localize", tmp_path / "empty"], "no images"),
                       (["localize", tmp_path / "one", "--export", "coco-pseudo-gt"], "needs the images' class")):
        r = subprocess.run([sys.executable, "-m", "stl.cli", *map(str, argv), "--out", str(tmp_path / "o")],
                           capture_output=True, text=True, env=env, timeout=120)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and word in lines[0], r.stderr


@pytest.mark.slow
def test_localize_folder_json_and_coco_export(tmp_path):
    """STL-CL on a folder holding one real photo (one segmentation to keep it short): the JSON's boxes,
    its COCO bbox_xywh and the --export coco file agree, and pycocotools reads the export."""
    import skimage
    from pycocotools.coco import COCO

    d = tmp_path / "mine" / "cats"
    d.mkdir(parents=True)
    shutil.copy(Path(skimage.data_dir) / "chelsea.png", d / "chelsea.png")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "stl.cli", "localize", str(tmp_path / "mine"), "--label", "n02123045",
                        "--set", "segmentation.color_spaces=hsv", "--set", "segmentation.ks=100", "--top", "5",
                        "--export", "coco", "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    js = json.loads((out / "chelsea_cl.json").read_text())
    wins = js["windows"]
    assert len(wins) > 5 and js["image_size"] == [300, 451]
    for w in wins:
        x0, y0, x1, y1 = w["box"]
        assert w["bbox_xywh"] == pytest.approx([x0, y0, x1 - x0 + 1, y1 - y0 + 1], abs=0.01)
    gt = COCO(str(out / "localize.coco_images.json"))
    dt = gt.loadRes(str(out / "localize.coco.json"))
    assert [c["name"] for c in gt.dataset["categories"]] == ["n02123045"]
    assert gt.imgs[1]["file_name"].endswith("cats/chelsea.png") and gt.imgs[1]["width"] == 451
    anns = sorted(dt.loadAnns(dt.getAnnIds(imgIds=[1])), key=lambda a: -a["score"])
    assert len(anns) == 5  # --top
    np.testing.assert_allclose([a["bbox"] for a in anns], [w["bbox_xywh"] for w in wins[:5]], atol=0.01)
    np.testing.assert_allclose([a["score"] for a in anns], [w["drop"] for w in wins[:5]], rtol=1e-6)
    assert (out / "chelsea_cl.png").is_file()
