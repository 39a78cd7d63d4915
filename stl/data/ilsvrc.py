"""ILSVRC-2012 localisation, validation set, in two layouts.

**Official** (``ILSVRC2012_img_val.tar`` + ``ILSVRC2012_bbox_val_v3.tgz``): a
folder of ``ILSVRC2012_val_XXXXXXXX.JPEG`` images and a folder of per-image
XML files (``<size><width>/<height>``, ``<object><name>wnid</name><bndbox>``).
Both are searched under the root (``val/``, ``ILSVRC2012_img_val/``,
``ILSVRC2012_bbox_val_v3/val/``, ``bbox_val/``, ``Annotations/``, the root
itself) or given as ``images=`` / ``annotations=``.

**WSOL metadata** (clovaai/wsolevaluation, ``metadata/ILSVRC/test``):
``metadata/image_ids.txt``, ``class_labels.txt`` (``val/NAME,label``, label a
0-based index into the ImageNet class list in Caffe order),
``localization.txt`` (``val/NAME,x0,y0,x1,y1``, one line per box, ORIGINAL
image pixels) and ``image_sizes.txt`` (``val/NAME,W,H`` of the original).
Image paths are relative to the root. The files may be resized copies (the
650 test images in ``../shared`` are stretched to 227x227): boxes are mapped
onto the actual file size, read from the file's header.

Box convention: both layouts' coordinates are taken as 0-based
pixel-inclusive (the WSOL benchmark's IoU uses the +1 areas; the official XML
values never reach the width), and mapped to the file with
:func:`stl.core.boxes.scale_boxes` (the covered span [x0, x1 + 1) is scaled). On
the 650 shared images, scaling the coordinates directly (``x * W_file / W``)
changes no hit at IoU 0.5.

Subsets: ``all`` (1000 classes, the default) and ``200rnd`` (the paper's 200
random classes, :data:`stl.data.ilsvrc2012_200rnd.CLASSES_200RND`).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..core.boxes import clip_boxes, scale_boxes
from . import Dataset, DatasetError, make_record, register_dataset, resolve_root
from .annotations import (AnnotationError, check_box, check_boxes_in_image, image_ids_of, numbered_lines,
                          parse_float, parse_int, parse_xml_annotation)
from .ilsvrc2012_200rnd import CLASSES_200RND

log = logging.getLogger("stl.data")

SUBSETS = ("all", "200rnd")
PAPER_KEYS = {"all": "ILSVRC2012_1000_VAL", "200rnd": "ILSVRC2012_200rnd_VAL"}
_IMAGE_DIRS = ("val", "ILSVRC2012_img_val", "images", "JPEGImages", ".")
_XML_DIRS = ("ILSVRC2012_bbox_val_v3/val", "ILSVRC2012_bbox_val_v3", "bbox_val/val", "bbox_val", "Annotations",
             "annotations", "val", ".")
_WSOL_META = ("metadata", "metadata/ILSVRC/test", ".")


def file_size(path: Path) -> Optional[Tuple[int, int]]:
    """(H, W) from the image header, or None when the file cannot be opened (or is not a regular
    file: a FIFO would block the open)."""
    from PIL import Image

    from ..paths import special_file

    if special_file(path):
        return None
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None  # reading the file then says why


def imagenet_wnids() -> List[str]:
    from ..models.base import ClassList

    return ClassList.imagenet().wnids


class ILSVRCVal(Dataset):
    family = "ilsvrc2012_val"
    default_subset = "all"
    eval_mode = "image"

    def __init__(self, root=None, subset: Optional[str] = None, images=None, annotations=None, metadata=None,
                 layout: Optional[str] = None):
        root = resolve_root("ilsvrc", root)
        super().__init__(root)
        subset = (subset or "all").lower()
        if subset == "1000":
            subset = "all"
        if subset not in SUBSETS:
            raise DatasetError(f"ILSVRC subset must be one of {SUBSETS}, not {subset!r}")
        self.subset = subset
        self.paper_key = PAPER_KEYS[subset]
        self.layout = layout or self._detect_layout(metadata)
        #: image_id -> dict(path, labels, boxes (original pixels), ann_size (H, W))
        self._ann: Dict[str, dict] = {}
        if self.layout == "wsol":
            self._read_wsol(Path(metadata) if metadata else self._find_meta())
        elif self.layout == "official":
            self._read_official(images, annotations)
        else:
            raise DatasetError(f"unknown ILSVRC layout {self.layout!r} (wsol or official)")
        keep = set(CLASSES_200RND) if subset == "200rnd" else None
        # images whose annotation is unusable stay listed (they fail, with the reason), in either subset
        self._ids = [i for i in self._ann if keep is None or self._ann[i].get("error")
                     or any(lab in keep for lab in self._ann[i]["labels"])]

    # -- layout detection
    def _find_meta(self) -> Optional[Path]:
        for m in _WSOL_META:
            p = self.root / m
            if (p / "image_ids.txt").exists() and (p / "localization.txt").exists():
                return p
        return None

    def _detect_layout(self, metadata) -> str:
        if metadata or self._find_meta() is not None:
            return "wsol"
        return "official"

    # -- WSOL metadata
    def _read_wsol(self, meta: Optional[Path]):
        """The four WSOL metadata files. A line that concerns one image and cannot be used (a short or
        non-numeric line, a label that is not a class index, a size <= 0, a box with x1 < x0) fails only
        that image, with a message naming the file and line; a box line that names no listed image makes
        the dataset unusable (some image's ground truth would be incomplete)."""
        if meta is None:
            raise DatasetError(
                f"{self.root}: no WSOL metadata (metadata/image_ids.txt + localization.txt) found, and the run "
                f"or option asks for the WSOL layout: is {self.root} an ILSVRC root? (see data/README.md)")
        wnids = imagenet_wnids()
        errors: Dict[str, str] = {}

        def bad(name, msg):
            errors.setdefault(name, msg)

        ids_file = meta / "image_ids.txt"
        ids = list(dict.fromkeys(line for _, line in numbered_lines(ids_file)))
        if not ids:
            raise DatasetError(f"{ids_file}: lists no images")
        known = set(ids)

        def owner(parts, n_fields):
            """The listed image a split line belongs to (first field, else all but the last fields)."""
            if parts[0] in known:
                return parts[0]
            name = ",".join(parts[:-n_fields]) if len(parts) > n_fields else None
            return name if name in known else None

        labels: Dict[str, str] = {}
        f = meta / "class_labels.txt"
        for n, line in numbered_lines(f):
            parts = line.split(",")
            name = owner(parts, 1)
            if name is None:
                log.warning("%s:%d: %r names no image of %s; line ignored", f, n, line, ids_file.name)
                continue
            if len(parts) < 2 or (parts[0] == name and len(parts) != 2):
                bad(name, f"{f}:{n}: expected NAME,LABEL, got {line!r}")
                continue
            try:
                labels[name] = wnids[parse_int(parts[-1], f"{f}:{n}", "label", 0, len(wnids) - 1)]
            except AnnotationError as e:
                bad(name, str(e))
        sizes: Dict[str, Tuple[int, int]] = {}
        f = meta / "image_sizes.txt"
        for n, line in numbered_lines(f):
            parts = line.split(",")
            name = owner(parts, 2)
            if name is None:
                log.warning("%s:%d: %r names no image of %s; line ignored", f, n, line, ids_file.name)
                continue
            if len(parts) < 3 or (parts[0] == name and len(parts) != 3):
                bad(name, f"{f}:{n}: expected NAME,WIDTH,HEIGHT, got {line!r}")
                continue
            try:
                w = parse_int(parts[-2], f"{f}:{n}", "width", 1)
                h = parse_int(parts[-1], f"{f}:{n}", "height", 1)
                sizes[name] = (h, w)
            except AnnotationError as e:
                bad(name, str(e))
        boxes: Dict[str, list] = defaultdict(list)
        sources: Dict[str, list] = defaultdict(list)
        f = meta / "localization.txt"
        for n, line in numbered_lines(f):
            parts = line.split(",")
            name = owner(parts, 4)
            if name is None:
                raise DatasetError(f"{f}:{n}: {line!r} names no image of {ids_file.name} (expected "
                                   f"NAME,x0,y0,x1,y1); some image's ground truth would be incomplete")
            if len(parts) < 5 or (parts[0] == name and len(parts) != 5):
                bad(name, f"{f}:{n}: expected NAME,x0,y0,x1,y1, got {line!r}")
                continue
            try:
                box = [parse_float(v, f"{f}:{n}", c) for v, c in zip(parts[-4:], ("x0", "y0", "x1", "y1"))]
                boxes[name].append(check_box(box, f"{f}:{n}"))
                sources[name].append(f"{f}:{n}")
            except AnnotationError as e:
                bad(name, str(e))
        image_ids = image_ids_of(ids)  # the stem; listed files that share one keep their folder
        for name in ids:
            image_id = image_ids[name]
            err = errors.get(name)
            if err is None and name not in labels:
                err = f"{meta / 'class_labels.txt'}: no label for {name}"
            if err is None and name not in sizes:
                err = f"{meta / 'image_sizes.txt'}: no size for {name}"
            if err is None and not boxes.get(name):
                err = f"{meta / 'localization.txt'}: no box for {name}"
            self._ann[image_id] = dict(path=self.root / name, labels=[labels[name]] if name in labels else [],
                                       boxes=np.asarray(boxes.get(name, []), np.float64).reshape(-1, 4),
                                       sources=sources.get(name, []), ann_size=sizes.get(name), error=err)
        self.metadata_dir = meta

    # -- official XML
    def _read_official(self, images, annotations):
        xml_dir = Path(annotations) if annotations else _first_dir(self.root, _XML_DIRS, "*.xml")
        if xml_dir is None:
            raise DatasetError(
                f"{self.root}: neither WSOL metadata (metadata/image_ids.txt) nor ILSVRC bbox XML files "
                f"(ILSVRC2012_bbox_val_v3/val/*.xml) found; is it an ILSVRC root? (see data/README.md)")
        img_dir = Path(images) if images else _first_dir(self.root, _IMAGE_DIRS, "*.JPEG")
        if img_dir is None:
            raise DatasetError(f"{self.root}: no folder of ILSVRC2012_val_*.JPEG images found (pass images=)")
        for xml in sorted(xml_dir.glob("*.xml")):
            image_id = xml.stem
            try:  # one bad XML file fails only its image
                a = parse_xml_annotation(xml, one_based=False)
                err = None
            except AnnotationError as e:
                a, err = dict(size=None, names=[], boxes=np.zeros((0, 4)), sources=[]), str(e)
            self._ann[image_id] = dict(path=img_dir / f"{image_id}.JPEG", labels=list(dict.fromkeys(a["names"])),
                                       boxes=a["boxes"], box_labels=a["names"], sources=a["sources"],
                                       ann_size=a["size"], error=err)
        self.images_dir, self.annotations_dir = img_dir, xml_dir

    def _load_record(self, image_id):
        a = self._ann[image_id]
        if a.get("error"):
            raise DatasetError(a["error"])
        fsize = file_size(a["path"])
        ann_size = a["ann_size"]
        size = fsize or ann_size
        if size is None:
            raise DatasetError(f"{image_id}: image size unknown (no readable file, no size annotation)")
        try:
            boxes = check_boxes_in_image(a["boxes"], a.get("sources") or [image_id] * len(a["boxes"]),
                                         ann_size or size)
        except AnnotationError as e:
            raise DatasetError(str(e)) from None
        if ann_size is not None and tuple(ann_size) != tuple(size):
            boxes = scale_boxes(boxes, ann_size, size)
        else:
            boxes = clip_boxes(boxes, size)
        box_labels = a.get("box_labels") or [a["labels"][0]] * len(boxes)
        return make_record(image_id, a["path"], size, boxes, box_labels, labels=a["labels"],
                           original_size=tuple(ann_size) if ann_size else None)

    def original_annotation(self, image_id) -> dict:
        """The annotation as the files give it (for the WSOL benchmark, :mod:`stl.wsol`):
        ``name`` (the image path relative to the root, e.g. ``val/ILSVRC2012_val_00000001.JPEG``,
        wsolevaluation's image id), ``boxes`` in the pixels of the ORIGINAL image,
        ``size`` = (W, H) of the original image (None when unknown), ``labels`` (wnids)."""
        a = self._ann[image_id]
        try:
            name = Path(a["path"]).resolve().relative_to(self.root).as_posix()
        except ValueError:
            name = f"val/{Path(a['path']).name}"
        size = a["ann_size"]
        return {"name": name, "boxes": np.asarray(a["boxes"], np.float64).reshape(-1, 4),
                "size": (int(size[1]), int(size[0])) if size else None, "labels": list(a["labels"])}

    def meta(self):
        m = super().meta()
        m["layout"] = self.layout
        return m


def _first_dir(root: Path, candidates, pattern) -> Optional[Path]:
    for c in candidates:
        p = (root / c)
        if p.is_dir() and next(p.glob(pattern), None) is not None:
            return p
    return None


@register_dataset("ilsvrc2012_val")
def _ilsvrc(root=None, subset=None, **kw):
    return ILSVRCVal(root, subset, **kw)


@register_dataset("ilsvrc2012_val_200rnd", subset="200rnd")
def _ilsvrc200(root=None, subset=None, **kw):
    return ILSVRCVal(root, subset, **kw)
