"""The package installs like a library: a wheel built from this checkout, installed
non-editable into its own folder (shadowing the editable install; the dependencies come
from the environment), runs ``stl demo --limit 1`` and ``stl eval`` on a stored run from a
folder outside the repository -- and every ``stl`` module those commands loaded came from
the installed folder, none from the checkout."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# runs the stl command line in-process, then reports where every loaded stl module came from
RUNNER = """
import json, sys
from stl.cli import main
try:
    rc = main(sys.argv[2:])
except SystemExit as e:
    rc = e.code
files = sorted({m.__file__ for n, m in list(sys.modules.items())
                if (n == "stl" or n.startswith("stl.")) and getattr(m, "__file__", None)})
open(sys.argv[1], "w").write(json.dumps({"rc": rc, "files": files}))
sys.exit(rc)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "dist"), str(REPO)], check=True, timeout=600, cwd=tmp)
    wheels = list((tmp / "dist").glob("stl-*.whl"))
    assert len(wheels) == 1, wheels
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheels[0])], check=True, timeout=600, cwd=tmp)
    outside = tmp / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), MPLBACKEND="Agg", GLOG_minloglevel="2")
    return target, outside, env


def stl_cli(installed, *argv, timeout=1800):
    target, outside, env = installed
    report = outside / "modules.json"
    r = subprocess.run([sys.executable, "-c", RUNNER, str(report), *argv], cwd=outside, env=env,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    files = json.loads(report.read_text())["files"]
    assert files and all(Path(f).resolve().is_relative_to(target.resolve()) for f in files), \
        [f for f in files if not Path(f).resolve().is_relative_to(target.resolve())]
    return r


@pytest.mark.slow
def test_installed_package_runs_a_method_and_evaluates_it_outside_the_checkout(installed):
    target, outside, env = installed
    assert not (outside / "stl").exists() and not str(outside.resolve()).startswith(str(REPO))
    v = stl_cli(installed, "--version")
    assert str(target / "stl") in v.stdout
    stl_cli(installed, "run", "--dataset", "sample", "--method", "CENTER", "--out", "runs", "--no-progress")
    run = outside / "runs" / "sample" / "CENTER.h5"
    assert run.is_file()
    r = stl_cli(installed, "eval", str(run), "--json", "eval.json")
    assert "CENTER" in r.stdout
    ev = json.loads((outside / "eval.json").read_text())
    assert ev and "sample" in json.dumps(ev)
    # the console script is installed too
    script = target / "bin" / "stl"
    assert script.is_file() and "stl.cli" in script.read_text()


@pytest.mark.slow
def test_installed_package_runs_the_demo_on_one_bundled_image(installed):
    """``stl demo --limit 1`` (the packaged sample annotations and the EfficientNet-Lite0 wheel);
    one segmentation instead of four keeps it to about a minute on a 2-core CPU."""
    target, outside, env = installed
    stl_cli(installed, "demo", "--limit", "1", "--out", "demo", "--set", "segmentation.ks=100",
            "--set", "segmentation.color_spaces=hsv")
    summary = json.loads((outside / "demo" / "summary.json").read_text())
    assert [r["method"] for r in summary["results"]] == ["STL-WL", "STL-CL"]
    assert all(r["num_windows"] > 0 for r in summary["results"])
    assert (outside / "demo" / "overview.png").stat().st_size > 1000
