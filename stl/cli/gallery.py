"""``stl gallery``: supplementary Table 1, top-1 boxes of STL-CL and SELSEARCH beside the ground
truth, N images per row block (ILSVRC val, default the ../shared sample)."""
from __future__ import annotations


def add_arguments(p):
    from .args import add_common_arguments, add_data_arguments

    add_common_arguments(p)
    add_data_arguments(p, limit_help="first N images of ILSVRC val (default 10; CI: 1-2)")
    p.add_argument("--per-row", type=int, default=5, help="images per row block (default 5)")
    p.add_argument("--out", default="results/gallery")


def main(args) -> int:
    from ..experiments.common import LazyClassifier, ilsvrc_data
    from ..experiments.gallery import run_gallery
    from .args import model_spec, stl_config

    model, config = model_spec(args), stl_config(args)

    data = ilsvrc_data(args.ilsvrc, args.ilsvrc_subset, args.limit if args.limit is not None else 10)
    print(f"gallery: data: {data.description} ({len(data.dataset)} images)")
    res = run_gallery(data, model.run_name, LazyClassifier(model, config.caffe_mean), args.out, args.runs, args.per_row,
                      progress=not args.no_progress, config=config)
    for r in res["rows"]:
        print(f"gallery: {r['image']} ({r['class']}): STL-CL IoU {r['STL-CL_iou']:.2f}, "
              f"SELSEARCH IoU {r['SELSEARCH_iou']:.2f}")
    for f in res["files"]:
        print(f"gallery: wrote {f}")
    return 0
