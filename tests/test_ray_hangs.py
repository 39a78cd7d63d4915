"""Ray runs that used to hang end in one clear error within a bounded time (issue 21, item 4):

* ``--address`` naming no Ray cluster (``127.0.0.1:1``): refused before ``ray.init`` (which retries
  for minutes), within :data:`stl.executors.ray_executor.CONNECT_TIMEOUT_S`;
* the local Ray instance losing its raylet (what killing ``ray::DashboardAgent``, e.g. by the OOM
  killer, does): the driver notices within :data:`stl.executors.ray_executor.HEALTH_S` of no
  progress, says so and exits 2 with the finished images saved (a rerun resumes).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]), GLOG_minloglevel="2")


def test_address_without_cluster_is_a_clear_error_within_seconds(tmp_path):
    t = time.time()
    r = subprocess.run([sys.executable, "-m", "stl.cli", "run", "--dataset", "sample", "--method", "CENTER",
                        "--no-progress", "--out", str(tmp_path), "--address", "127.0.0.1:1"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    took = time.time() - t
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("stl: error:")]
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-1500:]
    assert "127.0.0.1:1" in lines[0] and "Ray" in lines[0], lines[0]
    assert took < 60, took


def _children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d))
    return out


def _descendants(pid):
    todo, out = [pid], []
    while todo:
        for k in _children(todo.pop()):
            out.append(k)
            todo.append(k)
    return out


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.slow  # ~30-60 s: a local Ray instance and one worker
def test_dashboard_agent_killed_is_a_clear_error_not_a_hang(ilsvrc_dir, tmp_path):
    from stl.executors.ray_executor import HEALTH_S, HEALTH_TIMEOUT_S

    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import sys
        import ray_helpers  # registers PIXEL-TEST
        from stl.cli import main
        sys.exit(main(["run", "--dataset", "ilsvrc2012_val", "--root", {str(ilsvrc_dir)!r}, "--limit", "40",
                       "--chunk", "1", "--method", ray_helpers.NAME, "--out", {str(tmp_path / "out")!r},
                       "--no-progress", "--executor", "ray", "--workers", "1"]))
        """))
    # PIXEL-TEST with its default (no delay) is too fast to interrupt: slow it through the registry default
    env = _env()
    env["STL_TEST_PIXEL_DELAY"] = "0.5"
    p = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, start_new_session=True)
    try:
        agent, t0 = None, time.time()
        while agent is None and time.time() - t0 < 120 and p.poll() is None:
            time.sleep(1)
            agents = [k for k in _descendants(p.pid) if "DashboardAgent" in _cmdline(k)]
            workers = [k for k in _descendants(p.pid) if "ray::Worker" in _cmdline(k)]
            if agents and workers:
                time.sleep(3)  # a few images computed
                agent = agents[0]
        assert agent is not None, ("no DashboardAgent / worker appeared", p.poll(),
                                   p.stderr.read()[-2000:] if p.poll() is not None else "")
        os.kill(agent, signal.SIGKILL)
        t_kill = time.time()
        out, err = p.communicate(timeout=HEALTH_S + HEALTH_TIMEOUT_S + 120)
        took = time.time() - t_kill
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    print(f"driver ended {took:.1f} s after the kill: {err.strip().splitlines()[-1]}")
    lines = [ln for ln in err.splitlines() if ln.startswith("stl: error:")]
    assert p.returncode == 2 and len(lines) == 1, err[-2000:]
    assert "Ray" in lines[0] and "rerun" in lines[0], lines[0]
    assert took < HEALTH_S + HEALTH_TIMEOUT_S + 30, took
    # the rerun resumes: the images finished before the kill are not computed again
    env.pop("STL_TEST_PIXEL_DELAY")
    r = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r"(\d+) images computed, (\d+) already done", r.stdout)
    assert m and int(m.group(2)) > 0 and int(m.group(1)) + int(m.group(2)) == 40, r.stdout[-500:]
    print(f"rerun: {m.group(0)}")
