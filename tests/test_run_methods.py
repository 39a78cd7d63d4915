"""`stl run --method STL-WL STL-CL` in one pass (runner.run_methods): every method computes each
chunk in turn, so STL-CL reuses STL-WL's cached forwards; the windows are those of separate runs."""
import numpy as np
import pytest

from stubs import BatchSizeShiftNet


def _images(n):
    from skimage import data as skdata
    from skimage.transform import resize

    ims = (skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket())
    return [(resize(im, (48, 56), anti_aliasing=True) * 255).astype(np.uint8) for im in ims[:n]]


@pytest.fixture
def labelled_folder(tmp_path):
    from skimage import io as skio

    from stl.data import get_dataset

    for k, im in enumerate(_images(4)):
        d = tmp_path / "im" / f"n{1 + k % 2}"  # ImageFolder layout: the class is the folder (stub classes n0..n5)
        d.mkdir(parents=True, exist_ok=True)
        skio.imsave(d / f"{k}.png", im, check_contrast=False)
    return get_dataset("folder", root=tmp_path / "im", labels_from_folders=True)


def _methods(clf):
    from stl.core.config import DEFAULT
    from stl.proposals.stl_methods import STLMethod

    cfg = DEFAULT.replace(batch_size=8)
    return STLMethod(clf, cfg, class_level=False), STLMethod(clf, cfg, class_level=True)


def test_one_pass_shares_forwards_and_gives_the_windows_of_separate_runs(labelled_folder, tmp_path):
    from stl.runner import MethodJob, load_run, run_method, run_methods

    ds = labelled_folder
    together = BatchSizeShiftNet()
    wl, cl = _methods(together)
    out = run_methods(ds, [MethodJob(wl, tmp_path / "a" / "wl.h5", "STL-WL"),
                           MethodJob(cl, tmp_path / "a" / "cl.h5", "STL-CL")], chunk_size=2, progress=False)
    assert [s.computed for s in out] == [4, 4] and all(s.complete for s in out)
    rows_together = sum(together.batches)

    apart = BatchSizeShiftNet()
    wl, cl = _methods(apart)
    run_method(ds, wl, tmp_path / "b" / "wl.h5", method_name="STL-WL", chunk_size=2, progress=False)
    rows_wl = sum(apart.batches)
    run_method(ds, cl, tmp_path / "b" / "cl.h5", method_name="STL-CL", chunk_size=2, progress=False)
    rows_apart = sum(apart.batches)
    # STL-CL after STL-WL on the same chunk reuses the cached masked images and crops
    assert rows_wl < rows_together < rows_apart
    for name in ("wl", "cl"):
        a, b = load_run(tmp_path / "a" / f"{name}.h5"), load_run(tmp_path / "b" / f"{name}.h5")
        assert a.image_ids == b.image_ids and len(a.image_ids) == 4
        for i in a.image_ids:  # identical windows (every forward is filled to the batch size)
            np.testing.assert_array_equal(a.boxes[i], b.boxes[i])
            np.testing.assert_array_equal(a.scores[i], b.scores[i])
    # a rerun finds everything stored and computes nothing
    wl, cl = _methods(BatchSizeShiftNet())
    again = run_methods(ds, [MethodJob(wl, tmp_path / "a" / "wl.h5", "STL-WL"),
                             MethodJob(cl, tmp_path / "a" / "cl.h5", "STL-CL")], chunk_size=2, progress=False)
    assert [(s.computed, s.skipped) for s in again] == [(0, 4), (0, 4)]
