"""Per-image bootstrap intervals (stl.evaluation.bootstrap, `stl eval --ci`, `--paired`):
hand-computed cases, then scipy.stats.bootstrap (percentile method, same draws) on real runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from stl.data import make_record
from stl.evaluation import evaluate
from stl.evaluation.bootstrap import (eval_intervals, paired_bootstrap, percentile_interval, resample_counts,
                                      resample_indices)

A = [0, 0, 9, 9]
FAR = [80, 80, 89, 89]


def _rec(image_id, boxes, labels, difficult=None, image_labels=None):
    return make_record(image_id, None, (100, 100), boxes, labels, difficult, image_labels)


def test_percentile_interval_hand_computed():
    # 0..99: the 2.5% quantile sits at position 99 * 0.025 = 2.475 (linear interpolation), the 97.5% at 96.525
    lo, hi = percentile_interval(np.arange(100.0), 0.95)
    assert lo == pytest.approx(2.475) and hi == pytest.approx(96.525)
    # a resample on which the figure is undefined (NaN) is left out
    lo, hi = percentile_interval(np.array([np.nan, 0.0, 1.0, 2.0, 3.0, 4.0]), 0.5)
    assert (lo, hi) == (pytest.approx(1.0), pytest.approx(3.0))
    with pytest.raises(ValueError):
        percentile_interval(np.arange(3.0), 1.0)


def test_counts_are_the_draws():
    idx = resample_indices(5, 7, seed=3)
    counts = resample_counts(5, 7, seed=3)
    assert idx.shape == (7, 5) and counts.shape == (7, 5)
    assert (counts.sum(1) == 5).all()
    for b in range(7):
        assert counts[b].tolist() == np.bincount(idx[b], minlength=5).tolist()
    # seeded: the same seed gives the same draws, another seed others
    assert (resample_indices(5, 7, seed=3) == idx).all() and not (resample_indices(5, 7, seed=4) == idx).all()


def test_three_images_one_hit_hand_computed():
    """Top-1 hits (1, 0, 0): a resample's hit rate is k/3 with k ~ Binomial(3, 1/3):
    P(0) = 8/27 = .296, P(1/3) = 12/27 = .444, P(2/3) = 6/27 = .222, P(1) = 1/27 = .037.
    Cumulative .296, .741, .963, 1: the 2.5% and 5% quantiles are 0, the 95% quantile 2/3
    (.741 < .95 <= .963) and the 97.5% quantile 1 (.963 < .975)."""
    recs = [_rec(str(i), [A], ["a"]) for i in range(3)]
    props = {"0": np.array([A], float), "1": np.array([FAR], float), "2": np.array([FAR], float)}
    res = evaluate(recs, props, num_windows=[1], mode="box")
    assert res.contributions.top1.tolist() == [1, 0, 0]
    ci95 = eval_intervals(res.contributions, [1], 0.95, resamples=4000, seed=1)
    ci90 = eval_intervals(res.contributions, [1], 0.90, resamples=4000, seed=1)
    t95, t90 = ci95["top1_hit_rate"], ci90["top1_hit_rate"]
    assert t95.value == pytest.approx(1 / 3)
    assert (t95.low, t95.high) == (0.0, 1.0)
    assert (t90.low, t90.high) == (0.0, pytest.approx(2 / 3))
    # one class, one box per image: recall@1 = precision@1 = the hit rate, resample by resample
    r = ci95["recall"][1]
    assert (r.value, r.low, r.high) == (pytest.approx(1 / 3), 0.0, 1.0)
    # the share of resamples with k hits is close to the binomial law
    counts = resample_counts(3, 4000, seed=1)
    k = counts[:, 0]
    np.testing.assert_allclose([np.mean(k == j) for j in range(4)], [8 / 27, 12 / 27, 6 / 27, 1 / 27], atol=0.02)


def test_weighted_figures_hand_computed():
    """The per-class sums with image weights: the hand case of tests/test_evaluation.py
    (image 1: two a-boxes, windows TP, dup FP, FP, TP; image 2: one a-box, one difficult a-box,
    one b-box, its only window on the difficult box)."""
    r1 = _rec("1", [A, [10, 0, 19, 9]], ["a", "a"])
    r2 = _rec("2", [A, [50, 50, 59, 59], [10, 0, 19, 9]], ["a", "a", "b"], difficult=[False, True, False])
    props = {"1": (np.array([A, A, FAR, [10, 0, 19, 9]], float), np.array([4, 3, 2, 1.0])),
             "2": (np.array([[50, 50, 59, 59]], float), np.array([1.0]))}
    for profile in ("authors", "corrected"):
        res = evaluate([r1, r2], props, num_windows=[1, 2, 4, 10], mode="box", protocol=profile)
        c = res.contributions
        ones = c.figures(np.ones((1, 2)))
        np.testing.assert_allclose(ones["recall"][0], res.mean_recall)
        np.testing.assert_allclose(ones["precision"][0], res.mean_precision)
        assert ones["top1_hit_rate"][0] == res.top1_hit_rate == 0.5
        f = c.figures(np.array([[2.0, 0.0], [0.0, 2.0], [3.0, 1.0]]))
        # image 1 twice: class a only, TP (1,1,2,2) of 2 boxes, considered (1,2,4,4)
        np.testing.assert_allclose(f["recall"][0], [0.5, 0.5, 1, 1])
        np.testing.assert_allclose(f["precision"][0], [1, 0.5, 0.5, 0.5])
        # image 2 twice: nothing hit (authors: the window on the removed difficult box is a FP;
        # corrected: it is ignored, 0 windows considered -> precision 0)
        np.testing.assert_allclose(f["recall"][1], 0) and np.testing.assert_allclose(f["precision"][1], 0)
        assert f["top1_hit_rate"].tolist() == [1.0, 0.0, 0.75]
        # image 1 three times + image 2 once: class a TP 3*(1,1,2,2), GT 3*2 + 1 = 7; class b 0 of 1
        np.testing.assert_allclose(f["recall"][2], [3 / 7 / 2, 3 / 7 / 2, 6 / 7 / 2, 6 / 7 / 2])
        if profile == "authors":  # class a considered 3*(1,2,4,4) + (1,1,1,1); class b (1,1,1,1), 0 TP
            np.testing.assert_allclose(f["precision"][2], [3 / 4 / 2, 3 / 7 / 2, 6 / 13 / 2, 6 / 13 / 2])
        else:  # image 2's window is ignored for class a
            np.testing.assert_allclose(f["precision"][2], [1 / 2, 3 / 6 / 2, 6 / 12 / 2, 6 / 12 / 2])


def test_paired_difference_hand_computed():
    """A hits (1, 1, 0), B hits (1, 0, 0): the per-image differences are (0, 1, 0); the
    paired resample draws the same images for both, so A - B is distributed as the hit rate of
    (0, 1, 0): the same k/3 law as above. An unpaired bootstrap would be wider."""
    recs = [_rec(str(i), [A], ["a"]) for i in range(3)]
    a = evaluate(recs, {"0": np.array([A], float), "1": np.array([A], float), "2": np.array([FAR], float)},
                 num_windows=[1])
    b = evaluate(recs, {"0": np.array([A], float), "1": np.array([FAR], float), "2": np.array([FAR], float)},
                 num_windows=[1])
    common, diff = paired_bootstrap(a.contributions, b.contributions, [1], 0.90, resamples=4000, seed=1)
    assert common == ["0", "1", "2"]
    d = diff["top1_hit_rate"]
    assert d.value == pytest.approx(1 / 3) and (d.low, d.high) == (0.0, pytest.approx(2 / 3))
    # the interval never goes below 0: no resample has A below B
    assert diff["recall"][1].low == 0.0
    with pytest.raises(ValueError, match="no evaluated image in common"):
        paired_bootstrap(a.contributions.subset(["0"]), b.contributions.subset(["1"]), [1])


def _real_center_and_whole(ilsvrc_dir, n=120):
    from stl.data import get_dataset
    from stl.proposals import build_method

    recs = list(get_dataset("ilsvrc2012_val", root=ilsvrc_dir))[:n]
    out = {}
    for name in ("CENTER", "WHOLE-IMAGE"):
        m = build_method(name)
        props = {r.image_id: m.propose(np.zeros(r.size + (3,), np.uint8)) for r in recs}
        out[name] = evaluate(recs, props, num_windows=[1, 5], mode="image")
    return out


def test_matches_scipy_bootstrap_on_real_images(ilsvrc_dir):
    """scipy.stats.bootstrap(method="percentile", rng=default_rng(seed)) draws the same images;
    on CENTER's windows for 120 real ILSVRC images (ILSVRC: one class per image, so every image is
    one (image, class) row) the intervals of the top-1 hit rate, of recall@1 (a mean over classes of
    per-class ratios) and of the paired difference CENTER - WHOLE-IMAGE are scipy's."""
    from scipy import stats

    res = _real_center_and_whole(ilsvrc_dir)
    c = res["CENTER"].contributions
    assert len(c.row_image) == len(c.image_ids) == 120 and (c.row_image == np.arange(120)).all()
    assert c.num_classes < 120  # several images share a class: the per-class ratio is not a plain mean
    ours = eval_intervals(c, [1], 0.95, resamples=1000, seed=7)

    top1 = c.top1.astype(float)
    assert (top1 >= 0).all()
    sp = stats.bootstrap((top1,), np.mean, n_resamples=1000, method="percentile", rng=np.random.default_rng(7))
    assert ours["top1_hit_rate"].low == pytest.approx(sp.confidence_interval.low, abs=1e-12)
    assert ours["top1_hit_rate"].high == pytest.approx(sp.confidence_interval.high, abs=1e-12)

    def recall_at_1(cls, gt, tp):  # the protocol's recall on one resample of the images
        sums = {}
        for k, g, t in zip(cls, gt, tp):
            s = sums.setdefault(int(k), [0.0, 0.0])
            s[0] += t
            s[1] += g
        return np.mean([t / g for t, g in sums.values() if g > 0])

    sp = stats.bootstrap((c.row_class, c.row_gt, c.row_tp[:, 0]), recall_at_1, paired=True, vectorized=False,
                         n_resamples=1000, method="percentile", rng=np.random.default_rng(7))
    assert ours["recall"][1].value == pytest.approx(res["CENTER"].at(1)["recall"], abs=1e-12)
    assert ours["recall"][1].low == pytest.approx(sp.confidence_interval.low, abs=1e-12)
    assert ours["recall"][1].high == pytest.approx(sp.confidence_interval.high, abs=1e-12)

    w = res["WHOLE-IMAGE"].contributions
    _, diff = paired_bootstrap(c, w, [1], 0.95, resamples=1000, seed=7)
    sp = stats.bootstrap((top1, w.top1.astype(float)), lambda a, b, axis=-1: a.mean(axis) - b.mean(axis),
                         paired=True, n_resamples=1000, method="percentile", rng=np.random.default_rng(7))
    assert diff["top1_hit_rate"].low == pytest.approx(sp.confidence_interval.low, abs=1e-12)
    assert diff["top1_hit_rate"].high == pytest.approx(sp.confidence_interval.high, abs=1e-12)


def test_cli_eval_ci_and_paired(tmp_path, ilsvrc_dir, capsys):
    from stl.cli import main

    out = tmp_path / "runs"
    assert main(["run", "--dataset", "ilsvrc2012_val", "--root", str(ilsvrc_dir), "--method", "CENTER",
                 "WHOLE-IMAGE", "--limit", "60", "--out", str(out), "--no-progress"]) == 0
    a, b = out / "ilsvrc2012_val" / "CENTER.h5", out / "ilsvrc2012_val" / "WHOLE-IMAGE.h5"
    capsys.readouterr()
    assert main(["eval", str(a), "--ci", "0.95", "--n", "1", "10", "--csv", str(tmp_path / "e.csv"),
                 "--json", str(tmp_path / "e.json")]) == 0
    text = capsys.readouterr().out
    assert "95% per-image bootstrap interval (percentile method, 1000 resamples, seed 0)" in text
    assert "recall ours [CI]" in text and "top-1 hit rate: " in text and "] (" in text
    head = (tmp_path / "e.csv").read_text().splitlines()[0]
    assert head.endswith("recall_low,recall_high,precision_low,precision_high")
    iv = json.loads((tmp_path / "e.json").read_text())[str(a)]["intervals"]
    assert iv["top1_hit_rate"]["low"] <= iv["top1_hit_rate"]["value"] <= iv["top1_hit_rate"]["high"]
    assert iv["recall"]["10"]["resamples"] == 1000
    # the same seed gives the same interval; the interval is that of the library
    ev = json.loads((tmp_path / "e.json").read_text())[str(a)]
    assert main(["eval", str(a), "--ci", "0.95", "--n", "1", "10", "--json", str(tmp_path / "f.json")]) == 0
    assert json.loads((tmp_path / "f.json").read_text())[str(a)]["intervals"] == iv
    assert ev["top1_hit_rate"] == iv["top1_hit_rate"]["value"]

    capsys.readouterr()
    assert main(["eval", str(a), str(b), "--paired", "--n", "1", "--json", str(tmp_path / "p.json"),
                 "--md", str(tmp_path / "p.md")]) == 0
    text = capsys.readouterr().out
    assert "A - B on the 60 images both evaluate" in text and "| top-1 hit rate |" in text
    pair = json.loads((tmp_path / "p.json").read_text())["paired"]
    assert pair["images"] == 60 and pair["level"] == 0.95
    top = pair["rows"][0]
    assert top["figure"] == "top-1 hit rate"
    ra = json.loads((tmp_path / "p.json").read_text())
    assert top["diff"] == pytest.approx(ra[str(a)]["top1_hit_rate"] - ra[str(b)]["top1_hit_rate"])
    assert top["diff_low"] <= top["diff"] <= top["diff_high"]
    assert "interval excludes 0" in (tmp_path / "p.md").read_text()
    # provenance: the command, the code's commit, each run's images; one table of all runs first
    md = (tmp_path / "p.md").read_text()
    assert md.startswith(f"command: `stl eval {a} {b} --paired --n 1 --json ") and "code: commit " in md
    assert md.index("## All runs") < md.index("### ")
    assert md.count("| CENTER | 1 |") == 2 and "| WHOLE-IMAGE | 1 |" in md  # the all-runs table and its own
    assert "| CENTER | 60 | " in md  # the top-1 table: images and rate
    # --plot: Fig. 3's two panels of both runs, PNG + PDF
    assert main(["eval", str(a), str(b), "--n", "1", "--plot", str(tmp_path / "curves.png")]) == 0
    import matplotlib.image
    assert matplotlib.image.imread(tmp_path / "curves.png").shape[:2] == (690, 1650)
    assert (tmp_path / "curves.pdf").read_bytes().startswith(b"%PDF")
    # --images: only these ids, from the command line or @FILE; a run lacking one is refused
    ids = prov_ids = ra["provenance"]["runs"][0]["image_ids"][:10]
    (tmp_path / "ids.txt").write_text("\ufeff" + "\n".join(ids[5:]) + "\n")
    assert main(["eval", str(a), str(b), "--images", *ids[:5], f"@{tmp_path / 'ids.txt'}",
                 "--json", str(tmp_path / "s.json")]) == 0
    sub = json.loads((tmp_path / "s.json").read_text())
    assert [r["image_ids"] for r in sub["provenance"]["runs"]] == [prov_ids, prov_ids]
    capsys.readouterr()
    assert main(["eval", str(a), "--images", ids[0], "ILSVRC2012_val_99999999"]) == 2
    assert "1 of the 2 images asked for are not in this run (e.g. ILSVRC2012_val_99999999)" in capsys.readouterr().err
    prov = ra["provenance"]
    assert prov["runs"][0]["image_ids"] == ra[str(a)].get("image_ids", prov["runs"][0]["image_ids"])
    assert [r["num_images"] for r in prov["runs"]] == [60, 60] and len(set(prov["runs"][0]["image_ids"])) == 60
    assert prov["commit"] and prov["runs"][1]["method"] == "WHOLE-IMAGE"


@pytest.mark.parametrize("argv, what", [
    (["--paired"], "--paired compares two runs"),
    (["--ci", "1.5"], "--ci"), (["--ci", "0"], "--ci"), (["--resamples", "0"], "--resamples"),
])
def test_cli_eval_ci_bad_options(tmp_path, argv, what, capsys):
    from stl.cli import main

    run = tmp_path / "x.h5"
    run.write_bytes(b"")
    try:
        code = main(["eval", str(run), *argv])
    except SystemExit as e:  # argparse's one-line error (stl.cli.Parser)
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stl: error:") and what in err[0]


# ----------------------------------------------------------------------------- stl wsol
def test_wsol_resampled_metrics_hand_computed():
    """Two images, thresholds (0.1, 0.2, 0.3); best IoU per tau: a (0.8, 0.4, 0), b (0, 0.6, 0.9);
    a's class right, b's wrong (the case of tests/test_wsol.py)."""
    from stl.wsol.metrics import WSOLScores

    sc = WSOLScores(thresholds=np.array([0.1, 0.2, 0.3]))
    sc.add("a", [0.8, 0.4, 0.0], [0.8, 0.4, 0.0], True)
    sc.add("b", [0.0, 0.6, 0.9], [0.0, 0.6, 0.9], False)
    f = sc.resampled(np.array([[1.0, 1.0], [2.0, 0.0], [3.0, 1.0]]))
    summary = sc.summary()
    for k, v in f.items():
        assert v[0] == pytest.approx(summary[k]), k
    # a twice: a hits at every delta at tau 0.1 -> 100 everywhere, Top-1 Loc 100
    assert f["max_box_acc_v2"][1] == pytest.approx(100) and f["top1_loc"][1] == pytest.approx(100)
    # a three times, b once: delta 0.3: tau 0.2 hits both (100); 0.5: tau 0.1 (a: 75); 0.7: tau 0.1 (75)
    # -> MaxBoxAccV2 (100 + 75 + 75) / 3; tau* = 0.1 (BoxAcc 75, 25, 25): Top-1 Loc 75
    assert f["max_box_acc_iou30"][2] == pytest.approx(100) and f["max_box_acc_iou50"][2] == pytest.approx(75)
    assert f["max_box_acc_v2"][2] == pytest.approx(250 / 3) and f["top1_loc"][2] == pytest.approx(75)


def test_wsol_maxboxaccv2_interval_matches_scipy(ilsvrc_dir):
    """MaxBoxAccV2 of a Gaussian-blob score map per real image (centred on the image) against the real
    boxes of 40 ILSVRC images: our interval is scipy.stats.bootstrap's on the image indices."""
    from scipy import stats

    from stl.data import get_dataset
    from stl.experiments.wsol import build_selection, wsol_summary
    from stl.wsol.metrics import IOU_THRESHOLDS, WSOLScores, scoremap_ious

    from stl.models.base import ClassList

    class _Clf:  # build_selection only needs the class list of a 1000-class ImageNet classifier
        classes = ClassList.imagenet()

    sel = build_selection(get_dataset("ilsvrc2012_val", root=ilsvrc_dir), _Clf(), limit=40)
    yy, xx = np.mgrid[0:224, 0:224]
    sc = WSOLScores()
    for k, i in enumerate(sel.ids):
        s = 30 + 2 * k  # blobs of different widths: different IoUs and best thresholds
        m = np.exp(-((yy - 112) ** 2 + (xx - 112) ** 2) / (2.0 * s * s))
        largest, every = scoremap_ious((m - m.min()) / (m.max() - m.min()), sel.infos[i].gt224)
        sc.add(i, largest, every, True)
    ours = wsol_summary(sc, (0.95, 1000, 5))
    every = np.stack(sc.iou_all)

    def v2(idx):
        rows = every[np.asarray(idx, int)]
        return np.mean([((rows >= d).mean(0) * 100).max() for d in IOU_THRESHOLDS])

    sp = stats.bootstrap((np.arange(len(sc)),), v2, vectorized=False, n_resamples=1000, method="percentile",
                         rng=np.random.default_rng(5))
    assert ours["max_box_acc_v2"] == pytest.approx(v2(np.arange(len(sc))))
    assert ours["intervals"]["max_box_acc_v2"]["low"] == pytest.approx(sp.confidence_interval.low, abs=1e-9)
    assert ours["intervals"]["max_box_acc_v2"]["high"] == pytest.approx(sp.confidence_interval.high, abs=1e-9)
    assert sp.confidence_interval.high - sp.confidence_interval.low > 1  # not a degenerate case


def test_blocks_of_resamples_change_nothing(ilsvrc_dir, monkeypatch):
    """The figures are computed in blocks of resamples (memory on large sets); the draws are made in
    one call, so any block size gives the same intervals."""
    from stl.evaluation import bootstrap

    c = _real_center_and_whole(ilsvrc_dir, n=60)["CENTER"].contributions
    whole = eval_intervals(c, [1, 5], 0.95, resamples=300, seed=2)
    monkeypatch.setattr(bootstrap, "_BATCH_ELEMENTS", 7 * 60)  # blocks of 7 resamples
    blocks = eval_intervals(c, [1, 5], 0.95, resamples=300, seed=2)
    assert blocks["top1_hit_rate"] == whole["top1_hit_rate"]
    assert blocks["recall"] == whole["recall"] and blocks["precision"] == whole["precision"]
