"""STL+: a re-ranking of STL's top windows that improves the FIRST window (N = 1).

STL ranks windows by their drop d (Eq. 1-3). The largest drop usually belongs to a very
large window -- often the whole image, since masking everything hurts most -- so STL's
first window hits an ILSVRC object less often than a fixed centred box. STL+ re-orders
only STL's top ``top_k`` (10) windows, so the set of the first 10 windows -- and with it
recall@10 -- is exactly STL's; recall@N for N < 10 and the first window change.

Score of window b among the top ``top_k`` (all terms in [0, 1]):

    s(b) = d(b) / d_max  +  alpha * c(b) / c(x)  -  beta * |b| / |x|  +  gamma * m(b)

* d(b) / d_max: STL's drop relative to the image's largest drop;
* c(b) / c(x): the target classes' probability on the crop x[b] warped to the network input
  (one extra forward per window: the crop STL already feeds the network for s_app, whose
  class output STL does not keep), relative to the whole image's; STL-CL's target is the
  given class, STL-WL's the top-5 classes of f(x) (summed), as in Eq. 2-3;
* |b| / |x|: the window's share of the image (an area prior);
* m(b): the share of the STL heatmap's mass (:func:`stl.wsol.heatmaps.stl_heatmap`, all
  stored windows) inside b.

alpha, beta, gamma are chosen by :func:`select_weights` on the FIRST half of the 650
``../shared`` ILSVRC images only (the grid :data:`GRID`, maximising the top-1 hit rate,
ties broken by the mean IoU of the first window) and reported on the second half
(``stl wsol`` does both). ``stl wsol --freeze-plus`` writes the selected weights, with a
description of the selection data, into the package resource ``configs/stlplus_weights.json``;
:func:`frozen_weights` reads them (``stl run --method STL+-WL`` uses them). The defaults of
:class:`STLPlusConfig` are a prior, used only where nothing was frozen. Ties in s keep STL's order.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..core.boxes import iou_matrix, scale_boxes
from ..core.config import DEFAULT
from ..core.localization import resize_to_input
from ..models.base import PROB
from .heatmaps import STL_HEATMAP_RULE, stl_heatmap

log = logging.getLogger(__name__)

#: windows STL+ re-orders (recall@TOP_K is STL's by construction)
TOP_K = 10
#: weight grid searched by :func:`select_weights`
GRID = {"alpha": (0.0, 0.25, 0.5, 1.0, 2.0), "beta": (0.0, 0.25, 0.5, 1.0, 2.0), "gamma": (0.0, 0.5, 1.0, 2.0)}


@dataclass(frozen=True)
class STLPlusConfig:
    """STL+'s weights. ``stl wsol`` selects them on the first half's STL images (module doc);
    these defaults are a hand-set prior (favour a confident crop, penalise a large area), NOT
    tuned on data -- they are used only where no selection ran (``stl run --method STL+-WL``,
    or no first-half STL images)."""

    alpha: float = 1.0
    beta: float = 0.5
    gamma: float = 0.0
    top_k: int = TOP_K
    heatmap_rule: str = STL_HEATMAP_RULE

    def identity(self) -> dict:
        return asdict(self)


#: the package resource holding the frozen weights of each STL+ method
FROZEN_RESOURCE = "stlplus_weights"


def frozen_weights(method: str) -> STLPlusConfig:
    """The weights ``stl wsol --freeze-plus`` selected for ``method`` (``STL+-WL`` / ``STL+-CL``)
    and froze in the package resource :data:`FROZEN_RESOURCE`; the :class:`STLPlusConfig` prior
    if none were frozen for it."""
    import json

    from .. import resources

    try:
        entry = json.loads(resources.config(FROZEN_RESOURCE).read_text()).get("methods", {}).get(method)
    except FileNotFoundError:
        entry = None
    if not entry:
        return STLPlusConfig()
    w = entry["weights"]
    return STLPlusConfig(alpha=float(w["alpha"]), beta=float(w["beta"]), gamma=float(w["gamma"]),
                         top_k=int(w["top_k"]), heatmap_rule=str(w["heatmap_rule"]))


def freeze_weights(path, method: str, cfg: STLPlusConfig, selection: dict) -> None:
    """Record ``cfg`` as ``method``'s frozen weights in the resource file ``path`` (others kept),
    with ``selection``: what they were chosen on (dataset, model, image ids, criterion, command)."""
    import json
    from pathlib import Path

    from ..io import write_json_atomic

    path = Path(path)
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.setdefault("note", "STL+ weights selected by `stl wsol --freeze-plus` on the selection images only "
                           "(the first half of the 650 ../shared ILSVRC images); reported on the other half")
    doc.setdefault("methods", {})[method] = {"weights": cfg.identity(), "selection": selection}
    write_json_atomic(path, doc)


FEATURES = ("drop", "crop", "area", "mass")


def window_features(classifier, image: np.ndarray, boxes, scores, target_classes: Sequence[int],
                    top_k: int = TOP_K, heatmap_rule: str = STL_HEATMAP_RULE) -> Dict[str, np.ndarray]:
    """The four terms of STL+'s score for the first ``top_k`` windows of one image.

    ``image``: RGB (original pixels; the boxes are in them); ``boxes``/``scores``: all of
    STL's ranked windows (the heatmap uses all of them); ``target_classes``: the class(es)
    whose probability the crops are scored on. One batched forward of ``min(top_k, K) + 1``
    images (the crops and the whole image).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    k = min(top_k, len(boxes))
    size = image.shape[:2]
    out = {f: np.zeros(k) for f in FEATURES}
    if k == 0:
        return out
    x = resize_to_input(image, tuple(classifier.input_size)).astype(np.float32)
    h, w = classifier.input_size
    in_boxes = np.round(scale_boxes(boxes[:k], size, (h, w))).astype(np.int64)
    crops = [cv2.resize(x[y0:y1 + 1, x0:x1 + 1], (w, h), interpolation=cv2.INTER_LINEAR)
             for x0, y0, x1, y1 in in_boxes]
    prob = classifier(np.stack(crops + [x]), outputs=(PROB,),
                      batch_size=max(int(getattr(classifier, "preferred_batch_size", 32)), 1))[PROB]
    cls = np.asarray(list(target_classes), np.int64)
    c = prob[:, cls].sum(1)
    out["crop"] = c[:k] / max(float(c[-1]), 1e-12)
    out["crop"] = np.minimum(out["crop"], 1.0)
    top = scores[:k]
    out["drop"] = top / top.max() if top.max() > 0 else np.zeros(k)
    area = (boxes[:k, 2] - boxes[:k, 0] + 1) * (boxes[:k, 3] - boxes[:k, 1] + 1)
    out["area"] = np.clip(area / float(size[0] * size[1]), 0, 1)
    heat = stl_heatmap((boxes, scores), size, rule=heatmap_rule)
    total = heat.sum()
    cs = np.pad(heat.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    b = np.clip(np.round(boxes[:k]).astype(np.int64), 0, [size[1] - 1, size[0] - 1, size[1] - 1, size[0] - 1])
    inside = cs[b[:, 3] + 1, b[:, 2] + 1] - cs[b[:, 1], b[:, 2] + 1] - cs[b[:, 3] + 1, b[:, 0]] + cs[b[:, 1], b[:, 0]]
    out["mass"] = inside / total if total > 0 else np.zeros(k)
    return out


def plus_scores(features: Dict[str, np.ndarray], config: STLPlusConfig) -> np.ndarray:
    return (features["drop"] + config.alpha * features["crop"] - config.beta * features["area"]
            + config.gamma * features["mass"])


def rerank(boxes, scores, features: Dict[str, np.ndarray], config: STLPlusConfig
           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """STL's windows with the first ``len(features['drop'])`` re-ordered by s (stable).

    Returns (boxes, STL+ scores, order): the re-ordered windows get s, the rest keep STL's
    order and get scores below every s (so the list stays sorted best first)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    k = len(features["drop"])
    s = plus_scores(features, config)
    head = np.argsort(-s, kind="stable")
    order = np.concatenate([head, np.arange(k, len(boxes))]).astype(np.int64)
    new_scores = np.concatenate([s[head], (s.min() if k else 0.0) - 1.0 - np.arange(len(boxes) - k) * 1e-6])
    return boxes[order], new_scores, order


def top1_iou(boxes, gt_boxes) -> float:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    if not len(boxes) or not len(gt):
        return 0.0
    return float(iou_matrix(boxes[:1], gt).max())


def select_weights(items: List[dict], grid: Optional[dict] = None, base: STLPlusConfig = STLPlusConfig(),
                   iou_threshold: float = 0.5) -> Tuple[STLPlusConfig, List[dict]]:
    """Choose (alpha, beta, gamma) on a selection set.

    ``items``: one dict per image with ``boxes`` (its STL windows, ranked), ``scores``,
    ``features`` (:func:`window_features`) and ``gt`` (ground-truth boxes, same pixels).
    Criterion: top-1 hit rate (IoU >= 0.5), then mean top-1 IoU, then the smaller
    alpha + beta + gamma. Returns the best config and every grid point's result.
    """
    grid = grid or GRID
    rows = []
    for a, b, g in itertools.product(grid["alpha"], grid["beta"], grid["gamma"]):
        cfg = STLPlusConfig(alpha=a, beta=b, gamma=g, top_k=base.top_k, heatmap_rule=base.heatmap_rule)
        ious = [top1_iou(rerank(it["boxes"], it["scores"], it["features"], cfg)[0], it["gt"]) for it in items]
        ious = np.asarray(ious) if ious else np.zeros(0)
        hit = float((ious >= iou_threshold).mean()) if len(ious) else float("nan")
        rows.append({"alpha": a, "beta": b, "gamma": g, "top1_hit_rate": hit,
                     "mean_top1_iou": float(ious.mean()) if len(ious) else float("nan")})
    best = max(rows, key=lambda r: (r["top1_hit_rate"], r["mean_top1_iou"], -(r["alpha"] + r["beta"] + r["gamma"])))
    return STLPlusConfig(alpha=best["alpha"], beta=best["beta"], gamma=best["gamma"], top_k=base.top_k,
                         heatmap_rule=base.heatmap_rule), rows


def target_classes_for(classifier, image: np.ndarray, label=None, num_top: int = DEFAULT.wl_top_classes
                       ) -> List[int]:
    """STL-CL: the given class; STL-WL: the top-``num_top`` classes of f(x) (Eq. 3)."""
    if label is not None:
        return [classifier.classes.index(label)]
    x = resize_to_input(image, tuple(classifier.input_size)).astype(np.float32)
    p = classifier(x[None], outputs=(PROB,))[PROB][0]
    return [int(i) for i in np.argsort(-p, kind="stable")[:num_top]]
