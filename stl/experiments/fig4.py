"""Fig. 4 of the paper: cross-dataset generalisation of STL-WL from ILSVRC to PASCAL VOC.

For every PASCAL class: its prototype, the mean feature phi (the classifier's FEATURE, CaffeNet fc7
after ReLU; EfficientNet-Lite0: the 1280-d pooled feature) of the crops of its ground-truth boxes
(each warped to the network input, as the s_app crops of Eq. 4; VOC "difficult" boxes left out);
the same prototype for every ILSVRC class; the maximum Pearson correlation of the PASCAL prototype
with the ILSVRC prototypes (and which ILSVRC class attains it); and the top-1 recall of STL-WL on
that PASCAL class (Fig. 3's protocol at N = 1). The scatter plots recall against correlation, each
point labelled "pascal class - most correlated ILSVRC class": classes resembling something the
classifier was trained on are expected to be localised better.

Box features are cached per dataset and model (``<cache>/prototypes/<dataset>__<model>.h5``: one
row per box, keyed by image id), so a rerun on more images computes only the new ones. Each
prototype's number of boxes is reported: on the ../shared sample the ILSVRC side has about one
image per class, so its prototypes average one or two boxes.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .common import class_words, csv_text, markdown_table, save_figure, stored_run, wrap, write_text

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- box features
def box_features(classifier, record) -> np.ndarray:
    """phi of every non-difficult ground-truth box of one record: (K, D) float32, in box order."""
    import cv2

    from ..io import as_rgb_uint8
    from ..models.base import FEATURE

    keep = ~np.asarray(record.difficult, bool)
    boxes = record.boxes[keep]
    if len(boxes) == 0:
        return np.zeros((0, 0), np.float32)
    rgb = as_rgb_uint8(record.read()).astype(np.float32)
    h, w = classifier.input_size
    crops = []
    for x0, y0, x1, y1 in np.round(boxes).astype(int):
        x0, y0 = max(x0, 0), max(y0, 0)
        crop = rgb[y0:y1 + 1, x0:x1 + 1]
        crops.append(cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR))
    return classifier(np.stack(crops), (FEATURE,), batch_size=16)[FEATURE].astype(np.float32)


def cached_box_features(dataset, get_classifier, model: str, cache_dir, progress: bool = True
                        ) -> Tuple[np.ndarray, List[str], List[str]]:
    """(features (B, D), box labels, image id of each box) of every non-difficult GT box of
    ``dataset``, read from / added to the cache file of this dataset and model (``get_classifier()``
    builds the classifier only if an image is missing from the cache). The cache file records the
    classifier's preprocessing (``get_classifier.preprocessing_identity()`` where the factory
    knows it, :class:`stl.experiments.common.LazyClassifier`); a cache made with another one is
    recomputed, not mixed in."""
    import h5py
    from ..progress import progress_bar

    from ..io import atomic_path
    from ..runner import safe_name

    path = Path(cache_dir) / "prototypes" / f"{safe_name(dataset.key)}__{safe_name(model)}.h5"
    store: Dict[str, Tuple[np.ndarray, List[str]]] = {}
    expect = getattr(get_classifier, "preprocessing_identity", None)
    pre = json.dumps(expect(), sort_keys=True) if expect is not None else None
    if path.exists():
        with h5py.File(path, "r") as f:
            stored_pre = f.attrs.get("preprocessing")
            if pre is not None and stored_pre is not None and str(stored_pre) != pre:
                log.warning("fig4: %s was made with preprocessing %s, not %s: recomputing", path, stored_pre, pre)
            for q in (f if pre is None or stored_pre is None or str(stored_pre) == pre else ()):
                g = f[q]
                store[g.attrs["image_id"]] = (g["features"][()], json.loads(g.attrs["labels"]))
    todo = [i for i in dataset.image_ids if i not in store]
    if todo:
        for image_id in progress_bar(todo, desc=f"box features {dataset.key}", unit="img", enabled=progress):
            rec = dataset.record(image_id)
            feats = box_features(get_classifier(), rec)
            labels = [lab for lab, d in zip(rec.box_labels, rec.difficult) if not d]
            store[image_id] = (feats, labels)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                if pre is not None:
                    f.attrs["preprocessing"] = pre
                for k, (image_id, (feats, labels)) in enumerate(store.items()):
                    g = f.create_group(f"{k:07d}")
                    g.attrs["image_id"] = image_id
                    g.attrs["labels"] = json.dumps(labels)
                    g.create_dataset("features", data=feats)
        log.info("fig4: %d new images' box features cached in %s", len(todo), path)
    feats, labels, owners = [], [], []
    for image_id in dataset.image_ids:
        f, labs = store[image_id]
        if len(labs):
            feats.append(f)
            labels += labs
            owners += [image_id] * len(labs)
    return (np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)), labels, owners


def prototypes(features: np.ndarray, labels: Sequence[str]) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """(classes in first-seen order, (C, D) mean feature per class, (C,) boxes averaged)."""
    classes = list(dict.fromkeys(labels))
    labels = np.asarray(labels)
    protos = np.stack([features[labels == c].mean(axis=0) for c in classes]) if classes else np.zeros((0, 0))
    counts = np.array([int((labels == c).sum()) for c in classes])
    return classes, protos, counts


def correlation_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every row of ``a`` with every row of ``b`` (over feature dimensions)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return (a @ b.T) / np.maximum(na * nb.T, 1e-12)


# ----------------------------------------------------------------------------- the figure
@dataclass
class Fig4Row:
    pascal_class: str
    pascal_boxes: int
    ilsvrc_class: str  # wnid of the most correlated ILSVRC prototype
    ilsvrc_words: str
    ilsvrc_boxes: int
    max_correlation: float
    top1_recall: float  # STL-WL recall at N = 1 on this PASCAL class (NaN: no image of it evaluated)
    gt_boxes_evaluated: int


def fig4_rows(voc_feats, voc_labels, ilsvrc_feats, ilsvrc_labels, eval_result) -> List[Fig4Row]:
    pcls, pprot, pcnt = prototypes(voc_feats, voc_labels)
    icls, iprot, icnt = prototypes(ilsvrc_feats, ilsvrc_labels)
    corr = correlation_matrix(pprot, iprot)
    rec = {}
    if eval_result is not None:
        idx = list(eval_result.num_windows).index(1)
        r = eval_result.recall[:, idx]
        for c, v, n in zip(eval_result.classes, r, eval_result.n_gt):
            rec[c] = (float(v), int(n))
    rows = []
    for k, c in enumerate(pcls):
        j = int(np.argmax(corr[k]))
        v, n = rec.get(c, (float("nan"), 0))
        rows.append(Fig4Row(c, int(pcnt[k]), icls[j], class_words(icls[j]), int(icnt[j]), float(corr[k, j]), v, n))
    return rows


def plot_fig4(rows: Sequence[Fig4Row], title: str = ""):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 6.2))
    ax = fig.subplots()
    ok = [r for r in rows if np.isfinite(r.top1_recall)]
    ax.scatter([r.max_correlation for r in ok], [r.top1_recall for r in ok], s=28, color="tab:blue", zorder=3)
    for r in ok:
        ax.annotate(f"{r.pascal_class} - {r.ilsvrc_words}", (r.max_correlation, r.top1_recall), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    missing = [r for r in rows if not np.isfinite(r.top1_recall)]
    if missing:
        ax.text(0.01, 0.01, "no STL-WL result (no evaluated image): " + ", ".join(r.pascal_class for r in missing),
                transform=ax.transAxes, fontsize=6.5, va="bottom")
    if ok:
        lo = min(r.max_correlation for r in ok)
        ax.set_xlim(max(0.0, lo - 0.05), min(1.0, max(r.max_correlation for r in ok) + 0.12))
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("max correlation of the PASCAL class prototype with the ILSVRC class prototypes")
    ax.set_ylabel("top-1 recall of STL-WL on the PASCAL class")
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title, fontsize=7.5)
    fig.subplots_adjust(top=0.84)
    return fig


def run_fig4(voc, ilsvrc, model: str, get_classifier, out, runs_dir, cache_dir, progress: bool = True,
             config=None) -> dict:
    """Fig. 4 on ``voc`` and ``ilsvrc`` (:class:`common.DataChoice`); STL-WL windows from the
    stored run on the VOC images, made with ``config`` (an STLConfig; default: the authors'
    profile). Writes ``fig4.png/.pdf``, ``fig4.csv``, ``fig4.md``."""
    from ..evaluation.runs import evaluate_run

    out = Path(out)
    run, path = stored_run(voc.dataset, "STL-WL", model, get_classifier, runs_dir, config=config, progress=progress)
    ev = evaluate_run(path, dataset=voc.dataset, num_windows=(1, 10, 100))
    vf, vl, _ = cached_box_features(voc.dataset, get_classifier, model, cache_dir, progress)
    ifeat, il, iown = cached_box_features(ilsvrc.dataset, get_classifier, model, cache_dir, progress)
    rows = fig4_rows(vf, vl, ifeat, il, ev.result)
    n_il_classes = len(set(il))
    per_class_images = len(set(iown)) / max(n_il_classes, 1)
    caption = (f"Fig. 4 -- model {model}. PASCAL: {len(voc.dataset)} images ({voc.description}); ILSVRC prototypes: "
               f"{n_il_classes} classes from {len(ilsvrc.dataset)} images ({ilsvrc.description}), "
               f"{len(il) / max(n_il_classes, 1):.1f} boxes and {per_class_images:.1f} images per class on average. "
               "Prototype = mean feature phi of a class's ground-truth box crops; correlation = Pearson over feature "
               "dimensions; recall = STL-WL top-1 recall (IoU >= 0.5) on the PASCAL class.")
    files = save_figure(plot_fig4(rows, wrap(caption, 130)), out, "fig4")
    dicts = [r.__dict__ for r in rows]
    cols = ["pascal_class", "pascal_boxes", "ilsvrc_class", "ilsvrc_words", "ilsvrc_boxes", "max_correlation",
            "top1_recall", "gt_boxes_evaluated"]
    files.append(write_text(out / "fig4.csv", csv_text(dicts, cols)))
    md = ("# Fig. 4: cross-dataset generalisation\n\n" + caption + f"\n\nSTL-WL run: `{path}`.\n\n"
          + markdown_table(dicts, cols, ["PASCAL class", "boxes in its prototype", "most correlated ILSVRC class",
                                         "words", "boxes in its prototype", "max correlation", "STL-WL top-1 recall",
                                         "GT boxes evaluated"]))
    if not ilsvrc_is_full(ilsvrc):
        md += ("\nOn the ../shared sample the ILSVRC prototypes average one or two boxes of a single image each "
               "(the paper's use hundreds per class), and the PASCAL side has a handful of images: the points show "
               "the computation, not the paper's trend.\n")
    files.append(write_text(out / "fig4.md", md))
    return {"rows": rows, "files": files, "run": path}


def ilsvrc_is_full(choice) -> bool:
    return bool(getattr(choice, "full", False))
