"""The timing claim of Sec. 4: seconds per image of every registered proposal method on the same
images, and network evaluations per image against the paper's "2K".

The paper: STL needs 2K network evaluations per image (K initial regions: each of the K regions
and each of the K - 1 merged regions of a hierarchy is masked once), 210 s/image on a CPU and 20
s/image on a GPU; MCG 25 s, EdgeBoxes 0.25 s, Selective Search 10 s, BING 0.2 s. Here, per image:

* K_s, the number of initial regions of each of the 4 segmentations (Sec. 3.2), and
  2K = sum_s 2 K_s, the paper's count;
* the masked forwards actually run (unique masked boxes: a box masked by several hierarchies, or
  by a region and a merge with the same box, is evaluated once), the crop forwards s_app costs on
  top (Eq. 4: the feature of each region's crop), and the full-image forward;
* the authors' procedure count 1 + H * sum_s 2 (2 K_s - 1) (no de-duplication; H hierarchies per
  segmentation: 1 for STL-WL, one per label for STL-CL).

Every classifier call is counted by :class:`CountingClassifier` (rows through ``forward`` and
``forward_masked``), so forwards/image are measured the same way for STL and the CNN baselines.
Methods that cannot run here (EdgeBoxes without its model file, MCG without precomputed
proposals, ...) are listed with the reason, never replaced.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .common import csv_text, markdown_table, save_figure, wrap, write_text

log = logging.getLogger(__name__)

#: methods that only read files written elsewhere (nothing to time); so do all ``*-PUBLISHED``
FILE_READERS = ("PRECOMPUTED",)


class CountingClassifier:
    """Wraps a :class:`stl.models.base.Classifier` and counts the images it evaluates."""

    def __init__(self, inner):
        self.inner = inner
        self.forwards = 0
        self.masked_forwards = 0
        self.calls = 0  # network calls (each a batch)
        self.seconds = 0.0

    def __getattr__(self, name):  # everything else (input_size, classes, mask_color, ...) from the inner one
        return getattr(self.inner, name)

    def forward(self, images, outputs=("prob", "feature")):
        t = time.perf_counter()
        out = self.inner.forward(images, outputs)
        self.seconds += time.perf_counter() - t
        self.forwards += len(images)
        self.calls += 1
        return out

    def forward_masked(self, images, index, boxes, outputs=("prob",), color=None):
        t = time.perf_counter()
        out = self.inner.forward_masked(images, index, boxes, outputs, color)
        self.seconds += time.perf_counter() - t
        self.masked_forwards += len(boxes)
        self.calls += 1
        return out

    def forward_crops(self, crops, outputs=("feature",), crop_mode="center_square"):
        t = time.perf_counter()
        out = self.inner.forward_crops(crops, outputs, crop_mode)
        self.seconds += time.perf_counter() - t
        self.forwards += len(crops)
        self.calls += 1
        return out

    def __call__(self, images, outputs=("prob", "feature"), batch_size: int = 64):
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        self.inner.check_input(images)
        parts: Dict[str, list] = {k: [] for k in outputs}
        for s in range(0, len(images), batch_size):
            o = self.forward(images[s:s + batch_size], outputs)
            for k in outputs:
                parts[k].append(o[k])
        return {k: np.concatenate(v) for k, v in parts.items()}

    def reset(self):
        self.forwards = self.masked_forwards = self.calls = 0
        self.seconds = 0.0

    @property
    def total(self) -> int:
        """Rows the network ran, the filler rows of short batches included."""
        return self.forwards + self.masked_forwards


@dataclass
class StlCounts:
    """Network evaluations of STL on one image."""

    k_per_segmentation: List[int]
    hierarchies: int  # per segmentation (1 for STL-WL, #labels for STL-CL)
    masked: int  # unique masked images evaluated
    crops: int  # unique crops evaluated (s_app)
    full: int  # full-image forwards (1)
    total: int  # ImageContext.num_forwards
    windows_total: int  # regions formed over all hierarchies (before NMS)

    @property
    def two_k(self) -> int:
        return 2 * sum(self.k_per_segmentation)

    @property
    def authors_count(self) -> int:
        """Forwards of the authors' procedure: every region of every hierarchy masked and cropped once."""
        return 1 + 2 * self.hierarchies * sum(2 * k - 1 for k in self.k_per_segmentation if k > 0)


def stl_counts(ctx, hierarchies: int) -> StlCounts:
    ks = [int(s.keep.sum()) for s in ctx.segmentations]
    return StlCounts(ks, hierarchies, len(ctx.masked_prob), len(ctx.crop_feature),
                     1 if ctx.prob_full is not None else 0, int(ctx.num_forwards),
                     hierarchies * sum(2 * k - 1 for k in ks if k > 0))


@dataclass
class MethodTiming:
    method: str
    status: str  # "ok" or "not run: <reason>"
    seconds: List[float] = field(default_factory=list)  # per image
    #: classifier evaluations per image: for STL the context's count (filler rows excluded), for the
    #: other methods the rows the counting wrapper saw
    forwards: List[int] = field(default_factory=list)
    windows: List[int] = field(default_factory=list)
    stl: List[StlCounts] = field(default_factory=list)
    uses_classifier: bool = False
    #: rows the network ran per image (counted by the wrapper), filler rows of short batches included
    #: (STL fills every forward to the batch size, ``Classifier.pad_batches``)
    rows: List[int] = field(default_factory=list)
    calls: List[int] = field(default_factory=list)  # network calls (batches) per image

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def seconds_per_image(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else float("nan")


def paper_seconds() -> Dict[str, object]:
    from ..evaluation import load_paper_reference

    rt = load_paper_reference()["tables"]["text"]["runtime_seconds_per_image"]
    return {"STL-CL": f"{rt['STL_cpu']} (CPU) / {rt['STL_gpu']} (GPU)",
            "STL-WL": f"{rt['STL_cpu']} (CPU) / {rt['STL_gpu']} (GPU)",
            "MCG": rt["MCG"], "EDGEBOXES": rt["EDGEBOXES"], "SELSEARCH": rt["SELSEARCH"], "BING": rt["BING"]}


def time_methods(records: Sequence, methods: Sequence[str], classifier_factory, progress: bool = True,
                 config=None) -> List[MethodTiming]:
    """Time each method on the same images (``records``: dataset records). STL-CL gets each
    image's labels; methods that take a ``config`` (STL) get ``config`` (an STLConfig; default:
    the authors' profile). The classifier is warmed up with one forward before any timing."""
    from ..progress import progress_bar

    from ..core.config import DEFAULT
    from ..core.localization import ImageContext, localize_batch
    from ..proposals import build_run_method, method_traits

    images = [r.read() for r in records]
    counter: Optional[CountingClassifier] = None

    def get_counter():
        nonlocal counter
        if counter is None:
            clf = classifier_factory()
            h, w = clf.input_size
            clf.forward(np.zeros((1, h, w, 3), np.float32), ("prob",))  # warm-up, not timed
            counter = CountingClassifier(clf)
        return counter

    results = []
    for name in methods:
        t = MethodTiming(name, "ok")
        results.append(t)
        if name.upper() in FILE_READERS or name.upper().endswith("-PUBLISHED"):
            t.status = "not run: reads proposals computed elsewhere (nothing to time)"
            continue
        try:  # the registry says what the method takes (classifier, config)
            uses = method_traits(name)["uses_classifier"]
            method = build_run_method(name, get_counter, config or DEFAULT)
            t.uses_classifier = uses
        except Exception as e:  # noqa: BLE001  (missing model file / proposal directory)
            t.status = f"not run: {type(e).__name__}: {e}"
            log.warning("timing: %s cannot be built: %s", name, e)
            continue
        bar = progress_bar(total=len(images), desc=f"timing {name}", unit="img", enabled=progress)
        try:
            for rec, im in zip(records, images):
                lab = rec.labels if getattr(method, "needs_label", False) else None
                if counter is not None:
                    counter.reset()
                t0 = time.perf_counter()
                if name.upper() in ("STL-CL", "STL-WL"):
                    ctx = ImageContext(im, method.classifier, method.config)
                    w = localize_batch([ctx], method.classifier, [lab], method.config)[0]
                    n_win = len(w)
                    t.stl.append(stl_counts(ctx, len(lab) if lab else 1))
                elif getattr(method, "needs_image_id", False):
                    n_win = len(method.propose(im, lab, image_id=rec.image_id)[0])
                else:
                    n_win = len(method.propose(im, lab)[0])
                t.seconds.append(time.perf_counter() - t0)
                t.windows.append(n_win)
                rows = counter.total if (uses and counter is not None) else 0
                t.rows.append(rows)
                t.calls.append(counter.calls if (uses and counter is not None) else 0)
                t.forwards.append(t.stl[-1].total if name.upper() in ("STL-CL", "STL-WL") else rows)
                bar.update(1)
        except Exception as e:  # noqa: BLE001
            t.status = f"not run: {type(e).__name__}: {e}"
            log.warning("timing: %s failed: %s", name, e)
        finally:
            bar.close()
    return results


def timing_rows(results: Sequence[MethodTiming]) -> List[dict]:
    paper = paper_seconds()
    rows = []
    for t in results:
        r = {"method": t.method, "status": t.status, "images": len(t.seconds),
             "seconds_per_image": t.seconds_per_image, "paper_seconds_per_image": paper.get(t.method, "-"),
             "windows_per_image": float(np.mean(t.windows)) if t.windows else float("nan"),
             "forwards_per_image": float(np.mean(t.forwards)) if (t.forwards and t.uses_classifier) else float("nan")}
        if t.stl:
            r.update({
                "K_per_segmentation": " / ".join(f"{np.mean([c.k_per_segmentation[s] for c in t.stl]):.1f}"
                                                 for s in range(len(t.stl[0].k_per_segmentation))),
                "2K": float(np.mean([c.two_k for c in t.stl])),
                "masked_forwards": float(np.mean([c.masked for c in t.stl])),
                "crop_forwards": float(np.mean([c.crops for c in t.stl])),
                "full_forwards": float(np.mean([c.full for c in t.stl])),
                "authors_forwards": float(np.mean([c.authors_count for c in t.stl])),
                "filler_rows": float(np.mean(t.rows) - np.mean(t.forwards)) if t.rows else float("nan"),
                "paper_forwards": "2K (+ crops for s_app)",
            })
        rows.append(r)
    return rows


TIMING_COLUMNS = ["method", "status", "images", "seconds_per_image", "paper_seconds_per_image", "windows_per_image",
                  "forwards_per_image", "K_per_segmentation", "2K", "masked_forwards", "crop_forwards",
                  "full_forwards", "authors_forwards", "filler_rows", "paper_forwards"]


def plot_timing(rows: Sequence[dict], title: str = ""):
    from matplotlib.figure import Figure

    ok = [r for r in rows if r["status"] == "ok"]
    paper = paper_seconds()
    fig = Figure(figsize=(10, 4.4))
    ax = fig.subplots()
    names = [r["method"] for r in ok] + [r["method"] for r in rows if r["status"] != "ok"]
    x = np.arange(len(names))
    floor = 1e-4
    ours = [max(next((r["seconds_per_image"] for r in ok if r["method"] == m), np.nan), floor) for m in names]

    def paper_val(m):
        v = paper.get(m)
        if isinstance(v, str):
            return float(v.split()[0])
        return float(v) if v is not None else np.nan

    ax.bar(x - 0.2, ours, 0.4, label="ours (this machine)", color="tab:blue")
    ax.bar(x + 0.2, [paper_val(m) for m in names], 0.4, label="paper (STL: CPU)", color="tab:orange")
    for i, m in enumerate(names):
        if not np.isfinite(ours[i]):
            ax.text(i - 0.2, floor * 1.3, "not run", rotation=90, fontsize=7, ha="center", va="bottom")
        else:
            ax.text(i - 0.2, ours[i] * 1.15, f"{ours[i]:.2g}", fontsize=6.5, ha="center", va="bottom")
    ax.set_yscale("log")
    ax.set_ylim(floor, max([v for v in ours + [paper_val(m) for m in names] if np.isfinite(v)] + [1]) * 3)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("seconds per image (log)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=8)
    fig.subplots_adjust(bottom=0.22, top=0.85)
    return fig


def write_timing(results: Sequence[MethodTiming], out, data_description: str, device: str, model: str) -> List[Path]:
    out = Path(out)
    rows = timing_rows(results)
    n = max([r["images"] for r in rows] + [0])
    caption = (f"Seconds and classifier evaluations per image on the same {n} image{'s' if n != 1 else ''} "
               f"({data_description}); "
               f"classifier {model} on {device}; every classifier call counted. Paper: STL 210 s/image on a CPU, "
               "20 s on a GPU (CaffeNet, 2014 hardware), 2K network evaluations per image.")
    disp = []
    for r in rows:
        d = dict(r)
        d["seconds_per_image"] = "-" if np.isnan(r["seconds_per_image"]) else f"{r['seconds_per_image']:.3g}"
        disp.append(d)
    cols = ["method", "status", "images", "seconds_per_image", "paper_seconds_per_image", "windows_per_image",
            "forwards_per_image"]
    lines = ["# Timing: seconds and network evaluations per image\n", caption, "",
             markdown_table(disp, cols, ["method", "status", "images", "s/image (ours)", "s/image (paper)",
                                         "windows/image", "classifier forwards/image"],
                            {"windows_per_image": ".0f", "forwards_per_image": ".0f"})]
    stl = [r for r in rows if "2K" in r]
    if stl:
        lines += ["", "### STL: forwards per image against the paper's 2K", "",
                  "K_s = initial regions of each of the 4 segmentations (k=50 HSV, k=50 Lab, k=100 HSV, k=100 Lab); "
                  "2K = sum_s 2 K_s (the paper's count); masked = unique masked images evaluated (Eq. 1); crops = "
                  "unique crops evaluated for s_app (Eq. 4), on top of the 2K; the authors' procedure evaluates "
                  "1 + H sum_s 2 (2 K_s - 1) (every region of every hierarchy masked and cropped, no reuse; "
                  "H = hierarchies per segmentation); filler = rows run only to fill a short batch to the batch size "
                  "(every forward holds exactly the batch size, so a window never depends on its batch).", "",
                  markdown_table(stl, ["method", "K_per_segmentation", "2K", "masked_forwards", "crop_forwards",
                                       "full_forwards", "forwards_per_image", "filler_rows", "authors_forwards"],
                                 ["method", "K_s (mean)", "2K (paper)", "masked (ours)", "crops for s_app (ours)",
                                  "full image", "total (ours)", "filler rows", "authors' procedure"],
                                 {c: ".1f" for c in ("2K", "masked_forwards", "crop_forwards", "full_forwards",
                                                     "forwards_per_image", "filler_rows", "authors_forwards")})]
    files = [write_text(out / "timing.md", "\n".join(lines) + "\n"),
             write_text(out / "timing.csv", csv_text(rows, TIMING_COLUMNS))]
    files += save_figure(plot_timing(rows, wrap(caption, 140)), out, "timing")
    return files
