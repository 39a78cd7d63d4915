"""Scale-out benchmark (``stl bench-scale`` / ``make bench-scale``, docs/scale.md).

On one machine, through the real runner (:func:`stl.runner.run_method`, store and all):

* the same STL-WL run (a cheap configuration: one segmentation, so a CPU run takes
  seconds per image) with the local executor (1 process x each of ``local_threads``
  threads) and with Ray (``1..N`` workers x 1 thread) -> images/s, seconds per
  image and the workers' start-up (actor + classifier build), kept apart;
* Ray's own start-up (``ray.init`` of a local instance);
* Ray's overhead per task: the round trip of a no-op call to a worker, one at a
  time (every chunk pays it once; with ``inflight_per_worker`` = 2 it overlaps the
  previous chunk's work), and a method that costs nothing (WHOLE-IMAGE) on many
  images, one image per task, 1 Ray worker vs the local executor (with Ray the
  worker decodes the images while the driver writes the store: two processes);
* whether the stored windows of the Ray runs equal each other and the local run's.
"""
from __future__ import annotations

import logging
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Sequence

log = logging.getLogger(__name__)

#: the benchmark's cheap STL segmentation (one instead of the paper's four), applied on top of the
#: profile before ``--set`` (``stl bench-scale --set segmentation.ks=50,100`` overrides it)
SCALE_SEGMENTATION = {"ks": (500,), "color_spaces": ("hsv",)}


def scale_config(base=None):
    """``base`` (an STLConfig; default: the authors' profile) with :data:`SCALE_SEGMENTATION`."""
    import dataclasses

    from ..core.config import DEFAULT

    base = DEFAULT if base is None else base
    return base.replace(segmentation=dataclasses.replace(base.segmentation, **SCALE_SEGMENTATION))


@dataclass
class ScaleRow:
    setup: str
    method: str
    images: int
    workers: int
    threads: int
    startup_s: float
    compute_s: float
    images_per_s: float
    s_per_image: float


def _dataset(n: int, shared: Optional[Path]):
    from ..data import get_dataset

    if shared is not None and (Path(shared) / "data" / "ilsvrc2012-val-227").is_dir():
        return get_dataset("ilsvrc2012_val", root=Path(shared) / "data" / "ilsvrc2012-val-227").take(n)
    return get_dataset("sample").take(n)


def _timed_run(dataset, spec, executor, out: Path, chunk: int):
    """run_method through ``executor``; (start-up seconds, compute seconds, run path)."""
    from ..runner import run_method

    t = {}
    start = executor.start

    def timed_start(*a, **kw):
        t0 = time.perf_counter()
        try:
            return start(*a, **kw)
        finally:
            t["start"] = time.perf_counter() - t0

    executor.start = timed_start
    t0 = time.perf_counter()
    s = run_method(dataset, spec, out, chunk_size=chunk, progress=False, executor=executor)
    total = time.perf_counter() - t0
    if s.failures or not s.complete:
        raise RuntimeError(f"benchmark run failed: {s.failures}")
    return t["start"], total - t["start"], out


def _windows(path):
    from ..runner import load_run

    r = load_run(path, include_partial=False)
    return r.image_ids, {i: (r.boxes[i].tobytes(), r.scores[i].tobytes()) for i in r.image_ids}


def _round_trip(executor, spec, calls: int) -> float:
    """Seconds of one call of a worker's no-op method, driver -> actor -> driver, one at a time:
    the latency Ray adds to every task (the rest of a task is the method's own work)."""
    import ray

    executor.start(spec)
    try:
        handle = executor._slots[0].handle
        ray.get(handle.where.remote())
        t0 = time.perf_counter()
        for _ in range(calls):
            ray.get(handle.where.remote())
        return (time.perf_counter() - t0) / calls
    finally:
        executor.close()


def run_scale_benchmark(num_images: int = 4, method: str = "STL-WL", model=None, config=None,
                        local_threads: Sequence[int] = (2, 1),
                        ray_workers: Sequence[int] = (1, 2), overhead_images: int = 32, round_trip_calls: int = 200,
                        address: Optional[str] = None, shared: Optional[Path] = None) -> dict:
    """The measurements of the module docstring for ``method`` with the classifier of ``model``
    (a :class:`stl.models.spec.ModelSpec` or a name; default EfficientNet-Lite0) and ``config``
    (an STLConfig; default :func:`scale_config`: the authors' profile, one segmentation)."""
    import ray

    from ..executors import MethodSpec
    from ..executors.local import LocalExecutor
    from ..executors.ray_executor import RayExecutor
    from ..models.spec import ModelSpec

    model = ModelSpec.of(model or "efficientnet_lite0")
    cfg = config if config is not None else scale_config()
    spec = MethodSpec.from_model_spec(method, model, cfg)
    ds = _dataset(num_images, shared)
    n = len(ds)
    rows: List[ScaleRow] = []
    paths = {}
    with tempfile.TemporaryDirectory(prefix="stl-bench-scale-") as tmp:
        tmp = Path(tmp)
        for k, th in enumerate(local_threads):
            log.info("local executor, 1 x %d threads, %s on %d images", th, method, n)
            key = "local" if k == 0 else f"local{th}"
            st, ct, paths[key] = _timed_run(ds, spec, LocalExecutor(threads=th), tmp / f"{key}.h5", 1)
            rows.append(ScaleRow(f"local 1 x {th} thread{'s' if th > 1 else ''}", method, n, 1, th, st, ct,
                                 n / ct, ct / n))

        owns = not ray.is_initialized()
        t0 = time.perf_counter()
        if owns:
            kw = dict(address=address) if address else dict(num_cpus=max(ray_workers), include_dashboard=False)
            ray.init(log_to_driver=False, **kw)
        ray_start = time.perf_counter() - t0
        try:
            for w in ray_workers:
                log.info("Ray, %d workers x 1 thread, %s on %d images", w, method, n)
                st, ct, paths[f"ray{w}"] = _timed_run(ds, spec, RayExecutor(workers=w, threads_per_worker=1),
                                                      tmp / f"ray{w}.h5", 1)
                rows.append(ScaleRow(f"ray {w} x 1 thread", method, n, w, 1, st, ct, n / ct, ct / n))
            # overhead per image: a method that costs nothing, one image per task
            trivial = MethodSpec.for_method("WHOLE-IMAGE", model=None)
            ods = _dataset(overhead_images, shared)
            m = len(ods)
            st, lt, _ = _timed_run(ods, trivial, LocalExecutor(), tmp / "trivial-local.h5", 1)
            rows.append(ScaleRow("local, WHOLE-IMAGE", "WHOLE-IMAGE", m, 1, 0, st, lt, m / lt, lt / m))
            st, rt, _ = _timed_run(ods, trivial, RayExecutor(workers=1), tmp / "trivial-ray.h5", 1)
            rows.append(ScaleRow("ray 1 worker, WHOLE-IMAGE", "WHOLE-IMAGE", m, 1, 1, st, rt, m / rt, rt / m))
            round_trip = _round_trip(RayExecutor(workers=1), trivial, calls=round_trip_calls)
            win = {k: _windows(p) for k, p in paths.items()}
        finally:
            if owns:
                ray.shutdown()
    ray_keys = [k for k in win if k.startswith("ray")]
    return {
        "rows": rows,
        "ray_startup_s": ray_start,
        "ray_round_trip_s": round_trip,
        "ray_runs_identical": all(win[k] == win[ray_keys[0]] for k in ray_keys),
        "ray_equals_local": all(win[k] == win["local"] for k in ray_keys),
        "ray_equals_local_1_thread": (all(win[k] == win["local1"] for k in ray_keys) if "local1" in win else None),
        "dataset": ds.describe(),
        "config": (f"{method}, {model}, {model.precision}, profile {cfg.profile}, segmentation "
                   f"ks={tuple(cfg.segmentation.ks)} colour spaces={tuple(cfg.segmentation.color_spaces)}"),
        "machine": f"{platform.node()}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
        "ray_version": ray.__version__,
    }


def format_report(res: dict) -> str:
    rows = res["rows"]
    base = rows[0].images_per_s
    lines = [f"Scale-out benchmark ({res['config']}; {res['dataset']}; {res['machine']}; Ray {res['ray_version']})",
             f"  {'setup':<28} {'images':>6} {'img/s':>8} {'s/img':>8} {'vs local':>8} {'start-up s':>10}"]
    for r in rows:
        rel = f"{r.images_per_s / base:.2f}x" if r.method == rows[0].method else ""
        lines.append(f"  {r.setup:<28} {r.images:>6} {r.images_per_s:>8.3f} {r.s_per_image:>8.3f} {rel:>8} "
                     f"{r.startup_s:>10.2f}")
    lines += [f"  Ray start-up (ray.init, local instance): {res['ray_startup_s']:.1f} s",
              f"  Ray round trip per task (no-op worker call, sequential): {1000 * res['ray_round_trip_s']:.2f} ms",
              f"  stored windows: Ray runs identical to each other: {res['ray_runs_identical']}; "
              f"identical to local ({rows[0].threads} threads): {res['ray_equals_local']}"
              + ("" if res.get("ray_equals_local_1_thread") is None
                 else f"; identical to local (1 thread): {res['ray_equals_local_1_thread']}")]
    return "\n".join(lines)


def rows_for_csv(res: dict) -> List[dict]:
    extra = {k: res[k] for k in ("ray_startup_s", "ray_round_trip_s", "ray_runs_identical",
                                 "ray_equals_local", "ray_equals_local_1_thread", "config", "machine",
                                 "ray_version")}
    return [dict(asdict(r), **extra, date=time.strftime("%Y-%m-%d %H:%M")) for r in res["rows"]]
