"""SELSEARCH-OPENCV's windows do not depend on what else runs in the process (issue 21, item 9; the
method was SELSEARCH when the issue was filed; SELSEARCH is now the release's algorithm, whose ranking
draws from a NumPy ``RandomState`` made afresh for every image and needs nothing of this).

OpenCV ranks Selective Search's regions with the C library's process-wide ``rand()``; the method
calls ``srand(seed)`` right before ``process()``. In a process running Ray, Ray's own threads also
call ``rand()`` now and then, so 1-2 of 20 images were ranked differently on ``--executor ray``
than locally. The method now runs OpenCV's ``process()`` in a process of its own whenever Ray runs
in this one. The first test imitates Ray's threads deterministically (a thread calling ``rand()``
every millisecond) on a real image; the slow one compares a real Ray run with a local one.
"""
from __future__ import annotations

import ctypes
import sys
import threading
import types

import numpy as np
import pytest

from stl.proposals import build_method


def _image(ilsvrc_dir):
    from stl.data import get_dataset

    ds = get_dataset("ilsvrc2012_val", root=ilsvrc_dir).take(3)
    return [ds.record(i).load().array for i in ds.image_ids]


class _RandCaller:
    """A thread drawing from the C library's rand() every millisecond (as Ray's threads do, rarely)."""

    def __enter__(self):
        libc = ctypes.CDLL("libc.so.6")
        self.stop = threading.Event()
        self.calls = 0

        def loop():
            while not self.stop.is_set():
                libc.rand()
                self.calls += 1
                self.stop.wait(0.001)

        self.t = threading.Thread(target=loop, daemon=True)
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join()


def test_ranking_unchanged_by_another_thread_drawing_rand_while_ray_runs(ilsvrc_dir, monkeypatch):
    images = _image(ilsvrc_dir)
    ss = build_method("SELSEARCH-OPENCV")
    reference = [ss.propose(im)[0] for im in images]  # no Ray, nothing else drawing
    assert all(np.array_equal(a, ss.propose(im)[0]) for a, im in zip(reference, images))  # repeatable
    # this process now "runs Ray" (what the method asks), and a thread draws from rand() meanwhile
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(is_initialized=lambda: True))
    with _RandCaller() as noise:
        got = [ss.propose(im)[0] for im in images]
    assert noise.calls > 50
    for k, (a, b) in enumerate(zip(reference, got)):
        assert a.shape == b.shape and np.array_equal(a, b), f"image {k}: ranking changed"


@pytest.mark.slow  # ~30 s: a local Ray instance with 2 workers and a local run, 8 images
def test_ray_run_equals_local_run(ilsvrc_dir, tmp_path):
    import os
    import subprocess

    from stl.runner import load_run

    env = dict(os.environ, PYTHONPATH=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    base = [sys.executable, "-m", "stl.cli", "run", "--dataset", "ilsvrc2012_val", "--root", str(ilsvrc_dir),
            "--method", "SELSEARCH-OPENCV", "--limit", "8", "--chunk", "1", "--no-progress"]
    for name, extra in (("local", []), ("ray", ["--executor", "ray", "--workers", "2"])):
        r = subprocess.run(base + ["--out", str(tmp_path / name)] + extra, capture_output=True, text=True, env=env,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    a, b = (load_run(tmp_path / n / "ilsvrc2012_val" / "SELSEARCH-OPENCV.h5") for n in ("local", "ray"))
    assert a.image_ids == b.image_ids
    for i in a.image_ids:
        assert np.array_equal(a.boxes[i], b.boxes[i]), i
