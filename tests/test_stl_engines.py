"""STL with the real decoded Caffe SqueezeNet gives the same windows in the pycaffe
engine and the PyTorch engine (issue #3 acceptance), on real ILSVRC val images."""
import numpy as np
import pytest

from stl.config import DEFAULT, SegmentationConfig

# One segmentation keeps the test at a few hundred forwards per image and engine.
CONFIG = DEFAULT.replace(segmentation=SegmentationConfig(color_spaces=("hsv",), ks=(100,)))
IMAGES = ["ILSVRC2012_val_00000347.JPEG", "ILSVRC2012_val_00000361.JPEG"]


@pytest.mark.slow
def test_squeezenet_caffe_and_torch_engines_give_identical_windows(ilsvrc_dir, require_pycaffe):
    from stl.io import read_image
    from stl.localization import localize_batch
    from stl.modeling import build_classifier

    images = [read_image(ilsvrc_dir / "val" / f) for f in IMAGES]
    labels = [None, None]
    out = {}
    for engine in ("caffe", "torch"):
        clf = build_classifier("squeezenet", engine=engine)
        out[engine] = localize_batch(images, clf, labels, CONFIG)
    for a, b in zip(out["caffe"], out["torch"]):
        assert len(a) > 10
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
        assert a.target_classes == b.target_classes
