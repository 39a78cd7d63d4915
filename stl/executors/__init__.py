"""Executors: where the runner's images are computed.

:func:`stl.runner.run_method` is the one writer of a run's store; an
:class:`Executor` only computes. It is given the method (a live object, or a
picklable :class:`MethodSpec` that each worker builds once), and the chunks of
image ids still to do, and streams back each finished chunk's results; the
runner commits every image atomically as soon as it arrives, so a run is
resumable and readable while it runs whatever executes it. The local executor hands
each image over the moment the method finishes it (``on_entry``); Ray workers return
their images per chunk.

* ``local`` (:class:`stl.executors.local.LocalExecutor`, the default): in this
  process, one chunk after the other -- no start-up cost.
* ``ray`` (:class:`stl.executors.ray_executor.RayExecutor`): Ray actors on
  this machine (a local Ray instance) or on a cluster (``--address``); a worker
  that dies has its images retried on a new one (docs/scale.md).

The command-line options are added by :func:`add_executor_arguments` and read
by :func:`executor_from_args`.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

log = logging.getLogger(__name__)

#: one finished chunk: (entries [(image_id, boxes, scores, attrs)], failures {image_id: (error, message)})
ChunkResult = Tuple[List[tuple], Dict[str, Tuple[str, str]]]

EXECUTORS = ("local", "ray")
#: how often an image is tried again after the worker computing it died (then it is recorded as failed)
DEFAULT_MAX_RETRIES = 2


# ----------------------------------------------------------------------------- method spec
@dataclass(frozen=True)
class MethodSpec:
    """Everything a worker needs to build a proposal method itself (picklable, no live objects).

    ``model`` is a registry name or a ``(prototxt, caffemodel)`` pair; ``config`` an
    :class:`stl.core.config.STLConfig` (given to STL methods); ``modules`` are imported
    before building (the module that registered the method is added by
    :meth:`for_method`, so plug-in methods work on remote workers too).
    """

    name: str
    model: Union[str, Tuple[str, str], None] = "efficientnet_lite0"
    engine: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    config: object = None
    incremental: bool = True
    modules: Tuple[str, ...] = ()
    options: Tuple[Tuple[str, object], ...] = field(default_factory=tuple)
    #: the ModelSpec's ONNX / factory options (classes, mean, std, input_size, threads) as sorted pairs
    model_options: Tuple[Tuple[str, object], ...] = field(default_factory=tuple)

    @classmethod
    def for_method(cls, name: str, **kw) -> "MethodSpec":
        """A spec for the registered method ``name``, remembering the module that registered it."""
        from ..proposals import METHODS

        mod = getattr(METHODS.get(name), "__module__", None)
        mods = tuple(kw.pop("modules", ()))
        if mod and mod != "__main__" and mod not in mods:
            mods = mods + (mod,)
        model = kw.pop("model", "efficientnet_lite0")
        if isinstance(model, list):
            model = tuple(model)
        return cls(name=name, model=model, modules=mods, **kw)

    @classmethod
    def from_model_spec(cls, name: str, model, config=None) -> "MethodSpec":
        """The spec of method ``name`` with the classifier of a :class:`stl.models.spec.ModelSpec`."""
        return cls.for_method(name, model=model.name, engine=model.engine, device=model.device,
                              precision=model.precision, config=config, incremental=model.incremental,
                              model_options=tuple(sorted(model.options().items())))

    # -- what the driver may ask without building anything: the registry's traits -------
    def traits(self) -> dict:
        """What the method declared at registration (:func:`stl.proposals.method_traits`) and
        whether it takes a ``config`` (:func:`stl.proposals.method_options`)."""
        from ..proposals import method_options, method_traits

        self.import_modules()
        return dict(method_traits(self.name), takes_config="config" in method_options(self.name))

    @property
    def uses_classifier(self) -> bool:
        return self.traits()["uses_classifier"]

    def import_modules(self):
        for m in self.modules:
            importlib.import_module(m)

    # -- building (on the worker) --------------------------------------------------------
    def build_classifier(self):
        from ..core.config import STLConfig
        from ..models.spec import ModelSpec

        config = self.config or STLConfig()
        spec = ModelSpec(name=self.model, engine=self.engine, device=self.device, precision=self.precision,
                         incremental=self.incremental, **dict(self.model_options))
        return spec.build(mean_mode=config.caffe_mean)

    def build(self, classifier_cache: Optional[dict] = None):
        """The method; its classifier is taken from / put into ``classifier_cache`` (keyed by model)."""
        from ..proposals import build_method

        traits = self.traits()
        if not traits["uses_classifier"]:
            return build_method(self.name, **dict(self.options))
        key = (self.model, self.engine, self.device, self.precision, self.incremental,
               getattr(self.config, "caffe_mean", None), self.model_options)
        cache = classifier_cache if classifier_cache is not None else {}
        if key not in cache:
            cache[key] = self.build_classifier()
            log.info("classifier: %s", cache[key].describe() if hasattr(cache[key], "describe") else key)
        opts = dict(self.options, classifier=cache[key])
        if self.config is not None and traits["takes_config"]:
            opts["config"] = self.config
        return build_method(self.name, **opts)


def is_spec(method) -> bool:
    return isinstance(method, MethodSpec)


# ----------------------------------------------------------------------------- interface
class Executor:
    """Computes chunks of images for :func:`stl.runner.run_method` (which stores them).

    Life cycle, per method::

        info = ex.start(method, method_name, model)   # {"meta": method_meta(...), "needs_label": bool}
        err = ex.check_labels(record)                  # None, or why the classifier cannot take the labels
        for entries, failures in ex.imap(dataset, chunks, max_windows):
            ...                                        # results in completion order
        ex.close()                                     # always (also after Ctrl-C)

    ``shutdown()`` releases what outlives one method (a local Ray instance).
    """

    name = "executor"
    #: does it run a live method object in this process (True), or build a MethodSpec on workers?
    builds_locally = True

    def start(self, method, method_name: Optional[str] = None, model=None) -> dict:
        raise NotImplementedError

    def check_labels(self, record) -> Optional[str]:
        return None

    def imap(self, dataset, chunks: Sequence[Sequence[str]], max_windows: int,
             on_entry: Optional[Callable[[tuple], None]] = None) -> Iterator[ChunkResult]:
        """Compute ``chunks``; yield each finished chunk's (entries, failures) in completion order.

        ``on_entry((image_id, boxes, scores, attrs))``: an executor that can (``local``) hands
        over each image the moment it is finished (such entries are not yielded again), so the
        runner stores it at once; one that cannot (``ray``: the images come back per chunk)
        ignores it.
        """
        raise NotImplementedError

    def status(self) -> str:
        """A short status for the progress bar (workers, restarts)."""
        return ""

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        pass

    def shutdown(self) -> None:
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


def label_error(method, record) -> Optional[str]:
    """Why ``method``'s classifier cannot take ``record``'s labels (STL-CL), or None."""
    clf = getattr(method, "classifier", None)
    if clf is None or not hasattr(clf, "classes"):
        return None
    try:
        for lab in record.labels:
            clf.classes.index(lab)
    except (KeyError, ValueError) as e:
        return (f"{getattr(method, 'name', 'method')} needs class labels the classifier knows; "
                f"image {record.image_id} has {record.labels} ({e})")
    return None


def method_info(method, method_name=None, model=None) -> dict:
    from .compute import method_meta

    return {"meta": method_meta(method, method_name, model), "needs_label": bool(method.needs_label)}


# ----------------------------------------------------------------------------- command line
def method_for(executor: Executor, name: str, model, config, build_local):
    """What ``run_method`` gets for method ``name``: ``build_local()`` for the local executor,
    a :class:`MethodSpec` (built by each worker, classifier from the
    :class:`stl.models.spec.ModelSpec` ``model``) otherwise."""
    return build_local() if executor.builds_locally else MethodSpec.from_model_spec(name, model, config)


__all__ = ["Executor", "MethodSpec", "ChunkResult", "EXECUTORS", "method_for", "is_spec", "label_error",
           "method_info"]
