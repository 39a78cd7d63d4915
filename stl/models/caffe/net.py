"""Caffe networks run in PyTorch with Caffe's exact layer semantics (no pycaffe needed).

:class:`CaffeNetModule` builds a ``torch.nn.Module`` from a deploy NetParameter
(:mod:`stl.models.caffe.io`) and loads ``.caffemodel`` weights. Supported
layer types: Input, Convolution (group, pad, stride, dilation, bias_term),
Pooling (MAX/AVE, Caffe's ceil rounding including its "last window must
start inside the image + padding" rule, round_mode FLOOR, global_pooling;
AVE divides by the window clipped to the padded image), LRN (ACROSS_CHANNELS
and WITHIN_CHANNEL), ReLU (negative_slope), Dropout (identity at test time),
InnerProduct (axis, transpose), Concat, Softmax, Split, Silence, Flatten,
Eltwise, Sigmoid, TanH, BatchNorm (global stats), Scale (learned, one bottom).
Any other type raises :class:`ModelError` naming the layer.

Blobs follow pycaffe's view of the net: a layer whose top equals its bottom
(in-place ReLU / Dropout) overwrites the blob, so after a full forward pass the
blob ``fc7`` of CaffeNet is fc7 after relu7 and drop7.

:class:`TorchCaffeClassifier` wraps a network as a :class:`Classifier` with
the same preprocessing as the pycaffe engine (:class:`CaffePreprocessing`).
"""
from __future__ import annotations

import hashlib
import logging
import math
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import incremental
from . import io as caffe_io
from ..base import FEATURE, LOGITS, PROB, Classifier, ClassList, ModelError
from ..preprocessing import ILSVRC_MEAN_BGR, CaffePreprocessing, resolve_mean  # noqa: F401  (re-exported)
from ..torch_runtime import TorchRuntime

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


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------
class CaffeNetModule(nn.Module):
    """A Caffe deploy net as a torch Module.

    Parameters
    ----------
    net : prototxt path or NetParameter.
    weights : ``{layer name: [arrays]}`` (as :func:`caffe_io.load_weights` returns), a
        ``.caffemodel`` path, or None (all parameters zero; fill them with :meth:`load_caffe_weights`).
    input_shapes : ``{blob: shape}`` overriding the declared inputs (batch size is free at run time).
    strict : a parameterised layer without weights in the caffemodel is an error (pycaffe would
        silently keep its filler initialisation).

    ``forward(x, outputs)`` takes the input tensor (or ``{input blob: tensor}``) and returns
    ``{blob: tensor}`` for the requested blob names (default: the net's output blobs).
    """

    def __init__(self, net, weights=None, input_shapes: Optional[Mapping[str, Shape]] = None,
                 strict: bool = True):
        super().__init__()
        self.net_param = caffe_io.load_net(net)
        declared = caffe_io.input_shapes(self.net_param)
        if input_shapes:
            declared.update({k: tuple(v) for k, v in input_shapes.items()})
        if not declared:
            raise ModelError("the net declares no input (Input layer or input/input_dim); pass input_shapes")
        self.inputs = list(declared)
        self.layers = nn.ModuleList()
        shapes: Dict[str, Shape] = dict(declared)
        produced: List[str] = list(declared)
        consumed = set()
        for lp in self.net_param.layer:
            if lp.type == "Input":
                continue
            cls = LAYER_TYPES.get(lp.type)
            if cls is None:
                raise ModelError(f"layer {lp.name!r} has type {lp.type!r}, which the torch Caffe engine does not "
                                 f"support (supported: {', '.join(sorted(LAYER_TYPES))})")
            layer = cls(lp)
            for b in layer.bottoms:
                if b not in shapes:
                    raise ModelError(f"layer {lp.name!r} ({lp.type}): unknown bottom blob {b!r}")
            try:
                tops = layer.setup([shapes[b] for b in layer.bottoms])
            except ModelError:
                raise
            except Exception as e:  # noqa: BLE001
                raise layer.error(f"cannot set up with bottoms {[shapes[b] for b in layer.bottoms]}: {e}") from e
            consumed.update(layer.bottoms)
            for t, s in zip(layer.tops, tops):
                shapes[t] = tuple(int(d) for d in s)
                if t not in produced:
                    produced.append(t)
            self.layers.append(layer)
        self.blob_shapes = shapes
        self.outputs = [b for b in produced if b not in consumed and b not in declared]
        self._plans: Dict[Tuple[str, ...], Tuple[int, List[List[str]]]] = {}
        if weights is not None:
            self.load_caffe_weights(weights, strict=strict)

    # -- weights ---------------------------------------------------------------
    def layer(self, name: str) -> CaffeLayer:
        for l in self.layers:
            if l.layer_name == name:
                return l
        raise KeyError(name)

    def param_shapes(self) -> Dict[str, List[Shape]]:
        """``{layer name: [blob shapes]}`` of every parameterised layer, in net order."""
        return {l.layer_name: l.param_shapes() for l in self.layers if l.caffe_params()}

    def load_caffe_weights(self, weights, strict: bool = True) -> None:
        if isinstance(weights, (str, Path)):
            weights = caffe_io.load_weights(weights)
        for layer in self.layers:
            params = layer.caffe_params()
            if not params:
                continue
            blobs = weights.get(layer.layer_name)
            if blobs is None:
                if strict:
                    raise ModelError(f"the caffemodel has no weights for layer {layer.layer_name!r} "
                                     "(prototxt and caffemodel do not match?)")
                continue
            if len(blobs) != len(params):
                raise ModelError(f"layer {layer.layer_name!r}: caffemodel has {len(blobs)} blobs, the net "
                                 f"expects {len(params)}")
            for i, (p, arr) in enumerate(zip(params, blobs)):
                arr = np.asarray(arr, np.float32)
                if tuple(arr.shape) != tuple(p.shape):
                    if arr.size != p.numel():  # legacy 4-D blobs with the same count are reshaped, like Caffe
                        raise ModelError(f"layer {layer.layer_name!r} blob {i}: caffemodel shape {arr.shape}, "
                                         f"net expects {tuple(p.shape)}")
                    arr = arr.reshape(tuple(p.shape))
                with torch.no_grad():
                    p.copy_(torch.from_numpy(np.ascontiguousarray(arr)))

    # -- forward ---------------------------------------------------------------
    def plan(self, outputs: Tuple[str, ...]):
        """(number of layers to run, blobs to free after each layer) for the requested outputs."""
        plan = self._plans.get(outputs)
        if plan is not None:
            return plan
        last_writer = {b: -1 for b in self.inputs}
        for i, l in enumerate(self.layers):
            for t in l.tops:
                last_writer[t] = i
        for o in outputs:
            if o not in last_writer:
                raise KeyError(f"unknown blob {o!r}; blobs: {', '.join(last_writer)}")
        end = max([last_writer[o] for o in outputs] + [-1]) + 1
        last_read: Dict[str, int] = {}
        for i, l in enumerate(self.layers[:end]):
            for b in l.bottoms:
                last_read[b] = i
        free_after: List[List[str]] = [[] for _ in range(end)]
        for b, i in last_read.items():
            if b not in outputs:
                free_after[i].append(b)
        plan = (end, free_after)
        self._plans[outputs] = plan
        return plan

    def forward(self, x, outputs: Optional[Sequence[str]] = None) -> Dict[str, torch.Tensor]:
        blobs: Dict[str, torch.Tensor] = dict(x) if isinstance(x, Mapping) else {self.inputs[0]: x}
        for name in self.inputs:
            if name not in blobs:
                raise ModelError(f"missing network input {name!r}")
        outputs = tuple(outputs) if outputs is not None else tuple(self.outputs)
        end, _ = self.plan(outputs)
        self.run_layers(blobs, 0, end, outputs)
        return {o: blobs[o] for o in outputs}

    def run_layers(self, blobs: Dict[str, torch.Tensor], start: int, end: int, outputs: Tuple[str, ...]) -> None:
        """Layers ``[start, end)`` on ``blobs`` (updated in place), dropping every blob that no
        later layer up to the end of ``outputs``' plan reads and that is not an output."""
        _, free_after = self.plan(outputs)
        for i in range(start, end):
            layer = self.layers[i]
            for t, v in zip(layer.tops, layer.run(*[blobs[b] for b in layer.bottoms])):
                blobs[t] = v
            for b in free_after[i]:
                blobs.pop(b, None)


# ---------------------------------------------------------------------------
# Classifier
# ---------------------------------------------------------------------------
def default_feature(net: CaffeNetModule) -> Tuple[str, bool, str]:
    """The blob used as FEATURE: (blob, global-average-pool?, description).

    ``fc7`` if the net has such a blob (after relu7/drop7, as pycaffe sees it); else the bottom
    of the last InnerProduct layer; else (fully convolutional nets such as SqueezeNet) the
    global average of the blob feeding the last Convolution (SqueezeNet v1.0: ``fire9/concat``,
    512-d), i.e. the last representation before the classifier.
    """
    if "fc7" in net.blob_shapes:
        return "fc7", False, "fc7"
    ips = [l for l in net.layers if isinstance(l, InnerProductLayer)]
    if ips:
        b = ips[-1].bottoms[0]
        return b, False, b
    convs = [l for l in net.layers if isinstance(l, ConvolutionLayer)]
    if convs:
        b = convs[-1].bottoms[0]
        return b, True, f"{b} (global average, {net.blob_shapes[b][1]}-d)"
    raise ModelError("cannot pick a feature layer: the net has no InnerProduct or Convolution layer")


class TorchCaffeClassifier(Classifier):
    """A Caffe deploy net + caffemodel run by PyTorch (see module docstring).

    Parameters
    ----------
    prototxt : deploy prototxt path (or NetParameter).
    caffemodel : ``.caffemodel`` path or ``{layer: [arrays]}``.
    device, precision, channels_last, num_threads : see :class:`TorchRuntime`
        (precision "fp32" | "bf16" | "fp16" via autocast).
    mean : (3,H,W) BGR mean image, (3,) BGR per-channel mean, a ``.npy``/``.binaryproto`` path,
        or None for the per-channel BGR mean of Caffe's ILSVRC-2012 mean image
        ``(104.00698793, 116.66876762, 122.67891434)``.
    mean_mode : "image" (subtract the centre crop of the mean image) or "channel".
    feature_layer : blob returned as FEATURE (flattened). Default: see :func:`default_feature`.
    feature_pool : "avg" to global-average a 4-D feature blob, "none" to flatten it; default
        "avg" only for the automatic choice on nets without InnerProduct layers.
    classes : ClassList, synset_words.txt path, or None (ImageNet when the net has 1000 outputs).
    incremental_masking : :meth:`forward_masked` recomputes only the layer outputs a masked box
        can change (:mod:`stl.models.caffe.incremental`; same values up to float rounding). False
        runs every masked image through the whole net.
    record_cache_size : unmasked images whose layer outputs are kept for ``forward_masked``.

    channels_last defaults to True (measured ~30% faster for CaffeNet on CPU; same maths).

    Outputs: PROB (softmax of the logits), LOGITS (the bottom of the last Softmax layer, or the
    net's final output blob when the deploy net has no Softmax, e.g. SqueezeNet's
    ``pool_final``), FEATURE (float32, (N, D)).
    """

    def __init__(self, prototxt, caffemodel, device: str = "cpu", precision: str = "fp32",
                 channels_last: bool = True, mean=None, mean_mode: str = "image",
                 feature_layer: Optional[str] = None, feature_pool: Optional[str] = None, classes=None,
                 name: Optional[str] = None, num_threads: Optional[int] = None,
                 incremental_masking: bool = True, record_cache_size: int = 64):
        self.runtime = TorchRuntime(device, precision, channels_last, num_threads)
        #: masked forwards recompute only what the box can change (stl.models.caffe.incremental)
        self.incremental_masking = bool(incremental_masking)
        self.record_cache_size = int(record_cache_size)
        self._records: "OrderedDict[bytes, incremental.BaseRecord]" = OrderedDict()
        self._mask_fill = None  # (colour bytes, preprocessed masked-pixel tensor)
        if isinstance(caffemodel, (str, Path)):
            weights = caffe_io.load_weights(caffemodel)
        elif isinstance(caffemodel, Mapping):
            weights = caffemodel
        else:
            raise TypeError("caffemodel must be a path or a {layer: [arrays]} mapping")
        net = CaffeNetModule(prototxt, weights)
        self.net = self.runtime.prepare_module(net)
        if precision != "fp32":
            # Autocast would cast the Convolution / InnerProduct weights to bf16/fp16 on every call
            # (CaffeNet: 61 M weights per batch); cast them once. Same numerics as autocast.
            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            for layer in self.net.layers:
                if isinstance(layer, (ConvolutionLayer, InnerProductLayer)):
                    for p in layer.caffe_params():
                        p.data = p.data.to(dtype)
        self.name = name or (str(prototxt) if not isinstance(prototxt, caffe_io.NetParameter) else "caffe")
        self.device = str(self.runtime.device)
        self.preferred_batch_size = 128 if self.runtime.device.type == "cuda" else 32
        self.precision = precision
        # incremental masking: rectangles run in size groups of <= 64 items, the InnerProduct
        # layers (weight-bandwidth bound on CPU) once per call -> large calls pay off
        self.masked_batch_size = 256

        self.input_blob = net.inputs[0]
        in_shape = net.blob_shapes[self.input_blob]
        if len(in_shape) != 4 or in_shape[1] != 3:
            raise ModelError(f"{self.name}: expected a (N, 3, H, W) input blob, got {in_shape}")
        self.input_size = (int(in_shape[2]), int(in_shape[3]))

        softmaxes = [l for l in net.layers if isinstance(l, SoftmaxLayer)]
        if softmaxes:
            self.logits_blob, self.prob_blob = softmaxes[-1].bottoms[0], softmaxes[-1].tops[0]
        else:
            if not net.outputs:
                raise ModelError(f"{self.name}: the net has no output blob")
            self.logits_blob, self.prob_blob = net.outputs[-1], None
        n_classes = int(np.prod(net.blob_shapes[self.logits_blob][1:]))
        self.classes = ClassList.resolve(classes, n_classes)
        if len(self.classes) != n_classes:
            raise ModelError(f"{self.name}: {len(self.classes)} classes given, the net outputs {n_classes}")

        if feature_layer is None:
            self.feature_blob, auto_pool, self.feature_name = default_feature(net)
            pool = auto_pool if feature_pool is None else feature_pool == "avg"
        else:
            if feature_layer not in net.blob_shapes:
                raise ModelError(f"{self.name}: no blob named {feature_layer!r}")
            self.feature_blob = feature_layer
            pool = feature_pool == "avg"
            self.feature_name = feature_layer + (" (global average)" if pool else "")
        if feature_pool not in (None, "avg", "none"):
            raise ValueError("feature_pool must be 'avg', 'none' or None")
        self.feature_pool = pool

        self.preprocessing = CaffePreprocessing(resolve_mean(mean), self.input_size, mean_mode)
        self.mask_color = self.preprocessing.mask_color_rgb

    def blobs(self, images: np.ndarray, names: Sequence[str]) -> Dict[str, np.ndarray]:
        """Raw Caffe blobs (pycaffe's ``net.blobs[name].data`` after forward) for a batch of images."""
        images = np.asarray(images)
        self.check_input(images)
        x = self.runtime.to_tensor(self.preprocessing(images))
        with torch.inference_mode(), self.runtime.autocast():
            out = self.net(x, tuple(names))
        return {k: self.runtime.to_numpy(v) for k, v in out.items()}

    def _wanted_blobs(self, outputs: Sequence[str]) -> Tuple[str, ...]:
        for o in outputs:
            if o not in (PROB, LOGITS, FEATURE):
                raise ValueError(f"unknown output {o!r}")
        wanted = []
        if PROB in outputs:
            wanted.append(self.prob_blob if self._use_net_prob else self.logits_blob)
        if LOGITS in outputs:
            wanted.append(self.logits_blob)
        if FEATURE in outputs:
            wanted.append(self.feature_blob)
        return tuple(dict.fromkeys(wanted))

    @property
    def _use_net_prob(self) -> bool:
        return self.prob_blob is not None and self.runtime.precision == "fp32"

    @torch.inference_mode()
    def forward(self, images: np.ndarray, outputs: Sequence[str] = (PROB, FEATURE)) -> Dict[str, np.ndarray]:
        wanted = self._wanted_blobs(outputs)
        x = self._input_tensor(np.asarray(images))
        with self.runtime.autocast():
            blobs = self.net(x, wanted)
        return self._results(blobs, outputs, x.shape[0])

    @torch.inference_mode()
    def forward_masked(self, images: np.ndarray, index, boxes, outputs: Sequence[str] = (PROB,),
                       color=None) -> Dict[str, np.ndarray]:
        """:meth:`Classifier.forward_masked`; with ``incremental_masking`` (the default) only the
        outputs the boxes can change are recomputed (:mod:`stl.models.caffe.incremental`)."""
        if not self.incremental_masking:
            return super().forward_masked(images, index, boxes, outputs, color)
        color = np.asarray(self.mask_color if color is None else color, np.float32)
        images = np.asarray(images, np.float32)
        if images.ndim == 3:
            images = images[None]
        self.check_input(images)
        index = np.asarray(index, np.int64)
        boxes = np.round(np.asarray(boxes)).astype(np.int64)
        wanted = self._wanted_blobs(outputs)
        if self._mask_fill is None or self._mask_fill[0] != color.tobytes():
            # the preprocessed value of a masked pixel, per position
            h, w = self.input_size
            mask_image = np.broadcast_to(color, (1, h, w, 3))
            self._mask_fill = (color.tobytes(),
                               self.runtime.to_tensor(self.preprocessing(mask_image))[0].contiguous())
        with self.runtime.autocast():
            records = self._base_records(images)
            blobs = incremental.masked_forward(self.net, self._mask_fill[1], boxes, records, index, wanted,
                                               self.runtime.channels_last)
        return self._results(blobs, outputs, len(boxes))

    def _input_tensor(self, images: np.ndarray) -> torch.Tensor:
        """Preprocessed network input (N, 3, H, W). On CPU with channels_last it is built in
        NHWC order directly (a channels_last tensor without a layout copy; same values)."""
        if self.runtime.channels_last and self.runtime.device.type == "cpu":
            self.check_input(np.asarray(images))
            return torch.from_numpy(self.preprocessing.nhwc(images)).permute(0, 3, 1, 2)
        return self.runtime.to_tensor(self.preprocessing(images))

    def _base_records(self, images: np.ndarray) -> List[incremental.BaseRecord]:
        """The unmasked images' layer outputs, from a small LRU cache keyed by the pixels."""
        keys = [hashlib.blake2b(np.ascontiguousarray(im).tobytes(), digest_size=16).digest() for im in images]
        first = {}
        for i, k in enumerate(keys):
            if k not in self._records and k not in first:
                first[k] = i
        if first:
            x = self._input_tensor(images[list(first.values())])
            for k, rec in zip(first, incremental.base_forward(self.net, x)):
                self._records[k] = rec
        for k in keys:
            self._records.move_to_end(k)
        while len(self._records) > max(self.record_cache_size, len(set(keys))):
            self._records.popitem(last=False)
        return [self._records[k] for k in keys]

    def _results(self, blobs, outputs, n) -> Dict[str, np.ndarray]:
        use_net_prob = self._use_net_prob
        res: Dict[str, np.ndarray] = {}
        if PROB in outputs:
            if use_net_prob:
                res[PROB] = self.runtime.to_numpy(blobs[self.prob_blob].reshape(n, -1))
            else:
                res[PROB] = self.runtime.to_numpy(torch.softmax(blobs[self.logits_blob].float().reshape(n, -1), 1))
        if LOGITS in outputs:
            res[LOGITS] = self.runtime.to_numpy(blobs[self.logits_blob].reshape(n, -1))
        if FEATURE in outputs:
            f = blobs[self.feature_blob]
            if self.feature_pool and f.ndim == 4:
                f = f.float().mean((2, 3))
            res[FEATURE] = np.ascontiguousarray(self.runtime.to_numpy(f.reshape(n, -1)), np.float32)
        return res
