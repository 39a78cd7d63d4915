"""Detection average precision, PASCAL VOC 2007 criterion.

Per class: all detections of the class on all test images are sorted by score
(decreasing; ties keep image order, then the image's own order); a detection is
a true positive if its IoU with a ground-truth box of the class in its image is
at least ``iou_threshold`` (0.5) and that box was not taken by a
higher-scoring detection; otherwise a false positive. Matching is the VOC
devkit rule (:func:`stl.evaluation.matching.match_windows`, ``rule="pascal"``:
each detection is compared with its best-overlapping box; if that box is taken
it is a duplicate); ``difficult`` boxes are ignored (neither TP nor FP, not
counted in the number of positives). AP is the 11-point interpolated average
precision of VOC 2007: the mean over recall levels t = 0, 0.1, ..., 1 of the
highest precision at recall >= t (0 when recall t is never reached).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

import numpy as np

from ..core.boxes import sort_by_score
from ..evaluation.matching import IGNORED, TP, match_windows


def voc07_ap(recall, precision) -> float:
    """11-point interpolated AP (VOC 2007 devkit ``VOCevaldet``)."""
    rec = np.asarray(recall, np.float64)
    prec = np.asarray(precision, np.float64)
    points = []
    for t in np.linspace(0.0, 1.0, 11):
        sel = rec >= t - 1e-12
        points.append(prec[sel].max() if sel.any() else 0.0)
    return float(min(sum(points) / 11.0, 1.0))


@dataclass
class APResult:
    ap: float
    num_positives: int
    num_detections: int
    recall: np.ndarray
    precision: np.ndarray


def average_precision(detections: Mapping[str, Tuple[np.ndarray, np.ndarray]],
                      ground_truth: Mapping[str, Tuple[np.ndarray, Optional[np.ndarray]]],
                      iou_threshold: float = 0.5) -> APResult:
    """AP of one class.

    ``detections``: image id -> (boxes (K, 4), scores (K,)); ``ground_truth``:
    image id -> (boxes (G, 4), difficult (G,) or None) for EVERY test image
    (images without the class map to an empty array or are absent). Returns NaN
    AP when the class has no (non-difficult) ground-truth box.
    """
    npos = 0
    for boxes, diff in ground_truth.values():
        n = len(np.asarray(boxes).reshape(-1, 4))
        npos += n - (int(np.asarray(diff, bool).sum()) if diff is not None else 0)
    all_scores, all_status = [], []
    for image_id, (boxes, scores) in detections.items():
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        if len(boxes) == 0:
            continue
        order = sort_by_score(scores)
        gt, diff = ground_truth.get(image_id, (np.zeros((0, 4)), None))
        status = match_windows(boxes[order], gt, diff, iou_threshold, rule="pascal")
        all_scores.append(scores[order])
        all_status.append(status)
    if all_scores:
        scores = np.concatenate(all_scores)
        status = np.concatenate(all_status)
    else:
        scores, status = np.zeros(0), np.zeros(0, np.int8)
    keep = status != IGNORED
    scores, status = scores[keep], status[keep]
    order = sort_by_score(scores)
    tp = np.cumsum(status[order] == TP)
    fp = np.cumsum(status[order] != TP)
    if npos == 0:
        return APResult(float("nan"), 0, len(scores), np.zeros(0), np.zeros(0))
    recall = tp / npos
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return APResult(voc07_ap(recall, precision), npos, len(scores), recall, precision)


def mean_ap(aps: Mapping[str, float]) -> float:
    """Mean over classes with a defined AP (NaN when none)."""
    vals = [v for v in aps.values() if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")
