"""``stl diff RUN_A RUN_B``: how many of each image's top-N windows differ between two
stored runs (e.g. ``--profile authors`` vs ``--profile corrected``)."""
from __future__ import annotations

from .validate import positive_int, unit_interval


def add_arguments(p):
    p.add_argument("run_a", help="stored run (HDF5)")
    p.add_argument("run_b", help="stored run (HDF5) of the same images")
    p.add_argument("--top", type=positive_int, default=10, help="windows per image compared (default 10)")
    p.add_argument("--iou", type=unit_interval, default=0.9, help="IoU at which two windows count as the same")
    p.add_argument("--per-image", action="store_true", help="one line per image")


def main(args) -> int:
    from ..evaluation.compare import compare_runs

    cmp = compare_runs(args.run_a, args.run_b, args.top, args.iou)
    print(f"A: {cmp.path_a}\nB: {cmp.path_b}")
    if args.per_image:
        for i in cmp.compared:
            print(f"  {i}: {cmp.changed[i]}/{cmp.compared[i]} of A's top-{cmp.top} not in B's")
    if cmp.only_a or cmp.only_b:
        print(f"  images only in A: {len(cmp.only_a)}, only in B: {len(cmp.only_b)}")
    print(cmp.summary())
    return 0
