"""What the command line says about the classifier, as one typed value.

A :class:`ModelSpec` is built once from ``--model/--engine/--device/--precision/
--no-incremental`` (:mod:`stl.cli.args`) and is what travels into experiments and
the runner; :meth:`ModelSpec.build` makes the classifier.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

from .base import Classifier, ModelError

ModelName = Union[str, Tuple[str, str]]


@dataclass(frozen=True)
class ModelSpec:
    """A classifier to build: registry name (``efficientnet_lite0``, ``caffenet``, ...) or a
    ``(prototxt, caffemodel)`` pair, on an engine/device/precision; ``incremental=False``
    runs masked images through the whole net (Caffe nets in the torch engine)."""

    name: ModelName = "efficientnet_lite0"
    engine: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    incremental: bool = True

    @classmethod
    def from_words(cls, words, **kw) -> "ModelSpec":
        """``["caffenet"]`` or ``["deploy.prototxt", "model.caffemodel"]`` (``--model``'s nargs)."""
        words = [words] if isinstance(words, str) else list(words)
        if len(words) == 1:
            return cls(name=words[0], **kw)
        if len(words) == 2:
            return cls(name=(str(words[0]), str(words[1])), **kw)
        raise ModelError("--model takes a NAME or a PROTOTXT CAFFEMODEL pair")

    @classmethod
    def of(cls, model) -> "ModelSpec":
        """``model`` if it is a ModelSpec, else the spec of a registry name, a
        ``"PROTOTXT:CAFFEMODEL"`` string or a ``(prototxt, caffemodel)`` pair (default engine)."""
        if isinstance(model, cls):
            return model
        if isinstance(model, (tuple, list)):
            return cls.from_words(model)
        name = str(model)
        if ":" in name and name.split(":")[0].endswith(".prototxt"):
            return cls.from_words(name.split(":", 1))
        return cls(name=name)

    @property
    def is_caffe(self) -> bool:
        """A Caffe net (its mean follows ``STLConfig.caffe_mean``), as the model was registered
        (:func:`stl.models.zoo.model_traits`); a prototxt/caffemodel pair is one."""
        from .zoo import model_traits

        return bool(model_traits(self.name)["caffe"])

    def build(self, mean_mode: Optional[str] = None, **kwargs) -> Classifier:
        """The classifier. ``mean_mode``: how a Caffe model subtracts the ILSVRC mean
        (``STLConfig.caffe_mean``); ignored for other models. ``kwargs`` go to the model's factory."""
        from .zoo import build_classifier

        if self.is_caffe and mean_mode is not None:
            kwargs["mean_mode"] = mean_mode
        clf = build_classifier(self.name, engine=self.engine, device=self.device, precision=self.precision,
                               **kwargs)
        if not self.incremental and hasattr(clf, "incremental_masking"):
            clf.incremental_masking = False
        return clf

    def preprocessing_identity(self, mean_mode: Optional[str] = None) -> dict:
        """:func:`stl.models.preprocessing.preprocessing_identity` of the classifier
        :meth:`build` (``mean_mode``) makes, without building it (registered Caffe models
        subtract their mean image, so their ``caffe_mean`` is ``mean_mode``; default "image")."""
        out = {"precision": "fp32" if self.engine == "caffe" else self.precision}
        if self.is_caffe:
            out["caffe_mean"] = mean_mode or "image"
        return out

    def replace(self, **changes) -> "ModelSpec":
        from dataclasses import replace

        return replace(self, **changes)

    def __str__(self) -> str:
        return ":".join(self.name) if isinstance(self.name, tuple) else str(self.name)
