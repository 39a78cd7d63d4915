"""The ``stl wsol`` pipeline: every method on one ILSVRC val set, scored like the WSOL benchmark.

Layout under ``out`` (default ``results/wsol``)::

    scoremaps/<METHOD>/<image name>.npy   one 224 x 224 float64 score map in [0, 1] per image,
                                          for the ground-truth class; <image name> is the
                                          wsolevaluation image id (``val/ILSVRC2012_val_*.JPEG``),
                                          so their evaluation.py reads these folders unchanged
    predictions__<model>.json             top-1 class of every image (for Top-1 Loc)
    wsol__<model>.md / .json              the table (and every number behind it)
    stlplus_selection__<model>.json       STL+'s weight search on the first half
    figure__<model>.png                   heatmaps + boxes for 8 images

Resuming: score maps that exist are not recomputed; STL-CL / STL-WL windows come from
(and are added to) the same HDF5 store as ``stl run`` (``--runs``, default results/runs),
through :func:`stl.runner.run_method`.

Halves: the STL+ protocol splits the dataset's FULL image list (``image_ids.txt`` order)
into a first half (selection) and a second half (report). ``stl_limit`` / ``rise_limit``
take the first ceil(n/2) selected images of each half, so both halves are represented.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...core.config import DEFAULT
from ...wsol.heatmaps import STL_HEATMAP_RULE, RISEConfig, conv_head
from ...wsol.metrics import WSOLScores
from ..common import write_text
from ...paths import source_revision
from .figure import make_figure
from .passes import (Selection, _input_image, _write_json, build_selection, check_inputs_stamp,
                     classifier_pass, rise_pass, scoremap_path, stl_pass, stl_scoremaps, stlplus_features)
from .report import PUBLISHED, format_report
from .scoring import paired_wsol, protocol_rows, score_box_method, score_heatmap_method, wsol_summary

log = logging.getLogger("stl.experiments.wsol")

#: the methods ``stl wsol`` runs by default
ALL_METHODS = ("CAM", "GRAD-CAM", "RISE", "STL-CL", "STL-WL", "WHOLE-IMAGE", "CENTER")


# ----------------------------------------------------------------------------- orchestration
@dataclass
class BenchmarkOptions:
    out: Path = Path("results/wsol")
    runs: Path = Path("results/runs")
    model: str = "efficientnet_lite0"
    methods: Sequence[str] = ALL_METHODS
    limit: Optional[int] = None
    images: Optional[Sequence[str]] = None
    stl_limit: Optional[int] = None
    stl_compute: bool = True
    rise_limit: Optional[int] = None
    rise: RISEConfig = field(default_factory=RISEConfig)
    heatmap_rule: str = STL_HEATMAP_RULE
    plus: Optional[object] = None  # STLPlusConfig; None: the defaults
    config: Optional[object] = None  # STLConfig of the STL runs; None: the default (authors) profile
    select_plus: bool = True
    #: write the selected STL+ weights into the package resource (:func:`stl.wsol.stlplus.freeze_weights`)
    freeze_plus: bool = False
    #: the command line that asked for this run (recorded with frozen weights)
    command: Optional[str] = None
    #: (level, resamples, seed) of the per-image bootstrap intervals (``--ci``); None: no intervals
    ci: Optional[Tuple[float, int, int]] = None
    figure_images: int = 8
    save_top1: bool = False
    progress: bool = True


def _freeze(pname, cfg, rows, first, sel, opt) -> None:
    """Record the weights selected for ``pname`` on the first-half images ``first`` in the package."""
    import time

    from ... import resources
    from ...wsol.stlplus import FROZEN_RESOURCE, freeze_weights

    best = next(r for r in rows if (r["alpha"], r["beta"], r["gamma"]) == (cfg.alpha, cfg.beta, cfg.gamma))
    path = resources.config(FROZEN_RESOURCE)
    freeze_weights(path, pname, cfg, {
        "dataset": sel.dataset.describe(), "model": opt.model, "half": "first (image_ids.txt order, split at half)",
        "num_images": len(first), "image_ids": list(first),
        "criterion": "top-1 hit rate (IoU >= 0.5), then mean top-1 IoU, then the smaller alpha + beta + gamma",
        "top1_hit_rate": best["top1_hit_rate"], "mean_top1_iou": best["mean_top1_iou"], "grid_points": len(rows),
        "command": opt.command or "run_wsol (Python API)", "commit": source_revision(),
        "date": time.strftime("%Y-%m-%d")})
    log.info("%s: weights %s frozen in %s (selected on %d first-half images)", pname, cfg.identity(), path, len(first))


def run_wsol(dataset, classifier, opt: BenchmarkOptions) -> dict:
    """Compute what is missing, score everything, write the table / JSON / figure; return the report."""
    from ...proposals import build_method
    from ...wsol.stlplus import STLPlusConfig, rerank, select_weights

    out = Path(opt.out)
    out.mkdir(parents=True, exist_ok=True)
    methods = [m.upper() for m in opt.methods]
    t0 = time.time()
    sel = build_selection(dataset, classifier, opt.limit, opt.images)
    log.info("%d images selected (%d in the first half, %d in the second)", len(sel.ids),
             sum(sel.infos[i].half == 0 for i in sel.ids), sum(sel.infos[i].half == 1 for i in sel.ids))
    config = opt.config or DEFAULT
    check_inputs_stamp(out, classifier, opt.model, config.input_resize)
    preds = classifier_pass(sel, classifier, out, opt.model, methods, progress=opt.progress, save_top1=opt.save_top1,
                            input_resize=config.input_resize)
    notes: List[str] = []
    head_note = None
    if "CAM" in methods or "GRAD-CAM" in methods:
        head = conv_head(classifier)
        head_note = head.cam_note
        notes.append(head.cam_note + f" (feature map: {head.feature_name}).")
    if "RISE" in methods:
        rise_pass(sel, classifier, out, sel.spread(opt.rise_limit), opt.rise, opt.progress, opt.save_top1, preds,
                  input_resize=config.input_resize)
    stl_names = [m for m in ("STL-CL", "STL-WL") if m in methods]
    stored = stl_pass(sel, classifier, sel.spread(opt.stl_limit), Path(opt.runs), opt.model, stl_names,
                      compute=opt.stl_compute, progress=opt.progress, config=opt.config) if stl_names else {}
    stl_scoremaps(sel, out, stored, opt.heatmap_rule)

    # ---- scores
    scores: Dict[str, WSOLScores] = {}
    for m in ("CAM", "GRAD-CAM", "RISE"):
        if m in methods:
            scores[m] = score_heatmap_method(sel, out, m, preds)
    for name in stored:
        scores[f"{name}-HEAT"] = score_heatmap_method(sel, out, f"{name}-HEAT", preds)
    proposals: Dict[str, Dict[str, tuple]] = {}
    for name, run_ in stored.items():
        proposals[name] = {i: (run_.boxes[i], run_.scores[i]) for i in run_.image_ids if i in sel.infos}
    for name in ("WHOLE-IMAGE", "CENTER"):
        if name in methods:
            m = build_method(name)
            proposals[name] = {i: m.propose(np.zeros(sel.dataset.record(i).size + (3,), np.uint8))
                               for i in sel.ids}

    # ---- STL+: select on the first half, report on the second
    plus_report = {}
    if stored:
        base = opt.plus or STLPlusConfig()
        feats = stlplus_features(sel, classifier, stored, base.top_k, base.heatmap_rule, out, opt.model, opt.progress)
        for name, run_ in stored.items():
            pname = name.replace("STL-", "STL+-")
            first = [i for i in proposals[name] if sel.infos[i].half == 0]
            cfg = base
            rows = []
            if opt.select_plus and first and opt.plus is None:
                items = [{"boxes": run_.boxes[i], "scores": run_.scores[i], "features": feats[name][i],
                          "gt": sel.dataset.record(i).boxes} for i in first]
                cfg, rows = select_weights(items, base=base)
            proposals[pname] = {}
            for i in proposals[name]:
                b, s, _ = rerank(run_.boxes[i], run_.scores[i], feats[name][i], cfg)
                proposals[pname][i] = (b, s)
            plus_report[pname] = {"config": cfg.identity(), "selected_on_images": len(first),
                                  "selected": bool(rows), "default": STLPlusConfig().identity(), "grid": rows}
            if opt.freeze_plus and rows:
                _freeze(pname, cfg, rows, first, sel, opt)
        _write_json(out / f"stlplus_selection__{opt.model}.json", plus_report)
    for name, props in proposals.items():
        scores[name] = score_box_method(sel, {i: p[0] for i, p in props.items()}, preds)

    # ---- protocol rows (paper's protocol) on the STL images of each half
    stl_derived = [n for n in proposals if n in stored or n in plus_report]  # STL runs and their STL+ re-rankings
    stl_ids = sorted(set.intersection(*[set(proposals[n]) for n in stl_derived]) if stl_derived else set(),
                     key=sel.ids.index)
    halves = {h: [i for i in stl_ids if sel.infos[i].half == h] for h in (0, 1)}
    protocol = {f"half{h + 1}": protocol_rows(sel, proposals, ids, opt.ci) for h, ids in halves.items()}

    report = {
        "dataset": sel.dataset.describe(), "model": opt.model, "classifier": classifier.describe(),
        "images": len(sel.ids), "stl_images": len(stl_ids), "stl_images_by_half": [len(halves[0]), len(halves[1])],
        "rise": {"num_masks": opt.rise.num_masks, "grid": opt.rise.grid, "p": opt.rise.p, "seed": opt.rise.seed},
        "stl_heatmap_rule": opt.heatmap_rule, "notes": notes, "cam_note": head_note,
        "methods": {m: wsol_summary(s, opt.ci) for m, s in scores.items()},
        "methods_on_stl_images": ({m: wsol_summary(s.subset(stl_ids), opt.ci) for m, s in scores.items()}
                                  if stl_ids else {}),
        # every other method minus CAM on the STL images (the same draws for both)
        "paired_vs_cam": ({m: paired_wsol(s, scores["CAM"], stl_ids, opt.ci) for m, s in scores.items()
                           if m != "CAM"} if stl_ids and opt.ci is not None and "CAM" in scores else {}),
        "ci": (None if opt.ci is None else
               {"level": opt.ci[0], "resamples": opt.ci[1], "seed": opt.ci[2], "method": "percentile",
                "unit": "image"}),
        "protocol": protocol, "stlplus": {k: {kk: vv for kk, vv in v.items() if kk != "grid"}
                                          for k, v in plus_report.items()},
        "published": [{"method": a, "backbone": b, "max_box_acc_v2": c} for a, b, c in PUBLISHED],
        "seconds": time.time() - t0,
        # what made the table: the command, the code, the images (the STL+ selection / report halves)
        "provenance": {"command": opt.command or "run_wsol (Python API)", "commit": source_revision(),
                       "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "image_ids": list(sel.ids),
                       "stl_image_ids_by_half": [list(halves[0]), list(halves[1])]},
    }
    prov = report["provenance"]
    text = (f"command: `{prov['command']}`  \ncode: commit {prov['commit']}, {prov['date']}  \n\n"
            + format_report(report))
    _write_json(out / f"wsol__{opt.model}.json", report)
    write_text(out / f"wsol__{opt.model}.md", text + "\n")
    if opt.figure_images:
        try:
            fig_ids = (list(stl_ids) + [i for i in sel.ids if i not in set(stl_ids)])[:opt.figure_images]
            report["figure"] = str(make_figure(sel, out, fig_ids, scores, proposals, opt.model))
        except Exception as e:  # noqa: BLE001  (a figure never fails the run)
            log.warning("figure not written: %s: %s", type(e).__name__, e)
    report["text"] = text
    return report


__all__ = ["ALL_METHODS", "BenchmarkOptions", "run_wsol", "build_selection", "classifier_pass", "rise_pass",
           "stl_pass", "scoremap_path", "format_report", "protocol_rows", "wsol_summary", "make_figure", "Selection",
           "_input_image"]
