"""The README's "STL on your own images in three commands", run as written (from the README's text)
on a real folder: the bundled sample photos, trimmed to one image (STL costs tens of seconds per
image on a CPU), with one segmentation (`--set`) appended to `stl run`. Prints each command's time."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from conftest import REPO


def walkthrough_commands():
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- walkthrough:.*?-->\s*```bash\n(.*?)```", text, re.S)
    assert m, "README.md has no walkthrough block"
    return [ln for ln in m.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_readme_walkthrough_has_three_commands():
    cmds = walkthrough_commands()
    assert len(cmds) == 3
    assert cmds[1].startswith(".venv/bin/stl run --images photos --labels photos/labels.csv --method STL-CL")
    assert ".venv/bin/stl export" in cmds[2] and "--format coco-pseudo-gt" in cmds[2]


@pytest.mark.slow
def test_readme_walkthrough_runs(tmp_path, capsys):
    from pycocotools.coco import COCO

    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PYTHONPATH=str(REPO), PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    stl_cmd = f"{sys.executable} -m stl.cli"
    times = []
    for k, cmd in enumerate(walkthrough_commands()):
        cmd = cmd.replace(".venv/bin/python", sys.executable).replace(".venv/bin/stl ", stl_cmd + " ")
        if k == 1:  # the run: one segmentation keeps CI short (the README's command is otherwise unchanged)
            cmd += " --set segmentation.color_spaces=hsv --set segmentation.ks=100 --no-progress"
        t = time.time()
        r = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        times.append(time.time() - t)
        assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
        if k == 0:  # the folder is made: keep one photo (and its label line)
            photos = tmp_path / "photos"
            assert sorted(p.name for p in photos.iterdir()) == ["chelsea.png", "coffee.png", "labels.csv",
                                                                "rocket.jpg"]
            (photos / "coffee.png").unlink()
            (photos / "rocket.jpg").unlink()
            lines = (photos / "labels.csv").read_text().splitlines()
            (photos / "labels.csv").write_text("\n".join(ln for ln in lines if not ln.startswith(("coffee",
                                                                                                  "rocket"))) + "\n")
    gt = COCO(str(tmp_path / "photos_gt.json"))
    assert [c["name"] for c in gt.dataset["categories"]] == ["n02123045"]
    (ann,) = gt.dataset["annotations"]
    img = gt.imgs[ann["image_id"]]
    assert img["file_name"] == "chelsea.png" and (img["width"], img["height"]) == (451, 300)
    x, y, w, h = ann["bbox"]
    assert 0 <= x and 0 <= y and x + w <= 451 + 1e-6 and y + h <= 300 + 1e-6 and w * h > 0.05 * 451 * 300
    assert (tmp_path / "photos_gt.png").stat().st_size > 10_000
    with capsys.disabled():
        print(f"\nwalkthrough (1 photo, one segmentation): folder {times[0]:.1f} s, stl run {times[1]:.1f} s, "
              f"stl export {times[2]:.1f} s; top-1 box {[round(v, 1) for v in ann['bbox']]}")
