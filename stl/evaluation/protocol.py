"""The paper's window-proposal protocol (Fig. 3): mean per-class recall and
precision of the top-N windows per image.

For every image and every class c present in it, the image's top-N windows
are matched (:func:`stl.evaluation.matching.match_windows`) to the class's
ground-truth boxes:

* ``mode="image"`` (ILSVRC): the class of an image is its label and all the
  image's boxes count for it;
* ``mode="box"`` (VOC, the sample): each class present is matched against its
  own boxes; ``difficult`` boxes do not count in #GT and windows matching them
  are ignored.

Per class: recall(N) = sum TP / #GT boxes, precision(N) = sum TP / #windows
considered (min(N, #windows) per image, minus ignored ones). The curves
average over classes (recall over classes with at least one non-difficult
box). Also reported: the top-1 hit rate, the share of images whose first
window hits any (non-difficult) ground-truth box.

Differences from the authors' aggregation (compute_statistics_exp.py), kept
on purpose: an image for which a method returns no window still counts its
boxes (the authors skipped such images), and a class with no window at all has
precision 0 (not NaN).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from ..core.config import EVAL_IOU, EVAL_NUM_WINDOWS
from .matching import IGNORED, TP, hits_any, match_windows


@dataclass
class EvalResult:
    num_windows: np.ndarray  # (M,) the Ns
    classes: List[str]
    n_gt: np.ndarray  # (C,) non-difficult ground-truth boxes per class
    tp: np.ndarray  # (C, M) true positives per class and N
    considered: np.ndarray  # (C, M) windows considered (TP + FP) per class and N
    n_images: np.ndarray  # (C,) images per class
    top1_hits: int
    top1_images: int
    image_ids: List[str]
    missing: List[str] = field(default_factory=list)
    iou_threshold: float = EVAL_IOU
    matching: str = "pascal"
    mode: str = "box"

    @property
    def recall(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n_gt[:, None] > 0, self.tp / np.maximum(self.n_gt[:, None], 1), np.nan)

    @property
    def precision(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.considered > 0, self.tp / np.maximum(self.considered, 1), 0.0)

    @property
    def mean_recall(self) -> np.ndarray:
        r = self.recall[self.n_gt > 0]
        return r.mean(axis=0) if len(r) else np.full(len(self.num_windows), np.nan)

    @property
    def mean_precision(self) -> np.ndarray:
        p = self.precision
        return p.mean(axis=0) if len(p) else np.full(len(self.num_windows), np.nan)

    @property
    def top1_hit_rate(self) -> float:
        return self.top1_hits / self.top1_images if self.top1_images else float("nan")

    def at(self, n: int) -> Dict[str, float]:
        """Mean recall and precision at one N (must be one of ``num_windows``)."""
        idx = list(self.num_windows).index(int(n))
        return {"recall": float(self.mean_recall[idx]), "precision": float(self.mean_precision[idx])}

    def to_dict(self) -> dict:
        return {
            "num_windows": [int(n) for n in self.num_windows],
            "mean_recall": [float(v) for v in self.mean_recall],
            "mean_precision": [float(v) for v in self.mean_precision],
            "top1_hit_rate": self.top1_hit_rate, "top1_hits": self.top1_hits, "top1_images": self.top1_images,
            "num_images": len(self.image_ids), "num_missing": len(self.missing),
            "num_classes": len(self.classes), "num_gt_boxes": int(self.n_gt.sum()),
            "iou_threshold": self.iou_threshold, "matching": self.matching, "mode": self.mode,
        }


def _proposal_boxes(p) -> np.ndarray:
    if isinstance(p, tuple) or (isinstance(p, list) and len(p) == 2 and np.ndim(p[0]) == 2):
        p = p[0]
    return np.asarray(p, np.float64).reshape(-1, 4)


def evaluate(records: Iterable, proposals: Mapping[str, object], num_windows: Sequence[int] = EVAL_NUM_WINDOWS,
             iou_threshold: float = EVAL_IOU, mode: Optional[str] = None, matching: str = "pascal",
             ) -> EvalResult:
    """Evaluate ranked windows against ground truth.

    Parameters
    ----------
    records : iterable of :class:`stl.data.Record` (a :class:`stl.data.Dataset`).
    proposals : image id -> (boxes, scores) or boxes, ranked best first.
        Images of ``records`` without proposals are skipped and listed in
        ``EvalResult.missing``.
    mode : "image" or "box" (see the module doc); default: the dataset's
        ``eval_mode``, else "box".
    matching : "pascal" (the authors' / VOC devkit rule) or "unmatched".
    """
    if mode is None:
        mode = getattr(records, "eval_mode", "box")
    if mode not in ("image", "box"):
        raise ValueError(f"mode must be 'image' or 'box', not {mode!r}")
    ns = np.asarray(sorted(set(int(n) for n in num_windows)), np.int64)
    if len(ns) == 0 or ns[0] < 1:
        raise ValueError("num_windows must be positive integers")
    max_n = int(ns[-1])
    cls_index: Dict[str, int] = {}
    n_gt: List[int] = []
    tp: List[np.ndarray] = []
    cons: List[np.ndarray] = []
    n_img: List[int] = []
    top1_hits = top1_images = 0
    evaluated, missing = [], []
    for rec in records:
        if rec.image_id not in proposals:
            missing.append(rec.image_id)
            continue
        evaluated.append(rec.image_id)
        boxes = _proposal_boxes(proposals[rec.image_id])[:max_n]
        k = len(boxes)
        upto = np.minimum(ns, k)
        easy = rec.boxes[~rec.difficult]
        if len(easy):
            top1_images += 1
            top1_hits += int(k > 0 and hits_any(boxes[0], easy, iou_threshold))
        for lab in rec.labels:
            if mode == "image":
                gt, diff = rec.boxes, rec.difficult
            else:
                gt, diff = rec.boxes_of(lab)
            status = match_windows(boxes, gt, diff, iou_threshold, matching)
            tp_cum = np.concatenate([[0], np.cumsum(status == TP)])
            cons_cum = np.concatenate([[0], np.cumsum(status != IGNORED)])
            c = cls_index.get(lab)
            if c is None:
                c = cls_index[lab] = len(n_gt)
                n_gt.append(0)
                tp.append(np.zeros(len(ns), np.int64))
                cons.append(np.zeros(len(ns), np.int64))
                n_img.append(0)
            n_gt[c] += int((~diff).sum())
            tp[c] += tp_cum[upto]
            cons[c] += cons_cum[upto]
            n_img[c] += 1
    C = len(n_gt)
    return EvalResult(
        num_windows=ns, classes=list(cls_index), n_gt=np.asarray(n_gt, np.int64),
        tp=np.asarray(tp, np.int64).reshape(C, len(ns)), considered=np.asarray(cons, np.int64).reshape(C, len(ns)),
        n_images=np.asarray(n_img, np.int64), top1_hits=top1_hits, top1_images=top1_images,
        image_ids=evaluated, missing=missing, iou_threshold=iou_threshold, matching=matching, mode=mode)
