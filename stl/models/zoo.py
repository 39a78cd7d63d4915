"""The model registry and its registrations (``efficientnet_lite0``, ``caffenet``, ``alexnet``,
``squeezenet``, ``caffenet_random``) and the one factory :func:`build_classifier`.

Nothing in :mod:`stl.models` imports this module back: engines and model files
(:mod:`.caffe.model_files`, :mod:`.caffe.classifier`, :mod:`.caffe.pycaffe_engine`, :mod:`.efficientnet`)
know nothing of the registry. Add a model with ``@register_model("name", caffe=..., layers=...)``;
callers ask :func:`model_traits` what it is, never its name.
"""
from __future__ import annotations

from ..registry import Registry
from .caffe import model_files as _files
from .base import Classifier, ModelError

ENGINES = ("torch", "caffe", "onnx")

#: model name -> ``build(engine, device, precision, **kw) -> Classifier``
MODELS: Registry = Registry("model")

#: what a model declares at registration (:func:`register_model`)
MODEL_TRAITS = ("caffe", "layers")

#: EfficientNet-Lite0's sub-modules shown by ``stl fig1`` / ``fig5`` (module name, label)
LITE0_LAYERS = (("_bn0", "stem"), ("_blocks.0", "stage1"), ("_blocks.2", "stage2"), ("_blocks.4", "stage3"),
                ("_blocks.7", "stage4"), ("_blocks.10", "stage5"), ("_blocks.14", "stage6"),
                ("_blocks.15", "stage7"), ("_bn1", "head"), ("_avg_pooling", "avgpool"), ("_fc", "fc (logits)"))


def register_model(name: str, caffe: bool = False, layers=None):
    """Decorator: ``@register_model("mynet") def build(engine, device, precision, **kw) -> Classifier``.

    Parameters
    ----------
    name : str
        Registry name (any spelling of :func:`stl.registry.normalize` finds it).
    caffe : bool
        A Caffe net: it subtracts the ILSVRC mean as ``STLConfig.caffe_mean`` says (the builder
        takes ``mean_mode=``) and shows its blobs in ``stl fig1`` / ``fig5``.
    layers : sequence of (module name, label), optional
        For a PyTorch classifier with a ``net`` module: the sub-modules ``stl fig1`` / ``fig5``
        read through forward hooks.
    """
    return MODELS.register(name, caffe=bool(caffe), layers=tuple(layers) if layers else None)


def model_traits(model) -> dict:
    """``{"caffe": bool, "layers": ((module, label), ...) | None}`` as ``model`` was registered;
    a ``(prototxt, caffemodel)`` pair or ``"A.prototxt:B.caffemodel"`` is a Caffe net; an
    unregistered name has no traits (building it is the error)."""
    if isinstance(model, (tuple, list)) or (":" in str(model) and str(model).split(":")[0].endswith(".prototxt")):
        return {"caffe": True, "layers": None}
    if model in MODELS:
        info = MODELS.info(model)
        return {t: info.get(t) for t in MODEL_TRAITS}
    return {"caffe": False, "layers": None}


def available_models():
    """The registered models' canonical names, sorted."""
    return MODELS.names()


@register_model("efficientnet_lite0", layers=LITE0_LAYERS)
def _build_lite0(engine="torch", device="cpu", precision="fp32", channels_last=True, threads=None, **kw):
    if engine == "onnx":  # exported once (cached), run by ONNX Runtime
        if precision != "fp32":
            raise ModelError("--engine onnx runs fp32 only")
        from .onnx import lite0_onnx_classifier

        return lite0_onnx_classifier(threads=threads, device=device, **kw)
    if engine != "torch":
        raise ModelError("efficientnet_lite0 is a PyTorch model; use --engine torch or --engine onnx")
    if kw or threads is not None:
        raise ModelError(f"efficientnet_lite0 takes no {', '.join(sorted(kw) + (['threads'] if threads else []))}")
    from .efficientnet import EfficientNetLite0

    return EfficientNetLite0(device=device, precision=precision, channels_last=channels_last)


def build_classifier(name="efficientnet_lite0", engine: str = "torch", device: str = "cpu",
                     precision: str = "fp32", **kwargs) -> Classifier:
    """Build a classifier by registry name or from ``prototxt:caffemodel``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if isinstance(name, str) and name.lower().endswith(".onnx"):
        return build_onnx_classifier(name, device=device, precision=precision, **kwargs)
    if is_factory_name(name):
        from .torch_classifier import classifier_from_factory

        return classifier_from_factory(name, device=device, precision=precision, **kwargs)
    if engine == "onnx" and name != "efficientnet_lite0":
        raise ModelError(f"--engine onnx runs efficientnet_lite0 (exported to ONNX) or a --model FILE.onnx, "
                         f"not {name if isinstance(name, str) else ' '.join(name)}")
    if isinstance(name, (tuple, list)):
        prototxt, caffemodel = name
        return build_caffe_classifier(prototxt, caffemodel, engine=engine, device=device, precision=precision,
                                      **kwargs)
    if name in MODELS:
        return MODELS.get(name)(engine=engine, device=device, precision=precision, **kwargs)
    if ":" in str(name) and str(name).split(":")[0].endswith(".prototxt"):
        prototxt, caffemodel = str(name).split(":", 1)
        return build_caffe_classifier(prototxt, caffemodel, engine=engine, device=device, precision=precision,
                                      **kwargs)
    raise ModelError(f"unknown model {name!r}; known: {', '.join(available_models())}, "
                     "PROTOTXT CAFFEMODEL, FILE.onnx or package.module:factory")


def is_factory_name(name) -> bool:
    """``package.module:factory`` -- a Python function returning a torch module and its preprocessing
    (not ``a.prototxt:b.caffemodel``)."""
    import re

    return isinstance(name, str) and re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", name) is not None \
        and not name.split(":")[0].endswith(".prototxt")


def build_onnx_classifier(path, device="cpu", precision="fp32", **kwargs):
    """An ONNX file in ONNX Runtime (:class:`stl.models.onnx.OnnxClassifier`); fp32 only."""
    if precision != "fp32":
        raise ModelError("ONNX models run in the precision of the file; leave --precision fp32")
    from .onnx import OnnxClassifier

    if isinstance(kwargs.get("input_size"), (tuple, list)) and len(kwargs["input_size"]) == 1:
        kwargs["input_size"] = kwargs["input_size"][0]
    return OnnxClassifier(path, device=device, **kwargs)


def build_caffe_classifier(prototxt, caffemodel, engine="torch", device="cpu", precision="fp32", **kwargs):
    """A Caffe model (deploy prototxt + caffemodel) in the pycaffe or the torch engine."""
    if engine == "caffe":
        from .caffe.pycaffe_engine import PyCaffeClassifier

        if precision != "fp32":
            raise ValueError("the caffe engine runs fp32 only")
        return PyCaffeClassifier(prototxt, caffemodel, device=device, **kwargs)
    from .caffe.classifier import TorchCaffeClassifier

    return TorchCaffeClassifier(prototxt, caffemodel, device=device, precision=precision, **kwargs)


def _build(name, paths, engine, device, precision, kw):
    kw = dict(kw)
    if kw.get("mean") is None:
        kw["mean"] = _files.default_mean()
    kw.setdefault("mean_mode", "image")
    clf = build_caffe_classifier(str(paths[0]), str(paths[1]), engine=engine, device=device,
                                 precision=precision, **kw)
    clf.name = name
    return clf


@register_model("caffenet", caffe=True)
def _build_caffenet(engine="torch", device="cpu", precision="fp32", **kw):
    return _build("caffenet", _files.bvlc_paths("caffenet"), engine, device, precision, kw)


@register_model("alexnet", caffe=True)
def _build_alexnet(engine="torch", device="cpu", precision="fp32", **kw):
    return _build("alexnet", _files.bvlc_paths("alexnet"), engine, device, precision, kw)


@register_model("squeezenet", caffe=True)
def _build_squeezenet(engine="torch", device="cpu", precision="fp32", **kw):
    return _build("squeezenet", _files.squeezenet_paths(), engine, device, precision, kw)


@register_model("caffenet_random", caffe=True)
def _build_caffenet_random(engine="torch", device="cpu", precision="fp32", seed: int = 0, **kw):
    return _build("caffenet_random", _files.caffenet_random_paths(seed), engine, device, precision, kw)
