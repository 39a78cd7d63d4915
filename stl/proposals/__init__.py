"""Registry of window-proposal methods (everything Fig. 3 compares).

A method turns an image into ranked windows: ``propose(image, labels=None) ->
(boxes, scores)`` with boxes in original-image pixels (pixel-inclusive
``[x0, y0, x1, y1]``) sorted best first. Build one with
``build_method(name, classifier=..., **options)``; add one with
``@register_method(name)``. ``propose_batch`` lets a method share work across
images (STL batches classifier forwards across them).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..boxes import sort_by_score

_METHODS: Dict[str, Callable[..., "ProposalMethod"]] = {}


class ProposalMethod:
    """Base class. Subclasses implement :meth:`propose`."""

    name: str = "method"
    #: does the method need the ground-truth class of the image (STL-CL)?
    needs_label: bool = False
    #: does it run the classifier (then its name goes into stored-run keys)?
    uses_classifier: bool = False

    def propose(self, image: np.ndarray, labels=None) -> Tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def propose_batch(self, images: Sequence[np.ndarray], labels: Optional[Sequence] = None
                      ) -> List[Tuple[np.ndarray, np.ndarray]]:
        labels = labels if labels is not None else [None] * len(images)
        return [self.propose(im, lab) for im, lab in zip(images, labels)]

    def describe(self) -> str:
        return self.name


def register_method(name: str):
    def deco(factory):
        if name in _METHODS:
            raise KeyError(f"proposal method {name!r} registered twice")
        _METHODS[name] = factory
        return factory

    return deco


def available_methods() -> List[str]:
    _load_builtin()
    return sorted(_METHODS)


def build_method(name: str, **options) -> ProposalMethod:
    """Build a registered method. Common options: ``classifier`` (a
    :class:`stl.modeling.Classifier`, for STL and the CNN baselines), ``config``
    (an :class:`stl.config.STLConfig`)."""
    _load_builtin()
    key = name.upper()
    if key not in _METHODS:
        raise KeyError(f"unknown proposal method {name!r}; known: {', '.join(sorted(_METHODS))}")
    return _METHODS[key](**options)


def ranked(boxes, scores) -> Tuple[np.ndarray, np.ndarray]:
    """Sort (boxes, scores) best first, deterministically."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = sort_by_score(scores)
    return boxes[order], scores[order]


_LOADED = False


def _load_builtin():
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib

    for mod in ("stl_methods", "opencv_methods", "cnn_baselines", "precomputed", "fusion", "stlplus"):
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise
