"""Greedy matching of ranked windows to ground-truth boxes (PASCAL criterion).

Windows are visited in the given order (methods return them best first, i.e.
by decreasing score). A window whose IoU with a ground-truth box is at least
``iou_threshold`` (:data:`stl.core.config.EVAL_IOU`, 0.5) can take that box; each
box is taken at most once. Two rules are implemented:

``"pascal"`` (default; the authors' ``Stats.compute_stats`` in
lorisbaz/self-taught_localization, translated from the VOC devkit): the window
is compared with its best-overlapping box among ALL boxes (first one on ties).
If that box is free it is taken (true positive); if it was already taken the
window is a false positive (a duplicate), even when another free box overlaps
it by >= 0.5.

``"unmatched"``: the window takes the best-overlapping box among the boxes
still free; a duplicate only when no free box overlaps it enough.

The two differ only for a window overlapping two boxes by >= 0.5 each.

``difficult`` boxes (VOC) given here follow the devkit: they are never
taken, and a window whose chosen box is difficult is IGNORED -- neither true
nor false positive; it does not count among the windows considered for
precision. Under ``"unmatched"`` the candidate set is {free non-difficult
boxes} U {difficult boxes}, best overlap wins. (The authors instead removed
difficult boxes before matching; :func:`stl.evaluation.protocol.evaluate`
does that under its default ``"authors"`` profile, so no box reaches this
function flagged difficult.)

IoU (``iou=``): ``"pixel"`` (default) is :func:`stl.core.boxes.iou_matrix`, exact
integer arithmetic on pixel-inclusive boxes with the PASCAL "+1" areas.
``"normalised"`` is the authors' ``BBox.jaccard_similarity`` (``bbox.py``) on
boxes normalised to [0, 1] by the image size, as their loaders store them
(``exp19.py``: ``BBox(xmin-1, ymin-1, xmax, ymax).normalize_to_outer_box``):
the same ratio in exact arithmetic, but computed in floating point on
fractions, so an IoU of exactly 1/2 can land on either side of 0.5
(:func:`iou_matrix_normalised`).
"""
from __future__ import annotations

import numpy as np

from ..core.boxes import iou_matrix, iou_matrix_normalised
from ..core.config import EVAL_IOU

#: per-window status codes returned by :func:`match_windows`
TP, FP, IGNORED = 1, 0, -1
RULES = ("pascal", "unmatched")
#: IoU conventions of :func:`match_windows`
IOU_MODES = ("pixel", "normalised")


def pairwise_iou(a, b, iou: str = "pixel", image_size=None) -> np.ndarray:
    """IoU matrix under one of :data:`IOU_MODES` (``"normalised"`` needs ``image_size``)."""
    if iou == "pixel":
        return iou_matrix(a, b)
    if iou == "normalised":
        if image_size is None:
            raise ValueError("iou='normalised' needs the image size (H, W)")
        return iou_matrix_normalised(a, b, image_size)
    raise ValueError(f"iou must be one of {IOU_MODES}, not {iou!r}")


def match_windows(boxes, gt_boxes, difficult=None, iou_threshold: float = EVAL_IOU, rule: str = "pascal",
                  iou: str = "pixel", image_size=None) -> np.ndarray:
    """Status of every window (``TP``, ``FP`` or ``IGNORED``), int8, in the given order.

    ``iou``: ``"pixel"`` or ``"normalised"`` (the authors'; needs ``image_size`` = (H, W)).

    Greedy in order, so the status of the first N windows does not depend on
    the windows after them: cumulative sums give the counts for every N.
    """
    if rule not in RULES:
        raise ValueError(f"matching rule must be one of {RULES}, not {rule!r}")
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    status = np.full(len(boxes), FP, np.int8)
    if len(boxes) == 0 or len(gt) == 0:
        return status
    diff = np.zeros(len(gt), bool) if difficult is None else np.asarray(difficult, bool).reshape(-1)
    if len(diff) != len(gt):
        raise ValueError("difficult must have one flag per ground-truth box")
    ov = pairwise_iou(boxes, gt, iou, image_size)
    cand = ov >= iou_threshold
    rows = np.flatnonzero(cand.any(axis=1))
    if len(rows) == 0:
        return status
    if rule == "pascal":
        best = np.argmax(ov[rows], axis=1)  # first maximum on ties
        hit_diff = diff[best]
        status[rows[hit_diff]] = IGNORED
        easy_rows, easy_best = rows[~hit_diff], best[~hit_diff]
        _, first = np.unique(easy_best, return_index=True)  # first window choosing each box
        status[easy_rows[first]] = TP
        return status
    taken = np.zeros(len(gt), bool)
    n_easy = int((~diff).sum())
    for k, i in enumerate(rows):
        if taken.sum() == n_easy:  # every box taken: the rest are ignored or duplicates
            rest = rows[k:]
            status[rest[(cand[rest] & diff[None, :]).any(axis=1)]] = IGNORED
            break
        avail = cand[i] & (diff | ~taken)
        if not avail.any():
            continue
        j = int(np.argmax(np.where(avail, ov[i], -1.0)))
        if diff[j]:
            status[i] = IGNORED
        else:
            status[i] = TP
            taken[j] = True
    return status


def hits_any(box, gt_boxes, iou_threshold: float = EVAL_IOU, iou: str = "pixel", image_size=None) -> bool:
    """Does one window overlap any of the boxes by at least ``iou_threshold``?"""
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    if len(gt) == 0:
        return False
    ov = pairwise_iou(np.asarray(box, np.float64).reshape(1, 4), gt, iou, image_size)
    return bool((ov >= iou_threshold).any())
