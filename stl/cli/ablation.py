"""``stl ablation``: STL-WL without s_drop (and the other switches of the config) on the same
images, recall / precision at N = 1, 5, 10, 100 beside the default and the paper's claim
(removing s_drop: -8% precision, -10% recall). Runs are stored beside ``stl run``'s and resume."""
from __future__ import annotations


def add_arguments(p):
    from ..experiments.ablation import variants
    from .args import add_common_arguments, add_data_arguments

    add_common_arguments(p)
    add_data_arguments(p, limit_help="first N images of ILSVRC val (CI: 1)")
    p.add_argument("--variants", default=None,
                   help=f"comma-separated subset of: {', '.join(variants())} (default: all; 'default' always runs)")
    p.add_argument("--out", default="results/ablation")


def main(args) -> int:
    from ..experiments.ablation import ABLATION_N, run_ablation, write_ablation
    from ..experiments.common import LazyClassifier, ilsvrc_data
    from .args import model_spec, stl_config

    model, config = model_spec(args), stl_config(args)

    data = ilsvrc_data(args.ilsvrc, args.ilsvrc_subset, args.limit)
    print(f"ablation: data: {data.description} ({len(data.dataset)} images)")
    names = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    rows = run_ablation(data, model.run_name, LazyClassifier(model, config.caffe_mean), args.runs, names,
                        progress=not args.no_progress, base=config)
    files = write_ablation(rows, args.out, data.description, model.run_name)
    print(f"\n{'variant':<14}" + "".join(f"  R@{n:<4}" for n in ABLATION_N)
          + "".join(f"  P@{n:<4}" for n in ABLATION_N))
    for r in rows:
        print(f"{r.name:<14}" + "".join(f"  {100 * r.at(n)['recall']:5.1f}" for n in ABLATION_N)
              + "".join(f"  {100 * r.at(n)['precision']:5.1f}" for n in ABLATION_N))
    print("paper: removing s_drop lowers precision by 8% and recall by 10%")
    for f in files:
        print(f"ablation: wrote {f}")
    return 0
