"""A stored run's identity holds everything that changes its numbers (issue 19's bug).

The experiment commands (``stl fig1/fig5/fig4/gallery/ablation/timing``) build their
classifier through :mod:`stl.experiments.common`; it must subtract the Caffe mean the way
``stl run`` does (the profile's ``caffe_mean``), the figures' inputs must be resized as STL
resized them (``STLConfig.input_resize``), and a run resumed with another preprocessing
must be refused instead of mixing two preprocessings in one file.
"""
from __future__ import annotations

import numpy as np
import pytest

from stl.core.config import DEFAULT, STLConfig
from stl.models.preprocessing import preprocessing_identity
from stl.proposals import ProposalMethod
from stl.runner import RunError, load_run, run_method


class WholeImageWithClassifier(ProposalMethod):
    """One window (the whole image) scored by the classifier's top probability: a real
    classifier-using method, cheap enough for one image."""

    name = "WHOLE-CLF-TEST"
    uses_classifier = True

    def __init__(self, classifier):
        self.classifier = classifier

    def propose(self, image, labels=None, image_id=None):
        from stl.core.localization import resize_to_input

        x = resize_to_input(image, self.classifier.input_size, DEFAULT.input_resize)[None].astype(np.float32)
        p = self.classifier.forward(x, ("prob",))["prob"][0]
        h, w = image.shape[:2]
        return np.array([[0, 0, w - 1, h - 1]], np.float64), np.array([float(p.max())])


@pytest.fixture(scope="module")
def squeezenet(shared_dir):
    from stl.experiments.common import build

    return build("squeezenet")


def test_experiment_classifier_subtracts_the_profiles_mean(squeezenet):
    """common.build (every experiment command) == stl run's build_from_args: the profile's caffe_mean."""
    from stl.cli.args import build_from_args
    from stl.experiments.common import LazyClassifier
    import argparse

    assert preprocessing_identity(squeezenet) == {"precision": "fp32", "caffe_mean": DEFAULT.caffe_mean}
    assert DEFAULT.caffe_mean == "authors_row255"
    ns = argparse.Namespace(model=["squeezenet"], engine="torch", device="cpu", precision="fp32", profile="authors",
                            overrides=[])
    ref = build_from_args(ns)
    np.testing.assert_array_equal(squeezenet.preprocessing.mean_image_bgr, ref.preprocessing.mean_image_bgr)
    # the lazy classifier names the same identity without building
    lazy = LazyClassifier("squeezenet")
    assert lazy.preprocessing_identity() == preprocessing_identity(squeezenet)
    assert lazy._clf is None
    corrected = STLConfig.for_profile("corrected").caffe_mean
    assert LazyClassifier("squeezenet", mean_mode=corrected).preprocessing_identity()["caffe_mean"] == "image"


def test_resume_with_another_preprocessing_is_refused(tmp_path, ilsvrc_dir, squeezenet):
    from stl.data import get_dataset
    from stl.experiments.common import build

    ds = get_dataset("ilsvrc2012_val", root=ilsvrc_dir, subset="all", limit=2)
    sub = get_dataset("ilsvrc2012_val", root=ilsvrc_dir, subset="all", limit=1)
    path = tmp_path / "WHOLE-CLF-TEST__squeezenet.h5"
    run_method(sub, WholeImageWithClassifier(squeezenet), path, model="squeezenet", progress=False)
    meta = load_run(path).meta
    assert '"caffe_mean": "authors_row255"' in str(meta["preprocessing"])
    other = build("squeezenet", mean_mode="image")
    with pytest.raises(RunError, match="preprocessing"):
        run_method(ds, WholeImageWithClassifier(other), path, model="squeezenet", progress=False)
    # the same preprocessing resumes
    s = run_method(ds, WholeImageWithClassifier(squeezenet), path, model="squeezenet", progress=False)
    assert s.skipped == 1 and s.computed == 1


def test_maskout_inputs_are_resized_as_stl_resizes(ilsvrc_dir, lite0):
    """Fig. 1 / Fig. 5 inputs: STLConfig.input_resize (authors: skimage bilinear), not the corrected resize."""
    from stl.core.localization import resize_to_input
    from stl.data import get_dataset
    from stl.experiments.maskout import candidates
    from stl.io import as_rgb_uint8
    from stl.runner import StoredRun

    ds = get_dataset("ilsvrc2012_val", root=ilsvrc_dir, subset="200rnd", limit=1)
    i = ds.image_ids[0]
    rgb = as_rgb_uint8(ds.record(i).read())
    h, w = rgb.shape[:2]
    run = StoredRun(path=None, meta={}, image_ids=[i], boxes={i: np.array([[0, 0, w - 1, h - 1]], np.float32)},
                    scores={i: np.array([0.5], np.float32)}, image_attrs={})
    (c,) = candidates(ds, run, lite0)
    want = resize_to_input(rgb, lite0.input_size, DEFAULT.input_resize)
    assert not np.array_equal(want, resize_to_input(rgb, lite0.input_size, "antialiased"))  # the test can tell
    np.testing.assert_array_equal(c.image, want)
    (c2,) = candidates(ds, run, lite0, "antialiased")
    np.testing.assert_array_equal(c2.image, resize_to_input(rgb, lite0.input_size, "antialiased"))


def test_wsol_inputs_follow_the_config(ilsvrc_dir, lite0):
    from stl.core.localization import resize_to_input
    from stl.data import get_dataset
    from stl.experiments import wsol

    ds = get_dataset("ilsvrc2012_val", root=ilsvrc_dir, subset="all", limit=1)
    rec = ds.record(ds.image_ids[0])
    for mode in ("skimage_bilinear", "antialiased"):
        np.testing.assert_array_equal(wsol._input_image(rec, lite0, mode),
                                      resize_to_input(rec.read(), lite0.input_size, mode).astype(np.float32))


def test_stored_run_resumes_without_the_classifier_only_when_everything_matches(tmp_path, ilsvrc_dir):
    """experiments.common.stored_run (every figure command): all images stored with the same config
    and preprocessing -> the stored run, no classifier built; another config -> refused, not mixed."""
    import ray_helpers  # registers the plug-in model and method (tests/ray_helpers.py)
    from stl.data import get_dataset
    from stl.experiments.common import LazyClassifier, stored_run

    ds = get_dataset("ilsvrc2012_val", root=ilsvrc_dir, subset="all", limit=2)
    config = DEFAULT.replace(nms_iou=0.25)
    run, path = stored_run(ds, ray_helpers.CONFIG_METHOD, ray_helpers.TINY_MODEL,
                           LazyClassifier(ray_helpers.TINY_MODEL), tmp_path, config=config, progress=False)
    assert path == tmp_path / ds.key / f"{ray_helpers.CONFIG_METHOD}__{ray_helpers.TINY_MODEL}.h5"
    assert len(run) == 2
    lazy = LazyClassifier(ray_helpers.TINY_MODEL)
    again, _ = stored_run(ds, ray_helpers.CONFIG_METHOD, ray_helpers.TINY_MODEL, lazy, tmp_path, config=config,
                          progress=False)
    assert lazy._clf is None and again.proposals().keys() == run.proposals().keys()  # nothing built
    with pytest.raises(RunError, match="method_config"):
        stored_run(ds, ray_helpers.CONFIG_METHOD, ray_helpers.TINY_MODEL, LazyClassifier(ray_helpers.TINY_MODEL),
                   tmp_path, config=config.replace(nms_iou=0.3), progress=False)
    corrected = STLConfig.for_profile("corrected")  # another profile: another file
    _, other = stored_run(ds, ray_helpers.CONFIG_METHOD, ray_helpers.TINY_MODEL,
                          LazyClassifier(ray_helpers.TINY_MODEL, corrected.caffe_mean), tmp_path, config=corrected,
                          progress=False)
    assert other.name.endswith("__corrected.h5") and other != path
