"""Training and test images of the detector experiments.

* :class:`ILSVRCTrain` -- ILSVRC-2012 TRAINING images with box annotations
  (the paper trains its detectors on them), registered as dataset
  ``ilsvrc2012_train`` (an adapter here until :mod:`stl.data` has one).
  Layouts: the official ``ILSVRC2012_bbox_train_v2.tar.gz`` (per-class folders
  of XML files ``<wnid>/<wnid>_<n>.xml``) with the training images in per-class
  folders (``train/<wnid>/<wnid>_<n>.JPEG``, the untarred
  ``ILSVRC2012_img_train``), or the Kaggle "ILSVRC/CLS-LOC" layout
  (``ILSVRC/Annotations/CLS-LOC/train/<wnid>/*.xml`` and
  ``ILSVRC/Data/CLS-LOC/train/<wnid>/*.JPEG``). Only images with an
  annotation file are listed; XML files are parsed when a record is used.
* :class:`SubsetView` -- some images of a dataset, with the dataset's identity
  (its key names the stored proposal runs, so runs are shared).
* :func:`build_split` -- per class: positive training images, negative training
  images (``negatives_per_other_class`` of each other class's positives) and
  the test images (:class:`DetectionSplit`).
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..core.boxes import clip_boxes, scale_boxes
from ..data import (Dataset, DatasetError, available_datasets, get_dataset, make_record, register_dataset,
                    resolve_root)
from .config import DataConfig
from .sampling import stable_seed

log = logging.getLogger(__name__)

_TRAIN_XML_DIRS = ("ILSVRC2012_bbox_train_v2", "bbox_train", "ILSVRC/Annotations/CLS-LOC/train",
                   "Annotations/CLS-LOC/train", "Annotations/train", "annotations/train", "Annotations")
_TRAIN_IMG_DIRS = ("train", "ILSVRC2012_img_train", "ILSVRC/Data/CLS-LOC/train", "Data/CLS-LOC/train", "images")


class ILSVRCTrain(Dataset):
    family = "ilsvrc2012_train"
    default_subset = "all"
    eval_mode = "image"

    def __init__(self, root=None, subset: Optional[str] = None, classes: Optional[Sequence[str]] = None,
                 images=None, annotations=None):
        root = resolve_root("ilsvrc", root)
        super().__init__(root)
        self.subset = (subset or "all").lower()
        if self.subset == "200rnd" and classes is None:
            from ..data.ilsvrc2012_200rnd import CLASSES_200RND

            classes = CLASSES_200RND
        self.xml_dir = Path(annotations) if annotations else _find_dir(self.root, _TRAIN_XML_DIRS)
        self.img_dir = Path(images) if images else _find_dir(self.root, _TRAIN_IMG_DIRS)
        if self.xml_dir is None or self.img_dir is None:
            raise DatasetError(
                f"{self.root}: no ILSVRC-2012 training layout found (need per-class folders of box XML files, "
                f"e.g. ILSVRC2012_bbox_train_v2/<wnid>/*.xml, and of images, e.g. train/<wnid>/*.JPEG)")
        wanted = list(classes) if classes is not None else sorted(p.name for p in self.xml_dir.iterdir()
                                                                  if p.is_dir())
        self._by_class: Dict[str, List[str]] = {}
        self._xml: Dict[str, Path] = {}
        for wnid in wanted:
            d = self.xml_dir / wnid
            ids = sorted(p.stem for p in d.glob("*.xml")) if d.is_dir() else []
            self._by_class[wnid] = ids
            for i in ids:
                self._xml[i] = d / f"{i}.xml"
        self._ids = [i for w in wanted for i in self._by_class[w]]

    def image_ids_of_class(self, wnid: str) -> List[str]:
        return list(self._by_class.get(wnid, []))

    def _load_record(self, image_id):
        xml = self._xml[image_id]
        tree = ET.parse(xml).getroot()
        wnid = image_id.split("_")[0]
        path = None
        for ext in (".JPEG", ".jpeg", ".jpg"):
            p = self.img_dir / wnid / f"{image_id}{ext}"
            if p.exists():
                path = p
                break
        path = path or (self.img_dir / wnid / f"{image_id}.JPEG")
        size = tree.find("size")
        ann_size = (int(size.findtext("height")), int(size.findtext("width"))) if size is not None else None
        from ..data.ilsvrc import file_size

        fsize = file_size(path) if path.exists() else None
        use = fsize or ann_size
        if use is None:
            raise DatasetError(f"{image_id}: image size unknown")
        objs = tree.findall("object")
        names = [o.findtext("name").strip() for o in objs]
        bb = np.asarray([[float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
                         for o in objs], np.float64).reshape(-1, 4)
        bb = scale_boxes(bb, ann_size, use) if ann_size and tuple(ann_size) != tuple(use) else clip_boxes(bb, use)
        labels = list(dict.fromkeys(names)) or [wnid]
        return make_record(image_id, path, use, bb, names, labels=labels)


def _find_dir(root: Path, candidates) -> Optional[Path]:
    for c in candidates:
        p = root / c
        if p.is_dir() and any(q.is_dir() for q in p.iterdir()):
            return p
    return None


if "ilsvrc2012_train" not in available_datasets():
    @register_dataset("ilsvrc2012_train")
    def _ilsvrc_train(root=None, subset=None, **kw):
        return ILSVRCTrain(root, subset, **kw)


class SubsetView(Dataset):
    """Some images of ``parent`` (records shared), keeping the parent's key and meta."""

    def __init__(self, parent: Dataset, image_ids: Sequence[str]):
        super().__init__(None)
        self.parent = parent
        self.root = parent.root
        self.family, self.subset, self.default_subset = parent.family, parent.subset, parent.default_subset
        self.paper_key, self.eval_mode = parent.paper_key, parent.eval_mode
        self._ids = list(dict.fromkeys(image_ids))

    def _load_record(self, image_id):
        return self.parent.record(image_id)

    def meta(self):
        return self.parent.meta()


def class_images(ds: Dataset, classes: Sequence[str]) -> Dict[str, List[str]]:
    """Image ids of each class (its image-level labels), in dataset order."""
    out: Dict[str, List[str]] = {c: [] for c in classes}
    if hasattr(ds, "image_ids_of_class"):
        for c in classes:
            out[c] = ds.image_ids_of_class(c)
        return out
    want = set(classes)
    for rec in ds:
        for lab in rec.labels:
            if lab in want:
                out[lab].append(rec.image_id)
    return out


def seeded_order(ids: Sequence[str], seed: int, wnid: str) -> List[str]:
    """A reproducible shuffle of ``sorted(ids)`` (independent of the listing order)."""
    ids = sorted(ids)
    rng = np.random.default_rng(stable_seed(seed, wnid))
    return [ids[i] for i in rng.permutation(len(ids))]


@dataclass
class DetectionSplit:
    classes: List[str]
    train: Dataset
    test: Dataset
    #: class -> positive training image ids
    positives: Dict[str, List[str]]
    #: class -> negative training image ids
    negatives: Dict[str, List[str]]
    #: test image ids (every class's detector runs on all of them)
    test_ids: List[str]
    #: classes left out and why
    skipped: Dict[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def train_ids(self) -> List[str]:
        seen = {}
        for c in self.classes:
            for i in self.positives[c] + self.negatives[c]:
                seen.setdefault(i, None)
        return list(seen)

    def summary(self) -> dict:
        return {"classes": len(self.classes), "train_images": len(self.train_ids), "test_images": len(self.test_ids),
                "positives_per_class": {c: len(v) for c, v in self.positives.items()},
                "negatives_per_class": {c: len(v) for c, v in self.negatives.items()},
                "skipped_classes": dict(self.skipped), "description": self.description}


def default_classes() -> List[str]:
    from ..data.ilsvrc2012_200rnd import CLASSES_200RND

    return list(CLASSES_200RND)


def build_split(cfg: DataConfig, test_root=None, train_root=None, train_dataset: Optional[Dataset] = None,
                test_dataset: Optional[Dataset] = None, limit_per_class: Optional[int] = None) -> DetectionSplit:
    """Choose the images of every class (see :class:`stl.detection.config.DataConfig`).

    ``limit_per_class`` caps the images per class (training positives first).
    """
    classes = list(cfg.classes) if cfg.classes else default_classes()
    test_ds = test_dataset or get_dataset(cfg.test_dataset, root=test_root)
    n_train, n_test = cfg.train_positives_per_class, cfg.test_images_per_class
    if limit_per_class is not None:
        n_train = min(n_train, max(limit_per_class - 1, 1)) if cfg.split == "within" else min(n_train,
                                                                                               limit_per_class)
        n_test = min(n_test, max(limit_per_class - n_train, 1)) if cfg.split == "within" else min(n_test,
                                                                                                 limit_per_class)
    skipped: Dict[str, str] = {}
    positives: Dict[str, List[str]] = {}
    tests: Dict[str, List[str]] = {}
    test_by_class = class_images(test_ds, classes)
    if cfg.split == "within":
        train_ds = test_ds
        for c in classes:
            order = seeded_order(test_by_class[c], cfg.seed, c)
            positives[c], tests[c] = order[:n_train], order[n_train:n_train + n_test]
    else:
        train_ds = train_dataset or get_dataset(cfg.train_dataset, root=train_root, classes=classes)
        train_by_class = class_images(train_ds, classes)
        for c in classes:
            positives[c] = seeded_order(train_by_class[c], cfg.seed, c)[:n_train]
            tests[c] = seeded_order(test_by_class[c], cfg.seed, c)[:n_test]
    kept = []
    for c in classes:
        if len(positives[c]) < max(cfg.min_train_positives, 1):
            skipped[c] = f"{len(positives[c])} training image(s) (< {max(cfg.min_train_positives, 1)})"
        elif len(tests[c]) < max(cfg.min_test_images, 1):
            skipped[c] = f"{len(tests[c])} test image(s) (< {max(cfg.min_test_images, 1)})"
        else:
            kept.append(c)
        if cfg.num_classes is not None and len(kept) >= cfg.num_classes:
            break
    if not kept:
        raise DatasetError(f"no class has enough images (train >= {cfg.min_train_positives}, "
                           f"test >= {cfg.min_test_images}); skipped: {skipped}")
    if skipped:
        log.warning("%d class(es) left out for lack of images: %s", len(skipped),
                    ", ".join(f"{c} ({why})" for c, why in list(skipped.items())[:10]))
    negatives = {}
    for c in kept:
        neg = []
        for o in kept:
            if o == c:
                continue
            for i in positives[o][:cfg.negatives_per_other_class]:
                if c not in train_ds.record(i).labels:
                    neg.append(i)
        negatives[c] = list(dict.fromkeys(neg))
    test_ids = list(dict.fromkeys(i for c in kept for i in tests[c]))
    positives = {c: positives[c] for c in kept}
    train_view = SubsetView(train_ds, [i for c in kept for i in positives[c] + negatives[c]])
    test_view = SubsetView(test_ds, test_ids)
    desc = (f"{len(kept)} classes; training: {cfg.split} split of {train_ds.key}, "
            f"<= {n_train} positive images/class, {cfg.negatives_per_other_class} negatives from each other class; "
            f"test: {len(test_ids)} images of {test_ds.key}")
    return DetectionSplit(kept, train_view, test_view, positives, negatives, test_ids, skipped, desc)
