"""``stl wsol``: STL, CAM, Grad-CAM, RISE, WHOLE-IMAGE and CENTER on the WSOL benchmark's metrics.

    stl wsol [--root ../shared/data/ilsvrc2012-val-227] [--model efficientnet_lite0] \\
             [--limit N] [--stl-limit N] [--rise-limit N] [--rise-masks 4000] --out results/wsol

Writes score maps in wsolevaluation's on-disk format (``<out>/scoremaps/<METHOD>/val/*.npy``),
the table (``<out>/wsol__<model>.md``/``.json``) and a figure; STL's windows go to the
``stl run`` store (``--runs``). Everything resumes. ``--ci 0.95`` adds a per-image bootstrap
interval to every metric (MaxBoxAccV2 included). See docs/wsol.md.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .args import (add_ci_arguments, add_common_arguments, add_progress_argument, build_from_args, ci_settings,
                   command_line, expand_id_files, model_spec, nonnegative_int, positive_int, stl_config,
                   unit_interval)

log = logging.getLogger(__name__)


def add_arguments(p):
    from ..experiments.wsol import ALL_METHODS
    from ..wsol.heatmaps import RISE_GRID, RISE_NUM_MASKS, RISE_P, RISE_SEED, STL_HEATMAP_RULE, STL_HEATMAP_RULES

    p.add_argument("--dataset", default="ilsvrc2012_val", help="ilsvrc2012_val (default) or ilsvrc2012_val_200rnd")
    p.add_argument("--root", default=None,
                   help="ILSVRC val root: WSOL metadata layout or the official one "
                        "(default: $STL_ILSVRC, else ../shared/data/ilsvrc2012-val-227)")
    add_common_arguments(p)
    p.add_argument("--methods", nargs="+", default=list(ALL_METHODS), metavar="METHOD",
                   help=f"subset of {' '.join(ALL_METHODS)} (STL-CL / STL-WL bring their heatmaps and STL+)")
    p.add_argument("--limit", type=nonnegative_int, default=None, help="only the first N images (default: all)")
    p.add_argument("--images", nargs="+", default=None, metavar="ID|@FILE",
                   help="only these image ids, or @FILE: a text file of ids (one per line, # comments)")
    p.add_argument("--stl-limit", type=nonnegative_int, default=None,
                   help="compute STL on the first ceil(N/2) images of each half of the list (default: all); "
                        "already stored images are always used")
    p.add_argument("--no-stl-compute", action="store_true", help="use only the STL windows already stored")
    p.add_argument("--rise-limit", type=nonnegative_int, default=None,
                   help="RISE on the first ceil(N/2) images of each half")
    p.add_argument("--rise-masks", type=positive_int, default=RISE_NUM_MASKS,
                   help=f"RISE's N (default {RISE_NUM_MASKS}, the RISE paper's; N forwards per image)")
    p.add_argument("--rise-grid", type=positive_int, default=RISE_GRID,
                   help=f"RISE grid cells per side (default {RISE_GRID})")
    p.add_argument("--rise-p", type=unit_interval, default=RISE_P, help=f"RISE keep probability (default {RISE_P})")
    p.add_argument("--rise-seed", type=nonnegative_int, default=RISE_SEED, help=f"RISE mask seed (default {RISE_SEED})")
    p.add_argument("--heatmap-rule", choices=STL_HEATMAP_RULES, default=STL_HEATMAP_RULE,
                   help=f"how STL's windows become a heatmap (default {STL_HEATMAP_RULE}; docs/wsol.md)")
    p.add_argument("--plus", nargs=3, type=float, default=None, metavar=("ALPHA", "BETA", "GAMMA"),
                   help="STL+ weights to use as given (default: select them on the first half's STL images)")
    p.add_argument("--freeze-plus", action="store_true",
                   help="write the STL+ weights selected on the first half into the package resource "
                        "configs/stlplus_weights.json (what `stl run --method STL+-WL` uses)")
    p.add_argument("--save-top1", action="store_true",
                   help="also write the top-1 class's score maps (<METHOD>-TOP1) for CAM / Grad-CAM / RISE")
    p.add_argument("--figure-images", type=nonnegative_int, default=8, help="images in the figure (0: no figure)")
    p.add_argument("--runs", default="results/runs", help="the stl run store for STL's windows")
    p.add_argument("--out", default="results/wsol", help="output folder (default results/wsol)")
    add_progress_argument(p)
    add_ci_arguments(p)


def main(args) -> int:
    from ..data import DatasetError, choose_root, get_dataset
    from ..experiments.wsol import BenchmarkOptions, run_wsol
    from ..wsol.heatmaps import RISEConfig
    from ..wsol.stlplus import STLPlusConfig
    from ..paths import model_tag

    chosen = choose_root("ilsvrc", args.root)  # --root / $STL_ILSVRC / data/ilsvrc, else the ../shared sample
    if chosen is None:
        raise DatasetError("no ILSVRC data: pass --root ROOT (or set $STL_ILSVRC); the ../shared sample is absent too")
    ds = get_dataset(args.dataset, root=chosen.path)
    print(f"dataset: {ds.describe()}")
    config = stl_config(args)
    clf = build_from_args(args, config)
    print(f"classifier: {clf.describe()}")
    model = model_tag(model_spec(args).run_name)  # run files: efficientnet_lite0_onnx for --engine onnx
    plus = None
    if args.plus:
        plus = STLPlusConfig(alpha=args.plus[0], beta=args.plus[1], gamma=args.plus[2], heatmap_rule=args.heatmap_rule)
    opt = BenchmarkOptions(out=Path(args.out), runs=Path(args.runs), model=model, methods=args.methods,
                           limit=args.limit, images=expand_id_files(args.images) if args.images else None,
                           stl_limit=args.stl_limit,
                           stl_compute=not args.no_stl_compute, rise_limit=args.rise_limit,
                           rise=RISEConfig(num_masks=args.rise_masks, grid=args.rise_grid, p=args.rise_p,
                                           seed=args.rise_seed),
                           heatmap_rule=args.heatmap_rule, plus=plus, freeze_plus=args.freeze_plus,
                           command=command_line(args), figure_images=args.figure_images,
                           save_top1=args.save_top1, progress=not args.no_progress, config=config,
                           ci=ci_settings(args))
    try:
        rep = run_wsol(ds, clf, opt)
    except KeyboardInterrupt:
        print(f"interrupted; finished score maps and STL windows are kept under {args.out} and {args.runs}; "
              f"rerun the same command to continue")
        return 130
    print()
    print(rep["text"])
    print(f"\nwritten: {opt.out}/wsol__{model}.md, .json" + (f", {rep['figure']}" if rep.get("figure") else ""))
    return 0
