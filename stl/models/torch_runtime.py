"""Device / precision handling shared by the PyTorch engines.

fp32 is the reference for correctness. ``precision="bf16"`` runs under
``torch.autocast`` (CPU with AVX-512/AMX, or CUDA); ``"fp16"`` is CUDA only.
``channels_last`` is a CPU/GPU memory-format fast path with identical maths.

fp32 on CUDA is IEEE fp32: PyTorch's default lets cuDNN convolutions use TF32 (10-bit
mantissa) on Ampere and later GPUs, which moves every drop by ~1e-3 relative and changes STL's
windows; a CUDA fp32 runtime turns TF32 off for convolutions and matmuls
(:func:`ieee_fp32_on_cuda`, process-wide). bf16 / fp16 are the fast options.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np
import torch

from .base import ModelError

PRECISIONS = ("fp32", "bf16", "fp16")


class DeviceError(ModelError, ValueError):
    """A device / precision this machine cannot give (the user's choice: one line, exit 2)."""


def ieee_fp32_on_cuda() -> None:
    """Make float32 convolutions and matmuls on CUDA IEEE fp32, not TF32 (process-wide flags:
    ``torch.backends.cudnn.conv.fp32_precision`` and ``torch.backends.cuda.matmul.fp32_precision``,
    or the older ``allow_tf32`` flags on a torch without them)."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:  # pragma: no cover - torch < 2.9
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


class TorchRuntime:
    def __init__(self, device: str = "cpu", precision: str = "fp32", channels_last: bool = False,
                 num_threads: Optional[int] = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise DeviceError(f"--device {device!r} is not a device: use cpu, cuda or cuda:N") from None
        if dev.type not in ("cpu", "cuda"):
            raise DeviceError(f"--device {device!r}: the torch engines run on cpu, cuda or cuda:N")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} requested but torch.cuda.is_available() is False (torch "
                              f"{torch.__version__}: a CPU build, or no GPU); use --device cpu, or the CUDA build "
                              f"of torch (docs/gpu.md)")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} requested but this machine shows {torch.cuda.device_count()} "
                              f"CUDA device(s) (cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
        if precision == "fp16" and dev.type != "cuda":
            raise DeviceError("fp16 is supported on CUDA only; use bf16 on CPU")
        if dev.type == "cuda" and precision == "fp32":
            ieee_fp32_on_cuda()
        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = dev
        self.precision = precision
        self.channels_last = channels_last

    def prepare_module(self, module: torch.nn.Module) -> torch.nn.Module:
        module = module.eval().to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def to_tensor(self, blob: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(blob, np.float32))
        if self.device.type == "cuda":
            t = t.pin_memory().to(self.device, non_blocking=True)
        if self.channels_last and t.ndim == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    @staticmethod
    def to_numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy()
