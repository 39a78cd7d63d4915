"""The CUDA code paths (``--device cuda``): CPU vs CUDA parity of the engines, incremental masked
forwards, STL's windows, CAM / Grad-CAM / RISE, reduced precisions.

The tests marked ``cuda`` need a GPU and a CUDA build of torch; without one they skip (CI has
no GPU) -- ``STL_REQUIRE_CUDA=1`` (set by tools/gpu_check.sh on a GPU machine) makes that a
failure instead. The unmarked tests at the end check on the CPU what a CPU can catch of the CUDA
paths (TF32 off for fp32, Ray's GPU workers). docs/gpu.md says how to run the GPU check.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from stl.core.config import STLConfig, SegmentationConfig
from stl.models import FEATURE, LOGITS, PROB

#: the two real images of tests/test_stl_engines.py
IMAGES = ["ILSVRC2012_val_00000347.JPEG", "ILSVRC2012_val_00000361.JPEG"]
#: one segmentation keeps STL on the CPU side at a few seconds per image
CONFIG = STLConfig.for_profile("authors").replace(segmentation=SegmentationConfig(color_spaces=("hsv",), ks=(100,)))
#: drops closer than this may be ranked in either order by two engines (tests/test_stl_engines.py)
SWAP_TOLERANCE = 1e-5
CAFFE_MODELS = ["caffenet_random", "squeezenet"]


def require_cuda() -> None:
    if torch.cuda.is_available():
        return
    why = (f"no CUDA device (torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
           f"tools/gpu_check.sh runs these on a GPU machine")
    if os.environ.get("STL_REQUIRE_CUDA", "") not in ("", "0"):
        pytest.fail(f"STL_REQUIRE_CUDA=1: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def gpu():
    """The CUDA device. ``STL_CUDA_TEST_DEVICE=cpu`` runs these tests with "cpu" in its place: a dry
    run of the test code itself on a CPU machine (it then compares the CPU with itself)."""
    dry = os.environ.get("STL_CUDA_TEST_DEVICE")
    if dry:
        return dry
    require_cuda()
    return "cuda"


@pytest.fixture(scope="module")
def real_images(ilsvrc_dir):
    from stl.io import read_image

    files = sorted((ilsvrc_dir / "val").glob("*.JPEG"))[:4]
    return np.stack([read_image(f).astype(np.float32) for f in files])


def _pair(name, gpu, **kw):
    from stl.models import build_classifier

    return build_classifier(name, device="cpu", **kw), build_classifier(name, device=gpu, **kw)


def _resized(images, clf):
    from stl.core.localization import resize_to_input

    return np.stack([resize_to_input(im.astype(np.uint8), clf.input_size) for im in images]).astype(np.float32)


# ----------------------------------------------------------------------------- engines
@pytest.mark.cuda
@pytest.mark.parametrize("name", CAFFE_MODELS + ["efficientnet_lite0"])
def test_engine_cpu_vs_cuda_fp32(name, gpu, real_images):
    """fp32 on CUDA (IEEE: TF32 off) gives the CPU's outputs up to float summation order."""
    cpu, cuda = _pair(name, gpu)
    x = _resized(real_images, cpu)
    a = cpu.forward(x, (PROB, LOGITS, FEATURE))
    b = cuda.forward(x, (PROB, LOGITS, FEATURE))
    np.testing.assert_allclose(b[PROB], a[PROB], atol=1e-5)
    for k in (LOGITS, FEATURE):
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(a[k]).max())), err_msg=k)
    assert (a[PROB].argmax(1) == b[PROB].argmax(1)).all()
    if gpu != "cpu":
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"


@pytest.mark.cuda
@pytest.mark.parametrize("name", CAFFE_MODELS)
def test_incremental_vs_whole_masked_forwards_on_cuda(name, gpu, real_images):
    """The torch Caffe engine's incremental masked forwards on CUDA equal whole forwards of the masked
    images on CUDA, and the CPU's incremental forwards."""
    from stl.models.base import mask_boxes

    cpu, cuda = _pair(name, gpu)
    images = real_images[:2]
    rng = np.random.default_rng(4)
    x0, y0 = rng.integers(0, 220, 48), rng.integers(0, 220, 48)
    boxes = np.stack([x0, y0, np.minimum(x0 + rng.integers(4, 120, 48), 226),
                      np.minimum(y0 + rng.integers(4, 120, 48), 226)], 1)
    index = np.arange(48) % 2
    assert cuda.incremental_masking
    inc = cuda.forward_masked(images, index, boxes, (PROB, LOGITS))
    whole = cuda.forward(mask_boxes(images, index, boxes, cuda.mask_color), (PROB, LOGITS))
    np.testing.assert_allclose(inc[PROB], whole[PROB], rtol=1e-4, atol=1e-6)
    scale = max(1.0, float(np.abs(whole[LOGITS]).max()))
    np.testing.assert_allclose(inc[LOGITS], whole[LOGITS], rtol=1e-4, atol=1e-4 * scale)
    on_cpu = cpu.forward_masked(images, index, boxes, (PROB,))
    np.testing.assert_allclose(inc[PROB], on_cpu[PROB], atol=1e-5)
    assert np.abs(inc[PROB] - cuda.forward(images, (PROB,))[PROB][index]).max() > 1e-4  # the masks do change it


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("name", ["squeezenet", "efficientnet_lite0"])
def test_reduced_precision_on_cuda(name, precision, gpu, real_images):
    """fp16 / bf16 run on CUDA (weights cast once, LRN in fp32), give finite probabilities near fp32's,
    and the incremental masked forwards agree with whole ones at that precision."""
    from stl.models import build_classifier
    from stl.models.base import mask_boxes

    if gpu == "cpu" and precision == "fp16":
        pytest.skip("fp16 is CUDA only (dry run on the CPU)")
    ref = build_classifier(name, device=gpu)
    low = build_classifier(name, device=gpu, precision=precision)
    x = _resized(real_images, ref)
    p32, p16 = ref.forward(x, (PROB,))[PROB], low.forward(x, (PROB,))[PROB]
    assert np.isfinite(p16).all() and np.allclose(p16.sum(1), 1, atol=1e-3)
    assert np.abs(p16 - p32).max() < 0.05
    boxes = np.array([[10, 10, 80, 90], [100, 40, 200, 150], [0, 0, 226, 60]])
    index = np.array([0, 1, 0])
    a = low.forward_masked(x[:2], index, boxes, (PROB,))[PROB]
    b = low.forward(mask_boxes(x[:2], index, boxes, low.mask_color), (PROB,))[PROB]
    np.testing.assert_allclose(a, b, atol=0.02)


# ----------------------------------------------------------------------------- STL
@pytest.mark.cuda
@pytest.mark.parametrize("name", ["squeezenet", "efficientnet_lite0"])
def test_stl_windows_cpu_vs_cuda_fp32(name, gpu, ilsvrc_dir, capsys):
    """STL-WL on 2 real images, authors profile: CUDA fp32 gives the CPU's windows; windows whose
    drops differ by less than 1e-5 may swap places (stl.core.localization.neighbour_swaps)."""
    from stl.core.localization import localize_batch, neighbour_swaps
    from stl.io import read_image
    from stl.models import build_classifier

    images = [read_image(ilsvrc_dir / "val" / f) for f in IMAGES]
    out = {}
    for device in ("cpu", gpu):
        clf = build_classifier(name, device=device, mean_mode=CONFIG.caffe_mean)
        out[device] = localize_batch(images, clf, [None, None], CONFIG)
    swaps = []
    for a, b in zip(out["cpu"], out[gpu]):
        assert len(a) > 10 and a.target_classes == b.target_classes
        n = neighbour_swaps(a, b, SWAP_TOLERANCE)
        assert n is not None, "CUDA's window list differs from the CPU's beyond near-tied swaps"
        swaps.append(n)
        order = {tuple(x): i for i, x in enumerate(b.input_boxes)}
        np.testing.assert_allclose(a.scores, b.scores[[order[tuple(x)] for x in a.input_boxes]], atol=1e-5)
    with capsys.disabled():
        print(f"\nCPU vs CUDA fp32 ({name}, authors profile): windows {[len(w) for w in out['cpu']]}, "
              f"near-tied swaps {swaps}")


# ----------------------------------------------------------------------------- WSOL heatmaps
@pytest.mark.cuda
@pytest.mark.parametrize("name", ["efficientnet_lite0", "squeezenet"])
def test_cam_gradcam_rise_on_cuda_equal_cpu(name, gpu, real_images):
    from stl.wsol.heatmaps import RISEConfig, RISEMasks, cam_maps, conv_head, rise_saliency

    cpu, cuda = _pair(name, gpu)
    x = _resized(real_images[:2], cpu)
    top = cpu.forward(x, (PROB,))[PROB].argsort(1)[:, ::-1][:, :2].copy()
    a, b = cam_maps(conv_head(cpu), x, top), cam_maps(conv_head(cuda), x, top)
    for k in ("gradcam", "cam", "logits"):
        if a[k] is None:
            assert b[k] is None
            continue
        scale = max(1e-6, float(np.abs(a[k]).max()))
        np.testing.assert_allclose(b[k], a[k], rtol=1e-3, atol=1e-4 * scale, err_msg=k)
    masks = RISEMasks(cpu.input_size, RISEConfig(num_masks=64, seed=0, batch_size=32))
    ra, pa = rise_saliency(cpu, x[0], masks, top[0])
    rb, pb = rise_saliency(cuda, x[0], masks, top[0])
    np.testing.assert_allclose(pb, pa, atol=1e-5)
    np.testing.assert_allclose(rb, ra, rtol=1e-4, atol=1e-5 * float(np.abs(ra).max()))


# ----------------------------------------------------------------------------- on the CPU
@pytest.fixture
def fp32_flags():
    conv, mm = torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    yield
    torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = conv, mm


def test_cuda_fp32_runtime_turns_tf32_off(monkeypatch, fp32_flags):
    """PyTorch lets cuDNN convolutions run float32 as TF32 by default (10-bit mantissa: drops move by
    ~1e-3 on Ampere and later GPUs); a CUDA fp32 runtime asks for IEEE fp32. A CPU runtime and
    reduced precisions leave the flags alone."""
    from stl.models.torch_runtime import TorchRuntime

    torch.backends.cudnn.conv.fp32_precision = "tf32"
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    TorchRuntime("cpu", "fp32")
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    TorchRuntime("cuda", "fp16")
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    rt = TorchRuntime("cuda:0", "fp32")
    assert rt.device.type == "cuda"
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"


@pytest.mark.parametrize("argv, what", [
    (["--device", "cuda"], "torch.cuda.is_available() is False"), (["--device", "cuda:x"], "is not a device"),
    (["--device", "tpu"], "is not a device"), (["--device", "meta"], "run on cpu, cuda or cuda:N"),
    (["--precision", "fp16"], "fp16 is supported on CUDA only"),
])
def test_devices_this_machine_lacks_are_one_line_errors(argv, what, tmp_path, capsys):
    """A device or precision the machine cannot give is the user's choice: `stl: error: ...`, exit 2
    (it was an internal error, exit 70), before any work."""
    from stl.cli import main
    from stl.models import build_classifier
    from stl.models.torch_runtime import DeviceError

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["bench", "--images", "1", "--out", str(tmp_path / "b"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stl: error:") and what in err[0], err
    assert not (tmp_path / "b").exists()
    with pytest.raises(DeviceError):  # also a RuntimeError (ModelError) and a ValueError, as before
        build_classifier("efficientnet_lite0", device="cuda")


def test_ray_gpu_workers_get_their_own_gpu():
    """Ray makes only a worker's reserved GPUs visible to it: with --gpus-per-worker the classifier
    runs on "cuda" (cuda:1 may not exist inside the worker); without, Ray hides every GPU, so a CUDA
    device is refused up front with what to do."""
    from stl.executors.ray_executor import worker_device
    from stl.store import RunError

    assert worker_device("cpu", 0.5) == "cuda" and worker_device("cuda:1", 1) == "cuda"
    assert worker_device("cpu", 0) == "cpu"
    for dev in ("cuda", "cuda:0", "gpu"):
        with pytest.raises(RunError, match="needs --gpus-per-worker"):
            worker_device(dev, 0)


def test_ray_cuda_without_gpus_per_worker_fails_before_ray_starts(tmp_path, ilsvrc_dir, capsys):
    import ray

    from stl.cli import main

    was_up = ray.is_initialized()
    argv = ["run", "--dataset", "ilsvrc2012_val", "--root", str(ilsvrc_dir), "--method", "STL-WL", "--limit", "1",
            "--model", "caffenet_random", "--device", "cuda", "--executor", "ray", "--workers", "1",
            "--out", str(tmp_path / "runs"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs --gpus-per-worker" in err[0] and err[0].startswith("stl: error:")
    assert ray.is_initialized() == was_up  # refused before a Ray instance was started
    assert not list((tmp_path / "runs").rglob("*.h5"))  # nothing written
