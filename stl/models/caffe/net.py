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

The layers are in :mod:`stl.models.caffe.layers`; :class:`stl.models.caffe.classifier.TorchCaffeClassifier`
wraps a network as a :class:`Classifier` with the same preprocessing as the pycaffe engine.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from . import io as caffe_io
from ..base import ModelError

from .layers import LAYER_TYPES, CaffeLayer, Shape

log = logging.getLogger(__name__)


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
