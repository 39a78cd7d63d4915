"""``stl bench``: speed of the STL engine vs the authors' one-forward-at-a-time procedure."""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from .validate import nonnegative_int, positive_int


def add_arguments(p):
    p.add_argument("--model", default="efficientnet_lite0",
                   help="efficientnet_lite0, caffenet_random (CaffeNet architecture, random weights), squeezenet, ...")
    p.add_argument("--engine", choices=["torch", "caffe"], default="torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--images", type=positive_int, default=16, help="number of real images (../shared ILSVRC, else sample)")
    p.add_argument("--images-per-chunk", type=positive_int, default=16,
                   help="images sharing classifier batches (more: fuller batches in the merge rounds)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: the best batch size measured")
    p.add_argument("--reference-images", type=nonnegative_int, default=2, help="images also run in reference mode (0: skip)")
    p.add_argument("--no-incremental", action="store_true",
                   help="masked images through the whole net (default: recompute only what the box changes, "
                        "Caffe nets in the torch engine)")
    p.add_argument("--out", default="results/bench")


def main(args) -> int:
    from ..bench import run_benchmark

    from ..paths import shared_dir

    shared = shared_dir()
    res = run_benchmark(model=args.model, device=args.device, precision=args.precision, num_images=args.images,
                        images_per_chunk=args.images_per_chunk, batch_size=args.batch_size,
                        reference_images=args.reference_images, shared=shared if shared.is_dir() else None,
                        engine=args.engine, incremental=not args.no_incremental)
    width = max(len(k) for k, _ in res.rows())
    print("\nSTL benchmark")
    for k, v in res.rows():
        print(f"  {k:<{width}}  {v}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.csv"
    append_row(path, dataclasses.asdict(res))
    print(f"\nappended to {path}")
    return 0


def append_row(path: Path, row: dict) -> None:
    """Append ``row`` to a CSV; rows written before a column was added keep it empty."""
    rows, fields = [], list(row)
    if path.exists():
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = list(reader.fieldnames or []) + [k for k in row if k not in (reader.fieldnames or [])]
    rows.append(row)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
