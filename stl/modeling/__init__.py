"""Classifier engines and the model registry.

``build_classifier(name, engine=..., device=..., precision=...)`` is the one
factory. ``name`` is a registry name (``efficientnet_lite0``, ``caffenet``,
``alexnet``, ``squeezenet``, ``caffenet_random``) or a pair
``PROTOTXT CAFFEMODEL`` given as ``"path/deploy.prototxt:path/model.caffemodel"``
(or a tuple). Register more with :func:`register_model`.
"""
from __future__ import annotations

from ..registry import Registry
from .base import FEATURE, LOGITS, PROB, Classifier, ClassList, ModelError  # noqa: F401

ENGINES = ("torch", "caffe")

#: model name -> ``build(engine, device, precision, **kw) -> Classifier``
MODELS: Registry = Registry("model", builtin=("stl.modeling.caffe_models",))


def register_model(name: str):
    """Decorator: ``@register_model("mynet") def build(engine, device, precision, **kw) -> Classifier``."""
    return MODELS.register(name)


def available_models():
    return MODELS.names()


@register_model("efficientnet_lite0")
def _build_lite0(engine="torch", device="cpu", precision="fp32", channels_last=True, **kw):
    if engine != "torch":
        raise ModelError("efficientnet_lite0 is a PyTorch model; use --engine torch")
    from .efficientnet import EfficientNetLite0

    return EfficientNetLite0(device=device, precision=precision, channels_last=channels_last)


def build_classifier(name="efficientnet_lite0", engine: str = "torch", device: str = "cpu",
                     precision: str = "fp32", **kwargs) -> Classifier:
    """Build a classifier by registry name or from ``prototxt:caffemodel``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
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
                     "or PROTOTXT:CAFFEMODEL")


def build_caffe_classifier(prototxt, caffemodel, engine="torch", device="cpu", precision="fp32", **kwargs):
    """A Caffe model (deploy prototxt + caffemodel) in the pycaffe or the torch engine."""
    if engine == "caffe":
        from .pycaffe_engine import PyCaffeClassifier

        if precision != "fp32":
            raise ValueError("the caffe engine runs fp32 only")
        return PyCaffeClassifier(prototxt, caffemodel, device=device, **kwargs)
    from .torch_caffe import TorchCaffeClassifier

    return TorchCaffeClassifier(prototxt, caffemodel, device=device, precision=precision, **kwargs)

