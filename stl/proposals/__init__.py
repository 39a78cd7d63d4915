"""Registry of window-proposal methods (everything Fig. 3 compares).

A method turns an image into ranked windows: ``propose(image, labels=None) ->
(boxes, scores)`` with boxes in original-image pixels (pixel-inclusive
``[x0, y0, x1, y1]``) sorted best first. Build one with
``build_method(name, classifier=..., **options)``; add one with
``@register_method(name)``. ``propose_batch`` lets a method share work across
images (STL batches classifier forwards across them).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..core.boxes import sort_by_score
from ..registry import Registry

#: method name -> factory(**options) -> ProposalMethod
METHODS: Registry = Registry("proposal method", builtin=tuple(
    f"{__name__}.{m}" for m in ("stl_methods", "opencv_methods", "cnn_baselines", "precomputed", "fusion")))


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
    """Decorator (or ``register_method(name)(factory)``): add a method to :data:`METHODS`."""
    return METHODS.register(name)


def available_methods() -> List[str]:
    return METHODS.names()


def build_method(name: str, **options) -> ProposalMethod:
    """Build a registered method. Common options: ``classifier`` (a
    :class:`stl.modeling.Classifier`, for STL and the CNN baselines), ``config``
    (an :class:`stl.config.STLConfig`)."""
    return METHODS.get(name)(**options)


def build_run_method(name, get_classifier, config=None):
    """Build a registered method; give it the classifier (and STL methods the STLConfig)
    only if it needs one."""
    try:
        m = build_method(name)
        if not getattr(m, "uses_classifier", False):
            return m
    except (ValueError, TypeError):
        pass
    if config is not None and name.upper().startswith("STL"):
        return build_method(name, classifier=get_classifier(), config=config)
    return build_method(name, classifier=get_classifier())


def ranked(boxes, scores) -> Tuple[np.ndarray, np.ndarray]:
    """Sort (boxes, scores) best first, deterministically."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = sort_by_score(scores)
    return boxes[order], scores[order]

