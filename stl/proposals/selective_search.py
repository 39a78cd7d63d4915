"""Selective Search "fast" as the paper ran it: the SelectiveSearchCodeIJCV release of
Uijlings et al. (IJCV 2013), called by the authors' ``selective_search.m`` with
``ss_version = 'fast'`` -- the paper's SELSEARCH curve (Sec. 4.1, Fig. 3).

Pipeline (one image, :class:`stl.core.config.SelectiveSearchConfig` gives every value):

1. For k in (50, 100) (outer) and colour space in (HSV, Lab) (inner): the image in that
   8-bit colour space, Felzenszwalb segmentation (sigma 0.8, min size k; the project's
   :func:`stl.core.segmentation.felzenszwalb`), 4-connected neighbouring regions.
2. Per region (IJCV Sec. 3.2): size |r| (pixels), enclosing box, a colour histogram
   (25 bins per channel of the colour image scaled to [0, 1], 75-d, L1-normalised) and a
   texture histogram (Gaussian derivatives, sigma 1, in 8 orientations per channel,
   10 bins each, 240-d, L1-normalised).
3. Per similarity combination (fast mode: colour+texture+size+fill and
   texture+size+fill; ``SSSimColourTextureSizeFillOrig`` / ``SSSimTextureSizeFill``):
   greedy hierarchical grouping of neighbouring regions (Alg. 1 of the IJCV paper):
   merge the most similar neighbouring pair, the new region's histograms are the
   size-weighted means (C_t = (|r_i| C_i + |r_j| C_j) / (|r_i| + |r_j|)), its
   neighbours the union of the pair's, until one region is left.

   s(r_i, r_j) = s_colour + s_texture + s_size + s_fill with
   s_colour = sum_k min(c_i^k, c_j^k), s_texture = sum_k min(t_i^k, t_j^k),
   s_size = 1 - (|r_i| + |r_j|) / |im|, s_fill = 1 - (|B_ij| - |r_i| - |r_j|) / |im|.
4. Ranking (``Image2HierarchicalGrouping`` + ``selective_search.m``): in each
   hierarchy the j-th merge from the end (the whole image) has priority j; the initial
   regions of a segmentation share priority (#merges + 1). Within a segmentation the boxes
   are stably sorted by priority; the 4 segmentations are pooled, every priority is
   multiplied by a uniform random number (MATLAB ``rand`` after ``rng('default')``, i.e.
   ``numpy.random.RandomState(5489)``), the pool is stably sorted ascending, boxes
   narrower or shorter than 20 pixels are dropped and duplicate boxes removed (the first
   copy stays). The returned score is minus the randomised priority.

Points where the MATLAB release could not be matched exactly are listed in
docs/selective_search.md (the segmenter is OpenCV's, colour conversion is OpenCV's,
texture binning, tie order of equal similarities, neighbourhood definition).
"""
from __future__ import annotations

import heapq
from typing import List, Optional, Tuple

import cv2
import numpy as np
from scipy import ndimage

from . import ProposalMethod, ranked, register_method
from ..core.boxes import clip_boxes, scale_boxes
from ..core.config import SelectiveSearchConfig
from ..core.segmentation import felzenszwalb, region_boxes_and_sizes, to_color_space
from ..core.similarity import l1_normalize, s_app, s_fill, s_size, union_boxes
from ..io import as_rgb_uint8

DEFAULT_SS = SelectiveSearchConfig()


# ======================================================================================
# Region features (IJCV Sec. 3.2)
# ======================================================================================

def colour_histograms(labels: np.ndarray, colour01: np.ndarray, n: int, bins: int = 25) -> np.ndarray:
    """Colour histogram of every region: ``bins`` bins per channel of a colour image in
    [0, 1] (bin = min(floor(v * bins), bins - 1)), the channels concatenated and the whole
    vector L1-normalised (IJCV Sec. 3.2: 25 bins, 75-d for 3 channels).

    Returns (n, bins * channels) float64."""
    h, w = labels.shape
    ch = colour01.reshape(h * w, -1)
    nc = ch.shape[1]
    b = np.minimum((ch * bins).astype(np.int64), bins - 1)  # (P, nc)
    idx = labels.reshape(-1, 1).astype(np.int64) * (bins * nc) + np.arange(nc) * bins + b
    counts = np.bincount(idx.ravel(), minlength=n * bins * nc).reshape(n, bins * nc)
    return l1_normalize(counts)


def gaussian_derivative_maps(channel: np.ndarray, orientations: int = 8, sigma: float = 1.0) -> np.ndarray:
    """Gaussian first derivatives (scale ``sigma``) of one channel in ``orientations``
    directions theta_o = 2 pi o / orientations: max(cos(theta) G_x + sin(theta) G_y, 0)
    (the directional derivative is steerable, and orientations theta and theta + pi are
    the two signs of one derivative), each map divided by its maximum over the image.

    Returns (orientations, H, W) in [0, 1]."""
    c = np.asarray(channel, np.float64)
    gx = ndimage.gaussian_filter(c, sigma, order=(0, 1), mode="nearest")
    gy = ndimage.gaussian_filter(c, sigma, order=(1, 0), mode="nearest")
    out = np.empty((orientations,) + c.shape)
    for o in range(orientations):
        t = 2.0 * np.pi * o / orientations
        cos, sin = np.round(np.cos(t), 12), np.round(np.sin(t), 12)  # exact 0 at multiples of 90 degrees
        r = np.maximum(cos * gx + sin * gy, 0.0)
        m = r.max()
        out[o] = r / m if m > 0 else r
    return out


def texture_histograms(labels: np.ndarray, colour01: np.ndarray, n: int, orientations: int = 8, bins: int = 10,
                       sigma: float = 1.0) -> np.ndarray:
    """Texture histogram of every region (IJCV Sec. 3.2): per channel and orientation of
    :func:`gaussian_derivative_maps`, ``bins`` bins over [0, 1]; concatenated (channel,
    orientation, bin) and L1-normalised (240-d for 3 channels, 8 orientations, 10 bins).

    Returns (n, channels * orientations * bins) float64."""
    h, w = labels.shape
    col = colour01.reshape(h, w, -1)
    nc = col.shape[2]
    dim = nc * orientations * bins
    lab = labels.reshape(-1).astype(np.int64) * dim
    counts = np.zeros(n * dim, np.int64)
    for c in range(nc):
        maps = gaussian_derivative_maps(col[:, :, c], orientations, sigma).reshape(orientations, -1)
        b = np.minimum((maps * bins).astype(np.int64), bins - 1)
        for o in range(orientations):
            counts += np.bincount(lab + (c * orientations + o) * bins + b[o], minlength=n * dim)
    return l1_normalize(counts.reshape(n, dim))


def neighbour_pairs(labels: np.ndarray) -> np.ndarray:
    """(m, 2) pairs i < j of 4-connected neighbouring regions, sorted by (i, j) (the pairs of
    :func:`stl.core.segmentation.region_adjacency`, without its n x n matrix)."""
    labels = np.asarray(labels, np.int64)
    n = int(labels.max()) + 1 if labels.size else 0
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    diff = a != b
    lo, hi = np.minimum(a[diff], b[diff]), np.maximum(a[diff], b[diff])
    codes = np.unique(lo * n + hi)
    return np.stack([codes // max(n, 1), codes % max(n, 1)], axis=1)


# ======================================================================================
# Hierarchical grouping (IJCV Alg. 1)
# ======================================================================================

def pair_similarity(strategy: str, a, b, colour, texture, sizes, boxes, image_size: float) -> np.ndarray:
    """s(r_a, r_b) of a similarity combination (module docstring) for index arrays a, b."""
    s = s_app(texture[a], texture[b]) + s_size(sizes[a], sizes[b], image_size) \
        + s_fill(boxes[a], boxes[b], sizes[a], sizes[b], image_size)
    if strategy == "colour+texture+size+fill":
        s = s_app(colour[a], colour[b]) + s
    elif strategy != "texture+size+fill":
        raise ValueError(f"unknown Selective Search similarity {strategy!r}")
    return np.asarray(s, np.float64)


def hierarchical_grouping(boxes: np.ndarray, sizes: np.ndarray, colour: np.ndarray, texture: np.ndarray,
                          pairs: np.ndarray, strategy: str, image_size: float):
    """Greedy grouping of neighbouring regions until none is left to merge.

    Parameters
    ----------
    boxes : (n, 4) pixel-inclusive boxes of the initial regions.
    sizes : (n,) pixel counts. colour, texture : (n, d) L1-normalised histograms.
    pairs : (m, 2) neighbouring initial regions.
    strategy : "colour+texture+size+fill" or "texture+size+fill".
    image_size : |im| (pixels).

    Returns
    -------
    merges : (n - 1, 2) int, the pair merged at each step (region n + t is merge t; fewer
        rows if the neighbour graph is not connected).
    merged_boxes : (len(merges), 4) the box of each new region, in merge order.

    The most similar pair is merged first; equal similarities go to the pair that became a
    candidate first (initial pairs in ``pairs`` order, then new pairs in the order they
    appear, each new region's pairs by increasing neighbour index).
    """
    n = len(sizes)
    total = max(2 * n - 1, n)
    B = np.zeros((total, 4))
    B[:n] = boxes
    S = np.zeros(total)
    S[:n] = sizes
    C = np.zeros((total, colour.shape[1]))
    C[:n] = colour
    T = np.zeros((total, texture.shape[1]))
    T[:n] = texture
    nbrs: List[set] = [set() for _ in range(total)]
    for i, j in pairs:
        nbrs[i].add(int(j))
        nbrs[j].add(int(i))
    alive = np.zeros(total, bool)
    alive[:n] = True
    heap = []
    counter = 0
    if len(pairs):
        a, b = pairs[:, 0], pairs[:, 1]
        sim = pair_similarity(strategy, a, b, C, T, S, B, image_size)
        heap = [(-float(s), k, int(i), int(j)) for k, (s, i, j) in enumerate(zip(sim, a, b))]
        counter = len(heap)
        heapq.heapify(heap)
    merges = []
    t = n
    while heap:
        _, _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        S[t] = S[i] + S[j]
        C[t] = (S[i] * C[i] + S[j] * C[j]) / S[t]
        T[t] = (S[i] * T[i] + S[j] * T[j]) / S[t]
        B[t] = union_boxes(B[i], B[j])
        alive[i] = alive[j] = False
        alive[t] = True
        merges.append((i, j))
        new = (nbrs[i] | nbrs[j]) - {i, j}
        for m in new:
            nbrs[m].discard(i)
            nbrs[m].discard(j)
            nbrs[m].add(t)
        nbrs[t] = new
        nbrs[i] = nbrs[j] = set()
        if new:
            others = np.fromiter(sorted(new), np.int64, len(new))
            sim = pair_similarity(strategy, np.full(len(others), t), others, C, T, S, B, image_size)
            for s, m in zip(sim, others):
                heapq.heappush(heap, (-float(s), counter, t, int(m)))
                counter += 1
        t += 1
    merges = np.asarray(merges, np.int64).reshape(-1, 2)
    return merges, B[n:n + len(merges)].copy()


# ======================================================================================
# One segmentation -> boxes and priorities (Image2HierarchicalGrouping)
# ======================================================================================

def segmentation_boxes(image_rgb: np.ndarray, color_space: str, k: int, config: SelectiveSearchConfig = DEFAULT_SS,
                       labels: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes and priorities of one (colour space, k) segmentation, every hierarchy of
    ``config.strategies``: merge t of a hierarchy with m merges has priority m - t (1 = the
    last merge), the initial regions priority m + 1; stably sorted by priority (hierarchies
    interleaved: h1's last merge, h2's last merge, ...). ``labels`` replaces the
    segmentation (tests)."""
    colour8 = to_color_space(image_rgb, color_space)
    if labels is None:
        labels = felzenszwalb(colour8, "rgb", k, config.sigma)  # already converted
    _, inverse = np.unique(labels, return_inverse=True)
    labels = inverse.reshape(labels.shape).astype(np.int64)
    boxes, sizes = region_boxes_and_sizes(labels)
    n = len(sizes)
    if n == 1:
        return boxes, np.ones(1)
    colour01 = colour8.astype(np.float64) / 255.0
    colour = colour_histograms(labels, colour01, n, config.colour_bins)
    texture = texture_histograms(labels, colour01, n, config.texture_orientations, config.texture_bins,
                                 config.texture_sigma)
    pairs = neighbour_pairs(labels)
    image_size = float(labels.size)
    all_boxes, all_prio = [], []
    m = None
    for strategy in config.strategies:
        _, merged = hierarchical_grouping(boxes, sizes.astype(np.float64), colour, texture, pairs, strategy,
                                          image_size)
        all_boxes.append(merged)
        all_prio.append(np.arange(len(merged), 0, -1, dtype=np.float64))
        m = len(merged) if m is None else m
    all_boxes.append(boxes)
    all_prio.append(np.full(n, m + 1, np.float64))
    bx = np.concatenate(all_boxes)
    pr = np.concatenate(all_prio)
    order = np.argsort(pr, kind="stable")
    return bx[order], pr[order]


def rank_pool(boxes: np.ndarray, priority: np.ndarray, config: SelectiveSearchConfig = DEFAULT_SS,
              rng: Optional[np.random.RandomState] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The release's pseudo-random ranking of the pooled boxes: priority x U(0, 1) (one
    draw per box in pool order, from ``RandomState(config.seed)`` unless ``rng`` is given),
    stable ascending sort, boxes under ``config.min_box_width`` px dropped, duplicates
    removed (first copy kept). Returns (boxes, randomised priorities), best first."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    priority = np.asarray(priority, np.float64).reshape(-1)
    if config.ranking == "pseudo_random":
        rng = rng if rng is not None else np.random.RandomState(config.seed)
        priority = priority * rng.random_sample(len(priority))
    order = np.argsort(priority, kind="stable")
    boxes, priority = boxes[order], priority[order]
    if config.min_box_width > 0:
        good = ((boxes[:, 2] - boxes[:, 0] + 1 >= config.min_box_width)
                & (boxes[:, 3] - boxes[:, 1] + 1 >= config.min_box_width))
        boxes, priority = boxes[good], priority[good]
    if len(boxes):
        _, first = np.unique(boxes, axis=0, return_index=True)
        first = np.sort(first)
        boxes, priority = boxes[first], priority[first]
    return boxes, priority


def selective_search_fast(image_rgb: np.ndarray, config: SelectiveSearchConfig = DEFAULT_SS):
    """All boxes of Selective Search fast on an RGB uint8 image, ranked as the release:
    (boxes [x0, y0, x1, y1] 0-based inclusive, randomised priorities ascending)."""
    bx, pr = [], []
    for k in config.ks:
        for cs in config.color_spaces:
            b, p = segmentation_boxes(image_rgb, cs, int(k), config)
            bx.append(b)
            pr.append(p)
    return rank_pool(np.concatenate(bx), np.concatenate(pr), config)


class SelectiveSearchFast(ProposalMethod):
    """SELSEARCH: Selective Search "fast" of the SelectiveSearchCodeIJCV release, as the
    authors ran it (module docstring; parameters in
    :class:`stl.core.config.SelectiveSearchConfig`). Runs on the image as given (the
    authors: the original image); ``max_side=N`` shrinks larger images first (boxes are
    mapped back). Score = minus the randomised priority (best first).

    Options: ``ss_config`` (a :class:`SelectiveSearchConfig`; not ``config``, which names
    STL's :class:`STLConfig` when runs are built), ``max_side``, ``max_boxes``, ``seed`` and
    ``ranking`` (shortcuts for the config fields)."""

    name = "SELSEARCH"

    def __init__(self, ss_config: Optional[SelectiveSearchConfig] = None, max_side: Optional[int] = None,
                 max_boxes: Optional[int] = None, seed: Optional[int] = None, ranking: Optional[str] = None):
        import dataclasses

        config = ss_config or DEFAULT_SS
        changes = {k: v for k, v in (("seed", seed), ("ranking", ranking)) if v is not None}
        self.config = dataclasses.replace(config, **changes) if changes else config
        self.max_side = None if max_side in (None, 0) else int(max_side)
        self.max_boxes = None if max_boxes is None else int(max_boxes)

    def describe(self) -> str:
        c = self.config
        return (f"SELSEARCH (SelectiveSearchCodeIJCV fast: k={list(c.ks)}, {'+'.join(c.color_spaces)}, "
                f"sigma={c.sigma}, {c.ranking} ranking seed {c.seed}, min box {c.min_box_width}px, "
                f"max_side={self.max_side})")

    def propose(self, image, labels=None, image_id=None):
        rgb = as_rgb_uint8(image)
        h, w = rgb.shape[:2]
        work = rgb
        if self.max_side and max(h, w) > self.max_side:
            s = self.max_side / float(max(h, w))
            size = (max(1, int(round(h * s))), max(1, int(round(w * s))))
            work = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        boxes, priority = selective_search_fast(work, self.config)
        if work is not rgb:
            boxes = scale_boxes(boxes, work.shape[:2], (h, w))
        boxes = clip_boxes(boxes, (h, w))
        if self.max_boxes is not None:
            boxes, priority = boxes[:self.max_boxes], priority[:self.max_boxes]
        return ranked(boxes, -priority)


register_method("SELSEARCH")(SelectiveSearchFast)

__all__ = ["SelectiveSearchFast", "selective_search_fast", "segmentation_boxes", "rank_pool",
           "hierarchical_grouping", "colour_histograms", "texture_histograms", "gaussian_derivative_maps",
           "neighbour_pairs", "pair_similarity"]
