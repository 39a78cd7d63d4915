"""``stl bench``: speed of the STL engine vs the authors' one-forward-at-a-time procedure
(:func:`stl.experiments.bench.run_benchmark`); ``stl bench --detection``: the cost drivers of
the detector experiments and the projected paper-size run time
(:func:`stl.experiments.bench.run_detection_bench`)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .args import add_common_arguments, model_spec, stl_config
from .validate import nonnegative_int, positive_int


def add_arguments(p):
    add_common_arguments(p)
    p.add_argument("--images", type=positive_int, default=16,
                   help="number of real images (../shared ILSVRC, else sample)")
    p.add_argument("--images-per-chunk", type=positive_int, default=16,
                   help="images sharing classifier batches (more: fuller batches in the merge rounds)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: the best batch size measured")
    p.add_argument("--reference-images", type=nonnegative_int, default=2,
                   help="images also run in reference mode (0: skip)")
    p.add_argument("--no-cl", action="store_true",
                   help="skip STL-CL after STL-WL on the same images (the forwards the two share)")
    p.add_argument("--out", default="results/bench")
    d = p.add_argument_group("detector experiments (--detection)")
    d.add_argument("--detection", action="store_true",
                   help="measure window features + SVM fits instead, and project Table 1/2 + Fig. 6's run time")
    d.add_argument("--windows", type=positive_int, default=256, help="windows whose features are timed")
    d.add_argument("--feature-batch-size", type=positive_int, default=64)
    d.add_argument("--svm-examples", type=positive_int, default=5000)
    d.add_argument("--config", default=None, help="detection config JSON (default: the paper's)")


def main(args) -> int:
    from ..experiments.bench import append_row, run_benchmark, run_detection_bench
    from ..paths import shared_dir

    model, config = model_spec(args), stl_config(args)
    out = Path(args.out)
    if args.detection:
        res = run_detection_bench(model, windows=args.windows, batch_size=args.feature_batch_size,
                                  svm_examples=args.svm_examples, config_path=args.config,
                                  out=out / "detection_bench.json", config=config)
        print(json.dumps(res, indent=1))
        print(f"\nwrote {out / 'detection_bench.json'}")
        return 0
    shared = shared_dir()
    res = run_benchmark(model, num_images=args.images, images_per_chunk=args.images_per_chunk,
                        batch_size=args.batch_size, reference_images=args.reference_images,
                        shared=shared if shared.is_dir() else None, config=config, class_level=not args.no_cl)
    width = max(len(k) for k, _ in res.rows())
    print("\nSTL benchmark")
    for k, v in res.rows():
        print(f"  {k:<{width}}  {v}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.csv"
    row = dataclasses.asdict(res)
    for group in ("stage_seconds_per_image", "forwards_per_image_by_kind"):  # one CSV column per entry
        row.update({f"{group}:{k}": v for k, v in row.pop(group).items()})
    append_row(path, row)
    print(f"\nappended to {path}")
    return 0
