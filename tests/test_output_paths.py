"""Output paths that are not regular files (issue 21, item 1).

`stl eval RUN.h5 --json /dev/full` run as root (CI, containers) exited 0 and renamed a regular file
over the device node; the same for /dev/null, /dev/stdout, a FIFO, a link to /proc/self/fd/1, a
link to a file (the link was replaced, nothing reached the file it named). ``stl.io.atomic_path``
now writes atomically only to regular files (a link's target is replaced, the link kept) and writes
through to anything else; a failed write is one ``stl: error:`` line naming the output (exit 2).

The device nodes are copies made with ``mknod`` in the test's folder where the test runs as root
(a regression then replaces the copy, not the machine's /dev/null); as another user the real ones
are used (a rename over them fails there anyway).
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_hostile_inputs import wsol_root

from stl.cli import main

#: the package these tests import (the subprocesses run the same one)
PACKAGE_ROOT = Path(__import__("stl").__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    """A stored CENTER run of a 2-image ILSVRC root (no network)."""
    d = tmp_path_factory.mktemp("outputs")
    root = wsol_root(d / "root", n=2)
    assert main(["run", "--dataset", "ilsvrc2012_val", "--root", str(root), "--method", "CENTER",
                 "--no-progress", "--out", str(d / "runs")]) == 0
    return d / "runs" / "ilsvrc2012_val" / "CENTER.h5"


def device(tmp_path: Path, name: str) -> Path:
    """``/dev/<name>`` (null or full): a copy in ``tmp_path`` when root, else the real node."""
    real = Path("/dev") / name
    if os.geteuid() != 0:
        return real
    copy = tmp_path / name
    st = real.stat()
    os.mknod(copy, stat.S_IFCHR | 0o666, st.st_rdev)
    try:
        with open(copy, "wb"):
            pass
    except OSError as e:  # a nodev mount: the copy cannot be opened
        pytest.skip(f"cannot use a device node in {tmp_path} ({e.strerror})")
    return copy


def stl_eval(run_file, *extra, capsys=None):
    rc = main(["eval", str(run_file), *extra])
    err = capsys.readouterr().err if capsys else ""
    return rc, [ln for ln in err.splitlines() if ln.strip()]


def test_dev_null_stays_a_device(run_file, tmp_path, capsys):
    null = device(tmp_path, "null")
    rc, _ = stl_eval(run_file, "--json", str(null), "--md", str(null), "--csv", str(null), capsys=capsys)
    assert rc == 0
    assert stat.S_ISCHR(null.stat().st_mode)
    assert [p for p in tmp_path.iterdir() if p != null] == []  # no temporaries left


def test_dev_full_is_one_user_error_and_stays_a_device(run_file, tmp_path, capsys):
    full = device(tmp_path, "full")
    rc, err = stl_eval(run_file, "--json", str(full), capsys=capsys)
    assert rc == 2
    errors = [ln for ln in err if ln.startswith("stl: error:")]
    assert errors == [f"stl: error: {full}: cannot write (No space left on device)"], err
    assert stat.S_ISCHR(full.stat().st_mode)


def test_fifo_with_a_reader_gets_the_json(run_file, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []

    def read():
        with open(fifo, "rb") as f:
            got.append(f.read())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    rc, _ = stl_eval(run_file, "--json", str(fifo), capsys=capsys)
    t.join(60)
    assert rc == 0 and not t.is_alive()
    assert str(run_file) in json.loads(got[0])
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_symlink_to_a_file_keeps_the_link_and_updates_the_target(run_file, tmp_path, capsys):
    target = tmp_path / "real" / "curves.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    rel = tmp_path / "rel.md"
    rel.symlink_to(Path("real") / "table.md")  # a relative link to a file not there yet
    rc, _ = stl_eval(run_file, "--json", str(link), "--md", str(rel), capsys=capsys)
    assert rc == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert str(run_file) in json.loads(target.read_text())
    assert rel.is_symlink() and (tmp_path / "real" / "table.md").read_text().startswith("command: `stl eval ")
    assert sorted(p.name for p in target.parent.iterdir()) == ["curves.json", "table.md"]  # no temporaries


@pytest.mark.parametrize("to", ["/proc/self/fd/1", "/dev/stdout"])
def test_link_to_stdout_in_a_subprocess(run_file, tmp_path, to):
    """A link in the test's folder (a regression replaces that link, not the machine's /dev/stdout)."""
    link = tmp_path / "out.json"
    link.symlink_to(to)
    r = subprocess.run([sys.executable, "-m", "stl.cli", "eval", str(run_file), "--json", str(link)],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert link.is_symlink() and os.readlink(link) == to
    start = r.stdout.find('{\n "')  # after the printed table
    assert start >= 0, r.stdout[-1000:]
    assert str(run_file) in json.loads(r.stdout[start:])


def test_dev_stdout_redirected_to_a_file_keeps_what_was_printed(run_file, tmp_path):
    """`stl eval RUN --json /dev/stdout > out.txt`: the JSON follows the printed table in out.txt (reopening
    /proc/self/fd/1 for writing would truncate the file; a rename would replace it)."""
    link = tmp_path / "stdout.json"
    link.symlink_to("/dev/stdout")
    out = tmp_path / "out.txt"
    with open(out, "w") as fh:
        r = subprocess.run([sys.executable, "-m", "stl.cli", "eval", str(run_file), "--json", str(link)],
                           stdout=fh, stderr=subprocess.PIPE, text=True, timeout=300,
                           env=dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT)))
    assert r.returncode == 0, r.stderr[-2000:]
    text = out.read_text()
    start = text.find('{\n "')
    assert start > 0 and "images evaluated" in text[:start], text[:500]
    assert str(run_file) in json.loads(text[start:])


def test_regular_file_is_still_replaced_atomically(run_file, tmp_path, capsys):
    from stl.io import atomic_path

    out = tmp_path / "curves.json"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            Path(tmp).write_text("half of the new cont")
            raise RuntimeError("killed mid-write")
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["curves.json"]
    inode = out.stat().st_ino
    rc, _ = stl_eval(run_file, "--json", str(out), capsys=capsys)
    assert rc == 0 and str(run_file) in json.loads(out.read_text())
    assert out.stat().st_ino != inode  # renamed into place, not rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["curves.json"]


def test_write_error_on_a_regular_file_names_it(tmp_path, monkeypatch):
    """ENOSPC while writing a regular file (a full disk): a WriteError (UserError and OSError) naming
    the output, the old content kept, no temporary left."""
    import errno

    from stl.errors import UserError, WriteError
    from stl.io import write_json_atomic

    out = tmp_path / "a.json"
    out.write_text("old")

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(WriteError) as e:
        write_json_atomic(out, {"x": 1})
    monkeypatch.undo()
    assert isinstance(e.value, UserError) and isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC
    assert str(e.value) == f"{out}: cannot write (No space left on device)"
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_other_writers_go_through_atomic_path(tmp_path):
    """The figure / text / CSV writers of the experiments and `stl bench` write through to a device."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stl.experiments.bench import append_row
    from stl.experiments.common import save_figure, write_text

    null = device(tmp_path, "null")
    write_text(null, "text")
    append_row(null, {"a": 1})
    assert stat.S_ISCHR(null.stat().st_mode)
    fig = plt.figure()
    (tmp_path / "fig").mkdir()
    (tmp_path / "fig" / "f.png").symlink_to(null)
    (tmp_path / "fig" / "f.pdf").symlink_to(null)
    save_figure(fig, tmp_path / "fig", "f")
    plt.close(fig)
    assert stat.S_ISCHR(null.stat().st_mode) and (tmp_path / "fig" / "f.png").is_symlink()


def test_export_to_a_device(run_file, tmp_path, capsys):
    """`stl export --out /dev/null` writes through; a two-file format (coco: OUT + OUT_images.json beside it)
    to a device is refused (it made /dev/null_images.json)."""
    null = device(tmp_path, "null")
    assert main(["export", str(run_file), "--format", "csv", "--out", str(null)]) == 0
    assert main(["export", str(run_file), "--format", "coco", "--out", str(null)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("stl: error:")]
    assert len(err) == 1 and str(null) in err[0] and "two files" in err[0], err
    assert stat.S_ISCHR(null.stat().st_mode) and not (null.parent / f"{null.name}_images.json").exists()
