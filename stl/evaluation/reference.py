"""The paper's published curves (experiments/reference/paper_reference.json).

The JSON is the authors' plotted values (lorisbaz/self-taught_localization,
utils_generate_figures_paper), carried verbatim from ``../shared/reference``.
``curves["<DATASET>/mean_recall"]`` is a list of ``{"method": code,
"num_bboxes": [...], "values": [...]}``; method codes map to our method
names through ``method_names`` (OBFSgt = STL-CL, OBFStopC = STL-WL, SS =
SELSEARCH, ...). Dataset keys: ILSVRC2012_200rnd_VAL, ILSVRC2012_1000_VAL,
PASCAL2007_TEST, PASCAL2007_TRAINVAL, ...
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from .. import resources

DEFAULT_PATH = resources.path(*resources.PAPER_REFERENCE)


def reference_path() -> Path:
    return Path(os.environ.get("STL_PAPER_REFERENCE") or DEFAULT_PATH)


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    return json.loads(Path(path).read_text())


def load_paper_reference(path=None) -> dict:
    """The whole reference JSON ($STL_PAPER_REFERENCE overrides the path)."""
    p = Path(path) if path else reference_path()
    if not p.exists():
        raise FileNotFoundError(f"paper reference {p} not found (set STL_PAPER_REFERENCE)")
    from ..errors import CorruptFileError

    try:
        ref = _load(str(p))
    except (ValueError, UnicodeDecodeError) as e:  # not JSON / not text
        raise CorruptFileError(p, f"{p}: not a paper reference JSON ({type(e).__name__}: {e}); "
                                  f"check STL_PAPER_REFERENCE") from None
    missing = [k for k in ("method_names", "curves") if not isinstance(ref, dict) or k not in ref]
    if missing:
        raise CorruptFileError(p, f"{p}: not a paper reference JSON (no {', '.join(missing)}); "
                                  f"check STL_PAPER_REFERENCE")
    return ref


def method_code(method: str, ref: Optional[dict] = None) -> Optional[str]:
    """The authors' code for one of our method names (STL-WL -> OBFStopC), or None."""
    ref = ref or load_paper_reference()
    for code, name in ref["method_names"].items():
        if name.upper() == method.upper():
            return code
    return method if method in ref.get("method_legends", {}) else None


def paper_curves(dataset_key: str, ref: Optional[dict] = None) -> Dict[str, Dict[str, dict]]:
    """``{our method name: {"recall": {"num_windows": array, "values": array}, "precision": {...}}}``
    of one dataset key (e.g. ``ILSVRC2012_200rnd_VAL``); empty if the paper has none."""
    ref = ref or load_paper_reference()
    out: Dict[str, Dict[str, dict]] = {}
    for metric in ("recall", "precision"):
        for c in ref["curves"].get(f"{dataset_key}/mean_{metric}", []):
            name = ref["method_names"].get(c["method"], c["method"])
            out.setdefault(name, {})[metric] = {"num_windows": np.asarray(c["num_bboxes"], np.int64),
                                                "values": np.asarray(c["values"], np.float64),
                                                "code": c["method"]}
    return out


#: ``X-PUBLISHED`` (the boxes of method X published by Hosang et al., read from files) is
#: compared with the paper's curve of X.
PUBLISHED_SUFFIX = "-PUBLISHED"


def paper_method(method: str) -> str:
    """The paper's name for one of our methods (``EDGEBOXES-PUBLISHED`` -> ``EDGEBOXES``)."""
    return method[:-len(PUBLISHED_SUFFIX)] if method.endswith(PUBLISHED_SUFFIX) else method


def paper_value(dataset_key: str, method: str, metric: str, n: int, ref: Optional[dict] = None) -> float:
    """The paper's mean recall/precision of ``method`` at N windows, NaN if not published."""
    curve = paper_curves(dataset_key, ref).get(paper_method(method), {}).get(metric)
    if curve is None:
        return float("nan")
    hit = np.flatnonzero(curve["num_windows"] == int(n))
    return float(curve["values"][hit[0]]) if len(hit) else float("nan")
