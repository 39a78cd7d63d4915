"""PASCAL VOC 2007 from a VOCdevkit root.

``VOC2007/Annotations/*.xml`` (1-based inclusive pixel boxes: 1 is subtracted
to get the 0-based convention of :mod:`stl.core.boxes`), ``VOC2007/JPEGImages``,
``VOC2007/ImageSets/Main/{test,trainval}.txt``. ``difficult`` boxes are kept
and flagged (the evaluation ignores them, as VOC does). Class ids are the VOC
class names. The root may be the VOCdevkit folder or its ``VOC2007`` folder.
"""
from __future__ import annotations

from typing import Optional

from . import Dataset, DatasetError, make_record, register_dataset, resolve_root
from .annotations import AnnotationError, check_boxes_in_image, numbered_lines, parse_xml_annotation

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
IMAGE_SETS = ("test", "trainval", "train", "val")
PAPER_KEYS = {"test": "PASCAL2007_TEST", "trainval": "PASCAL2007_TRAINVAL"}


class VOC2007(Dataset):
    family = "voc2007"
    eval_mode = "box"

    def __init__(self, root=None, subset: Optional[str] = None, year: str = "2007"):
        root = resolve_root("voc", root)
        super().__init__(root)
        subset = (subset or "test").lower()
        if subset not in IMAGE_SETS:
            raise DatasetError(f"VOC image set must be one of {IMAGE_SETS}, not {subset!r}")
        self.subset = subset
        self.family = f"voc{year}"
        self.paper_key = PAPER_KEYS.get(subset) if year == "2007" else None
        voc = root / f"VOC{year}"
        if not voc.is_dir() and (root / "Annotations").is_dir():
            voc = root
        self.voc_dir = voc
        listing = voc / "ImageSets" / "Main" / f"{subset}.txt"
        if not listing.exists():
            raise DatasetError(f"{listing} not found: is {root} a VOCdevkit root with VOC{year} "
                               f"({subset} set downloaded)? `make data` fetches it")
        self._ids = list(dict.fromkeys(line.split()[0] for _, line in numbered_lines(listing)))
        if not self._ids:
            raise DatasetError(f"{listing}: lists no images")

    @property
    def key(self) -> str:
        return f"{self.family}_{self.subset}"

    def _load_record(self, image_id):
        """One image's XML; anything unusable in it (malformed XML, no ``<size>``, a width 0, no
        ``<bndbox>``, a coordinate that is not a number, x1 < x0, a box outside the image) fails this
        image with a message naming the XML file (and object); a box reaching past the border is clipped
        with a warning."""
        xml = self.voc_dir / "Annotations" / f"{image_id}.xml"
        if not xml.exists():
            raise DatasetError(f"{xml} not found")
        try:
            a = parse_xml_annotation(xml, one_based=True)
            boxes = check_boxes_in_image(a["boxes"], a["sources"], a["size"])
        except AnnotationError as e:
            raise DatasetError(str(e)) from None
        path = self.voc_dir / "JPEGImages" / f"{image_id}.jpg"
        return make_record(image_id, path, a["size"], boxes, a["names"], a["difficult"], annotation=str(xml))


@register_dataset("voc2007_test", subset="test")
def _voc_test(root=None, subset=None, **kw):
    return VOC2007(root, subset, **kw)


@register_dataset("voc2007_trainval", subset="trainval")
def _voc_trainval(root=None, subset=None, **kw):
    return VOC2007(root, subset, **kw)
