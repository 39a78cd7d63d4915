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

import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.config import DEFAULT
from ..core.localization import resize_to_input
from ..wsol.heatmaps import (STL_HEATMAP_RULE, RISEConfig, RISEMasks, cam_maps, conv_head, rise_saliency, stl_heatmap,
                       to_scoremap)
from ..wsol.metrics import WSOL_SIZE, WSOLScores, box_ious, cam_thresholds, resize_box, scoremap_ious
from .common import write_text

log = logging.getLogger(__name__)

HEATMAP_METHODS = ("CAM", "GRAD-CAM", "RISE", "STL-CL-HEAT", "STL-WL-HEAT")
BOX_METHODS = ("STL-CL", "STL-WL", "STL+-CL", "STL+-WL", "WHOLE-IMAGE", "CENTER")
ALL_METHODS = ("CAM", "GRAD-CAM", "RISE", "STL-CL", "STL-WL", "WHOLE-IMAGE", "CENTER")

#: wsolevaluation's published ImageNet numbers (Choe et al., CVPR 2020, Table 3 / Sec. 5), on
#: the full 50,000-image ILSVRC val with other backbones -- for orientation, not comparable
#: image for image. MaxBoxAccV2 (%).
PUBLISHED = [
    ("CAM (VGG16)", "VGG16", 60.0),
    ("CAM (InceptionV3)", "InceptionV3", 63.4),
    ("CAM (ResNet50)", "ResNet50", 63.7),
    ("best WSOL method, mean over backbones", "3 backbones", 62.6),
    ("few-shot learning baseline (fully supervised, few boxes)", "3 backbones", 64.0),
    ("centre-gaussian baseline (no learning)", "--", 52.5),
]


@dataclass
class ImageInfo:
    image_id: str
    name: str  # wsolevaluation image id (path relative to the root)
    label: int  # ground-truth class index
    gt224: np.ndarray  # ground-truth boxes in the 224 frame (int)
    half: int  # 0: first half of the full list, 1: second half


@dataclass
class Selection:
    dataset: object
    infos: Dict[str, ImageInfo]
    ids: List[str]  # the selected images, dataset order
    halves: Tuple[List[str], List[str]]  # the full list's halves

    def spread(self, limit: Optional[int]) -> List[str]:
        """The first ceil(limit/2) selected images of each half (all with limit None)."""
        if limit is None:
            return list(self.ids)
        per = int(math.ceil(limit / 2))
        first = [i for i in self.ids if self.infos[i].half == 0][:per]
        second = [i for i in self.ids if self.infos[i].half == 1][:per]
        keep = set(first + second)
        return [i for i in self.ids if i in keep]


def build_selection(dataset, classifier, limit=None, images=None) -> Selection:
    full = dataset.image_ids
    mid = len(full) // 2
    half = {i: (0 if k < mid else 1) for k, i in enumerate(full)}
    if images:
        dataset.select(images)
    dataset.take(limit)
    infos = {}
    for i in dataset.image_ids:
        a = dataset.original_annotation(i)
        rec = dataset.record(i)
        if a["size"] is not None:
            gt = [resize_box(b, a["size"]) for b in a["boxes"]]
        else:  # no original size: the file's boxes (its own pixels)
            gt = [resize_box(b, (rec.size[1], rec.size[0])) for b in rec.boxes]
        infos[i] = ImageInfo(i, a["name"], classifier.classes.index(a["labels"][0]),
                             np.asarray(gt, np.int64).reshape(-1, 4), half[i])
    return Selection(dataset, infos, dataset.image_ids, ([i for i in full if half[i] == 0],
                                                          [i for i in full if half[i] == 1]))


# ----------------------------------------------------------------------------- score map files
def scoremap_path(out: Path, method: str, name: str) -> Path:
    return Path(out) / "scoremaps" / method / (name + ".npy")


def save_scoremap(path: Path, scoremap: np.ndarray):
    """np.save (float64, as wsolevaluation requires), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.asarray(scoremap, np.float64))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, obj):
    from ..io import write_json_atomic

    write_json_atomic(path, obj)


def _input_image(rec, classifier, input_resize: str) -> np.ndarray:
    """The record's image at the network input, resized as STL resizes (``STLConfig.input_resize``)."""
    return resize_to_input(rec.read(), tuple(classifier.input_size), input_resize).astype(np.float32)


def check_inputs_stamp(out: Path, classifier, model: str, input_resize: str):
    """Refuse an ``out`` whose stored predictions / score maps were made from other network inputs.

    ``<out>/inputs__<model>.json`` records the classifier's preprocessing
    (:func:`stl.models.preprocessing.preprocessing_identity`) and the resize
    (``STLConfig.input_resize``) of the cached CAM / Grad-CAM / RISE maps and top-1 predictions;
    a rerun with anything different is a ``ValueError`` instead of a silent mix."""
    from ..models.preprocessing import preprocessing_identity

    stamp = Path(out) / f"inputs__{model}.json"
    want = {"preprocessing": preprocessing_identity(classifier), "input_resize": input_resize}
    old = _read_json(stamp)
    if old and old != want:
        raise ValueError(f"{out} holds predictions and score maps made from other inputs ({old}, not {want}): "
                         f"use another --out or delete it")
    if not old:
        _write_json(stamp, want)


# ----------------------------------------------------------------------------- passes
def classifier_pass(sel: Selection, classifier, out: Path, model: str, methods: Sequence[str],
                    batch: int = 8, progress: bool = True, save_top1: bool = False,
                    input_resize: str = DEFAULT.input_resize) -> Dict[str, int]:
    """Top-1 predictions for every selected image and the CAM / Grad-CAM score maps
    (ground-truth class; with ``save_top1`` also the top-1 class under ``<METHOD>-TOP1``);
    images resized to the input with ``input_resize`` (``STLConfig.input_resize``)."""
    from tqdm import tqdm

    pred_path = Path(out) / f"predictions__{model}.json"
    preds = {k: int(v) for k, v in _read_json(pred_path).items()}
    want = [m for m in ("CAM", "GRAD-CAM") if m in methods]
    head = conv_head(classifier) if want else None
    if head is not None and "CAM" in want and not head.cam_applies:
        log.warning("%s -- CAM skipped", head.cam_note)
        want = [m for m in want if m != "CAM"]

    def todo(i):
        name = sel.infos[i].name
        return i not in preds or any(not scoremap_path(out, m, name).exists() for m in want)

    ids = [i for i in sel.ids if todo(i)]
    if not ids:
        return preds
    log.info("classifier pass (top-1 class%s) on %d images", "".join(f", {m}" for m in want), len(ids))
    bar = tqdm(total=len(ids), unit="img", desc="CAM/Grad-CAM" if want else "top-1", disable=not progress,
               dynamic_ncols=True)
    from ..models.base import LOGITS

    for s in range(0, len(ids), batch):
        chunk = ids[s:s + batch]
        x = np.stack([_input_image(sel.dataset.record(i), classifier, input_resize) for i in chunk])
        if want:
            gt = [sel.infos[i].label for i in chunk]
            # the top-1 class comes out of the same forward; a second backward gives its maps
            res = cam_maps(head, x, [[g] for g in gt])
            top1 = res["logits"].argmax(1)
            if save_top1:
                res1 = cam_maps(head, x, [[int(t)] for t in top1])
            for n, i in enumerate(chunk):
                name = sel.infos[i].name
                if "CAM" in want:
                    save_scoremap(scoremap_path(out, "CAM", name), to_scoremap(res["cam"][n, 0]))
                    if save_top1:
                        save_scoremap(scoremap_path(out, "CAM-TOP1", name), to_scoremap(res1["cam"][n, 0]))
                if "GRAD-CAM" in want:
                    save_scoremap(scoremap_path(out, "GRAD-CAM", name), to_scoremap(res["gradcam"][n, 0]))
                    if save_top1:
                        save_scoremap(scoremap_path(out, "GRAD-CAM-TOP1", name), to_scoremap(res1["gradcam"][n, 0]))
                preds[i] = int(top1[n])
        else:
            top1 = classifier(x, outputs=(LOGITS,))[LOGITS].argmax(1)
            for n, i in enumerate(chunk):
                preds[i] = int(top1[n])
        _write_json(pred_path, preds)
        bar.update(len(chunk))
    bar.close()
    return preds


def rise_pass(sel: Selection, classifier, out: Path, ids: Sequence[str], config: RISEConfig,
              progress: bool = True, save_top1: bool = False, preds: Optional[dict] = None,
              input_resize: str = DEFAULT.input_resize):
    from tqdm import tqdm

    stamp = Path(out) / "scoremaps" / "RISE" / "rise_config.json"
    cfg = {"num_masks": config.num_masks, "grid": config.grid, "p": config.p, "seed": config.seed,
           "size": list(classifier.input_size), "classifier": classifier.name}
    old = _read_json(stamp)
    if old and old != cfg:
        raise ValueError(f"{stamp.parent} holds RISE maps made with {old}, not {cfg}: use another --out "
                         f"or delete that folder")
    todo = [i for i in ids if not scoremap_path(out, "RISE", sel.infos[i].name).exists()]
    if not todo:
        return
    stamp.parent.mkdir(parents=True, exist_ok=True)
    _write_json(stamp, cfg)
    masks = RISEMasks(tuple(classifier.input_size), config)
    log.info("RISE: %d masks (grid %d, p %.2f, seed %d) on %d images = %d forwards", len(masks), config.grid,
             config.p, config.seed, len(todo), len(masks) * len(todo))
    for i in tqdm(todo, unit="img", desc=f"RISE N={len(masks)}", disable=not progress, dynamic_ncols=True):
        x = _input_image(sel.dataset.record(i), classifier, input_resize)
        classes = [sel.infos[i].label] + ([int(preds[i])] if save_top1 and preds and i in preds else [])
        maps, _ = rise_saliency(classifier, x, masks, classes)
        save_scoremap(scoremap_path(out, "RISE", sel.infos[i].name), to_scoremap(maps[0]))
        if len(classes) > 1:
            save_scoremap(scoremap_path(out, "RISE-TOP1", sel.infos[i].name), to_scoremap(maps[1]))


def stl_pass(sel: Selection, classifier, ids: Sequence[str], runs_dir: Path, model: str,
             methods: Sequence[str], compute: bool = True, progress: bool = True, config=None) -> Dict[str, object]:
    """STL-CL / STL-WL windows through the ``stl run`` store; returns {method: StoredRun}."""
    from ..data import get_dataset
    from ..proposals import build_method
    from ..runner import load_run, run_method, run_path

    ds = sel.dataset
    stored = {}
    for name in methods:
        path = run_path(runs_dir, ds.key, name, model, True, config.profile if config is not None else "authors")
        if compute and ids:
            sub = get_dataset(ds.family, root=ds.root, subset=ds.subset).select(list(ids))
            method = build_method(name, classifier=classifier, **({"config": config} if config is not None else {}))
            log.info("%s on %d images -> %s (resumable; STL costs ~15-40 s per image on a CPU)", name, len(ids), path)
            run_method(sub, method, path, method_name=name, model=model, progress=progress)
        if path.exists() or path.with_name(path.name + ".partial").exists():
            try:
                stored[name] = load_run(path)
            except FileNotFoundError:
                pass
    return stored


def stl_scoremaps(sel: Selection, out: Path, stored: Dict[str, object], rule: str = STL_HEATMAP_RULE):
    """STL-CL-HEAT / STL-WL-HEAT score maps from the stored windows (see :func:`stl_heatmap`)."""
    for name, run in stored.items():
        method = f"{name}-HEAT"
        for i in run.image_ids:
            if i not in sel.infos:
                continue
            p = scoremap_path(out, method, sel.infos[i].name)
            if p.exists():
                continue
            rec = sel.dataset.record(i)
            heat = stl_heatmap((run.boxes[i], run.scores[i]), rec.size, rule=rule)
            save_scoremap(p, to_scoremap(heat, interpolation=_area_interp()))


def _area_interp():
    import cv2

    return cv2.INTER_AREA


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


# ----------------------------------------------------------------------------- STL+
def stlplus_features(sel: Selection, classifier, stored: Dict[str, object], top_k: int, rule: str,
                     out: Path, model: str, progress: bool = True) -> Dict[str, Dict[str, dict]]:
    """{STL method: {image id: features}} for every stored image (cached in out)."""
    from tqdm import tqdm

    from ..proposals import method_traits
    from ..wsol.stlplus import target_classes_for, window_features

    cache_path = Path(out) / f"stlplus_features__{model}.json"
    cache = _read_json(cache_path)
    key = f"top{top_k}-{rule}"
    result = {}
    for name, run in stored.items():
        bucket = cache.setdefault(key, {}).setdefault(name, {})
        ids = [i for i in run.image_ids if i in sel.infos]
        todo = [i for i in ids if i not in bucket]
        for i in tqdm(todo, unit="img", desc=f"STL+ features {name}", disable=not progress or not todo,
                      dynamic_ncols=True):
            rec = sel.dataset.record(i)
            im = rec.read()
            label = rec.labels[0] if method_traits(name)["needs_label"] else None
            f = window_features(classifier, im, run.boxes[i], run.scores[i],
                                target_classes_for(classifier, im, label), top_k, rule)
            bucket[i] = {k: [float(v) for v in vals] for k, vals in f.items()}
            _write_json(cache_path, cache)
        result[name] = {i: {k: np.asarray(v) for k, v in bucket[i].items()} for i in ids}
    return result


def protocol_rows(sel: Selection, proposals: Dict[str, Dict[str, tuple]], ids: Sequence[str]) -> Dict[str, dict]:
    """The paper's protocol (stl eval: IoU >= 0.5, mean per class) on ``ids``: top-1 hit rate,
    recall@1/5/10."""
    from ..evaluation import evaluate

    records = [sel.dataset.record(i) for i in ids]
    rows = {}
    for name, props in proposals.items():
        if not ids or any(i not in props for i in ids):
            continue
        res = evaluate(records, {i: props[i] for i in ids}, num_windows=(1, 5, 10), mode="image")
        rows[name] = {"images": len(ids), "top1_hit_rate": res.top1_hit_rate,
                      **{f"recall@{n}": res.at(n)["recall"] for n in (1, 5, 10)}}
    return rows


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
    figure_images: int = 8
    save_top1: bool = False
    progress: bool = True


def run(dataset, classifier, opt: BenchmarkOptions) -> dict:
    """Compute what is missing, score everything, write the table / JSON / figure; return the report."""
    from ..proposals import build_method
    from ..wsol.stlplus import STLPlusConfig, rerank, select_weights

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
        _write_json(out / f"stlplus_selection__{opt.model}.json", plus_report)
    for name, props in proposals.items():
        scores[name] = score_box_method(sel, {i: p[0] for i, p in props.items()}, preds)

    # ---- protocol rows (paper's protocol) on the STL images of each half
    stl_derived = [n for n in proposals if n in stored or n in plus_report]  # STL runs and their STL+ re-rankings
    stl_ids = sorted(set.intersection(*[set(proposals[n]) for n in stl_derived]) if stl_derived else set(),
                     key=sel.ids.index)
    halves = {h: [i for i in stl_ids if sel.infos[i].half == h] for h in (0, 1)}
    protocol = {f"half{h + 1}": protocol_rows(sel, proposals, ids) for h, ids in halves.items()}

    report = {
        "dataset": sel.dataset.describe(), "model": opt.model, "classifier": classifier.describe(),
        "images": len(sel.ids), "stl_images": len(stl_ids), "stl_images_by_half": [len(halves[0]), len(halves[1])],
        "rise": {"num_masks": opt.rise.num_masks, "grid": opt.rise.grid, "p": opt.rise.p, "seed": opt.rise.seed},
        "stl_heatmap_rule": opt.heatmap_rule, "notes": notes, "cam_note": head_note,
        "methods": {m: s.summary() for m, s in scores.items()},
        "methods_on_stl_images": {m: s.subset(stl_ids).summary() for m, s in scores.items()} if stl_ids else {},
        "protocol": protocol, "stlplus": {k: {kk: vv for kk, vv in v.items() if kk != "grid"}
                                          for k, v in plus_report.items()},
        "published": [{"method": a, "backbone": b, "max_box_acc_v2": c} for a, b, c in PUBLISHED],
        "seconds": time.time() - t0,
    }
    text = format_report(report)
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


ORDER = ("STL-CL", "STL-WL", "STL+-CL", "STL+-WL", "STL-CL-HEAT", "STL-WL-HEAT", "CAM", "GRAD-CAM", "RISE",
         "WHOLE-IMAGE", "CENTER")
KIND = {"STL-CL": "box", "STL-WL": "box", "STL+-CL": "box", "STL+-WL": "box", "WHOLE-IMAGE": "box",
        "CENTER": "box", "STL-CL-HEAT": "heatmap", "STL-WL-HEAT": "heatmap", "CAM": "heatmap",
        "GRAD-CAM": "heatmap", "RISE": "heatmap"}


def _fmt(v) -> str:
    return "--" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def _table(rows: Dict[str, dict], backbone: str) -> List[str]:
    lines = ["| method | kind | backbone | images | Top-1 Loc | GT-known Loc | MaxBoxAcc | MaxBoxAccV2 | "
             "@IoU0.3 | @IoU0.5 | @IoU0.7 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in sorted(rows, key=lambda k: ORDER.index(k) if k in ORDER else 99):
        r = rows[m]
        if not r.get("images"):
            continue
        bb = "--" if m in ("WHOLE-IMAGE", "CENTER") else backbone
        lines.append(f"| {m} | {KIND.get(m, '?')} | {bb} | {r['images']} | {_fmt(r['top1_loc'])} | "
                     f"{_fmt(r['gt_known_loc'])} | {_fmt(r['max_box_acc'])} | **{_fmt(r['max_box_acc_v2'])}** | "
                     f"{_fmt(r['max_box_acc_iou30'])} | {_fmt(r['max_box_acc_iou50'])} | {_fmt(r['max_box_acc_iou70'])} |")
    return lines


def format_report(rep: dict) -> str:
    bb = rep["model"]
    lines = [f"WSOL benchmark (wsolevaluation's metrics) on {rep['dataset']}; classifier {rep['classifier']}.",
             f"Score maps for the ground-truth class; thresholds 0.00..0.99 step 0.01; 224x224 frame. "
             f"RISE: N={rep['rise']['num_masks']} masks (grid {rep['rise']['grid']}, p {rep['rise']['p']}). "
             f"STL heatmap rule: {rep['stl_heatmap_rule']}.", ""]
    lines += ["All images each method has:", ""] + _table(rep["methods"], bb)
    for a, b, c in PUBLISHED:
        lines.append(f"| {a} [published, wsolevaluation] | heatmap | {b} (other backbone) | 50000 | | | | **{c}** | | | |")
    if rep.get("methods_on_stl_images"):
        n = rep["stl_images"]
        lines += ["", f"The same methods on the {n} images that have STL windows "
                      f"({rep['stl_images_by_half'][0]} from the first half, {rep['stl_images_by_half'][1]} "
                      f"from the second):", ""] + _table(rep["methods_on_stl_images"], bb)
    for h, title in (("half1", "first half (STL+ weights selected here)"), ("half2", "second half (STL+ reported here)")):
        rows = rep["protocol"].get(h) or {}
        if not rows:
            lines += ["", f"Paper's protocol, {title}: no STL images."]
            continue
        k = next(iter(rows.values()))["images"]
        lines += ["", f"Paper's protocol (IoU >= 0.5, mean over classes), STL images of the {title}, {k} images:", "",
                  "| method | top-1 hit rate | recall@1 | recall@5 | recall@10 |", "|---|---|---|---|---|"]
        for m in sorted(rows, key=lambda k_: ORDER.index(k_) if k_ in ORDER else 99):
            r = rows[m]
            lines.append(f"| {m} | {r['top1_hit_rate']:.1%} | {r['recall@1']:.1%} | {r['recall@5']:.1%} | "
                         f"{r['recall@10']:.1%} |")
    for name, p in rep.get("stlplus", {}).items():
        c = p["config"]
        how = (f"selected on {p['selected_on_images']} first-half images" if p["selected"]
               else "given (not selected in this run)")
        lines.append(f"\n{name}: alpha={c['alpha']} beta={c['beta']} gamma={c['gamma']} top_k={c['top_k']} ({how}).")
    lines += [""] + [f"Note: {n}" for n in rep.get("notes", [])]
    lines.append("Published rows: Choe et al., CVPR 2020 (wsolevaluation), full ILSVRC val, VGG16 / InceptionV3 / "
                 "ResNet50 backbones trained for WSOL -- orientation only, not the same images or classifier.")
    return "\n".join(lines)


def make_figure(sel: Selection, out: Path, ids: Sequence[str], scores: Dict[str, WSOLScores],
                proposals: Dict[str, Dict[str, tuple]], model: str) -> Path:
    """Heatmaps + boxes for a few images: one row per image; columns: the image with the box
    methods' first windows, then each heatmap method with its MaxBoxAcc-threshold box."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..wsol.metrics import boxes_at_thresholds

    heat = [m for m in ("CAM", "GRAD-CAM", "RISE", "STL-CL-HEAT", "STL-WL-HEAT") if m in scores and len(scores[m])]
    boxm = [m for m in ("STL-WL", "STL+-WL", "STL-CL", "STL+-CL", "CENTER") if m in proposals]
    colors = {"STL-WL": "red", "STL+-WL": "yellow", "STL-CL": "magenta", "STL+-CL": "orange", "CENTER": "cyan"}
    ncol = 1 + len(heat)
    fig, axes = plt.subplots(len(ids), ncol, figsize=(2.4 * ncol, 2.4 * len(ids)), squeeze=False)

    def rect(ax, b, color, lw=1.5, ls="-"):
        ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0] + 1, b[3] - b[1] + 1, fill=False, ec=color, lw=lw, ls=ls))

    for r, i in enumerate(ids):
        info = sel.infos[i]
        rec = sel.dataset.record(i)
        img = cv2.resize(rec.read(), (WSOL_SIZE, WSOL_SIZE), interpolation=cv2.INTER_AREA)
        ax = axes[r, 0]
        ax.imshow(img)
        for g in info.gt224:
            rect(ax, g, "lime", 2)
        for m in boxm:
            if i in proposals[m] and len(proposals[m][i][0]):
                rect(ax, box_to_224(proposals[m][i][0][0], rec.size), colors[m], 1.5, "--" if "+" in m else "-")
        if r == 0:
            ax.set_title("GT (green); " + ", ".join(f"{m}" for m in boxm), fontsize=6)
        ax.set_ylabel(info.name.split("/")[-1].replace(".JPEG", ""), fontsize=6)
        for c, m in enumerate(heat, start=1):
            ax = axes[r, c]
            p = scoremap_path(out, m, info.name)
            ax.imshow(img)
            if p.exists():
                s = np.load(p)
                ax.imshow(s, cmap="jet", alpha=0.5, vmin=0, vmax=1)
                tau = scores[m].best_threshold()
                b = boxes_at_thresholds(s, [tau], False)[0][0]
                rect(ax, b, "red", 1.5)
            else:
                ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes, fontsize=7)
            for g in info.gt224:
                rect(ax, g, "lime", 1)
            if r == 0:
                ax.set_title(f"{m} (box at tau*={scores[m].best_threshold():.2f})", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path = Path(out) / f"figure__{model}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
