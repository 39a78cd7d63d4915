"""Per-image bootstrap confidence intervals for the evaluation figures (``stl eval --ci``,
``stl eval A B --paired``, ``stl wsol --ci``).

The images are the sampling unit. A resample draws ``n`` of the ``n`` evaluated images with
replacement (``rng.integers(0, n, (resamples, n))`` of ``numpy.random.default_rng(seed)``: the
same draws as :func:`scipy.stats.bootstrap` with ``rng=default_rng(seed)``), recomputes the
figure on it exactly as the protocol computes it on the whole set (an image drawn k times counts
k times), and the interval at level ``1 - a`` is the percentile interval: the ``a/2`` and
``1 - a/2`` quantiles (linear interpolation, NumPy's default) of the resampled figures
(Efron & Tibshirani 1993, Sec. 13.3; ``scipy.stats.bootstrap(method="percentile")``).

The Fig. 3 figures are not means of per-image values: recall(N) and precision(N) are means
over classes of ratios of per-class sums (:mod:`stl.evaluation.protocol`). Each evaluated
(image, class) pair contributes its #GT boxes, TP(N) and windows considered(N)
(:class:`ImageContributions`); a resample multiplies every contribution by the number of
times its image was drawn, sums per class, and averages over the classes present in the
resample (recall: those with at least one GT box) -- with all counts 1 this is the protocol's
number. The top-1 hit rate is the hit share of the images that have a (non-difficult) box.

Paired (:func:`paired_bootstrap`): two runs on the same images; every resample draws the same
images for both and the interval is that of the difference A - B.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.config import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED


def resample_indices(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(resamples, n) indices of images drawn with replacement (scipy.stats.bootstrap's draws)."""
    if n < 1:
        raise ValueError("the bootstrap needs at least one image")
    if resamples < 1:
        raise ValueError("the bootstrap needs at least one resample")
    return np.random.default_rng(seed).integers(0, n, (int(resamples), int(n)))


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    counts = np.zeros((len(idx), n), np.float64)
    np.add.at(counts, (np.repeat(np.arange(len(idx)), idx.shape[1]), idx.reshape(-1)), 1.0)
    return counts


def resample_counts(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(resamples, n) float: how many times each image is drawn in each resample."""
    return _counts(resample_indices(n, resamples, seed), n)


#: elements of the per-batch (resamples x rows) work arrays (the figures are computed in blocks of resamples)
_BATCH_ELEMENTS = 4_000_000


def resampled(n: int, figures: Callable[[np.ndarray], Dict[str, np.ndarray]], resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = BOOTSTRAP_SEED, width: Optional[int] = None) -> Dict[str, np.ndarray]:
    """``figures(counts)`` for every resample, computed in blocks of resamples (``width``: the size
    of the widest per-resample work array, default n) and stacked: ``{name: (resamples, ...)}``.
    The draws are those of :func:`resample_indices` (one call, so scipy's)."""
    idx = resample_indices(n, resamples, seed)
    step = max(1, _BATCH_ELEMENTS // max(width or n, n, 1))
    parts: Dict[str, List[np.ndarray]] = {}
    for start in range(0, len(idx), step):
        for k, v in figures(_counts(idx[start:start + step], n)).items():
            parts.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in parts.items()}


def percentile_interval(values: np.ndarray, level: float) -> Tuple[np.ndarray, np.ndarray]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of ``values`` along axis 0
    (NaN resamples -- a figure undefined on that resample -- left out)."""
    if not 0 < level < 1:
        raise ValueError(f"the confidence level must lie in (0, 1), not {level}")
    a = (1.0 - level) / 2.0
    v = np.asarray(values, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column gives NaN
        lo, hi = np.nanquantile(v, [a, 1.0 - a], axis=0)
    return lo, hi


@dataclass
class Interval:
    """A figure, its bootstrap interval and how it was made."""

    value: float
    low: float
    high: float
    level: float
    resamples: int
    seed: int

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "level": self.level,
                "resamples": self.resamples, "seed": self.seed}


# ----------------------------------------------------------------------------- Fig. 3 protocol
@dataclass
class ImageContributions:
    """What each evaluated image adds to the Fig. 3 sums (filled by :func:`~stl.evaluation.protocol.evaluate`).

    ``row_*``: one row per evaluated (image, class) pair: the image's position in
    ``image_ids``, the class index, its #GT boxes, TP and windows considered at each N
    (columns: ``num_windows``). ``top1``: per image 1 (its first window hits a box), 0 (it
    misses), -1 (no non-difficult box: not counted).
    """

    image_ids: List[str]
    num_windows: np.ndarray
    num_classes: int
    row_image: np.ndarray
    row_class: np.ndarray
    row_gt: np.ndarray
    row_tp: np.ndarray
    row_considered: np.ndarray
    top1: np.ndarray

    @property
    def width(self) -> int:
        """The widest per-resample work array of :meth:`figures` (rows, classes or images)."""
        return max(len(self.row_image), self.num_classes, len(self.image_ids))

    def subset(self, image_ids: Sequence[str]) -> "ImageContributions":
        """The contributions of ``image_ids`` only, in that order (classes renumbered)."""
        pos = {i: k for k, i in enumerate(self.image_ids)}
        missing = [i for i in image_ids if i not in pos]
        if missing:
            raise KeyError(f"{len(missing)} images not evaluated here, e.g. {missing[0]}")
        new_pos = {pos[i]: k for k, i in enumerate(image_ids)}
        keep = np.array([int(r) in new_pos for r in self.row_image], bool)
        classes, row_class = np.unique(self.row_class[keep], return_inverse=True)
        return ImageContributions(
            list(image_ids), self.num_windows, len(classes),
            np.array([new_pos[int(r)] for r in self.row_image[keep]], np.int64), row_class.astype(np.int64),
            self.row_gt[keep], self.row_tp[keep], self.row_considered[keep],
            self.top1[[pos[i] for i in image_ids]])

    def figures(self, counts: np.ndarray, ns: Optional[Sequence[int]] = None) -> Dict[str, np.ndarray]:
        """The protocol's figures with image i counted ``counts[b, i]`` times, for every row b.

        Returns ``{"top1_hit_rate": (B,), "recall": (B, len(ns)), "precision": (B, len(ns))}``
        (``ns`` default: every N of ``num_windows``); with all counts 1, the protocol's values.
        """
        from scipy import sparse

        counts = np.atleast_2d(np.asarray(counts, np.float64))
        cols = list(range(len(self.num_windows))) if ns is None else [list(self.num_windows).index(int(n)) for n in ns]
        B = len(counts)
        valid = self.top1 >= 0
        with np.errstate(invalid="ignore", divide="ignore"):
            top1 = (counts[:, valid] @ self.top1[valid].astype(np.float64)) / counts[:, valid].sum(1)
        if not len(self.row_image):
            nan = np.full((B, len(cols)), np.nan)
            return {"top1_hit_rate": top1, "recall": nan, "precision": nan.copy()}
        one_hot = sparse.csr_matrix((np.ones(len(self.row_class)), (np.arange(len(self.row_class)), self.row_class)),
                                    shape=(len(self.row_class), self.num_classes))
        w = counts[:, self.row_image]  # (B, R): how often each (image, class) row is drawn
        present = np.asarray((one_hot.T @ w.T).T)  # (B, C): images of the class drawn
        n_gt = np.asarray((one_hot.T @ (w * self.row_gt).T).T)
        recall = np.empty((B, len(cols)))
        precision = np.empty((B, len(cols)))
        has_gt, has_img = n_gt > 0, present > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            for k, c in enumerate(cols):
                tp = np.asarray((one_hot.T @ (w * self.row_tp[:, c]).T).T)
                cons = np.asarray((one_hot.T @ (w * self.row_considered[:, c]).T).T)
                r = np.where(has_gt, tp / np.maximum(n_gt, 1e-300), 0.0)
                p = np.where(cons > 0, tp / np.maximum(cons, 1e-300), 0.0)
                recall[:, k] = r.sum(1) / has_gt.sum(1)
                precision[:, k] = np.where(has_img, p, 0.0).sum(1) / has_img.sum(1)
        return {"top1_hit_rate": top1, "recall": recall, "precision": precision}


def _intervals(point: Dict[str, np.ndarray], boot: Dict[str, np.ndarray], level: float, resamples: int,
               seed: int, ns: Sequence[int]) -> Dict[str, object]:
    out: Dict[str, object] = {}
    for key, vals in boot.items():
        lo, hi = percentile_interval(vals, level)
        if key == "top1_hit_rate":
            out[key] = Interval(float(point[key][0]), float(lo), float(hi), level, resamples, seed)
        else:
            out[key] = {int(n): Interval(float(point[key][0][k]), float(lo[k]), float(hi[k]), level, resamples, seed)
                        for k, n in enumerate(ns)}
    return out


def eval_intervals(contrib: ImageContributions, ns: Sequence[int], level: float = 0.95,
                   resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Dict[str, object]:
    """Bootstrap intervals of one run's figures: ``{"top1_hit_rate": Interval, "recall": {N: Interval},
    "precision": {N: Interval}}``."""
    ns = [int(n) for n in ns]
    n = len(contrib.image_ids)
    point = contrib.figures(np.ones((1, n)), ns)
    boot = resampled(n, lambda c: contrib.figures(c, ns), resamples, seed, contrib.width)
    return _intervals(point, boot, level, resamples, seed, ns)


def paired_bootstrap(a: ImageContributions, b: ImageContributions, ns: Sequence[int], level: float = 0.95,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                     ) -> Tuple[List[str], Dict[str, object]]:
    """Intervals of the differences A - B on the images both evaluate (the same draws for both).

    Returns (the common image ids, ``{"top1_hit_rate": Interval, "recall": {N: Interval},
    "precision": {N: Interval}}`` of the differences)."""
    ns = [int(n) for n in ns]
    in_b = set(b.image_ids)
    common = [i for i in a.image_ids if i in in_b]
    if not common:
        raise ValueError("the two runs have no evaluated image in common")
    ca, cb = a.subset(common), b.subset(common)
    ones = np.ones((1, len(common)))
    fa, fb = ca.figures(ones, ns), cb.figures(ones, ns)
    point = {k: fa[k] - fb[k] for k in fa}

    def diff(counts):
        da, db = ca.figures(counts, ns), cb.figures(counts, ns)
        return {k: da[k] - db[k] for k in da}

    boot = resampled(len(common), diff, resamples, seed, max(ca.width, cb.width))
    return common, _intervals(point, boot, level, resamples, seed, ns)
