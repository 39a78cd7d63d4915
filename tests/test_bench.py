"""The benchmark's measuring parts on a stub classifier (timings themselves live in `make bench`)."""
import numpy as np

from stl.experiments.bench import _TimedClassifier, peak_throughput, windows_agree
from stl.core.localization import localize_batch

from stubs import StubClassifier, three_block_context


def test_timed_classifier_counts_forward_time_and_engine_matches_reference_mode():
    clf = StubClassifier()
    timed = _TimedClassifier(clf)
    fast = localize_batch([three_block_context(timed)], timed, [0])[0]
    assert timed.seconds > 0 and timed.input_size == clf.input_size
    ref = localize_batch([three_block_context(clf)], clf, [0], deduplicate=False)[0]
    np.testing.assert_array_equal(fast.boxes, ref.boxes)
    assert windows_agree(fast, ref)
    assert ref.num_forwards >= fast.num_forwards


def test_peak_throughput_reports_every_batch_size():
    out = peak_throughput(StubClassifier(), batch_sizes=(1, 4), seconds=0.05)
    assert set(out) == {1, 4} and all(v > 0 for v in out.values())


def test_bench_csv_gains_new_columns_without_losing_rows(tmp_path):
    from stl.experiments.bench import append_row

    path = tmp_path / "bench.csv"
    append_row(path, {"model": "a", "seconds": 1.0})
    append_row(path, {"model": "b", "seconds": 2.0, "incremental_masking": True})
    lines = path.read_text().splitlines()
    assert lines[0] == "model,seconds,incremental_masking"
    assert lines[1] == "a,1.0," and lines[2] == "b,2.0,True"


def test_top_window_matching_ignores_order_and_counts_matches():
    from types import SimpleNamespace

    from stl.experiments.bench import top_windows_matched

    a = SimpleNamespace(boxes=np.array([[0, 0, 99, 99], [10, 10, 49, 49], [200, 200, 220, 220]], float))
    b = SimpleNamespace(boxes=np.array([[10, 10, 49, 49], [0, 0, 99, 98]], float))  # IoU 0.99 with a[0]
    assert top_windows_matched(a, b) == 2 / 3
    assert not windows_agree(a, b)
    c = SimpleNamespace(boxes=b.boxes[::-1].copy())
    assert top_windows_matched(b, c) == 1.0 and windows_agree(b, c)  # order within the top is ignored
    d = SimpleNamespace(boxes=np.array([[0, 0, 99, 99], [0, 0, 99, 99]], float))
    assert top_windows_matched(d, SimpleNamespace(boxes=a.boxes[:1])) == 0.5  # one-to-one


def test_run_benchmark_reports_stages_and_stl_cl_after_stl_wl(monkeypatch):
    """run_benchmark end to end on a stub net and two real photos: the STL-CL pass on the same
    contexts adds fewer forwards than STL-WL made (its initial regions' forwards are shared),
    and the rows say so."""
    from skimage import data as skdata
    from skimage.transform import resize

    from stl.experiments import bench
    from stl.models.spec import ModelSpec

    from stubs import BatchSizeShiftNet

    photos = [(resize(im, (120, 140), anti_aliasing=True) * 255).astype(np.uint8)
              for im in (skdata.astronaut(), skdata.chelsea())]
    monkeypatch.setattr(bench, "benchmark_images", lambda n, shared=None: (
        ["astronaut", "chelsea"], photos, [["n1"], ["n2"]], "two photos"))
    monkeypatch.setattr(ModelSpec, "build", lambda self, **kw: BatchSizeShiftNet(side=64))
    monkeypatch.setattr(bench, "peak_throughput", lambda clf, sizes: {8: 100.0})
    res = bench.run_benchmark(ModelSpec(), num_images=2, images_per_chunk=2, reference_images=1)
    assert res.forwards_per_image > 0 and res.batch_size == 8
    assert 0 < res.cl_extra_forwards_per_image < res.forwards_per_image
    rows = dict(res.rows())
    ratio = float(rows["STL-CL + STL-WL forwards / STL-WL forwards"])
    assert 1.0 < ratio < 2.0
    assert res.reference_identical is not None
    assert res.stage_seconds_per_image["crop forwards"] > 0
    assert 0 < res.filler_rows_per_image < res.forwards_per_image  # short last batches were filled
    assert "filler rows per image" in "".join(rows)
