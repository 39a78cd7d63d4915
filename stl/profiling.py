"""Where STL's time goes: named stages with exclusive wall-clock seconds (``stl bench``).

A :class:`Stages` collector is made current with ``with Stages() as st: ...``; inside it,
``with stage("crop preprocessing"): ...`` adds the seconds spent in that block to
``st.seconds["crop preprocessing"]``. Stages nest and are *exclusive*: a block's time is
counted once, in the innermost open stage (``masked forwards`` does not include the
``mask images`` built inside it). Outside a collector, :func:`stage` costs one context-variable
read. Used by :mod:`stl.core.localization` and the classifier base class
(:mod:`stl.models.base`); a utility module, importing nothing from the package.
"""
from __future__ import annotations

import contextlib
import contextvars
import time
from collections import defaultdict
from typing import Dict, Optional

#: the stages STL reports, in pipeline order (``stl bench`` prints them in this order)
STAGES = ("segmentation", "mask images", "crop preprocessing", "full-image forwards", "masked forwards",
          "crop forwards", "clustering", "nms + pooling", "storage")

_CURRENT: contextvars.ContextVar[Optional["Stages"]] = contextvars.ContextVar("stl_stages", default=None)


class Stages:
    """Exclusive seconds and item counts per stage name."""

    def __init__(self):
        self.seconds: Dict[str, float] = defaultdict(float)
        self.counts: Dict[str, int] = defaultdict(int)
        self._stack = []  # [name, start, child seconds]
        self._token = None

    def __enter__(self) -> "Stages":
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc) -> None:
        _CURRENT.reset(self._token)

    def total(self) -> float:
        return float(sum(self.seconds.values()))

    def as_dict(self) -> Dict[str, float]:
        names = list(STAGES) + sorted(set(self.seconds) - set(STAGES))
        return {n: float(self.seconds.get(n, 0.0)) for n in names}


@contextlib.contextmanager
def stage(name: str, count: int = 0):
    """Time the block as stage ``name`` in the current :class:`Stages` (if any); ``count``
    items (e.g. forwards) are added to its count."""
    st = _CURRENT.get()
    if st is None:
        yield
        return
    frame = [name, time.perf_counter(), 0.0]
    st._stack.append(frame)
    try:
        yield
    finally:
        st._stack.pop()
        elapsed = time.perf_counter() - frame[1]
        st.seconds[name] += elapsed - frame[2]
        st.counts[name] += count
        if st._stack:
            st._stack[-1][2] += elapsed
