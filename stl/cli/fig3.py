"""``stl fig3``: Figure 3 of the paper (:mod:`stl.experiments.fig3`).

    stl fig3 [--model efficientnet_lite0] [--engine torch] [--device cpu]
             [--ilsvrc ROOT] [--voc ROOT] [--limit N] [--methods A,B,...] [--out results/fig3]
"""
from __future__ import annotations

from .args import add_executor_arguments, executor_from_args
from .args import add_common_arguments, add_progress_argument, model_spec, stl_config


def add_arguments(p):
    from ..experiments.fig3 import DEFAULT_METHODS

    add_common_arguments(p)
    p.add_argument("--ilsvrc", default=None, help="ILSVRC-2012 root (official or WSOL layout)")
    p.add_argument("--ilsvrc-subset", default="200rnd", choices=["200rnd", "all"],
                   help="200rnd: the paper's 200 random classes (Fig. 3); all: 1000 classes")
    p.add_argument("--voc", default=None, help="VOCdevkit root")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated methods (default: {','.join(DEFAULT_METHODS)} + other registered "
                        "methods of the paper)")
    p.add_argument("--limit", type=int, default=None, help="first N images of each dataset (CI: a handful)")
    p.add_argument("--chunk", type=int, default=8, help="images per propose_batch call")
    p.add_argument("--out", default="results/fig3")
    p.add_argument("--runs", default=None, help="run store (default <out>/runs)")
    add_progress_argument(p)
    add_executor_arguments(p)


def main(args) -> int:
    from ..experiments.fig3 import choose_data, choose_methods, run_fig3

    return run_fig3(model=model_spec(args), config=stl_config(args),
                    data=choose_data(args.ilsvrc, args.voc, args.ilsvrc_subset),
                    methods=choose_methods(args.methods), out=args.out, runs=args.runs, limit=args.limit,
                    chunk=args.chunk, progress=not args.no_progress,
                    executor=executor_from_args(args))
