"""Your own images as a dataset (stl/data/folder.py): folders, list files, label CSVs, the bad inputs
of issue 20 (one line `stl: error: ...`, exit 2, nothing written), `stl eval` on a run without
ground truth."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def _skimage(name):
    import skimage

    return Path(skimage.data_dir) / name


def stl(*argv, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "stl.cli", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env, timeout=300)


def one_error_line(r, *words):
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr, r.stdout)
    assert len(lines) == 1 and lines[0].startswith("stl: error: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def test_folder_list_and_labels(photos, tmp_path):
    from stl.data import get_dataset
    from stl.models.base import ClassList

    ds = get_dataset("folder", root=photos)
    assert ds.image_ids == ["n02123045/chelsea.png", "n07920052/coffee.png", "n07920052/sub/astro.PNG"]
    assert ds.key == "folder_photos" and not ds.has_ground_truth and not ds.has_labels
    rec = ds.record("n07920052/coffee.png")
    assert rec.size == (400, 600) and rec.boxes.shape == (0, 4) and rec.labels == []
    assert ds.record("n07920052/sub/astro.PNG").read().shape == (512, 512, 3)

    ds = get_dataset("folder", root=photos, labels_from_folders=True)
    assert [r.labels for r in ds] == [["n02123045"], ["n07920052"], ["sub"]]
    with pytest.raises(Exception, match="the folder name of .*astro.PNG: label 'sub' is not a class"):
        ds.check_labels(ClassList.imagenet())

    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\nn02123045/chelsea.png,n02123045\n"
                   f"{photos}/n07920052/coffee.png,967,espresso\n")  # absolute path; index and class name
    ds = get_dataset("folder", root=photos, labels=csv)
    assert ds.record("n07920052/coffee.png").labels == ["967", "espresso"]
    assert ds.unlabelled() == ["n07920052/sub/astro.PNG"]
    ds.check_labels(ClassList.imagenet())  # wnid, index and words all resolve

    lst = tmp_path / "list.txt"
    lst.write_text(f"# my images\nphotos/n02123045/chelsea.png\n\n{photos}/n07920052/coffee.png\n")
    ds = get_dataset("folder", root=lst)
    assert ds.image_ids == ["photos/n02123045/chelsea.png", f"{photos.as_posix()}/n07920052/coffee.png"]
    assert ds.key == "folder_list"


@pytest.mark.parametrize("case", ["missing-csv-file", "dup-csv", "dup-list", "missing-list", "bad-label",
                                  "cl-no-labels", "not-in-class-folder", "empty"])
def test_bad_inputs_one_line(case, photos, tmp_path):
    out = tmp_path / "runs"
    csv, lst = tmp_path / "labels.csv", tmp_path / "list.txt"
    args = ["run", "--method", "WHOLE-IMAGE", "--no-progress", "--out", out]
    if case == "missing-csv-file":
        csv.write_text("n02123045/chelsea.png,n02123045\nn02123045/nope.png,n02123045\n")
        r, words = stl(*args, "--images", photos, "--labels", csv), ["labels.csv:2", "nope.png"]
    elif case == "dup-csv":
        csv.write_text("n02123045/chelsea.png,n02123045\nn02123045/chelsea.png,n02123045\n")
        r, words = stl(*args, "--images", photos, "--labels", csv), ["labels.csv:2", "twice", "line 1"]
    elif case == "dup-list":
        lst.write_text("photos/n02123045/chelsea.png\nphotos/n02123045/chelsea.png\n")
        r, words = stl(*args, "--images", lst), ["list.txt:2", "listed twice"]
    elif case == "missing-list":
        lst.write_text("photos/n02123045/chelsea.png\nphotos/gone.jpg\n")
        r, words = stl(*args, "--images", lst), ["list.txt:2", "gone.jpg", "not found"]
    elif case == "bad-label":
        csv.write_text("n02123045/chelsea.png,n02123045\nn07920052/coffee.png,not_a_class\n"
                       "n07920052/sub/astro.PNG,n04266014\n")
        r = stl("run", "--method", "STL-CL", "--no-progress", "--out", out, "--images", photos, "--labels", csv)
        words = ["labels.csv:2", "'not_a_class' is not a class"]
    elif case == "cl-no-labels":
        r = stl("run", "--method", "STL-CL", "--no-progress", "--out", out, "--images", photos)
        words = ["STL-CL needs image-level labels", "--labels"]
    elif case == "not-in-class-folder":
        shutil.copy(_skimage("rocket.jpg"), photos / "loose.jpg")
        r, words = stl(*args, "--images", photos, "--labels-from-folders"), ["loose.jpg", "class folder"]
    else:
        (tmp_path / "empty").mkdir()
        r, words = stl(*args, "--images", tmp_path / "empty"), ["no images found"]
    one_error_line(r, *words)
    assert not out.exists() or not any(out.rglob("*.h5"))


def test_run_then_eval_says_no_ground_truth(photos, tmp_path):
    out = tmp_path / "runs"
    r = stl("run", "--images", photos, "--labels-from-folders", "--method", "WHOLE-IMAGE", "CENTER",
            "--no-progress", "--out", out)
    assert r.returncode == 0, r.stderr
    run = out / "folder_photos" / "WHOLE-IMAGE.h5"
    from stl.runner import load_run

    got = load_run(run)
    assert got.image_ids == ["n02123045/chelsea.png", "n07920052/coffee.png", "n07920052/sub/astro.PNG"]
    assert got.boxes["n07920052/coffee.png"].tolist() == [[0, 0, 599, 399]]
    assert got.meta["dataset"] == "folder" and got.meta["labels"] == "folders"
    r2 = stl("run", "--images", photos, "--labels-from-folders", "--method", "WHOLE-IMAGE", "--no-progress",
             "--out", out)
    assert r2.returncode == 0 and "3 already done" in r2.stdout, r2.stdout  # resumes
    one_error_line(stl("eval", run), "has no ground-truth boxes", "stl export")
    # the same dataset through the registry's name; STL-WL needs no labels (no label check)
    r3 = stl("run", "--dataset", "folder", "--root", photos, "--method", "CENTER", "--no-progress", "--out", out)
    assert r3.returncode == 0 and "folder_photos (3 images" in r3.stdout, r3.stderr
