"""The pycaffe engine: a Caffe deploy net + caffemodel run by real BVLC Caffe.

pycaffe is not on PyPI in a usable form; ``make caffe`` builds it (CPU only) from
the pinned ``brocolli-caffe==9.0.2`` sdist (BVLC commit 9b89154) and installs it
into the project's virtual environment (see ``docs/caffe.md``).

Caffe reports most errors with ``LOG(FATAL)``, which aborts the whole Python
process. :class:`PyCaffeClassifier` therefore checks the model files in Python
first (prototxt syntax and layer types, caffemodel parse, layer blob counts and
shapes) and raises :class:`~stl.models.base.ModelError` for anything Caffe
would die on. ``GLOG_minloglevel`` is set to 2 (errors only) before Caffe is
imported unless the caller already set it.

Blobs are pycaffe's view of the net: an in-place layer (top == bottom) overwrites
its blob, so after a forward pass CaffeNet's ``fc7`` blob holds fc7 *after*
relu7 (and drop7, the identity at test time) -- the "fc7 after ReLU" feature
the paper's code uses.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..base import FEATURE, LOGITS, PROB, Classifier, ClassList, ModelError, softmax
from ..preprocessing import CaffePreprocessing, resolve_mean

log = logging.getLogger(__name__)

#: Per-channel BGR mean of Caffe's ILSVRC-2012 mean image (the default ``mean``).

_MAKE_CAFFE = "run `make caffe` to build BVLC Caffe + pycaffe into the project's .venv"
_GPU_PROBED: Dict[int, Optional[str]] = {}


def import_caffe():
    """Import pycaffe quietly (``GLOG_minloglevel=2`` unless already set) or raise ModelError."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe  # noqa: F401
        from caffe.proto import caffe_pb2  # noqa: F401
    except ImportError as e:
        raise ModelError(f"pycaffe is not importable ({e}); {_MAKE_CAFFE}") from e
    except Exception as e:  # noqa: BLE001  (e.g. a protobuf runtime that cannot load caffe_pb2)
        raise ModelError(f"pycaffe failed to import: {type(e).__name__}: {e}; {_MAKE_CAFFE}") from e
    return caffe


def pycaffe_available() -> bool:
    try:
        import_caffe()
        return True
    except ModelError:
        return False


def parse_device(device: str) -> Tuple[str, int]:
    """``"cpu"`` -> ("cpu", 0); ``"cuda"`` / ``"gpu"`` -> ("gpu", 0); ``"cuda:N"`` -> ("gpu", N)."""
    d = str(device).strip().lower()
    if d == "cpu":
        return "cpu", 0
    kind, _, idx = d.partition(":")
    if kind in ("cuda", "gpu"):
        try:
            return "gpu", int(idx) if idx else 0
        except ValueError:
            pass
    raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', not {device!r}")


def _probe_gpu(device_id: int) -> Optional[str]:
    """None if this pycaffe can run on GPU ``device_id``; else the reason.

    Runs in a subprocess: in a CPU_ONLY build ``caffe.set_device`` is a LOG(FATAL) that
    would abort this process.
    """
    if device_id not in _GPU_PROBED:
        code = "import caffe; caffe.set_device(%d); caffe.set_mode_gpu()" % device_id
        env = dict(os.environ, GLOG_minloglevel="2")
        try:
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
            ok = r.returncode == 0
            why = None if ok else (r.stderr.strip().splitlines() or ["exit code %d" % r.returncode])[-1]
        except (OSError, subprocess.TimeoutExpired) as e:
            why = str(e)
        if why is not None and "CPU-only" in why:
            why = "this pycaffe is a CPU_ONLY build (`make caffe` builds CPU only); use device='cpu'"
        _GPU_PROBED[device_id] = why
    return _GPU_PROBED[device_id]


# ---- model-file checks (everything Caffe would LOG(FATAL) on) --------------------------

def _check_file(path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{what} not found: {p}")
    if not p.is_file():
        raise ModelError(f"{what} is not a file: {p}")
    return p


def _read_prototxt(caffe, path: Path):
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    net = caffe_pb2.NetParameter()
    try:
        text_format.Merge(path.read_text(), net)
    except Exception as e:  # noqa: BLE001  (ParseError, UnicodeDecodeError)
        raise ModelError(f"cannot parse prototxt {path}: {e}") from e
    if net.layers and not net.layer:
        return net  # V1 format: Caffe upgrades it; its layer types are enums, nothing to check
    known = set(caffe.layer_type_list())
    for lp in net.layer:
        if lp.type not in known:
            raise ModelError(f"prototxt {path}: layer {lp.name!r} has type {lp.type!r}, which this Caffe "
                             f"build does not have")
    return net


def _legacy_shape(shape: Sequence[int]) -> Tuple[int, ...]:
    if len(shape) > 4:
        return ()
    return (1,) * (4 - len(shape)) + tuple(shape)


def _proto_shape_matches(blob_proto, shape: Tuple[int, ...]) -> bool:
    """Caffe's ``Blob::ShapeEquals``: legacy num/channels/height/width or exact ``shape.dim``."""
    if any(blob_proto.HasField(f) for f in ("num", "channels", "height", "width")):
        return _legacy_shape(shape) == (blob_proto.num, blob_proto.channels, blob_proto.height, blob_proto.width)
    return tuple(blob_proto.shape.dim) == tuple(shape)


def _proto_dims(b) -> Tuple[int, ...]:
    if any(b.HasField(f) for f in ("num", "channels", "height", "width")):
        return (b.num, b.channels, b.height, b.width)
    return tuple(b.shape.dim)


def _check_caffemodel(path: Path, params: Dict[str, List[Tuple[int, ...]]]) -> List[str]:
    """Check that Caffe can copy ``path`` into a net whose parameter shapes are ``params``.

    Returns the parameterised layers that get no weights from the file (Caffe leaves them at
    their filler values). Raises ModelError for anything Caffe would abort on.
    """
    if path.suffix in (".h5", ".hdf5"):
        return _check_hdf5_weights(path, params)
    from caffe.proto import caffe_pb2
    from google.protobuf.message import DecodeError

    src = caffe_pb2.NetParameter()
    try:
        src.ParseFromString(path.read_bytes())
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelError(f"corrupt caffemodel {path}: not a Caffe NetParameter ({e})") from e
    source = {}
    for lp in list(src.layer) + list(src.layers):  # new and V1 formats
        if len(lp.blobs):
            source[lp.name] = list(lp.blobs)
    if not source:
        raise ModelError(f"caffemodel {path} holds no weights (corrupt or not a caffemodel)")
    found = 0
    for name, shapes in params.items():
        blobs = source.get(name)
        if blobs is None:
            continue
        found += 1
        if len(blobs) != len(shapes):
            raise ModelError(f"caffemodel {path}: layer {name!r} has {len(blobs)} blobs, the net expects "
                             f"{len(shapes)}")
        for i, (b, shape) in enumerate(zip(blobs, shapes)):
            if not _proto_shape_matches(b, shape):
                raise ModelError(f"caffemodel {path}: layer {name!r} blob {i} has shape {_proto_dims(b)}, "
                                 f"the prototxt needs {shape}")
            n = len(b.data) or len(b.double_data)
            if n != int(np.prod(shape)):
                raise ModelError(f"caffemodel {path}: layer {name!r} blob {i} holds {n} values, "
                                 f"expected {int(np.prod(shape))}")
    if found == 0:
        raise ModelError(f"caffemodel {path} has no weights for any layer of this net "
                         f"(file layers: {', '.join(list(source)[:8])}...; net layers: {', '.join(params)})")
    return [n for n in params if n not in source]


def _check_hdf5_weights(path: Path, params: Dict[str, List[Tuple[int, ...]]]) -> List[str]:
    try:
        import h5py

        with h5py.File(path, "r") as f:
            data = f["data"]
            source = {name: [tuple(data[name][str(i)].shape) for i in range(len(data[name]))] for name in data}
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"corrupt HDF5 weights {path}: {e}") from e
    found = 0
    for name, shapes in params.items():
        if name not in source:
            continue
        found += 1
        if len(source[name]) != len(shapes):
            raise ModelError(f"HDF5 weights {path}: layer {name!r} has {len(source[name])} blobs, "
                             f"the net expects {len(shapes)}")
        for i, (s, shape) in enumerate(zip(source[name], shapes)):
            if tuple(s) != tuple(shape):
                raise ModelError(f"HDF5 weights {path}: layer {name!r} blob {i} has shape {s}, need {shape}")
    if found == 0:
        raise ModelError(f"HDF5 weights {path} have no weights for any layer of this net")
    return [n for n in params if n not in source]


# ---- the classifier --------------------------------------------------------------------

class PyCaffeClassifier(Classifier):
    """A Caffe deploy net + caffemodel run by pycaffe (BVLC Caffe, fp32).

    Parameters
    ----------
    prototxt : path of the deploy prototxt (one (N, 3, H, W) input blob).
    caffemodel : path of the ``.caffemodel`` (binary NetParameter) or Caffe ``.h5`` weights.
    device : "cpu", or "cuda" / "cuda:N" (``caffe.set_mode_gpu`` + ``set_device(N)``; needs a
        GPU build of Caffe -- ``make caffe`` builds CPU only, so this raises ModelError there).
    mean : (3, H, W) BGR mean image, (3,) BGR per-channel mean, a ``.npy`` / ``.binaryproto``
        path, or None. None (the default) subtracts the standard ILSVRC-2012 per-channel mean
        ``(104.00698793, 116.66876762, 122.67891434)`` (BGR) -- *not* the mean image; the
        registry models (``caffenet``, ...) pass the mean image when they find it.
    mean_mode : "image" (subtract the centre crop of the mean image) or "channel" (its
        per-channel mean). Ignored for a (3,) mean. Preprocessing is
        :class:`~stl.models.preprocessing.CaffePreprocessing`, bit-identical to the torch engine.
    prob_layer : blob returned as PROB. Default: the top of the last Softmax layer. A net
        without Softmax gets PROB = softmax(LOGITS) computed in numpy.
    logits_layer : blob returned as LOGITS. Default: the bottom of that Softmax layer (CaffeNet:
        ``fc8``), or the net's last output blob when there is no Softmax.
    feature_layer : blob returned as FEATURE, flattened to (N, D). Default: ``fc7`` when the net
        has it -- read after the forward pass it is fc7 *after* relu7 (relu7 and drop7 work in
        place); else the bottom of the last InnerProduct layer; else (fully convolutional nets,
        e.g. SqueezeNet) the global average of the blob feeding the last Convolution.
    feature_pool : "avg" (global-average a 4-D feature blob) or "none" (flatten); default "avg"
        only for the automatic choice on nets without InnerProduct layers.
    classes : ClassList, a ``synset_words.txt`` path, or None (ImageNet's 1000 classes when the
        net has 1000 outputs, else ``class_i`` placeholders).
    name : display name (default: the prototxt path).

    Attributes
    ----------
    net : the ``caffe.Net`` (TEST phase); ``input_blob``, ``prob_blob``, ``logits_blob``,
    ``feature_blob``: the blob names used; ``missing_weights``: parameterised layers the
    caffemodel did not cover (left at their filler values, with a warning).
    """

    def __init__(self, prototxt, caffemodel, device: str = "cpu", mean=None, mean_mode: str = "image",
                 prob_layer: Optional[str] = None, logits_layer: Optional[str] = None,
                 feature_layer: Optional[str] = None, feature_pool: Optional[str] = None, classes=None,
                 name: Optional[str] = None):
        if feature_pool not in (None, "avg", "none"):
            raise ValueError("feature_pool must be 'avg', 'none' or None")
        self._mode, self._device_id = parse_device(device)
        caffe = import_caffe()
        self._caffe = caffe
        prototxt = _check_file(prototxt, "prototxt")
        caffemodel = _check_file(caffemodel, "caffemodel")
        self.name = name or str(prototxt)
        self.prototxt, self.caffemodel = str(prototxt), str(caffemodel)
        if self._mode == "gpu":
            why = _probe_gpu(self._device_id)
            if why is not None:
                raise ModelError(f"cannot use GPU {self._device_id} with pycaffe: {why}")
            self.device = f"cuda:{self._device_id}"
        else:
            self.device = "cpu"
        self._set_mode()

        _read_prototxt(caffe, prototxt)
        try:
            net = caffe.Net(str(prototxt), caffe.TEST)
        except Exception as e:  # noqa: BLE001  (pycaffe raises for unreadable files)
            raise ModelError(f"Caffe cannot load {prototxt}: {e}") from e
        params = {ln: [tuple(b.data.shape) for b in blobs] for ln, blobs in net.params.items()}
        self.missing_weights = _check_caffemodel(caffemodel, params)
        if self.missing_weights:
            log.warning("%s: no weights in %s for layers %s (left at their filler values)", self.name,
                        caffemodel, ", ".join(self.missing_weights))
        try:
            net.copy_from(str(caffemodel))
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"Caffe cannot load the weights {caffemodel}: {e}") from e
        self.net = net

        if len(net.inputs) != 1:
            raise ModelError(f"{self.name}: expected exactly one input blob, the net has {list(net.inputs)}")
        self.input_blob = net.inputs[0]
        in_shape = net.blobs[self.input_blob].data.shape
        if len(in_shape) != 4 or in_shape[1] != 3:
            raise ModelError(f"{self.name}: expected a (N, 3, H, W) input blob, got {in_shape}")
        self.input_size = (int(in_shape[2]), int(in_shape[3]))

        layer_names = list(net._layer_names)
        types = {ln: layer.type for ln, layer in zip(layer_names, net.layers)}
        softmaxes = [ln for ln in layer_names if types[ln] == "Softmax"]
        if softmaxes:
            auto_logits, auto_prob = net.bottom_names[softmaxes[-1]][0], net.top_names[softmaxes[-1]][0]
        else:
            if not net.outputs:
                raise ModelError(f"{self.name}: the net has no output blob")
            auto_logits, auto_prob = net.outputs[-1], None
        self.logits_blob = self._blob(logits_layer) if logits_layer else auto_logits
        self.prob_blob = self._blob(prob_layer) if prob_layer else auto_prob
        n_classes = int(np.prod(net.blobs[self.logits_blob].data.shape[1:]))
        self.classes = ClassList.resolve(classes, n_classes)
        if len(self.classes) != n_classes:
            raise ModelError(f"{self.name}: {len(self.classes)} classes given, the net outputs {n_classes}")

        if feature_layer is None:
            self.feature_blob, pool, self.feature_name = self._default_feature(layer_names, types)
            if feature_pool is not None:
                pool = feature_pool == "avg"
        else:
            self.feature_blob = self._blob(feature_layer)
            pool = feature_pool == "avg"
            self.feature_name = feature_layer + (" (global average)" if pool else "")
        self.feature_pool = pool
        # the last layer writing the feature blob: a FEATURE-only forward stops there
        writers = [ln for ln in layer_names if self.feature_blob in net.top_names[ln]]
        self._feature_end = writers[-1] if writers else None

        self.preprocessing = CaffePreprocessing(resolve_mean(mean), self.input_size, mean_mode)
        self.mean_mode = self.preprocessing.mean_mode
        self.mask_color = self.preprocessing.mask_color_rgb

    # -- helpers ---------------------------------------------------------------------------
    def _blob(self, name: str) -> str:
        if name not in self.net.blobs:
            raise ModelError(f"{self.name}: no blob named {name!r} (blobs: {', '.join(self.net.blobs)})")
        return name

    def _default_feature(self, layer_names, types) -> Tuple[str, bool, str]:
        net = self.net
        if "fc7" in net.blobs:
            return "fc7", False, "fc7"
        ips = [ln for ln in layer_names if types[ln] == "InnerProduct"]
        if ips:
            b = net.bottom_names[ips[-1]][0]
            return b, False, b
        convs = [ln for ln in layer_names if types[ln] == "Convolution"]
        if convs:
            b = net.bottom_names[convs[-1]][0]
            return b, True, f"{b} (global average, {net.blobs[b].data.shape[1]}-d)"
        raise ModelError(f"{self.name}: cannot pick a feature layer (no InnerProduct or Convolution layer); "
                         "pass feature_layer=")

    def _set_mode(self) -> None:
        # Caffe's mode is a per-thread global: set it before every use.
        if self._mode == "gpu":
            self._caffe.set_device(self._device_id)
            self._caffe.set_mode_gpu()
        else:
            self._caffe.set_mode_cpu()

    def _run(self, images: np.ndarray, end: Optional[str] = None) -> None:
        x = self.preprocessing(np.asarray(images))
        blob = self.net.blobs[self.input_blob]
        if blob.data.shape != x.shape:
            blob.reshape(*x.shape)
            self.net.reshape()
        blob.data[...] = x
        self._set_mode()
        if end is None:
            self.net.forward()
        else:
            self.net.forward(end=end)

    # -- API -------------------------------------------------------------------------------
    def blobs(self, images: np.ndarray, names: Sequence[str]) -> Dict[str, np.ndarray]:
        """Raw blobs (``net.blobs[name].data`` after a full forward pass) for a batch of images."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        self.check_input(images)
        for n in names:
            self._blob(n)
        self._run(images)
        return {n: self.net.blobs[n].data.copy() for n in names}

    def forward(self, images: np.ndarray, outputs: Sequence[str] = (PROB, FEATURE)) -> Dict[str, np.ndarray]:
        for o in outputs:
            if o not in (PROB, LOGITS, FEATURE):
                raise ValueError(f"unknown output {o!r}")
        images = np.asarray(images)
        n = len(images)
        if n == 0:
            return {o: np.zeros((0, 0), np.float32) for o in outputs}
        only_feature = set(outputs) == {FEATURE}
        self._run(images, end=self._feature_end if only_feature else None)
        blobs = self.net.blobs
        res: Dict[str, np.ndarray] = {}
        if LOGITS in outputs or (PROB in outputs and self.prob_blob is None):
            logits = np.array(blobs[self.logits_blob].data.reshape(n, -1), np.float32)
            if LOGITS in outputs:
                res[LOGITS] = logits
        if PROB in outputs:
            if self.prob_blob is not None:
                res[PROB] = np.array(blobs[self.prob_blob].data.reshape(n, -1), np.float32)
            else:
                res[PROB] = softmax(logits.astype(np.float64)).astype(np.float32)
        if FEATURE in outputs:
            f = blobs[self.feature_blob].data
            if self.feature_pool and f.ndim == 4:
                f = f.mean(axis=(2, 3))
            res[FEATURE] = np.array(f.reshape(n, -1), np.float32)
        return res

    def describe(self) -> str:
        return (f"{self.name} (PyCaffeClassifier: BVLC Caffe {getattr(self._caffe, '__version__', '?')}, "
                f"input {self.input_size[0]}x{self.input_size[1]}, device {self.device}, "
                f"feature {self.feature_name})")
