"""The two CNN baselines of the paper (Sec. 4.1, "Comparison with baselines"):
SLIDING-WINDOW and OCCLUSION-BOX ("sliding occlusion box").

Both use the same classifier f as STL and the same post-processing as STL (windows
sorted by score, greedy NMS at IoU > 0.5 -- ``nms_iou``, None disables it), so
they differ from STL-WL only in how windows are generated and scored:

* SLIDING-WINDOW scores a window by what the CNN sees INSIDE it: the crop, warped
  to the network input, scored by the sum of its top-5 softmax scores.
* OCCLUSION-BOX scores a window by what the CNN loses when the window is masked:
  the Eq. 3 drop of the top-5 classes of f(x) (STL-WL's score), for square
  occluders on a fixed grid instead of STL's segment hierarchy.

The paper reports both clearly below STL (top-1 recall 0.46 and 0.18 lower on
ILSVRC-2012 val). Both need ``classifier=`` and are deterministic (a fixed grid,
stable sorting). Images of any size, including 1x1 and grayscale, are handled.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np

from ..core.boxes import nms, scale_boxes, sort_by_score
from ..io import as_rgb_uint8
from ..core.localization import resize_to_input
from ..models.base import PROB
from ..core.similarity import drop_for_classes, top_classes
from . import ProposalMethod, register_method

#: SLIDING-WINDOW grid: window side as a fraction of the image side ...
SW_SCALES = (0.3, 0.5, 0.7, 0.9, 1.0)
#: ... times these aspect ratios (width/height relative to the image's own aspect) ...
SW_ASPECT_RATIOS = (0.5, 1.0, 2.0)
#: ... with a stride of this fraction of the window's width (x) and height (y).
SW_STRIDE_FRACTION = 0.25

#: OCCLUSION-BOX occluders: (side, stride) in pixels of a 227 x 227 network input,
#: the list of the authors' gray-box / sliding-window experiments (their exp17_02),
#: scaled to the classifier's input size (per axis).
OCCLUDERS_227 = ((50, 10), (75, 15), (100, 15), (125, 20), (150, 20), (175, 25), (200, 25))


def grid_positions(extent: int, size: int, stride: float) -> np.ndarray:
    """Start offsets of windows of ``size`` px along an axis of ``extent`` px: evenly
    spaced from 0 to ``extent - size`` (so the last window touches the border),
    ``floor((extent - size) / stride) + 1`` of them (as the authors' ``linspace``)."""
    size = int(min(max(size, 1), extent))
    span = extent - size
    stride = max(float(stride), 1.0)
    n = int(math.floor(span / stride + 1e-9)) + 1
    return np.unique(np.round(np.linspace(0, span, n)).astype(np.int64))


def sliding_window_boxes(image_size, scales: Sequence[float] = SW_SCALES,
                         aspect_ratios: Sequence[float] = SW_ASPECT_RATIOS,
                         stride_fraction: float = SW_STRIDE_FRACTION) -> np.ndarray:
    """The SLIDING-WINDOW grid on an (H, W) image, pixel-inclusive, duplicates removed
    (order: scale, aspect ratio, row, column)."""
    h, w = image_size
    out = []
    for s in scales:
        for a in aspect_ratios:
            ww = max(1, min(w, int(round(w * min(1.0, s * math.sqrt(a))))))
            wh = max(1, min(h, int(round(h * min(1.0, s / math.sqrt(a))))))
            xs = grid_positions(w, ww, ww * stride_fraction)
            ys = grid_positions(h, wh, wh * stride_fraction)
            for y in ys:
                for x in xs:
                    out.append((x, y, x + ww - 1, y + wh - 1))
    boxes = np.asarray(out, np.float64).reshape(-1, 4)
    _, first = np.unique(boxes, axis=0, return_index=True)
    return boxes[np.sort(first)]


def occluder_boxes(input_size, occluders: Optional[Sequence[Tuple[float, float]]] = None) -> np.ndarray:
    """Occluder boxes on the network input (H, W), pixel-inclusive, duplicates removed.

    ``occluders``: (side, stride) pairs in input pixels; None: :data:`OCCLUDERS_227`
    scaled by H/227 (rows) and W/227 (columns)."""
    h, w = input_size
    if occluders is None:
        pairs = [((s * h / 227.0, st * h / 227.0), (s * w / 227.0, st * w / 227.0)) for s, st in OCCLUDERS_227]
    else:
        pairs = [((s, st), (s, st)) for s, st in occluders]
    out = []
    for (sy, sty), (sx, stx) in pairs:
        bh = max(1, min(h, int(round(sy))))
        bw = max(1, min(w, int(round(sx))))
        for y in grid_positions(h, bh, sty):
            for x in grid_positions(w, bw, stx):
                out.append((x, y, x + bw - 1, y + bh - 1))
    boxes = np.asarray(out, np.float64).reshape(-1, 4)
    _, first = np.unique(boxes, axis=0, return_index=True)
    return boxes[np.sort(first)]


def _batches(n: int, size: int) -> Iterable[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


class _CNNBaseline(ProposalMethod):
    uses_classifier = True

    def __init__(self, classifier=None, top_k: int = 5, nms_iou: Optional[float] = 0.5, batch_size: int = 64,
                 max_boxes: Optional[int] = None, progress=None):
        if classifier is None:
            raise ValueError(f"{self.name} needs a classifier (build_method(..., classifier=build_classifier(...)))")
        self.classifier = classifier
        self.top_k = int(top_k)
        self.nms_iou = nms_iou
        self.batch_size = int(batch_size)
        self.max_boxes = None if max_boxes is None else int(max_boxes)
        self.progress = progress

    def _finish(self, boxes: np.ndarray, scores: np.ndarray):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        if self.nms_iou is not None and len(scores):
            order = nms(boxes, scores, self.nms_iou)
        else:
            order = sort_by_score(scores)
        if self.max_boxes is not None:
            order = order[:self.max_boxes]
        return boxes[order], scores[order]

    def _probs(self, make_batch, n: int) -> np.ndarray:
        """Softmax outputs of ``n`` images built ``batch_size`` at a time by ``make_batch(slice)``."""
        rows = []
        for sl in _batches(n, self.batch_size):
            out = self.classifier(make_batch(sl), (PROB,), self.batch_size)
            rows.append(np.asarray(out[PROB], np.float64))
            if self.progress is not None:
                self.progress.update(sl.stop - sl.start)
        return np.concatenate(rows) if rows else np.zeros((0, len(self.classifier.classes)))


class SlidingWindow(_CNNBaseline):
    """SLIDING-WINDOW baseline (Sec. 4.1): windows of several sizes and aspect ratios
    on a regular grid over the ORIGINAL image; each window is cropped, warped to the
    network input (``resize_to_input``: area interpolation when shrinking, bilinear
    when enlarging) and scored by the sum of its ``top_k`` (5) softmax scores
    (``score_classes="crop"``: the crop's own top-5; ``"image"``: the top-5 classes
    of f(x) of the whole image, as STL-WL uses). Then sorting + NMS (IoU > 0.5).

    Grid (:func:`sliding_window_boxes`): side fractions ``scales`` = (0.3, 0.5, 0.7,
    0.9, 1.0) of the image side, times ``aspect_ratios`` = (1/2, 1, 2) (width = s *
    sqrt(a) * W, height = s / sqrt(a) * H, capped at the image), stride a quarter
    of the window's width / height, positions evenly spaced so the last window
    touches the border; duplicates removed: 354 windows (= forward passes) on a
    square image, about as many on any other. The paper gives no exact grid; the authors' code
    used square windows of 50-200 px with 10-25 px strides, which this grid spans
    on a 227 px image, plus the aspect ratios.
    """

    name = "SLIDING-WINDOW"

    def __init__(self, classifier=None, scales=SW_SCALES, aspect_ratios=SW_ASPECT_RATIOS,
                 stride_fraction: float = SW_STRIDE_FRACTION, score_classes: str = "crop", top_k: int = 5,
                 nms_iou: Optional[float] = 0.5, batch_size: int = 64, max_boxes: Optional[int] = None,
                 progress=None):
        super().__init__(classifier, top_k, nms_iou, batch_size, max_boxes, progress)
        if score_classes not in ("crop", "image"):
            raise ValueError(f"score_classes must be 'crop' or 'image', not {score_classes!r}")
        self.scales = tuple(float(s) for s in scales)
        self.aspect_ratios = tuple(float(a) for a in aspect_ratios)
        self.stride_fraction = float(stride_fraction)
        self.score_classes = score_classes

    def describe(self) -> str:
        return (f"SLIDING-WINDOW (scales {self.scales}, aspect ratios {self.aspect_ratios}, stride "
                f"{self.stride_fraction} of the window, top-{self.top_k} of the {self.score_classes}, "
                f"NMS {self.nms_iou}, classifier {self.classifier.name})")

    def windows(self, image_size) -> np.ndarray:
        return sliding_window_boxes(image_size, self.scales, self.aspect_ratios, self.stride_fraction)

    def propose(self, image, labels=None, image_id=None):
        rgb = as_rgb_uint8(image)
        size = tuple(self.classifier.input_size)
        boxes = self.windows(rgb.shape[:2])
        ib = boxes.astype(np.int64)

        def crops(sl):
            return np.stack([resize_to_input(rgb[y0:y1 + 1, x0:x1 + 1], size) for x0, y0, x1, y1 in ib[sl]]
                            ).astype(np.float32)

        probs = self._probs(crops, len(boxes))
        if self.score_classes == "image":
            full = self._probs(lambda sl: resize_to_input(rgb, size)[None].astype(np.float32), 1)[0]
            classes = top_classes(full, self.top_k)
            scores = probs[:, classes].sum(axis=1)
        else:
            scores = -np.sort(-probs, axis=1)[:, :self.top_k].sum(axis=1)
        return self._finish(boxes, scores)


class OcclusionBox(_CNNBaseline):
    """OCCLUSION-BOX baseline, the paper's "sliding occlusion box" (Sec. 4.1): STL's
    scoring without STL's regions. The image is resized to the network input (as in
    STL); for each square occluder on a fixed grid, the occluded image h_g(x, b) --
    the box filled with ``classifier.mask_color`` g, as in Eq. 1 -- is classified and
    the window b scored by the Eq. 3 drop
    ``sum_{c in top-5 of f(x)} max(f_c(x) - f_c(h_g(x, b)), 0)``
    (``stl.core.similarity.drop_for_classes`` over ``top_classes``). Windows are the
    occluder boxes mapped back to the original image (``scale_boxes``); then sorting
    + NMS (IoU > 0.5) as STL.

    Occluders (:func:`occluder_boxes`): (side, stride) = (50, 10), (75, 15),
    (100, 15), (125, 20), (150, 20), (175, 25), (200, 25) px on a 227 px input
    (the authors' gray-box grid), scaled to the classifier's input per axis,
    ``floor((S - side) / stride) + 1`` evenly spaced positions per axis:
    590 occluded images (+1 forward for f(x)) per image. ``occluders=[(side,
    stride), ...]`` gives another grid in input pixels.
    """

    name = "OCCLUSION-BOX"

    def __init__(self, classifier=None, occluders=None, top_k: int = 5, nms_iou: Optional[float] = 0.5,
                 batch_size: int = 64, max_boxes: Optional[int] = None, progress=None):
        super().__init__(classifier, top_k, nms_iou, batch_size, max_boxes, progress)
        self.occluders = None if occluders is None else [(float(s), float(st)) for s, st in occluders]

    def describe(self) -> str:
        grid = "authors' 227-px grid (scaled)" if self.occluders is None else self.occluders
        return (f"OCCLUSION-BOX (occluders {grid}, top-{self.top_k} drop, NMS {self.nms_iou}, "
                f"classifier {self.classifier.name})")

    def windows(self, input_size=None) -> np.ndarray:
        """Occluder boxes on the network input."""
        return occluder_boxes(tuple(input_size or self.classifier.input_size), self.occluders)

    def drops(self, image) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(occluder boxes on the input, their drops, f(x)) for one image."""
        rgb = as_rgb_uint8(image)
        size = tuple(self.classifier.input_size)
        x = resize_to_input(rgb, size).astype(np.float32)
        g = np.asarray(self.classifier.mask_color, np.float32)
        boxes = self.windows(size)
        ib = boxes.astype(np.int64)
        prob_full = self._probs(lambda sl: x[None], 1)[0]

        def occluded(sl):
            batch = np.repeat(x[None], sl.stop - sl.start, axis=0)
            for row, (x0, y0, x1, y1) in enumerate(ib[sl]):
                batch[row, y0:y1 + 1, x0:x1 + 1] = g
            return batch

        probs = self._probs(occluded, len(boxes))
        classes = top_classes(prob_full, self.top_k)
        d = drop_for_classes(prob_full, probs, classes) if len(boxes) else np.zeros(0)
        return boxes, np.asarray(d, np.float64).reshape(-1), prob_full

    def propose(self, image, labels=None, image_id=None):
        rgb = as_rgb_uint8(image)
        in_boxes, d, _ = self.drops(rgb)
        boxes = scale_boxes(in_boxes, tuple(self.classifier.input_size), rgb.shape[:2])
        # On an image smaller than the input, an occluder narrower than one original pixel
        # maps to x1 < x0 (scale_boxes keeps the continuous span): make it one pixel wide.
        boxes[:, 2] = np.maximum(boxes[:, 2], boxes[:, 0])
        boxes[:, 3] = np.maximum(boxes[:, 3], boxes[:, 1])
        return self._finish(boxes, d)


register_method("SLIDING-WINDOW")(SlidingWindow)
register_method("OCCLUSION-BOX")(OcclusionBox)
