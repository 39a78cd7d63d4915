"""Proposals read from files: MCG (MATLAB-only, so never run here) and any other
method whose windows were computed elsewhere (``PRECOMPUTED``).

The paper's MCG curve (Sec. 4.1, Fig. 3) and STL-WL+MCG use MCG "accurate"
(Arbelaez et al. CVPR 2014). MCG is distributed as MATLAB code; its proposals for
the standard benchmarks are distributed per image as ``.mat`` files, e.g. by the
proposal benchmark of Hosang et al. (hosang/detection-proposals), whose layout
this module reads by default:

* one file per image: ``<root>/<image_id>.mat`` or ``<root>/<image_id[:4]>/<image_id>.mat``
  (Hosang's ``save_candidates_mat`` puts files in sub-directories named by the
  first 4 characters of the id); ``.npz`` files with the same variables work too;
* variables ``boxes`` (K x 4, 1-BASED, pixel-inclusive) and ``scores`` (K), sorted
  best first (``scores`` may be absent: then the file order is the ranking).

Coordinate order (option ``box_order``):

* ``"xyxy"``: ``[x0 y0 x1 y1]`` -- Hosang's files (his ``run_MCG.m`` flips MCG's
  native boxes before saving);
* ``"yxyx"``: ``[y0 x0 y1 x1]`` -- MCG's own output, ``candidates.bboxes`` of
  ``im2mcg`` (``[up left down right]``);
* ``"auto"`` (default): ``yxyx`` when the boxes come from a variable named
  ``bboxes`` (a top-level ``bboxes`` or a struct ``candidates.bboxes``, i.e. raw
  MCG output), ``xyxy`` when they come from ``boxes``.

``one_based=True`` (default, MATLAB) subtracts 1 from every coordinate.

How the image id reaches the method
-----------------------------------
``propose()`` of the other methods only gets pixels. Methods that read files set
``needs_image_id = True`` and take the id as a keyword::

    method.propose(image, labels=None, image_id="ILSVRC2012_val_00000001")
    method.propose_batch(images, labels=None, image_ids=[...])

An id may carry directories and an extension (``val/ILSVRC2012_val_00000001.JPEG``):
the file is looked up under the id as given (extension replaced by ``.mat``) and
under its bare stem. If ``image`` is a file path and no id is given, the path's
stem is the id. ``image`` may be None (no clipping to the image then).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import ProposalMethod, ranked, register_method
from ..core.boxes import clip_boxes

EXTENSIONS = (".mat", ".npz")


class PrecomputedProposals(ProposalMethod):
    """Windows read from one file per image (see the module docstring for layout,
    coordinate order and how the image id is passed).

    Parameters
    ----------
    root : directory of the files (else ``$<env>``; MCG: ``$STL_MCG_DIR``).
    box_order : ``"auto"`` | ``"xyxy"`` | ``"yxyx"``.
    one_based : the files' coordinates are 1-based (MATLAB); default True.
    boxes_var, scores_var : variable names (default ``boxes``/``bboxes``, ``scores``).
    max_boxes : keep only the first N (after ranking).
    missing : ``"error"`` (default) raises ``FileNotFoundError`` for an image without a
        file; ``"empty"`` returns no windows for it.
    """

    needs_image_id = True

    def __init__(self, root=None, box_order: str = "auto", one_based: bool = True, boxes_var: Optional[str] = None,
                 scores_var: str = "scores", max_boxes: Optional[int] = None, missing: str = "error",
                 name: str = "PRECOMPUTED", env: str = "STL_PRECOMPUTED_DIR"):
        self.name = name
        root = root or os.environ.get(env)
        if not root:
            raise ValueError(f"{name}: give the directory of the precomputed proposals (root=... or ${env})")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{name}: proposal directory {self.root} does not exist")
        if box_order not in ("auto", "xyxy", "yxyx"):
            raise ValueError(f"box_order must be 'auto', 'xyxy' or 'yxyx', not {box_order!r}")
        if missing not in ("error", "empty"):
            raise ValueError(f"missing must be 'error' or 'empty', not {missing!r}")
        self.box_order = box_order
        self.one_based = bool(one_based)
        self.boxes_var = boxes_var
        self.scores_var = scores_var
        self.max_boxes = None if max_boxes is None else int(max_boxes)
        self.missing = missing

    def describe(self) -> str:
        return f"{self.name} (files in {self.root}, box_order={self.box_order}, one_based={self.one_based})"

    # -- files -----------------------------------------------------------------------
    def candidate_paths(self, image_id: str) -> List[Path]:
        rel = Path(str(image_id))
        stem = rel.stem
        bases = [rel, rel.with_suffix("") if rel.suffix else rel, Path(stem), Path(stem[:4]) / stem]
        out, seen = [], set()
        for b in bases:
            for ext in EXTENSIONS:
                p = self.root / (str(b) + ext)
                if p not in seen:
                    seen.add(p)
                    out.append(p)
        return out

    def find_file(self, image_id: str) -> Optional[Path]:
        for p in self.candidate_paths(image_id):
            if p.is_file():
                return p
        return None

    def read(self, path: Path) -> Tuple[np.ndarray, np.ndarray, str]:
        """(raw boxes K x 4 as stored, scores or None, variable the boxes came from)."""
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        else:
            import scipy.io

            data = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=False)
        source = None
        if "candidates" in data and self.boxes_var is None and "boxes" not in data and "bboxes" not in data:
            cand = np.asarray(data["candidates"]).reshape(-1)[0]  # MCG's im2mcg struct
            data = {k: getattr(cand, k) for k in getattr(cand, "_fieldnames", [])}
        names = [self.boxes_var] if self.boxes_var else ["boxes", "bboxes"]
        for n in names:
            if n in data:
                source = n
                break
        if source is None:
            raise KeyError(f"{self.name}: {path} has no variable {' or '.join(names)} "
                           f"(has: {', '.join(k for k in data if not k.startswith('__'))})")
        boxes = np.asarray(data[source], np.float64)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            if boxes.ndim == 2 and boxes.shape[0] == 4 and boxes.shape[1] != 4:
                boxes = boxes.T  # stored 4 x K
            else:
                raise ValueError(f"{self.name}: {path}: '{source}' must be K x 4, got shape {boxes.shape}")
        scores = None
        if self.scores_var in data:
            scores = np.asarray(data[self.scores_var], np.float64).reshape(-1)
            if len(scores) != len(boxes):
                raise ValueError(f"{self.name}: {path}: {len(boxes)} boxes but {len(scores)} scores")
        return boxes, scores, source

    def load(self, image_id: str, image_size=None) -> Tuple[np.ndarray, np.ndarray]:
        path = self.find_file(image_id)
        if path is None:
            if self.missing == "empty":
                return np.zeros((0, 4)), np.zeros(0)
            tried = ", ".join(str(p) for p in self.candidate_paths(image_id))
            raise FileNotFoundError(f"{self.name}: no proposal file for image {image_id!r} (tried {tried})")
        raw, scores, source = self.read(path)
        order = self.box_order
        if order == "auto":
            order = "yxyx" if source == "bboxes" else "xyxy"
        boxes = raw[:, [1, 0, 3, 2]] if order == "yxyx" else raw.copy()
        if self.one_based:
            boxes -= 1.0
        if image_size is not None:
            boxes = clip_boxes(boxes, image_size)
        if scores is None:
            scores = np.arange(len(boxes), 0, -1, dtype=np.float64)  # file order is the ranking
        boxes, scores = ranked(boxes, scores)
        if self.max_boxes is not None:
            boxes, scores = boxes[:self.max_boxes], scores[:self.max_boxes]
        return boxes, scores

    # -- ProposalMethod ----------------------------------------------------------------
    def propose(self, image, labels=None, image_id: Optional[str] = None):
        if image_id is None:
            if isinstance(image, (str, os.PathLike)):
                image_id = Path(image).stem
            else:
                raise ValueError(f"{self.name} reads precomputed proposals: call propose(image, labels, "
                                 "image_id=...) (or propose_batch(images, labels, image_ids=[...]))")
        size = None
        if image is not None and not isinstance(image, (str, os.PathLike)):
            size = np.shape(image)[:2]
        elif isinstance(image, (str, os.PathLike)) and Path(image).is_file():
            from PIL import Image

            with Image.open(image) as im:
                size = (im.height, im.width)
        return self.load(str(image_id), size)

    def propose_batch(self, images: Sequence, labels: Optional[Sequence] = None,
                      image_ids: Optional[Sequence[str]] = None):
        if image_ids is None:
            image_ids = [None] * len(images)
        if len(image_ids) != len(images):
            raise ValueError("image_ids must have one entry per image")
        return [self.propose(im, None, image_id=i) for im, i in zip(images, image_ids)]


#: generic precomputed windows: ``root=`` (or ``$STL_PRECOMPUTED_DIR``)
register_method("PRECOMPUTED")(PrecomputedProposals)

_MCG_OPTIONS = ("root", "box_order", "one_based", "boxes_var", "scores_var", "max_boxes", "missing", "env")


@register_method("MCG", options=_MCG_OPTIONS, needs_image_id=True)
def _mcg(env: str = "STL_MCG_DIR", **kw):
    """MCG (Arbelaez et al. 2014), the paper's MCG curve (Sec. 4.1, Fig. 3; MCG+MCG in
    Table 1), read from per-image files: ``root=`` or ``$STL_MCG_DIR``."""
    return PrecomputedProposals(name="MCG", env=env, **kw)
