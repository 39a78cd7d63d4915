"""stl fig3 (stl.experiments.fig3): the plotted data is the data given (checked with the paper's own
curves), data selection, tables, and a small run on the real shared data."""
from __future__ import annotations

import json

import numpy as np
import pytest

from stl.experiments import fig3 as fig3_module


@pytest.fixture(scope="module")
def fig3():
    return fig3_module


def stl_fig3(*argv) -> int:
    from stl.cli import main

    return main(["fig3", *argv])


@pytest.mark.parametrize("key", ["ILSVRC2012_200rnd_VAL", "PASCAL2007_TEST"])
def test_plotted_lines_equal_published_points(fig3, key):
    from stl.evaluation import paper_curves

    from stl import resources

    raw = resources.read_json(*resources.PAPER_REFERENCE)
    names = raw["method_names"]
    paper = paper_curves(key)
    # feed the paper's curves through the plotting path as "ours" and as the overlay
    fig = fig3.plot_fig3(paper, paper, title=key)
    axes = fig.axes
    assert [ax.get_xscale() for ax in axes] == ["log", "log"]
    for ax, metric in zip(axes, ("recall", "precision")):
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        published = raw["curves"][f"{key}/mean_{metric}"]
        assert len(published) > 0
        for c in published:
            name = names.get(c["method"], c["method"])
            for label, style in ((name, "-"), (f"{name} (paper)", "--")):
                ln = lines[label]
                assert ln.get_linestyle() == style
                np.testing.assert_array_equal(ln.get_xdata(), c["num_bboxes"])
                np.testing.assert_array_equal(ln.get_ydata(), c["values"])
            # same colour for ours and the paper's curve of a method
            assert lines[name].get_color() == lines[f"{name} (paper)"].get_color()
        assert len(lines) == 2 * len(published)


def test_choose_data_fallbacks(fig3, monkeypatch, tmp_path):
    import stl.data

    for var in ("STL_ILSVRC", "STL_VOC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(stl.data, "dataset_links", lambda links: [])  # no data/ilsvrc, data/VOCdevkit links
    shared = tmp_path / "shared"
    (shared / "data" / "ilsvrc2012-val-227").mkdir(parents=True)
    (shared / "data" / "voc2007-test-sample").mkdir(parents=True)
    monkeypatch.setenv("STL_SHARED", str(shared))
    got = fig3.choose_data()
    assert [d.name for d in got] == ["ilsvrc2012_val", "voc2007_test"]
    assert all("shared sample" in d.description and "NOT the full" in d.description for d in got)
    assert got[0].subset == "200rnd"
    monkeypatch.setenv("STL_SHARED", str(tmp_path / "none"))
    got = fig3.choose_data()
    assert [d.name for d in got] == ["sample"] and "bundled sample" in got[0].description
    # a configured root wins, and only the configured datasets run
    monkeypatch.setenv("STL_VOC", str(shared / "data" / "voc2007-test-sample"))
    got = fig3.choose_data()
    assert [d.name for d in got] == ["voc2007_test"] and "PASCAL VOC 2007 test at" in got[0].description


def test_default_methods(fig3):
    from stl.proposals import available_methods

    m = fig3.choose_methods(None)
    assert m[:7] == list(fig3.DEFAULT_METHODS)
    assert set(m[7:]) <= set(available_methods())
    assert fig3.choose_methods("stl-wl, center") == ["STL-WL", "CENTER"]


def test_fig3_small_run_on_shared_data(fig3, shared_dir, tmp_path, capsys):
    out = tmp_path / "fig3"
    rc = stl_fig3(*["--ilsvrc", str(shared_dir / "data" / "ilsvrc2012-val-227"),
                    "--voc", str(shared_dir / "data" / "voc2007-test-sample"),
                    "--methods", "WHOLE-IMAGE,CENTER,NO-SUCH-METHOD", "--limit", "6", "--out", str(out),
                    "--no-progress"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "WARNING: method NO-SUCH-METHOD cannot be built and is SKIPPED" in captured.err
    for key in ("ilsvrc2012_val_200rnd", "voc2007_test"):
        for ext in ("png", "pdf"):
            assert (out / f"fig3_{key}.{ext}").stat().st_size > 1000
    table = (out / "fig3_table.md").read_text()
    assert "Data used: ILSVRC-2012 val at" in table and "First 6 images" in table
    assert "NO-SUCH-METHOD" in table  # listed as skipped
    assert "| CENTER | 1000 |" in table
    methods = (out / "fig3_methods.csv").read_text().splitlines()
    assert methods[0].startswith("profile,dataset,method,images,top1_hit_rate,R@1")
    assert all(line.startswith("authors,") for line in methods[1:])  # the default evaluation profile
    assert len(methods) == 1 + 2 * 2
    curves = json.loads((out / "fig3_curves.json").read_text())
    assert curves["datasets"]["voc2007_test"]["methods"]["CENTER"]["num_images"] == 6
    assert curves["profile"] == "authors" and "Evaluation: profile authors" in table
    # rerun: everything is already stored; the other evaluation profile reuses the stored windows
    assert stl_fig3("--ilsvrc", str(shared_dir / "data" / "ilsvrc2012-val-227"), "--methods", "CENTER",
                    "--limit", "6", "--out", str(out), "--no-progress", "--profile", "corrected") == 0
    curves = json.loads((out / "fig3_curves.json").read_text())
    assert curves["profile"] == "corrected"
    assert curves["datasets"]["ilsvrc2012_val_200rnd"]["methods"]["CENTER"]["protocol"]["difficult"] == "ignore"
    assert "Evaluation: profile corrected" in (out / "fig3_table.md").read_text()


@pytest.mark.slow
def test_fig3_stl_on_one_real_image(fig3, shared_dir, tmp_path):
    """STL-WL and STL-CL through the whole fig3 path on one real ILSVRC image and STL-WL on one
    VOC image (minutes per image and method on a 2-core CPU: 3-6 min each when measured on a
    busy 2-core machine)."""
    out = tmp_path / "fig3"
    assert stl_fig3("--ilsvrc", str(shared_dir / "data" / "ilsvrc2012-val-227"), "--methods", "STL-WL,STL-CL",
                    "--limit", "1", "--out", str(out), "--no-progress") == 0
    curves = json.loads((out / "fig3_curves.json").read_text())["datasets"]["ilsvrc2012_val_200rnd"]["methods"]
    for m in ("STL-WL", "STL-CL"):
        assert curves[m]["num_images"] == 1
        r = curves[m]["mean_recall"]
        assert all(0 <= a <= b <= 1 for a, b in zip(r, r[1:]))  # recall grows with N
        assert r[-1] > 0  # with hundreds of windows the object is found


def test_fig3_draws_published_edgeboxes_and_mcg_on_voc(fig3, shared_dir, tmp_path, monkeypatch, capsys):
    """``stl fig3 --voc``: EdgeBoxes and MCG from files in Hosang et al.'s layout, listed by default once
    present, compared with the paper's EDGEBOXES / MCG curves and labelled as published boxes."""
    import scipy.io

    from stl.data import get_dataset
    from stl.proposals.precomputed import HOSANG_VOC07

    voc = shared_dir / "data" / "voc2007-test-sample"
    ds = get_dataset("voc2007_test", root=voc)
    hosang = tmp_path / "hosang"
    for method in ("EDGEBOXES", "MCG"):
        for rec in ds:  # the ground-truth boxes (1-based) and the whole image, as a published file would hold
            gt = np.asarray(rec.boxes, np.float64) + 1
            h, w = rec.read().shape[:2]
            boxes = np.vstack([[1, 1, w, h], gt])
            path = hosang / HOSANG_VOC07[method]["dir"] / "mat" / rec.image_id[:4] / f"{rec.image_id}.mat"
            path.parent.mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(str(path), {"boxes": boxes, "scores": np.arange(len(boxes), 0, -1.0)[:, None],
                                         "num_candidates": []})
    monkeypatch.setenv("STL_HOSANG_DIR", str(hosang))
    assert fig3.choose_methods(None)[7:9] == ["EDGEBOXES-PUBLISHED", "MCG-PUBLISHED"]
    out = tmp_path / "fig3"
    assert stl_fig3("--voc", str(voc), "--methods", "EDGEBOXES-PUBLISHED,MCG-PUBLISHED", "--out", str(out),
                    "--no-progress") == 0
    table = (out / "fig3_table.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| EDGEBOXES-PUBLISHED | 1000 |"))
    assert "| 100.0 |" in row and "| - |" not in row  # every object found; the paper's EDGEBOXES value beside it
    curves = json.loads((out / "fig3_curves.json").read_text())["datasets"]["voc2007_test"]["methods"]
    assert set(curves) == {"EDGEBOXES-PUBLISHED", "MCG-PUBLISHED"}
    assert fig3.label_of("MCG-PUBLISHED") == "MCG (boxes published by Hosang et al.)"
    assert fig3.color_of("MCG-PUBLISHED", {}) == fig3.COLORS["MCG"]
