"""Stored runs (:mod:`stl.runner` HDF5 files) in the files detectors train from.

``write_export(run, fmt, out, top=None, per_image=1)`` (the library side of ``stl export``).
A run stores, per image, windows ranked best first as 0-based pixel-INCLUSIVE ``[x0, y0, x1, y1]``
in the ORIGINAL image's pixels (:mod:`stl.core.boxes`) with their scores (STL: the drop, Eq. 5).
Each format writes them in the convention its consumer reads (:data:`CONVENTIONS`, quoted by
``stl export --help``); ``top`` keeps the best N windows per image.

Image ids and classes: every format numbers the images 1..N in the run's order (the COCO
``image_id``, also detectron2's ``ids``) so the files written from one run refer to the same
images; categories are the run's dataset's image-level labels in first-seen order, ids 1..C
(a run without labels: one category ``object``). The run file does not record which label's
hierarchy produced a window, so an image with several labels has its ranked windows reported
for each of its labels (a single-label image -- the usual case -- is exact).
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .core.boxes import clip_boxes, to_one_based_yx, to_xywh, to_xyxy_edges
from .errors import UserError
from .io import atomic_path, output_target

log = logging.getLogger(__name__)

FORMATS = ("coco", "coco-pseudo-gt", "detectron2", "mmdet", "fast-rcnn-mat", "voc-txt", "csv")

#: what each format's file holds, in its consumer's convention (``stl export --help`` prints these)
CONVENTIONS = {
    "coco": "COCO results list [{image_id, category_id, bbox: [x, y, w, h], score}] as COCO.loadRes reads it "
            "(bbox in continuous pixels: x = x0, w = x1 - x0 + 1), plus FILE_images.json (the images and "
            "categories it refers to, a COCO dataset without annotations)",
    "coco-pseudo-gt": "a COCO dataset {images, categories, annotations} whose annotations are the top "
                      "--per-image K windows (default 1) per image and label (id, image_id, category_id, bbox "
                      "[x, y, w, h], area = w*h, iscrowd 0, score): pseudo ground truth to train a detector "
                      "(register_coco_instances / CocoDataset); images without a label are left out",
    "detectron2": "pickle {ids: [image_id of the coco files], boxes: [N x 4 float32 XYXY_ABS = [x0, y0, x1 + 1, "
                  "y1 + 1]], objectness_logits: [N float32], bbox_mode: 0 (BoxMode.XYXY_ABS)} as "
                  "detectron2's load_proposals_into_dataset reads it",
    "mmdet": "pickle {'<folder>/<file name>': {bboxes: N x 4 float32 [x0, y0, x1 + 1, y1 + 1], scores: N float32}} "
             "keyed as mmdetection 3's BaseDetDataset.load_proposals looks it up",
    "fast-rcnn-mat": "MATLAB .mat {boxes: 1 x N cell of K x 4 double, 1-based inclusive (y1, x1, y2, x2), whole "
                     "pixels; images: 1 x N cell of image ids} in image-set order, as R-CNN / Fast R-CNN / OICR "
                     "read selective-search files (boxes[i][:, (1, 0, 3, 2)] - 1 gives 0-based x0 y0 x1 y1), "
                     "plus FILE.txt, the image-set order (one image id per line)",
    "voc-txt": "text, one line per window 'image_id score x1 y1 x2 y2', 1-based inclusive pixels (the PASCAL VOC "
               "detection results format, x1 = x0 + 1)",
    "csv": "CSV with header image_id,file_name,rank,score,x0,y0,x1,y1: 0-based pixel-inclusive boxes (stl's own "
           "convention), rank 1 = best",
}
#: file-name extension of each format's main file (the default --out is next to the run)
EXTENSIONS = {"coco": ".json", "coco-pseudo-gt": ".json", "detectron2": ".pkl", "mmdet": ".pkl",
              "fast-rcnn-mat": ".mat", "voc-txt": ".txt", "csv": ".csv"}


class ExportError(UserError, ValueError):
    """A run that cannot be exported as asked."""


@dataclass
class ExportImage:
    """One image of a run as the exporters see it."""

    coco_id: int
    image_id: str
    file_name: str
    #: the image file when the run's dataset could be found again, else None
    path: Optional[Path]
    width: int
    height: int
    labels: List[str]
    #: (K, 4) 0-based pixel-inclusive, original image pixels, ranked best first
    boxes: np.ndarray
    scores: np.ndarray


@dataclass
class Export:
    run: Path
    meta: dict
    images: List[ExportImage]
    categories: List[dict]
    failures: Dict[str, str] = field(default_factory=dict)

    @property
    def num_windows(self) -> int:
        return int(sum(len(im.scores) for im in self.images))

    def category_ids(self, im: ExportImage) -> List[int]:
        by_name = {c["name"]: c["id"] for c in self.categories}
        return [by_name[lab] for lab in im.labels] if im.labels else [by_name.get("object", 1)]


# ----------------------------------------------------------------------------- reading a run
def _dataset(meta: dict):
    """The run's dataset rebuilt from its attributes (image paths, labels), or None."""
    from .data import get_dataset
    from .evaluation.runs import dataset_of_run

    try:
        if meta.get("dataset") == "folder":
            lab = meta.get("labels") or None
            return get_dataset("folder", root=meta.get("root"), subset=meta.get("subset") or None,
                               labels=None if lab in (None, "folders") else lab, labels_from_folders=lab == "folders")
        return dataset_of_run(meta)
    except Exception as e:  # noqa: BLE001 - a moved dataset: export what the run has
        log.warning("the run's dataset (%s, root %s) is not available (%s): exporting without image paths and "
                    "labels", meta.get("dataset_key") or meta.get("dataset"), meta.get("root"), e)
        return None


def read_export(run_path, top: Optional[int] = None) -> Export:
    """The run's images, windows (best ``top`` per image) and categories."""
    from .runner import load_run

    run_path = Path(run_path)
    if top is not None and top < 1:
        raise ExportError(f"--top must be >= 1, not {top}")
    run = load_run(run_path, max_windows=top)
    if not run.image_ids:
        raise ExportError(f"{run_path}: the run has no images with windows to export"
                          + (f" ({len(run.failures)} failed)" if run.failures else ""))
    ds = _dataset(run.meta)
    root = Path(run.meta["root"]) if run.meta.get("root") else None
    images = []
    for k, i in enumerate(run.image_ids, 1):
        rec = ds.record(i) if ds is not None and i in ds else None
        a = run.image_attrs.get(i, {})
        h, w = a.get("height"), a.get("width")
        if h is None or w is None:
            if rec is None:
                raise ExportError(f"{run_path}: image {i} has no stored size and its dataset is not available")
            h, w = rec.size
        path = Path(rec.path) if rec is not None and rec.path is not None else None
        if run.meta.get("dataset") == "folder" or path is None:
            file_name = i
        else:
            try:
                file_name = path.resolve().relative_to(Path(ds.root).resolve()).as_posix()
            except ValueError:
                file_name = path.name
        if path is None and run.meta.get("dataset") == "folder" and root is not None:
            path = (root if root.is_dir() else root.parent) / i
        boxes = clip_boxes(run.boxes[i], (int(h), int(w)))
        images.append(ExportImage(k, i, file_name, path, int(w), int(h), list(rec.labels) if rec is not None else [],
                                  boxes, np.asarray(run.scores[i], np.float64)))
    if not sum(len(im.scores) for im in images):
        raise ExportError(f"{run_path}: the run's {len(images)} images have no windows to export")
    return Export(run_path, run.meta, images, categories_of(images), dict(run.failures))


def categories_of(images: Sequence[ExportImage]) -> List[dict]:
    """COCO categories of the images' labels, ids 1..C in first-seen order (ImageNet wnids get their
    ``words``), plus ``object`` for unlabelled images; only ``object`` when no image has a label."""
    from .models.base import ClassList

    seen = list(dict.fromkeys(lab for im in images for lab in im.labels))
    words = {}
    try:
        inet = ClassList.imagenet()
        words = dict(zip(inet.wnids, inet.words))
    except Exception:  # pragma: no cover - packaged file
        pass
    if not seen:
        return [{"id": 1, "name": "object", "supercategory": "object"}]
    cats = [dict(id=c, name=lab, supercategory="object", **({"words": words[lab]} if lab in words else {}))
            for c, lab in enumerate(seen, 1)]
    if any(not im.labels for im in images):
        cats.append({"id": len(cats) + 1, "name": "object", "supercategory": "object"})
    return cats


# ----------------------------------------------------------------------------- the formats
def _coco_images(ex: Export) -> List[dict]:
    return [{"id": im.coco_id, "file_name": im.file_name, "width": im.width, "height": im.height,
             "stl_image_id": im.image_id} for im in ex.images]


def coco_results(ex: Export) -> List[dict]:
    out = []
    for im in ex.images:
        xywh = to_xywh(im.boxes)
        for cat in ex.category_ids(im):
            out += [{"image_id": im.coco_id, "category_id": cat, "bbox": [round(float(v), 3) for v in b],
                     "score": float(s)} for b, s in zip(xywh, im.scores)]
    return out


def coco_pseudo_gt(ex: Export, per_image: int = 1) -> dict:
    if per_image < 1:
        raise ExportError(f"--per-image must be >= 1, not {per_image}")
    labelled = [im for im in ex.images if im.labels]
    if not labelled:
        raise ExportError(f"{ex.run}: coco-pseudo-gt needs image-level labels, and this run's dataset has none "
                          f"(run STL-CL with --labels FILE.csv or --labels-from-folders)")
    anns = []
    for im in labelled:
        xywh = to_xywh(im.boxes[:per_image])
        for cat in ex.category_ids(im):
            for b, s in zip(xywh, im.scores[:per_image]):
                anns.append({"id": len(anns) + 1, "image_id": im.coco_id, "category_id": cat,
                             "bbox": [round(float(v), 3) for v in b], "area": round(float(b[2] * b[3]), 3),
                             "iscrowd": 0, "score": float(s)})
    cats = [c for c in ex.categories if c["name"] != "object" or any(not im.labels for im in labelled)]
    return {"info": {"description": f"STL pseudo ground truth from {ex.run.name}",
                     "method": str(ex.meta.get("method", "")), "model": str(ex.meta.get("model", ""))},
            "images": [d for d in _coco_images(ex) if d["id"] in {im.coco_id for im in labelled}],
            "categories": cats, "annotations": anns}


def detectron2_proposals(ex: Export) -> dict:
    return {"ids": [im.coco_id for im in ex.images],
            "boxes": [to_xyxy_edges(im.boxes).astype(np.float32) for im in ex.images],
            "objectness_logits": [im.scores.astype(np.float32) for im in ex.images],
            "bbox_mode": 0,  # detectron2.structures.BoxMode.XYXY_ABS
            "file_names": [im.file_name for im in ex.images]}


def mmdet_key(im: ExportImage) -> str:
    """mmdetection 3's key of an image: ``<name of its folder>/<file name>``."""
    p = Path(im.path) if im.path is not None else Path(im.file_name)
    return f"{p.parent.name}/{p.name}"


def mmdet_proposals(ex: Export) -> dict:
    out = {}
    for im in ex.images:
        key = mmdet_key(im)
        if key in out:
            raise ExportError(f"{ex.run}: two images have the mmdetection key {key!r} (its loader looks "
                              f"proposals up by folder and file name); rename one")
        out[key] = {"bboxes": to_xyxy_edges(im.boxes).astype(np.float32), "scores": im.scores.astype(np.float32)}
    return out


def fast_rcnn_boxes(im: ExportImage) -> np.ndarray:
    """1-based inclusive (y1, x1, y2, x2), whole pixels, within the image."""
    b = np.round(np.asarray(im.boxes, np.float64))
    b = clip_boxes(b, (im.height, im.width))
    b[:, 2] = np.maximum(b[:, 2], b[:, 0])
    b[:, 3] = np.maximum(b[:, 3], b[:, 1])
    return to_one_based_yx(b)


def _check_ids_for_text(ex: Export, fmt: str):
    bad = [im.image_id for im in ex.images if any(c.isspace() for c in im.image_id)]
    if bad:
        raise ExportError(f"--format {fmt}: image id {bad[0]!r} contains white space, which the format cannot "
                          f"hold (use --format csv or coco)")


def voc_lines(ex: Export) -> str:
    _check_ids_for_text(ex, "voc-txt")
    buf = io.StringIO()
    for im in ex.images:
        for b, s in zip(im.boxes, im.scores):
            buf.write(f"{im.image_id} {s:.6f} {b[0] + 1:.1f} {b[1] + 1:.1f} {b[2] + 1:.1f} {b[3] + 1:.1f}\n")
    return buf.getvalue()


def csv_text(ex: Export) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image_id", "file_name", "rank", "score", "x0", "y0", "x1", "y1"])
    for im in ex.images:
        for r, (b, s) in enumerate(zip(im.boxes, im.scores), 1):
            w.writerow([im.image_id, im.file_name, r, f"{s:.8g}"] + [f"{v:.2f}" for v in b])
    return buf.getvalue()


# ----------------------------------------------------------------------------- writing
def output_files(fmt: str, out) -> List[Path]:
    """The files ``fmt`` writes for ``--out out`` (the main file first)."""
    out = Path(out)
    if fmt == "coco":
        return [out, out.with_name(out.stem + "_images.json")]
    if fmt == "fast-rcnn-mat":
        return [out, out.with_suffix(".txt") if out.suffix != ".txt" else out.with_name(out.name + ".order.txt")]
    return [out]


def default_out(run_path, fmt: str) -> Path:
    run_path = Path(run_path)
    return run_path.with_name(f"{run_path.stem}.{fmt}{EXTENSIONS[fmt]}")


def export_run(ex: Export, fmt: str, out, per_image: int = 1) -> List[Path]:
    """Write ``ex`` as ``fmt`` to ``out`` (and its companion file); every file atomically, all or none."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    files = output_files(fmt, out)
    if fmt == "coco":
        payloads = [json.dumps(coco_results(ex)),
                    json.dumps({"images": _coco_images(ex), "categories": ex.categories, "annotations": []})]
    elif fmt == "coco-pseudo-gt":
        payloads = [json.dumps(coco_pseudo_gt(ex, per_image))]
    elif fmt == "detectron2":
        payloads = [pickle.dumps(detectron2_proposals(ex), protocol=4)]
    elif fmt == "mmdet":
        payloads = [pickle.dumps(mmdet_proposals(ex), protocol=4)]
    elif fmt == "fast-rcnn-mat":
        payloads = [None, "".join(f"{im.image_id}\n" for im in ex.images)]
    elif fmt == "voc-txt":
        payloads = [voc_lines(ex)]
    else:
        payloads = [csv_text(ex)]
    for f in files:
        if f.is_dir():
            raise ExportError(f"--out {f} is a folder; give a file name")
    if len(files) > 1 and not output_target(files[0])[1]:  # /dev/null_images.json would be made in /dev
        raise ExportError(f"--out {files[0]}: --format {fmt} writes two files ({files[1].name} beside it); give a "
                          f"file name, not a device, pipe or stdout")
    with contextlib.ExitStack() as stack:  # all temporaries written before any is renamed into place
        for f, data in zip(files, payloads):
            tmp = stack.enter_context(atomic_path(f))
            if data is None:  # the .mat file
                import scipy.io

                boxes = np.empty((len(ex.images),), dtype=object)
                names = np.empty((len(ex.images),), dtype=object)
                for k, im in enumerate(ex.images):
                    boxes[k] = fast_rcnn_boxes(im)
                    names[k] = im.image_id
                with open(tmp, "wb") as fh:
                    scipy.io.savemat(fh, {"boxes": boxes.reshape(1, -1), "images": names.reshape(1, -1)},
                                     do_compression=True)
            elif isinstance(data, bytes):
                Path(tmp).write_bytes(data)
            else:
                Path(tmp).write_text(data, encoding="utf-8")
    return files


def draw_export(ex: Export, path, per_image: int = 5, max_images: int = 12) -> Path:
    """One figure of the exported boxes: a panel per image (the first ``max_images``), its best
    ``per_image`` windows numbered with their score, the labels in the title. Needs the image files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io import load_image
    from .visualize import draw_windows

    shown = [im for im in ex.images if im.path is not None and Path(im.path).is_file()][:max_images]
    if not shown:
        raise ExportError(f"--draw: the run's image files are not available (dataset root "
                          f"{ex.meta.get('root') or '?'})")
    cols = min(3, len(shown))
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, im in zip(axes.ravel(), shown):
        image = load_image(im.path).array  # the stored pixels, those of the run's boxes
        names = ", ".join(im.labels) if im.labels else "no label"
        draw_windows(image, im.boxes, im.scores, None, title=f"{im.file_name} ({names})", top=per_image, ax=ax)
    fig.suptitle(f"{ex.meta.get('method', '')} {ex.meta.get('model', '')}: top {per_image} per image".strip(),
                 fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=90)
    plt.close(fig)
    return path


def write_export(run_path, fmt: str, out=None, top: Optional[int] = None, per_image: int = 1) -> List[Path]:
    """Read ``run_path`` and write it as ``fmt`` (see :data:`CONVENTIONS`); returns the files written."""
    ex = read_export(run_path, top)
    return export_run(ex, fmt, out if out is not None else default_out(run_path, fmt), per_image)


__all__ = ["FORMATS", "CONVENTIONS", "Export", "ExportImage", "ExportError", "read_export", "export_run",
           "categories_of", "draw_export",
           "write_export", "coco_results", "coco_pseudo_gt", "detectron2_proposals", "mmdet_proposals",
           "output_files", "default_out"]
