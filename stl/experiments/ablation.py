"""The s_drop ablation of Sec. 4 and the other switches of :class:`stl.core.config.STLConfig`.

The paper: "removing s_drop from Eq. 4" lowers precision by 8% and recall by 10%. Eq. 4 is a
weighted sum with uniform weights 1/4; we read "removing s_drop" as dropping that term and
keeping the remaining three with uniform weights, i.e. (w_drop, w_app, w_size, w_fill) =
(0, 1/3, 1/3, 1/3): the natural reading of removing one term of a uniform mixture, and the only
one that keeps s on the same [0, 1] scale as the full Eq. 4. (With 1/4 each and no
renormalisation the merge ORDER would be the same up to floating-point rounding -- a positive
factor does not change which pair has the largest similarity -- so both readings give the same
windows; the weights are renormalised for clarity.)

Every variant is STL-WL run through :func:`stl.runner.run_method` on the same images, stored
(resumable) beside the default run: the default is the very file ``stl run --method STL-WL``
writes (``<runs>/<dataset>/STL-WL__<model>.h5``), so its row equals ``stl eval`` of that file;
a variant ``v`` is ``STL-WL__<model>__<v>.h5`` (the run's ``method_config`` attribute records
its config; ``stl eval`` reads it like any other run).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..core.config import DEFAULT, EVAL_NUM_WINDOWS, STLConfig
from .common import DEFAULT_RUNS, csv_text, markdown_table, save_figure, stored_run, wrap, write_text

#: N at which the ablation table is printed
ABLATION_N = (1, 5, 10, 100)

#: the paper's claim for removing s_drop (relative decrease), from experiments/reference
PAPER_CLAIM = {"precision": -0.08, "recall": -0.10}

THIRD = 1.0 / 3.0


def variants(base: STLConfig = DEFAULT) -> "OrderedDict[str, tuple]":
    """name -> (config, description). ``default`` is ``base`` itself."""
    v = OrderedDict()
    v["default"] = (base, "the paper's setting (authors' code): Eq. 4 with weights 1/4, fc7 s_app, all pairs, "
                          f"box mask, top-{base.wl_top_classes}")
    v["no-sdrop"] = (base.replace(similarity_weights=(0.0, THIRD, THIRD, THIRD)),
                     "s_drop removed from Eq. 4; s_app, s_size, s_fill weighted 1/3 each")
    v["fc8-app"] = (base.replace(appearance_feature="logits"), "s_app on fc8 (logits) instead of fc7")
    v["adjacent"] = (base.replace(merge_pairs="adjacent"), "only spatially adjacent regions merge")
    v["segment-mask"] = (base.replace(mask_mode="segment"), "mask the segment's pixels, not its box")
    for c in (1, 3, 5, 10):
        if c == base.wl_top_classes:
            continue
        v[f"top{c}"] = (base.replace(wl_top_classes=c), f"STL-WL drop summed over the top-{c} classes")
    return v


def variant_path(runs_dir, dataset_key: str, model: str, name: str, profile: str = "authors") -> Path:
    from ..runner import run_path

    p = run_path(runs_dir, dataset_key, "STL-WL", model, True, profile)
    return p if name == "default" else p.with_name(p.stem + f"__{name}.h5")


@dataclass
class AblationRow:
    name: str
    description: str
    path: Path
    images: int
    result: object  # EvalResult

    def at(self, n):
        return self.result.at(n)


def run_ablation(data, model: str, get_classifier, runs_dir=DEFAULT_RUNS, names: Optional[Sequence[str]] = None,
                 progress: bool = True, base: STLConfig = DEFAULT) -> List[AblationRow]:
    """Run (or resume) every variant on ``data.dataset``; evaluate each on those images."""
    from ..evaluation.runs import evaluate_run

    allv = variants(base)
    names = list(names) if names else list(allv)
    unknown = [n for n in names if n not in allv]
    if unknown:
        raise KeyError(f"unknown variants {unknown}; known: {', '.join(allv)}")
    if "default" not in names:
        names = ["default"] + names
    ns = sorted(set(EVAL_NUM_WINDOWS) | set(ABLATION_N))
    rows = []
    for name in names:
        cfg, desc = allv[name]
        path = variant_path(runs_dir, data.dataset.key, model, name, base.profile)
        stored_run(data.dataset, "STL-WL", model, get_classifier, runs_dir, config=cfg, path=path, progress=progress)
        ev = evaluate_run(path, dataset=data.dataset, num_windows=ns)
        rows.append(AblationRow(name, desc, path, len(ev.result.image_ids), ev.result))
    return rows


def table_rows(rows: Sequence[AblationRow], ns: Sequence[int] = ABLATION_N) -> List[Dict]:
    base = rows[0]
    out = []
    for r in rows:
        d = {"variant": r.name, "change": r.description, "images": r.images}
        for n in ns:
            for m, short in (("recall", "R"), ("precision", "P")):
                v = r.at(n)[m]
                b = base.at(n)[m]
                d[f"{short}@{n}"] = v
                d[f"d{short}@{n}"] = v - b
                d[f"rel{short}@{n}"] = (v - b) / b if b else float("nan")
        d["dR_mean"] = float(np.mean([d[f"dR@{n}"] for n in ns]))
        d["dP_mean"] = float(np.mean([d[f"dP@{n}"] for n in ns]))
        d["relR_mean"] = float(np.nanmean([d[f"relR@{n}"] for n in ns]))
        d["relP_mean"] = float(np.nanmean([d[f"relP@{n}"] for n in ns]))
        out.append(d)
    return out


def plot_ablation(rows: Sequence[AblationRow], title: str = ""):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.6))
    axes = fig.subplots(1, 2)
    cmap = __import__("matplotlib").colormaps["tab10"]
    for ax, metric in zip(axes, ("recall", "precision")):
        for i, r in enumerate(rows):
            ns = np.asarray(r.result.num_windows)
            vals = np.asarray(r.result.mean_recall if metric == "recall" else r.result.mean_precision)
            ax.plot(ns, vals, lw=2.6 if r.name == "default" else 1.3,
                    color="k" if r.name == "default" else cmap(i % 10),
                    ls="-" if r.name in ("default", "no-sdrop") else "--", marker="o", ms=2.5, label=r.name)
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_xlabel("number of windows per image (top N)")
        ax.set_ylabel(f"mean {metric} (over classes)")
        ax.grid(True, alpha=0.35)
        ax.set_title(f"STL-WL mean {metric}, IoU >= 0.5", fontsize=10)
    axes[1].legend(fontsize=7.5, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=8.5)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12, top=0.83, wspace=0.2)
    return fig


def write_ablation(rows: Sequence[AblationRow], out, data_description: str, model: str) -> List[Path]:
    out = Path(out)
    trows = table_rows(rows)
    ns = ABLATION_N
    cols = ["variant", "images"] + [f"R@{n}" for n in ns] + [f"P@{n}" for n in ns] + ["dR_mean", "dP_mean",
                                                                                       "relR_mean", "relP_mean"]
    pct = {c: ".1%" for c in cols if c not in ("variant", "images")}
    heads = ["variant", "images"] + [f"R@{n}" for n in ns] + [f"P@{n}" for n in ns] + [
        "mean dR (pt)", "mean dP (pt)", "mean rel. dR", "mean rel. dP"]
    disp = []
    for d in trows:
        e = dict(d)
        for c in ("dR_mean", "dP_mean"):
            e[c] = f"{100 * d[c]:+.1f}"
        for c in ("relR_mean", "relP_mean"):
            e[c] = "-" if np.isnan(d[c]) else f"{100 * d[c]:+.1f}%"
        disp.append(e)
    nos = next((d for d in trows if d["variant"] == "no-sdrop"), None)
    claim = ["", "### The paper's claim: removing s_drop", "",
             "| | recall | precision |", "|---|---:|---:|",
             f"| paper (Sec. 4, relative) | {100 * PAPER_CLAIM['recall']:+.0f}% | "
             f"{100 * PAPER_CLAIM['precision']:+.0f}% |"]
    if nos is not None:
        claim.append(f"| ours, mean relative change over N = {', '.join(map(str, ns))} | "
                     f"{fmt_rel(nos['relR_mean'])} | {fmt_rel(nos['relP_mean'])} |")
        claim.append(f"| ours, mean change in points over the same N | {100 * nos['dR_mean']:+.1f} | "
                     f"{100 * nos['dP_mean']:+.1f} |")
        for n in ns:
            claim.append(f"| ours at N = {n} (relative) | {fmt_rel(nos[f'relR@{n}'])} | {fmt_rel(nos[f'relP@{n}'])} |")
    else:
        claim.append("| ours | not run (add the `no-sdrop` variant) | |")
    caption = (f"STL-WL ablation, model {model}, on {rows[0].images} images -- {data_description}. "
               "Every variant changes one switch of the default (the paper's setting); `no-sdrop` reads "
               "\"removing s_drop from Eq. 4\" as weights (0, 1/3, 1/3, 1/3): the remaining three terms of the "
               "uniform mixture stay uniform (same merge order as (0, 1/4, 1/4, 1/4) up to float rounding, so "
               "either reading gives these windows). Mean recall / precision over classes at IoU >= 0.5; "
               "d = variant - default.")
    lines = ["# s_drop ablation and STL switches\n", caption, "",
             markdown_table(disp, cols, heads, pct), "", "| variant | change | run file |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.description} | `{r.path}` |" for r in rows]
    lines += claim
    if rows[0].images < 100:
        lines += ["", f"Note: {rows[0].images} images only; differences of a few points are noise at this size."]
    files = [write_text(out / "ablation.md", "\n".join(lines) + "\n")]
    ccols = ["variant", "change", "images"] + [f"{m}@{n}" for m in ("R", "P", "dR", "dP", "relR", "relP") for n in ns]
    files.append(write_text(out / "ablation.csv", csv_text(trows, ccols)))
    files += save_figure(plot_ablation(rows, wrap(caption, 190)), out, "ablation")
    return files


def fmt_rel(v) -> str:
    return "-" if v is None or np.isnan(v) else f"{100 * v:+.1f}%"
