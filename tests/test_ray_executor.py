"""The Ray executor (stl/executors/ray_executor.py) on a local Ray instance with 2 CPUs:
same stored windows as the local executor, a worker killed by PID, the driver killed
with SIGKILL and rerun, an image that kills its worker every time.

One Ray instance serves the whole module (start-up takes seconds). The mechanics
use PIXEL-TEST (tests/ray_helpers.py: deterministic windows from the pixels, a
delay, a crash switch); one STL-WL case with EfficientNet-Lite0 checks the real
method's windows against the local executor's.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ray_helpers
from stl.data import get_dataset
from stl.cli.args import add_executor_arguments, executor_from_args
from stl.executors import MethodSpec
from stl.executors.local import LocalExecutor
from stl.runner import load_run, partial_dir, run_method
from stl.store import Store

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance (2 CPUs) for the module; its workers import tests/ray_helpers."""
    import ray

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS)] + ([old] if old else []))
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _ds(ilsvrc_dir, n):
    return get_dataset("ilsvrc2012_val", root=ilsvrc_dir).take(n)


def _pixel(**options):
    return MethodSpec.for_method(ray_helpers.NAME, options=tuple(sorted(options.items())))


def _content(path):
    run = load_run(path, include_partial=False)
    return run.image_ids, {i: (run.boxes[i].tolist(), run.scores[i].tolist()) for i in run.image_ids}, run.failures


@pytest.fixture(scope="module")
def reference(ilsvrc_dir, tmp_path_factory):
    """PIXEL-TEST on 16 images with the local executor: ids, windows, failures."""
    path = tmp_path_factory.mktemp("ref") / "PIXEL.h5"
    s = run_method(_ds(ilsvrc_dir, 16), _pixel(), path, chunk_size=2, progress=False, executor=LocalExecutor())
    assert s.complete and s.computed == 16
    return _content(path)


# ----------------------------------------------------------------------------- options (no Ray)
def _parse(*argv):
    p = argparse.ArgumentParser()
    add_executor_arguments(p)
    return p.parse_args(list(argv))


def test_executor_options():
    assert isinstance(executor_from_args(_parse()), LocalExecutor)
    assert executor_from_args(_parse("--threads-per-worker", "3")).threads == 3
    ex = executor_from_args(_parse("--address", "10.0.0.1:6379", "--workers", "8", "--gpus-per-worker", "0.5"))
    assert (ex.name, ex.address, ex.workers, ex.gpus_per_worker, ex.threads) == ("ray", "10.0.0.1:6379", 8, 0.5, 1)
    ex = executor_from_args(_parse("--executor", "ray", "--threads-per-worker", "2", "--max-retries", "0"))
    assert (ex.address, ex.workers, ex.threads, ex.max_retries) == (None, None, 2, 0)
    for bad in (["--executor", "local", "--workers", "2"], ["--gpus-per-worker", "1"]):
        with pytest.raises(SystemExit):
            executor_from_args(_parse(*bad))


def test_method_spec_is_built_where_it_runs():
    spec = MethodSpec.for_method(ray_helpers.NAME, options=(("delay", 0.25),))
    assert spec.modules == ("ray_helpers",) and not spec.uses_classifier
    m = spec.build()
    assert isinstance(m, ray_helpers.PixelTest) and m.delay == 0.25
    assert MethodSpec.for_method("STL-WL").uses_classifier


# ----------------------------------------------------------------------------- Ray
def test_two_workers_store_the_local_windows(ray_local, ilsvrc_dir, reference, tmp_path):
    path = tmp_path / "PIXEL.h5"
    ex = _RayExecutor(workers=2)
    s = run_method(_ds(ilsvrc_dir, 16), _pixel(), path, chunk_size=2, progress=False, executor=ex)
    assert s.complete and s.computed == 16 and not s.failures
    assert _content(path) == reference
    assert sorted(ex.chunks_done) == [0, 1] and sum(ex.chunks_done.values()) == 8  # both workers computed
    assert load_run(path).meta["executor"].startswith("ray (2 workers x 1 threads")


def test_cli_run_with_ray(ray_local, ilsvrc_dir, reference, tmp_path):
    from stl.cli import main

    rc = main(["run", "--dataset", "ilsvrc2012_val", "--root", str(ilsvrc_dir), "--limit", "16", "--chunk", "2",
               "--method", ray_helpers.NAME, "--out", str(tmp_path), "--no-progress",
               "--executor", "ray", "--workers", "2"])
    assert rc == 0
    assert _content(tmp_path / "ilsvrc2012_val" / "PIXEL-TEST.h5") == reference


def _RayExecutor(**kw):
    from stl.executors.ray_executor import RayExecutor

    return RayExecutor(**kw)


@pytest.mark.slow
def test_stl_windows_equal_local_executor(ray_local, ilsvrc_dir, tmp_path):
    """STL-WL (EfficientNet-Lite0, fp32, one segmentation to keep it short) on 2 images:
    2 Ray workers x 1 thread store exactly the local executor's windows (1 thread)."""
    from stl.core.config import SegmentationConfig, STLConfig

    cfg = STLConfig(segmentation=SegmentationConfig(ks=(500,), color_spaces=("hsv",)))
    spec = MethodSpec.for_method("STL-WL", config=cfg)
    ds = _ds(ilsvrc_dir, 2)
    local = run_method(ds, spec, tmp_path / "local.h5", chunk_size=1, progress=False,
                       executor=LocalExecutor(threads=1))
    ex = _RayExecutor(workers=2)
    remote = run_method(ds, spec, tmp_path / "ray.h5", chunk_size=1, progress=False, executor=ex)
    assert local.complete and remote.complete and local.computed == remote.computed == 2
    assert sorted(ex.chunks_done) == [0, 1]
    ids, windows, failures = _content(tmp_path / "ray.h5")
    assert (ids, windows, failures) == _content(tmp_path / "local.h5")
    assert all(len(windows[i][0]) > 1 for i in ids)
    a, b = load_run(tmp_path / "local.h5"), load_run(tmp_path / "ray.h5")
    assert a.meta["method_config"] == b.meta["method_config"] and a.meta["model"] == b.meta["model"]


def _wait(cond, timeout, what):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_worker_killed_by_pid_mid_run(ray_local, ilsvrc_dir, reference, tmp_path):
    path = tmp_path / "PIXEL.h5"
    ex = _RayExecutor(workers=2)
    out = {}

    def run():
        try:
            out["summary"] = run_method(_ds(ilsvrc_dir, 16), _pixel(delay=0.5), path, chunk_size=2,
                                        progress=False, executor=ex)
        except BaseException as e:  # pragma: no cover - reported below
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    _wait(lambda: len(ex.worker_pids()) == 2 or "error" in out, 120, "two workers")
    pids = ex.worker_pids()
    _wait(lambda: len(Store(partial_dir(path))) >= 2 or "error" in out, 120, "the first images")
    victim = pids[0]
    os.kill(victim, signal.SIGKILL)  # the worker's process, found through Ray (an actor method's os.getpid())
    t.join(timeout=180)
    assert not t.is_alive() and "error" not in out, out.get("error")
    s = out["summary"]
    assert ex.restarts >= 1  # the death was seen and the worker replaced
    assert s.complete and not s.failures
    assert _content(path) == reference


DRIVER = textwrap.dedent("""
    import sys
    sys.path[:0] = [sys.argv[5], sys.argv[6]]
    import ray_helpers
    from stl.data import get_dataset
    from stl.executors import MethodSpec
    from stl.executors.ray_executor import RayExecutor
    from stl.runner import run_method

    ds = get_dataset("ilsvrc2012_val", root=sys.argv[1]).take(int(sys.argv[2]))
    spec = MethodSpec.for_method(ray_helpers.NAME, options=(("delay", 0.5),))
    run_method(ds, spec, sys.argv[3], chunk_size=2, progress=False,
               executor=RayExecutor(address=sys.argv[4], workers=2))
""")


@pytest.mark.slow
def test_driver_sigkill_then_rerun_completes(ray_local, ilsvrc_dir, reference, tmp_path):
    """The driver (a process joined to the module's Ray instance by --address) is killed with
    SIGKILL mid-run; its committed images survive and a rerun computes only the rest."""
    path = tmp_path / "PIXEL.h5"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    address = ray_local.get_runtime_context().gcs_address
    proc = subprocess.Popen([sys.executable, str(script), str(ilsvrc_dir), "16", str(path), address, str(REPO),
                             str(TESTS)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: len(Store(partial_dir(path))) >= 4 or proc.poll() is not None, 180, "4 committed images")
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    committed = set(Store(partial_dir(path)).ids())
    assert 4 <= len(committed) < 16 and not path.exists()
    s = run_method(_ds(ilsvrc_dir, 16), _pixel(), path, chunk_size=2, progress=False,
                   executor=_RayExecutor(workers=2))
    assert s.skipped >= len(committed) and s.computed == 16 - s.skipped and s.complete
    assert _content(path) == reference


@pytest.mark.slow
def test_image_that_kills_its_worker_is_recorded_failed(ray_local, ilsvrc_dir, reference, tmp_path):
    ds = _ds(ilsvrc_dir, 6)
    bad = ds.image_ids[3]
    path = tmp_path / "PIXEL.h5"
    ex = _RayExecutor(workers=2, max_retries=1)
    s = run_method(ds, _pixel(crash_on=bad), path, chunk_size=2, progress=False, executor=ex)
    # the chunk (ids 2, 3) dies twice, then each image alone: 3 dies a third time -> failed
    assert ex.restarts == 3 and ex.crashes[bad] == 3
    assert list(s.failures) == [bad] and s.failures[bad].startswith("WorkerDied: its worker died 3 times")
    ids, windows, failures = _content(path)
    assert ids == [i for i in ds.image_ids if i != bad] and list(failures) == [bad]
    ref_ids, ref_windows, _ = reference
    assert windows == {i: ref_windows[i] for i in ids}
    assert s.complete  # every image is accounted for; a rerun retries the failed one


@pytest.mark.slow
def test_bench_scale_measures_every_setup(ray_local, shared_dir):
    """`stl bench-scale`'s measurement, with a method that costs nothing (the real one runs STL)."""
    from stl.experiments.bench_scale import format_report, rows_for_csv, run_scale_benchmark

    res = run_scale_benchmark(num_images=2, method="WHOLE-IMAGE", local_threads=(2, 1), ray_workers=(1, 2),
                              overhead_images=4, round_trip_calls=5, shared=shared_dir)
    setups = [r.setup for r in res["rows"]]
    assert setups == ["local 1 x 2 threads", "local 1 x 1 thread", "ray 1 x 1 thread", "ray 2 x 1 thread",
                      "local, WHOLE-IMAGE", "ray 1 worker, WHOLE-IMAGE"]
    assert all(r.images_per_s > 0 and abs(r.s_per_image * r.images_per_s - 1) < 1e-9 for r in res["rows"])
    assert res["ray_runs_identical"] and res["ray_equals_local"] and res["ray_equals_local_1_thread"]
    assert res["ray_startup_s"] < 1  # the module's Ray instance was already up: no start-up
    assert 0 < res["ray_round_trip_s"] < 5
    assert "Ray round trip per task" in format_report(res) and len(rows_for_csv(res)) == 6


# ----------------------------------------------------------------------------- plug-ins: traits, not names
def test_plugin_model_and_method_run_alike_locally_and_on_ray(ray_local, ilsvrc_dir, tmp_path):
    """A method and a model registered under new names (tests/ray_helpers.py) are built from
    what they declared: the method gets the classifier and the STLConfig (it takes ``config``),
    the model is no Caffe net -- in this process and in a Ray worker alike."""
    from stl.core.config import DEFAULT
    from stl.models.spec import ModelSpec
    from stl.proposals import build_run_method

    assert not ModelSpec(ray_helpers.TINY_MODEL).is_caffe
    config = DEFAULT.replace(nms_iou=0.25)
    spec = MethodSpec.for_method(ray_helpers.CONFIG_METHOD, model=ray_helpers.TINY_MODEL, config=config)
    assert spec.uses_classifier and spec.traits()["takes_config"]
    ds = _ds(ilsvrc_dir, 4)
    live = build_run_method(ray_helpers.CONFIG_METHOD, lambda: ModelSpec(ray_helpers.TINY_MODEL).build(), config)
    paths = {"live": tmp_path / "live.h5", "local": tmp_path / "local.h5", "ray": tmp_path / "ray.h5"}
    run_method(ds, live, paths["live"], method_name=ray_helpers.CONFIG_METHOD, progress=False)
    run_method(ds, spec, paths["local"], method_name=ray_helpers.CONFIG_METHOD, progress=False,
               executor=LocalExecutor())
    run_method(ds, spec, paths["ray"], method_name=ray_helpers.CONFIG_METHOD, progress=False,
               executor=_RayExecutor(workers=1))
    got = {k: _content(p) for k, p in paths.items()}
    assert got["live"] == got["local"] == got["ray"]
    ids, windows, failures = got["ray"]
    assert len(ids) == 4 and not failures
    from stl.core.localization import resize_to_input

    net = ray_helpers.TinyNet()
    for i in ids:  # p(class 0) plus the config's nms_iou: the config reached the worker
        (box,), (score,) = windows[i]
        x = resize_to_input(ds.record(i).read(), net.input_size, config.input_resize)[None].astype(np.float32)
        assert score == pytest.approx(float(net.forward(x)["prob"][0, 0]) + 0.25, abs=1e-6)
    metas = {k: load_run(p).meta for k, p in paths.items()}
    assert metas["ray"]["model"] == ray_helpers.TINY_MODEL
    for key in ("method_config", "preprocessing"):  # the same identity, whoever computed the run
        assert metas["live"][key] == metas["local"][key] == metas["ray"][key]
    assert '"nms_iou": 0.25' in metas["ray"]["method_config"]
    assert metas["ray"]["preprocessing"] == '{"precision": "fp32"}'
