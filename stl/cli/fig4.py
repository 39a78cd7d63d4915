"""``stl fig4``: Fig. 4, cross-dataset generalisation: per PASCAL class, the max correlation of its
prototype with the ILSVRC class prototypes against STL-WL's top-1 recall on it."""
from __future__ import annotations


def add_arguments(p):
    from .args import add_common_arguments, add_data_arguments

    add_common_arguments(p)
    add_data_arguments(p, voc=True, limit_help="first N VOC images to run STL-WL on (CI: 1-2)")
    p.add_argument("--ilsvrc-limit", type=int, default=None,
                   help="first N ILSVRC images for the prototypes (default: all; one forward per box)")
    p.add_argument("--cache", default="results/cache", help="prototype cache folder (per dataset and model)")
    p.add_argument("--out", default="results/fig4")


def main(args) -> int:
    from ..experiments.common import LazyClassifier, ilsvrc_data, voc_data
    from ..experiments.fig4 import run_fig4
    from .args import model_spec, stl_config

    model, config = model_spec(args), stl_config(args)

    voc = voc_data(args.voc, args.limit)
    ilsvrc = ilsvrc_data(args.ilsvrc, args.ilsvrc_subset, args.ilsvrc_limit)
    print(f"fig4: PASCAL: {voc.description} ({len(voc.dataset)} images)")
    print(f"fig4: ILSVRC prototypes: {ilsvrc.description} ({len(ilsvrc.dataset)} images)")
    res = run_fig4(voc, ilsvrc, model.run_name, LazyClassifier(model, config.caffe_mean), args.out, args.runs,
                   args.cache, progress=not args.no_progress, config=config)
    for r in res["rows"]:
        print(f"fig4: {r.pascal_class:<12} ({r.pascal_boxes} boxes) ~ {r.ilsvrc_words} ({r.ilsvrc_boxes} boxes): "
              f"corr {r.max_correlation:.3f}, STL-WL top-1 recall {r.top1_recall:.2f}")
    for f in res["files"]:
        print(f"fig4: wrote {f}")
    return 0
