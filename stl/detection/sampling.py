"""Which windows train a class's detector (Sec. 4, "Generating annotations for
training detectors").

* Positives: the top-K windows of the positive-box method on each positive
  training image (GROUNDTRUTH: the annotated boxes of the class).
* Negatives from a positive image: its windows (of the negative/test method)
  overlapping EVERY positive window of the image by less than 30% IoU
  (:func:`negatives_from_positive_image`).
* Negatives from a negative image: one window drawn at random (seeded by the
  seed, the class and the image id, so the draw does not depend on the order
  in which images are visited) at the start (:func:`random_negatives`); after
  each SVM training, hard-negative mining adds its highest-scoring window not
  yet among its negatives (:func:`mine_hard_negatives`).

Selections are window INDICES into an image's ranked window list.
"""
from __future__ import annotations

import zlib
from typing import Dict, Iterable, Mapping, Optional, Set

import numpy as np

from ..core.boxes import iou_matrix, nms


def stable_seed(*parts) -> int:
    """A 32-bit seed from strings/ints, identical across runs and platforms."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode()) & 0xFFFFFFFF


def negatives_from_positive_image(windows, positives, max_overlap: float = 0.3,
                                  max_count: Optional[int] = None, nms_iou: Optional[float] = None,
                                  seed: int = 0) -> np.ndarray:
    """Indices of the windows whose IoU with every positive window is < ``max_overlap``.

    Optional (off by default): NMS at ``nms_iou`` among them (visiting them in a
    seeded random order, as the authors' code), then at most ``max_count`` of
    them (a seeded random subset, returned in increasing index order).
    """
    windows = np.asarray(windows, np.float64).reshape(-1, 4)
    positives = np.asarray(positives, np.float64).reshape(-1, 4)
    if len(windows) == 0:
        return np.zeros(0, np.int64)
    if len(positives) == 0:
        idx = np.arange(len(windows))
    else:
        ov = iou_matrix(windows, positives)
        idx = np.flatnonzero((ov < max_overlap).all(axis=1))
    rng = np.random.default_rng(seed)
    if nms_iou is not None and len(idx) > 1:
        perm = rng.permutation(len(idx))
        # random visiting order == NMS with random scores
        scores = np.empty(len(idx))
        scores[perm] = np.arange(len(idx), 0, -1)
        idx = idx[np.sort(nms(windows[idx], scores, nms_iou))]
    if max_count is not None and len(idx) > max_count:
        idx = np.sort(rng.choice(idx, size=max_count, replace=False))
    return idx.astype(np.int64)


def random_negatives(num_windows: int, count: int, seed: int) -> np.ndarray:
    """``count`` distinct window indices drawn uniformly from ``num_windows`` (seeded)."""
    if num_windows <= 0 or count <= 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_windows, size=min(count, num_windows), replace=False)).astype(np.int64)


def mine_hard_negatives(scores: Mapping[str, np.ndarray], selected: Mapping[str, Iterable[int]],
                        per_image: int = 1, max_per_image: Optional[int] = None) -> Dict[str, np.ndarray]:
    """One round of hard-negative mining.

    ``scores``: negative image id -> the current detector's scores of all its
    windows; ``selected``: image id -> indices already in the negative set.
    For each negative image, adds its ``per_image`` highest-scoring windows
    that are not yet selected (ties: the lower index), without exceeding
    ``max_per_image`` negatives for the image. Returns image id -> added
    indices (only images that gained some).
    """
    added: Dict[str, np.ndarray] = {}
    for image_id, s in scores.items():
        s = np.asarray(s, np.float64).reshape(-1)
        have: Set[int] = set(int(i) for i in selected.get(image_id, ()))
        room = per_image if max_per_image is None else min(per_image, max_per_image - len(have))
        if room <= 0 or len(s) == 0:
            continue
        key = np.where(np.isnan(s), -np.inf, s)
        order = np.argsort(-key, kind="stable")
        new = [int(i) for i in order if int(i) not in have][:room]
        if new:
            added[image_id] = np.asarray(new, np.int64)
    return added
