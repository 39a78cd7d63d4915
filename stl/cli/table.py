"""``stl table 1|2``: the detector tables of the paper (Sec. 4; :mod:`stl.experiments.table1`,
:mod:`stl.experiments.table2`, docs/detection.md)."""
from __future__ import annotations

from .detection_args import add_detection_arguments, detection_options


def add_arguments(p):
    p.add_argument("number", type=int, choices=[1, 2], help="1: mAP per proposal pair; 2: detectors tested on "
                                                            "Selective Search windows, best/worst classes")
    add_detection_arguments(p, "table1|table2")


def main(args) -> int:
    opts = detection_options(args)
    if opts.out is None:
        opts.out = f"results/table{args.number}"
    if args.number == 1:
        from ..experiments.table1 import run_table1

        return run_table1(opts)
    from ..experiments.table2 import run_table2

    return run_table2(opts)
