"""OnnxClassifier (ONNX Runtime): the Classifier interface on real and hand-built ONNX files."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, missing



@pytest.fixture(scope="module", autouse=True)
def _need_onnxruntime():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        missing(f"onnxruntime/onnx not installed ({e}); `make setup` installs them")


def _export(module, path, shape, dynamic_hw=False, batch_dynamic=True, names=("logits",)):
    import torch

    axes = {}
    if batch_dynamic:
        axes = {"x": {0: "n"}, **{n: {0: "n"} for n in names}}
    if dynamic_hw:
        axes.setdefault("x", {}).update({2: "h", 3: "w"})
    torch.onnx.export(module.eval(), (torch.zeros(*shape),), str(path), input_names=["x"], output_names=list(names),
                      dynamic_axes=axes or None, opset_version=17, dynamo=False)
    return path


class TinyNet:
    """conv 3->4 (1x1, fixed weights), global average pool, linear 4->3, softmax."""

    @staticmethod
    def build(softmax=True):
        import torch

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 1)
                self.fc = torch.nn.Linear(4, 3)
                with torch.no_grad():
                    w = torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])
                    self.conv.weight.copy_(w[:, :, None, None])
                    self.conv.bias.zero_()
                    self.fc.weight.copy_(torch.tensor([[1., 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]))
                    self.fc.bias.copy_(torch.tensor([0., 1, 2]))

            def forward(self, x):
                f = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(self.conv(x), 1), 1)
                z = self.fc(f)
                return torch.softmax(z, 1) if softmax else z

        return M()


def test_tiny_file_prob_logits_feature_by_hand(tmp_path):
    """A file that outputs only softmax probabilities: LOGITS = the softmax's input, FEATURE = the input
    of the last Gemm (added as a graph output), preprocessing (x - mean) / std -- all by hand."""
    from stl.models import FEATURE, LOGITS, PROB
    from stl.models.onnx import OnnxClassifier

    path = _export(TinyNet.build(), tmp_path / "tiny.onnx", (1, 3, 4, 4), names=("prob",))
    clf = OnnxClassifier(path, mean=[10, 20, 30], std=2)
    assert clf.input_size == (4, 4) and len(clf.classes) == 3
    np.testing.assert_allclose(clf.mask_color, [10, 20, 30])
    img = np.zeros((2, 4, 4, 3), np.float32)
    img[0] = [12, 24, 36]  # normalised: (1, 2, 3) everywhere
    img[1, :2] = [10, 20, 30]  # top half at the mean (0), bottom half (14, 28, 42) -> (2, 4, 6)
    img[1, 2:] = [14, 28, 42]
    out = clf.forward(img, (PROB, LOGITS, FEATURE))
    feat = np.array([[1, 2, 3, 6], [1, 2, 3, 6]], np.float32)  # image 1: mean of 0 and (2, 4, 6)
    np.testing.assert_allclose(out[FEATURE], feat, atol=1e-5)
    logits = np.array([[1, 3, 8], [1, 3, 8]], np.float32)  # (f0, f1 + 1, f3 + 2)
    np.testing.assert_allclose(out[LOGITS], logits, atol=1e-5)
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(out[PROB], e / e.sum(1, keepdims=True), atol=1e-6)
    # torchvision-style fractions of 255
    clf2 = OnnxClassifier(path, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    np.testing.assert_allclose(clf2.mean, 127.5) and np.testing.assert_allclose(clf2.std, 63.75)


def test_fixed_batch_dynamic_size_and_bad_files(tmp_path):
    from stl.models import FEATURE, LOGITS, ModelError
    from stl.models.onnx import OnnxClassifier

    fixed = _export(TinyNet.build(False), tmp_path / "fixed.onnx", (2, 3, 4, 4), batch_dynamic=False)
    clf = OnnxClassifier(fixed, mean=0, std=1)
    assert clf.preferred_batch_size == 2
    x = np.random.default_rng(0).uniform(0, 255, (3, 4, 4, 3)).astype(np.float32)
    got = clf.forward(x, (LOGITS, FEATURE))  # 3 images through a batch-2 file: padded
    one = np.concatenate([clf.forward(x[i:i + 1], (LOGITS,))[LOGITS] for i in range(3)])
    np.testing.assert_allclose(got[LOGITS], one, rtol=1e-5)
    np.testing.assert_allclose(got[FEATURE][:, :3], x.mean((1, 2)), rtol=1e-5)

    dyn = _export(TinyNet.build(False), tmp_path / "dyn.onnx", (1, 3, 4, 4), dynamic_hw=True)
    with pytest.raises(ModelError, match="dyn.onnx.*dynamic height/width.*--input-size"):
        OnnxClassifier(dyn, mean=0, std=1)
    assert OnnxClassifier(dyn, mean=0, std=1, input_size=(8, 6)).input_size == (8, 6)
    with pytest.raises(ModelError, match="input height is 4, --input-size says 5"):
        OnnxClassifier(fixed, mean=0, std=1, input_size=5)
    with pytest.raises(ModelError, match="--mean and --std"):
        OnnxClassifier(fixed)

    import torch

    class Seg(torch.nn.Module):  # rank-4 output: not a classifier
        def forward(self, x):
            return x * 2

    seg = _export(Seg(), tmp_path / "seg.onnx", (1, 3, 4, 4))
    with pytest.raises(ModelError, match="seg.onnx.*not a classifier"):
        OnnxClassifier(seg, mean=0, std=1)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelError, match="junk.onnx"):
        OnnxClassifier(junk, mean=0, std=1)
    with pytest.raises(ModelError, match="3 class scores but the class list has 2"):
        words = tmp_path / "words.txt"
        words.write_text("a cat\nb dog\n")
        OnnxClassifier(fixed, mean=0, std=1, classes=str(words))


def test_cli_bad_onnx_is_one_line(tmp_path):
    """`stl localize --model seg.onnx`: one line naming the file, exit 2."""
    import torch

    class Seg(torch.nn.Module):
        def forward(self, x):
            return x * 2

    seg = _export(Seg(), tmp_path / "seg.onnx", (1, 3, 4, 4))
    import skimage

    image = Path(skimage.data_dir) / "chelsea.png"
    r = subprocess.run([sys.executable, "-m", "stl.cli", "localize", str(image), "--model", str(seg), "--mean", "0",
                        "--std", "1", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("stl: error: ") and "seg.onnx" in lines[0], r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_lite0_export_matches_torch_on_a_real_image(ilsvrc_dir, lite0, tmp_path, monkeypatch):
    """The exported Lite0 (both outputs, preprocessing in its metadata) in ONNX Runtime vs the built-in
    torch Lite0 on a real ILSVRC image and masked copies of it: logits/feature within float rounding,
    same top-5."""
    import cv2

    from stl.io import load_image
    from stl.models import FEATURE, LOGITS, PROB, build_classifier
    from stl.models.onnx import export_lite0_onnx

    path = export_lite0_onnx()
    assert path.is_file() and export_lite0_onnx() == path  # cached
    clf = build_classifier("efficientnet_lite0", engine="onnx", threads=1)
    assert clf.name == "efficientnet_lite0_onnx" and clf.input_size == lite0.input_size
    np.testing.assert_allclose(clf.mask_color, lite0.mask_color)
    assert clf.classes.wnids == lite0.classes.wnids
    f = sorted((ilsvrc_dir / "val").glob("*.JPEG"))[0]
    img = cv2.resize(load_image(f).array, (224, 224), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    batch = np.stack([img, img, img])
    batch[1, 50:150, 60:160] = clf.mask_color
    batch[2, :112] = clf.mask_color
    a = clf.forward(batch, (PROB, LOGITS, FEATURE))
    b = lite0.forward(batch, (PROB, LOGITS, FEATURE))
    assert a[FEATURE].shape == (3, 1280)
    np.testing.assert_allclose(a[LOGITS], b[LOGITS], atol=2e-4)
    np.testing.assert_allclose(a[FEATURE], b[FEATURE], atol=2e-4)
    np.testing.assert_allclose(a[PROB], b[PROB], atol=1e-5)
    assert (np.argsort(-a[PROB], 1)[:, :5] == np.argsort(-b[PROB], 1)[:, :5]).all()


def test_nhwc_file_gives_the_nchw_outputs(tmp_path):
    """A file whose input is (N, H, W, 3) is fed NHWC; same outputs as the NCHW file of the same net."""
    import torch

    from stl.models import FEATURE, LOGITS
    from stl.models.onnx import OnnxClassifier

    net = TinyNet.build(False)

    class NHWC(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.permute(0, 3, 1, 2))

    nchw = OnnxClassifier(_export(net, tmp_path / "a.onnx", (1, 3, 5, 6)), mean=(1, 2, 3), std=(4, 5, 6))
    nhwc = OnnxClassifier(_export(NHWC(), tmp_path / "b.onnx", (1, 5, 6, 3)), mean=(1, 2, 3), std=(4, 5, 6))
    assert nhwc._layout == "NHWC" and nhwc.input_size == (5, 6) == nchw.input_size
    x = np.random.default_rng(1).uniform(0, 255, (2, 5, 6, 3)).astype(np.float32)
    a, b = nchw.forward(x, (LOGITS, FEATURE)), nhwc.forward(x, (LOGITS, FEATURE))
    for k in (LOGITS, FEATURE):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-5)
