"""``stl diff`` / stl.evaluation.compare: window-level differences between stored runs."""
import numpy as np

from stl.evaluation.compare import compare_runs, matched_windows


def test_matched_windows_by_hand():
    a = np.array([[0, 0, 9, 9], [20, 20, 29, 29], [40, 40, 49, 49]], float)
    b = np.array([[40, 40, 49, 49], [0, 0, 9, 9], [60, 60, 69, 69]], float)
    assert matched_windows(a, a) == 3
    assert matched_windows(a, b) == 2  # order within the top does not matter
    assert matched_windows(a, b, top=1) == 0  # a's first vs b's first only
    shifted = a + [0, 0, 1, 0]  # 1 px wider: IoU 10/11 = 0.909 -> same at 0.9, not at 0.95
    assert matched_windows(a, shifted, iou=0.9) == 3 and matched_windows(a, shifted, iou=0.95) == 0
    # one-to-one: two windows of a cannot match the same window of b
    assert matched_windows(np.array([[0, 0, 9, 9], [0, 0, 9, 9]], float), a) == 1


def test_compare_runs_on_stored_runs(tmp_path):
    from stl.data import get_dataset
    from stl.proposals import build_method
    from stl.runner import run_method

    ds = get_dataset("sample")
    paths = {}
    for name in ("CENTER", "WHOLE-IMAGE"):
        paths[name] = tmp_path / f"{name}.h5"
        run_method(ds, build_method(name), paths[name], method_name=name, progress=False)
    same = compare_runs(paths["CENTER"], paths["CENTER"])
    assert same.total_changed == 0 and same.total_compared == len(ds)
    diff = compare_runs(paths["CENTER"], paths["WHOLE-IMAGE"])  # IoU 0.64 < 0.9: every window changes
    assert diff.total_changed == len(ds) == diff.total_compared
    assert "change (100.0%" in diff.summary()
