"""The passes of ``stl wsol``: the image selection, the classifier (top-1, CAM, Grad-CAM), RISE, the
STL runs and their heatmaps, STL+'s window features; each resumes from what ``out`` holds.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...core.config import DEFAULT
from ...core.localization import resize_to_input
from ...wsol.heatmaps import (STL_HEATMAP_RULE, RISEConfig, RISEMasks, cam_maps, conv_head, rise_saliency,
                              stl_heatmap, to_scoremap)
from ...wsol.metrics import resize_box

log = logging.getLogger("stl.experiments.wsol")


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
    from ...io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(scoremap, np.float64))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, obj):
    from ...io import write_json_atomic

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
    from ...models.preprocessing import preprocessing_identity

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
    from ...progress import progress_bar

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
    bar = progress_bar(total=len(ids), unit="img", desc="CAM/Grad-CAM" if want else "top-1", enabled=progress)
    from ...models.base import LOGITS

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
    from ...progress import progress_bar

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
    for i in progress_bar(todo, unit="img", desc=f"RISE N={len(masks)}", enabled=progress):
        x = _input_image(sel.dataset.record(i), classifier, input_resize)
        classes = [sel.infos[i].label] + ([int(preds[i])] if save_top1 and preds and i in preds else [])
        maps, _ = rise_saliency(classifier, x, masks, classes)
        save_scoremap(scoremap_path(out, "RISE", sel.infos[i].name), to_scoremap(maps[0]))
        if len(classes) > 1:
            save_scoremap(scoremap_path(out, "RISE-TOP1", sel.infos[i].name), to_scoremap(maps[1]))


def stl_pass(sel: Selection, classifier, ids: Sequence[str], runs_dir: Path, model: str,
             methods: Sequence[str], compute: bool = True, progress: bool = True, config=None) -> Dict[str, object]:
    """STL-CL / STL-WL windows through the ``stl run`` store; returns {method: StoredRun}."""
    from ...data import get_dataset
    from ...proposals import build_method
    from ...runner import load_run, run_method, run_path

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



# ----------------------------------------------------------------------------- STL+
def stlplus_features(sel: Selection, classifier, stored: Dict[str, object], top_k: int, rule: str,
                     out: Path, model: str, progress: bool = True) -> Dict[str, Dict[str, dict]]:
    """{STL method: {image id: features}} for every stored image (cached in out)."""
    from ...progress import progress_bar

    from ...proposals import method_traits
    from ...wsol.stlplus import target_classes_for, window_features

    cache_path = Path(out) / f"stlplus_features__{model}.json"
    cache = _read_json(cache_path)
    key = f"top{top_k}-{rule}"
    result = {}
    for name, run in stored.items():
        bucket = cache.setdefault(key, {}).setdefault(name, {})
        ids = [i for i in run.image_ids if i in sel.infos]
        todo = [i for i in ids if i not in bucket]
        for i in progress_bar(todo, unit="img", desc=f"STL+ features {name}", enabled=progress and bool(todo)):
            rec = sel.dataset.record(i)
            im = rec.read()
            label = rec.labels[0] if method_traits(name)["needs_label"] else None
            f = window_features(classifier, im, run.boxes[i], run.scores[i],
                                target_classes_for(classifier, im, label), top_k, rule)
            bucket[i] = {k: [float(v) for v in vals] for k, vals in f.items()}
            _write_json(cache_path, cache)
        result[name] = {i: {k: np.asarray(v) for k, v in bucket[i].items()} for i in ids}
    return result
