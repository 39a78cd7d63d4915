"""``stl run``: compute proposal methods over a dataset into resumable HDF5 files.

    stl run --dataset ilsvrc2012_val --root ../shared/data/ilsvrc2012-val-227 \\
            --method STL-WL --model efficientnet_lite0 --limit 20 --out results/runs
    stl run --dataset ilsvrc2012_val --images ids.txt --method STL-WL   # only these ids (one per line; or @ids.txt)

Your own images (no boxes; ``stl export`` writes the windows for a detector)::

    stl run --images photos/ --labels labels.csv --method STL-CL --out results/runs
    stl run --images photos/ --labels-from-folders --method STL-CL     # photos/<class>/<image>
    stl run --images list.txt --method STL-WL                           # no labels: label-free methods

Writes ``<out>/<dataset key>/<METHOD>__<model>.h5`` (``<METHOD>.h5`` for methods
without a classifier). Rerunning continues where a killed run stopped.
"""
from __future__ import annotations

import logging
import sys

from ..executors import method_for
from .args import (add_common_arguments, add_executor_arguments, add_progress_argument, executor_from_args,
                   expand_id_files, model_spec, stl_config)
from .validate import positive_int

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--dataset", default=None,
                   help="ilsvrc2012_val, ilsvrc2012_val_200rnd, voc2007_test, voc2007_trainval, sample, folder "
                        "(default with --images DIR|list.txt: folder)")
    p.add_argument("--subset", default=None, help="override the subset (ILSVRC: all|200rnd; VOC: test|trainval)")
    p.add_argument("--root", default=None,
                   help="dataset root (default: $STL_ILSVRC / $STL_VOC, else data/ilsvrc / data/VOCdevkit)")
    p.add_argument("--method", nargs="+", required=True, metavar="METHOD",
                   help="registered method(s): STL-WL, STL-CL, WHOLE-IMAGE, CENTER, SELSEARCH, ...")
    add_common_arguments(p)
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N images of the dataset")
    p.add_argument("--images", nargs="+", default=None, metavar="DIR|LIST|ID",
                   help="without --dataset: your own images, a folder (searched recursively) or a text file with "
                        "one image path per line (dataset 'folder', no ground truth); with --dataset: only these "
                        "image ids, or a text file of ids (FILE.txt or @FILE: one per line, blank lines and # "
                        "comments skipped)")
    p.add_argument("--labels", default=None, metavar="FILE.csv",
                   help="image-level labels of --images: lines path,label[,label...] (path as under DIR or in the "
                        "list; label: wnid, class index or class name of the classifier); STL-CL needs them")
    p.add_argument("--labels-from-folders", action="store_true",
                   help="image-level labels of --images DIR from the ImageFolder layout DIR/<class>/<image>")
    p.add_argument("--chunk", type=positive_int, default=16,
                   help="images per propose_batch call: they share classifier batches (default 16)")
    p.add_argument("--max-windows", type=positive_int, default=None, help="windows stored per image (default 5000)")
    p.add_argument("--out", default="results/runs", help="output folder (default results/runs)")
    add_progress_argument(p)
    p.add_argument("--eval", action="store_true", help="print the ours-vs-paper table after the run")
    add_executor_arguments(p)


def dataset_from_args(args):
    """The dataset of ``--dataset/--root/--subset/--images/--labels/--labels-from-folders``."""
    from ..data import get_dataset

    folder_opts = dict(labels=args.labels, labels_from_folders=args.labels_from_folders)
    if args.dataset is None:
        if not args.images or len(args.images) != 1:
            raise SystemExit("give --dataset NAME (and --root), or --images DIR|list.txt for your own images")
        return get_dataset("folder", root=args.images[0], subset=args.subset, **folder_opts)
    from ..data import DATASETS

    is_folder = DATASETS.canonical(args.dataset) == "folder"
    if not is_folder and (args.labels or args.labels_from_folders):
        raise SystemExit(f"--labels / --labels-from-folders are for your own images (--images DIR|list.txt), "
                         f"not --dataset {args.dataset} (it has its own labels)")
    ds = get_dataset(args.dataset, root=args.root, subset=args.subset, **(folder_opts if is_folder else {}))
    if args.images:
        ds.select(expand_id_files(args.images, known=ds))
    return ds


def check_method_labels(ds, methods, get_classifier, args) -> None:
    """Before any image is computed: a method that needs labels (STL-CL) on an image folder gets
    one for every image, each a class of the classifier; else one line naming the option / CSV line."""
    from ..proposals import METHODS, method_traits

    if getattr(ds, "has_ground_truth", True) or not hasattr(ds, "check_labels"):
        return
    needing = [METHODS.canonical(m) for m in methods if m in METHODS and method_traits(m)["needs_label"]]
    if not needing:
        return
    if not ds.has_labels:
        raise SystemExit(f"{', '.join(needing)} needs image-level labels: give --labels FILE.csv or "
                         f"--labels-from-folders (label-free methods, e.g. STL-WL, run without)")
    missing = ds.unlabelled()
    if missing:
        raise SystemExit(f"{', '.join(needing)} needs a label for every image; {len(missing)} image(s) have none in "
                         f"{ds.labels_source} (e.g. {missing[0]})")
    ds.check_labels(get_classifier().classes)


def failure_summary(name, failures: dict, path, show: int = 20) -> str:
    """The lines `stl run` prints about failed images (all of them are recorded in the run file)."""
    lines = [f"{name}: {len(failures)} image(s) FAILED (recorded under /failures in {path}; "
             f"a rerun retries them):"]
    for i, msg in list(failures.items())[:show]:
        lines.append(f"  FAILED {i}: {msg}")
    if len(failures) > show:
        lines.append(f"  ... and {len(failures) - show} more")
    return "\n".join(lines)


def main(args) -> int:
    from ..proposals import build_run_method
    from ..runner import DEFAULT_MAX_WINDOWS, MethodJob, run_jobs, run_path

    ds = dataset_from_args(args)
    ds.take(args.limit)
    if not len(ds):
        from ..data import DatasetError

        raise DatasetError(f"{ds.describe()}: no images to process (an empty image list?)")
    print(f"dataset: {ds.describe()}")
    cache = {}
    model, config = model_spec(args), stl_config(args)
    executor = executor_from_args(args)

    def get_classifier():
        if "clf" not in cache:
            cache["clf"] = model.build(mean_mode=config.caffe_mean)
            print(f"classifier: {cache['clf'].describe()}")
        return cache["clf"]

    check_method_labels(ds, args.method, get_classifier, args)
    max_windows = args.max_windows if args.max_windows is not None else DEFAULT_MAX_WINDOWS
    jobs = []
    for name in args.method:
        method = method_for(executor, name, model, config, lambda: build_run_method(name, get_classifier, config))
        uses = method.uses_classifier
        key = model.run_name if uses else None
        path = run_path(args.out, ds.key, name, key, uses, config.profile)
        print(f"{name}: -> {path}")
        jobs.append(MethodJob(method, path, name, key))
    try:  # several methods in this process: one pass, STL-WL / STL-CL / STL+ share forwards (runner.run_jobs)
        summaries = run_jobs(ds, jobs, executor, chunk_size=args.chunk, max_windows=max_windows,
                             progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"{', '.join(args.method)}: interrupted; finished images are saved in "
              f"{', '.join(str(j.path) for j in jobs)}; rerun the same command to continue")
        return 130
    rc = 0
    for j, summary in zip(jobs, summaries):
        name = j.method_name
        print(f"{name}: {summary.computed} images computed, {summary.skipped} already done, "
              f"{len(summary.failures)} failed, {summary.seconds:.1f} s -> {summary.path}")
        if summary.failures:  # the others are finished and saved; exit 1 (README, "Exit codes")
            print(failure_summary(name, summary.failures, j.path), file=sys.stderr)
            rc = 1
        if args.eval:
            from .eval import print_evaluation
            from ..evaluation.runs import evaluate_run

            print_evaluation(evaluate_run(j.path))
    return rc
