"""``stl stl650``: STL-CL / STL-WL vs WHOLE-IMAGE and CENTER on the 650 real ILSVRC val images
of ../shared (:mod:`stl.experiments.stl_vs_trivial`; ``make stl650``)."""
from __future__ import annotations

from .args import add_executor_arguments, executor_from_args
from .args import add_common_arguments, add_progress_argument, model_spec, stl_config


def add_arguments(p):
    from ..experiments.stl_vs_trivial import METHODS

    add_common_arguments(p)
    p.add_argument("--root", default=None, help="ILSVRC val root (default: ../shared/data/ilsvrc2012-val-227)")
    p.add_argument("--limit", type=int, default=None, help="first N images only (default: all 650)")
    p.add_argument("--evaluate-only", action="store_true", help="do not compute; evaluate the images stored so far")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--runs", default="results/runs")
    p.add_argument("--out", default="results/stl650")
    add_progress_argument(p)
    add_executor_arguments(p)


def main(args) -> int:
    from ..experiments.stl_vs_trivial import run_stl_vs_trivial

    return run_stl_vs_trivial(model=model_spec(args), config=stl_config(args), root=args.root, limit=args.limit,
                              methods=args.methods, runs=args.runs, out=args.out,
                              evaluate_only=args.evaluate_only, progress=not args.no_progress,
                    executor=executor_from_args(args))
