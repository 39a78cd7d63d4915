"""Read and write Caffe model files without pycaffe.

The subset of BVLC Caffe's ``src/caffe/proto/caffe.proto`` that deploy
networks use is declared below in proto2 syntax (field numbers, types and
defaults copied from upstream, so binary ``.caffemodel`` files parse) and
compiled at import time with ``google.protobuf`` (descriptor_pb2 +
message_factory) into a private descriptor pool, so it never clashes with a
``caffe_pb2`` that pycaffe registers in the default pool.

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
``NetParameter``, ``LayerParameter``, ``BlobProto``, ... message classes.

Errors (missing file, not a protobuf, prototxt syntax error with its line)
raise :class:`stl.modeling.base.ModelError`.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import DecodeError

from .base import ModelError

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# The caffe.proto subset (BVLC/caffe master, field numbers verbatim).
# ---------------------------------------------------------------------------
CAFFE_PROTO_SUBSET = r"""
message BlobShape {
  repeated int64 dim = 1 [packed = true];
}
message BlobProto {
  optional BlobShape shape = 7;
  repeated float data = 5 [packed = true];
  repeated float diff = 6 [packed = true];
  repeated double double_data = 8 [packed = true];
  repeated double double_diff = 9 [packed = true];
  optional int32 num = 1 [default = 0];
  optional int32 channels = 2 [default = 0];
  optional int32 height = 3 [default = 0];
  optional int32 width = 4 [default = 0];
}
message BlobProtoVector {
  repeated BlobProto blobs = 1;
}
message FillerParameter {
  optional string type = 1 [default = "constant"];
  optional float value = 2 [default = 0];
  optional float min = 3 [default = 0];
  optional float max = 4 [default = 1];
  optional float mean = 5 [default = 0];
  optional float std = 6 [default = 1];
  optional int32 sparse = 7 [default = -1];
  enum VarianceNorm { FAN_IN = 0; FAN_OUT = 1; AVERAGE = 2; }
  optional VarianceNorm variance_norm = 8 [default = FAN_IN];
}
message NetParameter {
  optional string name = 1;
  repeated string input = 3;
  repeated BlobShape input_shape = 8;
  repeated int32 input_dim = 4;
  optional bool force_backward = 5 [default = false];
  optional NetState state = 6;
  optional bool debug_info = 7 [default = false];
  repeated LayerParameter layer = 100;
  repeated V1LayerParameter layers = 2;
}
enum Phase { TRAIN = 0; TEST = 1; }
message NetState {
  optional Phase phase = 1 [default = TEST];
  optional int32 level = 2 [default = 0];
  repeated string stage = 3;
}
message NetStateRule {
  optional Phase phase = 1;
  optional int32 min_level = 2;
  optional int32 max_level = 3;
  repeated string stage = 4;
  repeated string not_stage = 5;
}
message ParamSpec {
  optional string name = 1;
  optional DimCheckMode share_mode = 2;
  enum DimCheckMode { STRICT = 0; PERMISSIVE = 1; }
  optional float lr_mult = 3 [default = 1.0];
  optional float decay_mult = 4 [default = 1.0];
}
message LayerParameter {
  optional string name = 1;
  optional string type = 2;
  repeated string bottom = 3;
  repeated string top = 4;
  optional Phase phase = 10;
  repeated float loss_weight = 5;
  repeated ParamSpec param = 6;
  repeated BlobProto blobs = 7;
  repeated bool propagate_down = 11;
  repeated NetStateRule include = 8;
  repeated NetStateRule exclude = 9;
  optional TransformationParameter transform_param = 100;
  optional LossParameter loss_param = 101;
  optional AccuracyParameter accuracy_param = 102;
  optional BatchNormParameter batch_norm_param = 139;
  optional ConcatParameter concat_param = 104;
  optional ConvolutionParameter convolution_param = 106;
  optional DropoutParameter dropout_param = 108;
  optional EltwiseParameter eltwise_param = 110;
  optional FlattenParameter flatten_param = 135;
  optional InnerProductParameter inner_product_param = 117;
  optional InputParameter input_param = 143;
  optional LRNParameter lrn_param = 118;
  optional PoolingParameter pooling_param = 121;
  optional ReLUParameter relu_param = 123;
  optional ScaleParameter scale_param = 142;
  optional SigmoidParameter sigmoid_param = 124;
  optional SoftmaxParameter softmax_param = 125;
  optional TanHParameter tanh_param = 127;
}
message TransformationParameter {
  optional float scale = 1 [default = 1];
  optional bool mirror = 2 [default = false];
  optional uint32 crop_size = 3 [default = 0];
  optional string mean_file = 4;
  repeated float mean_value = 5;
  optional bool force_color = 6 [default = false];
  optional bool force_gray = 7 [default = false];
}
message LossParameter {
  optional int32 ignore_label = 1;
  enum NormalizationMode { FULL = 0; VALID = 1; BATCH_SIZE = 2; NONE = 3; }
  optional NormalizationMode normalization = 3 [default = VALID];
  optional bool normalize = 2;
}
message AccuracyParameter {
  optional uint32 top_k = 1 [default = 1];
  optional int32 axis = 2 [default = 1];
  optional int32 ignore_label = 3;
}
message ConcatParameter {
  optional int32 axis = 2 [default = 1];
  optional uint32 concat_dim = 1 [default = 1];
}
message BatchNormParameter {
  optional bool use_global_stats = 1;
  optional float moving_average_fraction = 2 [default = .999];
  optional float eps = 3 [default = 1e-5];
}
message ConvolutionParameter {
  optional uint32 num_output = 1;
  optional bool bias_term = 2 [default = true];
  repeated uint32 pad = 3;
  repeated uint32 kernel_size = 4;
  repeated uint32 stride = 6;
  repeated uint32 dilation = 18;
  optional uint32 pad_h = 9 [default = 0];
  optional uint32 pad_w = 10 [default = 0];
  optional uint32 kernel_h = 11;
  optional uint32 kernel_w = 12;
  optional uint32 stride_h = 13;
  optional uint32 stride_w = 14;
  optional uint32 group = 5 [default = 1];
  optional FillerParameter weight_filler = 7;
  optional FillerParameter bias_filler = 8;
  enum Engine { DEFAULT = 0; CAFFE = 1; CUDNN = 2; }
  optional Engine engine = 15 [default = DEFAULT];
  optional int32 axis = 16 [default = 1];
  optional bool force_nd_im2col = 17 [default = false];
}
message DropoutParameter {
  optional float dropout_ratio = 1 [default = 0.5];
}
message EltwiseParameter {
  enum EltwiseOp { PROD = 0; SUM = 1; MAX = 2; }
  optional EltwiseOp operation = 1 [default = SUM];
  repeated float coeff = 2;
  optional bool stable_prod_grad = 3 [default = true];
}
message FlattenParameter {
  optional int32 axis = 1 [default = 1];
  optional int32 end_axis = 2 [default = -1];
}
message InnerProductParameter {
  optional uint32 num_output = 1;
  optional bool bias_term = 2 [default = true];
  optional FillerParameter weight_filler = 3;
  optional FillerParameter bias_filler = 4;
  optional int32 axis = 5 [default = 1];
  optional bool transpose = 6 [default = false];
}
message InputParameter {
  repeated BlobShape shape = 1;
}
message LRNParameter {
  optional uint32 local_size = 1 [default = 5];
  optional float alpha = 2 [default = 1.];
  optional float beta = 3 [default = 0.75];
  enum NormRegion { ACROSS_CHANNELS = 0; WITHIN_CHANNEL = 1; }
  optional NormRegion norm_region = 4 [default = ACROSS_CHANNELS];
  optional float k = 5 [default = 1.];
  enum Engine { DEFAULT = 0; CAFFE = 1; CUDNN = 2; }
  optional Engine engine = 6 [default = DEFAULT];
}
message PoolingParameter {
  enum PoolMethod { MAX = 0; AVE = 1; STOCHASTIC = 2; }
  optional PoolMethod pool = 1 [default = MAX];
  optional uint32 pad = 4 [default = 0];
  optional uint32 pad_h = 9 [default = 0];
  optional uint32 pad_w = 10 [default = 0];
  optional uint32 kernel_size = 2;
  optional uint32 kernel_h = 5;
  optional uint32 kernel_w = 6;
  optional uint32 stride = 3 [default = 1];
  optional uint32 stride_h = 7;
  optional uint32 stride_w = 8;
  enum Engine { DEFAULT = 0; CAFFE = 1; CUDNN = 2; }
  optional Engine engine = 11 [default = DEFAULT];
  optional bool global_pooling = 12 [default = false];
  enum RoundMode { CEIL = 0; FLOOR = 1; }
  optional RoundMode round_mode = 13 [default = CEIL];
}
message ReLUParameter {
  optional float negative_slope = 1 [default = 0];
  enum Engine { DEFAULT = 0; CAFFE = 1; CUDNN = 2; }
  optional Engine engine = 2 [default = DEFAULT];
}
message ScaleParameter {
  optional int32 axis = 1 [default = 1];
  optional int32 num_axes = 2 [default = 1];
  optional FillerParameter filler = 3;
  optional bool bias_term = 4 [default = false];
  optional FillerParameter bias_filler = 5;
}
message SigmoidParameter {
  enum Engine { DEFAULT = 0; CAFFE = 1; CUDNN = 2; }
  optional Engine engine = 1 [default = DEFAULT];
}
message SoftmaxParameter {
  enum Engine { DEFAULT = 0; CAFFE = 1; CUDNN = 2; }
  optional Engine engine = 1 [default = DEFAULT];
  optional int32 axis = 2 [default = 1];
}
message TanHParameter {
  enum Engine { DEFAULT = 0; CAFFE = 1; CUDNN = 2; }
  optional Engine engine = 1 [default = DEFAULT];
}
message V1LayerParameter {
  repeated string bottom = 2;
  repeated string top = 3;
  optional string name = 4;
  repeated NetStateRule include = 32;
  repeated NetStateRule exclude = 33;
  enum LayerType {
    NONE = 0; ABSVAL = 35; ACCURACY = 1; ARGMAX = 30; BNLL = 2; CONCAT = 3;
    CONTRASTIVE_LOSS = 37; CONVOLUTION = 4; DATA = 5; DECONVOLUTION = 39;
    DROPOUT = 6; DUMMY_DATA = 32; EUCLIDEAN_LOSS = 7; ELTWISE = 25; EXP = 38;
    FLATTEN = 8; HDF5_DATA = 9; HDF5_OUTPUT = 10; HINGE_LOSS = 28; IM2COL = 11;
    IMAGE_DATA = 12; INFOGAIN_LOSS = 13; INNER_PRODUCT = 14; LRN = 15;
    MEMORY_DATA = 29; MULTINOMIAL_LOGISTIC_LOSS = 16; MVN = 34; POOLING = 17;
    POWER = 26; RELU = 18; SIGMOID = 19; SIGMOID_CROSS_ENTROPY_LOSS = 27;
    SILENCE = 36; SOFTMAX = 20; SOFTMAX_LOSS = 21; SPLIT = 22; SLICE = 33;
    TANH = 23; WINDOW_DATA = 24; THRESHOLD = 31;
  }
  optional LayerType type = 5;
  repeated BlobProto blobs = 6;
  repeated string param = 1001;
  repeated float blobs_lr = 7;
  repeated float weight_decay = 8;
  repeated float loss_weight = 35;
  optional AccuracyParameter accuracy_param = 27;
  optional ConcatParameter concat_param = 9;
  optional ConvolutionParameter convolution_param = 10;
  optional DropoutParameter dropout_param = 12;
  optional EltwiseParameter eltwise_param = 24;
  optional InnerProductParameter inner_product_param = 17;
  optional LRNParameter lrn_param = 18;
  optional PoolingParameter pooling_param = 19;
  optional ReLUParameter relu_param = 30;
  optional SigmoidParameter sigmoid_param = 38;
  optional SoftmaxParameter softmax_param = 39;
  optional TanHParameter tanh_param = 37;
  optional TransformationParameter transform_param = 36;
  optional LossParameter loss_param = 42;
  optional V0LayerParameter layer = 1;
}
message V0LayerParameter {
  optional string name = 1;
  optional string type = 2;
  repeated BlobProto blobs = 50;
}
"""

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

_SCALARS = {
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
}
_LABELS = {
    "optional": descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    "repeated": descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
}
_FIELD_RE = re.compile(r"^(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*(?:\[(.*)\])?\s*;$")
_ENUM_RE = re.compile(r"enum\s+(\w+)\s*\{([^}]*)\}")


def _compile_proto(source: str, file_name: str):
    """Compile the proto2 subset above (messages with scalar/message/enum fields and nested enums)."""
    source = re.sub(r"//[^\n]*", "", source)
    fdp = descriptor_pb2.FileDescriptorProto(name=file_name, package="caffe", syntax="proto2")
    top_level_enums = {}
    messages = []
    pos = 0
    token = re.compile(r"\s*(message|enum)\s+(\w+)\s*\{")
    while True:
        m = token.match(source, pos)
        if not m:
            if source[pos:].strip():
                raise RuntimeError(f"caffe_proto: cannot compile near {source[pos:pos + 60]!r}")
            break
        kind, name = m.groups()
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(source[i], 0)
            i += 1
        body = source[m.end():i - 1]
        if kind == "enum":
            top_level_enums[name] = body
        else:
            messages.append((name, body))
        pos = i

    def add_enum(container, name, body):
        e = container.add(name=name)
        for item in filter(None, (s.strip() for s in body.split(";"))):
            k, v = (s.strip() for s in item.split("="))
            e.value.add(name=k, number=int(v))

    for name, body in top_level_enums.items():
        add_enum(fdp.enum_type, name, body)
    message_names = {n for n, _ in messages}
    for name, body in messages:
        msg = fdp.message_type.add(name=name)
        nested = {}
        for em in _ENUM_RE.finditer(body):
            nested[em.group(1)] = em.group(2)
            add_enum(msg.enum_type, em.group(1), em.group(2))
        body = _ENUM_RE.sub("", body)
        for stmt in filter(None, (s.strip() for s in body.split(";"))):
            fm = _FIELD_RE.match(" ".join(stmt.split()) + ";")
            if not fm:
                raise RuntimeError(f"caffe_proto: cannot compile field {stmt!r} of {name}")
            label, ftype, fname, number, opts = fm.groups()
            f = msg.field.add(name=fname, number=int(number), label=_LABELS[label])
            if ftype in _SCALARS:
                f.type = _SCALARS[ftype]
            elif ftype in nested:
                f.type = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
                f.type_name = f".caffe.{name}.{ftype}"
            elif ftype in top_level_enums:
                f.type = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
                f.type_name = f".caffe.{ftype}"
            elif ftype in message_names:
                f.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                f.type_name = f".caffe.{ftype}"
            else:
                raise RuntimeError(f"caffe_proto: unknown type {ftype} in {name}.{fname}")
            for opt in filter(None, (o.strip() for o in (opts or "").split(","))):
                key, val = (s.strip() for s in opt.split("=", 1))
                if key == "packed":
                    f.options.packed = val == "true"
                elif key == "default":
                    val = val.strip("\"'")
                    if f.type in (descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
                                  descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE):
                        val = repr(float(val))
                    f.default_value = val
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{n}")) for n in message_names}


_CLASSES = _compile_proto(CAFFE_PROTO_SUBSET, "stl_caffe_subset.proto")
# A wire-compatible twin whose float blobs are read as raw bytes (a packed repeated float is a
# length-delimited field, exactly like ``bytes``): np.frombuffer instead of a 60M-element Python list.
_RAW_CLASSES = _compile_proto(
    CAFFE_PROTO_SUBSET.replace("repeated float data = 5 [packed = true];", "repeated bytes data = 5;")
    .replace("repeated double double_data = 8 [packed = true];", "repeated bytes double_data = 8;")
    .replace("repeated float diff = 6 [packed = true];", "")
    .replace("repeated double double_diff = 9 [packed = true];", ""),
    "stl_caffe_subset_raw.proto")

NetParameter = _CLASSES["NetParameter"]
LayerParameter = _CLASSES["LayerParameter"]
V1LayerParameter = _CLASSES["V1LayerParameter"]
BlobProto = _CLASSES["BlobProto"]
BlobShape = _CLASSES["BlobShape"]
NetStateRule = _CLASSES["NetStateRule"]
ConvolutionParameter = _CLASSES["ConvolutionParameter"]
PoolingParameter = _CLASSES["PoolingParameter"]
LRNParameter = _CLASSES["LRNParameter"]
InnerProductParameter = _CLASSES["InnerProductParameter"]

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
    net = (_RAW_CLASSES if raw else _CLASSES)["NetParameter"]()
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
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
    Path(path).write_bytes(blob.SerializeToString())
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
