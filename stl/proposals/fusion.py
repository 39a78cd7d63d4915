"""Fusions of two methods: STL-WL+MCG and STL-WL+EDGEBOXES (Sec. 4.1, Fig. 3).

The paper combines STL, best for few windows, with a low-level method, best for
many: the top-``k`` (10) windows of STL-WL followed by the windows of the other
method, in their own order. Nothing is de-duplicated. Scores are the descending
ranks ``K, K-1, ..., 1`` of the concatenated list, so ``ranked()`` keeps the order.

``fusion(first, second, k=10, **options)`` builds any pair; ``options`` go to
both methods (each ignores what it does not know), ``first_options`` /
``second_options`` to one only. A fusion needs the image id when either part
does (e.g. STL-WL+MCG): call ``propose(image, labels, image_id=...)`` /
``propose_batch(images, labels, image_ids=[...])``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from . import ProposalMethod, build_method, register_method


def _call(method: ProposalMethod, image, label, image_id):
    if getattr(method, "needs_image_id", False):
        return method.propose(image, label, image_id=image_id)
    return method.propose(image, label)


def _call_batch(method: ProposalMethod, images, labels, image_ids):
    if getattr(method, "needs_image_id", False):
        return method.propose_batch(images, labels, image_ids=image_ids)
    return method.propose_batch(images, labels)


class FusionMethod(ProposalMethod):
    """Top-``k`` windows of ``first`` followed by all windows of ``second``."""

    def __init__(self, first: ProposalMethod, second: ProposalMethod, k: int = 10, name: Optional[str] = None):
        self.first, self.second, self.k = first, second, int(k)
        self.name = name or f"{first.name}+{second.name}"
        self.needs_label = bool(first.needs_label or second.needs_label)
        self.uses_classifier = bool(first.uses_classifier or second.uses_classifier)
        self.needs_image_id = bool(getattr(first, "needs_image_id", False) or getattr(second, "needs_image_id", False))

    def describe(self) -> str:
        return f"{self.name} (top-{self.k} of {self.first.describe()}, then {self.second.describe()})"

    def combine(self, a, b):
        boxes = np.concatenate([np.asarray(a[0], np.float64).reshape(-1, 4)[:self.k],
                                np.asarray(b[0], np.float64).reshape(-1, 4)])
        return boxes, np.arange(len(boxes), 0, -1, dtype=np.float64)

    def propose(self, image, labels=None, image_id=None):
        return self.combine(_call(self.first, image, labels, image_id), _call(self.second, image, labels, image_id))

    def propose_batch(self, images: Sequence, labels: Optional[Sequence] = None,
                      image_ids: Optional[Sequence] = None) -> List:
        labels = labels if labels is not None else [None] * len(images)
        image_ids = image_ids if image_ids is not None else [None] * len(images)
        firsts = _call_batch(self.first, images, labels, image_ids)
        seconds = _call_batch(self.second, images, labels, image_ids)
        return [self.combine(a, b) for a, b in zip(firsts, seconds)]


def fusion(first: str, second: str, k: int = 10, first_options: Optional[dict] = None,
           second_options: Optional[dict] = None, name: Optional[str] = None, **options) -> FusionMethod:
    """Build the fusion of two registered methods (top-``k`` of ``first``, then ``second``)."""
    a = build_method(first, **{**options, **(first_options or {})})
    b = build_method(second, **{**options, **(second_options or {})})
    return FusionMethod(a, b, k=k, name=name or f"{first.upper()}+{second.upper()}")


@register_method("STL-WL+MCG")
def _stl_wl_mcg(**options):
    """STL-WL+MCG of Fig. 3: the top-10 STL-WL windows, then MCG's."""
    return fusion("STL-WL", "MCG", **options)


@register_method("STL-WL+EDGEBOXES")
def _stl_wl_edgeboxes(**options):
    """STL-WL+EDGEBOXES of Fig. 3: the top-10 STL-WL windows, then EdgeBoxes'."""
    return fusion("STL-WL", "EDGEBOXES", **options)
