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
from .ilsvrc import file_size

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
        super().__init__(ann.parent)
        self.annotations = ann
        data = json.loads(ann.read_text())
        base = data.get("root")
        dirs = []
        if base == "skimage.data":
            dirs.append(_skimage_dir())
        elif base:
            dirs.append(ann.parent / base)
        dirs += [ann.parent, _skimage_dir()]
        self._dirs = [d for d in dirs if d is not None]
        self._ann = {}
        for entry in data["images"]:
            image_id = str(entry.get("id") or Path(entry["file"]).stem)
            self._ann[image_id] = entry
        self.subset = subset or ""
        self._ids = list(self._ann)

    def _find(self, name: str) -> Optional[Path]:
        for d in self._dirs:
            p = d / name
            if p.exists():
                return p
            for ext in (".png", ".jpg"):
                if (d / (name + ext)).exists():
                    return d / (name + ext)
        return None

    def _load_record(self, image_id):
        e = self._ann[image_id]
        path = self._find(e["file"])
        ann_size = tuple(e["size"]) if e.get("size") else None
        size = (file_size(path) if path else None) or ann_size
        if size is None:
            raise DatasetError(f"sample image {e['file']!r} not found in {[str(d) for d in self._dirs]}")
        boxes = e.get("boxes", [])
        if ann_size and tuple(ann_size) != tuple(size):
            boxes = scale_boxes(boxes, ann_size, size)
        else:
            boxes = clip_boxes(boxes, size)
        box_labels = e.get("box_labels") or ([e["labels"][0]] * len(boxes) if e.get("labels") else [])
        return make_record(image_id, path or Path(e["file"]), size, boxes, box_labels,
                           labels=e.get("labels"), note=e.get("note", ""))


@register_dataset("sample")
def _sample(root=None, subset=None, **kw):
    return Sample(root, subset, **kw)
