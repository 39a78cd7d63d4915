"""``stl fig1``: Fig. 1 / supplementary Fig. 1: the mask-out operation through the network's layers.

Layer outputs: pycaffe blobs (``--engine caffe``) or the torch engine's layer outputs for Caffe
models, forward hooks for EfficientNet-Lite0. STL-CL windows come from the stored run in
``--runs`` (computed or resumed, shared with ``stl run`` / ``stl eval``).
"""
from __future__ import annotations


def add_maskout_arguments(p, which: str):
    """The options of ``stl fig1`` and ``stl fig5`` (both :func:`stl.experiments.maskout.run_maskout`)."""
    from .args import add_common_arguments, add_data_arguments

    add_common_arguments(p)
    add_data_arguments(p, limit_help="first N images of ILSVRC val to run STL-CL on and choose from (CI: 1-2)")
    p.add_argument("--out", default=f"results/{which}")


def run_maskout_command(args, which: str, **selection) -> int:
    """``stl fig1`` / ``stl fig5``: make the figure(s), print what they show and where they went."""
    from ..experiments.common import ilsvrc_data
    from ..experiments.maskout import run_maskout
    from .args import model_spec, stl_config

    model, config = model_spec(args), stl_config(args)
    data = ilsvrc_data(args.ilsvrc, args.ilsvrc_subset, args.limit)
    print(f"{which}: data: {data.description} ({len(data.dataset)} images)")
    res = run_maskout(which, data, model, args.out, config=config, runs_dir=args.runs, progress=not args.no_progress,
                      **selection)
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
