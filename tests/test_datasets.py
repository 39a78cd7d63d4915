"""Datasets: ILSVRC (WSOL metadata and official XML layouts), VOC 2007, the bundled sample."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stl.data import DatasetError, available_datasets, get_dataset, resolve_root
from stl.data.ilsvrc2012_200rnd import CLASSES_200RND

REPO = Path(__file__).resolve().parents[1]


def test_registry_names():
    assert {"ilsvrc2012_val", "ilsvrc2012_val_200rnd", "voc2007_test", "voc2007_trainval", "sample"} <= set(
        available_datasets())
    with pytest.raises(KeyError, match="unknown dataset"):
        get_dataset("coco")


def test_200rnd_list_matches_reference():
    from stl import resources

    ref = resources.read_json(*resources.PAPER_REFERENCE)
    assert list(CLASSES_200RND) == ref["ilsvrc2012_200rnd_classes"]
    from stl.models.base import ClassList

    assert set(CLASSES_200RND) <= set(ClassList.imagenet().wnids)


def test_ilsvrc_wsol_layout(ilsvrc_dir):
    ds = get_dataset("ilsvrc2012_val", root=ilsvrc_dir)
    assert len(ds) == 650 and ds.key == "ilsvrc2012_val" and ds.layout == "wsol"
    assert ds.paper_key == "ILSVRC2012_1000_VAL" and ds.eval_mode == "image"
    rec = ds.record("ILSVRC2012_val_00000347")
    # file is 227x227; original 500x375; first box 20,175,111,292 (original pixels, inclusive)
    assert rec.size == (227, 227) and rec.extra["original_size"] == (375, 500)
    np.testing.assert_allclose(rec.boxes[0], [20 * 227 / 500, 175 * 227 / 375, 112 * 227 / 500 - 1,
                                              293 * 227 / 375 - 1])
    assert len(rec.boxes) == 8 and not rec.difficult.any()
    words = (ilsvrc_dir / "synset_words.txt").read_text().splitlines()
    assert rec.labels == [words[472].split()[0]] and rec.box_labels == rec.labels * 8
    assert rec.read().shape == (227, 227, 3)
    # every box inside the file, x0 <= x1
    for r in ds:
        assert (r.boxes[:, :2] >= 0).all() and (r.boxes[:, 2] <= r.size[1] - 1).all()
        assert (r.boxes[:, 3] <= r.size[0] - 1).all() and (r.boxes[:, 2:] >= r.boxes[:, :2]).all()
    assert sum(len(r.boxes) for r in ds) == 949


def test_ilsvrc_200rnd_subset(ilsvrc_dir):
    a = get_dataset("ilsvrc2012_val_200rnd", root=ilsvrc_dir)
    b = get_dataset("ilsvrc2012_val", root=ilsvrc_dir, subset="200rnd")
    assert a.image_ids == b.image_ids and len(a) == 127
    assert a.key == "ilsvrc2012_val_200rnd" and a.paper_key == "ILSVRC2012_200rnd_VAL"
    assert all(r.labels[0] in CLASSES_200RND for r in a)
    assert len(get_dataset("ilsvrc2012_val", root=ilsvrc_dir, limit=5)) == 5


def test_ilsvrc_official_xml_layout_agrees_with_wsol(ilsvrc_dir, tmp_path):
    """Write official-style XML (original sizes) for a few images; the images stay the
    227x227 files: the boxes must come out as in the WSOL layout."""
    wsol = get_dataset("ilsvrc2012_val", root=ilsvrc_dir, limit=6)
    xml_dir = tmp_path / "ILSVRC2012_bbox_val_v3" / "val"
    xml_dir.mkdir(parents=True)
    lines = (ilsvrc_dir / "metadata" / "localization.txt").read_text().split()
    for rec in wsol:
        h, w = rec.extra["original_size"]
        objs = "".join(
            f"<object><name>{rec.labels[0]}</name><bndbox><xmin>{p[1]}</xmin><ymin>{p[2]}</ymin>"
            f"<xmax>{p[3]}</xmax><ymax>{p[4]}</ymax></bndbox></object>"
            for p in (ln.split(",") for ln in lines) if p[0] == f"val/{rec.image_id}.JPEG")
        (xml_dir / f"{rec.image_id}.xml").write_text(
            f"<annotation><filename>{rec.image_id}</filename><size><width>{w}</width><height>{h}</height>"
            f"</size>{objs}</annotation>")
    off = get_dataset("ilsvrc2012_val", root=tmp_path, images=ilsvrc_dir / "val")
    assert off.layout == "official" and off.image_ids == wsol.image_ids
    for a, b in zip(wsol, off):
        np.testing.assert_allclose(a.boxes, b.boxes)
        assert a.labels == b.labels and a.size == b.size and a.path == b.path


def test_ilsvrc_missing_layout(tmp_path):
    with pytest.raises(DatasetError, match="neither WSOL metadata"):
        get_dataset("ilsvrc2012_val", root=tmp_path)


def test_voc2007(voc_dir):
    ds = get_dataset("voc2007_test", root=voc_dir)
    assert len(ds) == 11 and ds.key == "voc2007_test" and ds.paper_key == "PASCAL2007_TEST"
    rec = ds.record("000004")
    assert rec.size == (406, 500) and rec.labels == ["car"]
    # XML 13,311,84,362 and 362,330,500,389 (1-based inclusive) -> 0-based
    np.testing.assert_array_equal(rec.boxes[:2], [[12, 310, 83, 361], [361, 329, 499, 388]])
    assert rec.read().shape == (406, 500, 3)
    r = ds.record("004101")  # 3 difficult boxes of 5
    assert r.difficult.sum() == 3 and set(r.labels) == {"bicycle", "person", "sofa"}
    assert sum(int(x.difficult.sum()) for x in ds) == 9  # grep -c "<difficult>1" over the 11 XML files
    # the VOC2007 folder itself is accepted as root too
    assert get_dataset("voc2007_test", root=voc_dir / "VOC2007").image_ids == ds.image_ids
    with pytest.raises(DatasetError, match="trainval.txt"):
        get_dataset("voc2007_trainval", root=voc_dir)


def test_roots_from_environment(voc_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("STL_VOC", str(voc_dir))
    assert resolve_root("voc") == voc_dir.resolve()
    assert len(get_dataset("voc2007_test")) == 11
    monkeypatch.setenv("STL_VOC", str(tmp_path / "nope"))
    with pytest.raises(DatasetError, match="STL_VOC"):
        resolve_root("voc")
    monkeypatch.delenv("STL_ILSVRC", raising=False)
    if not (REPO / "data" / "ilsvrc").exists():
        with pytest.raises(DatasetError, match="--root"):
            resolve_root("ilsvrc")


def test_bundled_sample():
    from stl import resources

    expected = [e["id"] for e in resources.read_json(*resources.SAMPLE_ANNOTATIONS)["images"]]
    ds = get_dataset("sample")
    # the five scikit-image photos annotated in stl/resources/sample/annotations.json, in file order
    assert ds.image_ids == expected == ["chelsea", "coffee", "rocket", "motorcycle", "astronaut"]
    assert ds.record("chelsea").labels == ["n02123045"]
    np.testing.assert_array_equal(ds.record("rocket").boxes, [[298, 135, 338, 400]])
    for rec in ds:
        assert rec.path is not None and rec.path.exists(), rec
        im = rec.read()
        assert im.shape[:2] == rec.size
        assert len(rec.boxes) == len(rec.box_labels) and rec.labels
        assert (rec.boxes[:, 2] <= rec.size[1] - 1).all() and (rec.boxes[:, 3] <= rec.size[0] - 1).all()


def test_sample_format_scaled_and_missing(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 20)).save(tmp_path / "a.png")
    (tmp_path / "annotations.json").write_text(json.dumps({"images": [
        {"file": "a.png", "size": [40, 80], "labels": ["n01440764"], "boxes": [[0, 0, 39, 19]],
         "box_labels": ["n01440764"]},
        {"id": "gone", "file": "gone.png", "labels": ["n01440764"], "boxes": [], "box_labels": []}]}))
    ds = get_dataset("sample", root=tmp_path)
    assert ds.image_ids == ["a", "gone"]
    rec = ds.record("a")  # annotated on an 80x40 image, the file is 40x20: halved
    assert rec.size == (20, 40)
    np.testing.assert_allclose(rec.boxes, [[0, 0, 19, 9]])
    with pytest.raises(DatasetError, match="not found"):
        ds.record("gone")


# ----------------------------------------------------------------------------- data/fetch_data.py
def _fetch_module():
    from conftest import load_script

    return load_script("data/fetch_data.py", "stl_fetch_data")


def test_fetch_data_offline_error_is_clear(tmp_path):
    fd = _fetch_module()
    table = {"test": {"file": "VOCtest_06-Nov-2007.tar", "md5": "0" * 32,
                      "urls": ["http://127.0.0.1:9/VOCtest_06-Nov-2007.tar"]}}
    with pytest.raises(fd.FetchError, match="no network") as e:
        fd.fetch_voc(["test"], tmp_path / "data", tmp_path / "cache", progress=False, table=table)
    assert "copy it to" in str(e.value) and "STL_VOC" in str(e.value)
    assert not (tmp_path / "cache" / "VOCtest_06-Nov-2007.tar").exists()


def test_fetch_data_download_check_extract(tmp_path, voc_dir):
    """A VOC-shaped tar served from a file:// URL: downloaded, MD5-checked, extracted, stamped."""
    import hashlib
    import tarfile

    fd = _fetch_module()
    tar_path = tmp_path / "src.tar"
    with tarfile.open(tar_path, "w") as tar:
        for rel in ("VOC2007/ImageSets/Main/test.txt", "VOC2007/Annotations/000004.xml",
                    "VOC2007/JPEGImages/000004.jpg"):
            tar.add(voc_dir / rel, arcname=f"VOCdevkit/{rel}")
    (tmp_path / "test.txt").write_text("000004\n")
    with tarfile.open(tar_path, "a") as tar:  # a one-image test list
        tar.add(tmp_path / "test.txt", arcname="VOCdevkit/VOC2007/ImageSets/Main/test.txt")
    md5 = hashlib.md5(tar_path.read_bytes()).hexdigest()
    table = {"test": {"file": "VOCtest_06-Nov-2007.tar", "md5": md5,
                      "urls": ["http://127.0.0.1:9/offline.tar", tar_path.as_uri()]}}
    root = fd.fetch_voc(["test"], tmp_path / "data", tmp_path / "cache", progress=False, table=table)
    assert root == tmp_path / "data" / "VOCdevkit" and (root / ".stl-voc2007-test.done").exists()
    ds = get_dataset("voc2007_test", root=root)
    assert ds.image_ids == ["000004"] and ds[0].read().shape == (406, 500, 3)
    assert not list((tmp_path / "data").glob(".extract-*"))
    # a second call skips the finished split, even with the tar gone
    (tmp_path / "cache" / "VOCtest_06-Nov-2007.tar").unlink()
    assert fd.fetch_voc(["test"], tmp_path / "data", tmp_path / "cache", progress=False, table=table) == root
