"""The classifier interface STL drives: a whole-image classifier on raw pixels.

Every engine (pycaffe, Caffe-in-PyTorch, EfficientNet-Lite0, ...) implements
:class:`Classifier`. STL only ever hands it RGB images at the network input
size with values in 0..255 (float32 or uint8, layout NHWC); the engine does its
own preprocessing (Caffe: RGB->BGR, minus the mean image; Lite0: scale to
[-1, 1]) so that the same masked pixels mean the same thing to every engine.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..profiling import stage

#: Output names an engine can return from :meth:`Classifier.forward`.
PROB = "prob"  # softmax probabilities, (N, C)
LOGITS = "logits"  # pre-softmax class scores (CaffeNet fc8), (N, C)
FEATURE = "feature"  # penultimate feature (CaffeNet fc7 after ReLU), (N, D)


class ModelError(RuntimeError):
    """A model file is missing, corrupt or uses something we cannot run."""


@dataclass
class ClassList:
    """Class identifiers (WordNet ids for ImageNet) and human-readable words."""

    wnids: List[str]
    words: List[str]

    def __len__(self) -> int:
        return len(self.wnids)

    def index(self, label) -> int:
        """Index of a class given as wnid (``n02123045``), index or exact words."""
        if isinstance(label, (int, np.integer)):
            if not 0 <= int(label) < len(self.wnids):
                raise KeyError(f"class index {label} out of range 0..{len(self.wnids) - 1}")
            return int(label)
        label = str(label)
        if label.isdigit():
            return self.index(int(label))
        try:
            return self.wnids.index(label)
        except ValueError:
            pass
        for i, w in enumerate(self.words):
            if label == w or label == w.split(",")[0].strip():
                return i
        raise KeyError(f"unknown class {label!r} (give a wnid such as n02123045 or a class index)")

    @classmethod
    def resolve(cls, classes, n: int) -> "ClassList":
        """A ClassList for an n-way classifier from a ClassList, a synset_words.txt
        path, or None (ImageNet when n == 1000, else generic names)."""
        if isinstance(classes, ClassList):
            return classes
        if classes is None:
            imagenet = cls.imagenet()
            if n == len(imagenet):
                return imagenet
            return cls([f"class_{i}" for i in range(n)], [f"class {i}" for i in range(n)])
        if isinstance(classes, (str, Path)):  # synset_words.txt: "wnid words" per line
            p = Path(classes)
            if not p.is_file():
                raise ModelError(f"class list not found: {p}")
            wnids, words = [], []
            for line in p.read_text().splitlines():
                if line.strip():
                    wnid, _, w = line.strip().partition(" ")
                    wnids.append(wnid)
                    words.append(w)
            return cls(wnids, words)
        raise TypeError(f"classes must be a ClassList, a synset_words.txt path or None, not {type(classes)}")

    @classmethod
    def imagenet(cls) -> "ClassList":
        import json
        from pathlib import Path

        d = json.loads((Path(__file__).parent / "ilsvrc2012_classes.json").read_text())
        return cls(list(d["wnids"]), list(d["words"]))


class Classifier(abc.ABC):
    """A whole-image classifier f(x) (the paper's CNN).

    Attributes
    ----------
    name : str
        Registry name or model path.
    input_size : (int, int)
        (height, width) of the network input; STL works on the image resized to it.
    classes : ClassList
    mask_color : ndarray, shape (3,), float32
        The colour g used by the mask-out operation h_g (Eq. 1) in RGB 0..255:
        for Caffe models the per-channel mean of the ILSVRC mean image, for a
        network fed [-1, 1] inputs the value that maps to 0 (127.5).
    feature_name : str
        Human-readable name of the layer returned as ``FEATURE`` (e.g. ``fc7``).
    """

    name: str = "classifier"
    input_size: Tuple[int, int] = (227, 227)
    classes: ClassList
    mask_color: np.ndarray
    feature_name: str = "feature"
    device: str = "cpu"
    #: batch size at which this classifier runs fastest on its device (used by STL
    #: when ``STLConfig.batch_size`` is None; measure with ``stl bench``)
    preferred_batch_size: int = 32
    #: items per :meth:`forward_masked` call STL sends at least (an engine that computes masked
    #: images incrementally amortises its whole-batch layers over more items)
    masked_batch_size: int = 0
    #: STL fills every batch it sends to exactly its batch size (repeating the last item), so
    #: that an item's output never depends on how many others share its batch; an engine whose
    #: outputs are independent of the batch size can set this False to skip the filler rows
    pad_batches: bool = True

    @abc.abstractmethod
    def forward(self, images: np.ndarray, outputs: Sequence[str] = (PROB, FEATURE)) -> Dict[str, np.ndarray]:
        """Run one batch.

        Parameters
        ----------
        images : ndarray, (N, H, W, 3), RGB, values 0..255 (uint8 or float32),
            H, W == ``input_size``.
        outputs : names among ``PROB``, ``LOGITS``, ``FEATURE``.

        Returns
        -------
        dict name -> float32 ndarray with N rows.
        """

    def forward_masked(self, images: np.ndarray, index, boxes, outputs: Sequence[str] = (PROB,),
                       color=None) -> Dict[str, np.ndarray]:
        """f(h_g(x, b)) of Eq. 1 for box masks, one batch.

        Item n is ``images[index[n]]`` with the pixel-inclusive box ``boxes[n] = [x0, y0, x1, y1]``
        filled with ``color`` (default :attr:`mask_color`). Engines may compute it faster than
        :meth:`forward` on the masked images (the torch Caffe engine recomputes only what the box
        changes); the values must be the same up to float rounding.
        """
        color = self.mask_color if color is None else color
        with stage("mask images"):
            batch = mask_boxes(images, index, boxes, color)
        return self.forward(batch, outputs)

    def forward_crops(self, crops: Sequence[np.ndarray], outputs: Sequence[str] = (FEATURE,),
                      crop_mode: str = "center_square") -> Dict[str, np.ndarray]:
        """The classifier on image crops of any size (the crops x[b] whose feature gives s_app).

        The classifier decides how a crop becomes its input; the built-in engines apply
        :func:`crop_to_input` with ``crop_mode`` (``STLConfig.crop_mode``). Override this for a
        network that owns its preprocessing, as the authors' ``NetworkCaffe.evaluate`` does.
        """
        if not len(crops):
            return {o: np.zeros((0, 0), np.float32) for o in outputs}
        with stage("crop preprocessing"):
            batch = crops_to_input(crops, self.input_size, crop_mode)
        return self.forward(batch, outputs)

    def __call__(self, images: np.ndarray, outputs: Sequence[str] = (PROB, FEATURE), batch_size: int = 64
                 ) -> Dict[str, np.ndarray]:
        """:meth:`forward` over any number of images, ``batch_size`` at a time."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        self.check_input(images)
        chunks: Dict[str, List[np.ndarray]] = {k: [] for k in outputs}
        for start in range(0, len(images), batch_size):
            out = self.forward(images[start:start + batch_size], outputs)
            for k in outputs:
                chunks[k].append(out[k])
        return {k: (np.concatenate(v) if v else np.zeros((0,), np.float32)) for k, v in chunks.items()}

    def check_input(self, images: np.ndarray) -> None:
        h, w = self.input_size
        if images.ndim != 4 or images.shape[1:] != (h, w, 3):
            raise ValueError(f"{self.name}: expected images of shape (N, {h}, {w}, 3), got {images.shape}")

    def describe(self) -> str:
        return f"{self.name} ({type(self).__name__}, input {self.input_size[0]}x{self.input_size[1]}, device {self.device})"


def mask_boxes(images: np.ndarray, index, boxes, color) -> np.ndarray:
    """h_g(x, b) of Eq. 1 for each item: ``images[index[n]]`` (NHWC) with the pixel-inclusive box
    ``boxes[n] = [x0, y0, x1, y1]`` (rounded to integers) set to ``color``."""
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[None]
    index = np.asarray(index, np.int64)
    out = images[index].copy()
    color = np.asarray(color, np.float32)
    for n, (x0, y0, x1, y1) in enumerate(np.round(np.asarray(boxes, np.float64)).astype(np.int64)):
        out[n, max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = color
    return out


def center_square(image: np.ndarray) -> np.ndarray:
    """The central square of an (H, W, ...) array, as the authors' ``util.crop_image_center``:
    if H < W the columns [o, o + H) with o = (W - H) // 2, else the rows [o, o + W)."""
    h, w = image.shape[:2]
    if h < w:
        o = (w - h) // 2
        return image[:, o:o + h]
    o = (h - w) // 2
    return image[o:o + w]


def linear_taps(n_in: int, n_out: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two taps of ``scipy.ndimage.zoom(order=1, grid_mode=True, mode="grid-constant")``
    along one axis of length ``n_in`` resized to ``n_out`` (what ``skimage.transform.resize``
    with order 1, ``mode="constant"``, no anti-aliasing computes).

    Output sample o sits at input coordinate c = (o + 1/2) n_in / n_out - 1/2; it is
    (1 - t) v[i] + t v[i + 1] with i = floor(c), t = c - i, and v = 0 outside the input (the
    constant border). Returns ``(i + 1, 1 - t, t)``: indices into the axis padded with one
    zero on each side, and the two weights.
    """
    c = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    i = np.floor(c)
    t = c - i
    return i.astype(np.int64) + 1, 1.0 - t, t


def _bilinear_padded(x: np.ndarray, size: Tuple[int, int], work=None) -> np.ndarray:
    """Separable bilinear resize of float64 (h, w, C) ``x`` to (H, W, C) with a zero border:
    columns first, then rows, two taps each (:func:`linear_taps`), on (rows, columns x C)
    2-D views so that no array is transposed and NumPy's inner loops are long. ``work``: two
    float64 (H, W * C) buffers reused across calls (fresh large arrays cost page faults)."""
    h, w, ch = x.shape
    H, W = size
    xp = np.zeros((h + 2, (w + 2) * ch))  # one zero row / column on each side
    xp[1:-1, ch:-ch] = x.reshape(h, w * ch)
    c, c0, c1 = linear_taps(w, W)
    left = (c[:, None] * ch + np.arange(ch)).ravel()  # flat column of tap 0 of each (column, channel)
    cols = np.take(xp, left, axis=1)
    cols *= np.repeat(c0, ch)
    cols += np.take(xp, left + ch, axis=1) * np.repeat(c1, ch)  # (h + 2, W * C)
    r, r0, r1 = linear_taps(h, H)
    out, tmp = work if work is not None else (np.empty((H, W * ch)), np.empty((H, W * ch)))
    np.take(cols, r, axis=0, out=out)
    out *= r0[:, None]
    np.take(cols, r + 1, axis=0, out=tmp)
    tmp *= r1[:, None]
    out += tmp
    return out.reshape(H, W, ch)


def skimage_bilinear(image: np.ndarray, size: Tuple[int, int], out: np.ndarray = None, work=None) -> np.ndarray:
    """Resize RGB 0..255 pixels to (H, W) = size as the authors' 2014 ``skimage.transform.resize``
    did by default: bilinear (order 1), constant zero border, no anti-aliasing, computed on
    ``image / 255`` and clipped to [0, 1]; returns float32 0..255 (the authors multiply by 255).

    Computed as two separable 2-tap interpolations (:func:`linear_taps`): equal to
    ``skimage.transform.resize`` to float64 rounding, bit for bit in float32 on every case of
    ``tests/test_preprocessing_batch.py``, and several times faster. ``out``: a float32
    (H, W, C) array to write into; ``work``: see :func:`_bilinear_padded`.
    """
    x = np.asarray(image, np.float64) / 255.0
    if x.ndim == 2:
        x = x[..., None]
    y = _bilinear_padded(x, tuple(size), work)
    np.clip(y, 0.0, 1.0, out=y)
    y *= 255.0
    if out is None:
        out = y.astype(np.float32)
    else:
        out[...] = y.reshape(out.shape)
    return out if np.ndim(image) == 3 else out[..., 0]


def crop_to_input(crop: np.ndarray, size: Tuple[int, int], crop_mode: str = "center_square") -> np.ndarray:
    """A crop x[b] (h, w, 3; RGB 0..255) as a network input of (H, W) = size.

    "center_square" (authors' ``NetworkCaffe.evaluate``): :func:`center_square`, then
    :func:`skimage_bilinear`. "warp": the whole crop warped bilinearly (OpenCV).
    """
    crop = np.asarray(crop, np.float32)
    h, w = size
    if crop_mode == "center_square":
        return skimage_bilinear(center_square(crop), (h, w))
    if crop_mode == "warp":
        import cv2

        return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    raise ValueError(f"crop_mode must be 'center_square' or 'warp', not {crop_mode!r}")


def crops_to_input(crops: Sequence[np.ndarray], size: Tuple[int, int], crop_mode: str = "center_square",
                   out: np.ndarray = None) -> np.ndarray:
    """:func:`crop_to_input` of every crop, stacked into one (N, H, W, 3) float32 batch
    (written into ``out`` when given), with the resize's work buffers shared by all crops."""
    h, w = size
    if out is None:
        out = np.empty((len(crops), h, w, 3), np.float32)
    if crop_mode != "center_square":
        for n, c in enumerate(crops):
            out[n] = crop_to_input(c, size, crop_mode)
        return out
    work = (np.empty((h, w * 3)), np.empty((h, w * 3)))
    for n, c in enumerate(crops):
        skimage_bilinear(center_square(np.asarray(c, np.float32)), (h, w), out[n], work)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def set_threads(threads: int) -> None:
    """Limit this process's math libraries to ``threads`` threads (torch, OpenCV, OpenMP)."""
    import os
    import sys

    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)
