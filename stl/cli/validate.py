"""argparse ``type=`` functions: numeric options are checked when parsed, with a one-line message."""
from __future__ import annotations

import argparse
import math


def _number(text, kind, what):
    try:
        v = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
    return v


def positive_int(text) -> int:
    """An integer >= 1."""
    v = _number(text, int, "must be a whole number >= 1")
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return v


def nonnegative_int(text) -> int:
    """An integer >= 0."""
    v = _number(text, int, "must be a whole number >= 0")
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return v


def unit_interval(text) -> float:
    """A number in (0, 1] (an IoU threshold, a fraction)."""
    v = _number(text, float, "must be a number in (0, 1]")
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}")
    return v


def confidence_level(text) -> float:
    """A number strictly between 0 and 1 (a confidence level, e.g. 0.95)."""
    v = _number(text, float, "must be a number strictly between 0 and 1 (e.g. 0.95)")
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must be a number strictly between 0 and 1 (e.g. 0.95), got {text!r}")
    return v
