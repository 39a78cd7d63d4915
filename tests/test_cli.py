"""`stl localize` end to end on a real photo; bad input gives a message, not a traceback."""
import json
import subprocess
import sys

from PIL import Image


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "stl.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900)


def test_localize_cli_writes_figure_and_json(tmp_path):
    from skimage import data

    Image.fromarray(data.coffee()[::4, ::4]).save(tmp_path / "coffee.png")
    (tmp_path / "bad.jpg").write_text("garbage")
    r = run_cli("localize", str(tmp_path / "coffee.png"), str(tmp_path / "bad.jpg"), "--label", "n07920052",
                "--top", "3", "--set", "segmentation.ks=100", "--set", "segmentation.color_spaces=hsv",
                "--out", str(tmp_path / "out"))
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 1  # one image failed, the other was processed
    assert "bad.jpg: cannot decode image" in r.stderr
    d = json.loads((tmp_path / "out" / "coffee_cl.json").read_text())
    assert len(d["windows"]) > 3 and d["windows"][0]["label"] == "n07920052"
    assert (tmp_path / "out" / "coffee_cl.png").stat().st_size > 1000
    assert "drop" in r.stdout


def test_unknown_label_and_model_are_clear_errors(tmp_path):
    from skimage import data

    Image.fromarray(data.coffee()[::8, ::8]).save(tmp_path / "c.png")
    r = run_cli("localize", str(tmp_path / "c.png"), "--label", "n99999999", "--out", str(tmp_path))
    assert r.returncode == 2 and "unknown class" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("localize", str(tmp_path / "c.png"), "--model", "nosuchnet", "--out", str(tmp_path))
    assert r.returncode == 2 and "unknown model" in r.stderr and "Traceback" not in r.stderr
