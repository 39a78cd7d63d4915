"""Speed benchmarks: the STL engine (``stl bench`` / ``make bench``) and the cost drivers of the
detector experiments (``stl bench --detection``, :func:`run_detection_bench`).

Measures, in one run on the same machine:

* the classifier's peak forward throughput over batch sizes (random inputs);
* the engine: STL-WL on N real images, several images sharing classifier batches,
  requests de-duplicated, at the chosen precision -> seconds per image (median, p90),
  forward passes per image, achieved forward throughput, efficiency = achieved / peak;
* reference mode, the authors' procedure (one image, one window, one forward at a
  time, fp32, no de-duplication, whole forwards) on the first few images -> speed-up =
  reference seconds per image / the engine's seconds on the same images (its seconds per
  forward times its forwards on them: images of a chunk share batches);
* agreement of the engine's windows with reference mode's (fp32: identical lists;
  all precisions: share of images whose top-10 windows match reference mode's top-10 as a
  set at IoU >= 0.9, and the mean share of top-10 windows matched).
"""
from __future__ import annotations

import csv
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from ..progress import progress_bar

from ..core.boxes import iou_matrix
from ..core.config import DEFAULT, STLConfig
from ..core.localization import ImageContext, localize_batch
from ..models.base import FEATURE, PROB
from ..models.spec import ModelSpec
from ..profiling import STAGES, Stages

log = logging.getLogger(__name__)


def benchmark_images(n: int, shared: Optional[Path] = None):
    """The first n real ILSVRC val images of ../shared (file-name order), else the bundled sample:
    ids, images, image-level labels (wnids, what STL-CL is given), description."""
    from ..data import get_dataset

    if shared is not None:
        root = Path(shared) / "data" / "ilsvrc2012-val-227"
        if (root / "val").is_dir():
            ds = get_dataset("ilsvrc2012_val", root=root)
            recs = [ds.record(i) for i in sorted(ds.image_ids)[:n]]
            data = f"{root / 'val'} (real ILSVRC-2012 val)"
            return [r.image_id for r in recs], [r.read() for r in recs], [list(r.labels) for r in recs], data
    recs = list(get_dataset("sample", limit=n))
    return ([r.image_id for r in recs], [r.read() for r in recs], [list(r.labels) for r in recs],
            "bundled sample (scikit-image photos)")


def peak_throughput(classifier, batch_sizes=(1, 8, 16, 32, 64, 128), seconds: float = 3.0):
    """Forward throughput (images/s) of the classifier at each batch size; returns {bs: img/s}."""
    h, w = classifier.input_size
    rng = np.random.default_rng(0)
    out = {}
    for bs in batch_sizes:
        x = rng.uniform(0, 255, (bs, h, w, 3)).astype(np.float32)
        classifier.forward(x, (PROB, FEATURE))  # warm-up
        n, t0 = 0, time.perf_counter()
        while True:
            classifier.forward(x, (PROB, FEATURE))
            n += bs
            if time.perf_counter() - t0 > seconds:
                break
        out[bs] = n / (time.perf_counter() - t0)
    return out


def top_windows_matched(a, b, top: int = 10, iou: float = 0.9) -> float:
    """Share of a's top-``top`` windows matched one-to-one (greedily, highest IoU first) to
    distinct windows among b's top-``top`` at IoU >= ``iou``; order within the top is ignored."""
    n = min(top, len(a.boxes))
    if n == 0:
        return float(len(b.boxes) == 0)
    if len(b.boxes) == 0:
        return 0.0
    m = iou_matrix(a.boxes[:n], b.boxes[:top])
    matched = 0
    while True:
        i, j = np.unravel_index(int(np.argmax(m)), m.shape)
        if m[i, j] < iou:
            break
        matched += 1
        m[i, :] = -1
        m[:, j] = -1
    return matched / n


def windows_agree(a, b, top: int = 10, iou: float = 0.9) -> bool:
    """The top-``top`` windows of a and b are the same set up to IoU >= ``iou`` (each of a's
    matched to a distinct one of b's, and as many of each; order within the top ignored)."""
    return min(top, len(a.boxes)) == min(top, len(b.boxes)) and top_windows_matched(a, b, top, iou) == 1.0


class _TimedClassifier:
    """Delegates to a classifier and adds up the seconds spent in its forward calls."""

    def __init__(self, classifier):
        self._clf = classifier
        self.seconds = 0.0
        self.rows = 0  # items the network ran, filler rows of short batches included

    def __getattr__(self, name):
        return getattr(self._clf, name)

    def _timed(self, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0

    def forward(self, images, outputs):
        self.rows += len(images)
        return self._timed(self._clf.forward, images, outputs)

    def forward_masked(self, images, index, boxes, outputs, color=None):
        self.rows += len(index)
        return self._timed(self._clf.forward_masked, images, index, boxes, outputs, color)

    def forward_crops(self, crops, outputs, crop_mode="center_square"):
        # the wrapped classifier's own forward_crops, with its forward timed through self.forward
        return type(self._clf).forward_crops(self, crops, outputs, crop_mode)

    def __call__(self, images, outputs, batch_size=64):
        return self._timed(self._clf, images, outputs, batch_size)


@dataclass
class BenchResult:
    model: str
    device: str
    precision: str
    images: int
    images_per_chunk: int
    batch_size: int
    data: str
    incremental_masking: Optional[bool] = None
    seconds_per_image_median: float = 0.0
    seconds_per_image_p90: float = 0.0
    images_per_second: float = 0.0
    forwards_per_image: float = 0.0
    achieved_throughput: float = 0.0
    peak_throughput: float = 0.0
    peak_batch_size: int = 0
    efficiency: float = 0.0
    seconds_outside_classifier_per_image: float = 0.0
    reference_images: int = 0
    reference_seconds_per_image: float = float("nan")
    engine_seconds_per_reference_image: float = float("nan")
    speedup_vs_reference: float = float("nan")
    reference_agreement: float = float("nan")
    reference_top10_matched: float = float("nan")
    reference_identical: Optional[bool] = None
    #: seconds per image in each stage of STL (:data:`stl.profiling.STAGES`), engine run only
    stage_seconds_per_image: dict = field(default_factory=dict)
    #: forwards per image of each kind (full image, masked, crop)
    forwards_per_image_by_kind: dict = field(default_factory=dict)
    #: rows run per image only to fill a short batch to the batch size (``Classifier.pad_batches``)
    filler_rows_per_image: float = 0.0
    #: STL-CL (the images' labels) run after STL-WL on the same ImageContexts: the forwards it
    #: adds and its seconds per image (NaN: not run)
    cl_extra_forwards_per_image: float = float("nan")
    cl_seconds_per_image: float = float("nan")
    load_average: Optional[tuple] = None
    machine: str = field(default_factory=lambda: f"{platform.node()} {platform.processor() or platform.machine()}")

    def rows(self):
        stage_rows = [(f"  stage: {k} (s/image)", f"{v:.2f}") for k, v in self.stage_seconds_per_image.items()]
        kind_rows = [(f"  forwards per image: {k}", f"{v:.0f}") for k, v in self.forwards_per_image_by_kind.items()]
        filler = self.filler_rows_per_image
        kind_rows.append(("  filler rows per image (short batches filled to the batch size)",
                          f"{filler:.0f} ({filler / max(self.forwards_per_image, 1):.1%} of the forwards)"))
        cl_rows = [] if np.isnan(self.cl_extra_forwards_per_image) else [
            ("STL-CL after STL-WL, shared forwards: forwards added per image",
             f"{self.cl_extra_forwards_per_image:.0f}"),
            ("STL-CL + STL-WL forwards / STL-WL forwards",
             f"{(self.forwards_per_image + self.cl_extra_forwards_per_image) / self.forwards_per_image:.2f}"),
            ("STL-CL after STL-WL, seconds per image", f"{self.cl_seconds_per_image:.2f}")]
        return self._rows() + stage_rows + kind_rows + cl_rows + [
            ("load average (1, 5, 15 min) at the end", "n/a" if self.load_average is None
             else ", ".join(f"{v:.2f}" for v in self.load_average))]

    def _rows(self):
        return [
            ("images (data)", f"{self.images} ({self.data})"),
            ("model / device / precision", f"{self.model} / {self.device} / {self.precision}"),
            ("images per chunk, batch size", f"{self.images_per_chunk}, {self.batch_size}"),
            ("incremental masked forwards", "n/a (engine has none)" if self.incremental_masking is None
             else str(self.incremental_masking)),
            ("seconds per image, median", f"{self.seconds_per_image_median:.2f}"),
            ("seconds per image, p90", f"{self.seconds_per_image_p90:.2f}"),
            ("forward passes per image", f"{self.forwards_per_image:.0f}"),
            ("achieved forward throughput (img/s)", f"{self.achieved_throughput:.1f}"),
            (f"peak throughput (img/s, batch {self.peak_batch_size})", f"{self.peak_throughput:.1f}"),
            ("efficiency (achieved / peak; > 100%: cheaper masked forwards)", f"{self.efficiency:.0%}"),
            ("seconds per image outside the classifier", f"{self.seconds_outside_classifier_per_image:.2f}"),
            (f"reference mode s/image ({self.reference_images} images, fp32, batch 1)",
             f"{self.reference_seconds_per_image:.2f}"),
            ("engine s/image on the same images (s/forward x their forwards)",
             f"{self.engine_seconds_per_reference_image:.2f}"),
            ("speed-up over reference mode", f"{self.speedup_vs_reference:.1f}x"),
            ("top-10 windows matched to reference's (IoU>=0.9), mean", f"{self.reference_top10_matched:.0%}"),
            ("images whose top-10 windows all match reference's", f"{self.reference_agreement:.0%}"
             + ("" if self.reference_identical is None else
                f"; identical window lists: {self.reference_identical}")),
        ]


def run_benchmark(model: ModelSpec = ModelSpec(), num_images=8, images_per_chunk=16, batch_size=None,
                  reference_images=2, shared=None, config: STLConfig = DEFAULT, channels_last=True,
                  class_level: bool = True) -> BenchResult:
    """STL-WL on ``num_images`` images with ``model`` (``model.incremental``: masked forwards
    recompute only what the box changes), against reference mode on ``reference_images``;
    ``class_level``: then STL-CL of the same chunks on the same contexts (the forwards the two
    variants share are computed once)."""
    engine, precision = model.engine, model.precision
    clf = model.build(mean_mode=config.caffe_mean,
                      **({"channels_last": channels_last} if engine == "torch" else {}))
    if hasattr(clf, "incremental_masking"):
        clf.incremental_masking = bool(model.incremental)
    ids, images, labels, data = benchmark_images(num_images, shared)
    log.info("benchmark: %s on %d images of %s", clf.describe(), len(images), data)

    sizes = sorted({1, 8, 16, 32, 64, 128, int(getattr(clf, "preferred_batch_size", 32))})
    peaks = peak_throughput(clf, tuple(sizes))
    best_bs = max(peaks, key=peaks.get)
    log.info("peak throughput: %s", ", ".join(f"bs {k}: {v:.1f} img/s" for k, v in peaks.items()))
    bs = batch_size or best_bs
    cfg = config.replace(batch_size=bs)

    timed = _TimedClassifier(clf)
    per_image, forwards, engine_windows = [], 0, []
    chunks = [images[s:s + images_per_chunk] for s in range(0, len(images), images_per_chunk)]
    kept = []  # the chunks' contexts, for STL-CL after STL-WL
    t_all = time.perf_counter()
    with progress_bar(total=len(images), desc=f"STL-WL engine ({precision})", unit="img") as bar, Stages() as stages:
        for chunk in chunks:
            t0 = time.perf_counter()
            contexts = [ImageContext(im, timed, cfg) for im in chunk]
            wins = localize_batch(contexts, timed, None, cfg)
            dt = time.perf_counter() - t0
            per_image += [dt / len(chunk)] * len(chunk)
            forwards += sum(w.num_forwards for w in wins)
            engine_windows += wins
            kept.append(contexts if class_level else None)
            bar.update(len(chunk))
    total = time.perf_counter() - t_all
    wl_rows = timed.rows

    res = BenchResult(model=clf.name, device=clf.device, precision=precision, images=len(images),
                      images_per_chunk=images_per_chunk, batch_size=bs, data=data,
                      incremental_masking=getattr(clf, "incremental_masking", None))
    res.seconds_per_image_median = float(np.median(per_image))
    res.seconds_per_image_p90 = float(np.percentile(per_image, 90))
    res.images_per_second = len(images) / total
    res.forwards_per_image = forwards / len(images)
    res.filler_rows_per_image = (wl_rows - forwards) / len(images)
    res.achieved_throughput = forwards / total
    res.peak_throughput = peaks[best_bs]
    res.peak_batch_size = best_bs
    res.efficiency = res.achieved_throughput / res.peak_throughput
    res.seconds_outside_classifier_per_image = (total - timed.seconds) / len(images)
    n_img = len(images)
    res.stage_seconds_per_image = {k: v / n_img for k, v in stages.as_dict().items() if k in STAGES and v > 0}
    res.forwards_per_image_by_kind = {k.replace(" forwards", ""): stages.counts[k] / n_img
                                      for k in ("full-image forwards", "masked forwards", "crop forwards")}
    if class_level:
        extra, t0, k = 0, time.perf_counter(), 0
        for contexts in progress_bar(kept, desc="STL-CL after STL-WL (shared forwards)", unit="chunk"):
            before = [c.num_forwards for c in contexts]
            localize_batch(contexts, timed, labels[k:k + len(contexts)], cfg)
            extra += sum(c.num_forwards - b for c, b in zip(contexts, before))
            k += len(contexts)
        res.cl_seconds_per_image = (time.perf_counter() - t0) / n_img
        res.cl_extra_forwards_per_image = extra / n_img
    del kept
    res.load_average = os.getloadavg() if hasattr(os, "getloadavg") else None

    if reference_images > 0:
        # the authors' procedure: plain fp32 forwards of whole images (no incremental masking,
        # default memory layout)
        ref_clf = model.replace(precision="fp32").build(
            mean_mode=config.caffe_mean, **({"channels_last": False} if engine == "torch" else {}))
        if hasattr(ref_clf, "incremental_masking"):
            ref_clf.incremental_masking = False
        ref_cfg = config.replace(batch_size=1)
        n = min(reference_images, len(images))
        ref_windows, t0 = [], time.perf_counter()
        for im in progress_bar(images[:n], desc="reference mode (fp32, batch 1)", unit="img"):
            ref_windows.append(localize_batch([im], ref_clf, None, ref_cfg, deduplicate=False)[0])
        res.reference_images = n
        res.reference_seconds_per_image = (time.perf_counter() - t0) / n
        # The engine's time on the same images: its seconds per forward (images of a chunk share
        # batches, so per-image times are not separable) times its forwards on those images.
        engine_forwards = float(np.mean([w.num_forwards for w in engine_windows[:n]]))
        res.engine_seconds_per_reference_image = total / forwards * engine_forwards
        res.speedup_vs_reference = res.reference_seconds_per_image / res.engine_seconds_per_reference_image
        res.reference_agreement = float(np.mean([windows_agree(a, b) for a, b in zip(engine_windows, ref_windows)]))
        res.reference_top10_matched = float(np.mean([top_windows_matched(a, b)
                                                     for a, b in zip(engine_windows, ref_windows)]))
        if precision == "fp32":
            res.reference_identical = all(
                len(a) == len(b) and np.array_equal(a.boxes, b.boxes) and np.allclose(a.scores, b.scores, atol=1e-5)
                for a, b in zip(engine_windows, ref_windows))
    return res


def append_row(path: Path, row: dict) -> None:
    """Append ``row`` to a CSV; rows written before a column was added keep it empty."""
    from ..io import atomic_path

    rows, fields = [], list(row)
    if path.is_file():
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = list(reader.fieldnames or []) + [k for k in row if k not in (reader.fieldnames or [])]
    rows.append(row)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)


# ----------------------------------------------------------------------------- detector experiments
def run_detection_bench(model: ModelSpec = ModelSpec(), windows: int = 256, batch_size: int = 64,
                        svm_examples: int = 5000, config_path=None, out=None, config: STLConfig = DEFAULT) -> dict:
    """Measure window-feature extraction and one SVM fit on this machine and project the
    paper-size run time of Table 1 + Table 2 + Fig. 6 (:mod:`stl.detection.bench`)."""
    from .. import resources
    from ..data import get_dataset, shared_dir
    from ..detection.bench import measure_features, measure_svm, project
    from ..detection.config import DetectionConfig

    clf = model.build(mean_mode=config.caffe_mean)
    root = shared_dir() / "data" / "ilsvrc2012-val-227"
    ds = get_dataset("ilsvrc2012_val", root=root, limit=16)
    images = [r.read() for r in ds]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    feat = measure_features(clf, images, windows, batch_size)
    dim = int(clf(np.zeros((1,) + tuple(clf.input_size) + (3,), np.float32), outputs=("feature",))["feature"].shape[1])
    svm = measure_svm(svm_examples, dim)
    fit_s = float(np.mean(list(svm["fit_seconds_by_C"].values())))
    cfg = DetectionConfig.from_json(config_path or resources.config("detection_ilsvrc200"))
    proj = project(cfg, feat["windows_per_s"], fit_s, dim)
    res = {"classifier": clf.describe(), "feature_dim": dim, "threads": _threads(), "load_average": load,
           "features": feat, "svm": svm, "projection": proj}
    if out:
        from ..io import write_json_atomic

        write_json_atomic(out, res)
    return res


def _threads() -> int:
    try:
        import torch

        return torch.get_num_threads()
    except Exception:  # pragma: no cover
        return 0
