"""STL with the real decoded Caffe SqueezeNet in the pycaffe engine and the PyTorch engine,
on real ILSVRC val images, under the authors profile (the default: exact-drop ranking).

The two engines' softmax outputs differ by ~1e-6 (float32 summation order), so windows
whose drops differ by less than that may swap places in the ranking; anything else (other
boxes, other merges, a swap of clearly different drops) is a failure. The test prints the
number of swaps (README / docs/fidelity.md quote it)."""
import numpy as np
import pytest

from stl.core.config import STLConfig, SegmentationConfig

# One segmentation keeps the test at a few hundred forwards per image and engine.
CONFIG = STLConfig.for_profile("authors").replace(
    segmentation=SegmentationConfig(color_spaces=("hsv",), ks=(100,)))
IMAGES = ["ILSVRC2012_val_00000347.JPEG", "ILSVRC2012_val_00000361.JPEG"]
#: drops closer than this may be ranked in either order by the two engines
SWAP_TOLERANCE = 1e-5


@pytest.mark.slow
def test_squeezenet_caffe_and_torch_engines_give_the_same_windows(ilsvrc_dir, require_pycaffe, capsys):
    from stl.io import read_image
    from stl.core.localization import localize_batch, neighbour_swaps
    from stl.models import build_classifier

    images = [read_image(ilsvrc_dir / "val" / f) for f in IMAGES]
    labels = [None, None]
    out = {}
    for engine in ("caffe", "torch"):
        clf = build_classifier("squeezenet", engine=engine, mean_mode=CONFIG.caffe_mean)
        out[engine] = localize_batch(images, clf, labels, CONFIG)
    swaps = []
    for a, b in zip(out["caffe"], out["torch"]):
        assert len(a) > 10
        assert a.target_classes == b.target_classes
        n = neighbour_swaps(a, b, SWAP_TOLERANCE)
        assert n is not None, "the engines' window lists differ beyond near-tied swaps"
        swaps.append(n)
        # matched windows have the same drops up to float noise
        order = {tuple(x): i for i, x in enumerate(b.input_boxes)}
        idx = [order[tuple(x)] for x in a.input_boxes]
        np.testing.assert_allclose(a.scores, b.scores[idx], atol=1e-5)
    with capsys.disabled():
        print(f"\nengine parity (SqueezeNet, authors profile): windows {[len(w) for w in out['caffe']]}, "
              f"near-tied swaps {swaps} (|drop difference| < {SWAP_TOLERANCE})")


def test_neighbour_swaps_counts_inversions_of_near_ties():
    from stl.core.localization import Windows, neighbour_swaps

    def wins(boxes, scores):
        boxes = np.array(boxes, float)
        n = len(boxes)
        return Windows(boxes, np.array(scores, float), np.zeros(n, int), np.zeros(n, int), np.full(n, -1),
                       boxes, (10, 10))

    a = wins([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]], [0.5, 0.3, 0.3 - 1e-7])
    b = wins([[0, 0, 1, 1], [4, 4, 5, 5], [2, 2, 3, 3]], [0.5, 0.3 - 1e-7, 0.3])
    assert neighbour_swaps(a, a, 1e-5) == 0
    assert neighbour_swaps(a, b, 1e-5) == 1
    assert neighbour_swaps(a, b, 1e-8) is None  # the swapped drops differ by more than the tolerance
    c = wins([[0, 0, 1, 1], [2, 2, 3, 3], [6, 6, 7, 7]], [0.5, 0.3, 0.3])
    assert neighbour_swaps(a, c, 1e-5) is None  # other boxes
