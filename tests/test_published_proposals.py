"""``*-PUBLISHED`` methods: the proposals Hosang et al. published for PASCAL VOC 2007 test, read
in the exact layout of their benchmark (``save_candidates_mat``: ``<dir>/mat/<id[:4]>/<id>.mat``
with ``boxes`` [x1 y1 x2 y2] 1-based, ``scores``, ``num_candidates``; the order of
``get_method_configs.m``), and ``make data``'s fetch of them."""
from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from stl.proposals import build_method
from stl.proposals.precomputed import HOSANG_VOC07

REPO = Path(__file__).resolve().parents[1]


def save_candidates(root: Path, method: str, img_id: str, boxes, scores, num_candidates=None):
    """What Hosang's ``save_candidates_mat(dirname, img_id, boxes, scores, num_candidates)`` writes
    (MATLAB ``save`` of the three variables; a cell of runs when several)."""
    path = root / HOSANG_VOC07[method]["dir"] / "mat" / img_id[:4] / f"{img_id}.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"boxes": boxes, "scores": scores,
                                 "num_candidates": [] if num_candidates is None else num_candidates})
    return path


def test_edgeboxes_published_sorted_by_score_1_based(tmp_path):
    boxes = np.array([[1, 1, 500, 375], [11, 21, 110, 220], [300, 100, 600, 200]], np.float64)
    save_candidates(tmp_path, "EDGEBOXES", "000004", boxes, np.array([[0.2], [0.9], [0.5]]))
    m = build_method("EDGEBOXES-PUBLISHED", root=tmp_path)
    assert m.needs_image_id and m.name == "EDGEBOXES-PUBLISHED"
    b, s = m.propose(np.zeros((375, 500, 3), np.uint8), image_id="000004")
    np.testing.assert_array_equal(b, [[10, 20, 109, 219], [299, 99, 499, 199], [0, 0, 499, 374]])  # clipped
    np.testing.assert_array_equal(s, [0.9, 0.5, 0.2])


def test_selsearch_published_is_ascending_priority_and_mcg_file_order(tmp_path):
    boxes = np.array([[1, 1, 50, 50], [2, 2, 60, 60], [3, 3, 70, 70]], np.float64)
    # Selective Search: scores are the release's priorities, lower = better ('ascend')
    save_candidates(tmp_path, "SELSEARCH", "000010", boxes, np.array([[0.7], [0.1], [0.4]]))
    b, s = build_method("SELSEARCH-PUBLISHED", root=tmp_path).propose(None, image_id="000010")
    np.testing.assert_array_equal(b[:, 0], [1, 2, 0])
    assert (np.diff(s) < 0).all()
    # MCG: 'none', the file order is the ranking whatever the scores say
    save_candidates(tmp_path, "MCG", "000010", boxes, np.array([[0.1], [0.9], [0.5]]))
    b, _ = build_method("MCG-PUBLISHED", root=tmp_path).propose(None, image_id="000010")
    np.testing.assert_array_equal(b[:, 0], [0, 1, 2])


def test_a_file_of_several_runs_gives_the_nearest_num_candidates(tmp_path):
    runs = np.empty((1, 2), object)
    runs[0, 0] = np.array([[1, 1, 10, 10]], np.float64)
    runs[0, 1] = np.array([[1, 1, 20, 20], [5, 5, 30, 30]], np.float64)
    sc = np.empty((1, 2), object)
    sc[0, 0] = np.array([[1.0]])
    sc[0, 1] = np.array([[0.5], [0.8]])
    save_candidates(tmp_path, "EDGEBOXES", "000001", runs, sc, num_candidates=np.array([[100, 1000]]))
    b, s = build_method("EDGEBOXES-PUBLISHED", root=tmp_path).propose(None, image_id="000001")
    np.testing.assert_array_equal(b, [[4, 4, 29, 29], [0, 0, 19, 19]])  # the 1000 run (nearest 10000)
    b, _ = build_method("EDGEBOXES-PUBLISHED", root=tmp_path, num_candidates=50).propose(None, image_id="000001")
    np.testing.assert_array_equal(b, [[0, 0, 9, 9]])


def test_missing_published_proposals_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"make data.*STL_HOSANG_DIR"):
        build_method("MCG-PUBLISHED", root=tmp_path)


def test_published_methods_compare_with_the_papers_curve():
    from stl.evaluation.reference import paper_value

    assert paper_value("PASCAL2007_TEST", "EDGEBOXES-PUBLISHED", "recall", 10) == \
        paper_value("PASCAL2007_TEST", "EDGEBOXES", "recall", 10)
    assert np.isfinite(paper_value("PASCAL2007_TEST", "MCG-PUBLISHED", "precision", 100))


def _fetch_module():
    from conftest import load_script

    return load_script("data/fetch_data.py", "fetch_data")


def test_make_data_fetches_an_archive_in_hosangs_layout_and_explains_offline(tmp_path):
    fetch = _fetch_module()
    src = tmp_path / "src"
    mat = save_candidates(src, "MCG", "000004", np.array([[1.0, 1, 9, 9]]), np.array([[1.0]]))
    archive = tmp_path / "MCG.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(src / "MCG", arcname="MCG")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    table = {"MCG": dict(HOSANG_VOC07["MCG"], url=archive.as_uri(), archive="MCG.tar.gz", md5=md5)}
    dest = tmp_path / "hosang"
    fetch.fetch_hosang(["MCG"], dest, tmp_path / "cache", progress=False, table=table)
    assert (dest / "MCG" / "mat" / "0000" / "000004.mat").read_bytes() == mat.read_bytes()
    b, _ = build_method("MCG-PUBLISHED", root=dest).propose(None, image_id="000004")
    np.testing.assert_array_equal(b, [[0, 0, 8, 8]])
    fetch.fetch_hosang(["MCG"], dest, tmp_path / "cache", progress=False, table=table)  # stamp: nothing to do
    # a wrong checksum is refused; no network -> one message that names the page and what to do
    bad = {"MCG": dict(table["MCG"], md5="0" * 32)}
    with pytest.raises(fetch.FetchError, match="MD5 mismatch"):
        fetch.fetch_hosang(["MCG"], tmp_path / "d2", tmp_path / "cache2", progress=False, table=bad)
    off = {"EDGEBOXES": dict(HOSANG_VOC07["EDGEBOXES"], url=(tmp_path / "nowhere.tar.gz").as_uri())}
    with pytest.raises(fetch.FetchError, match=r"how-good-are-detection-proposals.*rerun `make data`"):
        fetch.fetch_hosang(["EDGEBOXES"], tmp_path / "d3", tmp_path / "cache3", progress=False, table=off)
