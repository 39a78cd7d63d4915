"""Device / precision handling shared by the PyTorch engines.

fp32 is the reference for correctness. ``precision="bf16"`` runs under
``torch.autocast`` (CPU with AVX-512/AMX, or CUDA); ``"fp16"`` is CUDA only.
``channels_last`` is a CPU/GPU memory-format fast path with identical maths.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np
import torch

PRECISIONS = ("fp32", "bf16", "fp16")


class TorchRuntime:
    def __init__(self, device: str = "cpu", precision: str = "fp32", channels_last: bool = False,
                 num_threads: Optional[int] = None):
        from ..errors import OptionError

        if precision not in PRECISIONS:
            raise OptionError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError) as e:  # '', 'gpu', 'cuda:x'
            raise OptionError(f"--device {device!r}: not a torch device ({e}); use cpu, cuda or cuda:N") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise OptionError(f"--device {device}: torch.cuda.is_available() is False (CPU build of torch, or no "
                              f"GPU); use --device cpu")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise OptionError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        if precision == "fp16" and dev.type != "cuda":
            raise OptionError("--precision fp16 is supported on CUDA only; use bf16 on CPU")
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
