"""Evaluation of ranked windows: the paper's Fig. 3 protocol.

* :func:`match_windows` -- greedy PASCAL matching of one image's windows;
* :func:`evaluate` -- mean per-class recall / precision at N windows and the
  top-1 hit rate over a dataset, under an :class:`EvalProtocol` (presets
  :data:`EVAL_PROFILES`: ``"authors"``, the default, and ``"corrected"``);
* :mod:`.reference` -- the paper's published curves;
* :mod:`.report` -- ours-vs-paper and all-methods tables.
"""
from .matching import FP, IGNORED, RULES, TP, hits_any, match_windows  # noqa: F401
from .protocol import EVAL_PROFILES, EvalProtocol, EvalResult, eval_protocol, evaluate  # noqa: F401
from .reference import load_paper_reference, method_code, paper_curves, paper_value  # noqa: F401

__all__ = ["FP", "IGNORED", "RULES", "TP", "hits_any", "match_windows", "EVAL_PROFILES", "EvalProtocol",
           "EvalResult", "eval_protocol", "evaluate",
           "load_paper_reference", "method_code", "paper_curves", "paper_value"]
