"""Self-Taught Localization (Sec. 3 of the paper): STL-CL and STL-WL windows.

Procedure for one image x (all on x resized to the network input):

1. ``initial_segmentations`` gives 4 over-segmentations (Sec. 3.2); regions whose
   box is under 5 px wide or tall are dropped.
2. For every region r with enclosing box b: the drop d(r) (Eq. 1-3) from one
   forward of the masked image h_g(x, b), and the L1-normalised feature of the
   crop x[b] (warped to the network input) for s_app.
3. Greedy agglomeration (Sec. 3.1), each segmentation on its own: merge the pair
   with the highest similarity s (Eq. 4), compute the merged region's drop and
   crop feature (two forwards), add its row of similarities, repeat until one
   region is left. Every region ever formed is a window scored by its drop.
4. Pool the windows of all segmentations, sort by drop, non-maximum
   suppression at IoU > 0.5 (``STLConfig.nms_iou``); map boxes back to the
   original image.

Forward passes are the whole cost, so the clustering is written as generators
("hierarchies") that *yield* the forwards they need; :class:`ForwardScheduler`
advances all hierarchies of all images in lockstep, de-duplicates requests
(a masked image depends only on its box in ``mask_mode="box"``, a crop only on
its box) and runs them in batches: crops through ``Classifier.forward`` in batches
of ``config.batch_size``, box masks through ``Classifier.forward_masked`` sorted by
box area, at least ``classifier.masked_batch_size`` at a time (the torch Caffe engine
computes them incrementally: :mod:`stl.models.caffe.incremental`). Every batch is filled to
exactly the batch size (``Classifier.pad_batches``), so an image's windows do not depend on
which other images share its batches -- not on ``--chunk``, a resume or the executor.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .boxes import nms, nms_authors, scale_boxes
from .config import DEFAULT, STLConfig
from ..io import as_rgb_uint8
from ..profiling import stage
from ..progress import expect_forwards, report_forwards, tracking
from ..models.base import FEATURE, LOGITS, PROB, Classifier, mask_boxes
from .segmentation import (Segmentation, initial_segmentations, pixels_in_box, region_adjacency,
                           segmentation_from_labels)
from .similarity import (drop_for_classes, l1_normalize, s_app, s_drop, s_drop_authors, s_fill, s_size,
                         top_classes, union_boxes)

log = logging.getLogger(__name__)

#: similarity given to a pair whose Eq. 4 value is NaN (ranks below every real value)
NAN_SIMILARITY = -1e9


@dataclass
class Windows:
    """Ranked STL windows of one image (after pooling, sorting and NMS).

    boxes are in ORIGINAL image pixels (pixel-inclusive ``[x0, y0, x1, y1]``);
    ``input_boxes`` the same windows on the network-input image.
    """

    boxes: np.ndarray
    scores: np.ndarray
    segmentation: np.ndarray  # index into ``segmentation_names``
    level: np.ndarray  # 0: an initial region; t > 0: formed by the t-th merge
    label: np.ndarray  # class index driving the hierarchy (STL-CL) or -1 (STL-WL)
    input_boxes: np.ndarray
    image_size: Tuple[int, int]  # (H, W) of the original image
    segmentation_names: List[str] = field(default_factory=list)
    target_classes: List[int] = field(default_factory=list)  # STL-WL: the top-5 classes of f(x)
    num_forwards: int = 0

    def __len__(self):
        return len(self.scores)

    def top(self, n: int) -> "Windows":
        sl = slice(0, n)
        return Windows(self.boxes[sl], self.scores[sl], self.segmentation[sl], self.level[sl], self.label[sl],
                       self.input_boxes[sl], self.image_size, self.segmentation_names, self.target_classes,
                       self.num_forwards)

    def to_dict(self, classes=None) -> dict:
        rows = []
        for i in range(len(self)):
            rows.append({
                "box": [round(float(v), 2) for v in self.boxes[i]],
                "drop": float(self.scores[i]),
                "segmentation": self.segmentation_names[int(self.segmentation[i])],
                "level": int(self.level[i]),
                "label": (classes.wnids[int(self.label[i])] if classes is not None and self.label[i] >= 0
                          else int(self.label[i])),
            })
        return {"image_size": list(self.image_size), "target_classes": [int(c) for c in self.target_classes],
                "num_forwards": int(self.num_forwards), "windows": rows}

    def to_xywh(self) -> np.ndarray:
        """``boxes`` as COCO ``[x, y, w, h]`` (continuous pixels: x = x0, w = x1 - x0 + 1), (K, 4)."""
        from .boxes import to_xywh

        return to_xywh(self.boxes)

    def to_coco(self, image_id: int = 1, category_id: int = 1) -> List[dict]:
        """The windows as COCO results ``{image_id, category_id, bbox: [x, y, w, h], score}``, best first
        (``score`` = the drop; ``label``: the class index whose hierarchy made the window, -1 for STL-WL)."""
        return [{"image_id": image_id, "category_id": category_id, "bbox": [round(float(v), 3) for v in b],
                 "score": float(s), "label": int(lab)} for b, s, lab in zip(self.to_xywh(), self.scores, self.label)]


def neighbour_swaps(a: "Windows", b: "Windows", tolerance: float) -> Optional[int]:
    """How two ranked window lists of one image differ, for engine parity with exact-drop
    ranking: the number of window pairs ranked in opposite order (inversions) when the two
    lists hold the same boxes and every such pair's drops differ by less than ``tolerance``;
    None when the lists differ otherwise (other boxes, or a swap of clearly different drops)."""
    ka = [tuple(np.round(x, 6)) for x in a.input_boxes]
    kb = [tuple(np.round(x, 6)) for x in b.input_boxes]
    if len(ka) != len(kb) or set(ka) != set(kb) or len(set(ka)) != len(ka):
        return None
    pos_b = {k: i for i, k in enumerate(kb)}
    rank_b = np.array([pos_b[k] for k in ka])  # a's windows, positions in b
    inversions = rank_b[:, None] > rank_b[None, :]
    inversions &= np.triu(np.ones_like(inversions), 1)
    i, j = np.nonzero(inversions)
    if np.any(np.abs(a.scores[i] - a.scores[j]) >= tolerance):
        return None
    return int(len(i))


def resize_to_input(image: np.ndarray, size: Tuple[int, int], method: str = "antialiased") -> np.ndarray:
    """Stretch an RGB uint8 image to (H, W) = size (``STLConfig.input_resize``).

    "skimage_bilinear" (the authors' ``exp30.py``): ``skimage.transform.resize`` (bilinear,
    constant border, no anti-aliasing) then ``img_as_ubyte``. "antialiased": OpenCV area
    interpolation when shrinking, bilinear when enlarging.
    """
    h, w = size
    if method == "skimage_bilinear":
        from skimage.transform import resize
        from skimage.util import img_as_ubyte

        if image.shape[:2] == (h, w):
            return np.ascontiguousarray(image, np.uint8)
        out = resize(image, (h, w), order=1, mode="constant", cval=0.0, clip=False, preserve_range=False,
                     anti_aliasing=False)
        return img_as_ubyte(np.clip(out, 0.0, 1.0))
    if method != "antialiased":
        raise ValueError(f"input_resize must be 'skimage_bilinear' or 'antialiased', not {method!r}")
    interp = cv2.INTER_AREA if (image.shape[0] >= h and image.shape[1] >= w) else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)


def box_key(box) -> Tuple[int, int, int, int]:
    return tuple(int(round(v)) for v in box)


class ImageContext:
    """One image on the network input, its segmentations and its forward caches.

    ``label_maps``: optional given initial segmentations (a list of 2-D integer label maps
    on the network-input image, e.g. the authors' own, in the order of
    ``initial_segmentations``) used instead of running the segmenter.
    """

    def __init__(self, image, classifier: Classifier, config: STLConfig = DEFAULT, label_maps=None):
        with stage("segmentation"):
            self._prepare(image, classifier, config, label_maps)

    def _prepare(self, image, classifier, config, label_maps):
        rgb = as_rgb_uint8(image)
        self.original_size = rgb.shape[:2]
        self.input_size = tuple(classifier.input_size)
        self.image_u8 = resize_to_input(rgb, self.input_size, config.input_resize)
        self.image = self.image_u8.astype(np.float32)
        color = np.asarray(classifier.mask_color, np.float32)
        # the authors assign g into their uint8 image: truncation (STLConfig.mask_fill)
        self.mask_color = np.floor(color) if config.mask_fill == "uint8" else color
        self.config = config
        if label_maps is None:
            self.segmentations: List[Segmentation] = initial_segmentations(
                self.image_u8, config.segmentation, config.box_convention)
        else:
            seg = config.segmentation
            names = [f"{cs}_k{k}" for k in seg.ks for cs in seg.color_spaces]
            if len(names) != len(label_maps):
                names = [f"given{i}" for i in range(len(label_maps))]
            self.segmentations = []
            for name, lm in zip(names, label_maps):
                if np.shape(lm) != self.input_size:
                    raise ValueError(f"label map {name} has shape {np.shape(lm)}, the network input is "
                                     f"{self.input_size}")
                self.segmentations.append(segmentation_from_labels(name, lm, seg.min_box_side,
                                                                   config.box_convention))
        self.num_pixels = float(self.input_size[0] * self.input_size[1])
        self.prob_full: Optional[np.ndarray] = None
        self.masked_prob: Dict[tuple, np.ndarray] = {}
        self.crop_feature: Dict[tuple, np.ndarray] = {}
        self.num_forwards = 0

    # -- the two kinds of images STL feeds the classifier ------------------------------
    def mask_key(self, seg_index: int, box, members: Tuple[int, ...]) -> tuple:
        if self.config.mask_mode == "box":
            return ("box",) + box_key(box)
        if self.config.mask_mode == "segment":
            return ("segment", seg_index, tuple(sorted(members)))
        raise ValueError(f"mask_mode must be 'box' or 'segment', not {self.config.mask_mode!r}")

    def masked_image(self, key: tuple) -> np.ndarray:
        """h_g(x, b) of Eq. 1: the image with the box (or the segment's pixels) set to g."""
        if key[0] == "box":
            return mask_boxes(self.image, [0], [key[1:]], self.mask_color)[0]
        img = self.image.copy()
        labels = self.segmentations[key[1]].labels
        img[np.isin(labels, key[2])] = self.mask_color
        return img

    def crop_pixels(self, key: tuple) -> np.ndarray:
        """x[b]: the pixels of the pixel-inclusive box (the crop whose feature gives s_app;
        the classifier turns it into its input, ``Classifier.forward_crops``)."""
        x0, y0, x1, y1 = key
        return self.image[y0:y1 + 1, x0:x1 + 1]

    def crop_image(self, key: tuple) -> np.ndarray:
        """x[b] as a network input under ``STLConfig.crop_mode`` (for inspection)."""
        from ..models.base import crop_to_input

        return crop_to_input(self.crop_pixels(key), self.input_size, self.config.crop_mode)


# A request is ("mask", key) or ("crop", key); a hierarchy yields a list of them
# and is resumed once all are in the context's caches.


def cluster_hierarchy(ctx: ImageContext, seg_index: int, classes: Sequence[int], label: int):
    """Greedy agglomeration of one segmentation (Sec. 3.1) as a generator.

    Yields lists of forward requests; returns ``(boxes, drops, levels)`` of all
    regions formed (initial regions first, in label order, then one per merge, as the
    authors' ``segm_all``).
    """
    cfg = ctx.config
    seg = ctx.segmentations[seg_index]
    ids = np.flatnonzero(seg.keep)
    n = len(ids)
    if n == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    total = 2 * n - 1
    boxes = np.zeros((total, 4))
    sizes = np.zeros(total)
    drops = np.zeros(total)
    levels = np.zeros(total, np.int64)
    members: List[Tuple[int, ...]] = [(int(i),) for i in ids]
    boxes[:n] = seg.boxes[ids]
    sizes[:n] = seg.sizes[ids]

    mask_keys = [ctx.mask_key(seg_index, boxes[i], members[i]) for i in range(n)]
    crop_keys = [box_key(boxes[i]) for i in range(n)]
    yield [("mask", k) for k in mask_keys] + [("crop", k) for k in crop_keys]
    drops[:n] = drop_for_classes(ctx.prob_full, np.stack([ctx.masked_prob[k] for k in mask_keys]), classes,
                                 cfg.drop_rule)
    feats0 = appearance_histograms(np.stack([ctx.crop_feature[k] for k in crop_keys]), cfg.similarity_rule)
    hists = np.zeros((total, feats0.shape[1]))
    hists[:n] = feats0

    # Upper-triangular similarity matrix; -inf marks pairs that cannot merge. The first
    # maximum in row-major order is the authors' choice (np.where(sim == max)[0][0] on their
    # symmetric matrix over the live regions, which keep this index order).
    sim = np.full((total, total), -np.inf)
    adjacency = None
    if cfg.merge_pairs == "adjacent":
        adj0 = region_adjacency(seg.labels)[np.ix_(ids, ids)]
        adjacency = np.zeros((total, total), bool)
        adjacency[:n, :n] = adj0
    elif cfg.merge_pairs != "all":
        raise ValueError(f"merge_pairs must be 'all' or 'adjacent', not {cfg.merge_pairs!r}")
    for i in range(n - 1):
        j = np.arange(i + 1, n)
        sim[i, j] = _similarity_row(ctx, i, j, drops, hists, boxes, sizes, adjacency)

    active = np.zeros(total, bool)
    active[:n] = True
    for step in range(n - 1):
        flat = int(np.argmax(sim))  # first maximum in row-major order: deterministic ties
        i, j = divmod(flat, total)
        if not np.isfinite(sim[i, j]) and sim[i, j] != NAN_SIMILARITY:
            break  # no mergeable pair left (only possible with merge_pairs="adjacent")
        k = n + step
        boxes[k] = union_boxes(boxes[i], boxes[j])
        members.append(members[i] + members[j])
        if cfg.box_convention == "authors":  # recounted inside the (shortened) merged box
            sizes[k] = pixels_in_box(seg.labels, members[k], boxes[k])
        else:
            sizes[k] = sizes[i] + sizes[j]
        levels[k] = step + 1
        mk, ck = ctx.mask_key(seg_index, boxes[k], members[k]), box_key(boxes[k])
        yield [("mask", mk), ("crop", ck)]
        drops[k] = drop_for_classes(ctx.prob_full, ctx.masked_prob[mk][None], classes, cfg.drop_rule)[0]
        hists[k] = appearance_histograms(ctx.crop_feature[ck][None], cfg.similarity_rule)[0]
        for r in (i, j):
            active[r] = False
            sim[r, :] = -np.inf
            sim[:, r] = -np.inf
        if adjacency is not None:
            adjacency[k, :] = adjacency[i, :] | adjacency[j, :]
            adjacency[:, k] = adjacency[k, :]
        others = np.flatnonzero(active)
        if len(others):
            sim[others, k] = _similarity_row(ctx, k, others, drops, hists, boxes, sizes, adjacency)
        active[k] = True
    m = n + int(levels.max())
    return boxes[:m], drops[:m], levels[:m]


def appearance_histograms(features: np.ndarray, rule: str = "authors") -> np.ndarray:
    """The L1-normalised features compared by s_app (Eq. 4), negatives clipped to 0 (fc7 after
    ReLU has none). "authors": f / sum(f), so an all-zero feature gives NaN (their 0/0);
    "paper": an all-zero feature stays all zero."""
    if rule == "paper":
        return l1_normalize(features)
    f = np.clip(np.asarray(features, np.float64), 0.0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return f / f.sum(axis=-1, keepdims=True)


def _similarity_row(ctx, i, js, drops, hists, boxes, sizes, adjacency):
    """Eq. 4 between region i and regions js (uniform weights by default)."""
    w = ctx.config.similarity_weights
    if ctx.config.similarity_rule == "authors":
        # the authors' order of terms; NaN (an all-zero feature) -> 0
        with np.errstate(invalid="ignore"):
            s = (((w[0] * s_drop_authors(drops[i], drops[js]) + w[2] * s_size(sizes[i], sizes[js], ctx.num_pixels))
                  + w[3] * s_fill(boxes[i][None], boxes[js], sizes[i], sizes[js], ctx.num_pixels))
                 + w[1] * s_app(hists[i][None], hists[js]))
        s = np.where(np.isnan(s), 0.0, s)
    else:
        s = (w[0] * s_drop(drops[i], drops[js])
             + w[1] * s_app(hists[i][None], hists[js])
             + w[2] * s_size(sizes[i], sizes[js], ctx.num_pixels)
             + w[3] * s_fill(boxes[i][None], boxes[js], sizes[i], sizes[js], ctx.num_pixels))
        s = np.where(np.isnan(s), NAN_SIMILARITY, s)
    if adjacency is not None:
        s = np.where(adjacency[i, js], s, -np.inf)
    return s


class ForwardScheduler:
    """Runs the forwards that a set of hierarchies ask for, batched and de-duplicated."""

    def __init__(self, classifier: Classifier, config: STLConfig = DEFAULT, progress=None,
                 deduplicate: bool = True):
        self.classifier = classifier
        #: False reproduces the authors' procedure (every requested forward is run,
        #: even when an identical masked image or crop was already computed).
        self.deduplicate = deduplicate
        self.forward_seconds = 0.0
        self.config = config
        self.progress = progress  # a tqdm-like object with .update(n), counting forwards
        self.batch_size = int(config.batch_size or getattr(classifier, "preferred_batch_size", 32))
        #: every forward holds exactly ``batch_size`` rows (a short last batch is filled by
        #: repeating its last item): a network's output for an item can depend on the batch size
        #: (Lite0 on the CPU: 2.5e-7 between batch 8 and 1), so without it the windows of an image
        #: would depend on which images share its batches (--chunk, resume, the executor).
        self.pad = bool(getattr(classifier, "pad_batches", True))
        self.padded = 0  #: rows run only to fill batches
        self.feature_output = LOGITS if config.appearance_feature == "logits" else FEATURE
        if config.appearance_feature not in ("feature", "logits"):
            raise ValueError("appearance_feature must be 'feature' or 'logits'")

    def full_image_probs(self, contexts: Sequence[ImageContext]) -> None:
        todo = [c for c in contexts if c.prob_full is None]
        if todo:
            bs = self.batch_size
            for start in range(0, len(todo), bs):
                chunk = todo[start:start + bs]
                with stage("full-image forwards", len(chunk)):
                    out = self.classifier.forward(self._fill(np.stack([c.image for c in chunk]), bs), (PROB,))
                for c, p in zip(chunk, out[PROB]):
                    c.prob_full = p.astype(np.float64)
                    c.num_forwards += 1
                self._tick(len(chunk))

    def run(self, jobs: List[Tuple[ImageContext, object]], on_job_done=None) -> List[object]:
        """Advance ``(context, generator)`` jobs to completion; returns their return values.

        ``on_job_done(index, value)``, if given, is called the moment job ``index`` returns."""
        results: List[object] = [None] * len(jobs)
        pending = {}
        for idx, (ctx, gen) in enumerate(jobs):
            self._advance(idx, ctx, gen, None, pending, results, on_job_done)
        while pending:
            self._execute(pending)
            current = list(pending.items())
            pending = {}
            for idx, (ctx, gen, _) in current:
                self._advance(idx, ctx, gen, True, pending, results, on_job_done)
        return results

    def _advance(self, idx, ctx, gen, value, pending, results, on_job_done=None):
        try:
            with stage("clustering"):
                req = gen.send(value) if value is not None else next(gen)
            pending[idx] = (ctx, gen, req)
        except StopIteration as stop:
            results[idx] = stop.value
            if on_job_done is not None:
                on_job_done(idx, stop.value)

    def _execute(self, pending) -> None:
        work = []  # (ctx, kind, key) not yet cached, de-duplicated
        seen = set()
        for ctx, _, reqs in pending.values():
            for kind, key in reqs:
                cache = ctx.masked_prob if kind == "mask" else ctx.crop_feature
                tag = (id(ctx), kind, key)
                if not self.deduplicate:
                    work.append((ctx, kind, key))
                elif key not in cache and tag not in seen:
                    seen.add(tag)
                    work.append((ctx, kind, key))
        bs = self.batch_size
        # Box masks go through classifier.forward_masked (which may recompute only what the box
        # changes), sorted by box area so that a batch holds boxes of similar size.
        box_masks, segment_masks, crops = [], [], []
        for w in work:
            if w[1] == "crop":
                crops.append(w)
            else:
                (box_masks if w[2][0] == "box" else segment_masks).append(w)
        box_masks.sort(key=lambda w: (_box_area(w[2][1:]), w[0].mask_color.tobytes()))
        incremental = int(getattr(self.classifier, "masked_batch_size", 0) or 0)
        mask_bs = max(bs, incremental)
        for start in range(0, len(box_masks), mask_bs):
            block = box_masks[start:start + mask_bs]
            # one call per mask colour (contexts of one config share it)
            for colour in dict.fromkeys(c.mask_color.tobytes() for c, _, _ in block):
                chunk = [w for w in block if w[0].mask_color.tobytes() == colour]
                contexts = list({id(c): c for c, _, _ in chunk}.values())
                position = {id(c): i for i, c in enumerate(contexts)}
                index = np.array([position[id(c)] for c, _, _ in chunk])
                boxes = np.array([k[1:] for _, _, k in chunk])
                if not incremental:  # an incremental engine batches (and fills) its own work
                    index, boxes = self._fill(index, bs), self._fill(boxes, bs, count=False)
                t0 = time.perf_counter()
                with stage("masked forwards", len(chunk)):
                    out = self.classifier.forward_masked(np.stack([c.image for c in contexts]), index, boxes,
                                                         (PROB,), contexts[0].mask_color)
                self.forward_seconds += time.perf_counter() - t0
                self._store(chunk, out)
        for start in range(0, len(segment_masks), bs):
            chunk = segment_masks[start:start + bs]
            t0 = time.perf_counter()
            with stage("masked forwards", len(chunk)):
                with stage("mask images"):
                    batch = np.stack([c.masked_image(k) for c, _, k in chunk])
                out = self.classifier.forward(self._fill(batch, bs), (PROB,))
            self.forward_seconds += time.perf_counter() - t0
            self._store(chunk, out)
        for start in range(0, len(crops), bs):
            chunk = crops[start:start + bs]
            t0 = time.perf_counter()
            with stage("crop forwards", len(chunk)):
                out = self.classifier.forward_crops(self._fill([c.crop_pixels(k) for c, _, k in chunk], bs),
                                                    (self.feature_output,), self.config.crop_mode)
            self.forward_seconds += time.perf_counter() - t0
            self._store(chunk, out)

    def _fill(self, items, size: int, count: bool = True):
        """``items`` (a list or an array of rows) filled to ``size`` rows by repeating its last one;
        unchanged when :attr:`pad` is off or it is full already. Only the first ``len(items)`` rows
        of the forward's output are used."""
        n = len(items)
        if not self.pad or n == 0 or n >= size:
            return items
        if count:
            self.padded += size - n
        if isinstance(items, np.ndarray):
            return np.concatenate([items, np.repeat(items[-1:], size - n, axis=0)])
        return list(items) + [items[-1]] * (size - n)

    def _store(self, chunk, out) -> None:
        for row, (c, kind, k) in enumerate(chunk):
            if kind == "mask":
                c.masked_prob[k] = out[PROB][row].astype(np.float64)
            else:
                c.crop_feature[k] = out[self.feature_output][row].astype(np.float64)
            c.num_forwards += 1
        self._tick(len(chunk))

    def _tick(self, n):
        if self.progress is not None:
            self.progress.update(n)
        report_forwards(n)  # the job bar of a run, if one listens (stl.progress)


def _box_area(box) -> int:
    x0, y0, x1, y1 = box
    return (x1 - x0 + 1) * (y1 - y0 + 1)


def ranking_key(drops: np.ndarray, resolution: float) -> np.ndarray:
    """Drops for ranking: exact when ``resolution`` is 0 (the default), else rounded to it
    (``STLConfig.drop_resolution``); the sort is stable, so ties keep pooled order."""
    if not resolution:
        return drops
    return np.round(np.asarray(drops, np.float64) / resolution) * resolution


def _normalize_labels(labels, classifier: Classifier) -> Optional[List[int]]:
    """Class indices of ``labels`` (None: STL-WL; one class or a non-empty list of classes, each a wnid,
    class words or an index). Raises ValueError for a boolean, an empty list or a non-class value."""
    if labels is None:
        return None
    usage = "give a class (a wnid such as n02123045, or a class index), a list of classes, or None for STL-WL"
    if isinstance(labels, (str, int, np.integer)) and not isinstance(labels, (bool, np.bool_)):
        labels = [labels]
    try:
        labels = list(labels)
    except TypeError:
        raise ValueError(f"label={labels!r}: not a class; {usage}") from None
    if not labels:
        raise ValueError(f"label={labels!r}: an empty list of classes; {usage}")
    out = []
    for lab in labels:
        if isinstance(lab, (bool, np.bool_)) or not isinstance(lab, (str, int, np.integer)):
            raise ValueError(f"label={lab!r}: not a class; {usage}")
        idx = classifier.classes.index(lab)
        if idx not in out:
            out.append(idx)
    return out or None


def pool_and_suppress(boxes: np.ndarray, drops: np.ndarray, config: STLConfig, input_size) -> np.ndarray:
    """Step 4: the pooled windows sorted by drop (stable: ties keep pooled order) and
    non-maximum suppression at IoU > ``config.nms_iou``; returns the kept indices in rank
    order. The authors' box convention uses their normalised, exclusive-max IoU
    (:func:`stl.boxes.nms_authors`), the inclusive one PASCAL's "+1" IoU."""
    if not len(drops):
        return np.zeros(0, np.int64)
    key = ranking_key(drops, config.drop_resolution)
    if config.box_convention == "authors":
        return nms_authors(boxes, key, config.nms_iou, input_size)
    return nms(boxes, key, config.nms_iou)


def localize_batch(images: Sequence, classifier: Classifier, labels: Sequence = None,
                   config: STLConfig = DEFAULT, progress=None, deduplicate: bool = True,
                   label_maps: Sequence = None, on_done=None) -> List[Windows]:
    """STL on several images at once, sharing classifier batches.

    ``labels[i]`` is None (STL-WL: the top-5 classes of f(x)), one class or a
    list of classes (STL-CL: one hierarchy per class, windows pooled). Classes
    are wnids or indices into ``classifier.classes``. ``deduplicate=False`` runs
    every requested forward (the authors' procedure; same results, slower). ``images`` may hold
    :class:`ImageContext` objects from an earlier call to reuse their forwards.
    ``label_maps[i]``: optional given initial segmentations of image i (see :class:`ImageContext`).
    ``on_done(i, windows)``, if given, is called the moment image i is finished (its last
    hierarchy done), before the other images of the batch: a caller can store it at once.
    """
    if labels is None:
        labels = [None] * len(images)
    if len(labels) != len(images):
        raise ValueError("labels must have one entry per image")
    label_ids = [_normalize_labels(lab, classifier) for lab in labels]  # before any computing
    # An ImageContext passed in place of an image is reused with its forward
    # caches (e.g. STL-WL then STL-CL on the same image share most forwards).
    if label_maps is None:
        label_maps = [None] * len(images)
    contexts = [im if isinstance(im, ImageContext) else ImageContext(im, classifier, config, lm)
                for im, lm in zip(images, label_maps)]
    for ctx in contexts:
        if ctx.config != config or ctx.input_size != tuple(classifier.input_size):
            raise ValueError("an ImageContext can only be reused with the same classifier and config")
    if progress is not None or tracking():  # the bars get a total before the forwards
        _announce(progress, expected_forwards(contexts, label_ids, deduplicate))
    scheduler = ForwardScheduler(classifier, config, progress, deduplicate)
    scheduler.full_image_probs(contexts)

    jobs, owners = [], []
    targets_per_image = []
    for i, ctx in enumerate(contexts):
        if label_ids[i] is None:
            targets = [(-1, top_classes(ctx.prob_full, config.wl_top_classes, config.drop_rule))]
        else:
            targets = [(c, np.array([c])) for c in label_ids[i]]
        targets_per_image.append(targets)
        for label, classes in targets:
            for s in range(len(ctx.segmentations)):
                jobs.append((ctx, cluster_hierarchy(ctx, s, classes, label)))
                owners.append((i, s, label))

    out: List[Optional[Windows]] = [None] * len(contexts)
    parts: List[list] = [[] for _ in contexts]
    remaining = [0] * len(contexts)
    for i, _, _ in owners:
        remaining[i] += 1

    def finish(i):
        with stage("nms + pooling"):
            out[i] = _pooled_windows(contexts[i], parts[i], config,
                                     targets_per_image[i][0][1] if label_ids[i] is None else [])
        if on_done is not None:
            on_done(i, out[i])

    def job_done(j, value):
        i = owners[j][0]
        parts[i].append((j, owners[j], value))
        remaining[i] -= 1
        if remaining[i] == 0:
            finish(i)

    for i in range(len(contexts)):  # images without any hierarchy
        if remaining[i] == 0:
            finish(i)
    scheduler.run(jobs, job_done)
    return out


def expected_forwards(contexts: Sequence[ImageContext], label_ids: Sequence, deduplicate: bool = True) -> int:
    """About how many forwards :func:`localize_batch` will run on ``contexts`` (for the progress
    bars, :mod:`stl.progress`): f(x) where not cached; per segmentation of n initial regions, its
    2n masked images and crops not cached (shared by the hierarchies of an image; each
    hierarchy's, cached or not, without ``deduplicate``) and 2 per merge and hierarchy. An upper
    bound (a merged region may repeat a box already computed); the job bar corrects it by what
    finished chunks really took."""
    total = 0
    for ctx, labs in zip(contexts, label_ids):
        hierarchies = 1 if labs is None else max(1, len(labs))
        total += ctx.prob_full is None
        for s, seg in enumerate(ctx.segmentations):
            ids = np.flatnonzero(seg.keep)
            if not len(ids):
                continue
            merges = hierarchies * 2 * (len(ids) - 1)
            if not deduplicate:  # every request runs, cached or not
                total += hierarchies * 2 * len(ids) + merges
                continue
            boxes = seg.boxes[ids]
            initial = sum(ctx.mask_key(s, b, (int(i),)) not in ctx.masked_prob for i, b in zip(ids, boxes))
            initial += sum(box_key(b) not in ctx.crop_feature for b in boxes)
            total += initial + merges
    return int(total)


def _announce(progress, forwards: int) -> None:
    """Tell the bars how many forwards are coming: the job bar (:func:`stl.progress.expect_forwards`)
    and ``progress`` (its ``expect(n)``, or a tqdm bar's total grown by ``n``)."""
    expect_forwards(forwards)
    if progress is None:
        return
    if hasattr(progress, "expect"):
        progress.expect(forwards)
    elif hasattr(progress, "total"):
        progress.total = (progress.total or 0) + forwards
        if hasattr(progress, "refresh"):
            progress.refresh()


def _pooled_windows(ctx: ImageContext, parts, config: STLConfig, wl_classes) -> Windows:
    """Step 4 for one image: pool its hierarchies' regions in job order (the authors' pooled
    order, which the stable sort keeps for ties), rank, suppress. ``parts``: (job, owner, result)."""
    parts = [(o, r) for _, o, r in sorted(parts, key=lambda p: p[0])]
    boxes = np.concatenate([r[0] for _, r in parts]) if parts else np.zeros((0, 4))
    drops = np.concatenate([r[1] for _, r in parts]) if parts else np.zeros(0)
    levels = np.concatenate([r[2] for _, r in parts]) if parts else np.zeros(0, np.int64)
    segs = np.concatenate([np.full(len(r[1]), o[1]) for o, r in parts]) if parts else np.zeros(0, np.int64)
    labs = np.concatenate([np.full(len(r[1]), o[2]) for o, r in parts]) if parts else np.zeros(0, np.int64)
    keep = pool_and_suppress(boxes, drops, config, ctx.input_size)
    input_boxes = boxes[keep]
    return Windows(
        boxes=scale_boxes(input_boxes, ctx.input_size, ctx.original_size),
        scores=drops[keep], segmentation=segs[keep].astype(np.int64), level=levels[keep].astype(np.int64),
        label=labs[keep].astype(np.int64), input_boxes=input_boxes, image_size=tuple(ctx.original_size),
        segmentation_names=[s.name for s in ctx.segmentations],
        target_classes=[int(c) for c in wl_classes], num_forwards=ctx.num_forwards)


def localize(image, classifier: Classifier, label=None, config: STLConfig = DEFAULT, progress=None,
             label_maps=None) -> Windows:
    """STL on one image: STL-WL when ``label`` is None, STL-CL for a class (or a list of classes).

    ``label_maps``: optional given initial segmentations (instead of the segmenter).
    Returns :class:`Windows` ranked by drop, after NMS, in original-image pixels.
    """
    return localize_batch([image], classifier, [label], config, progress, label_maps=[label_maps])[0]
