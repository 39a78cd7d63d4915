"""The runner: HDF5 store, resume after SIGKILL, failures, locking, `stl run` / `stl eval`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from stl.data import get_dataset
from stl.proposals import ProposalMethod
from stl.store import is_locked
from stl.runner import RunError, consolidate, load_run, partial_dir, run_lock, run_method, run_path

REPO = Path(__file__).resolve().parents[1]

# A cheap deterministic method whose windows depend on the pixels, made slow on purpose,
# registered in a child process that then runs the real `stl` command line.
SLOW_CLI = textwrap.dedent("""
    import sys, time
    import numpy as np
    from stl.proposals import ProposalMethod, register_method

    @register_method("SLOW-TEST")
    class Slow(ProposalMethod):
        name = "SLOW-TEST"
        def __init__(self, delay=float(sys.argv[1])):
            self.delay = delay
        def propose(self, image, labels=None, image_id=None):
            time.sleep(self.delay)
            h, w = image.shape[:2]
            m = image.reshape(-1, 3).mean(0)
            k = 3 + int(m[0]) % 5
            x0 = (np.arange(k) * m[1]) % (w / 2)
            y0 = (np.arange(k) * m[2]) % (h / 2)
            boxes = np.stack([x0, y0, x0 + w / 3, y0 + h / 3], 1)
            return boxes, np.linspace(1, 0, k) + m[0] / 1000

    from stl.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def _cli(tmp_path, delay, *args):
    script = tmp_path / "slow_cli.py"
    script.write_text(SLOW_CLI)
    return [sys.executable, str(script), str(delay), *args]


def _content(path):
    run = load_run(path, include_partial=False)
    return run.image_ids, {i: (run.boxes[i].tolist(), run.scores[i].tolist()) for i in run.image_ids}, run


def test_kill_and_resume_equals_uninterrupted_run(ilsvrc_dir, tmp_path):
    n, chunk = 36, 3
    common = ["run", "--dataset", "ilsvrc2012_val", "--root", str(ilsvrc_dir), "--method", "SLOW-TEST",
              "--limit", str(n), "--chunk", str(chunk), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # uninterrupted reference run, no delay
    ref = subprocess.run(_cli(tmp_path, 0.0, *common, "--out", str(tmp_path / "ref")), env=env,
                         capture_output=True, text=True, timeout=120)
    assert ref.returncode == 0, ref.stderr
    ref_path = run_path(tmp_path / "ref", "ilsvrc2012_val", "SLOW-TEST", uses_classifier=False)
    # the interrupted run: killed with SIGKILL once a few chunks are on disk
    out = tmp_path / "out"
    path = run_path(out, "ilsvrc2012_val", "SLOW-TEST", uses_classifier=False)
    proc = subprocess.Popen(_cli(tmp_path, 0.05, *common, "--out", str(out)), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(partial_dir(path).glob("*.h5"))) < 3 * chunk:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not path.exists(), "the run was not interrupted"
    # what the killed run left is readable and partial
    partial = load_run(path)
    done = len(partial.image_ids)
    assert chunk * 3 <= done < n
    assert partial.num_partial_chunks == done  # one atomic entry per finished image
    lock = path.with_name(path.name + ".lock")
    assert lock.exists() and not is_locked(lock)  # the OS released the dead process's lock
    # rerun: computes only the rest
    rerun = subprocess.run(_cli(tmp_path, 0.0, *common, "--out", str(out)), env=env, capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{n - done} images computed, {done} already done" in rerun.stdout
    assert not partial_dir(path).exists() and not is_locked(lock)
    assert not list(out.rglob("*.tmp"))
    ids, data, run = _content(path)
    ref_ids, ref_data, ref_run = _content(ref_path)
    assert ids == ref_ids and len(ids) == n
    assert data == ref_data
    assert run.meta["complete"] and run.meta["num_images"] == n and not run.failures


class Counting(ProposalMethod):
    """Records the batches it is given; fails on a chosen image size."""

    name = "COUNTING"

    def __init__(self, fail_width=None, n=7):
        self.batches, self.fail_width, self.n = [], fail_width, n

    def propose_batch(self, images, labels=None, image_ids=None):
        self.batches.append(len(images))
        return super().propose_batch(images, labels)

    def propose(self, image, labels=None, image_id=None):
        h, w = image.shape[:2]
        if w == self.fail_width:
            raise RuntimeError("boom")
        k = np.arange(self.n, dtype=float)
        return np.stack([k, k, k + w / 2, k + h / 2], 1), -k


def _tiny_dataset(tmp_path, ilsvrc_dir, corrupt=True):
    from PIL import Image

    files = sorted((ilsvrc_dir / "val").glob("*.JPEG"))[:4]
    entries = []
    for i, f in enumerate(files):
        entries.append({"id": f"img{i}", "file": str(f), "labels": ["n01440764"], "boxes": [[0, 0, 100, 100]],
                        "box_labels": ["n01440764"]})
    Image.new("RGB", (50, 30), (200, 10, 10)).save(tmp_path / "odd.png")
    entries.append({"id": "odd", "file": "odd.png", "labels": ["n01440764"], "boxes": [], "box_labels": []})
    if corrupt:
        (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
        entries.append({"id": "bad", "file": "bad.jpg", "size": [10, 10], "labels": ["n01440764"],
                        "boxes": [], "box_labels": []})
    (tmp_path / "annotations.json").write_text(json.dumps({"images": entries}))
    return get_dataset("sample", root=tmp_path)


def test_failures_recorded_and_batches(tmp_path, ilsvrc_dir):
    ds = _tiny_dataset(tmp_path, ilsvrc_dir)
    m = Counting(fail_width=50, n=7)
    path = tmp_path / "runs" / "r.h5"
    s = run_method(ds, m, path, chunk_size=4, max_windows=5, progress=False)
    assert m.batches[:2] == [4, 1]  # chunk 1: four images; chunk 2: 'odd' (and 'bad' failed on reading)
    assert s.computed == 4 and set(s.failures) == {"odd", "bad"}
    assert "boom" in s.failures["odd"] and "ImageError" in s.failures["bad"]
    run = load_run(path)
    assert run.image_ids == ["img0", "img1", "img2", "img3"]
    assert run.boxes["img0"].shape == (5, 4) and run.boxes["img0"].dtype == np.float32
    assert run.image_attrs["img0"]["num_windows_total"] == 7 and run.image_attrs["img0"]["width"] == 227
    # every image was tried (failures count as processed); the failures are listed
    assert set(run.failures) == {"odd", "bad"} and run.meta["complete"] and run.meta["num_failures"] == 2
    # rerun: failed images are retried; 'odd' now works
    m2 = Counting(fail_width=None, n=7)
    s2 = run_method(ds, m2, path, chunk_size=4, max_windows=5, progress=False)
    assert s2.skipped == 4 and s2.computed == 1 and set(s2.failures) == {"bad"}
    run = load_run(path)
    assert run.image_ids == ["img0", "img1", "img2", "img3", "odd"] and set(run.failures) == {"bad"}
    assert run.meta["complete"]
    # another setting for the same file is refused
    with pytest.raises(RunError, match="max_windows"):
        run_method(ds, m2, path, chunk_size=4, max_windows=6, progress=False)


def test_lock_and_stale_chunks(tmp_path, ilsvrc_dir):
    ds = _tiny_dataset(tmp_path, ilsvrc_dir, corrupt=False)
    path = tmp_path / "r.h5"
    with run_lock(path):
        with pytest.raises(RunError, match="being written"):
            run_method(ds, Counting(), path, progress=False)
    # a lock file left by a dead process (its OS lock died with it) does not block
    lock = path.with_name(path.name + ".lock")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"{__import__('socket').gethostname()} {dead.pid}")
    run_method(ds, Counting(), path, progress=False, chunk_size=2)
    assert len(load_run(path)) == 5 and not is_locked(lock)
    # consolidating with nothing new is a no-op
    assert consolidate(path) is False


def test_cli_run_and_eval(tmp_path, ilsvrc_dir, capsys):
    from stl.cli import main

    out = tmp_path / "runs"
    assert main(["run", "--dataset", "ilsvrc2012_val_200rnd", "--root", str(ilsvrc_dir), "--method", "CENTER",
                 "WHOLE-IMAGE", "--limit", "20", "--out", str(out), "--no-progress"]) == 0
    p = out / "ilsvrc2012_val_200rnd" / "CENTER.h5"
    assert p.exists() and (out / "ilsvrc2012_val_200rnd" / "WHOLE-IMAGE.h5").exists()
    capsys.readouterr()
    csv = tmp_path / "t.csv"
    assert main(["eval", str(p), "--csv", str(csv), "--json", str(tmp_path / "t.json")]) == 0
    text = capsys.readouterr().out
    assert "CENTER on ilsvrc2012_val_200rnd -- 20 images evaluated" in text
    assert "ILSVRC2012_200rnd_VAL" in text and "top-1 hit rate" in text
    assert "profile authors (difficult remove" in text  # the default evaluation protocol, stated
    assert csv.read_text().splitlines()[0].startswith("profile,dataset,model,images,method,N,recall")
    assert csv.read_text().splitlines()[1].startswith("authors,ilsvrc2012_val_200rnd,")
    curves = json.loads((tmp_path / "t.json").read_text())
    assert curves[str(p)]["num_images"] == 20 and curves[str(p)]["profile"] == "authors"
    assert main(["eval", str(p), "--profile", "corrected", "--json", str(tmp_path / "c.json")]) == 0
    assert "profile corrected (difficult ignore" in capsys.readouterr().out
    assert json.loads((tmp_path / "c.json").read_text())[str(p)]["protocol"]["tie_order"] == "stable"


def test_cli_eval_rebuilds_voc_dataset(tmp_path, voc_dir, capsys):
    from stl.cli import main

    out = tmp_path / "runs"
    assert main(["run", "--dataset", "voc2007_test", "--root", str(voc_dir), "--method", "WHOLE-IMAGE",
                 "--out", str(out), "--no-progress", "--eval"]) == 0
    text = capsys.readouterr().out
    assert "WHOLE-IMAGE on voc2007_test -- 11 images evaluated" in text and "PASCAL2007_TEST" in text
    run = load_run(out / "voc2007_test" / "WHOLE-IMAGE.h5")
    assert run.meta["dataset_key"] == "voc2007_test" and run.meta["complete"]


def test_labels_reach_methods_that_need_them(tmp_path, ilsvrc_dir):
    class NeedsLabel(Counting):
        needs_label = True

        def propose_batch(self, images, labels=None, image_ids=None):
            self.labels = labels
            return super().propose_batch(images, labels)

    ds = get_dataset("ilsvrc2012_val", root=ilsvrc_dir, limit=3)
    m = NeedsLabel()
    run_method(ds, m, tmp_path / "r.h5", progress=False)
    assert m.labels == [r.labels for r in ds] and all(lab[0].startswith("n") for lab in m.labels)


def test_sigterm_leaves_a_consolidated_file(ilsvrc_dir, tmp_path):
    out = tmp_path / "out"
    path = run_path(out, "ilsvrc2012_val", "SLOW-TEST", uses_classifier=False)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(_cli(tmp_path, 0.05, "run", "--dataset", "ilsvrc2012_val", "--root", str(ilsvrc_dir),
                                 "--method", "SLOW-TEST", "--limit", "30", "--chunk", "2", "--no-progress",
                                 "--out", str(out)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(partial_dir(path).glob("*.h5"))) < 4:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "rerun the same command to continue" in stdout
    run = load_run(path, include_partial=False)
    assert 4 <= len(run) < 30 and not run.meta["complete"]
    assert not partial_dir(path).exists() and not is_locked(path.with_name(path.name + ".lock"))


def test_runner_passes_image_ids_to_precomputed_proposals(tmp_path, ilsvrc_dir):
    """MCG-style methods read one file per image id: the runner must hand the ids over."""
    from stl.data import get_dataset
    from stl.proposals import build_method
    from stl.runner import load_run, run_method

    ds = get_dataset("ilsvrc2012_val", root=ilsvrc_dir, limit=3)
    root = tmp_path / "props"
    for i, image_id in enumerate(ds.image_ids):
        stem = image_id.split("/")[-1].rsplit(".", 1)[0]
        (root).mkdir(exist_ok=True)
        np.savez(root / f"{stem}.npz", boxes=np.array([[1 + i, 1, 20, 20], [5, 5, 30, 30]], float),
                 scores=np.array([2.0, 1.0]))
    method = build_method("PRECOMPUTED", root=str(root))  # one_based (MATLAB) by default: -1 on every coordinate
    run_method(ds, method, tmp_path / "run.h5", method_name="PRECOMPUTED", progress=False)
    run = load_run(tmp_path / "run.h5")
    assert run.image_ids == ds.image_ids and not run.failures
    for i, image_id in enumerate(ds.image_ids):  # each image got ITS OWN file's windows, in score order
        boxes, scores = run.proposals()[image_id]
        np.testing.assert_array_equal(boxes, [[i, 0, 19, 19], [4, 4, 29, 29]])
        np.testing.assert_array_equal(scores, [2.0, 1.0])
