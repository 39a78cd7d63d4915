"""Initial regions for STL (Sec. 3.2): Felzenszwalb-Huttenlocher graph segmentation
in the Selective Search "fast" diversification set.

The image (already resized to the network input) is converted to each colour
space of ``SegmentationConfig.color_spaces`` and segmented with each k of
``SegmentationConfig.ks`` (sigma = 0.8, min size = k), giving 2 x 2 = 4
segmentations that STL clusters separately, k the outer loop as in the authors'
MATLAB script. Given label maps (e.g. the authors' own) enter through
:func:`segmentation_from_labels`. The segmenter is OpenCV-contrib's
``ximgproc.segmentation.createGraphSegmentation`` -- the same implementation
OpenCV's Selective Search uses. Colour conversions use OpenCV's 8-bit ranges
scaled to 0..255 on every channel (``HSV_FULL``: hue 0..255, like MATLAB's
``rgb2hsv * 255`` in the original Selective Search code; Lab: L*255/100,
a+128, b+128).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import cv2
import numpy as np

from .config import SegmentationConfig

_COLOR_CODES = {
    "hsv": cv2.COLOR_RGB2HSV_FULL,
    "lab": cv2.COLOR_RGB2Lab,
    "rgb": None,
}


@dataclass
class Segmentation:
    """One over-segmentation of the network-input image.

    Attributes
    ----------
    name : str            e.g. ``"hsv_k50"``
    labels : (H, W) int32 label image, values 0..n-1
    boxes : (n, 4) float64 pixel-inclusive boxes [x0, y0, x1, y1] in the box convention
        the segmentation was built with (``segmentation_from_labels``)
    sizes : (n,) int64 pixel counts |r| (inside the box, for the authors' convention)
    keep : (n,) bool  regions kept after the min-box-side filter
    """

    name: str
    labels: np.ndarray
    boxes: np.ndarray
    sizes: np.ndarray
    keep: np.ndarray

    @property
    def num_regions(self) -> int:
        return len(self.sizes)


def to_color_space(image_rgb: np.ndarray, color_space: str) -> np.ndarray:
    """The RGB uint8 image in ``color_space`` ("hsv", "lab", "rgb") as 8-bit channels 0..255
    (the conversions of the module docstring)."""
    if color_space not in _COLOR_CODES:
        raise ValueError(f"colour space must be one of {sorted(_COLOR_CODES)}, not {color_space!r}")
    code = _COLOR_CODES[color_space]
    return np.ascontiguousarray(image_rgb if code is None else cv2.cvtColor(image_rgb, code))


def felzenszwalb(image_rgb: np.ndarray, color_space: str, k: int, sigma: float) -> np.ndarray:
    """Felzenszwalb-Huttenlocher segmentation with min size = k; returns an int32 label image."""
    img = to_color_space(image_rgb, color_space)
    gs = cv2.ximgproc.segmentation.createGraphSegmentation(sigma=float(sigma), k=float(k), min_size=int(k))
    return np.ascontiguousarray(gs.processImage(img), np.int32)


def region_boxes_and_sizes(labels: np.ndarray):
    """Enclosing box (pixel-inclusive) and pixel count of every label 0..max."""
    n = int(labels.max()) + 1
    h, w = labels.shape
    ys, xs = np.mgrid[0:h, 0:w]
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=n).astype(np.int64)
    x0 = np.full(n, w, np.int64)
    y0 = np.full(n, h, np.int64)
    x1 = np.full(n, -1, np.int64)
    y1 = np.full(n, -1, np.int64)
    np.minimum.at(x0, flat, xs.ravel())
    np.minimum.at(y0, flat, ys.ravel())
    np.maximum.at(x1, flat, xs.ravel())
    np.maximum.at(y1, flat, ys.ravel())
    return np.stack([x0, y0, x1, y1], 1).astype(np.float64), sizes


def initial_segmentations(image_rgb: np.ndarray, config: SegmentationConfig,
                          box_convention: str = "authors") -> List[Segmentation]:
    """The len(ks) x len(color_spaces) segmentations of Sec. 3.2, k the outer loop
    (the authors' order: (k50, hsv), (k50, lab), (k100, hsv), (k100, lab))."""
    out = []
    for k in config.ks:
        for cs in config.color_spaces:
            labels = felzenszwalb(image_rgb, cs, k, config.sigma)
            out.append(segmentation_from_labels(f"{cs}_k{k}", labels, config.min_box_side, box_convention))
    return out


def segmentation_from_labels(name: str, labels: np.ndarray, min_box_side: int = 5,
                             box_convention: str = "authors") -> Segmentation:
    """A :class:`Segmentation` from any integer label map (e.g. a given one, 1-based as the
    authors' MATLAB maps). Regions are numbered 0..n-1 in increasing label order (the
    authors visit ``np.unique(labels)``).

    ``box_convention`` (see ``STLConfig.box_convention``): "inclusive" gives each region its
    pixel-inclusive enclosing box and its pixel count, kept when the box is at least
    ``min_box_side`` wide and tall. "authors" gives the box the authors effectively use,
    one pixel short at the right and bottom ([x0, y0, x1 - 1, y1 - 1] for the true inclusive
    box [x0, y0, x1, y1]), the count of the region's pixels inside that box, and keeps the
    region when x1 - x0 >= min_box_side and y1 - y0 >= min_box_side.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label map must be 2-D, got shape {labels.shape}")
    _, inverse = np.unique(labels, return_inverse=True)
    labels = inverse.reshape(labels.shape).astype(np.int32)
    boxes, sizes = region_boxes_and_sizes(labels)
    if box_convention == "inclusive":
        widths = boxes[:, 2] - boxes[:, 0] + 1
        heights = boxes[:, 3] - boxes[:, 1] + 1
    elif box_convention == "authors":
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        boxes = boxes - np.array([0, 0, 1, 1], np.float64)
        sizes = np.array([pixels_in_box(labels, (i,), b) for i, b in enumerate(boxes)], np.int64)
    else:
        raise ValueError(f"box_convention must be 'authors' or 'inclusive', not {box_convention!r}")
    keep = (widths >= min_box_side) & (heights >= min_box_side)
    return Segmentation(name, labels, boxes, sizes, keep)


def pixels_in_box(labels: np.ndarray, members, box) -> int:
    """|r| counted inside a pixel-inclusive box: pixels of ``labels`` in ``members`` there
    (the authors' ``np.sum(mask[ymin:ymax, xmin:xmax])``)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 < x0 or y1 < y0:
        return 0
    window = labels[y0:y1 + 1, x0:x1 + 1]
    if len(members) == 1:
        return int(np.count_nonzero(window == members[0]))
    return int(np.count_nonzero(np.isin(window, members)))


def region_adjacency(labels: np.ndarray) -> np.ndarray:
    """(n, n) bool: regions sharing a 4-connected pixel border."""
    n = int(labels.max()) + 1
    adj = np.zeros((n, n), bool)
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        m = a != b
        adj[a[m], b[m]] = True
    return adj | adj.T
