"""Image reading with clear per-image errors, and atomic file writes."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import UserError


class ImageError(UserError, ValueError):
    """An image file that cannot be used; the message says which file and why."""


def read_image(path, max_pixels: int = 200_000_000) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3).

    Grayscale is replicated to 3 channels, RGBA is composited on white (alpha
    dropped), CMYK and palette images are converted by Pillow, 16-bit images
    are scaled to 8 bits. Raises :class:`ImageError` for unreadable, truncated,
    empty or absurdly large files.
    """
    from PIL import Image, ImageFile

    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb_uint8(im, str(path))
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: image too large ({e})") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: cannot decode image ({e})") from e


def to_rgb_uint8(im, where: str = "image") -> np.ndarray:
    """Convert a PIL image of any mode to an RGB uint8 array."""
    from PIL import Image

    if im.width < 1 or im.height < 1:
        raise ImageError(f"{where}: empty image ({im.width}x{im.height})")
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, np.float64)
        hi = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))


def as_rgb_uint8(image) -> np.ndarray:
    """Accept a path, a PIL image or an array (H,W), (H,W,1|3|4), any dtype -> RGB uint8."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if hasattr(image, "mode") and hasattr(image, "size"):
        return to_rgb_uint8(image)
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"image array must be (H,W), (H,W,1), (H,W,3) or (H,W,4); got {a.shape}")
    if a.dtype == np.uint16:
        a = (a.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageError("image array contains NaN or infinity")
        scale = 255.0 if a.max() <= 1.0 else 1.0
        a = np.clip(a * scale + 0.5, 0, 255).astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[..., 3:4].astype(np.float64) / 255.0
        a = (a[..., :3] * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(a)


@contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path, obj) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1, default=_json_default))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))
