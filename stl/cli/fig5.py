"""``stl fig5``: Fig. 5 / supplementary Fig. 2: failure cases (lowest max-drop among images whose
top-5 holds the true class).

Layer outputs: pycaffe blobs (``--engine caffe``) or the torch engine's layer outputs for Caffe
models, forward hooks for EfficientNet-Lite0. STL-CL windows come from the stored run in
``--runs`` (computed or resumed, shared with ``stl run`` / ``stl eval``).
"""
from __future__ import annotations


def add_arguments(p):
    from .fig1 import add_maskout_arguments

    add_maskout_arguments(p, "fig5")
    p.add_argument("--num", type=int, default=3, help="failure cases shown (default 3)")


def main(args) -> int:
    from .fig1 import run_maskout_command

    return run_maskout_command(args, "fig5", num=args.num)
