"""Progress a person can read (issue 18, item 8; stl/progress.py): one bar per job with total, rate
and ETA; in a log a bounded number of plain lines, no carriage returns; per-forward bars only on a
terminal; a job bar that moves inside a chunk by STL's forwards and ends exactly at the total;
``--no-progress`` prints none. Also ``stl run --dataset D --images ids.txt | @FILE``."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

from stl import progress as P

from stubs import BatchSizeShiftNet

LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<desc>.+?): (?P<n>[\d.]+)/(?P<total>\d+) img \(\d+%\)")


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self, step):
        self.t, self.step = 1000.0, step

    def __call__(self):
        self.t += self.step
        return self.t


def _counts(text, desc=None):
    """The counts of the progress lines of ``text`` (of bar ``desc`` if given), in order."""
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m and (desc is None or m["desc"] == desc):
            out.append(float(m["n"]))
    return out


# -- the bars ---------------------------------------------------------------------------------------
def test_a_log_gets_a_bounded_number_of_plain_lines(monkeypatch):
    monkeypatch.setattr(P, "_clock", Clock(0.1))  # 10,000 updates over ~1,000 s
    f = io.StringIO()
    bar = P.progress_bar(total=10_000, desc="job", file=f, interval=30)
    assert isinstance(bar, P.LogBar)
    for _ in range(10_000):
        bar.update(1)
    bar.close()
    text = f.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert 3 <= len(lines) <= 2 + 1000 / 30 + 1  # start, one per 30 s, end
    assert all(LINE.match(ln) for ln in lines), lines[:3]
    assert "ETA" in lines[1] and "img/s" in lines[1]
    assert lines[-1].endswith("done in 17 min") and "10000/10000 img (100%)" in lines[-1]


def test_inner_bars_only_on_a_terminal_and_no_progress_prints_nothing():
    from tqdm import tqdm

    term = Terminal()
    bar = P.progress_bar(total=3, desc="job", file=term)
    assert isinstance(bar, tqdm) and not bar.disable
    bar.update(3)
    bar.close()
    assert "3/3" in term.getvalue()
    inner = P.progress_bar(desc="forwards", unit="fwd", inner=True, file=Terminal())
    assert isinstance(inner, tqdm) and not inner.disable
    inner.close()
    for kw in ({"inner": True}, {"enabled": False}):  # a log gets no inner bar; --no-progress: none at all
        f = io.StringIO()
        with P.progress_bar(total=5, desc="x", file=f, **kw) as bar:
            bar.update(5)
        assert f.getvalue() == ""
    f = io.StringIO()
    assert list(P.progress_bar(range(4), desc="it", file=f, interval=1e9)) == [0, 1, 2, 3]
    assert _counts(f.getvalue()) == [0, 4]  # an iterable's bar ends with it


def test_the_job_bar_moves_by_forwards_but_never_past_the_chunk_in_flight():
    f = io.StringIO()
    job = P.job_bar(total=5, desc="job", chunk=2, file=f, interval=1e9)
    P.report_forwards(10 ** 6)  # nobody tracking: no effect
    assert job.n == 0
    with job.tracking():
        P.expect_forwards(100)
        P.report_forwards(50)
        assert job.n == pytest.approx(1.0)  # half the forwards of a 2-image chunk
        P.report_forwards(10 ** 6)
        assert job.n == pytest.approx(2 * P.MAX_CHUNK_FRACTION)  # never the whole chunk before its commit
        job.update(2)
        assert job.n == 2
        P.expect_forwards(100)  # the first chunk took 10,000x its estimate: the correction
        P.report_forwards(10 ** 5)
        assert job.n == pytest.approx(2 + 2 * 10 ** 5 / (100 * job.correction()))
        job.update(2)
        P.expect_forwards(10)
        P.report_forwards(10 ** 9)
        assert 4 < job.n < 5  # the last chunk holds one image
        job.update(1)
        assert job.n == 5
    job.close()
    counts = _counts(f.getvalue())
    assert counts[-1] == 5 and counts == sorted(counts)


def test_a_chunk_of_two_calls_shares_the_bar_between_them():
    job = P.job_bar(total=1, phases=2, file=io.StringIO(), interval=1e9)  # stl demo: STL-WL then STL-CL per image
    with job.tracking():
        P.expect_forwards(100)
        P.report_forwards(100)
        assert job.n == pytest.approx(0.5)
        P.expect_forwards(10)
        P.report_forwards(5)
        assert job.n == pytest.approx(0.75)
        job.update(1)
    assert job.n == 1


def test_expected_forwards_bound_what_stl_runs():
    from stl.core.config import DEFAULT
    from stl.core.localization import ImageContext, expected_forwards, localize_batch

    net, config = BatchSizeShiftNet(), DEFAULT.replace(batch_size=8)
    contexts = [ImageContext(im, net, config) for im in _images(2)]
    guess = expected_forwards(contexts, [None, None])
    localize_batch(contexts, net, None, config)
    done = sum(c.num_forwards for c in contexts)
    assert done <= guess <= 2 * done
    assert expected_forwards(contexts, [None, None]) < guess  # the cached forwards are not expected again


# -- stl run ---------------------------------------------------------------------------------------
def _images(n):
    from skimage import data as skdata
    from skimage.transform import resize

    ims = (skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket())
    return [(resize(im, (48, 56), anti_aliasing=True) * 255).astype(np.uint8) for im in ims[:n]]


@pytest.fixture
def stub_folder(tmp_path):
    from skimage import io as skio

    from stl.data import get_dataset

    root = tmp_path / "im"
    root.mkdir()
    for k, im in enumerate(_images(4)):
        skio.imsave(root / f"{k}.png", im, check_contrast=False)
    return get_dataset("folder", root=root)


def _stub_run(ds, path, progress=True):
    from stl.core.config import DEFAULT
    from stl.proposals.stl_methods import STLMethod
    from stl.runner import run_method

    method = STLMethod(BatchSizeShiftNet(), DEFAULT.replace(batch_size=8))
    return run_method(ds, method, path, method_name="STL-WL", chunk_size=2, progress=progress)


def test_stl_run_moves_inside_a_chunk_and_ends_at_the_total(stub_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STL_PROGRESS_INTERVAL", "0")  # a line per update: every step can be seen
    assert _stub_run(stub_folder, tmp_path / "a.h5").complete
    counts = _counts(capsys.readouterr().err, "STL-WL folder_im")
    assert counts[0] == 0 and counts[-1] == 4 and counts == sorted(counts)
    first_commit = counts.index(2)
    inside = counts[1:first_commit]
    assert any(c > 0 for c in inside) and all(c < 2 for c in inside)  # moved before the chunk was stored
    assert any(2 < c < 4 for c in counts)  # and inside the second chunk, never past it


def test_stl_run_in_a_log_writes_a_start_and_an_end_line(stub_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STL_PROGRESS_INTERVAL", "3600")
    _stub_run(stub_folder, tmp_path / "b.h5")
    err = capsys.readouterr().err
    assert "\r" not in err
    assert _counts(err) == [0, 4]
    _stub_run(stub_folder, tmp_path / "c.h5", progress=False)
    assert _counts(capsys.readouterr().err) == []


def test_with_logging_configured_the_lines_are_log_records(stub_folder, tmp_path, capsys, caplog, monkeypatch):
    import logging

    monkeypatch.setenv("STL_PROGRESS_INTERVAL", "3600")
    caplog.set_level(logging.INFO, logger="stl.progress")  # as the CLI's logging.basicConfig(level=INFO)
    _stub_run(stub_folder, tmp_path / "d.h5")
    assert _counts(capsys.readouterr().err) == []
    msgs = [r.getMessage() for r in caplog.records if r.name == "stl.progress"]
    assert len(msgs) == 2 and msgs[0].startswith("STL-WL folder_im: 0/4 img") and "4/4 img (100%)" in msgs[1]


def test_cli_run_progress_and_no_progress(ilsvrc_dir, tmp_path, capsys):
    from stl.cli import main

    base = ["run", "--dataset", "ilsvrc2012_val", "--root", str(ilsvrc_dir), "--method", "CENTER", "--limit", "3"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if LINE.match(ln)]
    assert "\r" not in err and len(lines) == 2 and "3/3 img (100%)" in lines[-1] and "done in" in lines[-1]
    assert main(base + ["--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert _counts(capsys.readouterr().err) == []


# -- stl run --dataset D --images ids.txt | @FILE ------------------------------------------------------
def test_id_files(tmp_path):
    from stl.cli.args import expand_id_files, read_id_file
    from stl.errors import OptionError

    f = tmp_path / "ids.txt"
    f.write_text("\ufeff# the first two\n a \n\nb\n#c\n", encoding="utf-8")
    assert read_id_file(f) == ["a", "b"]
    assert expand_id_files(["x", f"@{f}"]) == ["x", "a", "b"]
    assert expand_id_files([str(f)]) == [str(f)]  # stl eval: a word is an id unless @FILE
    assert expand_id_files([str(f), "z"], known={"a", "b", "z"}) == ["a", "b", "z"]
    with pytest.raises(OptionError, match="--images @.*missing.txt: cannot read"):
        expand_id_files([f"@{tmp_path / 'missing.txt'}"])
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(OptionError, match="not a UTF-8 text file"):
        read_id_file(tmp_path / "bin.txt")


def test_cli_run_dataset_images_from_a_file(ilsvrc_dir, tmp_path, capsys):
    from stl.cli import main
    from stl.data import get_dataset
    from stl.runner import load_run

    ids = get_dataset("ilsvrc2012_val", root=ilsvrc_dir).image_ids
    f = tmp_path / "ids.txt"
    f.write_text(f"# two images\n{ids[2]}\n\n{ids[0]}\n", encoding="utf-8-sig")
    base = ["run", "--dataset", "ilsvrc2012_val", "--root", str(ilsvrc_dir), "--method", "CENTER", "--no-progress"]
    for k, words in enumerate(([str(f)], [f"@{f}"], [f"@{f}", ids[1]])):
        out = tmp_path / f"runs{k}"
        assert main(base + ["--out", str(out), "--images", *words]) == 0
        run = load_run(next(out.rglob("*.h5")))
        assert sorted(run.image_ids) == sorted([ids[0], ids[2]] + ([ids[1]] if k == 2 else []))
    assert main(base + ["--out", str(tmp_path / "x"), "--images", f"@{tmp_path / 'nope.txt'}"]) == 2
    assert "--images @" in capsys.readouterr().err


# -- stl demo ----------------------------------------------------------------------------------------
def test_cli_demo_one_job_bar_moved_by_forwards(tmp_path, capsys, monkeypatch):
    from stl.cli import main
    from stl.models.base import ClassList
    from stl.models.spec import ModelSpec

    class SampleNet(BatchSizeShiftNet):  # the sample's classes, cheap
        def __init__(self):
            super().__init__()
            wnids = ["n02123045", "n07920052", "n07930864", "n03773504", "n03785016", "n04266014"]
            self.classes = ClassList(wnids, wnids)
            self.device = "cpu"

    monkeypatch.setattr(ModelSpec, "build", lambda self, **kw: SampleNet())
    monkeypatch.setenv("STL_PROGRESS_INTERVAL", "0")
    assert main(["demo", "--limit", "2", "--out", str(tmp_path / "demo")]) == 0
    err = capsys.readouterr().err
    counts = _counts(err, "STL demo (WL+CL)")
    assert "\r" not in err and "forwards" not in err  # no inner bar in a log
    assert counts[0] == 0 and counts[-1] == 2 and counts == sorted(counts)
    assert any(0 < c < 1 for c in counts) and any(1 < c < 2 for c in counts)
    assert main(["demo", "--limit", "1", "--out", str(tmp_path / "demo2"), "--no-progress"]) == 0
    assert _counts(capsys.readouterr().err) == []
