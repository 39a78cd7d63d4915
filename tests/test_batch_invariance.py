"""Windows independent of batch composition (issue 18): every forward STL runs is filled to the
batch size, so an image's windows do not depend on which images share its batches (--chunk,
resume, executor), and STL-WL then STL-CL of the same images share their forwards."""
import numpy as np
import pytest
from skimage import data as skdata
from skimage.transform import resize

from stl.core.config import DEFAULT
from stl.core.localization import ForwardScheduler, localize_batch
from stl.models.base import FEATURE, PROB
from stl.proposals.stl_methods import STLMethod, shared_contexts

from stubs import BatchSizeShiftNet

CONFIG = DEFAULT.replace(batch_size=8)


def _images():
    return [(resize(im, (48, 56), anti_aliasing=True) * 255).astype(np.uint8)
            for im in (skdata.astronaut(), skdata.chelsea(), skdata.coffee())]


def _same(a, b):
    return np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)


def test_every_forward_fills_its_batch():
    net = BatchSizeShiftNet()
    sched = ForwardScheduler(net, CONFIG)
    localize_batch(_images()[:1], net, config=CONFIG)
    assert net.batches and set(net.batches) == {8}
    # the filler rows are counted by the scheduler and never stored
    assert sched._fill(list(range(3)), 8) == [0, 1, 2, 2, 2, 2, 2, 2] and sched.padded == 5
    assert sched._fill(np.arange(8), 8).tolist() == list(range(8)) and sched.padded == 5
    assert ForwardScheduler(BatchSizeShiftNet(pad=False), CONFIG)._fill([1], 8) == [1]


@pytest.mark.parametrize("pad", [True, False])
def test_windows_independent_of_batch_mates(pad):
    """Image 0 alone, with one other image, with two: the same windows bit for bit -- and without
    the filling (``pad_batches=False``) they differ, so the test sees what it guards against."""
    images = _images()
    runs = [localize_batch(images[:k], BatchSizeShiftNet(pad), [None] * k, CONFIG)[0] for k in (1, 2, 3)]
    same = [_same(runs[0], r) for r in runs[1:]]
    if pad:
        assert all(same)
    else:
        assert not all(same)


def test_stl_cl_after_stl_wl_reuses_forwards_and_equals_stl_cl_alone():
    images, labels = _images(), [[1], [2], [4]]
    alone_net = BatchSizeShiftNet()
    alone = STLMethod(alone_net, CONFIG, class_level=True).windows(images, labels, CONFIG)
    net = BatchSizeShiftNet()
    STLMethod(net, CONFIG).windows(images, None, CONFIG)
    after_wl = len(net.batches)
    shared = STLMethod(net, CONFIG, class_level=True).windows(images, labels, CONFIG)
    assert all(_same(a, b) for a, b in zip(alone, shared))
    assert len(net.batches) - after_wl < len(alone_net.batches)  # fewer forwards than alone


def test_shared_contexts_match_pixels_and_config_of_the_latest_batch():
    net, images = BatchSizeShiftNet(), _images()
    first = shared_contexts(net, images[:2], CONFIG)
    again = shared_contexts(net, [images[1].copy(), images[0]], CONFIG)
    assert again[0] is first[1] and again[1] is first[0]
    other = shared_contexts(net, images[:1], CONFIG.replace(nms_iou=0.4))
    assert other[0] is not first[0]  # another config: a new context
    changed = images[0].copy()
    changed[0, 0, 0] ^= 1
    assert shared_contexts(net, [changed], CONFIG)[0] is not first[0]  # other pixels
    # only the latest batch is kept
    assert shared_contexts(net, images[:1], CONFIG)[0] is not first[0]
    assert shared_contexts(BatchSizeShiftNet(), images[:1], CONFIG)[0] is not first[0]  # another net


def _position_invariant(clf, batch=4):
    """Outputs of one item at a fixed batch size do not depend on its position or its batch mates."""
    rng = np.random.default_rng(0)
    h, w = clf.input_size
    items = rng.integers(0, 256, size=(2 * batch, h, w, 3)).astype(np.float32)
    a = clf.forward(items[:batch], (PROB, FEATURE))
    b = clf.forward(np.concatenate([items[batch:2 * batch - 1], items[:1]]), (PROB, FEATURE))
    for k in (PROB, FEATURE):
        assert np.array_equal(a[k][0], b[k][batch - 1]), k


def test_lite0_torch_fixed_batch_is_position_invariant(lite0):
    _position_invariant(lite0)


def test_lite0_onnx_fixed_batch_is_position_invariant():
    pytest.importorskip("onnxruntime")
    from stl.models import build_classifier

    _position_invariant(build_classifier("efficientnet_lite0", engine="onnx"))
