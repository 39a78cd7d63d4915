"""The per-class linear SVM and its C selection.

``LinearSVC`` (liblinear): L2 regularisation, hinge loss solved in the dual,
intercept, balanced class weights -- the authors' ``DetectorLinearSVM``
(``detector.py`` in lorisbaz/self-taught_localization). C is chosen from a
grid by k-fold cross-validation maximising the mean average precision of the
held-out folds (sklearn's ``average_precision_score``, the authors' choice;
the VOC 11-point AP is used only for the final test evaluation). The first C
reaching the best mean AP wins (so ties go to the smaller C). Folds are
stratified and shuffled with a fixed seed (the authors used plain shuffled
KFold; stratifying keeps positives in every fold when they are few).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np

from .config import SVMConfig


def normalize_features(x: np.ndarray, norm: str) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if norm == "none":
        return x
    ord_ = 2 if norm == "l2" else 1
    n = np.linalg.norm(x, ord=ord_, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def build_svm(c: float, cfg: SVMConfig, seed: int = 0):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=float(c), loss=cfg.loss, dual=True, tol=cfg.tol, fit_intercept=True, intercept_scaling=1.0,
                     class_weight="balanced" if cfg.class_weight == "balanced" else None, max_iter=cfg.max_iter,
                     random_state=seed)


def _fit_quiet(svm, x, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm.fit(x, y)
    return svm


def cross_validated_ap(x: np.ndarray, y: np.ndarray, c: float, cfg: SVMConfig, folds: int, seed: int = 0) -> float:
    """Mean held-out average precision of ``folds``-fold stratified CV at one C."""
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    aps = []
    for tr, te in skf.split(x, y):
        svm = _fit_quiet(build_svm(c, cfg, seed), x[tr], y[tr])
        aps.append(average_precision_score(y[te] > 0, svm.decision_function(x[te])))
    return float(np.mean(aps))


@dataclass
class CSelection:
    c: float
    cv_ap: Dict[float, float] = field(default_factory=dict)
    folds: int = 0


def select_c(x: np.ndarray, y: np.ndarray, cfg: SVMConfig, seed: int = 0) -> CSelection:
    """Pick C from ``cfg.c_grid`` by cross-validated AP (first best wins).

    Folds = min(cfg.folds, #positives, #negatives); with fewer than 2 it cannot
    cross-validate and returns ``cfg.default_c``.
    """
    y = np.asarray(y)
    npos, nneg = int((y > 0).sum()), int((y <= 0).sum())
    folds = min(cfg.folds, npos, nneg)
    if folds < 2 or len(cfg.c_grid) == 1:
        c = cfg.c_grid[0] if len(cfg.c_grid) == 1 else cfg.default_c
        return CSelection(float(c), {}, 0)
    cv = {}
    best_c, best_ap = None, -np.inf
    for c in cfg.c_grid:
        ap = cross_validated_ap(x, y, c, cfg, folds, seed)
        cv[float(c)] = ap
        if ap > best_ap + 1e-12:
            best_c, best_ap = float(c), ap
    return CSelection(best_c, cv, folds)


@dataclass
class LinearModel:
    """w, b of one class's detector; ``score(x) = normalize(x) @ w + b``."""

    w: np.ndarray
    b: float
    c: float
    normalize: str = "none"
    cv_ap: Dict[float, float] = field(default_factory=dict)
    num_positives: int = 0
    num_negatives: int = 0

    def score(self, x: np.ndarray) -> np.ndarray:
        return normalize_features(x, self.normalize) @ self.w + self.b


def train_svm(x: np.ndarray, y: np.ndarray, cfg: SVMConfig, seed: int = 0) -> LinearModel:
    """Select C by CV, refit on everything, return the linear model. ``y`` in {+1, -1}."""
    x = normalize_features(x, cfg.normalize)
    y = np.where(np.asarray(y) > 0, 1, -1)
    if (y > 0).sum() == 0 or (y < 0).sum() == 0:
        raise ValueError(f"an SVM needs positives and negatives (got {(y > 0).sum()} / {(y < 0).sum()})")
    sel = select_c(x, y, cfg, seed)
    svm = _fit_quiet(build_svm(sel.c, cfg, seed), x, y)
    return LinearModel(svm.coef_.ravel().astype(np.float32), float(svm.intercept_[0]), sel.c, cfg.normalize,
                       sel.cv_ap, int((y > 0).sum()), int((y < 0).sum()))
