"""The low-level proposal methods of Fig. 3 that OpenCV implements: SELSEARCH-OPENCV
(OpenCV's Selective Search; the paper's SELSEARCH is :mod:`stl.proposals.selective_search`),
EDGEBOXES and BING (Sec. 4.1 of the paper, "Comparison with other proposal
methods"; the paper's refs. Uijlings et al. IJCV 2013, Zitnick & Dollar ECCV
2014, Cheng et al. CVPR 2014).

All three take the image in its ORIGINAL resolution (the paper runs the
proposal methods on the original images; only STL works on the network input)
and return pixel-inclusive ``[x0, y0, x1, y1]`` boxes ranked best first.
Each raises :class:`MissingModelError` (a ``FileNotFoundError``) when the model
files it needs are absent; none of them ever substitutes another model.

Model files (``make models`` downloads them into ``models/weights/``):

* EDGEBOXES: the Structured Edge Detection forest ``model.yml.gz``
  (opencv_extra ``testdata/cv/ximgproc/model.yml.gz``). Looked up at option
  ``model=``, ``$STL_EDGEBOXES_MODEL``, ``<weights>/edgeboxes/model.yml.gz``,
  ``<weights>/model.yml.gz``, ``$STL_SHARED/models/edgeboxes/model.yml.gz``.
* BING: ``ObjNessB2W8MAXBGR.{idx,wS1,wS2}.yml.gz`` (opencv_contrib saliency
  samples). Looked up in option ``model_dir=``, ``$STL_BING_MODELS``,
  ``<weights>/bing/``, ``$STL_SHARED/models/bing/``.

``<weights>`` is ``$STL_WEIGHTS`` or ``models/weights`` in the repository;
``$STL_SHARED`` defaults to the ``shared`` directory next to the repository.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from ..core.boxes import clip_boxes, scale_boxes
from ..io import as_rgb_uint8
from . import ProposalMethod, ranked, register_method
from ..registry import check_options
from ..paths import shared_dir, weights_dir

log = logging.getLogger(__name__)


class MissingModelError(FileNotFoundError):
    """A proposal method's model file is not installed (run ``make models``)."""


def _xywh_to_inclusive(rects, one_based: bool = False) -> np.ndarray:
    """OpenCV ``Rect`` rows (x, y, w, h) -> pixel-inclusive [x0, y0, x1, y1]."""
    r = np.asarray(rects, np.float64).reshape(-1, 4)
    off = 1.0 if one_based else 0.0
    x0 = r[:, 0] - off
    y0 = r[:, 1] - off
    return np.stack([x0, y0, x0 + r[:, 2] - 1, y0 + r[:, 3] - 1], axis=1)


def _unique_rows_first(boxes: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct box, in input order."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    _, first = np.unique(boxes, axis=0, return_index=True)
    return np.sort(first)


def _rank_scores(n: int) -> np.ndarray:
    """Strictly decreasing scores n, n-1, ..., 1 that keep a given order under ``ranked``."""
    return np.arange(n, 0, -1, dtype=np.float64)


@contextlib.contextmanager
def _quiet_native_output(enabled: bool = True):
    """Silence C-level stdout/stderr (OpenCV's BING ``printf``s timings and model-load
    errors) for the duration of the block."""
    if not enabled:
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    saved = []
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
            except OSError:
                pass
        yield
    finally:
        try:
            libc = _libc()
            if libc is not None:
                libc.fflush(None)
        except Exception:  # noqa: BLE001
            pass
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        for name in ("libc.so.6", ctypes.util.find_library("c"), None):
            try:
                _LIBC = ctypes.CDLL(name)
                _LIBC.srand.argtypes = [ctypes.c_uint]
                break
            except (OSError, AttributeError, TypeError):
                continue
        else:
            _LIBC = False
    return _LIBC or None


# ======================================================================================
# Selective Search
# ======================================================================================

#: OpenCV's SS ranks with the C library's global ``rand()``; one lock so that two
#: methods in this process never interleave between our ``srand`` and its ``process``.
_SS_LOCK = threading.Lock()

#: The program of the process that runs OpenCV's Selective Search (:class:`_CleanProcess`): Python,
#: NumPy, OpenCV and nothing else, so no other thread draws from the C library's ``rand()`` between
#: ``srand(seed)`` and the ranking. Requests on stdin, answers on stdout (little-endian):
#: ``<iiiiid>`` (h, w, base_k, inc_k, seed, sigma) + h*w*3 BGR bytes -> ``<q>`` n + n*4 int32 (x, y, w, h).
_SS_SERVER = r"""
import ctypes, ctypes.util, struct, sys
import cv2, numpy as np
cv2.setNumThreads(int(sys.argv[1]))
try:
    libc = ctypes.CDLL("libc.so.6")
except OSError:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.srand.argtypes = [ctypes.c_uint]
i, o = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = i.read(28)
    if len(head) < 28:
        break
    h, w, base_k, inc_k, seed, sigma = struct.unpack("<iiiiid", head)
    img = np.frombuffer(i.read(h * w * 3), np.uint8).reshape(h, w, 3)
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(img)
    ss.switchToSelectiveSearchFast(base_k, inc_k, sigma)
    libc.srand(seed)
    r = np.ascontiguousarray(ss.process(), np.int32).reshape(-1, 4)
    o.write(struct.pack("<q", len(r)) + r.tobytes())
    o.flush()
"""


class _CleanProcess:
    """OpenCV's Selective Search in a process of its own (:data:`_SS_SERVER`), started once and kept.

    Why: OpenCV ranks the regions with the C library's process-wide ``rand()``. In a process that
    runs Ray (a Ray worker, or a driver after ``ray.init``) Ray's own threads also call ``rand()``
    now and then (measured: about 1 in 100 windows of 50 ms), so a ``srand(seed)`` before
    ``process()`` no longer fixes the ranking and 1-2 of 20 images came out ranked differently from
    the local executor (issue 21, item 9). In this process nothing else draws, so the windows are
    those of a local run whatever executes the method."""

    def __init__(self):
        self._p = None

    def run(self, bgr: np.ndarray, base_k: int, inc_k: int, sigma: float, seed: int) -> np.ndarray:
        import struct
        import subprocess
        import sys

        if self._p is None or self._p.poll() is not None:
            self._p = subprocess.Popen([sys.executable, "-c", _SS_SERVER, str(max(1, cv2.getNumThreads()))],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        h, w = bgr.shape[:2]
        try:
            self._p.stdin.write(struct.pack("<iiiiid", h, w, base_k, inc_k, seed, sigma)
                                + np.ascontiguousarray(bgr, np.uint8).tobytes())
            self._p.stdin.flush()
            n = struct.unpack("<q", _read_exactly(self._p.stdout, 8))[0]
            return np.frombuffer(_read_exactly(self._p.stdout, 16 * n), np.int32).reshape(n, 4)
        except (OSError, EOFError, struct.error) as e:
            self.close()
            raise RuntimeError(f"the Selective Search process died ({e}; out of memory?)") from None

    def close(self):
        if self._p is not None:
            for f in (self._p.stdin, self._p.stdout):
                with contextlib.suppress(OSError):
                    f.close()
            with contextlib.suppress(Exception):
                self._p.wait(timeout=5)
            if self._p.poll() is None:
                self._p.kill()
                self._p.wait()
            self._p = None


def _read_exactly(f, n: int) -> bytes:
    out = f.read(n)
    if len(out) != n:
        raise EOFError(f"{len(out)} of {n} bytes")
    return out


#: the one helper process of this process (it also ends by itself when this process goes: EOF on its stdin)
_SS_PROCESS = _CleanProcess()
atexit.register(_SS_PROCESS.close)


def _ray_running() -> bool:
    """Whether Ray runs in this process (a Ray worker, or a driver after ``ray.init``)."""
    import sys

    ray = sys.modules.get("ray")
    try:
        return bool(ray is not None and ray.is_initialized())
    except Exception:  # noqa: BLE001 - a half-imported ray
        return True


class SelectiveSearch(ProposalMethod):
    """SELSEARCH-OPENCV: OpenCV-contrib's Selective Search "fast" (Uijlings et al. 2013),
    kept beside SELSEARCH (:mod:`stl.proposals.selective_search`, the release's MATLAB
    algorithm and ranking as the paper ran it) for comparison.

    Implementation: ``cv2.ximgproc.segmentation.createSelectiveSearchSegmentation``
    with ``switchToSelectiveSearchFast(base_k, inc_k, sigma)`` (OpenCV defaults 150,
    150, 0.8): HSV and Lab colour spaces, Felzenszwalb k in {150, 300, 450}, the
    colour+texture+size+fill and texture+size+fill strategies. (The authors ran the
    MATLAB "fast" mode: k in {50, 100}, same colour spaces and strategies; pass
    ``base_k=50, inc_k=50`` to get closer -- OpenCV always uses three k values.)

    Ranking: the order OpenCV returns (score = descending rank ``K, K-1, ..., 1``).
    OpenCV ranks each region by ``rand() * level`` (level = height of the region in
    its merge tree, 1 for an initial segment) ascending, and removes duplicate
    boxes. NOTE: this is inverted w.r.t. Uijlings et al., who count levels from the
    top of the hierarchy, so OpenCV tends to put small regions first; the MATLAB
    ranking behind the paper's curve puts large ones first. Top-N numbers for small
    N are therefore not comparable with the paper's SELSEARCH curve.

    Determinism: OpenCV draws the ``rand()`` of the C library (``cv2.setRNGSeed``
    has no effect on it, and results change from call to call in one process). We
    call ``srand(seed)`` right before every ``process()`` under a lock; ``seed=1``
    (default) reproduces a fresh process's sequence (glibc's default seed).

    Size: the paper runs SS on the original image (``max_side=None``, default);
    ``max_side=N`` shrinks images whose longer side exceeds N (boxes mapped back).
    Grayscale is replicated to 3 channels. A 1x1 image gives the whole image.
    """

    name = "SELSEARCH-OPENCV"

    def __init__(self, base_k: int = 150, inc_k: int = 150, sigma: float = 0.8, max_side: Optional[int] = None,
                 seed: int = 1, max_boxes: Optional[int] = None):
        self.base_k, self.inc_k, self.sigma = int(base_k), int(inc_k), float(sigma)
        self.max_side = None if max_side in (None, 0) else int(max_side)
        self.seed = int(seed)
        self.max_boxes = None if max_boxes is None else int(max_boxes)
        self._warned = False

    def describe(self) -> str:
        return (f"SELSEARCH-OPENCV (OpenCV fast, base_k={self.base_k}, inc_k={self.inc_k}, sigma={self.sigma}, "
                f"max_side={self.max_side}, srand({self.seed}))")

    def propose(self, image, labels=None, image_id=None):
        rgb = as_rgb_uint8(image)
        h, w = rgb.shape[:2]
        work = rgb
        if self.max_side and max(h, w) > self.max_side:
            s = self.max_side / float(max(h, w))
            size = (max(1, int(round(h * s))), max(1, int(round(w * s))))
            work = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(work[:, :, ::-1])
        with _SS_LOCK:
            libc = _libc()
            if libc is not None and _ray_running():  # Ray's threads draw from rand() too: a clean process
                rects = _SS_PROCESS.run(bgr, self.base_k, self.inc_k, self.sigma, self.seed)
            else:
                ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
                ss.setBaseImage(bgr)
                ss.switchToSelectiveSearchFast(self.base_k, self.inc_k, self.sigma)
                if libc is not None:
                    libc.srand(self.seed)
                elif not self._warned:
                    log.warning("SELSEARCH-OPENCV: C library not reachable through ctypes; OpenCV's ranking is not "
                                "reproducible")
                    self._warned = True
                rects = ss.process()
        boxes = _xywh_to_inclusive(rects)
        if work is not rgb:
            boxes = scale_boxes(boxes, work.shape[:2], (h, w))
        boxes = clip_boxes(boxes, (h, w))
        if self.max_boxes is not None:
            boxes = boxes[:self.max_boxes]
        return ranked(boxes, _rank_scores(len(boxes)))


register_method("SELSEARCH-OPENCV")(SelectiveSearch)


# ======================================================================================
# EdgeBoxes
# ======================================================================================

def find_edgeboxes_model(model=None) -> Path:
    """The Structured Edge model for EdgeBoxes, or :class:`MissingModelError`."""
    tried: List[Path] = []
    if model:
        tried.append(Path(model))
    elif os.environ.get("STL_EDGEBOXES_MODEL"):
        tried.append(Path(os.environ["STL_EDGEBOXES_MODEL"]))
    else:
        tried += [weights_dir() / "edgeboxes" / "model.yml.gz", weights_dir() / "model.yml.gz",
                  shared_dir() / "models" / "edgeboxes" / "model.yml.gz"]
    for p in tried:
        if p.is_file():
            return p
    raise MissingModelError(
        "EdgeBoxes needs the Structured Edge model model.yml.gz (opencv_extra "
        "testdata/cv/ximgproc/model.yml.gz); run `make models`, or set STL_EDGEBOXES_MODEL "
        "to a copy. Looked at: " + ", ".join(str(p) for p in tried))


#: EdgeBoxes parameters: the defaults of the authors' MATLAB toolbox (= OpenCV's),
#: except ``max_boxes`` 5000, the largest N of Fig. 3 (the first 5000 boxes of a
#: longer run are the same boxes: the NMS is greedy in score order).
EDGEBOXES_DEFAULTS = dict(alpha=0.65, beta=0.75, eta=1.0, min_score=0.01, max_boxes=5000, edge_min_mag=0.1,
                          edge_merge_thr=0.5, cluster_min_mag=0.5, max_aspect_ratio=3.0, min_box_area=1000.0,
                          gamma=2.0, kappa=1.5)


def edge_boxes_from_maps(edges: np.ndarray, orientation: np.ndarray, image_size, **params):
    """OpenCV EdgeBoxes on an (NMS-ed) edge map and its orientation map (float32,
    H x W); returns ranked pixel-inclusive boxes clipped to ``image_size`` (H, W)."""
    p = dict(EDGEBOXES_DEFAULTS)
    unknown = set(params) - set(p)
    if unknown:
        raise TypeError(f"unknown EdgeBoxes parameters: {sorted(unknown)}")
    p.update(params)
    eb = cv2.ximgproc.createEdgeBoxes()
    eb.setAlpha(float(p["alpha"]))
    eb.setBeta(float(p["beta"]))
    eb.setEta(float(p["eta"]))
    eb.setMinScore(float(p["min_score"]))
    eb.setMaxBoxes(int(p["max_boxes"]))
    eb.setEdgeMinMag(float(p["edge_min_mag"]))
    eb.setEdgeMergeThr(float(p["edge_merge_thr"]))
    eb.setClusterMinMag(float(p["cluster_min_mag"]))
    eb.setMaxAspectRatio(float(p["max_aspect_ratio"]))
    eb.setMinBoxArea(float(p["min_box_area"]))
    eb.setGamma(float(p["gamma"]))
    eb.setKappa(float(p["kappa"]))
    out = eb.getBoundingBoxes(np.ascontiguousarray(edges, np.float32), np.ascontiguousarray(orientation, np.float32))
    # OpenCV >= 4.5.2 (and 5.x) returns (boxes, scores); older versions the boxes only.
    if isinstance(out, tuple) and len(out) == 2:
        rects, scores = out
    else:
        rects, scores = out, None
    # OpenCV's Rect is (x + 1, y + 1, w, h), 1-based like the MATLAB toolbox.
    boxes = clip_boxes(_xywh_to_inclusive(rects, one_based=True), image_size)
    scores = None if scores is None else np.asarray(scores, np.float64).reshape(-1)
    if scores is None or len(scores) != len(boxes):
        scores = _rank_scores(len(boxes))  # keep OpenCV's (score-sorted) order
    return ranked(boxes, scores)


class EdgeBoxes(ProposalMethod):
    """EdgeBoxes (Zitnick & Dollar 2014), the paper's EDGEBOXES curve (Sec. 4.1, Fig. 3;
    EDGEBOXES+EDGEBOXES in Table 1) and the second half of STL-WL+EDGEBOXES.

    Structured Edge Detection (``cv2.ximgproc.createStructuredEdgeDetection`` with the
    SED forest ``model.yml.gz``) on the RGB image scaled to [0, 1], orientation map,
    edge NMS, then ``cv2.ximgproc.createEdgeBoxes`` with :data:`EDGEBOXES_DEFAULTS`:
    alpha 0.65 (sliding-window step), beta 0.75 (NMS IoU), eta 1, min score 0.01,
    max 5000 boxes, edge min magnitude 0.1, edge merge threshold 0.5, cluster min
    magnitude 0.5, max aspect ratio 3, min box area 1000, gamma 2, kappa 1.5 (every
    one can be overridden by keyword). Boxes come ranked by EdgeBoxes' score, as
    OpenCV returns them; its 1-based ``Rect`` is converted to 0-based inclusive.

    Without the model file the constructor raises :class:`MissingModelError`; no
    other edge detector is ever substituted. Images under 8 px on a side give no boxes.
    """

    name = "EDGEBOXES"
    MIN_SIDE = 8

    def __init__(self, model=None, **options):
        check_options("EDGEBOXES", options, EDGEBOXES_DEFAULTS)
        self.params = dict(options)
        self.model_path = find_edgeboxes_model(model)
        try:
            self.sed = cv2.ximgproc.createStructuredEdgeDetection(str(self.model_path))
        except cv2.error as e:
            raise MissingModelError(f"cannot load the Structured Edge model {self.model_path}: {e}") from e

    def describe(self) -> str:
        p = dict(EDGEBOXES_DEFAULTS, **self.params)
        return f"EDGEBOXES (alpha={p['alpha']}, beta={p['beta']}, max_boxes={p['max_boxes']}, model={self.model_path})"

    def propose(self, image, labels=None, image_id=None):
        rgb = as_rgb_uint8(image)
        h, w = rgb.shape[:2]
        if min(h, w) < self.MIN_SIDE:
            return np.zeros((0, 4)), np.zeros(0)
        edges = self.sed.detectEdges(rgb.astype(np.float32) / 255.0)
        orientation = self.sed.computeOrientation(edges)
        edges = self.sed.edgesNms(edges, orientation)
        return edge_boxes_from_maps(edges, orientation, (h, w), **self.params)


register_method("EDGEBOXES", options=("model",) + tuple(EDGEBOXES_DEFAULTS))(EdgeBoxes)


# ======================================================================================
# BING
# ======================================================================================

BING_VARIANTS = ("MAXBGR", "HSV", "I")
_BING_SUFFIXES = (".idx.yml.gz", ".wS1.yml.gz", ".wS2.yml.gz")


def _bing_files(directory: Path, variant: str) -> List[Path]:
    return [directory / f"ObjNessB2W8{variant}{s}" for s in _BING_SUFFIXES]


def find_bing_models(model_dir=None, variants: Sequence[str] = ("MAXBGR",)) -> Path:
    """The directory holding the BING model files of ``variants``, or :class:`MissingModelError`."""
    if model_dir:
        tried = [Path(model_dir)]
    elif os.environ.get("STL_BING_MODELS"):
        tried = [Path(os.environ["STL_BING_MODELS"])]
    else:
        tried = [weights_dir() / "bing", shared_dir() / "models" / "bing"]
    for d in tried:
        if all(p.is_file() for v in variants for p in _bing_files(d, v)):
            return d
    need = ", ".join(p.name for v in variants for p in _bing_files(Path("."), v))
    raise MissingModelError(
        f"BING needs the trained objectness model files {need} (opencv_contrib "
        "modules/saliency/samples/ObjectnessTrainedModel); run `make models`, or set "
        "STL_BING_MODELS to their directory. Looked in: " + ", ".join(str(d) for d in tried))


class Bing(ProposalMethod):
    """BING objectness (Cheng et al. 2014), the paper's BING curve (Sec. 4.1, Fig. 3;
    BING+BING and BING+SELSEARCH in Tables 1-2). The paper used the MAXBGR model.

    ``cv2.saliency.ObjectnessBING`` (W=8, base 2, NSS 2; OpenCV keeps 250 boxes per
    size after its per-size NMS). OpenCV always tries all three colour-space models
    (MAXBGR, HSV, I) found in its training path and fuses them by rank; to run the
    MAXBGR model alone (``variants=("MAXBGR",)``, default) we point it at a private
    directory that links only the MAXBGR files (the other two are then skipped).
    ``variants="all"`` gives OpenCV's own three-model fusion.

    Scores: ``getobjectnessValues()`` are not calibrated objectness but rank codes
    ``(300 + i) * {1, 3, 5}[model]`` of OpenCV's ranking (lower = better; for MAXBGR
    alone simply 300 + i). The returned score is their negation, so the order is
    exactly OpenCV's. OpenCV's boxes are 1-based inclusive (minX+1, minY+1, maxX,
    maxY) and are converted to 0-based; exact duplicates (from clipping at the
    border) are dropped, keeping the best-ranked copy.

    Images smaller than BING's smallest window (8 px) give no boxes; grayscale is
    replicated to 3 channels. OpenCV's progress ``printf``s are silenced (``quiet``).
    """

    name = "BING"

    def __init__(self, model_dir=None, variants=("MAXBGR",), unique: bool = True, quiet: bool = True):
        if isinstance(variants, str):
            variants = BING_VARIANTS if variants.lower() == "all" else (variants,)
        variants = tuple(v.upper() for v in variants)
        bad = [v for v in variants if v not in BING_VARIANTS]
        if bad or not variants:
            raise ValueError(f"BING variants must be among {BING_VARIANTS}, got {variants}")
        self.variants = variants
        self.source_dir = find_bing_models(model_dir, variants)
        self.unique = unique
        self.quiet = quiet
        self._tmp = Path(tempfile.mkdtemp(prefix="stl-bing-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._tmp), True)
        for v in variants:
            for src in _bing_files(self.source_dir, v):
                dst = self._tmp / src.name
                try:
                    os.symlink(src.resolve(), dst)
                except OSError:
                    shutil.copyfile(src, dst)
        self._bing = cv2.saliency.ObjectnessBING.create()
        self._bing.setTrainingPath(str(self._tmp))
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"BING ({'+'.join(self.variants)}, models from {self.source_dir})"

    def propose(self, image, labels=None, image_id=None):
        rgb = as_rgb_uint8(image)
        h, w = rgb.shape[:2]
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        with self._lock, _quiet_native_output(self.quiet):
            ok, rects = self._bing.computeSaliency(bgr)
            values = np.asarray(self._bing.getobjectnessValues(), np.float64).reshape(-1)
        if not ok or rects is None or np.size(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        r = np.asarray(rects, np.float64).reshape(-1, 4)
        boxes = clip_boxes(r - 1.0, (h, w))  # 1-based inclusive -> 0-based inclusive
        if len(values) != len(boxes):  # defensive: never seen, keep OpenCV's order
            values = np.arange(len(boxes), dtype=np.float64)
        scores = -values
        if self.unique:
            keep = _unique_rows_first(boxes)
            boxes, scores = boxes[keep], scores[keep]
        return ranked(boxes, scores)


register_method("BING")(Bing)
