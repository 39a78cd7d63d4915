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

Ranking (option ``order``, as the ``order`` field of Hosang's ``get_method_configs.m``
read by his ``get_candidates.m``): ``"descend"`` (default) sorts by ``scores``, best
first; ``"ascend"`` by ``scores`` ascending (his Selective Search files store the
release's priorities, lower = better); ``"none"`` keeps the file order (his MCG files).
A file holding several runs (MATLAB cells ``boxes{i}``, ``scores{i}`` with
``num_candidates(i)``) gives the run whose ``num_candidates`` is nearest to the option
``num_candidates`` (default 10000, his ``read_candidates_mat`` default).

Published proposals of Hosang et al. (``*-PUBLISHED`` methods)
-----------------------------------------------------------------
:data:`HOSANG_VOC07` names, in one place, the proposals on PASCAL VOC 2007 test that the
benchmark of Hosang et al. ("How good are detection proposals, really?", BMVC 2014 /
TPAMI 2016) published: for each method its directory (``<dir>/mat/<id[:4]>/<id>.mat``,
variables ``boxes`` [x1 y1 x2 y2] 1-based, ``scores``, ``num_candidates``), its order
and its archive (URL and MD5). ``make data`` fetches them into ``data/hosang`` (or
``$STL_HOSANG_DIR``); ``EDGEBOXES-PUBLISHED``, ``MCG-PUBLISHED``, ``SELSEARCH-PUBLISHED``
and ``BING-PUBLISHED`` read them (``root=`` overrides).

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
from ..paths import hosang_root

EXTENSIONS = (".mat", ".npz")
ORDERS = ("descend", "ascend", "none")

#: Project page of Hosang et al.'s proposal benchmark (where the archives are listed).
HOSANG_PAGE = ("https://www.mpi-inf.mpg.de/departments/computer-vision-and-machine-learning/research/"
               "object-recognition-and-scene-understanding/how-good-are-detection-proposals-really")
#: Where the archives are served from. NOT verified from this project's (offline) machines:
#: ``make data`` reports a failed download with the page above for a manual one.
HOSANG_BASE = "https://datasets.d2.mpi-inf.mpg.de/hosang/detection-proposals/voc07_test"

#: Hosang et al.'s published proposals on PASCAL VOC 2007 test, one entry per method we use:
#: ``dir`` (his ``candidate_dir`` prefix in ``get_method_configs.m``), ``order`` (his ``order``),
#: ``archive`` (file name), ``url`` and ``md5`` (None: not pinned yet -- the fetcher prints the
#: MD5 of what it downloaded so that it can be pinned here; nothing else keeps checksums).
HOSANG_VOC07 = {
    "EDGEBOXES": {"name": "EdgeBoxes (EB70)", "dir": "edge_boxes_70", "order": "descend"},
    "MCG": {"name": "MCG", "dir": "MCG", "order": "none"},
    "SELSEARCH": {"name": "SelectiveSearch", "dir": "selective_search", "order": "ascend"},
    "BING": {"name": "Bing", "dir": "BING", "order": "descend"},
}
for _entry in HOSANG_VOC07.values():
    _entry.setdefault("archive", f"{_entry['dir']}.tar.gz")
    _entry.setdefault("url", f"{HOSANG_BASE}/{_entry['archive']}")
    _entry.setdefault("md5", None)


def hosang_dir(method: str, root=None) -> Path:
    """The directory of one method's ``.mat`` files under ``root`` (default :func:`hosang_root`):
    ``<root>/<dir>/mat`` as Hosang lays them out (``<root>/<dir>`` if there is no ``mat``)."""
    entry = HOSANG_VOC07[method]
    base = Path(root) if root else hosang_root()
    for cand in (base / entry["dir"] / "mat", base / entry["dir"]):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(
        f"{method}-PUBLISHED: Hosang et al.'s {entry['name']} proposals are not in {base / entry['dir']}/mat; "
        f"run `make data` (needs a network), or download {entry['archive']} from {HOSANG_PAGE} and "
        f"extract it into {base} (or set STL_HOSANG_DIR)")


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
    order : ``"descend"`` (default) | ``"ascend"`` | ``"none"`` (module docstring).
    num_candidates : which run of a multi-run file (nearest ``num_candidates``).
    """

    needs_image_id = True

    def __init__(self, root=None, box_order: str = "auto", one_based: bool = True, boxes_var: Optional[str] = None,
                 scores_var: str = "scores", max_boxes: Optional[int] = None, missing: str = "error",
                 name: str = "PRECOMPUTED", env: str = "STL_PRECOMPUTED_DIR", order: str = "descend",
                 num_candidates: int = 10000):
        self.name = name
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        self.order = order
        self.num_candidates = int(num_candidates)
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
        return (f"{self.name} (files in {self.root}, box_order={self.box_order}, one_based={self.one_based}, "
                f"order={self.order})")

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
        raw_boxes = np.asarray(data[source])
        raw_scores = np.asarray(data[self.scores_var]) if self.scores_var in data else None
        if raw_boxes.dtype == object:  # MATLAB cells: one run per num_candidates setting
            runs = raw_boxes.reshape(-1)
            counts = np.asarray(data.get("num_candidates", np.arange(len(runs))), np.float64).reshape(-1)
            if len(counts) != len(runs):
                raise ValueError(f"{self.name}: {path}: {len(runs)} runs but {len(counts)} num_candidates")
            pick = int(np.argmin(np.abs(counts - self.num_candidates)))
            raw_boxes = np.asarray(runs[pick])
            if raw_scores is not None and raw_scores.dtype == object:
                raw_scores = np.asarray(raw_scores.reshape(-1)[pick])
        boxes = np.asarray(raw_boxes, np.float64)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            if boxes.ndim == 2 and boxes.shape[0] == 4 and boxes.shape[1] != 4:
                boxes = boxes.T  # stored 4 x K
            else:
                raise ValueError(f"{self.name}: {path}: '{source}' must be K x 4, got shape {boxes.shape}")
        scores = None
        if raw_scores is not None and raw_scores.size > 0:
            scores = np.asarray(raw_scores, np.float64).reshape(-1)
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
        if self.order == "descend":
            boxes, scores = ranked(boxes, scores)
        else:  # "ascend" (lower = better) or "none" (file order); the score handed on is the rank
            order = (np.arange(len(boxes)) if self.order == "none"
                     else np.argsort(np.where(np.isnan(scores), np.inf, scores), kind="stable"))
            boxes, scores = boxes[order], np.arange(len(order), 0, -1, dtype=np.float64)
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
                      image_ids: Optional[Sequence[str]] = None, on_done=None):
        if image_ids is None:
            image_ids = [None] * len(images)
        if len(image_ids) != len(images):
            raise ValueError("image_ids must have one entry per image")
        out = []
        for k, (im, i) in enumerate(zip(images, image_ids)):
            out.append(self.propose(im, None, image_id=i))
            if on_done is not None:
                on_done(k, out[-1])
        return out


#: generic precomputed windows: ``root=`` (or ``$STL_PRECOMPUTED_DIR``)
register_method("PRECOMPUTED")(PrecomputedProposals)

_MCG_OPTIONS = ("root", "box_order", "one_based", "boxes_var", "scores_var", "max_boxes", "missing", "env")


@register_method("MCG", options=_MCG_OPTIONS + ("order", "num_candidates"), needs_image_id=True)
def _mcg(env: str = "STL_MCG_DIR", **kw):
    """MCG (Arbelaez et al. 2014), the paper's MCG curve (Sec. 4.1, Fig. 3; MCG+MCG in
    Table 1), read from per-image files: ``root=`` or ``$STL_MCG_DIR``."""
    return PrecomputedProposals(name="MCG", env=env, **kw)


_PUBLISHED_OPTIONS = ("root", "max_boxes", "missing", "num_candidates")


def _published(method: str):
    entry = HOSANG_VOC07[method]

    def factory(root=None, max_boxes: Optional[int] = None, missing: str = "error", num_candidates: int = 10000):
        return PrecomputedProposals(root=hosang_dir(method, root), box_order="xyxy", one_based=True,
                                    boxes_var="boxes", order=entry["order"], max_boxes=max_boxes, missing=missing,
                                    num_candidates=num_candidates, name=f"{method}-PUBLISHED")

    factory.__doc__ = (f"{entry['name']} proposals on PASCAL VOC 2007 test as published by Hosang et al. "
                       f"(``{entry['dir']}``, order {entry['order']}); see :data:`HOSANG_VOC07`.")
    return factory


for _m in HOSANG_VOC07:
    register_method(f"{_m}-PUBLISHED", options=_PUBLISHED_OPTIONS, needs_image_id=True)(_published(_m))
