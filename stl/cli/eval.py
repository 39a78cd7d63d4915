"""``stl eval``: mean recall / precision of stored runs against the paper's curves.

    stl eval results/runs/ilsvrc2012_val_200rnd/STL-WL__efficientnet_lite0.h5 [more.h5 ...]

For each run: ours vs the paper at N = 1, 3, 10, 100, 1000 (the paper's
numbers are for the full dataset the run's dataset stands for: ILSVRC-2012 val
with 200 or 1000 classes, VOC 2007 test/trainval), and the top-1 hit rate.

``--profile authors`` (default) evaluates as the authors' code did (difficult
VOC boxes removed, images without windows skipped, their tie order, IoU on
normalised boxes); ``--profile corrected`` with the VOC devkit's conventions.
See :mod:`stl.evaluation.protocol` and docs/fidelity.md.
"""
from __future__ import annotations

from pathlib import Path

from .validate import positive_int


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
    p.add_argument("--md", default=None, help="write the table (all runs) as Markdown here")
    p.add_argument("--json", default=None, help="write the full curves (all runs) as JSON here")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="evaluate an unfinished run even if some of its per-image entries are damaged (they are "
                        "left out and listed; default: refuse, naming the first)")


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


def print_evaluation(ev, ns=None):
    from ..evaluation.report import COMPARE_N, comparison_markdown, comparison_rows

    print(header(ev))
    print(comparison_markdown(comparison_rows(ev.result, ev.method, ev.paper_key, ns or COMPARE_N)))
    r = ev.result
    print(f"top-1 hit rate: {100 * r.top1_hit_rate:.1f}% ({r.top1_hits}/{r.top1_images} images)\n")


def main(args) -> int:
    from ..core.config import EVAL_NUM_WINDOWS
    from ..evaluation.report import COMPARE_N, COMPARISON_COLUMNS, comparison_markdown, comparison_rows, to_csv
    from ..evaluation.runs import evaluate_run
    from ..io import atomic_path, write_json_atomic

    ns = tuple(args.n) if args.n else COMPARE_N
    rows, md, curves = [], [], {}
    for path in args.runs:
        ev = evaluate_run(path, root=args.root, matching=args.matching, protocol=args.profile,
                          num_windows=sorted(set(ns) | set(EVAL_NUM_WINDOWS)), skip_corrupt=args.skip_corrupt)
        print_evaluation(ev, ns)
        rr = comparison_rows(ev.result, ev.method, ev.paper_key, ns)
        for row in rr:
            row["profile"] = args.profile
            row["dataset"] = ev.dataset.key
            row["model"] = ev.model
            row["images"] = len(ev.result.image_ids)
        rows += rr
        md.append(f"### {header(ev)}\n\n{comparison_markdown(rr)}\n"
                  f"top-1 hit rate: {100 * ev.result.top1_hit_rate:.1f}%\n")
        curves[str(path)] = {"method": ev.method, "model": ev.model, "dataset": ev.dataset.key,
                             "paper_key": ev.paper_key, **ev.result.to_dict()}
    if args.csv:
        with atomic_path(args.csv) as tmp:
            Path(tmp).write_text(to_csv(rows, ["profile", "dataset", "model", "images"] + COMPARISON_COLUMNS))
    if args.md:
        with atomic_path(args.md) as tmp:
            Path(tmp).write_text("\n".join(md))
    if args.json:
        write_json_atomic(args.json, curves)
    return 0
