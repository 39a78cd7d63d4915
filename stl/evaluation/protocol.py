"""The paper's window-proposal protocol (Fig. 3): mean per-class recall and
precision of the top-N windows per image.

For every evaluated image and every class c present in it, the image's top-N
windows are matched (:func:`stl.evaluation.matching.match_windows`, greedy,
IoU >= 0.5, each ground-truth box taken at most once, a window whose best box
is already taken is a false positive) to the class's ground-truth boxes:

* ``mode="image"`` (ILSVRC): the class of an image is its label and all the
  image's boxes count for it;
* ``mode="box"`` (VOC, the sample): each class present is matched against its
  own boxes.

Per class: recall(N) = sum TP / #GT boxes, precision(N) = sum TP / #windows
considered (min(N, #windows) per image); the curves average these over the
classes (recall over classes with at least one ground-truth box). Also
reported: the top-1 hit rate, the share of images whose first window hits any
(non-difficult) ground-truth box (ours; the paper has no such number).

How difficult boxes, images without windows, tied scores and the IoU are
handled is an :class:`EvalProtocol`; two presets, :data:`EVAL_PROFILES`:

``"authors"`` (the default everywhere: ``evaluate``, ``stl eval``,
experiments/fig3.py): what the authors' evaluation did to produce the published
curves (lorisbaz/self-taught_localization, older commits: ``exp19.py`` loads
VOC, ``stats.py`` matches and aggregates, ``compute_statistics_exp.py``
averages over classes). Difficult boxes are removed at load (a window on one
is a false positive; a class present only as difficult is not evaluated for
that image); images without windows are skipped (their boxes leave recall);
tied scores are visited in the order of ``np.argsort(scores)[::-1]`` applied
twice, emulated with a stable sort; IoU on boxes normalised by the image size.
Reproduces ``../shared/reference/authors_eval_cases.json`` exactly
(tests/test_authors_eval_cases.py).

``"corrected"``: the VOC devkit's conventions. Difficult boxes are ignored (a
window on one is neither TP nor FP and does not count in precision; a class
present only as difficult is evaluated with 0 GT: precision 0 enters the mean,
recall does not); an image without windows counts (its boxes are misses);
windows are taken in the given rank order (stable sort by decreasing score);
IoU in exact pixel arithmetic.

docs/fidelity.md ("Evaluation protocol") tabulates each difference and what it
does to the numbers.

:func:`evaluate` also keeps what each image adds to the sums
(``EvalResult.contributions``), which the per-image bootstrap of ``stl eval --ci``
resamples (:mod:`stl.evaluation.bootstrap`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..core.config import EVAL_IOU, EVAL_NUM_WINDOWS
from .bootstrap import ImageContributions
from .matching import IGNORED, IOU_MODES, TP, hits_any, match_windows

DIFFICULT_MODES = ("remove", "ignore")
EMPTY_IMAGE_MODES = ("skip", "count")
TIE_ORDERS = ("authors", "stable")

#: the authors' cap on windows per image (``compute_statistics_exp.py``: ``max_subwin``
#: = the largest N); under ``tie_order="authors"`` the cut is made in their visiting order
AUTHORS_MAX_SUBWIN = max(EVAL_NUM_WINDOWS)


@dataclass(frozen=True)
class EvalProtocol:
    """How the Fig. 3 evaluation treats the cases where conventions differ.

    difficult : ``"remove"`` -- VOC ``difficult`` boxes are dropped before
        matching, as the authors' VOC loader does (``exp19.py``,
        ``include_difficult_objects=False``): a window on a difficult box is a
        false positive, and a class whose boxes in an image are all difficult is
        not evaluated for that image. ``"ignore"`` -- the VOC devkit rule: such a
        window is neither TP nor FP and does not count among the windows
        considered; the class is still evaluated there with 0 GT.
    empty_images : ``"skip"`` -- an image for which the method returned no
        window is left out entirely, its boxes too (the authors'
        ``Stats.aggregate_results`` in ``stats.py`` ``continue`` s on an empty
        stats object); listed in ``EvalResult.empty``. ``"count"`` -- it is
        evaluated: its boxes count in #GT and are all missed.
    tie_order : ``"authors"`` -- ``Stats.compute_stats`` (``stats.py``) visits
        the windows in ``np.argsort(scores)[::-1]`` order to match them and keeps
        the first ``max_subwin`` (5000) in that order; ``aggregate_results``
        applies ``np.argsort(...)[::-1]`` again to those (already sorted) scores
        to take the top N. With a stable argsort, equal scores are thus MATCHED
        in reversed rank order but TAKEN in rank order: of two tied windows on
        the same object the second is matched first, and at N = 1 the first
        is taken, as a false positive. ``"stable"`` -- match and take in
        decreasing score, ties in the given rank order.
    iou : ``"normalised"`` -- the authors' ``BBox.jaccard_similarity``
        (``bbox.py``) on boxes normalised by the image size, in floating point
        (:func:`stl.core.boxes.iou_matrix_normalised`); ``"pixel"`` --
        exact integer arithmetic with the PASCAL "+1" areas
        (:func:`stl.core.boxes.iou_matrix`). Same ratio; they differ only at IoU
        exactly 1/2, which the authors' rounding puts on either side of 0.5.
    """

    difficult: str = "remove"
    empty_images: str = "skip"
    tie_order: str = "authors"
    iou: str = "normalised"

    def __post_init__(self):
        for name, allowed in (("difficult", DIFFICULT_MODES), ("empty_images", EMPTY_IMAGE_MODES),
                              ("tie_order", TIE_ORDERS), ("iou", IOU_MODES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"EvalProtocol.{name} must be one of {allowed}, not {getattr(self, name)!r}")

    @property
    def name(self) -> str:
        """The preset's name (``"authors"`` / ``"corrected"``), else ``"custom"``."""
        return next((k for k, v in EVAL_PROFILES.items() if v == self), "custom")

    def describe(self) -> str:
        return (f"profile {self.name} (difficult {self.difficult}, images without windows {self.empty_images}, "
                f"tie order {self.tie_order}, IoU {self.iou})")


#: named evaluation protocols; ``"authors"`` is the default
EVAL_PROFILES: Dict[str, EvalProtocol] = {
    "authors": EvalProtocol(difficult="remove", empty_images="skip", tie_order="authors", iou="normalised"),
    "corrected": EvalProtocol(difficult="ignore", empty_images="count", tie_order="stable", iou="pixel"),
}
DEFAULT_EVAL_PROFILE = "authors"


def eval_protocol(profile: Union[str, EvalProtocol, None] = None) -> EvalProtocol:
    """An :class:`EvalProtocol` from a preset name, a protocol, or None (the default, ``"authors"``)."""
    if profile is None:
        return EVAL_PROFILES[DEFAULT_EVAL_PROFILE]
    if isinstance(profile, EvalProtocol):
        return profile
    try:
        return EVAL_PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown evaluation profile {profile!r}; choose from {sorted(EVAL_PROFILES)}") from None


def window_orders(scores: Optional[np.ndarray], n: int, tie_order: str, max_n: Optional[int] = None,
                  max_subwin: int = AUTHORS_MAX_SUBWIN) -> Tuple[np.ndarray, np.ndarray]:
    """(match order, take order): indices into an image's ``n`` windows.

    The windows are matched to the ground truth greedily in the first order;
    the top N are the first N of the second (cut at ``max_n``; every index of
    the take order is in the match order). ``scores`` None: the given order is
    the ranking. NaN scores rank last.

    ``"stable"``: both orders are the stable sort by decreasing score (the
    given order for a ranked list), cut at ``max_n``. ``"authors"``: match
    order = ``argsort(s)[::-1][:max_subwin]`` (``Stats.compute_stats`` with
    ``max_subwin`` = 5000 as ``compute_statistics_exp.py`` sets it), take order
    = the match order re-sorted by ``argsort(s[match])[::-1]``
    (``Stats.aggregate_results``), both argsorts stable. Equal scores are thus
    matched last-first and taken first-first. Their NumPy's default argsort was
    a quicksort, stable only on partitions of at most 16 elements: what order
    their runs gave to longer runs of ties depended on the values around them;
    this emulation is the deterministic reading of the same code (the one
    ``authors_eval_cases.json`` was made with).
    """
    key = -np.arange(n, dtype=np.float64) if scores is None else np.asarray(scores, np.float64).reshape(-1)
    if len(key) != n:
        raise ValueError(f"{len(key)} scores for {n} windows")
    key = np.where(np.isnan(key), -np.inf, key)
    if tie_order == "stable":
        order = np.argsort(-key, kind="stable")[:max_n]
        return order, order
    if tie_order != "authors":
        raise ValueError(f"tie_order must be one of {TIE_ORDERS}, not {tie_order!r}")
    match = np.argsort(key, kind="stable")[::-1][:max_subwin]
    take = match[np.argsort(key[match], kind="stable")[::-1]]
    return match, take[:max_n]


@dataclass
class EvalResult:
    num_windows: np.ndarray  # (M,) the Ns
    classes: List[str]
    n_gt: np.ndarray  # (C,) ground-truth boxes per class (difficult ones never count)
    tp: np.ndarray  # (C, M) true positives per class and N
    considered: np.ndarray  # (C, M) windows considered (TP + FP) per class and N
    n_images: np.ndarray  # (C,) images per class
    top1_hits: int
    top1_images: int
    image_ids: List[str]  # evaluated images
    missing: List[str] = field(default_factory=list)  # images without proposals (not scored)
    iou_threshold: float = EVAL_IOU
    matching: str = "pascal"
    mode: str = "box"
    protocol: EvalProtocol = field(default_factory=eval_protocol)
    #: images whose proposals hold no window, left out under ``empty_images="skip"``
    empty: List[str] = field(default_factory=list)
    #: what each evaluated image adds to the sums (:class:`stl.evaluation.bootstrap.ImageContributions`;
    #: the per-image bootstrap of ``stl eval --ci`` resamples it); None when not recorded
    contributions: Optional[ImageContributions] = None

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
            "num_empty": len(self.empty), "num_classes": len(self.classes), "num_gt_boxes": int(self.n_gt.sum()),
            "iou_threshold": self.iou_threshold, "matching": self.matching, "mode": self.mode,
            "profile": self.protocol.name, "protocol": asdict(self.protocol),
        }


def _proposal_arrays(p) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(boxes, scores or None) from ``(boxes, scores)`` or ``boxes``."""
    if isinstance(p, tuple) or (isinstance(p, list) and len(p) == 2 and np.ndim(p[0]) == 2):
        boxes, scores = p[0], p[1]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return boxes, (None if scores is None else np.asarray(scores, np.float64).reshape(-1))
    return np.asarray(p, np.float64).reshape(-1, 4), None


def _ground_truth(rec, label, mode: str, difficult: str):
    """(boxes, difficult flags) of ``label`` in ``rec``, or None when the class is not
    evaluated in this image (``difficult="remove"`` and all its boxes are difficult)."""
    if mode == "image":
        gt, diff = rec.boxes, rec.difficult
    else:
        gt, diff = rec.boxes_of(label)
    if difficult == "remove":
        if len(gt) and diff.all():
            return None
        gt, diff = gt[~diff], diff[~diff]
    return gt, diff


def evaluate(records: Iterable, proposals: Mapping[str, object], num_windows: Sequence[int] = EVAL_NUM_WINDOWS,
             iou_threshold: float = EVAL_IOU, mode: Optional[str] = None, matching: str = "pascal",
             protocol: Union[str, EvalProtocol, None] = None) -> EvalResult:
    """Evaluate ranked windows against ground truth.

    Parameters
    ----------
    records : iterable of :class:`stl.data.Record` (a :class:`stl.data.Dataset`).
    proposals : image id -> (boxes, scores) or boxes, pixel-inclusive in the
        record's image, ranked best first (boxes alone: that order is the rank).
        Images of ``records`` without proposals are skipped and listed in
        ``EvalResult.missing``.
    mode : "image" or "box" (see the module doc); default: the dataset's
        ``eval_mode``, else "box".
    matching : "pascal" (the authors' / VOC devkit rule) or "unmatched".
    protocol : an :class:`EvalProtocol` or a preset name of
        :data:`EVAL_PROFILES`; default ``"authors"``.
    """
    proto = eval_protocol(protocol)
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
    evaluated, missing, empty = [], [], []
    # per (image, class) row: image position, class, #GT, TP(N), considered(N); per image: top-1 hit
    rows_img, rows_cls, rows_gt, rows_tp, rows_cons, top1 = [], [], [], [], [], []
    for rec in records:
        if rec.image_id not in proposals:
            missing.append(rec.image_id)
            continue
        boxes, scores = _proposal_arrays(proposals[rec.image_id])
        if len(boxes) == 0 and proto.empty_images == "skip":
            empty.append(rec.image_id)
            continue
        evaluated.append(rec.image_id)
        match, take = window_orders(scores, len(boxes), proto.tie_order, max_n)
        k = len(take)
        upto = np.minimum(ns, k)
        size = rec.size
        easy = rec.boxes[~rec.difficult]
        if len(easy):
            top1_images += 1
            hit = int(k > 0 and hits_any(boxes[take[0]], easy, iou_threshold, proto.iou, size))
            top1_hits += hit
            top1.append(hit)
        else:
            top1.append(-1)
        for lab in rec.labels:
            got = _ground_truth(rec, lab, mode, proto.difficult)
            if got is None:
                continue
            gt, diff = got
            status = np.zeros(len(boxes), np.int8)
            status[match] = match_windows(boxes[match], gt, diff, iou_threshold, matching, proto.iou, size)
            status = status[take]
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
            rows_img.append(len(evaluated) - 1)
            rows_cls.append(c)
            rows_gt.append(int((~diff).sum()))
            rows_tp.append(tp_cum[upto])
            rows_cons.append(cons_cum[upto])
    C = len(n_gt)
    contrib = ImageContributions(
        list(evaluated), ns, C, np.asarray(rows_img, np.int64), np.asarray(rows_cls, np.int64),
        np.asarray(rows_gt, np.float64), np.asarray(rows_tp, np.float64).reshape(-1, len(ns)),
        np.asarray(rows_cons, np.float64).reshape(-1, len(ns)), np.asarray(top1, np.int64))
    return EvalResult(
        num_windows=ns, classes=list(cls_index), n_gt=np.asarray(n_gt, np.int64),
        tp=np.asarray(tp, np.int64).reshape(C, len(ns)), considered=np.asarray(cons, np.int64).reshape(C, len(ns)),
        n_images=np.asarray(n_img, np.int64), top1_hits=top1_hits, top1_images=top1_images,
        image_ids=evaluated, missing=missing, iou_threshold=iou_threshold, matching=matching, mode=mode,
        protocol=proto, empty=empty, contributions=contrib)
