"""The per-class linear SVM and its C selection, as one scikit-learn pipeline.

``Pipeline(Normalizer, LinearSVC)``: the feature normalisation (``SVMConfig.normalize``:
L2, L1 or none) then ``LinearSVC`` (liblinear): L2 regularisation, hinge loss solved in
the dual, intercept, balanced class weights -- the authors' ``DetectorLinearSVM``
(``detector.py`` in lorisbaz/self-taught_localization). C is chosen from ``c_grid`` by
``GridSearchCV(scoring="average_precision", cv=StratifiedKFold(shuffle, seed))``: the
mean average precision of the held-out folds (sklearn's ``average_precision_score``,
the authors' choice; the VOC 11-point AP is used only for the final test evaluation),
refit on all examples. Ties go to the first C of the grid reaching the best mean AP
(GridSearchCV ranks ties equally and takes the first). Folds are stratified (the authors
used plain shuffled KFold; stratifying keeps positives in every fold when they are few).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Dict

import numpy as np

from .config import SVMConfig


def normalize_features(x: np.ndarray, norm: str) -> np.ndarray:
    """The pipeline's normalisation applied outside it (scoring stored detectors):
    each row divided by its ``norm`` ("l2", "l1"; "none": unchanged); zero rows stay zero."""
    x = np.asarray(x, np.float32)
    if norm == "none":
        return x
    from sklearn.preprocessing import normalize

    return normalize(x, norm=norm)


def build_svm(c: float, cfg: SVMConfig, seed: int = 0):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=float(c), loss=cfg.loss, dual=True, tol=cfg.tol, fit_intercept=True, intercept_scaling=1.0,
                     class_weight="balanced" if cfg.class_weight == "balanced" else None, max_iter=cfg.max_iter,
                     random_state=seed)


def build_pipeline(c: float, cfg: SVMConfig, seed: int = 0):
    """``Pipeline([("normalize", Normalizer(cfg.normalize)), ("svm", LinearSVC(C=c, ...))])``
    (no normaliser when ``cfg.normalize == "none"``)."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import Normalizer

    steps = [] if cfg.normalize == "none" else [("normalize", Normalizer(norm=cfg.normalize))]
    return Pipeline(steps + [("svm", build_svm(c, cfg, seed))])


def _fit_quiet(estimator, x, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(x, y)
    return estimator


@dataclass
class CSelection:
    c: float
    cv_ap: Dict[float, float] = field(default_factory=dict)
    folds: int = 0
    #: the pipeline refit on all examples with the chosen C
    estimator: object = None


def select_c(x: np.ndarray, y: np.ndarray, cfg: SVMConfig, seed: int = 0) -> CSelection:
    """Pick C from ``cfg.c_grid`` by cross-validated AP (GridSearchCV; first best wins) and
    refit the pipeline on everything.

    Folds = min(cfg.folds, #positives, #negatives); with fewer than 2 (or a one-value
    grid) it cannot cross-validate and fits ``cfg.default_c`` (or the grid's one C).
    """
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    x = np.asarray(x, np.float32)
    y = np.where(np.asarray(y) > 0, 1, -1)
    npos, nneg = int((y > 0).sum()), int((y <= 0).sum())
    folds = min(cfg.folds, npos, nneg)
    if folds < 2 or len(cfg.c_grid) == 1:
        c = float(cfg.c_grid[0] if len(cfg.c_grid) == 1 else cfg.default_c)
        return CSelection(c, {}, 0, _fit_quiet(build_pipeline(c, cfg, seed), x, y))
    grid = [float(c) for c in cfg.c_grid]
    search = GridSearchCV(build_pipeline(grid[0], cfg, seed), {"svm__C": grid}, scoring="average_precision",
                          cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed), refit=True,
                          error_score="raise")
    _fit_quiet(search, x, y)
    cv = {float(c): float(ap) for c, ap in zip(search.cv_results_["param_svm__C"],
                                               search.cv_results_["mean_test_score"])}
    return CSelection(float(search.best_params_["svm__C"]), cv, folds, search.best_estimator_)


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
    y = np.where(np.asarray(y) > 0, 1, -1)
    if (y > 0).sum() == 0 or (y < 0).sum() == 0:
        raise ValueError(f"an SVM needs positives and negatives (got {(y > 0).sum()} / {(y < 0).sum()})")
    sel = select_c(x, y, cfg, seed)
    svm = sel.estimator.named_steps["svm"]
    return LinearModel(svm.coef_.ravel().astype(np.float32), float(svm.intercept_[0]), sel.c, cfg.normalize,
                       sel.cv_ap, int((y > 0).sum()), int((y < 0).sum()))
