"""Window features (R-CNN style) and their on-disk cache.

A window's feature: the window is rounded to whole pixels, cropped from the
ORIGINAL image (optionally with context, see
:class:`stl.detection.config.FeatureConfig`), warped (stretched, bilinear) to
the classifier's input size and passed through the classifier; the
``FEATURE`` output is kept (CaffeNet fc7 after ReLU -- R-CNN's feature --;
EfficientNet-Lite0's 1280-d pooled feature).

Cache (:class:`FeatureStore`): a :class:`stl.store.Store` (the same per-image
atomic store as the runner's) -- one entry per image, ``<root>/<image id>.h5``
with ``boxes`` (int32 (N, 4), the rounded pixel boxes -- the cache key
together with the image id) and ``features`` (N, D), written atomically, so a
killed run leaves only complete entries and a rerun computes only the missing
windows. The store's ``store.json`` records the model, layer and crop
settings; opening a store made with other ones raises (use another folder).
Extraction holds the store's lock (a second process waits).
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..models.base import FEATURE
from ..store import Store

log = logging.getLogger(__name__)

FORMAT = "stl-window-features/1"


def pixel_boxes(boxes, size) -> np.ndarray:
    """Round pixel-inclusive boxes to whole pixels inside an image of (H, W) = size (int32)."""
    h, w = size
    b = np.rint(np.asarray(boxes, np.float64).reshape(-1, 4))
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w - 1)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h - 1)
    b[:, 2] = np.maximum(b[:, 2], b[:, 0])
    b[:, 3] = np.maximum(b[:, 3], b[:, 1])
    return b.astype(np.int32)


def warp_crop(image: np.ndarray, box, out_size: Tuple[int, int], context_padding: int = 0) -> np.ndarray:
    """The window ``box`` (whole pixels, inclusive) of ``image`` warped to (H, W) = out_size,
    float32 RGB 0..255. ``context_padding`` p > 0 enlarges the box so that p pixels of the
    warped output are context around it (R-CNN's warp with context), clipped to the image."""
    oh, ow = out_size
    x0, y0, x1, y1 = (int(v) for v in box)
    if context_padding > 0:
        h, w = image.shape[:2]
        sx = ow / max(ow - 2 * context_padding, 1)
        sy = oh / max(oh - 2 * context_padding, 1)
        cx, cy = (x0 + x1 + 1) / 2.0, (y0 + y1 + 1) / 2.0
        hw, hh = (x1 - x0 + 1) * sx / 2.0, (y1 - y0 + 1) * sy / 2.0
        x0, x1 = max(0, int(round(cx - hw))), min(w - 1, int(round(cx + hw)) - 1)
        y0, y1 = max(0, int(round(cy - hh))), min(h - 1, int(round(cy + hh)) - 1)
        x1, y1 = max(x1, x0), max(y1, y0)
    crop = np.ascontiguousarray(image[y0:y1 + 1, x0:x1 + 1]).astype(np.float32)
    return cv2.resize(crop, (ow, oh), interpolation=cv2.INTER_LINEAR)


def extract_window_features(classifier, image: np.ndarray, boxes, context_padding: int = 0,
                            batch_size: int = 64) -> np.ndarray:
    """FEATURE of every window (already whole-pixel boxes) of one RGB uint8 image, (N, D) float32."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    out = []
    size = tuple(classifier.input_size)
    for start in range(0, len(boxes), batch_size):
        crops = np.stack([warp_crop(image, b, size, context_padding) for b in boxes[start:start + batch_size]])
        out.append(classifier(crops, outputs=(FEATURE,), batch_size=batch_size)[FEATURE].astype(np.float32))
    if not out:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(out)


def box_keys(boxes) -> np.ndarray:
    """One uint64 per whole-pixel box (coordinates < 65536): the cache key within an image."""
    b = np.asarray(boxes, np.int64).reshape(-1, 4).astype(np.uint64)
    return b[:, 0] | (b[:, 1] << np.uint64(16)) | (b[:, 2] << np.uint64(32)) | (b[:, 3] << np.uint64(48))


class _Index:
    """Row lookup of one image's cached boxes (sorted keys + their rows)."""

    __slots__ = ("keys", "rows", "n")

    def __init__(self, boxes: np.ndarray):
        k = box_keys(boxes)
        order = np.argsort(k, kind="stable")
        self.keys, self.rows, self.n = k[order], order, len(k)

    def lookup(self, boxes) -> np.ndarray:
        """Row of each box, -1 where not cached."""
        k = box_keys(boxes)
        if self.n == 0:
            return np.full(len(k), -1, np.int64)
        pos = np.clip(np.searchsorted(self.keys, k), 0, self.n - 1)
        return np.where(self.keys[pos] == k, self.rows[pos], -1).astype(np.int64)


class FeatureStore:
    """Per-image HDF5 feature cache keyed by (image id, whole-pixel box).

    Reading: the boxes of an image (a small index, kept for the last
    ``index_cache`` images) map boxes to rows; a request for a quarter or more
    of an image's rows reads and keeps (LRU, ``memory_mib``) the whole array, a
    smaller one reads only its rows -- so gathering a few negatives from each of
    thousands of images stays cheap. ``classifier`` may be None for read-only
    use (then missing windows raise).
    """

    def __init__(self, root, classifier=None, model_tag: str = "", feature_name: str = "",
                 context_padding: int = 0, dtype: str = "float16", batch_size: int = 64,
                 memory_mib: int = 2048, index_cache: int = 4096):
        self.root = Path(root)
        self.classifier = classifier
        self.context_padding = int(context_padding)
        self.dtype = np.dtype(dtype)
        self.batch_size = batch_size
        self.memory_bytes = int(memory_mib) * 2 ** 20
        self.index_cache = int(index_cache)
        self._mem: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._mem_bytes = 0
        self._idx: "OrderedDict[str, _Index]" = OrderedDict()
        self.num_computed = 0
        self.seconds_computing = 0.0
        self.identity = {"format": FORMAT, "model": model_tag or getattr(classifier, "name", ""),
                         "feature": feature_name or getattr(classifier, "feature_name", FEATURE),
                         "input_size": list(getattr(classifier, "input_size", ()) or ()),
                         "context_padding": self.context_padding}
        if classifier is None:  # read-only: adopt what the store was made with
            self._store = Store(self.root)
            self.identity = self._store.identity or self.identity
        else:
            self._store = Store(self.root, self.identity,
                                ("format", "model", "feature", "input_size", "context_padding"))

    # -- files ------------------------------------------------------------------
    def path(self, image_id: str) -> Path:
        return self._store.path(image_id)

    def _index(self, image_id: str) -> _Index:
        idx = self._idx.get(image_id)
        if idx is not None:
            self._idx.move_to_end(image_id)
            return idx
        if image_id in self._store:
            boxes = self._store.read(image_id, names=("boxes",))[0]["boxes"]
        else:
            boxes = np.zeros((0, 4), np.int32)
        idx = _Index(boxes)
        self._idx[image_id] = idx
        while len(self._idx) > self.index_cache:
            self._idx.popitem(last=False)
        return idx

    def _remember(self, image_id, feats: np.ndarray):
        old = self._mem.pop(image_id, None)
        if old is not None:
            self._mem_bytes -= old.nbytes
        if feats.nbytes > self.memory_bytes:
            return
        self._mem[image_id] = feats
        self._mem_bytes += feats.nbytes
        while self._mem_bytes > self.memory_bytes and self._mem:
            _, ev = self._mem.popitem(last=False)
            self._mem_bytes -= ev.nbytes

    def _read_rows(self, image_id: str, rows: np.ndarray, n_total: int) -> np.ndarray:
        feats = self._mem.get(image_id)
        if feats is not None:
            self._mem.move_to_end(image_id)
            return feats[rows]
        import h5py

        uniq, inv = np.unique(rows, return_inverse=True)
        with h5py.File(self._store.find(image_id) or self.path(image_id), "r") as f:
            if len(uniq) * 4 >= n_total:
                feats = f["features"][()]
                self._remember(image_id, feats)
                return feats[rows]
            part = f["features"][uniq]
        return part[inv]

    def _write(self, image_id: str, boxes: np.ndarray, feats: np.ndarray):
        self._store.write(image_id, {"boxes": boxes.astype(np.int32), "features": feats.astype(self.dtype)})
        self._idx.pop(image_id, None)
        self._remember(image_id, feats.astype(self.dtype))

    def _all(self, image_id: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        if image_id not in self._store:
            return np.zeros((0, 4), np.int32), None
        data, _ = self._store.read(image_id, names=("boxes", "features"))
        return data["boxes"].astype(np.int32), data["features"]

    # -- API --------------------------------------------------------------------
    def missing(self, image_id: str, boxes) -> np.ndarray:
        """The distinct whole-pixel boxes (already rounded) not cached for the image."""
        boxes = np.asarray(boxes, np.int32).reshape(-1, 4)
        if len(boxes) == 0:
            return boxes
        uniq = np.unique(boxes, axis=0)
        return uniq[self._index(image_id).lookup(uniq) < 0]

    def ensure(self, image_id: str, boxes, read_image: Callable[[], np.ndarray]) -> int:
        """Compute and store the features of the not-yet-cached ``boxes`` (whole pixels).
        Returns the number of windows computed."""
        todo = self.missing(image_id, boxes)
        if len(todo) == 0:
            return 0
        if self.classifier is None:
            raise KeyError(f"{image_id}: {len(todo)} windows have no cached features (read-only store)")
        t = time.time()
        feats = extract_window_features(self.classifier, read_image(), todo, self.context_padding, self.batch_size)
        self.seconds_computing += time.time() - t
        self.num_computed += len(todo)
        old_boxes, old_feats = self._all(image_id)
        if old_feats is not None and len(old_boxes):
            boxes_all = np.concatenate([old_boxes, todo])
            feats_all = np.concatenate([old_feats.astype(np.float32), feats])
        else:
            boxes_all, feats_all = todo, feats
        self._write(image_id, boxes_all, feats_all)
        return len(todo)

    def get(self, image_id: str, boxes) -> np.ndarray:
        """Features (float32) of whole-pixel ``boxes`` of one image, in the given order."""
        boxes = np.asarray(boxes, np.int32).reshape(-1, 4)
        idx = self._index(image_id)
        if len(boxes) == 0:
            return np.zeros((0, 0), np.float32)
        rows = idx.lookup(boxes)
        if (rows < 0).any():
            raise KeyError(f"{image_id}: window {boxes[int(np.argmax(rows < 0))].tolist()} has no cached feature")
        return self._read_rows(image_id, rows, idx.n).astype(np.float32)

    def extract_all(self, jobs: Sequence[Tuple[str, np.ndarray, Callable[[], np.ndarray]]], progress: bool = True,
                    desc: str = "features") -> int:
        """``ensure`` for many images with one progress bar counting windows."""
        from ..progress import progress_bar

        todo = []
        total = 0
        for image_id, boxes, reader in jobs:
            n = len(self.missing(image_id, boxes))
            if n:
                todo.append((image_id, boxes, reader, n))
                total += n
        if not total:
            return 0
        bar = progress_bar(total=total, unit="win", desc=desc, enabled=progress, smoothing=0.05)
        done = 0
        try:
            with self._store.lock(wait=True):
                self._store.remove_stale_temps()
                for image_id, boxes, reader, n in todo:
                    done += self.ensure(image_id, boxes, reader)
                    bar.update(n)
                    bar.set_postfix_str(f"{bar.n}/{total} windows", refresh=False)
        finally:
            bar.close()
        return done

    @property
    def rate(self) -> float:
        """Windows per second of feature extraction so far (crop + warp + forward)."""
        return self.num_computed / self.seconds_computing if self.seconds_computing > 0 else float("nan")
