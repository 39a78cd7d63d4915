"""Caffe's layers in PyTorch, each with Caffe's exact semantics (see :mod:`stl.models.caffe.net`
for the supported types) and the pooling arithmetic they share; :data:`LAYER_TYPES` maps a
layer type to its module."""
from __future__ import annotations

import logging
import math
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import io as caffe_io
from ..base import ModelError

log = logging.getLogger(__name__)

Shape = Tuple[int, ...]


def _canonical_axis(axis: int, ndim: int, layer) -> int:
    a = axis + ndim if axis < 0 else axis
    if not 0 <= a < ndim:
        raise ModelError(f"layer {layer.name!r} ({layer.type}): axis {axis} out of range for a {ndim}-D blob")
    return a


def _hw(values, h_field, w_field, param, default, name):
    """Caffe's kernel/pad/stride convention: *_h/*_w, else a repeated or single value."""
    if param.HasField(h_field) or param.HasField(w_field):
        return int(getattr(param, h_field)), int(getattr(param, w_field))
    if isinstance(values, int):
        return values, values
    values = list(values)
    if not values:
        if default is None:
            raise ModelError(f"{name} is required")
        return default, default
    if len(values) == 1:
        return int(values[0]), int(values[0])
    if len(values) == 2:
        return int(values[0]), int(values[1])
    raise ModelError(f"{name}: only 2-D blobs are supported, got {len(values)} values")


# ---------------------------------------------------------------------------
# Pooling arithmetic shared by the Pooling and LRN layers
# ---------------------------------------------------------------------------
def caffe_pool_output_size(size: int, kernel: int, pad: int, stride: int, any_pad: bool,
                           ceil_mode: bool = True) -> int:
    """Caffe's PoolingLayer::Reshape output size (CEIL rounding by default)."""
    num = size + 2 * pad - kernel
    out = (int(math.ceil(num / stride)) if ceil_mode else num // stride) + 1
    if any_pad and (out - 1) * stride >= size + pad:
        out -= 1  # the last pooling window must start inside the image (+ padding)
    return out


def _torch_ceil_pool_size(size: int, kernel: int, pad: int, stride: int) -> int:
    out = (size + 2 * pad - kernel + stride - 1) // stride + 1
    if (out - 1) * stride >= size + pad:
        out -= 1
    return out


def caffe_pool2d(x: torch.Tensor, method: str, kernel: Tuple[int, int], stride: Tuple[int, int],
                 pad: Tuple[int, int], out_hw: Tuple[int, int]) -> torch.Tensor:
    """MAX / AVE pooling with Caffe's windows and AVE divisors for a given output size."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    H, W = x.shape[-2:]
    oh, ow = out_hw
    fast = (ph <= kh // 2 and pw <= kw // 2 and _torch_ceil_pool_size(H, kh, ph, sh) == oh
            and _torch_ceil_pool_size(W, kw, pw, sw) == ow)
    if fast:  # torch's ceil-mode windows and count_include_pad divisors are Caffe's
        if method == "MAX":
            return F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode=True)
        return F.avg_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode=True, count_include_pad=True)
    # General case: explicit padding so that every window fits, then crop to Caffe's size.
    pb = max(0, (oh - 1) * sh + kh - H - ph)
    pr = max(0, (ow - 1) * sw + kw - W - pw)
    if method == "MAX":
        xp = F.pad(x, (pw, pr, ph, pb), value=float("-inf"))
        out = F.max_pool2d(xp, (kh, kw), (sh, sw))[..., :oh, :ow]
        # a window entirely outside the image (kernel < stride) gives -FLT_MAX in Caffe
        return out.clamp_min(torch.finfo(out.dtype).min)
    xp = F.pad(x, (pw, pr, ph, pb), value=0.0)
    s = F.avg_pool2d(xp, (kh, kw), (sh, sw), divisor_override=1)[..., :oh, :ow]
    hs = np.arange(oh) * sh - ph
    ws = np.arange(ow) * sw - pw
    size_h = np.minimum(hs + kh, H + ph) - hs
    size_w = np.minimum(ws + kw, W + pw) - ws
    div = torch.as_tensor(np.outer(size_h, size_w), dtype=s.dtype, device=s.device)
    return s / div


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------
class CaffeLayer(nn.Module):
    """One Caffe layer: ``setup`` infers top shapes (and parameter shapes) like Caffe's Reshape.

    Each layer also declares its *locality* for incremental masking
    (:mod:`stl.models.caffe.incremental`, which imports only this protocol):

    * ``"window"`` -- an output pixel depends on a kernel window of the input
      (convolution, pooling that never divides by a clipped window); such a
      layer gives :meth:`window_geometry` and :meth:`window_op`;
    * ``"pointwise"`` -- an output pixel depends on the same input pixel only;
    * ``"merge"`` -- pixel-aligned merge of several bottoms (channel concat, eltwise);
    * ``"other"`` -- anything else (the masked rectangle stops being local here).
    """

    num_params = 0
    #: see the class docstring; subclasses override (a property where it depends on parameters)
    locality = "other"

    def window_geometry(self):
        """(effective kernel, stride, pad, fill value) per dimension of a ``"window"`` layer."""
        raise NotImplementedError(f"{self.layer_type} is not a window layer")

    def window_op(self, x: torch.Tensor) -> torch.Tensor:
        """The layer on an explicitly padded window (no padding, floor rounding)."""
        raise NotImplementedError(f"{self.layer_type} is not a window layer")

    def __init__(self, lp):
        super().__init__()
        self.layer_name = lp.name
        self.layer_type = lp.type
        self.bottoms = list(lp.bottom)
        self.tops = list(lp.top)
        self.lp = lp

    def error(self, msg: str) -> ModelError:
        return ModelError(f"layer {self.layer_name!r} ({self.layer_type}): {msg}")

    def setup(self, bottom_shapes: List[Shape]) -> List[Shape]:
        return [bottom_shapes[0]] * len(self.tops)

    def param_shapes(self) -> List[Shape]:
        return [tuple(p.shape) for p in self.caffe_params()]

    def caffe_params(self) -> List[torch.Tensor]:
        return []

    def extra_repr(self) -> str:
        return f"{self.layer_name!r}: {self.bottoms} -> {self.tops}"

    def run(self, *bottoms: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The layer on its bottom tensors; one output per top, always as a tuple."""
        res = self(*bottoms)
        return res if isinstance(res, tuple) else (res,)


def _param(shape: Shape) -> nn.Parameter:
    return nn.Parameter(torch.zeros(shape), requires_grad=False)


class ConvolutionLayer(CaffeLayer):
    locality = "window"

    def window_geometry(self):
        k = tuple(d * (kk - 1) + 1 for kk, d in zip(self.kernel, self.dilation))
        return k, self.stride, self.pad, 0.0

    def window_op(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.group)

    def __init__(self, lp):
        super().__init__(lp)
        p = lp.convolution_param
        if p.axis != 1:
            raise self.error("only axis 1 is supported")
        self.kernel = _hw(p.kernel_size, "kernel_h", "kernel_w", p, None, f"layer {lp.name!r}: kernel_size")
        self.pad = _hw(p.pad, "pad_h", "pad_w", p, 0, f"layer {lp.name!r}: pad")
        self.stride = _hw(p.stride, "stride_h", "stride_w", p, 1, f"layer {lp.name!r}: stride")
        dil = list(p.dilation)
        self.dilation = (1, 1) if not dil else ((dil[0], dil[0]) if len(dil) == 1 else (dil[0], dil[1]))
        self.group = int(p.group)
        self.num_output = int(p.num_output)
        self.bias_term = bool(p.bias_term)
        if self.num_output <= 0:
            raise self.error("num_output must be positive")
        if self.num_output % self.group:
            raise self.error(f"num_output {self.num_output} not divisible by group {self.group}")

    def setup(self, bottom_shapes):
        s = bottom_shapes[0]
        if len(s) != 4:
            raise self.error(f"expects a 4-D bottom, got shape {s}")
        n, c, h, w = s
        if c % self.group:
            raise self.error(f"input channels {c} not divisible by group {self.group}")
        self.weight = _param((self.num_output, c // self.group) + tuple(self.kernel))
        self.bias = _param((self.num_output,)) if self.bias_term else None
        out = []
        for size, k, p, st, d in zip((h, w), self.kernel, self.pad, self.stride, self.dilation):
            o = (size + 2 * p - (d * (k - 1) + 1)) // st + 1
            if o <= 0:
                raise self.error(f"output would be empty (input {h}x{w})")
            out.append(o)
        return [(n, self.num_output, out[0], out[1])] * len(self.tops)

    def caffe_params(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.pad, self.dilation, self.group)


class InnerProductLayer(CaffeLayer):
    def __init__(self, lp):
        super().__init__(lp)
        p = lp.inner_product_param
        self.num_output = int(p.num_output)
        self.bias_term = bool(p.bias_term)
        self.transpose = bool(p.transpose)
        self.axis_param = int(p.axis)
        if self.num_output <= 0:
            raise self.error("num_output must be positive")

    def setup(self, bottom_shapes):
        s = bottom_shapes[0]
        self.axis = _canonical_axis(self.axis_param, len(s), self.lp)
        k = int(np.prod(s[self.axis:]))
        self.weight = _param((k, self.num_output) if self.transpose else (self.num_output, k))
        self.bias = _param((self.num_output,)) if self.bias_term else None
        return [tuple(s[:self.axis]) + (self.num_output,)]

    def caffe_params(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def forward(self, x):
        x = x.flatten(self.axis) if self.axis < x.ndim - 1 else x
        w = self.weight.t() if self.transpose else self.weight
        return F.linear(x, w, self.bias)


class PoolingLayer(CaffeLayer):
    @property
    def locality(self) -> str:
        if self.global_pooling:
            return "other"
        if self.method == "MAX":
            return "window"
        # AVE: Caffe divides border windows by their clipped size; only windows that never clip are local
        return "window" if self.pad == (0, 0) and self.never_clips else "other"

    #: set by ``setup``: every AVE window lies inside the image (no clipped divisors)
    never_clips = False

    def window_geometry(self):
        return self.kernel, self.stride, self.pad, float("-inf") if self.method == "MAX" else 0.0

    def window_op(self, x):
        if self.method == "MAX":
            return F.max_pool2d(x, self.kernel, self.stride)
        return F.avg_pool2d(x, self.kernel, self.stride)

    def __init__(self, lp):
        super().__init__(lp)
        p = lp.pooling_param
        self.method = caffe_io.PoolingParameter.PoolMethod.Name(p.pool)
        if self.method not in ("MAX", "AVE"):
            raise self.error(f"pooling method {self.method} is not supported (MAX and AVE are)")
        self.global_pooling = bool(p.global_pooling)
        self.ceil_mode = p.round_mode == 0
        if self.global_pooling:
            if p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w"):
                raise self.error("with global_pooling the kernel size cannot be specified")
            self.kernel = None
        else:
            self.kernel = _hw(p.kernel_size if p.HasField("kernel_size") else [], "kernel_h", "kernel_w", p,
                              None, f"layer {lp.name!r}: kernel_size")
        self.pad = _hw(p.pad, "pad_h", "pad_w", p, 0, "pad")
        self.stride = _hw(p.stride, "stride_h", "stride_w", p, 1, "stride")
        if self.global_pooling and (self.pad != (0, 0) or self.stride != (1, 1)):
            raise self.error("with global_pooling, pad must be 0 and stride 1")
        if self.kernel is not None and (self.pad[0] >= self.kernel[0] or self.pad[1] >= self.kernel[1]):
            raise self.error("pad must be smaller than the kernel")

    def setup(self, bottom_shapes):
        s = bottom_shapes[0]
        if len(s) != 4:
            raise self.error(f"expects a 4-D bottom, got shape {s}")
        n, c, h, w = s
        self._out_cache = {}
        if self.global_pooling:
            self.out_hw = (1, 1)
        else:
            any_pad = bool(self.pad[0] or self.pad[1])
            self.out_hw = tuple(caffe_pool_output_size(size, k, p, st, any_pad, self.ceil_mode)
                                for size, k, p, st in zip((h, w), self.kernel, self.pad, self.stride))
            if min(self.out_hw) <= 0:
                raise self.error(f"output would be empty (input {h}x{w})")
        # every AVE window lies inside the image: no clipped divisors (see stl.models.caffe.incremental)
        self.never_clips = (not self.global_pooling and self.pad == (0, 0)
                             and all((o - 1) * st + k <= size for o, st, k, size
                                     in zip(self.out_hw, self.stride, self.kernel, (h, w))))
        return [(n, c) + self.out_hw] * len(self.tops)

    def forward(self, x):
        if self.global_pooling:
            return x.amax((2, 3), keepdim=True) if self.method == "MAX" else x.mean((2, 3), keepdim=True)
        hw = tuple(x.shape[-2:])
        out_hw = self._out_cache.get(hw)
        if out_hw is None:
            any_pad = bool(self.pad[0] or self.pad[1])
            out_hw = tuple(caffe_pool_output_size(size, k, p, st, any_pad, self.ceil_mode)
                           for size, k, p, st in zip(hw, self.kernel, self.pad, self.stride))
            self._out_cache[hw] = out_hw
        return caffe_pool2d(x, self.method, self.kernel, self.stride, self.pad, out_hw)


class LRNLayer(CaffeLayer):
    @property
    def locality(self) -> str:
        return "pointwise" if self.region == "ACROSS_CHANNELS" else "other"

    def __init__(self, lp):
        super().__init__(lp)
        p = lp.lrn_param
        self.size = int(p.local_size)
        if self.size % 2 == 0:
            raise self.error("LRN only supports odd values for local_size")
        self.alpha, self.beta, self.k = float(p.alpha), float(p.beta), float(p.k)
        self.region = caffe_io.LRNParameter.NormRegion.Name(p.norm_region)

    def forward(self, x):
        # Always in float32: under fp16 autocast x^2 of conv activations (hundreds) would overflow.
        dtype = x.dtype
        x = x.float()
        if self.region == "ACROSS_CHANNELS":
            # scale = k + alpha/n * sum_{local_size channels, zero-padded} x^2 ; y = x * scale^-beta
            # (Caffe's LRNLayer). The window sum is local_size shifted adds of x^2 (3-4x faster
            # on CPU than F.local_response_norm's avg_pool3d; same values up to rounding).
            sq = x * x
            scale = sq.clone()
            for d in range(1, (self.size - 1) // 2 + 1):
                scale[:, d:] += sq[:, :-d]
                scale[:, :-d] += sq[:, d:]
            scale.mul_(self.alpha / self.size).add_(self.k)
            y = x * scale.pow_(-self.beta)
        else:
            # WITHIN_CHANNEL: Caffe's composite square -> AVE pool(pad (n-1)/2) -> (1 + alpha*.)^-beta -> product
            pad = (self.size - 1) // 2
            h, w = x.shape[-2:]
            oh = caffe_pool_output_size(h, self.size, pad, 1, pad > 0)
            ow = caffe_pool_output_size(w, self.size, pad, 1, pad > 0)
            avg = caffe_pool2d(x * x, "AVE", (self.size,) * 2, (1, 1), (pad, pad), (oh, ow))
            y = x * torch.pow(1.0 + self.alpha * avg, -self.beta)
        return y.to(dtype)


class ReLULayer(CaffeLayer):
    locality = "pointwise"

    def __init__(self, lp):
        super().__init__(lp)
        self.slope = float(lp.relu_param.negative_slope)

    def forward(self, x):
        return F.relu(x) if self.slope == 0 else F.leaky_relu(x, self.slope)


class IdentityLayer(CaffeLayer):  # Dropout at test time
    locality = "pointwise"

    def forward(self, x):
        return x


class SoftmaxLayer(CaffeLayer):
    def setup(self, bottom_shapes):
        self.axis = _canonical_axis(int(self.lp.softmax_param.axis), len(bottom_shapes[0]), self.lp)
        return [bottom_shapes[0]]

    def forward(self, x):
        return torch.softmax(x, dim=self.axis)


class ConcatLayer(CaffeLayer):
    @property
    def locality(self) -> str:
        return "merge" if self.axis == 1 else "other"

    def setup(self, bottom_shapes):
        p = self.lp.concat_param
        if p.HasField("axis") and p.HasField("concat_dim"):
            raise self.error("either axis or concat_dim should be specified, not both")
        ndim = len(bottom_shapes[0])
        self.axis = int(p.concat_dim) if p.HasField("concat_dim") else _canonical_axis(int(p.axis), ndim, self.lp)
        for s in bottom_shapes[1:]:
            if len(s) != ndim or any(a != b for i, (a, b) in enumerate(zip(s, bottom_shapes[0])) if i != self.axis):
                raise self.error(f"bottom shapes {bottom_shapes} differ outside the concat axis {self.axis}")
        out = list(bottom_shapes[0])
        out[self.axis] = sum(s[self.axis] for s in bottom_shapes)
        return [tuple(out)]

    def forward(self, *xs):
        return xs[0] if len(xs) == 1 else torch.cat(xs, dim=self.axis)


class SplitLayer(CaffeLayer):
    locality = "pointwise"

    def forward(self, x):
        return tuple(x for _ in self.tops) if len(self.tops) > 1 else x


class SilenceLayer(CaffeLayer):
    def setup(self, bottom_shapes):
        return []

    def forward(self, *xs):
        return ()


class FlattenLayer(CaffeLayer):
    def setup(self, bottom_shapes):
        s = bottom_shapes[0]
        p = self.lp.flatten_param
        self.start = _canonical_axis(int(p.axis), len(s), self.lp)
        self.end = _canonical_axis(int(p.end_axis), len(s), self.lp)
        return [tuple(s[:self.start]) + (int(np.prod(s[self.start:self.end + 1])),) + tuple(s[self.end + 1:])]

    def forward(self, x):
        return torch.flatten(x, self.start, self.end)


class EltwiseLayer(CaffeLayer):
    locality = "merge"

    def __init__(self, lp):
        super().__init__(lp)
        p = lp.eltwise_param
        self.op = {0: "PROD", 1: "SUM", 2: "MAX"}[p.operation]
        self.coeff = list(p.coeff)
        if self.coeff and (self.op != "SUM" or len(self.coeff) != len(self.bottoms)):
            raise self.error("coeff needs operation SUM and one value per bottom")

    def forward(self, *xs):
        if self.op == "PROD":
            out = xs[0]
            for x in xs[1:]:
                out = out * x
        elif self.op == "MAX":
            out = xs[0]
            for x in xs[1:]:
                out = torch.maximum(out, x)
        else:
            c = self.coeff or [1.0] * len(xs)
            out = xs[0] * c[0] if c[0] != 1 else xs[0]
            for x, ci in zip(xs[1:], c[1:]):
                out = out + (x * ci if ci != 1 else x)
        return out


class SigmoidLayer(CaffeLayer):
    locality = "pointwise"

    def forward(self, x):
        return torch.sigmoid(x)


class TanHLayer(CaffeLayer):
    locality = "pointwise"

    def forward(self, x):
        return torch.tanh(x)


class BatchNormLayer(CaffeLayer):
    locality = "pointwise"

    def __init__(self, lp):
        super().__init__(lp)
        p = lp.batch_norm_param
        if p.HasField("use_global_stats") and not p.use_global_stats:
            raise self.error("use_global_stats: false (batch statistics) is not supported at test time")
        self.eps = float(p.eps)

    def setup(self, bottom_shapes):
        c = bottom_shapes[0][1]
        self.mean, self.var, self.factor = _param((c,)), _param((c,)), _param((1,))
        return [bottom_shapes[0]]

    def caffe_params(self):
        return [self.mean, self.var, self.factor]

    def forward(self, x):
        f = self.factor[0]
        scale = torch.where(f == 0, torch.zeros_like(f), 1.0 / f)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        m = (self.mean * scale).view(shape)
        v = (self.var * scale).view(shape)
        return (x - m) / torch.sqrt(v + self.eps)


class ScaleLayer(CaffeLayer):
    @property
    def locality(self) -> str:
        return "pointwise" if self.axis == 1 and all(v == 1 for v in self.view_shape[2:]) else "other"

    def setup(self, bottom_shapes):
        if len(self.bottoms) != 1:
            raise self.error("only the one-bottom form (learned scale) is supported")
        s = bottom_shapes[0]
        p = self.lp.scale_param
        self.axis = _canonical_axis(int(p.axis), len(s), self.lp)
        n = int(p.num_axes)
        end = len(s) if n == -1 else self.axis + n
        pshape = tuple(s[self.axis:end])
        self.view_shape = (1,) * self.axis + pshape + (1,) * (len(s) - end)
        self.scale = _param(pshape)
        self.bias = _param(pshape) if p.bias_term else None
        return [s]

    def caffe_params(self):
        return [self.scale] + ([self.bias] if self.bias is not None else [])

    def forward(self, x):
        y = x * self.scale.view(self.view_shape)
        return y + self.bias.view(self.view_shape) if self.bias is not None else y


LAYER_TYPES = {
    "Convolution": ConvolutionLayer, "InnerProduct": InnerProductLayer, "Pooling": PoolingLayer,
    "LRN": LRNLayer, "ReLU": ReLULayer, "Dropout": IdentityLayer, "Softmax": SoftmaxLayer,
    "Concat": ConcatLayer, "Split": SplitLayer, "Silence": SilenceLayer, "Flatten": FlattenLayer,
    "Eltwise": EltwiseLayer, "Sigmoid": SigmoidLayer, "TanH": TanHLayer, "BatchNorm": BatchNormLayer,
    "Scale": ScaleLayer,
}
