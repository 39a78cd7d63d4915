"""Scoring the ``stl wsol`` methods: score maps and boxes by the WSOL benchmark's metrics
(:mod:`stl.wsol.metrics`), boxes by the paper's protocol.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ...wsol.metrics import WSOLScores, box_ious, cam_thresholds, resize_box, scoremap_ious
from .passes import Selection, scoremap_path

log = logging.getLogger("stl.experiments.wsol")


# ----------------------------------------------------------------------------- scoring
def score_heatmap_method(sel: Selection, out: Path, method: str, preds: Dict[str, int],
                         ids: Optional[Sequence[str]] = None) -> WSOLScores:
    sc = WSOLScores()
    thr = cam_thresholds()
    for i in (ids if ids is not None else sel.ids):
        info = sel.infos[i]
        p = scoremap_path(out, method, info.name)
        if not p.exists():
            continue
        largest, every = scoremap_ious(np.load(p), info.gt224, thr)
        sc.add(i, largest, every, preds.get(i) == info.label)
    return sc


def box_to_224(box, file_size_hw) -> Tuple[int, int, int, int]:
    h, w = file_size_hw
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, y0 = max(x0, 0.0), max(y0, 0.0)
    x1, y1 = min(x1, w - 1.0), min(y1, h - 1.0)
    return resize_box((x0, y0, x1, y1), (w, h))


def score_box_method(sel: Selection, boxes: Dict[str, np.ndarray], preds: Dict[str, int]) -> WSOLScores:
    sc = WSOLScores()
    n = len(sc.thresholds)
    for i, b in boxes.items():
        if i not in sel.infos or len(b) == 0:
            continue
        info = sel.infos[i]
        largest, every = box_ious(box_to_224(b[0], sel.dataset.record(i).size), info.gt224, n)
        sc.add(i, largest, every, preds.get(i) == info.label)
    return sc


def protocol_rows(sel: Selection, proposals: Dict[str, Dict[str, tuple]], ids: Sequence[str],
                  ci: Optional[Tuple[float, int, int]] = None) -> Dict[str, dict]:
    """The paper's protocol (stl eval: IoU >= 0.5, mean per class) on ``ids``: top-1 hit rate,
    recall@1/5/10; with ``ci`` = (level, resamples, seed) each with its per-image bootstrap
    interval (``row["intervals"][figure] = {"low", "high"}``, :mod:`stl.evaluation.bootstrap`), and
    every other method's paired difference to CENTER on the same images
    (``row["paired_vs_center"][figure] = {"diff", "low", "high"}``, the same draws for both)."""
    from ...evaluation import evaluate
    from ...evaluation.bootstrap import eval_intervals, paired_bootstrap

    records = [sel.dataset.record(i) for i in ids]
    rows, results = {}, {}
    for name, props in proposals.items():
        if not ids or any(i not in props for i in ids):
            continue
        res = results[name] = evaluate(records, {i: props[i] for i in ids}, num_windows=(1, 5, 10), mode="image")
        rows[name] = {"images": len(ids), "top1_hit_rate": res.top1_hit_rate,
                      **{f"recall@{n}": res.at(n)["recall"] for n in (1, 5, 10)}}
        if ci is not None and res.image_ids:
            iv = eval_intervals(res.contributions, (1, 5, 10), *ci)
            rows[name]["intervals"] = {"top1_hit_rate": _lh(iv["top1_hit_rate"]),
                                       **{f"recall@{n}": _lh(iv["recall"][n]) for n in (1, 5, 10)}}
    center = results.get("CENTER")
    if ci is not None and center is not None and center.image_ids:
        for name, res in results.items():
            if name == "CENTER" or not res.image_ids:
                continue
            _, d = paired_bootstrap(res.contributions, center.contributions, (1, 5, 10), *ci)
            rows[name]["paired_vs_center"] = {
                "top1_hit_rate": _dlh(d["top1_hit_rate"]), **{f"recall@{n}": _dlh(d["recall"][n]) for n in (1, 5, 10)}}
    return rows


def paired_wsol(a: WSOLScores, b: WSOLScores, image_ids: Sequence[str], ci: Tuple[float, int, int],
                metrics: Sequence[str] = ("max_box_acc_v2", "max_box_acc", "top1_loc")) -> Dict[str, dict]:
    """The paired difference ``a - b`` of WSOL metrics on the images ``image_ids`` both have, with
    its per-image bootstrap interval: ``{metric: {"diff", "low", "high", "images"}}`` in points.
    Each resample draws the same images for both (``ci`` = (level, resamples, seed)), and every
    metric -- its max over thresholds included -- is recomputed on it for each method."""
    from ...evaluation.bootstrap import percentile_interval, resampled

    common = [i for i in image_ids if i in set(a.image_ids) and i in set(b.image_ids)]
    if not common:
        return {}
    sa, sb = a.subset(common), b.subset(common)
    level, resamples, seed = ci

    def figures(counts):
        ra, rb = sa.resampled(counts), sb.resampled(counts)
        return {m: ra[m] - rb[m] for m in metrics}

    boot = resampled(len(common), figures, resamples, seed, max(len(common), len(sa.thresholds)))
    ones = np.ones((1, len(common)))
    point = figures(ones)
    out = {}
    for m in metrics:
        lo, hi = percentile_interval(boot[m], level)
        out[m] = {"diff": float(point[m][0]), "low": float(lo), "high": float(hi), "images": len(common)}
    return out


def _dlh(iv) -> dict:
    return {"diff": iv.value, "low": iv.low, "high": iv.high}


def _lh(iv) -> dict:
    return {"low": iv.low, "high": iv.high}


def wsol_summary(scores: WSOLScores, ci: Optional[Tuple[float, int, int]] = None) -> dict:
    """:meth:`WSOLScores.summary`, with ``ci`` = (level, resamples, seed) also every metric's per-image
    bootstrap interval (``["intervals"][metric] = {"low", "high"}``; images resampled with
    replacement, each metric -- its max over tau included -- recomputed per resample)."""
    from ...evaluation.bootstrap import percentile_interval, resampled

    out = scores.summary()
    if ci is not None and len(scores):
        level, resamples, seed = ci
        boot = resampled(len(scores), scores.resampled, resamples, seed, max(len(scores), len(scores.thresholds)))
        out["intervals"] = {}
        for k, v in boot.items():
            lo, hi = percentile_interval(v, level)
            out["intervals"][k] = {"low": float(lo), "high": float(hi)}
    return out
