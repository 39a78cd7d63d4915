"""What the command line says about the classifier, as one typed value.

A :class:`ModelSpec` is built once from ``--model/--engine/--device/--precision/
--no-incremental`` (:mod:`stl.cli.args`) and is what travels into experiments and
the runner; :meth:`ModelSpec.build` makes the classifier.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

from .base import Classifier, ModelError, set_threads

ModelName = Union[str, Tuple[str, str]]


@dataclass(frozen=True)
class ModelSpec:
    """A classifier to build: registry name (``efficientnet_lite0``, ``caffenet``, ...) or a
    ``(prototxt, caffemodel)`` pair, an ONNX file (``net.onnx``) or a module factory
    (``package.module:factory``), on an engine/device/precision; ``incremental=False``
    runs masked images through the whole net (Caffe nets in the torch engine).

    ``classes`` (synset_words.txt), ``mean``/``std`` (RGB, 0..255 or 0..1) and ``input_size``
    (H, W) describe an ONNX file's classifier (``--classes --mean --std --input-size``);
    ``threads`` are ONNX Runtime's intra-op threads (``--threads``, ONNX models only)."""

    name: ModelName = "efficientnet_lite0"
    engine: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    incremental: bool = True
    classes: Optional[str] = None
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None
    input_size: Optional[Tuple[int, int]] = None
    threads: Optional[int] = None

    #: the fields that only an ONNX file / a module factory takes
    OPTION_FIELDS = ("classes", "mean", "std", "input_size", "threads")

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
    def is_onnx(self) -> bool:
        """An ONNX file (``--model net.onnx``) or the built-in Lite0 on ``--engine onnx``."""
        return (isinstance(self.name, str) and self.name.lower().endswith(".onnx")) or self.engine == "onnx"

    @property
    def is_factory(self) -> bool:
        """``package.module:factory`` (a function returning a torch module and its preprocessing)."""
        from .zoo import is_factory_name

        return is_factory_name(self.name)

    @property
    def is_caffe(self) -> bool:
        """A Caffe net (its mean follows ``STLConfig.caffe_mean``), as the model was registered
        (:func:`stl.models.zoo.model_traits`); a prototxt/caffemodel pair is one; ONNX files and
        module factories are not."""
        from .zoo import model_traits

        if self.is_onnx or self.is_factory:
            return False
        return bool(model_traits(self.name)["caffe"])

    @property
    def run_name(self) -> ModelName:
        """The model's name in run files: the built-in Lite0 on ``--engine onnx`` is
        ``efficientnet_lite0_onnx`` (its windows differ from the torch engine's by float rounding)."""
        if self.engine == "onnx" and self.name == "efficientnet_lite0":
            return "efficientnet_lite0_onnx"
        return self.name

    def options(self) -> dict:
        """The ONNX / factory options that are set (``classes``, ``mean``, ...)."""
        return {k: getattr(self, k) for k in self.OPTION_FIELDS if getattr(self, k) is not None}

    def build(self, mean_mode: Optional[str] = None, **kwargs) -> Classifier:
        """The classifier. ``mean_mode``: how a Caffe model subtracts the ILSVRC mean
        (``STLConfig.caffe_mean``); ignored for other models. ``kwargs`` go to the model's factory."""
        from .zoo import build_classifier

        if self.is_caffe and mean_mode is not None:
            kwargs["mean_mode"] = mean_mode
        opts = self.options()
        threads = opts.pop("threads", None)
        if opts and not (self.is_onnx or self.is_factory):
            raise ModelError(f"--{'/--'.join(k.replace('_', '-') for k in opts)}: only for --model FILE.onnx, "
                             f"--engine onnx or --model package.module:factory, not {self}")
        if threads is not None:  # --threads: every engine's CPU threads
            if self.is_onnx:
                opts["threads"] = threads  # ONNX Runtime's intra-op threads
            elif self.engine == "caffe":
                raise ModelError("--threads: pycaffe's threads are its BLAS's; set OPENBLAS_NUM_THREADS "
                                 "(or MKL_NUM_THREADS) instead")
            else:  # the torch engines, a module factory: torch's intra-op threads (and OpenCV's)
                import torch  # noqa: F401 - imported first, so set_threads reaches it

                set_threads(threads)
        kwargs.update(opts)
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
