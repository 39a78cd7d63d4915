"""Read and write Caffe model files without pycaffe, with the protobuf classes generated from
BVLC's ``caffe.proto``.

``caffe.proto`` (vendored beside this module, BSD-2 licence header kept) is compiled once by
``make proto`` (``grpcio-tools``' protoc, pinned in requirements.txt) into ``caffe_pb2.py``;
a test checks that the committed file is the generator's output. ``raw.proto`` /
``raw_pb2.py`` is a small wire-compatible view whose float blobs parse as bytes, for the fast
``np.frombuffer`` weight path. Both live in protobuf's default pool under the packages
``stl.caffe`` / ``stl.caffe_raw``, so they never clash with pycaffe's ``caffe`` package.

Public API
----------
``load_net(prototxt) -> NetParameter``
    Parse a text prototxt (unknown fields are skipped, legacy V1 ``layers``
    are upgraded to ``layer``, layers excluded from the TEST phase dropped; the
    ``ceil_mode: false`` of Caffe forks is read as BVLC's ``round_mode: FLOOR``).
``load_weights(caffemodel) -> {layer name: [ndarray, ...]}``
    Learned blobs of every layer, shaped (``shape`` or legacy num/channels/
    height/width), float32.
``write_caffemodel(path, net, weights)``
    A standard binary NetParameter with ``layer { name type bottom top blobs }``.
``read_blobproto(path) -> ndarray``
    A mean ``.binaryproto`` (``(C, H, W)`` for a 4-D blob with num == 1).
``NetParameter``, ``LayerParameter``, ``BlobProto``, ... message classes (``caffe_pb2``).

Errors (missing file, not a protobuf, prototxt syntax error with its line)
raise :class:`stl.models.base.ModelError`.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from ..base import ModelError
from . import caffe_pb2, raw_pb2

log = logging.getLogger(__name__)

# V1 enum name -> LayerParameter type string (caffe/util/upgrade_proto.cpp UpgradeV1LayerType).
V1_TYPE_NAMES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution",
    "DATA": "Data", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

NetParameter = caffe_pb2.NetParameter
LayerParameter = caffe_pb2.LayerParameter
V1LayerParameter = caffe_pb2.V1LayerParameter
BlobProto = caffe_pb2.BlobProto
BlobShape = caffe_pb2.BlobShape
NetStateRule = caffe_pb2.NetStateRule
ConvolutionParameter = caffe_pb2.ConvolutionParameter
PoolingParameter = caffe_pb2.PoolingParameter
LRNParameter = caffe_pb2.LRNParameter
InnerProductParameter = caffe_pb2.InnerProductParameter

TRAIN, TEST = 0, 1

PathLike = Union[str, os.PathLike]


# ---------------------------------------------------------------------------
# Text prototxt
# ---------------------------------------------------------------------------
_CEIL_MODE_RE = re.compile(r"\bceil_mode\s*:\s*(true|false|True|False|1|0)\b")


def parse_net_text(text: str, source: str = "<string>") -> "NetParameter":
    """Parse prototxt text into an (upgraded, TEST-phase) NetParameter."""
    net = NetParameter()
    # Caffe forks (caffe-ssd, brocolli-caffe) spell BVLC's round_mode as a bool ceil_mode (also field 13)
    text = _CEIL_MODE_RE.sub(lambda m: "round_mode: " + ("CEIL" if m.group(1).lower() in ("true", "1") else "FLOOR"), text)
    try:
        text_format.Parse(text, net, allow_unknown_field=True, allow_unknown_extension=True)
    except text_format.ParseError as e:
        line = e.GetLine() if hasattr(e, "GetLine") else None
        where = f" at line {line}" if line else ""
        raise ModelError(f"prototxt syntax error in {source}{where}: {e}") from e
    return upgrade_net(net)


def load_net(prototxt: Union[PathLike, "NetParameter"], phase: int = TEST) -> "NetParameter":
    """Read a deploy prototxt. Legacy V1 ``layers`` are upgraded; layers whose include/exclude
    rules reject ``phase`` (TEST by default) are dropped, as Caffe's ``Net::FilterNet`` does."""
    if isinstance(prototxt, NetParameter):
        return filter_net(upgrade_net(prototxt), phase)
    path = Path(prototxt)
    if not path.is_file():
        raise ModelError(f"prototxt not found: {path}")
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise ModelError(f"prototxt {path} is not a text file (did you swap prototxt and caffemodel?)") from e
    return filter_net(parse_net_text(text, str(path)), phase)


def upgrade_net(net: "NetParameter") -> "NetParameter":
    """Upgrade legacy V1 ``layers`` (enum types) to ``layer`` (string types), like Caffe's upgrade_proto."""
    if not len(net.layers):
        return net
    if len(net.layer):
        raise ModelError("net uses both 'layer' and the legacy 'layers' field")
    out = NetParameter()
    out.CopyFrom(net)
    del out.layers[:]
    for v1 in net.layers:
        layer = out.layer.add()
        _v1_to_layer(v1, layer)
    return out


def _v1_to_layer(v1, layer) -> None:
    if v1.HasField("layer"):  # V0 inside V1: name and blobs are all we need to load weights
        layer.name = v1.layer.name or v1.name
        layer.type = v1.layer.type
        layer.blobs.extend(v1.layer.blobs)
    layer.name = v1.name or layer.name
    if v1.HasField("type"):
        enum_name = V1LayerParameter.LayerType.Name(v1.type)
        layer.type = V1_TYPE_NAMES.get(enum_name, enum_name)
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    layer.blobs.extend(v1.blobs)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    layer.loss_weight.extend(v1.loss_weight)
    for field, value in v1.ListFields():
        if field.name.endswith("_param") and field.name in LayerParameter.DESCRIPTOR.fields_by_name:
            getattr(layer, field.name).CopyFrom(value)


def _state_meets_rule(phase: int, level: int, stages: Sequence[str], rule) -> bool:
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if rule.HasField("min_level") and level < rule.min_level:
        return False
    if rule.HasField("max_level") and level > rule.max_level:
        return False
    if any(s not in stages for s in rule.stage):
        return False
    if any(s in stages for s in rule.not_stage):
        return False
    return True


def filter_net(net: "NetParameter", phase: int = TEST) -> "NetParameter":
    """Drop layers not included in ``phase`` (Caffe's Net::FilterNet, level 0, no stages)."""
    keep = []
    changed = False
    for layer in net.layer:
        if layer.include and layer.exclude:
            raise ModelError(f"layer {layer.name!r} specifies both include and exclude rules")
        if layer.include:
            ok = any(_state_meets_rule(phase, 0, (), r) for r in layer.include)
        else:
            ok = not any(_state_meets_rule(phase, 0, (), r) for r in layer.exclude)
        keep.append(ok)
        changed |= not ok
    if not changed:
        return net
    out = NetParameter()
    out.CopyFrom(net)
    del out.layer[:]
    for layer, ok in zip(net.layer, keep):
        if ok:
            out.layer.add().CopyFrom(layer)
    return out


# ---------------------------------------------------------------------------
# Binary caffemodel / binaryproto
# ---------------------------------------------------------------------------
def _read_binary(path: PathLike, what: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} not found: {path}")
    data = path.read_bytes()
    if not data:
        raise ModelError(f"{what} {path} is empty")
    return data


def blob_shape(blob) -> tuple:
    """Shape of a BlobProto: ``shape.dim`` or the legacy (num, channels, height, width)."""
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    if any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        return (int(blob.num), int(blob.channels), int(blob.height), int(blob.width))
    return ()


def blob_to_array(blob) -> np.ndarray:
    """A BlobProto's data as a float32 array of its shape (double_data is converted)."""
    shape = blob_shape(blob)
    if len(blob.double_data):
        arr = np.asarray(blob.double_data, np.float64).astype(np.float32)
    else:
        arr = np.asarray(blob.data, np.float32)
    return _shape(arr, shape)


def _shape(arr: np.ndarray, shape: tuple) -> np.ndarray:
    count = int(np.prod(shape)) if shape else arr.size
    if arr.size != count:
        raise ModelError(f"blob has {arr.size} values but its shape {shape} needs {count}")
    return arr.reshape(shape) if shape else arr


def _raw_blob_to_array(blob) -> Optional[np.ndarray]:
    """Fast path: packed floats read as bytes. None if the blob is not in the expected packed form."""
    shape = blob_shape(blob)
    count = int(np.prod(shape)) if shape else None
    if len(blob.double_data):
        arr = np.frombuffer(b"".join(blob.double_data), "<f8").astype(np.float32)
    else:
        arr = np.frombuffer(b"".join(blob.data), "<f4").astype(np.float32)  # copy: writable, native
    if count is None:
        return arr if arr.size else None
    if arr.size != count:
        return None
    return arr.reshape(shape)


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return ("{" in text or ":" in text) and all(c.isprintable() or c in "\n\r\t" for c in text)


def _parse_net_binary(data: bytes, path, raw: bool):
    net = (raw_pb2 if raw else caffe_pb2).NetParameter()
    try:
        net.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelError(f"{path} is not a Caffe binary model (protobuf NetParameter): {e}") from e
    return net


def _layers_with_blobs(net) -> List[tuple]:
    out = []
    for layer in net.layer:
        out.append((layer.name, layer.blobs))
    for v1 in net.layers:
        name = v1.name or (v1.layer.name if v1.HasField("layer") else "")
        blobs = list(v1.blobs) or (list(v1.layer.blobs) if v1.HasField("layer") else [])
        out.append((name, blobs))
    return out


def load_weights(caffemodel: PathLike) -> Dict[str, List[np.ndarray]]:
    """Learned parameters of a binary ``.caffemodel``: ``{layer name: [weights, bias, ...]}``.

    Arrays are float32 with the blob's stored shape (new ``shape`` field or legacy 4-D
    num/channels/height/width; the engine reshapes legacy blobs where the count matches,
    as Caffe does). Layers without blobs are left out. Both the current ``layer`` and the
    legacy V1 ``layers`` field (e.g. the 2014 BVLC CaffeNet/AlexNet files) are read.
    """
    data = _read_binary(caffemodel, "caffemodel")
    if _looks_like_text(data):
        raise ModelError(f"{caffemodel} is a text file (a prototxt?), not a binary caffemodel "
                         "(did you swap prototxt and caffemodel?)")
    weights: Dict[str, List[np.ndarray]] = {}
    raw = _parse_net_binary(data, caffemodel, raw=True)
    slow_net = None
    for li, (name, blobs) in enumerate(_layers_with_blobs(raw)):
        if not len(blobs):
            continue
        arrays = []
        for bi, blob in enumerate(blobs):
            arr = _raw_blob_to_array(blob)
            if arr is None:  # unpacked / odd encoding: decode this model the ordinary way
                if slow_net is None:
                    slow_net = _parse_net_binary(data, caffemodel, raw=False)
                try:
                    arr = blob_to_array(_layers_with_blobs(slow_net)[li][1][bi])
                except ModelError as e:
                    raise ModelError(f"{caffemodel}: layer {name!r} blob {bi}: {e}") from None
            arrays.append(arr)
        if name in weights:
            raise ModelError(f"{caffemodel}: layer name {name!r} appears twice")
        weights[name] = arrays
    if not weights and not _layers_with_blobs(raw):
        raise ModelError(f"{caffemodel} contains no layers: not a Caffe model?")
    return weights


def array_to_blob(arr: np.ndarray, blob=None):
    """Fill a BlobProto (new ``shape`` field, packed float32 data)."""
    blob = BlobProto() if blob is None else blob
    arr = np.asarray(arr, np.float32)
    blob.shape.dim.extend(int(d) for d in arr.shape)
    blob.data.extend(arr.ravel().tolist())
    return blob


def _fast_blob_bytes(arr: np.ndarray) -> bytes:
    """Serialized BlobProto for ``arr`` built directly (much faster than extend() for 60M floats)."""
    arr = np.ascontiguousarray(arr, "<f4")
    shape = BlobShape(dim=[int(d) for d in arr.shape]).SerializeToString()
    payload = arr.tobytes()
    return (_key(7, 2) + _varint(len(shape)) + shape) + (_key(5, 2) + _varint(len(payload)) + payload)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def write_caffemodel(path: PathLike, net: Union[PathLike, "NetParameter", None],
                     weights: Mapping[str, Sequence[np.ndarray]]) -> Path:
    """Write a standard binary ``.caffemodel`` (readable by Caffe, pycaffe and :func:`load_weights`).

    ``net`` (prototxt path or NetParameter, may be None) supplies the layer order, types and
    connections; every layer named in ``weights`` gets its blobs. Layers of ``weights`` that are
    not in ``net`` are an error. Written atomically (temporary file + rename).
    """
    path = Path(path)
    layers = []
    if net is not None:
        netp = load_net(net)  # path or NetParameter (V1 layers upgraded)
        names = {l.name for l in netp.layer}
        unknown = [n for n in weights if n not in names]
        if unknown:
            raise ModelError(f"write_caffemodel: weights for layers not in the net: {unknown}")
        net_name = netp.name
        for l in netp.layer:
            meta = LayerParameter(name=l.name, type=l.type)
            meta.bottom.extend(l.bottom)
            meta.top.extend(l.top)
            layers.append((meta, weights.get(l.name, ())))
    else:
        net_name = ""
        for name, blobs in weights.items():
            layers.append((LayerParameter(name=name), blobs))
    chunks = [_key(1, 2) + _varint(len(net_name.encode())) + net_name.encode()] if net_name else []
    for meta, blobs in layers:
        body = [meta.SerializeToString()]
        for arr in blobs:
            b = _fast_blob_bytes(arr)
            body.append(_key(7, 2) + _varint(len(b)) + b)
        body = b"".join(body)
        chunks.append(_key(100, 2) + _varint(len(body)) + body)
    from ...io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for c in chunks:
            f.write(c)
    return path


def read_blobproto(path: PathLike) -> np.ndarray:
    """A mean ``.binaryproto`` as float32; a 4-D (1, C, H, W) blob is returned as (C, H, W)."""
    data = _read_binary(path, "binaryproto")
    blob = BlobProto()
    try:
        blob.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelError(f"{path} is not a Caffe BlobProto: {e}") from e
    if not len(blob.data) and not len(blob.double_data):
        raise ModelError(f"{path} holds no blob data: not a Caffe mean .binaryproto?")
    try:
        arr = blob_to_array(blob)
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    return arr


def write_blobproto(path: PathLike, arr: np.ndarray, legacy_4d: bool = True) -> Path:
    """Write a mean ``.binaryproto`` ((C,H,W) stored as num=1 legacy 4-D, like compute_image_mean)."""
    arr = np.asarray(arr, np.float32)
    blob = BlobProto()
    if legacy_4d and arr.ndim == 3:
        blob.num, (blob.channels, blob.height, blob.width) = 1, arr.shape
        blob.data.extend(arr.ravel().tolist())
    else:
        array_to_blob(arr, blob)
    from ...io import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(blob.SerializeToString())
    return Path(path)


def net_to_text(net: "NetParameter") -> str:
    return text_format.MessageToString(net)


def input_shapes(net: "NetParameter") -> Dict[str, tuple]:
    """Declared network inputs ``{blob: shape}`` from ``input``/``input_shape``/``input_dim`` or Input layers."""
    shapes: Dict[str, tuple] = {}
    names = list(net.input)
    if names:
        if len(net.input_shape):
            if len(net.input_shape) != len(names):
                raise ModelError("prototxt: number of input_shape entries differs from the number of inputs")
            for n, s in zip(names, net.input_shape):
                shapes[n] = tuple(int(d) for d in s.dim)
        elif len(net.input_dim):
            if len(net.input_dim) != 4 * len(names):
                raise ModelError("prototxt: input_dim must give 4 values per input")
            for i, n in enumerate(names):
                shapes[n] = tuple(int(d) for d in net.input_dim[4 * i:4 * i + 4])
        else:
            raise ModelError(f"prototxt: input {names} has no input_shape / input_dim")
    for layer in net.layer:
        if layer.type == "Input":
            ps = list(layer.input_param.shape)
            if len(ps) not in (1, len(layer.top)):
                raise ModelError(f"Input layer {layer.name!r}: give one shape or one per top")
            for i, top in enumerate(layer.top):
                s = ps[i] if len(ps) > 1 else ps[0]
                shapes[top] = tuple(int(d) for d in s.dim)
    return shapes
