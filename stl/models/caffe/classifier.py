"""A Caffe net in PyTorch (:class:`stl.models.caffe.net.CaffeNetModule`) as a :class:`Classifier`,
with the same preprocessing as the pycaffe engine (:class:`stl.models.preprocessing.CaffePreprocessing`)
and incremental masked forwards (:mod:`stl.models.caffe.incremental`)."""
from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from . import incremental
from . import io as caffe_io
from ..base import FEATURE, LOGITS, PROB, Classifier, ClassList, ModelError
from ..preprocessing import CaffePreprocessing, resolve_mean
from ..torch_runtime import TorchRuntime

from .layers import ConvolutionLayer, InnerProductLayer, SoftmaxLayer
from .net import CaffeNetModule

log = logging.getLogger(__name__)


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
