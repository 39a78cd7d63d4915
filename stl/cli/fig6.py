"""``stl fig6``: per-class AP, STL-CL-trained detector vs ground-truth-trained (Fig. 6;
:mod:`stl.experiments.fig6`)."""
from __future__ import annotations

from .detection_args import add_detection_arguments, detection_options


def add_arguments(p):
    add_detection_arguments(p, "fig6")


def main(args) -> int:
    from ..experiments.fig6 import run_fig6

    return run_fig6(detection_options(args))
