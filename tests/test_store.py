"""stl.store: the one per-image atomic store (runner and feature cache): atomicity under SIGKILL,
the cross-process lock, identity checks, reading while another process writes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stl.store import Store, StoreLocked, StoreMismatch, is_locked

REPO = Path(__file__).resolve().parents[1]

WRITER = """
import sys, numpy as np
from stl.store import Store
s = Store(sys.argv[1], {"format": "test/1"})
with s.lock():
    print("locked", flush=True)
    for i in range(100000):
        s.write(f"img/{i}", {"x": np.full(20000, i, np.float32)}, {"i": i})
"""


def test_entries_roundtrip_and_ids(tmp_path):
    s = Store(tmp_path / "s", {"format": "t/1", "model": "m"})
    assert s.ids() == [] and not s.exists()
    s.write("val/a%b.JPEG", {"boxes": np.arange(8).reshape(2, 4)}, {"seconds": 1.5, "cfg": {"k": 1}})
    s.write("c", {"boxes": np.zeros((0, 4))})
    assert s.ids() == ["c", "val/a%b.JPEG"] and "c" in s and "d" not in s
    data, attrs = s.read("val/a%b.JPEG")
    np.testing.assert_array_equal(data["boxes"], np.arange(8).reshape(2, 4))
    assert attrs == {"image_id": "val/a%b.JPEG", "seconds": 1.5, "cfg": '{"k": 1}'}
    with pytest.raises(KeyError):
        s.read("d")
    assert Store(tmp_path / "s").identity == {"format": "t/1", "model": "m"}  # read-only open adopts it
    Store(tmp_path / "s", {"format": "t/1", "model": "m", "extra": 1}, ("format", "model"))  # other keys ignored
    with pytest.raises(StoreMismatch, match="model: 'm' vs 'other'"):
        Store(tmp_path / "s", {"format": "t/1", "model": "other"})
    s.remove()
    assert not (tmp_path / "s").exists()


def test_lock_is_exclusive_across_processes_and_dies_with_its_process(tmp_path):
    root = tmp_path / "s"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        s = Store(root)
        assert is_locked(s.lock_path)
        with pytest.raises(StoreLocked, match="being written by another process"):
            with s.lock():
                pass
        # readable while written: every entry listed is whole
        deadline = time.time() + 30
        while len(s) < 20 and time.time() < deadline:
            time.sleep(0.01)
        for i in s.ids()[:20]:
            data, attrs = s.read(i)
            assert data["x"].shape == (20000,) and (data["x"] == attrs["i"]).all()
        # SIGKILL at an arbitrary moment of the write loop
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not is_locked(s.lock_path)
    ids = s.ids()
    assert len(ids) >= 20
    for i in ids:  # only whole entries under final names
        data, attrs = s.read(i)
        assert data["x"].shape == (20000,) and (data["x"] == attrs["i"]).all(), i
    with s.lock():  # the next writer takes the lock at once and sweeps the dead writer's temporaries
        s.remove_stale_temps()
    assert not list(root.glob(".*.tmp"))
