"""``stl fig1``: Fig. 1 / supplementary Fig. 1: the mask-out operation through the network's layers.

Layer outputs: pycaffe blobs (``--engine caffe``) or the torch engine's layer outputs for Caffe
models, forward hooks for EfficientNet-Lite0. STL-CL windows come from the stored run in
``--runs`` (computed or resumed, shared with ``stl run`` / ``stl eval``).
"""
from __future__ import annotations


def add_maskout_arguments(p, which: str):
    """The options of ``stl fig1`` and ``stl fig5`` (both :func:`stl.experiments.maskout.run_maskout`)."""
    from ..experiments.common import add_data_args, add_model_args

    add_model_args(p)
    add_data_args(p, limit_help="first N images of ILSVRC val to run STL-CL on and choose from (CI: 1-2)")
    p.add_argument("--out", default=f"results/{which}")


def run_maskout_command(args, which: str, **selection) -> int:
    """``stl fig1`` / ``stl fig5``: make the figure(s), print what they show and where they went."""
    from ..experiments.common import ilsvrc_data
    from ..experiments.maskout import run_maskout

    data = ilsvrc_data(args.ilsvrc, args.ilsvrc_subset, args.limit)
    print(f"{which}: data: {data.description} ({len(data.dataset)} images)")
    res = run_maskout(which, data, args.model, args.out, engine=args.engine, device=args.device,
                      precision=args.precision, runs_dir=args.runs, progress=not args.no_progress, **selection)
    for f in res["figures"]:
        print(f"{which}: {f.image_id}: class {f.class_name}, f_c(x) {f.score:.4f} -> f_c(h_g(x,b)) "
              f"{f.score_masked:.4f} (drop {f.drop:.4f}); {f.note}")
    for p in res["files"]:
        print(f"{which}: wrote {p}")
    return 0


def add_arguments(p):
    add_maskout_arguments(p, "fig1")
    p.add_argument("--image", default=None, help="image id (default: the rule stated in the caption)")


def main(args) -> int:
    return run_maskout_command(args, "fig1", image_id=args.image)
