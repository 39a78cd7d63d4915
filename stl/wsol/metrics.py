"""Weakly-supervised object localization (WSOL) metrics, as defined by the benchmark of
Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right" (CVPR 2020;
code: clovaai/wsolevaluation, ``evaluation.py``). Re-implemented here from those definitions.

Frame. Every image is evaluated in a ``WSOL_SIZE`` x ``WSOL_SIZE`` (224) frame: the image
stretched to 224 x 224; a ground-truth box given in the pixels of the ORIGINAL image
(``localization.txt`` / ``image_sizes.txt``) is mapped by ``int(x * 224 / W)``,
``int(y * 224 / H)`` (truncation, all four coordinates); boxes are integer, pixel-inclusive
``[x0, y0, x1, y1]`` and the IoU uses ``+1`` areas.

From a score map (float in [0, 1], 224 x 224) to boxes at threshold tau: the map is
quantised to ``uint8(map * 255)``; pixels strictly above ``int(tau * max)`` form the mask;
``cv2.findContours`` (``RETR_TREE``, ``CHAIN_APPROX_SIMPLE``) gives its contours and each
contour its bounding rectangle ``[x, y, min(x + w, 223), min(y + h, 223)]`` (the benchmark's
``x + w``, one past the last pixel, clipped). No contour gives the box ``[0, 0, 0, 0]``.
tau runs over ``np.arange(0, 1, 0.01)``.

* **BoxAcc(tau, delta)**: share of images whose box at tau has IoU >= delta with at
  least one ground-truth box. The box is that of the LARGEST contour (``cv2.contourArea``)
  for MaxBoxAcc; for MaxBoxAccV2 every contour's box counts (the image is a hit if any of
  them matches any ground-truth box).
* **MaxBoxAcc** = max over tau of BoxAcc(tau, 0.5), largest contour (the benchmark's
  "GT-known localization at the optimal threshold").
* **MaxBoxAccV2** = mean over delta in {0.3, 0.5, 0.7} of max over tau of
  BoxAcc(tau, delta), all contours; each delta picks its own best tau.
* **GT-known Loc** = BoxAcc(tau*, 0.5) with the ground-truth class's map, tau* the
  MaxBoxAcc threshold (so it equals MaxBoxAcc), and **Top-1 Loc** = share of images whose
  top-1 predicted class is correct AND whose box at tau* hits (the classic protocol uses
  the predicted class's map; when the prediction is correct that map is the
  ground-truth class's map, so only the GT map is needed).

Box methods (STL's windows, WHOLE-IMAGE, CENTER) skip the threshold: their top-1 box,
mapped to the 224 frame with the same truncation as the ground truth, is the only
box at every tau (so MaxBoxAcc is its hit rate at IoU 0.5 and MaxBoxAccV2 the mean of its
hit rates at 0.3 / 0.5 / 0.7).

Per image, :func:`scoremap_ious` keeps the best IoU at each tau (largest contour and all
contours); the metrics are then means over any subset of images (:class:`WSOLScores`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..core.boxes import iou_matrix  # the one pixel-inclusive (+1) IoU

#: side of the benchmark's evaluation frame (wsolevaluation ``_RESIZE_LENGTH``)
WSOL_SIZE = 224
#: score-map threshold step (wsolevaluation's ``--cam_curve_interval`` default)
CAM_CURVE_INTERVAL = 0.01
#: IoU thresholds of MaxBoxAccV2
IOU_THRESHOLDS = (0.3, 0.5, 0.7)


def cam_thresholds(interval: float = CAM_CURVE_INTERVAL) -> np.ndarray:
    """The score-map thresholds tau: ``np.arange(0, 1, interval)`` (100 values for 0.01)."""
    return np.arange(0, 1, interval)


def resize_box(box, image_size_wh, resize_size_wh=(WSOL_SIZE, WSOL_SIZE)) -> Tuple[int, int, int, int]:
    """A box in the pixels of an image of size (W, H) mapped to a (W', H') frame by
    ``int(coordinate * W' / W)`` (and H for y), the benchmark's ground-truth mapping."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = (float(v) for v in image_size_wh)
    nw, nh = (float(v) for v in resize_size_wh)
    return int(x0 * nw / w), int(y0 * nh / h), int(x1 * nw / w), int(y1 * nh / h)


def check_scoremap(scoremap: np.ndarray) -> np.ndarray:
    s = np.asarray(scoremap)
    if s.ndim != 2:
        raise ValueError(f"a score map must be 2-D, got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("score map contains NaN")
    if (s < 0).any() or (s > 1).any():
        raise ValueError(f"score map must lie in [0, 1] (min {s.min()}, max {s.max()})")
    return s


def boxes_at_thresholds(scoremap: np.ndarray, thresholds: Sequence[float], all_contours: bool
                        ) -> List[np.ndarray]:
    """Boxes of the score map's mask at each threshold tau (see the module docstring):
    one box (largest contour) or, with ``all_contours``, one per contour; ``[[0, 0, 0, 0]]``
    when the mask is empty."""
    s = check_scoremap(scoremap)
    height, width = s.shape
    image = (s * 255).astype(np.uint8)
    top = int(image.max())
    cache: Dict[int, np.ndarray] = {}
    out = []
    for tau in thresholds:
        level = int(tau * top)
        if level not in cache:
            mask = np.where(image > level, 255, 0).astype(np.uint8)
            contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
            if len(contours) == 0:
                boxes = np.zeros((1, 4), np.int64)
            else:
                if not all_contours:
                    contours = [max(contours, key=cv2.contourArea)]
                rows = []
                for c in contours:
                    x, y, w, h = cv2.boundingRect(c)
                    rows.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
                boxes = np.asarray(rows, np.int64)
            cache[level] = boxes
        out.append(cache[level])
    return out


def scoremap_ious(scoremap: np.ndarray, gt_boxes, thresholds: Optional[Sequence[float]] = None
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """(best IoU of the largest contour's box, best IoU over all contours' boxes) with any
    ground-truth box, at each threshold: two arrays of len(thresholds)."""
    thresholds = cam_thresholds() if thresholds is None else thresholds
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    largest = np.zeros(len(thresholds))
    every = np.zeros(len(thresholds))
    for k, (b1, ball) in enumerate(zip(boxes_at_thresholds(scoremap, thresholds, False),
                                       boxes_at_thresholds(scoremap, thresholds, True))):
        if len(gt):
            largest[k] = iou_matrix(b1, gt).max()
            every[k] = iou_matrix(ball, gt).max()
    return largest, every


def box_ious(box, gt_boxes, num_thresholds: int) -> Tuple[np.ndarray, np.ndarray]:
    """The same pair for a box method: its one box's best IoU, repeated at every threshold."""
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    v = float(iou_matrix(np.asarray(box, np.float64).reshape(1, 4), gt).max()) if len(gt) else 0.0
    return np.full(num_thresholds, v), np.full(num_thresholds, v)


@dataclass
class WSOLScores:
    """Per-image results of one method; the metrics are computed on any subset of images.

    ``iou_largest[i, k]`` / ``iou_all[i, k]``: best IoU at threshold k of image i (largest
    contour / all contours); ``correct_class[i]``: the classifier's top-1 class is the
    ground truth (for Top-1 Loc).
    """

    image_ids: List[str] = field(default_factory=list)
    iou_largest: List[np.ndarray] = field(default_factory=list)
    iou_all: List[np.ndarray] = field(default_factory=list)
    correct_class: List[bool] = field(default_factory=list)
    thresholds: np.ndarray = field(default_factory=cam_thresholds)

    def add(self, image_id: str, iou_largest, iou_all, correct_class: bool):
        self.image_ids.append(str(image_id))
        self.iou_largest.append(np.asarray(iou_largest, np.float64))
        self.iou_all.append(np.asarray(iou_all, np.float64))
        self.correct_class.append(bool(correct_class))

    def __len__(self):
        return len(self.image_ids)

    def subset(self, image_ids: Iterable[str]) -> "WSOLScores":
        pos = {i: k for k, i in enumerate(self.image_ids)}
        out = WSOLScores(thresholds=self.thresholds)
        for i in image_ids:
            if i in pos:
                k = pos[i]
                out.add(i, self.iou_largest[k], self.iou_all[k], self.correct_class[k])
        return out

    def box_acc(self, iou_threshold: float, all_contours: bool) -> np.ndarray:
        """BoxAcc(tau, delta) in percent for every tau."""
        if not self.image_ids:
            return np.full(len(self.thresholds), np.nan)
        m = np.stack(self.iou_all if all_contours else self.iou_largest)
        return (m >= iou_threshold).mean(0) * 100.0

    def max_box_acc(self) -> float:
        return float(np.max(self.box_acc(0.5, False)))

    def max_box_acc_v2(self, iou_thresholds: Sequence[float] = IOU_THRESHOLDS) -> float:
        return float(np.mean([np.max(self.box_acc(d, True)) for d in iou_thresholds]))

    def max_box_acc_at(self, iou_threshold: float) -> float:
        """max over tau of BoxAcc(tau, delta), all contours (one term of MaxBoxAccV2)."""
        return float(np.max(self.box_acc(iou_threshold, True)))

    def best_threshold(self) -> float:
        """tau* of MaxBoxAcc (the first maximum)."""
        return float(self.thresholds[int(np.argmax(self.box_acc(0.5, False)))])

    def gt_known_loc(self) -> float:
        return self.max_box_acc()

    def top1_loc(self) -> float:
        if not self.image_ids:
            return float("nan")
        k = int(np.argmax(self.box_acc(0.5, False)))
        hit = np.stack(self.iou_largest)[:, k] >= 0.5
        return float(np.mean(hit & np.asarray(self.correct_class)) * 100.0)

    def resampled(self, counts: np.ndarray, iou_thresholds: Sequence[float] = IOU_THRESHOLDS) -> Dict[str, np.ndarray]:
        """The metrics with image i counted ``counts[b, i]`` times, for every row b (the per-image
        bootstrap of ``stl wsol --ci``): ``{name: (B,)}`` for the names of :meth:`summary` but
        ``images`` and ``best_threshold`` (BoxAcc(tau, delta) = the weighted hit share, each max
        and tau* taken per row); with all counts 1 the values of :meth:`summary`."""
        counts = np.atleast_2d(np.asarray(counts, np.float64))
        if not self.image_ids:
            nan = np.full(len(counts), np.nan)
            return {k: nan.copy() for k in ("top1_loc", "gt_known_loc", "max_box_acc", "max_box_acc_v2",
                                            *[f"max_box_acc_iou{int(round(d * 100))}" for d in IOU_THRESHOLDS])}
        total = counts.sum(1, keepdims=True)
        largest, every = np.stack(self.iou_largest), np.stack(self.iou_all)

        def box_acc(m, d):  # (B, T) in percent
            return counts @ (m >= d).astype(np.float64) / total * 100.0

        acc50 = box_acc(largest, 0.5)
        k = np.argmax(acc50, 1)  # tau* per resample (first maximum)
        hit = (largest[:, k] >= 0.5).T & np.asarray(self.correct_class)[None, :]  # (B, n)
        out = {"top1_loc": (counts * hit).sum(1) / total[:, 0] * 100.0, "max_box_acc": acc50.max(1)}
        out["gt_known_loc"] = out["max_box_acc"]
        per = {d: box_acc(every, d).max(1) for d in IOU_THRESHOLDS}
        out["max_box_acc_v2"] = np.mean([per[d] if d in per else box_acc(every, d).max(1) for d in iou_thresholds], 0)
        for d in IOU_THRESHOLDS:
            out[f"max_box_acc_iou{int(round(d * 100))}"] = per[d]
        return out

    def summary(self) -> dict:
        return {"images": len(self), "top1_loc": self.top1_loc(), "gt_known_loc": self.gt_known_loc(),
                "max_box_acc": self.max_box_acc(), "max_box_acc_v2": self.max_box_acc_v2(),
                **{f"max_box_acc_iou{int(round(d * 100))}": self.max_box_acc_at(d) for d in IOU_THRESHOLDS},
                "best_threshold": self.best_threshold() if len(self) else float("nan")}
