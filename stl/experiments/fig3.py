"""Figure 3 of the paper: mean recall and mean precision vs number of windows,
ILSVRC-2012 val and PASCAL VOC 2007 test, with the published curves overlaid.

    stl fig3 [--model efficientnet_lite0] [--engine torch] [--device cpu]
             [--ilsvrc ROOT] [--voc ROOT] [--limit N] [--methods A,B,...] [--out results/fig3]

(:mod:`stl.cli.fig3` turns the command line into the arguments of :func:`run_fig3`.)

Data: ``--ilsvrc`` / ``--voc`` (or $STL_ILSVRC / $STL_VOC, or the data/ilsvrc and
data/VOCdevkit links). With none of them configured it uses the real sample in
``../shared`` ($STL_SHARED: 650 ILSVRC val images in the WSOL layout, 11 VOC 2007
test images) if present, else the bundled sample (stl/resources/sample); the output and
the table headers say which. ILSVRC defaults to the paper's 200 random classes
(``--ilsvrc-subset all`` for 1000).

Runs are stored (resumable) under ``<out>/runs/<dataset>/``; a rerun only
computes what is missing. STL costs ~15-40 s per image on a CPU with
EfficientNet-Lite0: use ``--limit`` for quick runs (CI uses a handful of images).

Outputs in ``--out``: ``fig3_<dataset>.png/.pdf`` (recall and precision panels;
ours solid, the paper's dashed in the same colour), ``fig3_table.md/.csv`` (ours
vs paper at N = 1, 3, 10, 100, 1000), ``fig3_methods.md/.csv`` (every method at
N = 1..10, with WHOLE-IMAGE and CENTER) and ``fig3_curves.json``.

A method that cannot be built (e.g. EdgeBoxes without its model file) is
skipped with a loud warning; nothing is substituted for it. On PASCAL VOC 2007 test,
EdgeBoxes and MCG can also be drawn from the proposals Hosang et al. published
(``EDGEBOXES-PUBLISHED``, ``MCG-PUBLISHED``; ``make data`` fetches them): listed by
default once their files are present, compared with the paper's EDGEBOXES / MCG curves,
labelled "boxes published by Hosang et al.", skipped on other datasets.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..core.config import STLConfig
from ..models.spec import ModelSpec

DEFAULT_METHODS = ("STL-CL", "STL-WL", "SELSEARCH", "EDGEBOXES", "BING", "WHOLE-IMAGE", "CENTER")

#: fixed colours, so a method has the same colour in every panel (ours solid, paper dashed)
COLORS = {
    "STL-CL": "#d62728", "STL-WL": "#1f77b4", "SELSEARCH": "#2ca02c", "EDGEBOXES": "#e377c2", "BING": "#17becf",
    "MCG": "#8c564b", "SLIDING-WINDOW": "#7f7f7f", "STL-WL+MCG": "#9467bd", "STL-WL+EDGEBOXES": "#ff7f0e",
    "WHOLE-IMAGE": "#000000", "CENTER": "#bcbd22",
}
_EXTRA_COLORS = ["#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d"]


#: methods drawn from the proposals Hosang et al. published for PASCAL VOC 2007 test (``make data``),
#: listed by default when their files are present; they exist for VOC 2007 test only
PUBLISHED_METHODS = ("EDGEBOXES-PUBLISHED", "MCG-PUBLISHED")


def label_of(method: str) -> str:
    """Legend label: published proposals say whose boxes they are."""
    from ..evaluation.reference import PUBLISHED_SUFFIX

    if method.endswith(PUBLISHED_SUFFIX):
        return f"{method[:-len(PUBLISHED_SUFFIX)]} (boxes published by Hosang et al.)"
    return method


def color_of(method: str, assigned: Dict[str, str]) -> str:
    from ..evaluation.reference import paper_method

    method = paper_method(method)
    if method in COLORS:
        return COLORS[method]
    if method not in assigned:
        assigned[method] = _EXTRA_COLORS[len(assigned) % len(_EXTRA_COLORS)]
    return assigned[method]


# ----------------------------------------------------------------------------- plotting
def plot_fig3(ours: Dict[str, dict], paper: Dict[str, dict], title: str = "", paper_label: str = "paper"):
    """Two panels (mean recall, mean precision vs number of windows, log x).

    ``ours`` and ``paper`` map a method name to ``{"recall": {"num_windows": [...],
    "values": [...]}, "precision": {...}}`` (the format of
    :func:`stl.evaluation.paper_curves`). Ours are solid lines labelled with the
    method name, the paper's dashed, same colour, labelled ``"<method> (paper)"``.
    Returns the matplotlib Figure (no pyplot state is touched).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.6))
    axes = fig.subplots(1, 2)
    assigned: Dict[str, str] = {}
    for ax, metric in zip(axes, ("recall", "precision")):
        for method, curves in paper.items():
            c = curves.get(metric)
            if c is None:
                continue
            ax.plot(np.asarray(c["num_windows"]), np.asarray(c["values"]), linestyle="--", linewidth=1.4,
                    color=color_of(method, assigned), label=f"{method} ({paper_label})", alpha=0.85)
        for method, curves in ours.items():
            c = curves.get(metric)
            if c is None:
                continue
            ax.plot(np.asarray(c["num_windows"]), np.asarray(c["values"]), linestyle="-", linewidth=2.2,
                    marker="o", markersize=3, color=color_of(method, assigned), label=label_of(method))
        ax.set_xscale("log")
        ax.set_xlabel("number of windows per image (top N)")
        ax.set_ylabel(f"mean {metric} (over classes)")
        ax.set_ylim(0, 1)
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", alpha=0.12)
        ax.set_title(f"mean {metric}, IoU >= 0.5")
    handles, labels = axes[0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: (labels[i].replace(f" ({paper_label})", ""),
                                                      labels[i].endswith(f"({paper_label})")))
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="center right", fontsize=7.5,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=9.5)
    fig.subplots_adjust(left=0.06, right=0.80, bottom=0.12, top=0.84, wspace=0.22)
    return fig


def curves_of(result) -> dict:
    """Our EvalResult in plot_fig3's format."""
    ns = np.asarray(result.num_windows)
    return {"recall": {"num_windows": ns, "values": np.asarray(result.mean_recall)},
            "precision": {"num_windows": ns, "values": np.asarray(result.mean_precision)}}


# ----------------------------------------------------------------------------- data selection
@dataclass
class DataChoice:
    name: str  # dataset registry name
    root: Optional[Path]
    subset: Optional[str]
    description: str  # says which data this is


def choose_data(ilsvrc=None, voc=None, ilsvrc_subset: str = "200rnd") -> List[DataChoice]:
    """The datasets of the figure: the roots given (or configured by $STL_ILSVRC / $STL_VOC /
    data links), else the real sample in ../shared, else the bundled sample
    (:func:`stl.data.choose_root`, the commands' one rule)."""
    from ..data import DatasetError, choose_root, root_configured

    names = {"ilsvrc": ("ilsvrc2012_val", ilsvrc_subset), "voc": ("voc2007_test", None)}
    flags = {"ilsvrc": ilsvrc, "voc": voc}
    configured = [k for k in names if root_configured(k, flags[k])]
    try:  # configured roots only, if any is; else each shared sample present
        roots = [choose_root(k, flags[k]) for k in (configured or names)]
    except DatasetError as e:
        raise SystemExit(f"fig3: {e}")
    chosen = [DataChoice(names[r.kind][0], r.path, names[r.kind][1], r.description) for r in roots if r is not None]
    if chosen:
        return chosen
    return [DataChoice("sample", None, None,
                       "the bundled sample (stl/resources/sample: a few scikit-image photos, hand-drawn boxes) -- "
                       "no ILSVRC / VOC data configured and no ../shared")]


def choose_methods(spec: Optional[str]) -> List[str]:
    from ..evaluation import load_paper_reference
    from ..proposals import available_methods

    if spec:
        return [m.strip().upper() for m in spec.split(",") if m.strip()]
    methods = list(DEFAULT_METHODS)
    methods += [m for m in PUBLISHED_METHODS if published_available(m)]
    registered = set(available_methods())
    in_paper = set(load_paper_reference()["method_names"].values())
    methods += sorted(m for m in registered if m in in_paper and m not in methods)
    return methods


def published_available(method: str) -> bool:
    """Are Hosang et al.'s files of ``X-PUBLISHED`` installed (``make data``)?"""
    from ..evaluation.reference import paper_method
    from ..proposals.precomputed import hosang_dir

    try:
        hosang_dir(paper_method(method))
        return True
    except (FileNotFoundError, KeyError):
        return False


def warn(msg: str):
    bar = "!" * 78
    print(f"\n{bar}\nWARNING: {msg}\n{bar}\n", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- main
def run_fig3(model: ModelSpec = ModelSpec(), config: Optional[STLConfig] = None,
             data: Optional[Sequence[DataChoice]] = None, methods: Optional[Sequence[str]] = None,
             out="results/fig3", runs=None, limit: Optional[int] = None, chunk: int = 8,
             progress: bool = True, executor=None) -> int:
    """Compute (or resume) every method on every dataset, evaluate with the paper's protocol and
    write the figure, tables and curves to ``out`` (see the module docstring). ``data``:
    :func:`choose_data`'s answer (default: ``choose_data()``); ``methods``: default
    ``choose_methods(None)``; ``config``: the STLConfig of the STL methods and of the
    Caffe mean (default: the authors' profile); ``executor``: an :class:`stl.executors.Executor`
    (default: in this process; a Ray executor spreads the images over workers)."""
    from ..data import get_dataset
    from ..evaluation import paper_curves
    from ..evaluation.report import (COMPARE_N, COMPARISON_COLUMNS, comparison_markdown, comparison_rows,
                                     methods_markdown, methods_rows, to_csv)
    from ..evaluation import eval_protocol
    from ..evaluation.runs import evaluate_run
    from ..io import write_json_atomic
    from .common import save_figure, wrap, write_text
    from ..proposals import METHODS, build_run_method, method_traits
    from ..runner import MethodJob, run_jobs, run_path

    config = config or STLConfig()
    from ..executors import method_for
    from ..executors.local import LocalExecutor

    executor = executor or LocalExecutor()
    # --profile selects the evaluation protocol too: the authors' evaluation code, or the devkit's
    protocol = eval_protocol(config.profile)
    data = list(data) if data is not None else choose_data()
    methods = list(methods) if methods else choose_methods(None)
    out = Path(out)
    runs_dir = Path(runs) if runs else out / "runs"
    out.mkdir(parents=True, exist_ok=True)
    print("fig3: data used:")
    for d in data:
        print(f"  - {d.description}")
    print(f"fig3: methods: {', '.join(methods)}; model {model} ({model.engine}, {model.device})"
          + (f"; first {limit} images per dataset" if limit is not None else ""))

    cache = {}

    def get_classifier():
        if "clf" not in cache:
            cache["clf"] = model.build(mean_mode=config.caffe_mean)
            print(f"fig3: classifier {cache['clf'].describe()}")
        return cache["clf"]

    built: Dict[str, object] = {}
    skipped: Dict[str, str] = {}
    compare_rows, table_rows, md_parts, methods_md_parts, all_curves = [], [], [], [], {}
    for d in data:
        ds = get_dataset(d.name, root=d.root, subset=d.subset, limit=limit)
        header = f"{ds.key}: {len(ds)} images -- {d.description}"
        print(f"\nfig3: {header}")
        results = {}
        jobs = []  # the methods that run on this dataset
        for name in methods:
            if name in METHODS and method_traits(name)["needs_label"] and d.name.startswith("voc"):
                print(f"fig3: {name} skipped on VOC (needs ImageNet class labels; the paper has no STL-CL on VOC)")
                continue
            if name.endswith("-PUBLISHED") and d.name != "voc2007_test":
                print(f"fig3: {name} skipped on {d.name} (Hosang et al. published boxes for VOC 2007 test only)")
                continue
            if name not in built and name not in skipped:
                try:
                    built[name] = method_for(executor, name, model, config,
                                             lambda: build_run_method(name, get_classifier, config))
                except Exception as e:  # missing model file, unknown method, ...
                    skipped[name] = f"{type(e).__name__}: {e}"
                    warn(f"method {name} cannot be built and is SKIPPED (not substituted): {skipped[name]}")
            if name in skipped:
                continue
            method = built[name]
            uses = method.uses_classifier
            path = run_path(runs_dir, ds.key, name, model.run_name if uses else None, uses, config.profile)
            jobs.append(MethodJob(method, path, name, model.run_name if uses else None))
        # in this process: one pass over the images for every method (STL-CL / STL-WL share forwards)
        summaries = run_jobs(ds, jobs, executor, chunk_size=chunk, progress=progress)
        for j, summary in zip(jobs, summaries):
            name, path = j.method_name, j.path
            if summary.failures:
                warn(f"{name} failed on {len(summary.failures)} image(s) of {ds.key}, e.g. "
                     f"{next(iter(summary.failures.items()))}")
            ev = evaluate_run(path, dataset=ds, protocol=protocol)
            if ev.result.empty:
                warn(f"{name}: {len(ev.result.empty)} image(s) of {ds.key} have no window and are left out of "
                     f"the evaluation (profile {protocol.name}), e.g. {ev.result.empty[0]}")
            if not ev.result.image_ids:
                warn(f"{name}: no image of {ds.key} has windows; left out of the figure")
                continue
            results[name] = ev
            r = ev.result
            print(f"fig3: {name:>14s} {len(r.image_ids)} images, R@1 {100 * r.at(1)['recall']:.1f}, "
                  f"R@10 {100 * r.at(10)['recall']:.1f}, P@1 {100 * r.at(1)['precision']:.1f}, "
                  f"top-1 hit {100 * r.top1_hit_rate:.1f}%")
        paper_key = getattr(ds, "paper_key", None)
        paper = paper_curves(paper_key) if paper_key else {}
        title = (f"Fig. 3 -- {ds.key} ({len(ds)} images; {d.description}); ours: solid, model {model}"
                 + (f"; paper ({paper_key}): dashed" if paper else "; no published curves for this data"))
        fig = plot_fig3({m: curves_of(ev.result) for m, ev in results.items()}, paper, wrap(title))
        for target in save_figure(fig, out, f"fig3_{ds.key}"):
            print(f"fig3: wrote {target}")
        rows = []
        for m, ev in results.items():
            for row in comparison_rows(ev.result, m, paper_key, COMPARE_N):
                row.update(dataset=ds.key, images=len(ev.result.image_ids), model=ev.model or "-",
                           profile=protocol.name)
                rows.append(row)
        compare_rows += rows
        md_parts.append(f"### {header}\n\nPaper curves: {paper_key or 'none'}. Ours: model {model}; "
                        f"diff = ours - paper in percentage points.\n\n" + comparison_markdown(rows))
        mrows = methods_rows({m: ev.result for m, ev in results.items()})
        for row in mrows:
            row["dataset"] = ds.key
            row["profile"] = protocol.name
        table_rows += mrows
        methods_md_parts.append(f"### {header}\n\nMean recall (R@N) and precision (P@N) in %, top-1 hit rate "
                                f"in %.\n\n" + methods_markdown(mrows))
        all_curves[ds.key] = {"description": d.description, "paper_key": paper_key, "images": len(ds),
                              "methods": {m: ev.result.to_dict() for m, ev in results.items()}}

    note = ("Data used: " + "; ".join(d.description for d in data) + "."
            + f" Evaluation: {protocol.describe()}."
            + (f" First {limit} images per dataset." if limit is not None else "")
            + (" Skipped (could not be built): " + "; ".join(f"{k} ({v})" for k, v in skipped.items())
               if skipped else ""))
    write_text(out / "fig3_table.md", f"# Fig. 3: ours vs the paper\n\n{note}\n\n" + "\n".join(md_parts))
    write_text(out / "fig3_table.csv",
               to_csv(compare_rows, ["profile", "dataset", "images", "model"] + COMPARISON_COLUMNS))
    write_text(out / "fig3_methods.md",
               f"# Fig. 3: all methods at N = 1..10\n\n{note}\n\n" + "\n".join(methods_md_parts))
    cols = ["profile", "dataset", "method", "images", "top1_hit_rate"] + [f"R@{n}" for n in range(1, 11)] + \
           [f"P@{n}" for n in range(1, 11)]
    write_text(out / "fig3_methods.csv", to_csv(table_rows, cols))
    write_json_atomic(out / "fig3_curves.json", {"note": note, "model": model.name, "profile": protocol.name,
                                                 "datasets": all_curves})
    print(f"\nfig3: {note}\nfig3: tables in {out}/fig3_table.md, fig3_methods.md (+ .csv), curves in fig3_curves.json")
    return 0

