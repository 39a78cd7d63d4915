"""Options shared by ``stl table 1|2`` and ``stl fig6`` (the detector experiments, Sec. 4)."""
from __future__ import annotations

from .args import (add_common_arguments, add_executor_arguments, add_progress_argument, executor_from_args, model_spec,
                   parse_field, split_overrides, stl_config)


def add_detection_arguments(p, which: str, default_pairs=()):
    add_common_arguments(p, class_list_option="--class-list")  # --classes: the experiment's classes
    add_executor_arguments(p)
    for a in p._actions:  # --set also takes DetectionConfig keys here
        if a.dest == "overrides":
            a.help += ("; here also detection config keys, JSON values (data.num_classes=5, positive_top_k=1, "
                       "svm.folds=3)")
    p.add_argument("--ilsvrc", default=None, help="ILSVRC-2012 val root (test images); default $STL_ILSVRC / "
                                                  "data/ilsvrc; none: the small run on ../shared")
    p.add_argument("--ilsvrc-train", default=None,
                   help="ILSVRC-2012 training root with box XMLs (default $STL_ILSVRC_TRAIN, else --ilsvrc)")
    p.add_argument("--config", default=None, help="detection config JSON (default: the paper's, or the small "
                                                  "../shared one)")
    p.add_argument("--classes", default=None, help="number of classes (first N of the paper's 200 with enough "
                                                   "images) or comma-separated wnids")
    p.add_argument("--limit", type=int, default=None, help="at most N images per class (training + test)")
    p.add_argument("--fast", action="store_true",
                   help="reduced STL: one segmentation (HSV, k=300) instead of four (CI / quick runs)")
    p.add_argument("--max-windows", type=int, default=None, help="windows per image of the negative/test method")
    p.add_argument("--iterations", type=int, default=None, help="SVM trainings (1 + hard-negative rounds)")
    p.add_argument("--pairs", default=None, help=f"comma-separated pairs (default: {','.join(default_pairs)})"
                   if default_pairs else "comma-separated pairs")
    p.add_argument("--work", default="results/detection",
                   help="work folder: proposal runs, feature cache, trained detectors (default results/detection)")
    p.add_argument("--runs", default=None, help="proposal run store (default <work>/runs/<data tag>)")
    p.add_argument("--features", default=None, help="feature cache (default <work>/features/<model>__<data tag>)")
    p.add_argument("--out", default=None, help=f"output folder (default results/{which})")
    p.add_argument("--force", action="store_true", help="recompute pair results (cached features/runs are kept)")
    add_progress_argument(p)


def detection_options(args):
    """The namespace -> :class:`stl.experiments.detection.DetectionOptions` (once)."""
    from ..detection.config import DetectionConfig
    from ..experiments.detection import DetectionOptions

    _, rest = split_overrides(args.overrides)
    try:  # the one --set rule: each value parsed with the type of its DetectionConfig field
        overrides = {k: parse_field(DetectionConfig, k, v) for k, v in rest.items()}
    except ValueError as e:
        raise SystemExit(f"--set: {e}")
    classes = None
    if args.classes:
        classes = (int(args.classes) if args.classes.strip().isdigit()
                   else [c.strip() for c in args.classes.split(",") if c.strip()])
    return DetectionOptions(
        model=model_spec(args), stl=stl_config(args, allow_other_keys=True), ilsvrc=args.ilsvrc,
        ilsvrc_train=args.ilsvrc_train, config=args.config, overrides=overrides, classes=classes, limit=args.limit,
        fast=args.fast, max_windows=args.max_windows, iterations=args.iterations,
        pairs=[q.strip() for q in args.pairs.split(",")] if args.pairs else None, work=args.work, runs=args.runs,
        features=args.features, out=args.out, force=args.force, progress=not args.no_progress,
        executor=executor_from_args(args))
