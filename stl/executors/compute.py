"""Computing one chunk of a run's images (what every executor runs) and the method's
stored identity; :func:`stl.runner.run_method` stores the results."""
from __future__ import annotations

import logging
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

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
    """A method's ``(boxes, scores)`` for one image as float64 (K, 4) and (K,), checked as the store
    will check them (:func:`stl.core.boxes.check_windows`); ``ValueError`` naming the image if not."""
    from ..core.boxes import check_windows

    boxes, scores = result
    try:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{image_id}: method returned windows that are not numbers ({e})") from None
    if len(boxes) != len(scores):
        raise ValueError(f"{image_id}: method returned {len(boxes)} boxes but {len(scores)} scores")
    try:
        check_windows(boxes, scores)
    except ValueError as e:
        raise ValueError(f"{image_id}: method returned unusable windows: {e}") from None
    return boxes, scores


def load_record_image(rec) -> np.ndarray:
    """The record's image; files larger than :data:`stl.io.LARGE_IMAGE_SIDE` decoded reduced (the
    method's boxes are mapped back to the file's pixels by :func:`compute_chunk`)."""
    from ..io import LARGE_IMAGE_SIDE

    if not hasattr(rec, "load"):
        return rec.read()
    return rec.load(max_side=LARGE_IMAGE_SIDE).array


class _CommitFailed(BaseException):
    """``on_entry`` raised (e.g. a full disk): carried past the method's ``except Exception`` clauses
    and the per-image retry, then re-raised as the original error."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


def compute_chunk(dataset, method, chunk: Sequence[str], max_windows: int,
                  on_entry: Optional[Callable[[tuple], None]] = None):
    """Compute one chunk of images with one ``propose_batch`` call (they share classifier batches).

    Parameters
    ----------
    dataset
        Anything with ``record(image_id)`` (a :class:`stl.data.Dataset`).
    method : stl.proposals.ProposalMethod
    chunk : sequence of str
        The image ids.
    max_windows : int
        Windows kept per image (the best first).
    on_entry : callable, optional
        ``on_entry((image_id, boxes, scores, attrs))`` the moment each image is finished (the
        method reports it through ``on_done``, :func:`stl.proposals.propose_batch`); the runner
        stores it then. Entries given to ``on_entry`` are not returned. An error it raises stops
        the chunk and propagates.

    Returns
    -------
    entries : list of (image_id, boxes, scores, attrs)
        The finished images not given to ``on_entry``. ``attrs``: height, width, seconds (from
        the previous image of the chunk finishing to this one finishing), num_windows_total.
    failures : dict
        ``{image_id: (error type, message)}`` of the images that could not be read or computed.
        If ``propose_batch`` raises, the images it had not finished are retried one at a time.
    """
    from ..proposals import propose_batch

    fails: Dict[str, Tuple[str, str]] = {}
    images, recs = [], []
    for image_id in chunk:
        try:
            rec = dataset.record(image_id)
            images.append(load_record_image(rec))
            recs.append(rec)
        except Exception as e:  # ImageError, DatasetError, ...
            fails[image_id] = (type(e).__name__, str(e))
    entries: Dict[int, tuple] = {}
    finished = set()
    last = [time.time()]

    def finish(k, result):
        """Image ``k`` of the chunk is done: check it, make its entry, hand it over."""
        if k in finished:
            return
        finished.add(k)
        rec, im = recs[k], images[k]
        now = time.time()
        seconds, last[0] = now - last[0], now
        try:
            boxes, scores = validate(result, rec.image_id)
        except ValueError as e:
            fails[rec.image_id] = (type(e).__name__, str(e))
            return
        if tuple(im.shape[:2]) != tuple(rec.size):  # decoded reduced: boxes back to the file's pixels
            from ..core.boxes import scale_boxes

            boxes = scale_boxes(boxes, im.shape[:2], rec.size)
        entry = (rec.image_id, boxes[:max_windows], scores[:max_windows],
                 {"height": rec.size[0], "width": rec.size[1], "seconds": seconds,
                  "num_windows_total": len(boxes)})
        if on_entry is None:
            entries[k] = entry
            return
        try:
            on_entry(entry)
        except BaseException as e:
            raise _CommitFailed(e) from None

    try:
        if recs:
            labels = [r.labels for r in recs] if method.needs_label else None
            try:
                propose_batch(method, images, labels, image_ids=[r.image_id for r in recs], on_done=finish)
            except Exception as e:  # isolate the failing image(s)
                log.warning("propose_batch failed on %d images (%s: %s); retrying one by one",
                            len(recs) - len(finished), type(e).__name__, e)
                for k, (rec, im) in enumerate(zip(recs, images)):
                    if k in finished:
                        continue
                    try:
                        lab = rec.labels if method.needs_label else None
                        out = method.propose(im, lab, image_id=rec.image_id)
                    except Exception as e1:
                        finished.add(k)
                        last[0] = time.time()
                        fails[rec.image_id] = (type(e1).__name__, str(e1))
                        continue
                    finish(k, out)
    except _CommitFailed as e:
        raise e.error from None
    return [entries[k] for k in sorted(entries)], fails
