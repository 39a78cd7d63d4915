"""The bundled sample: ``stl/resources/sample/annotations.json`` (packaged).

Format::

    {"root": "skimage.data" | "<folder, relative to the JSON>" (optional),
     "images": [{"id": "chelsea", "file": "chelsea.png", "size": [H, W],
                 "labels": [wnid, ...], "boxes": [[x0, y0, x1, y1], ...],
                 "box_labels": [wnid, ...]}, ...]}

Boxes are 0-based pixel-inclusive on an image of ``size``; if the file found
has another size they are scaled onto it. ``file`` is looked up in ``root``
(``skimage.data`` means scikit-image's data folder), then next to the JSON,
then as a scikit-image data name (``astronaut``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ..core.boxes import clip_boxes, scale_boxes
from .. import resources
from . import Dataset, DatasetError, make_record, register_dataset
from .annotations import AnnotationError, check_box, check_boxes_in_image, parse_float, parse_int
from .ilsvrc import file_size
from ..paths import special_file

#: the packaged annotations (``stl/resources/sample/annotations.json``)
DEFAULT_ROOT = resources.path(*resources.SAMPLE_ANNOTATIONS).parent


def _skimage_dir() -> Optional[Path]:
    try:
        import skimage

        return Path(skimage.data_dir)
    except Exception:  # pragma: no cover - skimage is a dependency
        return None


class Sample(Dataset):
    family = "sample"
    eval_mode = "box"

    def __init__(self, root=None, subset: Optional[str] = None, annotations=None):
        root = Path(root) if root else DEFAULT_ROOT
        ann = Path(annotations) if annotations else (root if root.suffix == ".json" else root / "annotations.json")
        if not ann.exists():
            raise DatasetError(f"{ann} not found (the bundled sample's annotation file)")
        if special_file(ann):  # opening a FIFO would block until something writes to it
            raise DatasetError(f"{ann} is {special_file(ann)}, not an annotation file")
        super().__init__(ann.parent)
        self.annotations = ann
        try:
            data = json.loads(ann.read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as e:
            raise DatasetError(f"{ann}: malformed JSON ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise DatasetError(f"{ann}: expected an object with an \"images\" list (see stl/data/sample.py)")
        base = data.get("root")
        dirs = []
        if base == "skimage.data":
            dirs.append(_skimage_dir())
        elif base:
            dirs.append(ann.parent / base)
        dirs += [ann.parent, _skimage_dir()]
        self._dirs = [d for d in dirs if d is not None]
        self._ann = {}
        for k, entry in enumerate(data["images"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not entry["file"]:
                raise DatasetError(f"{ann}: images[{k}] has no \"file\" name")
            image_id = str(entry.get("id") or Path(entry["file"]).stem)
            if image_id in self._ann:
                raise DatasetError(f"{ann}: images[{k}]: image id {image_id!r} appears twice")
            self._ann[image_id] = dict(entry, _where=f"{ann}: images[{k}] ({image_id})")
        self.subset = subset or ""
        self._ids = list(self._ann)

    def _find(self, name: str) -> Optional[Path]:
        for d in self._dirs:
            p = d / name
            if p.exists() or p.is_symlink():  # a broken link is found, and then reported as such
                return p
            for ext in (".png", ".jpg"):
                if (d / (name + ext)).exists():
                    return d / (name + ext)
        return None

    def _load_record(self, image_id):
        e = self._ann[image_id]
        where = e["_where"]
        path = self._find(e["file"])
        if path is not None and special_file(path):  # opening a FIFO would block until something writes
            raise DatasetError(f"{where}: {path} is {special_file(path)}, not an image file")
        try:
            ann_size = None
            if e.get("size"):
                if not isinstance(e["size"], list) or len(e["size"]) != 2:
                    raise AnnotationError(f"{where}: \"size\" must be [H, W], not {e['size']!r}")
                ann_size = tuple(parse_int(str(v), where, "size", 1) for v in e["size"])
            size = (file_size(path) if path else None) or ann_size
            if size is None and path is not None:
                from ..io import load_image

                load_image(path)  # unreadable header: raises ImageError naming the file and why
            if size is None:
                raise DatasetError(f"{where}: image {e['file']!r} not found in {[str(d) for d in self._dirs]}")
            raw = e.get("boxes", [])
            if not isinstance(raw, list) or any(not isinstance(b, list) or len(b) != 4 for b in raw):
                raise AnnotationError(f"{where}: \"boxes\" must be a list of [x0, y0, x1, y1]")
            boxes = [check_box([parse_float(v, where, "coordinate") for v in b], f"{where}: boxes[{j}]")
                     for j, b in enumerate(raw)]
            boxes = check_boxes_in_image(boxes, [f"{where}: boxes[{j}]" for j in range(len(boxes))],
                                         ann_size or size)
            labels = _label_list(e.get("labels"), where, "labels")
            box_labels = _label_list(e.get("box_labels"), where, "box_labels") or labels[:1] * len(boxes)
        except AnnotationError as err:
            raise DatasetError(str(err)) from None
        if ann_size and tuple(ann_size) != tuple(size):
            boxes = scale_boxes(boxes, ann_size, size)
        else:
            boxes = clip_boxes(boxes, size)
        return make_record(image_id, path or Path(e["file"]), size, boxes, box_labels,
                           labels=None if e.get("labels") is None else labels, note=e.get("note", ""))


def _label_list(value, where: str, key: str) -> list:
    """The ``"labels"`` / ``"box_labels"`` of an entry as a list of strings: absent or null is ``[]``,
    a single class (``"n02123045"``, or an index) is one label -- not a list of its characters.

    Raises
    ------
    AnnotationError
        For anything else (an object, a boolean, a list holding one), naming the entry and key.
    """
    if value is None:
        return []
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (str, int)) or v == ""
                                          for v in value):
        raise AnnotationError(f"{where}: \"{key}\" must be a class (\"n02123045\") or a list of classes, "
                              f"not {value!r}")
    return [str(v) for v in value]


@register_dataset("sample")
def _sample(root=None, subset=None, **kw):
    return Sample(root, subset, **kw)
