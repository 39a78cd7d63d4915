"""Incremental forward passes of box-masked images for Caffe nets run in PyTorch.

STL's drop (Eq. 1-3) needs f(h_g(x, b)): the image x with the box b filled with the
mask colour g. Masking b changes a convolutional layer's output only where the
layer's receptive field meets b, and early in the hierarchy the boxes are small,
so most convolutional outputs do not change -- the speed-up the paper itself
suggests. :func:`masked_forward` uses it:

* the unmasked image's forward pass is computed once and every layer output of it
  is kept (:func:`base_forward`);
* for every spatially local layer -- Convolution, non-global MAX pooling, AVE
  pooling whose windows never clip, and the point-wise layers (ReLU, LRN
  ACROSS_CHANNELS, BatchNorm, per-channel Scale, Sigmoid, TanH, Dropout, Split),
  plus channel Concat / Eltwise -- only the output rectangle that can change is
  computed, from the matching input window; every other value is the unmasked
  image's (:func:`output_rows`);
* from the first layer that is not spatially local (InnerProduct, global pooling,
  Softmax, ...) on, whole tensors are used.

Every item has its own rectangle. Items are split into groups of similar box size
(:func:`size_groups`); within a group all items share the largest rectangle size (each
item's rectangle shifted to fit inside the map), and the layers after the local ones run
once for all groups together (on a CPU, CaffeNet's fc6-fc8 cost is reading their 230 MB
of weights, whatever the batch size). No masked image is ever built whole: an item's
input rectangle is its unmasked input with the box set to the masked value.

Recomputing an unchanged value gives that value again, so the output equals the full
forward pass up to floating-point rounding (the convolution kernels may sum in another
order on a smaller input); ``tests/test_incremental.py`` checks this against full forwards
on a net with every supported layer kind and on the real SqueezeNet, and that STL's
windows are the same with and without it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["output_rows", "size_groups", "local_layer_count", "base_forward", "masked_forward", "BaseRecord"]

#: A layer's output tensors in the unmasked image's forward pass, keyed by (layer index, top).
BaseRecord = Dict[Tuple[int, str], torch.Tensor]


def output_rows(a0: np.ndarray, a1: np.ndarray, kernel: int, stride: int, pad: int, out_size: int
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Output rows [lo, hi] of a sliding-window layer whose window meets input rows [a0, a1].

    Output row j reads padded input rows ``j*stride .. j*stride + kernel - 1``, i.e. input
    rows ``j*stride - pad .. j*stride - pad + kernel - 1`` (``kernel`` is the dilated extent).
    It meets [a0, a1] iff ``j*stride - pad <= a1`` and ``j*stride - pad + kernel - 1 >= a0``.
    """
    a0 = np.asarray(a0, np.int64)
    a1 = np.asarray(a1, np.int64)
    lo = np.clip(-((-(a0 + pad - kernel + 1)) // stride), 0, out_size - 1)  # ceil division
    hi = np.minimum(out_size - 1, (a1 + pad) // stride)
    return lo, np.maximum(hi, lo)


@dataclass
class _State:
    """A blob of a masked batch: values differ from the unmasked image's only inside
    the rectangle ``[y0, y0 + h) x [x0, x0 + w)`` of each item."""

    y0: Optional[np.ndarray] = None  # (N,) top row of each item's rectangle
    x0: Optional[np.ndarray] = None
    h: int = 0
    w: int = 0
    window: Optional[torch.Tensor] = None  # (N, C, h, w): the values inside the rectangles
    base: Optional[Tuple[int, str]] = None  # key of the unmasked values in the BaseRecord
    full: Optional[torch.Tensor] = None  # (N, C, H, W): all values, built on demand

    @property
    def local(self) -> bool:
        return self.y0 is not None


def _layer_kind(layer) -> str:
    """The layer's declared locality (``CaffeLayer.locality``: window / pointwise / merge / other)."""
    return getattr(layer, "locality", "other")


def _window_geometry(layer):
    """(kernel_eff, stride, pad, fill) per dimension for a "window" layer."""
    return layer.window_geometry()


def _window_op(layer, x: torch.Tensor) -> torch.Tensor:
    """The layer on an explicitly padded window (no padding, floor rounding)."""
    return layer.window_op(x)


def local_layer_count(net) -> int:
    """Number of leading layers of ``net`` (in order) that :func:`masked_forward` runs on
    rectangles; the base record only needs their outputs."""
    for i, layer in enumerate(net.layers):
        if _layer_kind(layer) == "other":
            return i
    return len(net.layers)


def base_forward(net, x: torch.Tensor) -> List[BaseRecord]:
    """Forward the unmasked images ``x`` (B, C, H, W) and keep, per image, every output of
    the leading local layers (the values a masked image shares with its unmasked image)."""
    n_local = local_layer_count(net)
    blobs = {net.inputs[0]: x}
    records: List[BaseRecord] = [dict() for _ in range(x.shape[0])]
    for b, rec in enumerate(records):
        rec[(-1, net.inputs[0])] = x[b:b + 1]
    for i in range(n_local):
        layer = net.layers[i]
        for t, v in zip(layer.tops, layer.run(*[blobs[b] for b in layer.bottoms])):
            blobs[t] = v
            for b, rec in enumerate(records):
                rec[(i, t)] = v[b:b + 1]
    return records


class _Batch:
    """The unmasked values behind a batch's items: ``records[index[n]]`` for item n."""

    def __init__(self, records: Sequence[BaseRecord], index: np.ndarray, channels_last: bool):
        self.records = records
        self.index = np.asarray(index, np.int64).tolist()
        self.channels_last = channels_last

    def empty(self, like: torch.Tensor, channels: int, h: int, w: int) -> torch.Tensor:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return torch.empty((len(self.index), channels, h, w), dtype=like.dtype, device=like.device,
                           memory_format=fmt)

    def padded_base(self, n: int, key, pads: Tuple[int, int, int, int], fill: float) -> torch.Tensor:
        """Item n's unmasked blob ``key`` padded by ``pads`` = (left, right, top, bottom),
        cached in its record."""
        rec = self.records[self.index[n]]
        if not any(pads):
            return rec[key]
        pkey = key + (pads, fill)
        t = rec.get(pkey)
        if t is None:
            t = rec[pkey] = F.pad(rec[key], pads, value=fill)
        return t


def _read(state: _State, batch: _Batch, ys: np.ndarray, xs: np.ndarray, hh: int, ww: int,
          pads: Tuple[int, int, int, int] = (0, 0, 0, 0), fill: float = 0.0) -> torch.Tensor:
    """(N, C, hh, ww): item n's blob, padded by ``pads`` = (left, right, top, bottom) with
    ``fill``, read at padded rows ``ys[n]..`` and columns ``xs[n]..`` -- the unmasked values
    with the item's changed rectangle pasted over them."""
    pl, _, pt, _ = pads
    ys, xs = ys.tolist(), xs.tolist()
    if state.full is not None:
        src = F.pad(state.full, pads, value=fill) if any(pads) else state.full
        out = batch.empty(src, src.shape[1], hh, ww)
        for n, (y, x) in enumerate(zip(ys, xs)):
            out[n] = src[n, :, y:y + hh, x:x + ww]
        return out
    window = state.window
    out = batch.empty(window, window.shape[1], hh, ww)
    for n, (y, x, wy, wx) in enumerate(zip(ys, xs, state.y0.tolist(), state.x0.tolist())):
        out[n] = batch.padded_base(n, state.base, pads, fill)[0, :, y:y + hh, x:x + ww]
        wy, wx = wy + pt, wx + pl  # the changed rectangle in padded coordinates
        a, b = max(wy, y), min(wy + state.h, y + hh)
        c, d = max(wx, x), min(wx + state.w, x + ww)
        if a < b and c < d:
            out[n, :, a - y:b - y, c - x:d - x] = window[n, :, a - wy:b - wy, c - wx:d - wx]
    return out


def _materialize(state: _State, batch: _Batch) -> torch.Tensor:
    """The whole blob (N, C, H, W) of a rectangle state."""
    if state.full is None:
        _, _, H, W = batch.records[0][state.base].shape
        state.full = _read(state, batch, np.zeros(len(batch.index), np.int64), np.zeros(len(batch.index), np.int64),
                           H, W)
    return state.full


def size_groups(boxes: np.ndarray, ratio: float = 1.5, min_group: int = 4, margin: int = 32,
                max_group: int = 64) -> List[np.ndarray]:
    """Split a batch of masked boxes into groups of similar size, each run as one pass.

    A pass computes every item at its largest rectangle, so one large box in a batch of small
    ones would cost as much as a batch of large boxes. Items are sorted by ``(h + margin) *
    (w + margin)`` (``margin`` ~ the receptive-field growth of the first layers, so tiny boxes
    count alike) and a new group starts once that exceeds ``ratio`` times the group's first
    item and the group has ``min_group`` items, or when it has ``max_group`` items.
    """
    boxes = np.asarray(boxes)
    if len(boxes) == 0:
        return []
    cost = (boxes[:, 3] - boxes[:, 1] + 1 + margin) * (boxes[:, 2] - boxes[:, 0] + 1 + margin)
    order = np.argsort(cost, kind="stable")
    groups, current = [], [order[0]]
    for i in order[1:]:
        if len(current) >= max_group or (len(current) >= min_group and cost[i] > ratio * cost[current[0]]):
            groups.append(np.array(current))
            current = []
        current.append(i)
    groups.append(np.array(current))
    return groups


def _fit(lo: np.ndarray, hi: np.ndarray, size_limit: int) -> Tuple[np.ndarray, int]:
    """One common extent for all items: the largest, each start moved to keep it inside the map."""
    extent = int((hi - lo + 1).max())
    return np.minimum(lo, size_limit - extent), extent


def masked_forward(net, fill: torch.Tensor, boxes: np.ndarray, records: Sequence[BaseRecord],
                   index: np.ndarray, outputs: Sequence[str], channels_last: bool = False,
                   groups: Optional[Sequence[np.ndarray]] = None) -> Dict[str, torch.Tensor]:
    """Forward pass of box-masked images, recomputing only what the boxes can change.

    Parameters
    ----------
    net : :class:`~stl.models.caffe.net.CaffeNetModule`.
    fill : (C, H, W) the network input of a masked pixel at each position (for Caffe
        preprocessing: the mask colour minus the mean image). Masked images are never built
        whole: each item's input rectangle is its unmasked input with the box set to ``fill``.
    boxes : (N, 4) ``[x0, y0, x1, y1]`` pixel-inclusive, the masked box of each item.
    records : :func:`base_forward` records of the unmasked images.
    index : (N,) which record each item masks.
    outputs : blob names to return.
    groups : a partition of the items (default :func:`size_groups`). The local layers run on
        each group's rectangles separately; the layers after them (CaffeNet: fc6-fc8, whose cost
        is reading 230 MB of weights, whatever the batch size) run once on the whole batch.
    """
    boxes = np.asarray(boxes, np.int64)
    H, W = fill.shape[-2:]
    boxes = np.stack([np.clip(boxes[:, 0], 0, W - 1), np.clip(boxes[:, 1], 0, H - 1),
                      np.clip(boxes[:, 2], 0, W - 1), np.clip(boxes[:, 3], 0, H - 1)], 1)
    boxes[:, 2] = np.maximum(boxes[:, 2], boxes[:, 0])
    boxes[:, 3] = np.maximum(boxes[:, 3], boxes[:, 1])
    index = np.asarray(index, np.int64)
    outputs = tuple(outputs)
    n_local = local_layer_count(net)
    end, _ = net.plan(outputs)
    prefix = min(n_local, end)
    # blobs produced by the local prefix that later layers or the caller read
    needed = {b for l in net.layers[prefix:end] for b in l.bottoms} | set(outputs)
    groups = size_groups(boxes) if groups is None else [np.asarray(g, np.int64) for g in groups]
    parts: Dict[str, List[torch.Tensor]] = {}
    for group in groups:
        states = _local_prefix(net, fill, boxes[group], records, index[group], channels_last, prefix)
        batch = _Batch(records, index[group], channels_last)
        for name, st in states.items():
            if name in needed:
                parts.setdefault(name, []).append(_materialize(st, batch) if st.local else st.full)
    perm = np.concatenate(groups)
    if np.array_equal(perm, np.arange(len(perm))):
        blobs = {k: (v[0] if len(v) == 1 else torch.cat(v)) for k, v in parts.items()}
    else:  # back to the items' order
        inverse = torch.from_numpy(np.argsort(perm)).to(fill.device)
        blobs = {k: torch.cat(v)[inverse] for k, v in parts.items()}
    net.run_layers(blobs, prefix, end, outputs)  # the rest of the net on whole tensors, all items at once
    return {o: blobs[o] for o in outputs}


def _local_prefix(net, fill, boxes, records, index, channels_last, prefix) -> Dict[str, "_State"]:
    """Layers ``[0, prefix)`` on one group's rectangles; returns the blob states."""
    H, W = fill.shape[-2:]
    batch = _Batch(records, index, channels_last)
    y0, hh = _fit(boxes[:, 1], boxes[:, 3], H)
    x0, ww = _fit(boxes[:, 0], boxes[:, 2], W)
    key = (-1, net.inputs[0])
    # the input rectangles: the unmasked input with the box set to the fill values
    window = batch.empty(fill, fill.shape[0], hh, ww)
    for n, (bx0, by0, bx1, by1) in enumerate(boxes.tolist()):
        ty, tx = int(y0[n]), int(x0[n])
        window[n] = batch.padded_base(n, key, (0, 0, 0, 0), 0.0)[0, :, ty:ty + hh, tx:tx + ww]
        window[n, :, by0 - ty:by1 + 1 - ty, bx0 - tx:bx1 + 1 - tx] = fill[:, by0:by1 + 1, bx0:bx1 + 1]
    states: Dict[str, _State] = {net.inputs[0]: _State(y0, x0, hh, ww, window, key)}
    for i in range(prefix):
        layer = net.layers[i]
        bottoms = [states[b] for b in layer.bottoms]
        kind = _layer_kind(layer) if all(s.local for s in bottoms) else "other"
        tops: List[_State]
        if kind == "pointwise":
            s = bottoms[0]
            window = s.window if s.window is not None else _read(s, batch, s.y0, s.x0, s.h, s.w)
            tops = [_State(s.y0, s.x0, s.h, s.w, r, (i, t)) for r, t in zip(layer.run(window), layer.tops)]
        elif kind == "window":
            s = bottoms[0]
            (kh, kw), (sh, sw), (ph, pw), fill = _window_geometry(layer)
            oh, ow = net.blob_shapes[layer.tops[0]][2:]
            lo_y, hi_y = output_rows(s.y0, s.y0 + s.h - 1, kh, sh, ph, oh)
            lo_x, hi_x = output_rows(s.x0, s.x0 + s.w - 1, kw, sw, pw, ow)
            oy, eh = _fit(lo_y, hi_y, oh)
            ox, ew = _fit(lo_x, hi_x, ow)
            if eh >= oh and ew >= ow:  # the whole map may change: the layer as usual
                kind = "other"
            else:
                ih, iw = net.blob_shapes[layer.bottoms[0]][2:]
                # padding so that every window of the map fits (Caffe's ceil rounding included)
                pb = max(0, (oh - 1) * sh + kh - ih - ph)
                pr = max(0, (ow - 1) * sw + kw - iw - pw)
                win = _read(s, batch, oy * sh, ox * sw, (eh - 1) * sh + kh, (ew - 1) * sw + kw,
                            (pw, pr, ph, pb), fill)
                tops = [_State(oy, ox, eh, ew, _window_op(layer, win), (i, layer.tops[0]))]
        elif kind == "merge":
            _, _, mh, mw = net.blob_shapes[layer.tops[0]]
            if any(tuple(net.blob_shapes[b][2:]) != (mh, mw) for b in layer.bottoms):
                kind = "other"
            else:
                lo_y = np.min([s.y0 for s in bottoms], 0)
                hi_y = np.max([s.y0 + s.h - 1 for s in bottoms], 0)
                lo_x = np.min([s.x0 for s in bottoms], 0)
                hi_x = np.max([s.x0 + s.w - 1 for s in bottoms], 0)
                oy, eh = _fit(lo_y, hi_y, mh)
                ox, ew = _fit(lo_x, hi_x, mw)
                wins = [_read(s, batch, oy, ox, eh, ew) for s in bottoms]
                tops = [_State(oy, ox, eh, ew, layer(*wins), (i, layer.tops[0]))]
        if kind == "other":
            tops = [_State(full=r) for r in layer.run(*[_materialize(s, batch) if s.local else s.full
                                                         for s in bottoms])]
        for t, st in zip(layer.tops, tops):
            states[t] = st
    return states
