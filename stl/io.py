"""Image reading with clear per-image errors, and atomic file writes."""
from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error
from typing import Optional, Tuple

import numpy as np

from .errors import UserError


class ImageError(UserError, ValueError):
    """An image file that cannot be used; the message says which file and why."""


#: images whose longer side exceeds this are decoded reduced (JPEG: Pillow's ``draft``, DCT scaling;
#: others: ``Image.reduce``) when a caller asks (``max_side=LARGE_IMAGE_SIDE``): STL resizes every image
#: to the network input (227 px) first, so a 12000x12000 photo need not be held at full size.
LARGE_IMAGE_SIDE = 4096

#: EXIF orientation tag, and the transposition that shows the image upright (as ImageOps.exif_transpose)
_ORIENTATION = 0x0112
_TRANSPOSE = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}  # PIL.Image.Transpose values


@dataclass
class LoadedImage:
    """An image read by :func:`load_image`."""

    #: RGB uint8 (H, W, 3), possibly reduced (see ``size``)
    array: np.ndarray
    #: (H, W) of the file as stored (what dataset annotations use)
    file_size: Tuple[int, int]
    #: (H, W) in the orientation returned (= file_size unless EXIF orientation was applied), before reduction
    size: Tuple[int, int]
    #: EXIF orientation tag of the file (1 = none); applied only with ``exif_transpose=True``
    orientation: int = 1
    exif_applied: bool = False

    @property
    def reduced(self) -> bool:
        return tuple(self.array.shape[:2]) != tuple(self.size)


def _open_checks(path: Path):
    if not path.exists():
        if path.is_symlink():
            raise ImageError(f"{path}: broken symbolic link")
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    if not os.access(path, os.R_OK):
        raise ImageError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")


def load_image(path, max_pixels: int = 200_000_000, exif_transpose: bool = False,
               max_side: Optional[int] = None) -> LoadedImage:
    """Read an image file as RGB uint8 (see :func:`to_rgb_uint8` for the modes).

    ``exif_transpose``: apply the EXIF orientation tag (the image as a photo viewer shows it; `stl
    localize`). Dataset loaders keep the stored orientation, which their annotations use.
    ``max_side``: decode images whose longer side exceeds it reduced (JPEG: DCT scaling with
    Pillow's ``draft``, at most 1/8; then ``Image.reduce`` by an integer factor) so the longer side is at
    most ``max_side``; ``size`` keeps the full size, to map boxes back.
    Raises :class:`ImageError` (naming the file) for missing, unreadable, truncated, empty or absurdly
    large files.
    """
    import warnings

    from PIL import Image, ImageFile

    path = Path(path)
    _open_checks(path)
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                file_size = (im.height, im.width)
                if im.width < 1 or im.height < 1:
                    raise ImageError(f"{path}: cannot decode image (read as {im.format or 'unknown format'} "
                                     f"with {im.width}x{im.height} pixels)")
                factor = 1
                if max_side and max(im.size) > max_side:
                    factor = -(-max(im.size) // max_side)  # ceil
                    if im.format == "JPEG":  # DCT scaling to a longer side in [max_side / 2, max_side] if it can
                        im.draft("RGB", (-(-im.width // (2 * factor)), -(-im.height // (2 * factor))))
                if im.width * im.height > max_pixels:
                    raise ImageError(f"{path}: image too large ({file_size[1]}x{file_size[0]} pixels; "
                                     f"limit {max_pixels} pixels)")
                orientation = 1
                try:
                    orientation = int(im.getexif().get(_ORIENTATION, 1) or 1)
                except Exception:  # a damaged EXIF block: keep the stored orientation
                    orientation = 1
                im.load()
                if factor > 1:  # what draft did not reduce
                    rest = -(-max(im.size) // max_side)
                    if rest > 1:
                        try:  # in Pillow's own storage: no full-size copy
                            im = im.reduce(rest)
                        except ValueError:  # a mode reduce() does not take (P, 1, I;16, ...)
                            im = Image.fromarray(to_rgb_uint8(im, str(path))).reduce(rest)
                applied = False
                size = file_size
                if exif_transpose and orientation in _TRANSPOSE:
                    im = im.transpose(_TRANSPOSE[orientation])
                    applied = True
                    if orientation in (5, 6, 7, 8):
                        size = (file_size[1], file_size[0])
                array = to_rgb_uint8(im, str(path))
                return LoadedImage(array, file_size, size, orientation, applied)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: image too large ({e})") from e
    except MemoryError as e:
        raise ImageError(f"{path}: image too large to decode in memory") from e
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct_error) as e:
        raise ImageError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from e


def read_image(path, max_pixels: int = 200_000_000, exif_transpose: bool = False,
               max_side: Optional[int] = None) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3) (:func:`load_image` without the size information).

    Grayscale is replicated to 3 channels, RGBA is composited on white (alpha
    dropped), CMYK and palette images are converted by Pillow, 16-bit images
    are scaled to 8 bits. Raises :class:`ImageError` for unreadable, truncated,
    empty or absurdly large files.
    """
    return load_image(path, max_pixels, exif_transpose, max_side).array


def to_rgb_uint8(im, where: str = "image") -> np.ndarray:
    """Convert a PIL image of any mode to an RGB uint8 array."""
    from PIL import Image

    if im.width < 1 or im.height < 1:
        raise ImageError(f"{where}: empty image ({im.width}x{im.height})")
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.nan_to_num(np.asarray(im, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(a.max()) if a.size else 0.0
        hi = (65535.0 if mode.startswith("I;16") or top > 255 else
              1.0 if mode == "F" and top <= 1.0 and float(a.min()) >= 0.0 else 255.0)
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
    if a.dtype.kind not in "buif":  # complex (its imaginary part would be dropped), object, text, dates
        raise ImageError(f"image array of dtype {a.dtype}: expected unsigned or signed integers, floats or "
                         f"booleans")
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


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: an open file of a process (``/proc/self/fd/1``, ``/dev/fd/2``, ``/dev/stdout``): written through, never renamed
_FD_PATH = re.compile(r"^/(?:proc/(?:self|thread-self|\d+)(?:/task/\d+)?|dev)/fd/\d+$|^/dev/std(?:out|err)$")


def output_target(path) -> Tuple[Path, bool]:
    """Where an output named ``path`` is written, and whether atomically.

    Returns ``(target, atomic)``: a regular file or a path that does not exist is written
    atomically (``target`` is ``path`` itself, or -- for a symbolic link -- the file the link points
    to, so the link is kept and its target replaced); anything else (a character device such as
    ``/dev/null``, a FIFO, ``/dev/stdout``, ``/proc/self/fd/N``, a link to one of them) is written
    through: ``target`` is ``path``, opened for writing, never renamed over.

    Parameters
    ----------
    path : str or os.PathLike
        The output file name the user gave.

    Returns
    -------
    tuple of (pathlib.Path, bool)
    """
    path = Path(path)
    p, fd_path = _follow_links(path)
    if fd_path is not None:
        return path, False
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return p, True  # a new file (for a dangling link: the file it names)
    except OSError:
        return path, True  # a link loop, a folder that cannot be searched, ...: fails where it is written
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return p, True
    return path, False


def _follow_links(path: Path) -> Tuple[Path, Optional[str]]:
    """(the path ``path``'s links lead to, the first ``/proc/PID/fd/N``-like path on the way or None).

    The links are followed one at a time (``/dev/stdout`` -> ``/proc/self/fd/1`` -> ``pipe:[...]``):
    ``os.path.realpath`` would go past the file descriptor to a name that is no file.
    """
    p = Path(os.path.abspath(path))
    for _ in range(64):
        p = Path(os.path.realpath(p.parent)) / p.name
        if _FD_PATH.match(str(p)):
            return p, str(p)
        if not p.is_symlink():
            break
        p = p.parent / os.readlink(p)
    return p, None


def _own_fd(path: Path) -> Optional[int]:
    """The file descriptor of this process that ``path`` names (``/dev/stdout``: 1), or None."""
    fd_path = _follow_links(path)[1]
    if fd_path is None:
        return None
    if fd_path in ("/dev/stdout", "/dev/stderr"):
        return 1 if fd_path == "/dev/stdout" else 2
    m = re.match(r"^/(?:proc/(self|thread-self|\d+)(?:/task/\d+)?|dev)/fd/(\d+)$", fd_path)
    if m and (m.group(1) in (None, "self", "thread-self") or int(m.group(1)) == os.getpid()):
        return int(m.group(2))
    return None


def _write_through(path: Path, content: Path) -> None:
    """Copy the file ``content`` into the non-regular output ``path``: a file descriptor of this
    process (``/dev/stdout``) is written where it stands (not reopened: no truncation of a file
    that stdout is redirected to, what was printed before is kept); anything else is opened."""
    import shutil
    import sys

    for stream in (sys.stdout, sys.stderr):  # what was printed before comes first (``--json /dev/stdout``)
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # pragma: no cover - a closed or odd stream
            pass
    fd = _own_fd(path)
    with open(content, "rb") as src:
        with (os.fdopen(os.dup(fd), "wb") if fd is not None else open(path, "wb")) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def _write_error(e: OSError, path: Path, *names) -> bool:
    """Whether ``e`` is a failure to write ``path`` (no file name: a write or close; or one of ``names``)."""
    return e.filename is None or str(e.filename) in {str(path), *map(str, names)}


def _mkstemp(path, **kw):
    """``tempfile.mkstemp(**kw)`` for the output ``path``; a failure (no space, no inode left, a
    read-only place) is a :class:`~stl.errors.WriteError` naming ``path``, not the temporary."""
    from .errors import WriteError

    try:
        return tempfile.mkstemp(**kw)
    except OSError as e:
        if isinstance(e, UserError):
            raise
        raise WriteError(path, e) from None


@contextmanager
def atomic_path(path):
    """Yield the path to write an output ``path`` to; atomic for files, written through otherwise.

    For a regular file (or a new one) a temporary file next to it is yielded and renamed over it
    on success, so a failure or a kill mid-write leaves the old content. A symbolic link to a file
    keeps the link: its target is replaced. Anything else -- ``/dev/null``, ``/dev/full``, a FIFO,
    ``/dev/stdout``, ``/proc/self/fd/N`` -- is written through, never renamed over (the device node
    or FIFO stays what it is): the caller writes a temporary file (any writer works, also one that
    seeks), which is then copied into the output -- opened for writing, or for a file descriptor of
    this process written where it stands. See :func:`output_target`.

    Parameters
    ----------
    path : str or os.PathLike
        The output file.

    Yields
    ------
    pathlib.Path
        Where the caller writes the whole content.

    Raises
    ------
    stl.errors.WriteError
        (a :class:`~stl.errors.UserError` and an ``OSError``) naming ``path`` when writing fails
        (``ENOSPC`` of a full disk or ``/dev/full``, a closed pipe, ...).
    stl.errors.UserError
        ``path`` is a folder.
    """
    from .errors import WriteError

    path = Path(path)
    target, atomic = output_target(path)
    if not atomic:
        fd, tmp = _mkstemp(path, prefix=".stl-output.", suffix=".tmp")
        os.close(fd)
        try:
            yield Path(tmp)
            _write_through(path, Path(tmp))
        except OSError as e:
            if isinstance(e, UserError) or not _write_error(e, path, tmp):
                raise
            raise WriteError(path, e) from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    if target.is_dir():
        raise UserError(f"{path}: is a folder; give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp(path, prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.exists(tmp):
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the user's usual mode
        os.replace(tmp, target)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, UserError) and _write_error(e, path, target, tmp):
            raise WriteError(path, e) from None
        raise


def write_json_atomic(path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` through :func:`atomic_path` (numpy values as numbers)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1, default=_json_default))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def output_names(paths) -> list:
    """One distinct file-name stem per input path, in order: the file's stem, or -- for inputs that
    share a stem (``a/x.png b/x.png``) -- ``<parent>_<stem>``, then ``-2``, ``-3``, ... if still equal."""
    paths = [Path(p) for p in paths]
    stems = [p.stem or "image" for p in paths]
    dup = {s for s in stems if stems.count(s) > 1}
    names, used = [], set()
    for p, s in zip(paths, stems):
        name = f"{p.parent.name}_{s}" if s in dup and p.parent.name else s
        base, k = name, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        names.append(name)
    return names


def folder_write_error(folder) -> Optional[str]:
    """Why no file can be created in the existing ``folder`` (a probe file is made and removed), or None.

    Parameters
    ----------
    folder : str or os.PathLike

    Returns
    -------
    str or None
        The reason (``"Permission denied"``, ``"Read-only file system"``, ...), or None if writable.
    """
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return e.strerror or str(e)
    return None


def check_output_dir(out, files=()) -> Path:
    """Make sure results can be written to folder ``out`` (created if needed) and to ``files`` in it
    BEFORE any computing: raises :class:`UserError` naming the path otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    why = folder_write_error(out)
    if why:
        raise UserError(f"--out {out}: cannot write there ({why})")
    for f in files:
        f = out / f
        if f.exists() and (f.is_dir() or not os.access(f, os.W_OK)):
            raise UserError(f"{f}: exists and cannot be replaced ({'a folder' if f.is_dir() else 'read-only'})")
    return out
