"""Datasets with ground-truth boxes: one abstraction, one factory.

``get_dataset(name, root=None, subset=None, **options)`` returns a
:class:`Dataset` (py-faster-rcnn's ``imdb`` idea); dataset families register
under names (detectron2's ``DatasetCatalog`` idea)::

    ilsvrc2012_val          ILSVRC-2012 localisation, validation set, 1000 classes
    ilsvrc2012_val_200rnd   ... only the paper's 200 random classes
    voc2007_test            PASCAL VOC 2007 test
    voc2007_trainval        PASCAL VOC 2007 trainval
    sample                  the bundled sample (stl/resources/sample/annotations.json)
    folder                  your own images: a folder or a list file, image-level labels from a CSV
                            or the folder names, no boxes (stl/data/folder.py; ``stl run --images``)

A dataset is a sequence of :class:`Record` s: image id, image path, the image
FILE's size (H, W), ground-truth boxes in the file's pixels (0-based,
pixel-inclusive float ``[x0, y0, x1, y1]``, see :mod:`stl.core.boxes`), their class
ids (ImageNet wnids; VOC class names for VOC), ``difficult`` flags and the
image-level labels (the set of classes present, what STL-CL is given).

Images are read in their STORED orientation (EXIF orientation tags are not
applied: the annotations are in the stored pixels; `stl localize` applies them).
An annotation problem (a bad line, a malformed XML file, a box with x1 < x0 or
outside the image) fails only its image, with a message naming the file and
line (:mod:`stl.data.annotations`); a box reaching past the image is clipped
with a warning.

Roots: the ``root`` argument (CLI ``--root``), else the environment
(``STL_ILSVRC``, ``STL_VOC``), else the links ``data/ilsvrc`` and
``data/VOCdevkit`` in the repository (see ``data/README.md``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UserError
from ..registry import Registry
from ..paths import dataset_links, shared_dir, special_file  # noqa: F401  (shared_dir: part of this module's API)


class DatasetError(UserError, RuntimeError):
    """A dataset root is missing or does not look like the expected layout."""


@dataclass
class Record:
    """One annotated image."""

    image_id: str
    #: image file, or None for an in-memory source (see ``source``)
    path: Optional[Path]
    #: (height, width) of the image FILE (boxes are in these pixels)
    size: Tuple[int, int]
    #: (K, 4) float64, 0-based pixel-inclusive [x0, y0, x1, y1]
    boxes: np.ndarray
    #: class id of each box (wnid, or VOC class name)
    box_labels: List[str]
    #: (K,) bool; VOC's ``difficult`` flag (never set for ILSVRC)
    difficult: np.ndarray
    #: image-level labels: the classes present, in first-seen order
    labels: List[str]
    #: free-form provenance (e.g. original size before the file was resized)
    extra: Dict = field(default_factory=dict)

    def read(self) -> np.ndarray:
        """The image as RGB uint8, in the file's stored orientation (EXIF orientation tags are NOT
        applied: the annotations are in the stored pixels); raises :class:`stl.io.ImageError`."""
        return self.load().array

    def load(self, max_side: Optional[int] = None):
        """:func:`stl.io.load_image` of the file (stored orientation; reduced if ``max_side``), checked
        against :attr:`size`: a file whose size differs from the annotation's raises
        :class:`DatasetError` (its boxes would be in other pixels)."""
        from ..io import ImageError, load_image

        if self.path is None:
            raise ImageError(f"{self.image_id}: record has no image path")
        what = special_file(self.path)
        if what:  # opening a FIFO would block until something writes to it
            raise ImageError(f"{self.path}: is {what}, not an image file")
        img = load_image(self.path, max_side=max_side)
        if tuple(img.file_size) != tuple(self.size):
            raise DatasetError(f"{self.path}: the file is {img.file_size[1]}x{img.file_size[0]} but its annotation "
                               f"says {self.size[1]}x{self.size[0]} ({self.extra.get('annotation', 'metadata')}); "
                               f"its boxes would be in other pixels")
        return img

    def boxes_of(self, label, include_difficult: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """(boxes, difficult) of one class."""
        sel = np.array([b == label for b in self.box_labels], bool)
        if not include_difficult:
            sel &= ~self.difficult
        return self.boxes[sel], self.difficult[sel]


def make_record(image_id, path, size, boxes, box_labels, difficult=None, labels=None, **extra) -> Record:
    """A :class:`Record` with typed fields: boxes (K, 4) float64, one label and one difficult flag
    per box (default False), image labels (default: the box labels, first-seen order)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    box_labels = [str(b) for b in box_labels]
    if len(box_labels) != len(boxes):
        raise ValueError(f"{image_id}: {len(boxes)} boxes but {len(box_labels)} box labels")
    difficult = np.zeros(len(boxes), bool) if difficult is None else np.asarray(difficult, bool).reshape(-1)
    if labels is None:
        labels = list(dict.fromkeys(box_labels))
    return Record(str(image_id), Path(path) if path is not None else None, (int(size[0]), int(size[1])),
                  boxes, box_labels, difficult, [str(x) for x in labels], dict(extra))


class Dataset:
    """A list of annotated images; subclasses fill ``self._ids`` and implement
    :meth:`_load_record`. Records are built lazily and cached."""

    #: registry family name, e.g. ``ilsvrc2012_val``
    family: str = "dataset"
    #: subset / image set name ("all", "200rnd", "test", ...)
    subset: str = ""
    #: the subset that needs no suffix in :attr:`key`
    default_subset: str = ""
    #: key of the paper's curves for this dataset (paper_reference.json), or None
    paper_key: Optional[str] = None
    #: per-class evaluation: "image" -- the class of an image is its label and
    #: all its boxes count for it (ILSVRC); "box" -- each class present is
    #: matched against its own boxes (VOC)
    eval_mode: str = "box"
    #: False for datasets without boxes (image folders): ``stl eval`` has nothing to score
    has_ground_truth: bool = True

    def __init__(self, root: Optional[Path]):
        self.root = Path(root).resolve() if root is not None else None
        self._ids: List[str] = []
        self._cache: Dict[str, Record] = {}

    # -- sequence protocol
    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[Record]:
        for i in self._ids:
            yield self.record(i)

    def __getitem__(self, index) -> Record:
        if isinstance(index, slice):
            return [self.record(i) for i in self._ids[index]]
        return self.record(self._ids[index])

    @property
    def image_ids(self) -> List[str]:
        """The dataset's image ids, in its order."""
        return list(self._ids)

    def record(self, image_id: str) -> Record:
        """The :class:`Record` of ``image_id`` (built once, then cached)."""
        rec = self._cache.get(image_id)
        if rec is None:
            if image_id not in self._index:
                raise KeyError(f"{self.key}: no image {image_id!r}")
            rec = self._cache[image_id] = self._load_record(image_id)
        return rec

    def __contains__(self, image_id) -> bool:
        return image_id in self._index

    @property
    def _index(self):
        idx = getattr(self, "_idset", None)
        if idx is None or len(idx) != len(self._ids):
            idx = self._idset = set(self._ids)
        return idx

    def _load_record(self, image_id: str) -> Record:
        raise NotImplementedError

    # -- selection
    def take(self, limit: Optional[int]) -> "Dataset":
        """The first ``limit`` images (in place; returns self)."""
        if limit is not None:
            if limit < 0:
                from ..errors import OptionError

                raise OptionError(f"limit must be >= 0, not {limit}")
            self._ids = self._ids[:limit]
        return self

    def select(self, image_ids: Sequence[str]) -> "Dataset":
        """Keep only ``image_ids`` (in place; returns self), in the dataset's order."""
        want = set(image_ids)
        unknown = want - self._index
        if unknown:
            raise DatasetError(f"{self.key}: unknown image id(s) {', '.join(sorted(unknown)[:5])}"
                               f"{' ...' if len(unknown) > 5 else ''} (root {self.root}; e.g. "
                               f"{', '.join(self._ids[:3]) or 'no images'})")
        self._ids = [i for i in self._ids if i in want]
        return self

    # -- description
    @property
    def key(self) -> str:
        """Name for result folders: family plus subset when not the default."""
        if self.subset and self.subset != self.default_subset:
            return f"{self.family}_{self.subset}"
        return self.family

    @property
    def classes(self) -> List[str]:
        """Every image label, in first-seen order."""
        seen = {}
        for rec in self:
            for lab in rec.labels:
                seen.setdefault(lab, None)
        return list(seen)

    def describe(self) -> str:
        """One line: key, number of images, root."""
        return f"{self.key} ({len(self)} images, root {self.root})"

    def meta(self) -> dict:
        """What a stored run needs to rebuild this dataset."""
        return {"dataset": self.family, "subset": self.subset, "root": str(self.root) if self.root else "",
                "dataset_key": self.key}


# ----------------------------------------------------------------------------- registry
#: dataset name -> factory(root, subset, **options) -> Dataset (info: the subset the name implies)
DATASETS: Registry = Registry("dataset", builtin=tuple(f"{__name__}.{m}"
                                                       for m in ("ilsvrc", "sample", "voc", "folder")))


def register_dataset(name: str, subset: Optional[str] = None, ground_truth: bool = True):
    """Decorator: ``@register_dataset("voc2007_test", subset="test") def build(root, subset, **kw)``;
    ``ground_truth=False`` for a family without boxes (``stl eval`` refuses its runs)."""
    return DATASETS.register(name, subset=subset, ground_truth=ground_truth)


def has_ground_truth(name: str) -> bool:
    """Whether the registered dataset family ``name`` has ground-truth boxes."""
    return bool(DATASETS.info(name).get("ground_truth", True))


def available_datasets() -> List[str]:
    """The registered datasets' canonical names, sorted."""
    return DATASETS.names()


def get_dataset(name: str, root=None, subset: Optional[str] = None, limit: Optional[int] = None,
                **options) -> Dataset:
    """Build a registered dataset.

    ``subset`` overrides the one implied by ``name`` (``ilsvrc2012_val`` with
    ``subset="200rnd"`` is ``ilsvrc2012_val_200rnd``); ``limit`` keeps the
    first images; other options go to the family's constructor.
    """
    factory, implied = DATASETS.get(name), DATASETS.info(name)["subset"]
    ds = factory(root=root, subset=subset if subset is not None else implied, **options)
    return ds.take(limit)


# ----------------------------------------------------------------------------- roots
#: kind -> (environment variable, links under data/ tried in order)
ROOT_SOURCES = {
    "ilsvrc": ("STL_ILSVRC", ("data/ilsvrc",)),
    "voc": ("STL_VOC", ("data/VOCdevkit", "data/voc")),
}


def resolve_root(kind: str, root=None) -> Path:
    """The root of a dataset kind: ``root``, else $STL_ILSVRC / $STL_VOC, else data/ links."""
    env, links = ROOT_SOURCES[kind]
    if root:
        p = Path(root).expanduser()
        if not p.exists():
            raise DatasetError(f"{kind} root {p} does not exist")
        return p.resolve()
    if os.environ.get(env):
        p = Path(os.environ[env]).expanduser()
        if not p.exists():
            raise DatasetError(f"${env}={p} does not exist")
        return p.resolve()
    for p in dataset_links(links):
        if p.exists():
            return p.resolve()
    raise DatasetError(
        f"no {kind} dataset root: pass --root, set ${env}, or link it as {links[0]} in the repository "
        f"(see data/README.md; `make data` downloads PASCAL VOC 2007)")


#: kind -> (the real sample in ../shared it falls back to, what that sample is)
SHARED_SAMPLES = {
    "ilsvrc": ("data/ilsvrc2012-val-227", "shared sample of ILSVRC-2012 val ({path}: real val images stretched "
                                          "to 227x227, WSOL-benchmark boxes) -- NOT the full validation set"),
    "voc": ("data/voc2007-test-sample", "shared sample of PASCAL VOC 2007 test ({path}) -- NOT the full test set"),
}
#: kind -> what a configured root is
FULL_DATA = {"ilsvrc": "ILSVRC-2012 val at {path}", "voc": "PASCAL VOC 2007 test at {path}"}


@dataclass(frozen=True)
class DataRoot:
    """Which data a command runs on: ``path``, ``description`` (for captions and logs) and
    ``full`` (True: a configured full dataset; False: the ../shared sample)."""

    kind: str
    path: Path
    description: str
    full: bool


def root_configured(kind: str, root=None) -> bool:
    """Is a full dataset of ``kind`` given: ``root``, $STL_ILSVRC / $STL_VOC, or a data/ link?"""
    env, links = ROOT_SOURCES[kind]
    return bool(root) or bool(os.environ.get(env)) or any(p.exists() for p in dataset_links(links))


def choose_root(kind: str, root=None) -> Optional[DataRoot]:
    """The one "which data" rule of the commands: the configured full dataset
    (:func:`resolve_root`, an error if it is given but missing), else the real sample in
    ../shared (:data:`SHARED_SAMPLES`), else None."""
    if root_configured(kind, root):
        path = resolve_root(kind, root)
        return DataRoot(kind, path, FULL_DATA[kind].format(path=path), True)
    rel, desc = SHARED_SAMPLES[kind]
    path = shared_dir() / rel
    return DataRoot(kind, path, desc.format(path=path), False) if path.is_dir() else None

