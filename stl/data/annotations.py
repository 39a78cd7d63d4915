"""Reading annotation files defensively: every problem names the file and line (or the XML file and
object), and fails only the image it concerns wherever the rest of the dataset can still be used.

Boxes are checked against their image size: a box with ``x1 < x0`` or ``y1 < y0``, a non-finite
coordinate, or one lying wholly outside the image fails its image; a box reaching past the image is
clipped, with a warning naming the file and line.
"""
from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..paths import special_file

log = logging.getLogger("stl.data")


class AnnotationError(ValueError):
    """One image's annotation is unusable; the message names the file and line (or XML object)."""


def numbered_lines(path: Path) -> List[Tuple[int, str]]:
    """(1-based line number, stripped text) of the non-blank lines of a text file.

    The reader of every id list and metadata file of the dataset roots (``image_ids.txt``,
    ``class_labels.txt``, VOC ``ImageSets/Main/test.txt``, ...). A UTF-8 byte-order mark (files
    saved by Windows editors) is dropped, not read as part of the first line.
    """
    from . import DatasetError

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path} not found")
    if path.is_dir():
        raise DatasetError(f"{path} is a folder, not a text file")
    what = special_file(path)
    if what:  # opening a FIFO would block until something writes to it
        raise DatasetError(f"{path} is {what}, not a text file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    return [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]


def image_ids_of(names: Sequence[str]) -> Dict[str, str]:
    """{listed file name: image id}: the file's stem (``val/ILSVRC2012_val_00000001.JPEG`` ->
    ``ILSVRC2012_val_00000001``), or -- for files that share a stem (``val/a.JPEG``,
    ``val2/a.JPEG``) -- the name without its extension (``val/a``, ``val2/a``), or the whole
    name where even that is shared (``val/a.JPEG``, ``val/a.png``): distinct names never
    become one image."""
    from collections import Counter

    names = list(dict.fromkeys(names))
    stems = [Path(n).stem for n in names]
    bare = [Path(n).with_suffix("").as_posix() if Path(n).suffix else n for n in names]
    n_stem, n_bare = Counter(stems), Counter(bare)
    return {n: stem if n_stem[stem] == 1 else b if n_bare[b] == 1 else n for n, stem, b in zip(names, stems, bare)}


def parse_int(text: str, where: str, what: str, low: Optional[int] = None, high: Optional[int] = None) -> int:
    try:
        v = int(text.strip())
    except (ValueError, AttributeError):
        raise AnnotationError(f"{where}: {what} {text!r} is not an integer") from None
    if (low is not None and v < low) or (high is not None and v > high):
        rng = f"{low}..{high}" if high is not None else f">= {low}"
        raise AnnotationError(f"{where}: {what} {v} is out of range ({rng})")
    return v


def parse_float(text, where: str, what: str) -> float:
    try:
        v = float(str(text).strip())
    except (ValueError, AttributeError):
        raise AnnotationError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(v):
        raise AnnotationError(f"{where}: {what} {text!r} is not a finite number")
    return v


def check_box(box: Sequence[float], where: str) -> List[float]:
    """A box's own consistency: x1 >= x0 and y1 >= y0 (inclusive pixels)."""
    x0, y0, x1, y1 = box
    if x1 < x0 or y1 < y0:
        raise AnnotationError(f"{where}: box [{x0:g} {y0:g} {x1:g} {y1:g}] has "
                              f"{'x1 < x0' if x1 < x0 else 'y1 < y0'}")
    return [float(v) for v in box]


def check_boxes_in_image(boxes: np.ndarray, sources: Sequence[str], size) -> np.ndarray:
    """Boxes (0-based inclusive) against an image of ``size`` (H, W): a box wholly outside raises
    :class:`AnnotationError`; one reaching past the border is clipped with a warning. Both name the
    box's source (file:line)."""
    h, w = int(size[0]), int(size[1])
    out = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    for k, (b, src) in enumerate(zip(out, sources)):
        x0, y0, x1, y1 = b
        if x0 > w - 1 or y0 > h - 1 or x1 < 0 or y1 < 0:
            raise AnnotationError(f"{src}: box [{x0:g} {y0:g} {x1:g} {y1:g}] lies outside the {w}x{h} image")
        if x0 < 0 or y0 < 0 or x1 > w - 1 or y1 > h - 1:
            c = [max(0.0, x0), max(0.0, y0), min(w - 1.0, x1), min(h - 1.0, y1)]
            log.warning("%s: box [%g %g %g %g] reaches past the %dx%d image; clipped to [%g %g %g %g]",
                        src, x0, y0, x1, y1, w, h, *c)
            out[k] = c
    return out


def parse_xml_annotation(xml: Path, one_based: bool, require_size: bool = True) -> dict:
    """A PASCAL VOC / ILSVRC bbox XML file: ``size`` (H, W) or None, ``names``, ``boxes`` (0-based
    inclusive; 1 subtracted if ``one_based``), ``difficult``, ``sources`` (for messages). Raises
    :class:`AnnotationError` naming the file (and object) for anything it cannot use."""
    xml = Path(xml)
    what = special_file(xml)
    if what:  # opening a FIFO would block until something writes to it
        raise AnnotationError(f"{xml}: is {what}, not an XML file")
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as e:
        raise AnnotationError(f"{xml}: malformed XML ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{xml}: cannot read ({e})") from None
    size = None
    s = root.find("size")
    if s is not None:
        size = (parse_int(s.findtext("height") or "", f"{xml}: <size>", "<height>", 1),
                parse_int(s.findtext("width") or "", f"{xml}: <size>", "<width>", 1))
    elif require_size:
        raise AnnotationError(f"{xml}: no <size> element (the image size the boxes refer to)")
    names, boxes, difficult, sources = [], [], [], []
    objs = root.findall("object")
    if not objs:
        raise AnnotationError(f"{xml}: no <object> (no ground-truth box)")
    for k, o in enumerate(objs, 1):
        where = f"{xml}: object {k}"
        name = (o.findtext("name") or "").strip()
        if not name:
            raise AnnotationError(f"{where}: no <name>")
        bb = o.find("bndbox")
        if bb is None:
            raise AnnotationError(f"{where} ({name}): no <bndbox>")
        box = []
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            text = bb.findtext(tag)
            if text is None:
                raise AnnotationError(f"{where} ({name}): no <{tag}>")
            box.append(parse_float(text, f"{where} ({name})", f"<{tag}>") - (1 if one_based else 0))
        boxes.append(check_box(box, f"{where} ({name})"))
        names.append(name)
        d = (o.findtext("difficult") or "0").strip()
        difficult.append(d in ("1", "true", "True"))
        sources.append(f"{where} ({name})")
    return dict(size=size, names=names, boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
                difficult=np.asarray(difficult, bool), sources=sources)
