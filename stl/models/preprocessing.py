"""Caffe preprocessing as the paper used it (shared by the pycaffe and torch engines).

RGB -> BGR, values 0..255 (raw_scale 255 of caffe.io on [0,1] images), minus
the ILSVRC-2012 mean image (centre crop of the 256x256 mean to the input size)
or minus its per-channel mean. Both engines call :func:`caffe_preprocess` so
their inputs are bit-identical.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from .base import ModelError

#: ILSVRC-2012 per-channel mean (BGR) of Caffe's mean image; the default when no mean is given.
ILSVRC_MEAN_BGR = np.array([104.00698793, 116.66876762, 122.67891434], np.float32)


def resolve_mean(mean) -> np.ndarray:
    """None -> the ILSVRC per-channel mean; a path -> :func:`load_mean`; else an array."""
    if mean is None:
        return ILSVRC_MEAN_BGR.copy()
    if isinstance(mean, (str, Path)):
        return load_mean(mean)
    return np.asarray(mean, np.float32)


class CaffePreprocessing:
    """Turns NHWC RGB 0..255 images into NCHW BGR mean-subtracted float32 blobs.

    Parameters
    ----------
    mean : ndarray (3, Hm, Wm) BGR mean image, or (3,) BGR per-channel mean, or None.
    input_size : (H, W) of the network input.
    mean_mode : "image" (subtract the centre crop of the mean image), "channel" (subtract
        its per-channel mean) or "authors_row255" (the authors' ``NetworkCaffe`` bug: they
        index ``IMAGENET_MEAN[yoff+yoff+dim, xoff:xoff+dim]``, i.e. row 2*yoff+dim (= 255 for
        a 256 mean and a 227 input) and the centre columns, broadcast down every row).
    """

    def __init__(self, mean: Optional[np.ndarray], input_size: Tuple[int, int], mean_mode: str = "image"):
        self.input_size = tuple(input_size)
        h, w = self.input_size
        if mean is None:
            mean_image = np.zeros((3, h, w), np.float32)
        else:
            mean = np.asarray(mean, np.float32)
            if mean.ndim == 1:
                mean_mode = "channel"
                mean_image = np.broadcast_to(mean[:, None, None], (3, h, w)).copy()
            elif mean.ndim == 3 and mean.shape[0] == 3:
                if mean.shape[1] < h or mean.shape[2] < w:
                    raise ModelError(f"mean image {mean.shape} smaller than the input {h}x{w}")
                if mean_mode == "channel":
                    ch = mean.reshape(3, -1).mean(axis=1)
                    mean_image = np.broadcast_to(ch[:, None, None], (3, h, w)).copy()
                elif mean_mode == "image":
                    top = (mean.shape[1] - h) // 2
                    left = (mean.shape[2] - w) // 2
                    mean_image = mean[:, top:top + h, left:left + w].copy()
                elif mean_mode == "authors_row255":
                    top = (mean.shape[1] - h) // 2
                    left = (mean.shape[2] - w) // 2
                    row = mean[:, min(top + top + h, mean.shape[1] - 1), left:left + w]
                    mean_image = np.broadcast_to(row[:, None, :], (3, h, w)).copy()
                else:
                    raise ValueError(f"mean_mode must be 'image', 'channel' or 'authors_row255', "
                                     f"not {mean_mode!r}")
            else:
                raise ModelError(f"mean must have shape (3,H,W) or (3,), got {mean.shape}")
        self.mean_mode = mean_mode
        self.mean_image_bgr = np.ascontiguousarray(mean_image, np.float32)
        # the colour g of the mask-out: the per-channel mean of the WHOLE mean image (the
        # authors' get_mean_img), whatever slice is subtracted
        if mean is None:
            self._channel_mean_bgr = np.zeros(3, np.float32)
        elif np.ndim(mean) == 1:
            self._channel_mean_bgr = np.asarray(mean, np.float32)
        elif mean_mode == "image":
            self._channel_mean_bgr = self.mean_image_bgr.reshape(3, -1).mean(axis=1)
        else:
            self._channel_mean_bgr = np.asarray(mean, np.float64).reshape(3, -1).mean(axis=1)

    @property
    def mask_color_rgb(self) -> np.ndarray:
        """Per-channel mean in RGB order: the colour g of the mask-out h_g."""
        return np.asarray(self._channel_mean_bgr, np.float64)[::-1].astype(np.float32).copy()

    def __call__(self, images_rgb: np.ndarray) -> np.ndarray:
        x = np.asarray(images_rgb, np.float32)
        x = x[..., ::-1].transpose(0, 3, 1, 2)  # NHWC RGB -> NCHW BGR
        return np.ascontiguousarray(x - self.mean_image_bgr[None])

    def nhwc(self, images_rgb: np.ndarray) -> np.ndarray:
        """The same values as ``__call__`` in (N, H, W, C) order (BGR minus the mean)."""
        if not hasattr(self, "_mean_hwc"):
            self._mean_hwc = np.ascontiguousarray(self.mean_image_bgr.transpose(1, 2, 0))
        return np.asarray(images_rgb, np.float32)[..., ::-1] - self._mean_hwc[None]


def preprocessing_identity(classifier) -> dict:
    """What of a classifier's input handling changes its outputs, for a stored run's identity.

    ``{"precision": "fp32" | "bf16" | "fp16"}`` plus, for a network fed through
    :class:`CaffePreprocessing`, ``"caffe_mean"``: its ``mean_mode`` (``STLConfig.caffe_mean``:
    "authors_row255", "image", or "channel" for a per-channel mean). The runner stores it
    beside the method's config, so a run resumed with another preprocessing is refused.
    :meth:`stl.models.spec.ModelSpec.preprocessing_identity` says the same without building.
    """
    runtime = getattr(classifier, "runtime", None)
    precision = getattr(runtime, "precision", None) or getattr(classifier, "precision", None) or "fp32"
    out = {"precision": str(precision)}
    pre = getattr(classifier, "preprocessing", None)
    if isinstance(pre, CaffePreprocessing):
        out["caffe_mean"] = pre.mean_mode
    return out


def load_mean(path) -> np.ndarray:
    """Load a Caffe mean: ``.npy`` (3,H,W) BGR or a ``.binaryproto`` BlobProto."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"mean file not found: {path}")
    if path.suffix == ".npy":
        try:
            return np.load(path)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"cannot read mean file {path}: {e}") from e
    from .caffe.io import read_blobproto  # binaryproto

    return read_blobproto(path)


# ----------------------------------------------------------------------------- mean / std of other networks
def _three(values, what: str) -> np.ndarray:
    v = np.asarray([float(x) for x in (values if np.ndim(values) else [values])], np.float64).reshape(-1)
    if v.size == 1:
        v = np.repeat(v, 3)
    if v.size != 3 or not np.all(np.isfinite(v)):
        raise ModelError(f"{what}: give 1 or 3 numbers (RGB), not {values!r}")
    return v


def pixel_values(mean, std) -> Tuple[np.ndarray, np.ndarray]:
    """``--mean`` / ``--std`` as 3 RGB values each in 0..255 pixel units. One value means all
    channels. When every mean is <= 1 and every std < 1 both are read as fractions of 255
    (torchvision's ``0.485, 0.456, 0.406`` / ``0.229, 0.224, 0.225``); otherwise as pixel values
    (``--mean 127.5 --std 127.5``: inputs in [-1, 1]; ``--mean 0 --std 1``: raw 0..255 inputs)."""
    m, s = _three(mean, "--mean"), _three(std, "--std")
    if np.any(s <= 0):
        raise ModelError(f"--std: must be > 0, not {s.tolist()}")
    if np.all(np.abs(m) <= 1.0) and np.all(s < 1.0):
        m, s = m * 255.0, s * 255.0
    return m.astype(np.float32), s.astype(np.float32)
