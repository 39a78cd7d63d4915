"""``stl timing``: seconds per image of every registered proposal method on the same images, and
STL's network evaluations per image against the paper's 2K, beside the paper's numbers
(STL 210 s CPU / 20 s GPU; MCG 25 s, EdgeBoxes 0.25 s, SelSearch 10 s, BING 0.2 s)."""
from __future__ import annotations


def add_arguments(p):
    from .args import add_common_arguments, add_data_arguments

    add_common_arguments(p)
    add_data_arguments(p, limit_help="first N images of ILSVRC val (default 2; CI: 1)")
    p.add_argument("--methods", default=None,
                   help="comma-separated methods (default: every registered method)")
    p.add_argument("--out", default="results/timing")


def main(args) -> int:
    from ..experiments.common import LazyClassifier, ilsvrc_data
    from ..experiments.timing import time_methods, timing_rows, write_timing
    from ..proposals import available_methods
    from .args import model_spec, stl_config

    model, config = model_spec(args), stl_config(args)

    data = ilsvrc_data(args.ilsvrc, args.ilsvrc_subset, args.limit if args.limit is not None else 2)
    methods = ([m.strip().upper() for m in args.methods.split(",") if m.strip()] if args.methods
               else available_methods())
    print(f"timing: data: {data.description} ({len(data.dataset)} images); methods: {', '.join(methods)}")
    results = time_methods(list(data.dataset), methods,
                           LazyClassifier(model, config.caffe_mean), progress=not args.no_progress, config=config)
    for r in timing_rows(results):
        s = r["seconds_per_image"]
        extra = (f", forwards/image {r['forwards_per_image']:.0f}" if r["forwards_per_image"] == r["forwards_per_image"]
                 else "")
        if "2K" in r:
            extra += (f", K_s {r['K_per_segmentation']}, 2K {r['2K']:.0f}, masked {r['masked_forwards']:.0f}, "
                      f"crops {r['crop_forwards']:.0f}")
        print(f"timing: {r['method']:<18} " + (f"{s:8.3f} s/image (paper {r['paper_seconds_per_image']}){extra}"
                                               if r["status"] == "ok" else r["status"]))
    for f in write_timing(results, args.out, data.description, model.device, str(model)):
        print(f"timing: wrote {f}")
    return 0
