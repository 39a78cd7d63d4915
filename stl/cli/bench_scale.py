"""``stl bench-scale``: images/s of the local executor vs Ray workers on this machine, and
Ray's start-up and per-image overhead (docs/scale.md)."""
from __future__ import annotations

from pathlib import Path


def add_arguments(p):
    p.add_argument("--images", type=int, default=4, help="images of the STL runs (../shared ILSVRC, else sample)")
    from .args import add_common_arguments

    p.add_argument("--method", default="STL-WL")
    add_common_arguments(p)  # STL: the profile with one cheap segmentation (ks 500, hsv) unless --set says otherwise
    p.add_argument("--local-threads", type=int, nargs="+", default=[2, 1],
                   help="threads of the local runs (default 2 1; the first is the baseline)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts, 1 thread each")
    p.add_argument("--overhead-images", type=int, default=32, help="images of the per-image overhead runs")
    p.add_argument("--round-trip-calls", type=int, default=200, help="no-op worker calls timed for the round trip")
    p.add_argument("--address", default=None, help="a Ray cluster (default: a local instance)")
    p.add_argument("--out", default="results/bench-scale")


def main(args) -> int:
    from ..experiments.bench_scale import format_report, rows_for_csv, run_scale_benchmark, scale_config
    from ..paths import shared_dir
    from .args import model_spec, stl_config
    from .bench import append_row

    shared = shared_dir()
    config = stl_config(args, defaults={"segmentation": scale_config().segmentation})
    res = run_scale_benchmark(num_images=args.images, method=args.method, model=model_spec(args), config=config,
                              local_threads=args.local_threads,
                              ray_workers=args.workers, overhead_images=args.overhead_images,
                              round_trip_calls=args.round_trip_calls,
                              address=args.address, shared=shared if shared.is_dir() else None)
    print()
    print(format_report(res))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench_scale.csv"
    for row in rows_for_csv(res):
        append_row(path, row)
    print(f"\nappended to {path}")
    return 0
