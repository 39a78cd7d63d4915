"""Computing one chunk of a run's images (what every executor runs) and the method's
stored identity; :func:`stl.runner.run_method` stores the results."""
from __future__ import annotations

import logging
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..paths import model_tag

log = logging.getLogger("stl.runner")


def method_meta(method, method_name: Optional[str] = None, model=None) -> dict:
    from ..models.preprocessing import preprocessing_identity

    cfg = getattr(method, "config", None)
    cfg = (cfg.identity() if hasattr(cfg, "identity") else cfg.to_dict() if hasattr(cfg, "to_dict")
           else ({} if cfg is None else str(cfg)))
    clf = getattr(method, "classifier", None)
    uses = method.uses_classifier
    return {
        "method": (method_name or getattr(method, "name", "method")).upper(),
        "method_description": method.describe() if hasattr(method, "describe") else "",
        "model": model_tag(model if model is not None else getattr(clf, "name", None)) if uses else "",
        "classifier": clf.describe() if uses and hasattr(clf, "describe") else "",
        "method_config": cfg,
        # the classifier's input handling (Caffe mean, precision): part of the run's identity
        "preprocessing": preprocessing_identity(clf) if uses and clf is not None else None,
    }


def validate(result, image_id) -> Tuple[np.ndarray, np.ndarray]:
    boxes, scores = result
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{image_id}: method returned {len(boxes)} boxes but {len(scores)} scores")
    if not np.isfinite(boxes).all():
        raise ValueError(f"{image_id}: method returned non-finite box coordinates")
    return boxes, scores


def load_record_image(rec) -> np.ndarray:
    """The record's image; files larger than :data:`stl.io.LARGE_IMAGE_SIDE` decoded reduced (the
    method's boxes are mapped back to the file's pixels by :func:`compute_chunk`)."""
    from ..io import LARGE_IMAGE_SIDE

    if not hasattr(rec, "load"):
        return rec.read()
    return rec.load(max_side=LARGE_IMAGE_SIDE).array


def compute_chunk(dataset, method, chunk: Sequence[str], max_windows: int):
    fails: Dict[str, Tuple[str, str]] = {}
    images, recs = [], []
    for image_id in chunk:
        try:
            rec = dataset.record(image_id)
            images.append(load_record_image(rec))
            recs.append(rec)
        except Exception as e:  # ImageError, DatasetError, ...
            fails[image_id] = (type(e).__name__, str(e))
    results: List = []
    t = time.time()
    if recs:
        labels = [r.labels for r in recs] if method.needs_label else None
        try:
            results = list(method.propose_batch(images, labels, image_ids=[r.image_id for r in recs]))
            if len(results) != len(recs):
                raise ValueError(f"propose_batch returned {len(results)} results for {len(recs)} images")
            results = [validate(r, rec.image_id) for r, rec in zip(results, recs)]
        except Exception as e:  # isolate the failing image(s)
            log.warning("propose_batch failed on %d images (%s: %s); retrying one by one",
                        len(recs), type(e).__name__, e)
            results = []
            for rec, im in zip(recs, images):
                try:
                    lab = rec.labels if method.needs_label else None
                    out = method.propose(im, lab, image_id=rec.image_id)
                    results.append(validate(out, rec.image_id))
                except Exception as e1:
                    fails[rec.image_id] = (type(e1).__name__, str(e1))
                    results.append(None)
    per_image = (time.time() - t) / max(1, len(recs))
    entries = []
    for rec, im, res in zip(recs, images, results):
        if res is None:
            continue
        boxes, scores = res
        if tuple(im.shape[:2]) != tuple(rec.size):  # decoded reduced: boxes back to the file's pixels
            from ..core.boxes import scale_boxes

            boxes = scale_boxes(boxes, im.shape[:2], rec.size)
        entries.append((rec.image_id, boxes[:max_windows], scores[:max_windows],
                        {"height": rec.size[0], "width": rec.size[1], "seconds": per_image,
                         "num_windows_total": len(boxes)}))
    return entries, fails
