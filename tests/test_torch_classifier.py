"""TorchClassifier (any torch.nn.Module), --model package.module:factory, and the proof with real
networks: Lite0 wrapped as a plain TorchClassifier gives exactly the built-in's STL windows, Lite0
in ONNX Runtime the same windows up to neighbour swaps of near-tied drops."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from conftest import REPO, missing

from stl.core.config import SegmentationConfig, STLConfig

#: drops closer than this may be ranked in either order by two engines (as tests/test_stl_engines.py)
SWAP_TOLERANCE = 1e-5
# one segmentation: a few hundred forwards per run, three runs on one real image
CONFIG = STLConfig.for_profile("authors").replace(segmentation=SegmentationConfig(color_spaces=("hsv",), ks=(100,)))
IMAGE = "ILSVRC2012_val_00000347.JPEG"


class Tiny(torch.nn.Module):
    """mean-pool each channel, then body (linear 3->2, fixed) and head (linear 2->4, fixed)."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(3, 2)
        self.head = torch.nn.Linear(2, 4)
        with torch.no_grad():
            self.body.weight.copy_(torch.tensor([[1., 1, 0], [0, 0, 2]]))
            self.body.bias.zero_()
            self.head.weight.copy_(torch.tensor([[1., 0], [0, 1], [1, 1], [-1, 0]]))
            self.head.bias.copy_(torch.tensor([0., 0, 0, 5]))

    def forward(self, x):
        return self.head(self.body(x.mean((2, 3))))


def test_feature_hooks_mean_colour_and_outputs_by_hand():
    from stl.models import FEATURE, LOGITS, PROB
    from stl.models.torch_classifier import TorchClassifier

    clf = TorchClassifier(Tiny(), input_size=(3, 5), mean=(10, 20, 30), std=(1, 2, 5))
    assert clf.input_size == (3, 5) and len(clf.classes) == 4 and clf.classes.wnids[0] == "class_0"
    np.testing.assert_allclose(clf.mask_color, [10, 20, 30])
    img = np.empty((1, 3, 5, 3), np.float32)
    img[:] = [11, 24, 40]  # normalised (1, 2, 2)
    out = clf.forward(img, (PROB, LOGITS, FEATURE))
    np.testing.assert_allclose(out[FEATURE], [[3, 4]])  # input of the last Linear (head) = body output
    np.testing.assert_allclose(out[LOGITS], [[3, 4, 7, 2]])
    e = np.exp(np.array([3., 4, 7, 2]) - 7)
    np.testing.assert_allclose(out[PROB], [e / e.sum()], rtol=1e-6)
    named = TorchClassifier(Tiny(), 4, 0, 1, feature="body")  # a submodule's OUTPUT
    assert named.forward(np.ones((2, 4, 4, 3), np.float32) * 3, (FEATURE,))[FEATURE].tolist() == [[6, 6], [6, 6]]
    # the mask colour maps to 0: a masked image normalises to zeros
    z = clf.forward(np.broadcast_to(clf.mask_color, (1, 3, 5, 3)).copy(), (LOGITS,))[LOGITS]
    np.testing.assert_allclose(z, [[0, 0, 0, 5]], atol=1e-6)


def test_bad_modules_and_factories(tmp_path, monkeypatch):
    from stl.models import ModelError, build_classifier
    from stl.models.torch_classifier import TorchClassifier

    with pytest.raises(ModelError, match="no nn.Linear"):
        TorchClassifier(torch.nn.Conv2d(3, 2, 1), 4, 0, 1)
    with pytest.raises(ModelError, match="feature='nope': no such submodule"):
        TorchClassifier(Tiny(), 4, 0, 1, feature="nope")
    with pytest.raises(ModelError, match="not \\(1, classes\\)"):
        TorchClassifier(torch.nn.Sequential(torch.nn.Linear(4, 4)), 4, 0, 1)  # NCHW in, rank-4 out
    (tmp_path / "stl_test_factories.py").write_text(textwrap.dedent("""
        import torch, sys
        sys.path.insert(0, %r)
        from test_torch_classifier import Tiny

        def good():
            return Tiny(), {"input_size": 4, "mean": 0.5, "std": 0.25}

        def nomean():
            return Tiny(), {"input_size": 4}

        def boom():
            raise RuntimeError("weights not downloaded")
    """ % str(REPO / "tests")))
    monkeypatch.syspath_prepend(str(tmp_path))
    clf = build_classifier("stl_test_factories:good")
    assert clf.name == "stl_test_factories:good" and len(clf.classes) == 4
    np.testing.assert_allclose(clf.mask_color, 127.5)
    assert build_classifier("stl_test_factories:good", mean=(1, 2, 3), std=(4, 5, 6)).mean.tolist() == [1, 2, 3]
    with pytest.raises(ModelError, match="stl_test_factories:nomean: no mean, std"):
        build_classifier("stl_test_factories:nomean")
    with pytest.raises(ModelError, match="stl_test_factories:boom: the factory raised RuntimeError: weights not"):
        build_classifier("stl_test_factories:boom")
    with pytest.raises(ModelError, match="cannot import no_such_module_x"):
        build_classifier("no_such_module_x:f")
    with pytest.raises(ModelError, match="has no function nothing"):
        build_classifier("stl_test_factories:nothing")


def test_cli_factory_that_raises_is_one_line(tmp_path):
    import skimage

    (tmp_path / "stl_boom_factory.py").write_text("def make():\n    raise RuntimeError('no weights here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    r = subprocess.run([sys.executable, "-m", "stl.cli", "localize", os.path.join(skimage.data_dir, "chelsea.png"),
                        "--model", "stl_boom_factory:make", "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, env=env, timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("stl: error: --model stl_boom_factory:make: the factory raised RuntimeError"), r.stderr


def _lite0_module():
    from efficientnet_lite_pytorch import EfficientNet

    from stl.models.efficientnet import lite0_weights_path

    net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    net.load_state_dict(torch.load(lite0_weights_path(), map_location="cpu", weights_only=True), strict=True)
    return net


@pytest.mark.slow
def test_lite0_as_torch_classifier_and_in_onnx_runtime_give_the_builtin_windows(ilsvrc_dir, lite0, capsys):
    """STL-WL on one real ILSVRC image: the built-in efficientnet_lite0, the same weights wrapped as a
    plain TorchClassifier (same memory format, channels_last), and Lite0 exported to ONNX in ONNX Runtime."""
    from stl.core.localization import localize, neighbour_swaps
    from stl.io import read_image
    from stl.models.torch_classifier import TorchClassifier

    try:
        from stl.models.onnx import lite0_onnx_classifier

        onnx_clf = lite0_onnx_classifier(threads=1)
    except ImportError as e:  # pragma: no cover
        missing(f"onnxruntime: {e}")
    image = read_image(ilsvrc_dir / "val" / IMAGE)
    wrapped = TorchClassifier(_lite0_module(), 224, 127.5, 127.5, channels_last=True, name="lite0 (wrapped)")
    assert wrapped.feature_name.startswith("input of _fc")
    ref = localize(image, lite0, None, CONFIG)
    got = localize(image, wrapped, None, CONFIG)
    assert len(ref) > 10 and ref.target_classes == got.target_classes
    np.testing.assert_array_equal(got.boxes, ref.boxes)
    np.testing.assert_array_equal(got.scores, ref.scores)
    np.testing.assert_array_equal(got.level, ref.level)
    ort = localize(image, onnx_clf, None, CONFIG)
    assert ort.target_classes == ref.target_classes
    swaps = neighbour_swaps(ref, ort, SWAP_TOLERANCE)
    assert swaps is not None, "ONNX Runtime's window list differs beyond near-tied swaps"
    order = {tuple(x): i for i, x in enumerate(ort.input_boxes)}
    np.testing.assert_allclose(ref.scores, ort.scores[[order[tuple(x)] for x in ref.input_boxes]], atol=1e-5)
    with capsys.disabled():
        print(f"\nLite0 parity on {IMAGE} (authors profile, hsv k=100): {len(ref)} windows; TorchClassifier: "
              f"identical; ONNX Runtime: {swaps} neighbour swap(s) (|drop difference| < {SWAP_TOLERANCE})")


def test_cuda_gives_the_cpu_outputs():
    """TorchClassifier on CUDA (skipped without a GPU): the same outputs as on the CPU."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from stl.models import FEATURE, LOGITS
    from stl.models.torch_classifier import TorchClassifier

    x = np.random.default_rng(0).uniform(0, 255, (3, 8, 8, 3)).astype(np.float32)
    cpu = TorchClassifier(Tiny(), 8, 127.5, 127.5).forward(x, (LOGITS, FEATURE))
    gpu_clf = TorchClassifier(Tiny(), 8, 127.5, 127.5, device="cuda")
    assert gpu_clf.device.startswith("cuda") and gpu_clf.preferred_batch_size == 64
    gpu = gpu_clf.forward(x, (LOGITS, FEATURE))
    for k in (LOGITS, FEATURE):
        np.testing.assert_allclose(gpu[k], cpu[k], atol=1e-4)
