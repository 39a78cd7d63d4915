"""Boxes, IoU and non-maximum suppression.

Convention used throughout stl: a box is ``[x0, y0, x1, y1]`` in 0-based,
pixel-INCLUSIVE coordinates (``x1`` is the last column the box covers), as in
PASCAL VOC and the authors' code; width = x1 - x0 + 1. IoU therefore uses the
PASCAL "+1" areas. VOC XML (1-based) is converted on reading.
"""
from __future__ import annotations

import numpy as np


def box_area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0] + 1, 0, None) * np.clip(boxes[:, 3] - boxes[:, 1] + 1, 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection-over-union (PASCAL +1 convention), shape (len(a), len(b))."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0 + 1, 0, None) * np.clip(iy1 - iy0 + 1, 0, None)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out


def iou_matrix_normalised(a, b, image_size) -> np.ndarray:
    """IoU as the authors compute it, shape (len(a), len(b)).

    ``a``, ``b``: pixel-inclusive boxes on an image of ``image_size`` = (H, W).
    Each box becomes the continuous span ``[x0, x1 + 1) x [y0, y1 + 1)`` divided
    by (W, H) (for a VOC box: ``BBox(xmin-1, ymin-1, xmax, ymax)`` normalised,
    ``exp19.py``); then, as ``BBox.jaccard_similarity`` (``bbox.py``) does with
    ``a`` as ``self``: intersection = ``|x1 - x0| * |y1 - y0|`` of the clipped box
    (zero when empty), union = area(a) + area(b) - intersection, IoU =
    intersection / union, every step in float64. An undefined IoU (two empty
    boxes) is 0.
    """
    h, w = float(image_size[0]), float(image_size[1])

    def norm(x):
        x = np.asarray(x, np.float64).reshape(-1, 4)
        return np.stack([x[:, 0] / w, x[:, 1] / h, (x[:, 2] + 1) / w, (x[:, 3] + 1) / h], axis=1)

    pa, pb = norm(a), norm(b)
    ix0 = np.maximum(pb[None, :, 0], pa[:, None, 0])
    iy0 = np.maximum(pb[None, :, 1], pa[:, None, 1])
    ix1 = np.minimum(pb[None, :, 2], pa[:, None, 2])
    iy1 = np.minimum(pb[None, :, 3], pa[:, None, 3])
    empty = (ix0 > ix1) | (iy0 > iy1)
    inter = np.where(empty, 0.0, np.abs(ix1 - ix0) * np.abs(iy1 - iy0))

    def area(p):
        return np.abs(p[:, 2] - p[:, 0]) * np.abs(p[:, 3] - p[:, 1])

    union = area(pa)[:, None] + area(pb)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = inter / union
    return np.where(np.isfinite(out), out, 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Windows are visited by decreasing score (ties: lower input index first, so
    the result is deterministic; NaN scores rank last); a window is removed if
    its IoU with an already kept window is **greater than** ``iou_threshold``.
    Returns the kept indices in visiting order.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = sort_by_score(scores)
    keep = []
    suppressed = np.zeros(len(boxes), bool)
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        rest = rest[~suppressed[rest]]
        if len(rest):
            ov = iou_matrix(boxes[i:i + 1], boxes[rest])[0]
            suppressed[rest[ov > iou_threshold]] = True
    return np.asarray(keep, np.int64)


def iou_authors(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU as the authors' ``BBox.jaccard_similarity`` computes it on normalised float boxes
    with EXCLUSIVE max (no "+1"): intersection (clamped to an empty box when the corners
    cross), areas |x1 - x0| * |y1 - y0|, union = area_a + area_b - intersection."""
    box = np.asarray(box, np.float64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    ix0 = np.maximum(boxes[:, 0], box[0])
    iy0 = np.maximum(boxes[:, 1], box[1])
    ix1 = np.minimum(boxes[:, 2], box[2])
    iy1 = np.minimum(boxes[:, 3], box[3])
    empty = (ix0 > ix1) | (iy0 > iy1)
    inter = np.where(empty, 0.0, np.abs(ix1 - ix0) * np.abs(iy1 - iy0))
    area = np.abs(box[2] - box[0]) * np.abs(box[3] - box[1])
    areas = np.abs(boxes[:, 2] - boxes[:, 0]) * np.abs(boxes[:, 3] - boxes[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area + areas - inter)


def normalized_exclusive(boxes: np.ndarray, size) -> np.ndarray:
    """Pixel-inclusive boxes on an image of (H, W) = size as the authors' normalised boxes:
    [x0 / W, y0 / H, (x1 + 1) / W, (y1 + 1) / H] (``BBox.normalize_to_outer_box``)."""
    h, w = size
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([b[:, 0] / float(w), b[:, 1] / float(h), (b[:, 2] + 1) / float(w), (b[:, 3] + 1) / float(h)], 1)


def nms_authors(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, size) -> np.ndarray:
    """The authors' non-maximum suppression (``BBox.non_maxima_suppression``): a stable sort by
    decreasing score (exact ties keep input order), then a window is kept if its
    :func:`iou_authors` with every window kept so far is <= ``iou_threshold``. IoU is computed
    in floating point on :func:`normalized_exclusive` boxes, so an exact IoU of 1/2 can come
    out as 0.5000000000000002 and suppress (the authors' behaviour). Returns kept indices in
    order."""
    norm = normalized_exclusive(boxes, size)
    order = sort_by_score(scores)
    keep: list = []
    for i in order:
        if keep and np.any(iou_authors(norm[i], norm[keep]) > iou_threshold):
            continue
        keep.append(int(i))
    return np.asarray(keep, np.int64)


def check_windows(boxes, scores):
    """Ranked windows as stored (run files, per-image entries), checked; raises ``ValueError`` saying
    what is wrong.

    ``boxes`` must be numbers of shape (N, 4), finite (also as float32), each box at least empty in
    the pixel-inclusive convention (x1 >= x0 - 1 and y1 >= y0 - 1: width x1 - x0 + 1 >= 0; the
    0.8-pixel box CENTER puts on a 1x1 image has x1 = x0 - 0.2); ``scores`` numbers of shape (N,),
    finite, one per box.

    Parameters
    ----------
    boxes, scores : array-like

    Returns
    -------
    boxes : ndarray (N, 4) float32
    scores : ndarray (N,) float32
    """
    b, s = np.asarray(boxes), np.asarray(scores)
    kinds = {"S": "text", "U": "text", "O": "Python objects", "b": "booleans", "c": "complex numbers"}
    for name, a in (("boxes", b), ("scores", s)):
        if a.dtype.kind not in "iuf":
            raise ValueError(f"{name} are {kinds.get(a.dtype.kind, a.dtype.name)}, not real numbers")
    if b.ndim != 2 or b.shape[1] != 4:
        if not (b.size == 0 and b.ndim <= 2):
            raise ValueError(f"boxes of shape {b.shape}, not (N, 4)")
    if s.ndim != 1 and not (s.size == 0 and s.ndim <= 1):
        raise ValueError(f"scores of shape {s.shape}, not (N,)")
    b32 = b.astype(np.float32).reshape(-1, 4)
    s32 = s.astype(np.float32).reshape(-1)
    if len(b32) != len(s32):
        raise ValueError(f"{len(b32)} boxes but {len(s32)} scores")
    def text(v):
        return "[" + ", ".join(f"{x:g}" for x in v) + "]" if np.ndim(v) else f"{float(v):g}"

    for name, a in (("box", b32), ("score", s32)):
        bad = ~np.isfinite(a)
        if bad.any():
            k = int(np.argmax(bad.any(axis=-1) if a.ndim == 2 else bad))
            raise ValueError(f"{name} {k} {text(a[k])} is not finite")
    inverted = (b32[:, 2] < b32[:, 0] - 1) | (b32[:, 3] < b32[:, 1] - 1)
    if inverted.any():
        k = int(np.argmax(inverted))
        raise ValueError(f"box {k} {text(b32[k])} has x1 < x0 - 1 or y1 < y0 - 1 (not [x0, y0, x1, y1])")
    return b32, s32


def sort_by_score(scores: np.ndarray) -> np.ndarray:
    """Indices by decreasing score, stable (ties keep input order), NaN last."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    key = np.where(np.isnan(scores), -np.inf, scores)
    return np.argsort(-key, kind="stable")


def scale_boxes(boxes: np.ndarray, from_size, to_size) -> np.ndarray:
    """Map pixel-inclusive boxes from an image of (H, W) = from_size to to_size.

    A box covering columns x0..x1 covers the continuous span [x0, x1 + 1); that
    span is scaled and turned back into inclusive pixels, clipped to the image.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    fh, fw = from_size
    th, tw = to_size
    sx, sy = tw / fw, th / fh
    out = np.empty_like(boxes)
    out[:, 0] = boxes[:, 0] * sx
    out[:, 1] = boxes[:, 1] * sy
    out[:, 2] = (boxes[:, 2] + 1) * sx - 1
    out[:, 3] = (boxes[:, 3] + 1) * sy - 1
    # a box narrower than one target pixel (shrinking) still covers the pixel it starts in
    out[:, 2] = np.maximum(out[:, 2], out[:, 0])
    out[:, 3] = np.maximum(out[:, 3], out[:, 1])
    return clip_boxes(out, to_size)


def clip_boxes(boxes: np.ndarray, size) -> np.ndarray:
    h, w = size
    boxes = np.asarray(boxes, np.float64).copy().reshape(-1, 4)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w - 1)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h - 1)
    return boxes


# ----------------------------------------------------------------------------- other conventions
def to_xyxy_edges(boxes: np.ndarray) -> np.ndarray:
    """Pixel-inclusive ``[x0, y0, x1, y1]`` -> continuous pixel-EDGE ``[x0, y0, x1 + 1, y1 + 1]``
    (detectron2's ``XYXY_ABS``, mmdetection's ``bboxes``: the box spans [x0, x1 + 1) x [y0, y1 + 1))."""
    out = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    out[:, 2:] += 1.0
    return out


def to_xywh(boxes: np.ndarray) -> np.ndarray:
    """Pixel-inclusive ``[x0, y0, x1, y1]`` -> COCO ``[x, y, w, h]`` (continuous: x = x0, w = x1 - x0 + 1)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0] + 1.0, b[:, 3] - b[:, 1] + 1.0], axis=1)


def from_xywh(xywh: np.ndarray) -> np.ndarray:
    """COCO ``[x, y, w, h]`` -> pixel-inclusive ``[x0, y0, x1, y1]`` (the inverse of :func:`to_xywh`)."""
    b = np.asarray(xywh, np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2] - 1.0, b[:, 1] + b[:, 3] - 1.0], axis=1)


def to_one_based_yx(boxes: np.ndarray) -> np.ndarray:
    """Pixel-inclusive 0-based ``[x0, y0, x1, y1]`` -> the selective-search ``.mat`` convention of
    R-CNN / Fast R-CNN / OICR: 1-based inclusive ``(y1, x1, y2, x2)`` (their loaders undo it with
    ``boxes[:, (1, 0, 3, 2)] - 1``)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return b[:, (1, 0, 3, 2)] + 1.0
