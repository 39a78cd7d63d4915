"""Your own images as a dataset: a folder (searched recursively) or a text file listing image paths,
with image-level labels and NO boxes (``stl eval`` says there is no ground truth; ``stl export``
writes the windows for a detector).

    stl run --images DIR|list.txt [--labels labels.csv | --labels-from-folders] --method STL-CL ...
    get_dataset("folder", root="DIR", labels="labels.csv")

* ``DIR``: every file under it whose extension is an image's (``.jpg .jpeg .png .bmp .tif .tiff
  .webp .ppm .pgm``, any case), sorted by relative path; hidden files and folders are skipped.
  Image id = the path relative to ``DIR`` (``/``-separated).
* ``list.txt``: one image path per line (relative paths are relative to the list's folder; blank
  lines and lines starting with ``#`` skipped); the id is the path as written. A missing file or
  a path listed twice is an error naming the line.
* ``--labels FILE.csv``: lines ``path,label[,label...]`` (a first line ``path,label...`` is a
  header); ``path`` as the image id (relative to ``DIR`` / as in the list) or a path that
  resolves to the same file; labels are what the classifier's class list accepts (wnid, class
  index or class name, :meth:`stl.models.base.ClassList.index`; checked when a method needs
  them, :meth:`ImageFolder.check_labels`). A line for a file that is not among the images, or
  a path given twice, is an error naming the line. Images without a line have no labels.
* ``--labels-from-folders``: the ImageFolder layout (``DIR/<class>/<image>``): each image's
  label is the name of the folder holding it.

Records have the file's (H, W) from its header, no boxes, and the labels; an unreadable image
fails only itself (at reading, as for every dataset).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional

from ..paths import safe_name
from . import Dataset, DatasetError, make_record, register_dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def image_files(root) -> List[Path]:
    """The images under folder ``root`` (recursive, hidden files and folders skipped), sorted."""
    root = Path(root)
    return [root / rel for rel in _scan(root)]


def _scan(root: Path) -> List[str]:
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            out.append(rel.as_posix())
    return sorted(out)


class ImageFolder(Dataset):
    """Images of a folder or a list file, with image-level labels and no boxes (module docstring)."""

    family = "folder"
    eval_mode = "image"
    #: no boxes: nothing to evaluate (``stl eval`` refuses with a clear message)
    has_ground_truth = False

    def __init__(self, root, subset: Optional[str] = None, labels=None, labels_from_folders: bool = False):
        if root is None:
            raise DatasetError("the image folder dataset needs a folder or a list file (--images DIR|list.txt)")
        src = Path(root).expanduser()
        if not src.exists():
            raise DatasetError(f"--images {src}: no such folder or file")
        if labels is not None and labels_from_folders:
            raise DatasetError("give --labels FILE.csv or --labels-from-folders, not both")
        super().__init__(src)
        src = self.root
        self.source = src
        self._paths: Dict[str, Path] = {}
        self._where: Dict[str, str] = {}
        if src.is_dir():
            self.base = src
            for rel in _scan(src):
                self._paths[rel] = src / rel
                self._where[rel] = f"{src}/{rel}"
        else:
            self.base = src.parent
            self._read_list(src)
        if not self._paths:
            raise DatasetError(f"--images {src}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
        self._ids = list(self._paths)
        self._labels: Dict[str, List[str]] = {i: [] for i in self._ids}
        self._label_where: Dict[str, str] = {}
        self.labels_source = None
        if labels_from_folders:
            self._labels_from_folders()
        elif labels is not None:
            self._read_labels(Path(labels).expanduser())
        self.subset = subset or safe_name(src.stem if src.is_file() else src.name)

    # -- reading the lists ---------------------------------------------------------------
    def _read_list(self, path: Path):
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()  # a BOM is no part of line 1
        except UnicodeDecodeError:
            raise DatasetError(f"--images {path}: not a text file (give a folder, or a list with one image path "
                               f"per line)") from None
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line).expanduser()
            p = p if p.is_absolute() else self.base / p
            if not p.is_file():
                raise DatasetError(f"{path}:{n}: image {line!r} not found ({p})")
            image_id = Path(line).as_posix()
            if image_id in self._paths:
                raise DatasetError(f"{path}:{n}: {line!r} is listed twice (first at {self._where[image_id]})")
            self._paths[image_id] = p
            self._where[image_id] = f"{path}:{n}"

    def _labels_from_folders(self):
        self.labels_source = "folders"
        for i, p in self._paths.items():
            if p.parent.resolve() == self.base.resolve():
                raise DatasetError(f"--labels-from-folders: {self._where[i]} is not in a class folder "
                                   f"(expected DIR/<class>/<image>)")
            self._labels[i] = [p.parent.name]
            self._label_where[i] = f"the folder name of {self._where[i]}"

    def _read_labels(self, path: Path):
        if not path.is_file():
            raise DatasetError(f"--labels {path}: no such file")
        self.labels_source = str(path)
        by_file = {p.resolve(): i for i, p in self._paths.items()}
        seen: Dict[str, int] = {}
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise DatasetError(f"--labels {path}: not a UTF-8 text file") from None
        for n, row in enumerate(csv.reader(text.splitlines()), 1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if n == 1 and cells[0].lower() in ("path", "image", "file", "filename", "image_id"):
                continue  # header
            if len(cells) < 2 or not all(cells[1:]):
                raise DatasetError(f"{path}:{n}: expected 'path,label[,label...]', got {','.join(row)!r}")
            rel = cells[0]
            image_id = rel if rel in self._paths else None
            if image_id is None:
                p = Path(rel).expanduser()
                for cand in ([p] if p.is_absolute() else [self.base / p, path.parent / p]):
                    if cand.exists():
                        image_id = by_file.get(cand.resolve())
                        if image_id is not None:
                            break
            if image_id is None:
                raise DatasetError(f"{path}:{n}: no image {rel!r} among the {len(self._paths)} images of "
                                   f"{self.source}")
            if image_id in seen:
                raise DatasetError(f"{path}:{n}: {rel!r} is labelled twice (also on line {seen[image_id]}; put "
                                   f"several labels on one line: path,label1,label2)")
            seen[image_id] = n
            self._labels[image_id] = list(dict.fromkeys(cells[1:]))
            self._label_where[image_id] = f"{path}:{n}"

    # -- labels --------------------------------------------------------------------------
    @property
    def has_labels(self) -> bool:
        return any(self._labels.values())

    def unlabelled(self) -> List[str]:
        return [i for i in self._ids if not self._labels.get(i)]

    def check_labels(self, classes) -> None:
        """Every label is one of ``classes`` (a :class:`stl.models.base.ClassList`), or a
        :class:`DatasetError` naming the CSV line (or folder) and the label."""
        for i in self._ids:
            for lab in self._labels.get(i, ()):
                try:
                    classes.index(lab)
                except KeyError as e:
                    msg = str(e).strip("'\"")
                    raise DatasetError(f"{self._label_where.get(i, i)}: label {lab!r} is not a class of the "
                                       f"classifier ({msg})") from None

    # -- records ---------------------------------------------------------------------------
    def _load_record(self, image_id):
        from ..io import load_image
        from .ilsvrc import file_size

        path = self._paths[image_id]
        size = file_size(path)
        if size is None:
            load_image(path)  # raises ImageError naming the file and why
            raise DatasetError(f"{path}: cannot read the image size")
        return make_record(image_id, path, size, [], [], labels=self._labels.get(image_id, []),
                           source=self._where[image_id])

    def describe(self) -> str:
        lab = {None: "no labels", "folders": "labels from folder names"}.get(self.labels_source,
                                                                           f"labels {self.labels_source}")
        return f"{self.key} ({len(self)} images of {self.source}, {lab}, no ground-truth boxes)"

    def meta(self) -> dict:
        m = super().meta()
        m["labels"] = self.labels_source or ""
        return m


@register_dataset("folder", ground_truth=False)
def _folder(root=None, subset=None, labels=None, labels_from_folders=False, **kw):
    if kw:
        raise DatasetError(f"folder dataset: unknown option(s) {', '.join(sorted(kw))}")
    return ImageFolder(root, subset, labels=labels, labels_from_folders=labels_from_folders)
