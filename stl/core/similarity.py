"""The equations of Sec. 3 of the paper, as plain functions.

Notation: f(x) is the classifier's softmax output on the image x, h_g(x, b) the
image with box b filled with the colour g (Eq. 1, the "mask-out" operation),
r_i a region, |r_i| its pixel count, B(r) the enclosing box of r, |im| the
number of pixels of the (network-input) image.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .boxes import box_area


def drop_vector(prob_full: np.ndarray, prob_masked: np.ndarray) -> np.ndarray:
    """Eq. 1: delta = max(f(x) - f(h_g(x, b)), 0), component-wise.

    ``prob_full`` (C,) and ``prob_masked`` (..., C) -> (..., C).
    """
    return np.maximum(np.asarray(prob_full)[None] - np.atleast_2d(prob_masked), 0.0).reshape(
        np.shape(prob_masked))


def drop_cl(prob_full: np.ndarray, prob_masked: np.ndarray, label: int) -> np.ndarray:
    """Eq. 2 (STL-CL): d = delta[c] for the given class c."""
    return drop_vector(prob_full, prob_masked)[..., label]


def drop_wl(prob_full: np.ndarray, prob_masked: np.ndarray, top_k: int = 5,
            rule: str = "sum_then_clamp") -> np.ndarray:
    """Eq. 3 (STL-WL): the drop summed over the top-k classes of f(x) (``rule``: see
    :func:`drop_for_classes`)."""
    return drop_for_classes(prob_full, prob_masked, top_classes(prob_full, top_k, rule), rule)


def top_classes(prob_full: np.ndarray, k: int, rule: str = "clamp_then_sum") -> np.ndarray:
    """The k highest-scoring classes of f(x), best first.

    Ties: "sum_then_clamp" (the authors' ``np.argsort(p)[::-1][:k]``, made stable) puts the
    higher class index first; "clamp_then_sum" the lower one.
    """
    p = np.asarray(prob_full, np.float64)
    if rule == "sum_then_clamp":
        return np.argsort(p, kind="stable")[::-1][:k]
    return np.argsort(-p, kind="stable")[:k]


def drop_for_classes(prob_full: np.ndarray, prob_masked: np.ndarray, classes: Sequence[int],
                     rule: str = "clamp_then_sum") -> np.ndarray:
    """The drop d of a masked image over ``classes`` (Eq. 2 for one class, Eq. 3 for the top-C).

    * "clamp_then_sum" (the paper's text): d = sum_c max(f_c(x) - f_c(h_g(x, b)), 0)
      (Eq. 1 component-wise, then Eq. 3).
    * "sum_then_clamp" (the authors' ``self_taught_loc.py``, which made the published
      numbers): d = max(sum_c (f_c(x) - f_c(h_g(x, b))), 0), summed in the order of
      ``classes``. A class whose score rises offsets the others' drops.

    The two agree for one class (STL-CL). ``prob_masked`` is (C,) or (N, C).
    """
    classes = np.asarray(classes, np.int64)
    pf = np.asarray(prob_full, np.float64)
    pm = np.asarray(prob_masked, np.float64)
    if rule == "clamp_then_sum":
        return drop_vector(pf, pm)[..., classes].sum(axis=-1)
    if rule != "sum_then_clamp":
        raise ValueError(f"drop rule must be 'sum_then_clamp' or 'clamp_then_sum', not {rule!r}")
    total = np.zeros(pm.shape[:-1])
    for c in classes:  # left to right, as np.sum over <= 7 values
        total = total + (pf[c] - pm[..., c])
    return np.maximum(total, 0.0)


def s_drop(d_i, d_j):
    """Eq. 4 drop term: 1 - |d_i - d_j| * max(1 - d_i, 1 - d_j).

    Two regions whose masking hurts the classifier alike, and a lot, are similar.
    """
    d_i = np.asarray(d_i, np.float64)
    d_j = np.asarray(d_j, np.float64)
    return 1.0 - np.abs(d_i - d_j) * np.maximum(1.0 - d_i, 1.0 - d_j)


def s_drop_authors(d_i, d_j):
    """Eq. 4 drop term in the authors' arithmetic (``self_taught_loc.py``):
    1 - max(1 - d_i, 1 - d_j) * |(1 - d_i) - (1 - d_j)| (equal to :func:`s_drop` up to rounding)."""
    c_i = 1.0 - np.asarray(d_i, np.float64)
    c_j = 1.0 - np.asarray(d_j, np.float64)
    return 1.0 - np.maximum(c_i, c_j) * np.abs(c_i - c_j)


def l1_normalize(features: np.ndarray) -> np.ndarray:
    """Rows scaled to sum 1 after clipping negatives to 0 (a histogram); all-zero rows stay 0."""
    f = np.clip(np.asarray(features, np.float64), 0.0, None)
    s = f.sum(axis=-1, keepdims=True)
    return np.divide(f, s, out=np.zeros_like(f), where=s > 0)


def s_app(h_i: np.ndarray, h_j: np.ndarray) -> np.ndarray:
    """Eq. 4 appearance term: histogram intersection sum_k min(h_i[k], h_j[k]) of the
    L1-normalised features of the two boxes' crops (broadcasts over leading axes)."""
    return np.minimum(h_i, h_j).sum(axis=-1)


def s_size(size_i, size_j, image_size: float):
    """Eq. 4 size term: 1 - (|r_i| + |r_j|) / |im| (encourages small regions to merge early)."""
    return 1.0 - (np.asarray(size_i, np.float64) + np.asarray(size_j, np.float64)) / float(image_size)


def union_boxes(box_i: np.ndarray, box_j: np.ndarray) -> np.ndarray:
    """Enclosing box B(r_i u r_j) of two boxes (broadcasts)."""
    box_i = np.asarray(box_i, np.float64)
    box_j = np.asarray(box_j, np.float64)
    return np.concatenate([np.minimum(box_i[..., :2], box_j[..., :2]),
                           np.maximum(box_i[..., 2:], box_j[..., 2:])], axis=-1)


def s_fill(box_i, box_j, size_i, size_j, image_size: float):
    """Eq. 4 fill term: 1 - (|B(r_i u r_j)| - |r_i| - |r_j|) / |im| (regions that fill
    each other's gaps merge early)."""
    u = union_boxes(box_i, box_j)
    area = box_area(u.reshape(-1, 4)).reshape(u.shape[:-1])
    return 1.0 - (area - np.asarray(size_i, np.float64) - np.asarray(size_j, np.float64)) / float(image_size)


def similarity(d_i, d_j, h_i, h_j, box_i, box_j, size_i, size_j, image_size: float,
               weights=(0.25, 0.25, 0.25, 0.25)):
    """Eq. 4: s = w_drop s_drop + w_app s_app + w_size s_size + w_fill s_fill."""
    w = weights
    return (w[0] * s_drop(d_i, d_j) + w[1] * s_app(h_i, h_j) + w[2] * s_size(size_i, size_j, image_size)
            + w[3] * s_fill(box_i, box_j, size_i, size_j, image_size))
