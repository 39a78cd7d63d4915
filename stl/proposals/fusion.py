"""Fusions of two methods: STL-WL+MCG and STL-WL+EDGEBOXES (Sec. 4.1, Fig. 3).

The paper combines STL, best for few windows, with a low-level method, best for
many: the top-``k`` (10) windows of STL-WL followed by the windows of the other
method, in their own order. Nothing is de-duplicated. Scores are the descending
ranks ``K, K-1, ..., 1`` of the concatenated list, so ``ranked()`` keeps the order.

``fusion(first, second, k=10, **options)`` builds any pair; each of ``options`` goes
to the part(s) that take it (an option neither takes is an error naming the valid
ones), ``first_options`` / ``second_options`` to one only. A fusion declares the
traits of its parts: it needs the image id when either part does (STL-WL+MCG).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from . import ProposalMethod, build_method, method_options, method_traits, propose_batch, register_method
from ..registry import check_options

#: options of the fusion itself (besides those of its parts)
OWN_OPTIONS = ("k", "first_options", "second_options", "name")


class FusionMethod(ProposalMethod):
    """Top-``k`` windows of ``first`` followed by all windows of ``second``."""

    def __init__(self, first: ProposalMethod, second: ProposalMethod, k: int = 10, name: Optional[str] = None):
        self.first, self.second, self.k = first, second, int(k)
        self.name = name or f"{first.name}+{second.name}"
        self.needs_label = bool(first.needs_label or second.needs_label)
        self.uses_classifier = bool(first.uses_classifier or second.uses_classifier)
        self.needs_image_id = bool(first.needs_image_id or second.needs_image_id)

    def describe(self) -> str:
        return f"{self.name} (top-{self.k} of {self.first.describe()}, then {self.second.describe()})"

    def combine(self, a, b):
        boxes = np.concatenate([np.asarray(a[0], np.float64).reshape(-1, 4)[:self.k],
                                np.asarray(b[0], np.float64).reshape(-1, 4)])
        return boxes, np.arange(len(boxes), 0, -1, dtype=np.float64)

    def propose(self, image, labels=None, image_id=None):
        return self.combine(self.first.propose(image, labels, image_id=image_id),
                            self.second.propose(image, labels, image_id=image_id))

    def propose_batch(self, images: Sequence, labels: Optional[Sequence] = None,
                      image_ids: Optional[Sequence] = None, on_done=None) -> List:
        firsts = self.first.propose_batch(images, labels, image_ids=image_ids)
        done = None if on_done is None else (lambda i, b: on_done(i, self.combine(firsts[i], b)))
        seconds = propose_batch(self.second, images, labels, image_ids=image_ids, on_done=done)
        return [self.combine(a, b) for a, b in zip(firsts, seconds)]


def fusion(first: str, second: str, k: int = 10, first_options: Optional[dict] = None,
           second_options: Optional[dict] = None, name: Optional[str] = None, **options) -> FusionMethod:
    """Build the fusion of two registered methods (top-``k`` of ``first``, then ``second``)."""
    va, vb = method_options(first), method_options(second)
    check_options(f"fusion {first}+{second}", options, set(va) | set(vb))
    a = build_method(first, **{**{o: v for o, v in options.items() if o in va}, **(first_options or {})})
    b = build_method(second, **{**{o: v for o, v in options.items() if o in vb}, **(second_options or {})})
    return FusionMethod(a, b, k=k, name=name or f"{first.upper()}+{second.upper()}")


def register_fusion(first: str, second: str, name: Optional[str] = None):
    """Register ``FIRST+SECOND`` (its traits: those of either part; its options: ``k``,
    ``first_options``, ``second_options`` and every option of either part)."""
    name = name or f"{first}+{second}"

    def options():
        return tuple(sorted(set(OWN_OPTIONS) | set(method_options(first)) | set(method_options(second))))

    def factory(**opts):
        return fusion(first, second, **{"name": name, **opts})

    factory.__doc__ = f"{name} of Fig. 3: the top-k (10) {first} windows, then {second}'s."
    register_method(name, options=options, **_traits_now(first, second))(factory)
    return factory


def _traits_now(first, second):
    # the parts are registered before this module (registry order), so their traits are known
    a, b = method_traits(first), method_traits(second)
    return {t: a[t] or b[t] for t in a}


register_fusion("STL-WL", "MCG")
register_fusion("STL-WL", "EDGEBOXES")
