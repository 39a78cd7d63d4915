"""``stl eval``: mean recall / precision of stored runs against the paper's curves.

    stl eval results/runs/ilsvrc2012_val_200rnd/STL-WL__efficientnet_lite0.h5 [more.h5 ...]

For each run: ours vs the paper at N = 1, 3, 10, 100, 1000 (the paper's
numbers are for the full dataset the run's dataset stands for: ILSVRC-2012 val
with 200 or 1000 classes, VOC 2007 test/trainval), and the top-1 hit rate.

``--profile authors`` (default) evaluates as the authors' code did (difficult
VOC boxes removed, images without windows skipped, their tie order, IoU on
normalised boxes); ``--profile corrected`` with the VOC devkit's conventions.
See :mod:`stl.evaluation.protocol` and docs/fidelity.md.

``--ci 0.95`` adds a per-image bootstrap interval (1,000 resamples, seeded; percentile method)
to every figure; ``stl eval A.h5 B.h5 --paired`` reports the difference A - B of every figure on
the images both runs evaluate, each with its interval (:mod:`stl.evaluation.bootstrap`).
"""
from __future__ import annotations

from pathlib import Path

from .args import add_ci_arguments, ci_settings, command_line, expand_id_files
from .validate import positive_int

#: confidence level of ``--paired`` without ``--ci``
PAIRED_DEFAULT_LEVEL = 0.95


def add_arguments(p):
    from ..evaluation.protocol import DEFAULT_EVAL_PROFILE, EVAL_PROFILES

    p.add_argument("runs", nargs="+", metavar="RUN.h5", help="run files written by `stl run`")
    p.add_argument("--root", default=None, help="dataset root, if it moved since the run")
    p.add_argument("--profile", choices=sorted(EVAL_PROFILES), default=DEFAULT_EVAL_PROFILE,
                   help="evaluation protocol: authors = the authors' evaluation code (default: difficult VOC boxes "
                        "removed, images without windows skipped, their tie order); corrected = VOC devkit "
                        "conventions (difficult ignored, every image counts, ties in rank order)")
    p.add_argument("--matching", choices=["pascal", "unmatched"], default="pascal",
                   help="pascal: the authors' / VOC devkit rule (default); unmatched: best still-free box")
    p.add_argument("--n", nargs="+", type=positive_int, default=None, metavar="N",
                   help="numbers of windows for the table (default 1 3 10 100 1000)")
    p.add_argument("--csv", default=None, help="write the table (all runs) as CSV here")
    p.add_argument("--images", nargs="+", default=None, metavar="ID",
                   help="score only these image ids (every run must hold all of them: the same images for every "
                        "method); @FILE reads one id per line (blank lines and # comments skipped)")
    p.add_argument("--md", default=None, help="write the table (all runs) as Markdown here")
    p.add_argument("--json", default=None, help="write the full curves (all runs) as JSON here")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="draw the curves of every run (solid) beside the paper's (dashed) as Fig. 3 does: "
                        "FILE.png and FILE.pdf")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="evaluate an unfinished run even if some of its per-image entries are damaged (they are "
                        "left out and listed; default: refuse, naming the first)")
    add_ci_arguments(p, paired=True)


def header(ev) -> str:
    r = ev.result
    ds = ev.dataset
    text = (f"{ev.label} on {ds.key} -- {len(r.image_ids)} images evaluated, {ev.num_failures} failed, "
            f"{len(r.classes)} classes, {int(r.n_gt.sum())} GT boxes; data: {ds.root}")
    if ev.num_partial_chunks:
        text += f" (includes {ev.num_partial_chunks} per-image entries of an unfinished run)"
    if r.empty:
        text += f"\n{len(r.empty)} images without windows skipped (their boxes do not count), e.g. {r.empty[0]}"
    if ev.corrupt:
        text += (f"\nWARNING: {len(ev.corrupt)} damaged per-image entries left out (--skip-corrupt): "
                 + "; ".join(ev.corrupt[:3]) + (" ..." if len(ev.corrupt) > 3 else ""))
    text += (f"\npaper curves: {ev.paper_key or 'none for this dataset'}; matching {r.matching}, "
             f"IoU >= {r.iou_threshold}; {r.protocol.describe()}")
    return text


def _top1_text(ev, ci=None) -> str:
    r = ev.result
    text = f"top-1 hit rate: {100 * r.top1_hit_rate:.1f}%"
    if ci is not None:
        iv = ci["top1_hit_rate"]
        text += f" [{100 * iv.low:.1f}, {100 * iv.high:.1f}]"
    return text + f" ({r.top1_hits}/{r.top1_images} images)"


def _ci_note(settings) -> str:
    level, resamples, seed = settings
    return (f"[CI]: {100 * level:g}% per-image bootstrap interval (percentile method, {resamples} resamples, "
            f"seed {seed})")


def print_evaluation(ev, ns=None, ci=None, settings=None):
    from ..evaluation.report import COMPARE_N, comparison_markdown, comparison_rows

    print(header(ev))
    if ci is not None:
        print(_ci_note(settings))
    print(comparison_markdown(comparison_rows(ev.result, ev.method, ev.paper_key, ns or COMPARE_N, ci=ci)))
    print(_top1_text(ev, ci) + "\n")


def _intervals(ev, ns, settings):
    from ..errors import EvalError
    from ..evaluation.bootstrap import eval_intervals

    if not ev.result.image_ids:
        raise EvalError(f"{ev.path}: no evaluated image, no interval")
    level, resamples, seed = settings
    return eval_intervals(ev.result.contributions, ns, level, resamples, seed)


def _interval_json(ci) -> dict:
    return {"top1_hit_rate": ci["top1_hit_rate"].to_dict(),
            **{m: {str(n): iv.to_dict() for n, iv in ci[m].items()} for m in ("recall", "precision")}}


def provenance(evs, command: str) -> dict:
    """What made the figures: the command line, the code's commit, and per run its file, the
    code that computed it (as the run recorded) and the ids of the images evaluated."""
    import time

    from ..paths import source_revision

    return {"command": command,
            "commit": source_revision(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "runs": [{"path": str(ev.path), "method": ev.method, "model": ev.model, "dataset": ev.dataset.key,
                      "created": (ev.meta or {}).get("created"), "stl_version": (ev.meta or {}).get("stl_version"),
                      "num_images": len(ev.result.image_ids), "image_ids": list(ev.result.image_ids)}
                     for ev in evs]}


def provenance_markdown(prov) -> str:
    import hashlib

    lines = [f"command: `{prov['command']}`  ", f"code: commit {prov['commit']}, {prov['date']}  "]
    for r in prov["runs"]:
        digest = hashlib.blake2b("\n".join(r["image_ids"]).encode(), digest_size=8).hexdigest()
        lines.append(f"run: {r['path']} ({r['method']}, {r['model'] or 'no model'}, computed {r['created'] or '?'}, "
                     f"stl {r['stl_version'] or '?'}): {r['num_images']} images (ids in the JSON; "
                     f"blake2b-64 of the id list {digest})  ")
    return "\n".join(lines) + "\n"


def top1_markdown(evs, cis) -> str:
    """Top-1 hit rate of every run, one row each, with its interval where ``cis[k]`` has one."""
    with_ci = any(ci is not None for ci in cis)
    lines = ["| method | images | top-1 hit rate" + (" [CI]" if with_ci else "") + " |", "|---|---:|---:|"]
    for ev, ci in zip(evs, cis):
        r = ev.result
        cell = f"{100 * r.top1_hit_rate:.1f}"
        if ci is not None:
            iv = ci["top1_hit_rate"]
            cell += f" [{100 * iv.low:.1f}, {100 * iv.high:.1f}]"
        lines.append(f"| {ev.label} | {r.top1_images} | {cell} |")
    return "\n".join(lines) + "\n"


def paired(evs, ns, settings) -> dict:
    """A - B of every figure on the images both runs evaluate, with intervals (printed; returned for --json)."""
    from ..errors import EvalError
    from ..evaluation.bootstrap import paired_bootstrap
    from ..evaluation.report import paired_markdown, paired_rows

    a, b = evs
    if a.dataset.key != b.dataset.key:
        raise EvalError(f"--paired: {a.path} is on {a.dataset.key}, {b.path} on {b.dataset.key}: not the same images")
    level, resamples, seed = settings
    try:
        common, diff = paired_bootstrap(a.result.contributions, b.result.contributions, ns, level, resamples, seed)
    except ValueError as e:
        raise EvalError(f"--paired: {a.path} and {b.path}: {e}") from None
    only_a = len(a.result.image_ids) - len(common)
    only_b = len(b.result.image_ids) - len(common)
    rows = paired_rows(a.label, b.label, diff, ns)
    text = (f"paired: A = {a.label} ({a.path}), B = {b.label} ({b.path}); A - B on the {len(common)} images "
            f"both evaluate" + (f" ({only_a} only in A, {only_b} only in B left out)" if only_a or only_b else "")
            + f"; {_ci_note(settings)}, the same images drawn for A and B\n" + paired_markdown(rows, level))
    print(text)
    return {"a": str(a.path), "b": str(b.path), "images": len(common), "only_a": only_a, "only_b": only_b,
            "level": level, "resamples": resamples, "seed": seed, "rows": rows, "text": text}


def plot_runs(evs, target, prov) -> list:
    """Fig. 3's two panels (:func:`stl.experiments.fig3.plot_fig3`) for the evaluated runs
    ``evs`` beside the paper's curves of their datasets; a run is labelled by its method, and by
    its model too when the runs use several models. Writes ``target`` (.png) and its .pdf."""
    from ..evaluation import paper_curves
    from ..experiments.common import save_figure
    from ..experiments.fig3 import curves_of, plot_fig3

    several_models = len({ev.model for ev in evs}) > 1
    ours = {f"{ev.method} ({ev.model})" if several_models else ev.method: curves_of(ev.result) for ev in evs}
    methods = {ev.method for ev in evs}
    keys = sorted({ev.paper_key for ev in evs if ev.paper_key})
    paper = {m: c for key in keys for m, c in paper_curves(key).items() if m in methods}
    n = sorted({len(ev.result.image_ids) for ev in evs})
    models = sorted({e.model for e in evs if e.model})
    title = (f"{evs[0].dataset.key}: {'/'.join(map(str, n))} images"
             + (f", model {', '.join(models)}" if models else "")
             + f"; paper dashed ({', '.join(keys) or 'none'}); commit {(prov.get('commit') or '?')[:12]}")
    target = Path(target)
    return save_figure(plot_fig3(ours, paper, title), target.parent, target.stem)


def main(args) -> int:
    from ..core.config import EVAL_NUM_WINDOWS
    from ..evaluation.report import (CI_COLUMNS, COMPARE_N, COMPARISON_COLUMNS, comparison_markdown,
                                     comparison_rows, to_csv)
    from ..evaluation.runs import evaluate_run
    from ..io import atomic_path, write_json_atomic

    if args.paired and len(args.runs) != 2:
        raise SystemExit(f"--paired compares two runs (A B), got {len(args.runs)}")
    settings = ci_settings(args, PAIRED_DEFAULT_LEVEL if args.paired else None)
    ns = tuple(args.n) if args.n else COMPARE_N
    image_ids = expand_id_files(args.images) if args.images else None
    rows, md, curves, evs, cis = [], [], {}, [], []
    for path in args.runs:
        ev = evaluate_run(path, root=args.root, matching=args.matching, protocol=args.profile,
                          num_windows=sorted(set(ns) | set(EVAL_NUM_WINDOWS)), skip_corrupt=args.skip_corrupt,
                          image_ids=image_ids)
        evs.append(ev)
        ci = _intervals(ev, ns, settings) if settings and args.ci else None
        cis.append(ci)
        print_evaluation(ev, ns, ci, settings)
        rr = comparison_rows(ev.result, ev.method, ev.paper_key, ns, ci=ci)
        for row in rr:
            row["profile"] = args.profile
            row["dataset"] = ev.dataset.key
            row["model"] = ev.model
            row["images"] = len(ev.result.image_ids)
        rows += rr
        md.append(f"### {header(ev)}\n\n" + (f"{_ci_note(settings)}\n\n" if ci else "")
                  + f"{comparison_markdown(rr)}\n{_top1_text(ev, ci)}\n")
        curves[str(path)] = {"method": ev.method, "model": ev.model, "dataset": ev.dataset.key,
                             "paper_key": ev.paper_key, **ev.result.to_dict()}
        if ci:
            curves[str(path)]["intervals"] = _interval_json(ci)
    pair = paired(evs, ns, settings) if args.paired else None
    if pair:
        md.append(f"### {pair['text']}")
    prov = provenance(evs, command_line(args))
    if len(evs) > 1:  # one table of every run first, then each run's section
        md.insert(0, "## All runs\n\n" + (f"{_ci_note(settings)}\n\n" if args.ci else "")
                  + f"{comparison_markdown(rows)}\n{top1_markdown(evs, cis)}\n")
    md.insert(0, provenance_markdown(prov))
    if args.csv:
        cols = ["profile", "dataset", "model", "images"] + COMPARISON_COLUMNS + (CI_COLUMNS if args.ci else [])
        with atomic_path(args.csv) as tmp:  # the per-run table (the paired one: --md / --json)
            Path(tmp).write_text(to_csv(rows, cols))
    if args.md:
        with atomic_path(args.md) as tmp:
            Path(tmp).write_text("\n".join(md))
    if args.plot:
        plot_runs(evs, args.plot, prov)
    if args.json:
        if pair:
            curves["paired"] = {k: v for k, v in pair.items() if k != "text"}
        curves["provenance"] = prov
        write_json_atomic(args.json, curves)
    return 0
