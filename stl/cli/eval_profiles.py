"""``stl eval-profiles RUN.h5 ...``: each field of the evaluation protocol's effect on stored runs
(:mod:`stl.experiments.eval_profiles`; docs/fidelity.md)."""
from __future__ import annotations

from .validate import positive_int


def add_arguments(p):
    p.add_argument("runs", nargs="+", metavar="RUN.h5")
    p.add_argument("--root", default=None, help="dataset root, if it moved since the run")
    p.add_argument("--n", nargs="+", type=positive_int, default=[1, 2, 5, 10, 100, 1000])
    p.add_argument("--md", default=None, help="also write the tables here (Markdown)")


def main(args) -> int:
    from ..experiments.eval_profiles import eval_profiles_tables

    eval_profiles_tables(args.runs, root=args.root, ns=args.n, md=args.md)
    return 0
