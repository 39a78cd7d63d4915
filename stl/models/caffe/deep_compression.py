"""Decoder for Deep Compression model files (songhan/SqueezeNet-Deep-Compression).

Format (little-endian), as written by the authors' ``decode.py``:

* header: one uint32 non-zero count ``nz`` per parameterised layer whose name contains
  ``conv``/``fc``/``ip`` (net order; SqueezeNet v1.0: 26 convolutions);
* per layer: the codebook (256 float32 for conv layers -- 8-bit indices --, 16 float32 for
  fc layers -- 4-bit indices), the float32 biases (one per output), the codebook indices
  (``nz`` bytes for 8 bits, ``ceil(nz/2)`` bytes for 4 bits, low nibble first), then
  ``ceil(nz/2)`` bytes of 4-bit position gaps (low nibble first). The flat position of the
  i-th stored weight is ``cumsum(gap + 1)[i] - 1``; every other weight takes codebook
  entry 0 (which is 0.0: gaps longer than 15 are bridged by stored zeros).

:func:`decode` returns ``{layer: [weights, bias]}``; :func:`convert` writes a standard
caffemodel; :func:`cached_caffemodel` converts once into ``.cache/models/``.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Dict, List, Union

import numpy as np

from . import io as caffe_io
from ..base import ModelError

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


def compressed_layers(prototxt) -> Dict[str, list]:
    """``{layer: [weight shape, bias shape]}`` of the layers stored in the file, in file order."""
    from .net import CaffeNetModule  # shape inference only (weights stay zero)

    net = CaffeNetModule(prototxt)
    shapes = net.param_shapes()
    return {n: s for n, s in shapes.items() if any(k in n for k in ("conv", "fc", "ip"))}


class DecodedLayer:
    """One decoded layer: ``weights``, ``bias``, the header count ``nz`` of stored entries,
    ``codebook`` and ``stored_nonzero`` (stored entries whose code is not 0)."""

    def __init__(self, name, weights, bias, nz, codebook, stored_nonzero):
        self.name, self.weights, self.bias, self.nz, self.codebook = name, weights, bias, nz, codebook
        self.stored_nonzero = stored_nonzero


def decode_layers(net_file: PathLike, prototxt: PathLike) -> List[DecodedLayer]:
    path = Path(net_file)
    if not path.is_file():
        raise ModelError(f"Deep Compression file not found: {path}")
    data = path.read_bytes()
    layers = compressed_layers(prototxt)
    n = len(layers)
    if len(data) < 4 * n:
        raise ModelError(f"{path}: too short for a header of {n} layer counts")
    nz_all = np.frombuffer(data, "<u4", count=n)
    off = 4 * n
    out = []

    def take(count, dtype, what, lname):
        nonlocal off
        size = count * np.dtype(dtype).itemsize
        if off + size > len(data):
            raise ModelError(f"{path}: truncated in layer {lname!r} ({what})")
        arr = np.frombuffer(data, dtype, count=count, offset=off)
        off += size
        return arr

    for (lname, shapes), nz in zip(layers.items(), nz_all):
        nz = int(nz)
        if len(shapes) != 2:
            raise ModelError(f"layer {lname!r}: expected weights and bias, the net has {len(shapes)} blobs")
        wshape, bshape = shapes
        count = int(np.prod(wshape))
        bits = 8 if "conv" in lname else 4
        codebook = take(2 ** bits, "<f4", "codebook", lname).astype(np.float32)
        bias = take(int(np.prod(bshape)), "<f4", "biases", lname).astype(np.float32).reshape(bshape)
        if nz == 0:
            weights = np.full(count, codebook[0], np.float32)
            stored_nonzero = 0
        else:
            if bits == 8:
                codes = take(nz, "u1", "indices", lname)
            else:
                packed = take((nz + 1) // 2, "u1", "indices", lname)
                codes = np.empty(2 * len(packed), np.uint8)
                codes[0::2], codes[1::2] = packed & 0x0F, packed >> 4
                codes = codes[:nz]
            gaps_packed = take((nz + 1) // 2, "u1", "position gaps", lname)
            gaps = np.empty(2 * len(gaps_packed), np.int64)
            gaps[0::2], gaps[1::2] = gaps_packed & 0x0F, gaps_packed >> 4
            pos = np.cumsum(gaps[:nz] + 1) - 1
            if pos[-1] >= count:
                raise ModelError(f"{path}: layer {lname!r} positions run past its {count} weights "
                                 "(prototxt does not match the compressed file?)")
            code = np.zeros(count, np.uint8)
            code[pos] = codes
            weights = codebook[code]
            stored_nonzero = int(np.count_nonzero(codes))
        out.append(DecodedLayer(lname, weights.reshape(wshape), bias, nz, codebook, stored_nonzero))
    if off != len(data):
        raise ModelError(f"{path}: {len(data) - off} trailing bytes after {n} layers "
                         "(prototxt does not match the compressed file?)")
    return out


def decode(net_file: PathLike, prototxt: PathLike) -> Dict[str, List[np.ndarray]]:
    """``{layer: [weights, bias]}`` decoded from a Deep Compression ``.net`` file."""
    return {l.name: [l.weights, l.bias] for l in decode_layers(net_file, prototxt)}


def convert(net_file: PathLike, prototxt: PathLike, out_caffemodel: PathLike) -> Path:
    """Decode ``net_file`` and write a standard ``.caffemodel`` (atomically)."""
    weights = decode(net_file, prototxt)
    return caffe_io.write_caffemodel(out_caffemodel, caffe_io.load_net(prototxt), weights)


def _sha1(path: Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def cached_caffemodel(net_file: PathLike, prototxt: PathLike, out_caffemodel: PathLike) -> Path:
    """``out_caffemodel`` converted from ``net_file`` on first use; reconverted if the sources change.

    A sidecar ``<out>.src`` records the sha1 of the two source files.
    """
    out = Path(out_caffemodel)
    stamp = out.with_name(out.name + ".src")
    key = f"{_sha1(Path(net_file))} {_sha1(Path(prototxt))}\n"
    if out.is_file() and stamp.is_file() and stamp.read_text() == key:
        return out
    log.info("decoding Deep Compression model %s -> %s", net_file, out)
    convert(net_file, prototxt, out)
    from ...io import atomic_path

    with atomic_path(stamp) as tmp:
        Path(tmp).write_text(key)
    return out
