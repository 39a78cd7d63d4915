"""Any ONNX image classifier as an STL :class:`~stl.models.base.Classifier` (ONNX Runtime).

``OnnxClassifier("net.onnx", mean=..., std=..., classes=..., input_size=...)`` runs a model
file with ONNX Runtime (PyPI ``onnxruntime``, the optional extra ``stl[onnx]``; ``make setup``
installs it). What it expects of the file:

* one input of rank 4, NCHW (dimension 1 is 3) or NHWC (dimension 3 is 3), float32 or
  float16, the batch dimension dynamic (or fixed: then that is the batch size); a dynamic
  height/width needs ``input_size``;
* an output of rank 2, ``(N, C)``: the class scores (an output named ``logits``, else the first
  rank-2 output). If it is made by a ``Softmax`` / ``LogSoftmax`` node, that node's input is taken
  as the logits (and added as a graph output if needed); otherwise the output must be logits
  (STL applies the softmax itself).

Preprocessing: STL hands RGB pixels 0..255; the network gets ``(x - mean) / std`` per channel,
``mean`` and ``std`` in the same 0..255 pixel units, or both as fractions of 255 (every mean
<= 1 and every std < 1, torchvision's: ``mean=(0.485, 0.456, 0.406)`` means ``(123.675, 116.28,
103.53)``; :func:`stl.models.preprocessing.pixel_values`), in RGB order (``bgr=True`` flips the
channels first, for Caffe-style exports). The mask colour g
of Eq. 1 is the mean pixel, the value the network sees as 0.

``FEATURE`` (the feature of s_app, Eq. 3) is the input of the LAST ``Gemm`` / ``MatMul`` node of
the graph (for a CNN: the pooled penultimate feature, Lite0's 1280-d vector, CaffeNet's fc7);
if the file does not output it, it is added as an extra graph output before the session is
built (the file on disk is not changed). A feature of rank > 2 is flattened per image.

:func:`export_lite0_onnx` writes the built-in EfficientNet-Lite0
(:mod:`stl.models.efficientnet`) as ONNX with both outputs (``logits`` and the 1280-d
``feature``) and its preprocessing in the file's metadata, cached under
:func:`stl.paths.cache_dir` (``$STL_CACHE``); ``--model efficientnet_lite0 --engine onnx`` runs it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from .base import FEATURE, LOGITS, PROB, Classifier, ClassList, ModelError, softmax
from .preprocessing import pixel_values

log = logging.getLogger(__name__)

#: keys of the ONNX metadata_props this module writes and reads (preprocessing travels with the file)
META_MEAN, META_STD, META_CLASSES, META_NAME = "stl.mean", "stl.std", "stl.classes", "stl.name"
#: batch size on CPU when the file's batch dimension is dynamic (Lite0 in ORT 1.32, 1 thread: 54, 54, 48,
#: 53 img/s at batch 1, 4, 8, 16 -- flat, so the torch engine's 4, which keeps STL's batches full)
CPU_BATCH_SIZE = 4
GPU_BATCH_SIZE = 64


def _require_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ModelError("ONNX models need the packages onnxruntime and onnx (`make setup`, or "
                         "`pip install 'stl[onnx]'`)") from e


def _dims(value_info) -> list:
    """Dimensions of a graph value: ints, or None for a dynamic (symbolic / unknown) one."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]


def _producer(graph, name):
    for node in reversed(graph.node):
        if name in node.output:
            return node
    return None


def inspect_graph(model, path: str = "model") -> dict:
    """What :class:`OnnxClassifier` needs from an ``onnx.ModelProto``: input name/layout/size, the
    score output (and whether it is a softmax), the feature value. Raises :class:`ModelError`
    naming ``path`` when the file is not an image classifier."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        raise ModelError(f"{path}: an image classifier has one input, this file has {len(inputs)} "
                         f"({', '.join(i.name for i in inputs)})")
    inp = inputs[0]
    dims = _dims(inp)
    if len(dims) != 4:
        raise ModelError(f"{path}: input {inp.name!r} has rank {len(dims)}; an image classifier takes a rank-4 "
                         f"batch (N, 3, H, W) or (N, H, W, 3)")
    if dims[1] == 3:
        layout, hw = "NCHW", (dims[2], dims[3])
    elif dims[3] == 3:
        layout, hw = "NHWC", (dims[1], dims[2])
    elif dims[1] is None and dims[3] is None:
        layout, hw = "NCHW", (dims[2], dims[3])
    else:
        raise ModelError(f"{path}: input {inp.name!r} {dims} has no 3-channel axis (dimension 1 or 3)")
    meta = {p.key: p.value for p in model.metadata_props}
    named = {o.name: o for o in g.output}
    # the class scores: an output called "logits", else the first rank-2 output
    score = named.get("logits")
    if score is None:
        rank2 = [o for o in g.output if len(_dims(o)) == 2]
        if not rank2:
            raise ModelError(f"{path}: no output of rank 2 (N, classes): outputs "
                             f"{', '.join(f'{o.name} {_dims(o)}' for o in g.output)}; not a classifier")
        score = rank2[0]
    if len(_dims(score)) not in (0, 2):
        raise ModelError(f"{path}: output {score.name!r} has rank {len(_dims(score))}, not 2 (N, classes); "
                         f"not a classifier")
    logits, is_prob = score.name, False
    node = _producer(g, score.name)
    if node is not None and node.op_type in ("Softmax", "LogSoftmax"):  # the scores before it are the logits
        logits, is_prob = node.input[0], node.op_type == "Softmax"
    n_classes = _dims(score)[1] if len(_dims(score)) == 2 else None
    if "feature" in named:
        feature = "feature"
    else:
        fc = [n for n in g.node if n.op_type in ("Gemm", "MatMul") and n.input[0] not in inits]
        if not fc:
            raise ModelError(f"{path}: no Gemm/MatMul node (the classifier's last layer, whose input is the "
                             f"feature STL's appearance term uses)")
        feature = fc[-1].input[0]
    return dict(input=inp.name, layout=layout, input_hw=hw, batch=dims[0], input_type=inp.type.tensor_type.elem_type,
                logits=logits, logits_in_graph=logits in named, score=score.name, score_is_prob=is_prob,
                feature=feature, feature_in_graph=feature in named, n_classes=n_classes, meta=meta)


class OnnxClassifier(Classifier):
    """An ONNX image classifier run by ONNX Runtime (see the module docstring for the conventions).

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file.
    mean, std : 1 or 3 numbers, RGB, 0..255 pixel units, or both fractions of 255 (every mean <= 1
        and every std < 1; :func:`stl.models.preprocessing.pixel_values`).
        Default: the file's ``stl.mean`` / ``stl.std`` metadata (written by :func:`export_lite0_onnx`);
        a file without them needs both.
    classes : ClassList, synset_words.txt path, or None (ImageNet for 1000 classes, else ``class_i``).
    input_size : (H, W) or int, the network input; needed when the file's is dynamic, checked
        against it when fixed.
    threads : int, optional
        ONNX Runtime intra-op threads (default: ``$OMP_NUM_THREADS``, else ONNX Runtime's default,
        one per physical core); inter-op threads are 1 (the graph runs sequentially).
    device : "cpu" or "cuda[:N]" (needs the ``onnxruntime-gpu`` build).
    bgr : feed the channels in BGR order (after subtracting the mean given in RGB).
    batch_size : images per session run (default: the file's fixed batch, else 4 on CPU, 64 on GPU).
    """

    def __init__(self, path, mean=None, std=None, classes=None, input_size=None, threads: Optional[int] = None,
                 device: str = "cpu", bgr: bool = False, batch_size: Optional[int] = None, name: Optional[str] = None):
        _require_onnx()
        import onnx
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ModelError(f"ONNX model not found: {path}")
        try:
            model = onnx.load(str(path))
        except Exception as e:  # noqa: BLE001 - protobuf decode errors of all kinds
            raise ModelError(f"{path}: cannot read as an ONNX model ({type(e).__name__}: {e})") from None
        info = inspect_graph(model, str(path))
        meta = info["meta"]
        self.path = path
        self.name = name or meta.get(META_NAME) or str(path)
        # -- input size
        if input_size is not None:
            hw = (int(input_size), int(input_size)) if np.ndim(input_size) == 0 else tuple(int(v) for v in input_size)
            if len(hw) == 1:
                hw = (hw[0], hw[0])
            if len(hw) != 2 or min(hw) < 1:
                raise ModelError(f"--input-size: give H W (or one side), not {input_size!r}")
            for have, want, what in zip(info["input_hw"], hw, ("height", "width")):
                if have is not None and have != want:
                    raise ModelError(f"{path}: the file's input {what} is {have}, --input-size says {want}")
        else:
            if None in info["input_hw"]:
                raise ModelError(f"{path}: the input {info['input']!r} has a dynamic height/width; give "
                                 f"--input-size H W (input_size=(H, W))")
            hw = tuple(info["input_hw"])
        self.input_size = (int(hw[0]), int(hw[1]))
        # -- preprocessing
        if mean is None and META_MEAN in meta:
            mean = json.loads(meta[META_MEAN])
        if std is None and META_STD in meta:
            std = json.loads(meta[META_STD])
        if mean is None or std is None:
            raise ModelError(f"{path}: give the network's preprocessing with --mean and --std (RGB, 0..255 or "
                             f"0..1; e.g. --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 for torchvision "
                             f"models)")
        self.mean, self.std = pixel_values(mean, std)
        self.bgr = bool(bgr)
        self.mask_color = self.mean.copy()
        # -- outputs: the logits and the feature as graph outputs
        added = []
        for key in ("logits", "feature"):
            if not info[f"{key}_in_graph"]:
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(info[key]))
                added.append(info[key])
        self._logits, self._feature, self._score_is_prob = info["logits"], info["feature"], info["score_is_prob"]
        self.feature_name = f"input of the last Gemm/MatMul ({info['feature']})" \
            if info["feature"] != "feature" else "feature (graph output)"
        # -- session
        if threads is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
            threads = int(os.environ["OMP_NUM_THREADS"])
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        self.threads = threads
        self.device = str(device)
        if self.device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ModelError("--device cuda with an ONNX model needs the onnxruntime-gpu build "
                                 f"(available providers: {', '.join(ort.get_available_providers())})")
            dev_id = int(self.device.split(":")[1]) if ":" in self.device else 0
            providers = [("CUDAExecutionProvider", {"device_id": dev_id}), "CPUExecutionProvider"]
        elif self.device == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise ModelError(f"--device {device!r}: ONNX models run on cpu or cuda[:N]")
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), so, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"{path}: ONNX Runtime cannot load it ({type(e).__name__}: {e})") from None
        if added:
            log.debug("%s: added graph output(s) %s", path, ", ".join(added))
        self._input = info["input"]
        self._layout = info["layout"]
        self._dtype = np.float16 if info["input_type"] == onnx.TensorProto.FLOAT16 else np.float32
        fixed_batch = info["batch"]
        self.fixed_batch = fixed_batch
        self.preferred_batch_size = int(batch_size or fixed_batch
                                        or (GPU_BATCH_SIZE if self.device.startswith("cuda") else CPU_BATCH_SIZE))
        # -- classes (the number from the file, else one probe run)
        n = info["n_classes"]
        if n is None:
            n = self._run(np.zeros((1, *self.input_size, 3), np.float32), [self._logits])[0].shape[1]
        self.classes = ClassList.resolve(classes, int(n))  # None: ImageNet's for 1000 classes
        if len(self.classes) != n:
            raise ModelError(f"{path}: {n} class scores but the class list has {len(self.classes)} classes")

    # ------------------------------------------------------------------------- running
    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """NHWC RGB 0..255 -> the network's input ((x - mean) / std, channels as the file wants)."""
        x = (np.asarray(images, np.float32) - self.mean) / self.std
        if self.bgr:
            x = x[..., ::-1]
        if self._layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, self._dtype)

    def _run(self, images: np.ndarray, names) -> list:
        x = self.preprocess(images)
        fb = self.fixed_batch
        if fb and len(x) != fb:  # a fixed-batch file: pad the last chunk, run chunk by chunk
            outs = [[] for _ in names]
            for s in range(0, len(x), fb):
                part = x[s:s + fb]
                k = len(part)
                if k < fb:
                    part = np.concatenate([part, np.repeat(part[-1:], fb - k, axis=0)])
                for j, o in enumerate(self.session.run(names, {self._input: part})):
                    outs[j].append(o[:k])
            return [np.concatenate(o) for o in outs]
        return self.session.run(names, {self._input: x})

    def forward(self, images: np.ndarray, outputs: Sequence[str] = (PROB, FEATURE)) -> Dict[str, np.ndarray]:
        images = np.asarray(images)
        names = []
        if PROB in outputs or LOGITS in outputs:
            names.append(self._logits)
        if FEATURE in outputs:
            names.append(self._feature)
        got = dict(zip(names, self._run(images, names))) if len(images) else {}
        n = len(images)
        res = {}
        if names and self._logits in names:
            z = np.asarray(got[self._logits], np.float32).reshape(n, -1) if n else np.zeros((0, len(self.classes)),
                                                                                             np.float32)
            if LOGITS in outputs:
                res[LOGITS] = z
            if PROB in outputs:
                res[PROB] = softmax(z.astype(np.float64)).astype(np.float32) if n else z
        if FEATURE in outputs:
            res[FEATURE] = np.asarray(got[self._feature], np.float32).reshape(n, -1) if n else \
                np.zeros((0, 0), np.float32)
        return res

    def describe(self) -> str:
        return (f"{self.name} (OnnxClassifier, ONNX Runtime {self.session.get_providers()[0]}, input "
                f"{self.input_size[0]}x{self.input_size[1]} {self._layout}, {len(self.classes)} classes, "
                f"threads {self.threads or 'default'}, batch {self.preferred_batch_size})")


# ----------------------------------------------------------------------------- Lite0 export
class _Lite0WithFeature:
    """torch module: normalised NCHW -> (logits, 1280-d pooled feature), as EfficientNetLite0.forward."""

    @staticmethod
    def build(net):
        import torch

        class M(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                feat = torch.flatten(self.net._avg_pooling(self.net.extract_features(x)), 1)
                return self.net._fc(feat), feat

        return M(net).eval()


def export_lite0_onnx(path=None, opset: int = 17, force: bool = False) -> Path:
    """The built-in EfficientNet-Lite0 as ONNX: input ``image`` (N, 3, 224, 224) = (x - 127.5) / 127.5,
    outputs ``logits`` (N, 1000) and ``feature`` (N, 1280, the global-average-pooled last feature map
    -- EfficientNetLite0's FEATURE), batch dynamic; preprocessing and classes in the metadata.

    ``path`` default: ``<cache_dir>/onnx/efficientnet_lite0-<weights sha1[:10]>-opset<N>.onnx`` (made once,
    written atomically). Returns the path."""
    _require_onnx()
    import onnx
    import torch

    from ..io import atomic_path
    from ..paths import cache_dir
    from .efficientnet import INPUT_SIZE, MEAN, STD, EfficientNetLite0, lite0_weights_path

    weights = lite0_weights_path()
    if path is None:
        h = hashlib.sha1(weights.read_bytes()).hexdigest()[:10]
        path = cache_dir() / "onnx" / f"efficientnet_lite0-{h}-opset{opset}.onnx"
    path = Path(path)
    if path.is_file() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    clf = EfficientNetLite0(device="cpu", channels_last=False)
    module = _Lite0WithFeature.build(clf.net)
    x = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)
    import warnings

    with atomic_path(path) as tmp:
        tmp = Path(tmp)
        raw = tmp.with_name(tmp.name + ".raw.onnx")
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (x,), str(raw), input_names=["image"], output_names=["logits", "feature"],
                                  dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "feature": {0: "batch"}},
                                  opset_version=opset, dynamo=False)
            model = onnx.load(str(raw))
        finally:
            raw.unlink(missing_ok=True)
        for key, value in ((META_MEAN, json.dumps([MEAN] * 3)), (META_STD, json.dumps([STD] * 3)),
                           (META_CLASSES, "imagenet"), (META_NAME, "efficientnet_lite0_onnx")):
            p = model.metadata_props.add()
            p.key, p.value = key, value
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
    log.info("exported EfficientNet-Lite0 to %s", path)
    return path


def lite0_onnx_classifier(threads: Optional[int] = None, device: str = "cpu", **kw) -> OnnxClassifier:
    """:func:`export_lite0_onnx` (cached) run by :class:`OnnxClassifier` (``--engine onnx``)."""
    import functools

    clf = OnnxClassifier(export_lite0_onnx(), threads=threads, device=device, **kw)

    @functools.lru_cache(maxsize=1)
    def gradient_twin():
        from .efficientnet import EfficientNetLite0

        return EfficientNetLite0(device=device)

    #: the same weights as a PyTorch classifier, for what needs gradients (CAM / Grad-CAM:
    #: :func:`stl.wsol.heatmaps.conv_head`); ONNX Runtime gives none
    clf.gradient_twin = gradient_twin
    return clf


__all__ = ["OnnxClassifier", "export_lite0_onnx", "lite0_onnx_classifier", "inspect_graph"]
