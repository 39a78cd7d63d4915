"""R-CNN-style detectors trained on the boxes of a positive-box method
(Sec. 4 of the paper; Tables 1, 2 and Fig. 6).

A *pair* ``POS+NEG`` names the method whose top-K windows are the positives
(``STLCL``, ``BING``, ... or ``GROUNDTRUTH``) and the method whose windows
give the negatives and are scored at test time (``SELSEARCH``, ``STLWL``, ...).
For each class of the split:

1. positives: top-K windows of POS on each positive training image (GT boxes
   for GROUNDTRUTH); negatives: NEG windows of the positive images overlapping
   every positive window by < 30%, plus one random NEG window of each negative
   image (seeded);
2. ``iterations`` times: a linear SVM (C by 5-fold CV maximising AP), then --
   except after the last -- hard-negative mining adds each negative image's
   highest-scoring window not yet among its negatives;
3. test: every NEG window of every test image is scored, sorted, NMS at 0.7,
   and AP (VOC 2007 11-point, IoU >= 0.5) is computed per class; mAP over classes.

Everything resumes: proposals come from the runner's stored runs, window
features from the :class:`~stl.detection.features.FeatureStore`, and each
pair keeps its trained models per iteration (``iterN.npz`` + negative
selections) and its result (``result.json``) under
``<work>/<config fingerprint>/pairs/<pair>/``.
"""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..core.boxes import nms
from ..io import atomic_path, write_json_atomic
from .config import DetectionConfig
from .data import DetectionSplit
from .evaluation import average_precision, mean_ap
from .features import FeatureStore, pixel_boxes
from .proposals import GROUNDTRUTH, MethodUnavailable, ProposalProvider, ground_truth_positives
from .sampling import mine_hard_negatives, negatives_from_positive_image, random_negatives, stable_seed
from .svm import LinearModel, normalize_features, train_svm

log = logging.getLogger(__name__)

#: table tokens -> registry method names
TOKENS = {"STLCL": "STL-CL", "STLWL": "STL-WL", "SELSEARCH": "SELSEARCH", "SS": "SELSEARCH", "BING": "BING",
          "EDGEBOXES": "EDGEBOXES", "MCG": "MCG", "GROUNDTRUTH": GROUNDTRUTH, "GT": GROUNDTRUTH}


@dataclass(frozen=True)
class PairSpec:
    positive: str  # registry name or GROUNDTRUTH
    negative: str  # registry name
    top_k: Optional[int] = None  # None: the config's positive_top_k
    label: str = ""

    @classmethod
    def parse(cls, text: str) -> "PairSpec":
        """``"STLCL+STLWL"``, ``"STLCL(top-1)+SELSEARCH"``, ``"GROUNDTRUTH+SELSEARCH"``."""
        m = re.fullmatch(r"\s*([A-Za-z\-]+)\s*(?:\(top-(\d+)\))?\s*\+\s*([A-Za-z\-]+)\s*", text)
        if not m:
            raise ValueError(f"pair must look like POS+NEG or POS(top-K)+NEG, not {text!r}")
        pos, k, neg = m.group(1).upper(), m.group(2), m.group(3).upper()
        pos = TOKENS.get(pos.replace("-", ""), pos)
        neg = TOKENS.get(neg.replace("-", ""), neg)
        if neg == GROUNDTRUTH:
            raise ValueError("GROUNDTRUTH can only be the positive-box method")
        return cls(pos, neg, int(k) if k else None, text.strip())

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        tok = {v: k for k, v in TOKENS.items() if k not in ("SS", "GT")}
        k = f"(top-{self.top_k})" if self.top_k is not None else ""
        return f"{tok.get(self.positive, self.positive)}{k}+{tok.get(self.negative, self.negative)}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9+\-]+", "_", self.name).strip("_")


@dataclass
class PairResult:
    pair: str
    status: str  # "ok" | "not run"
    reason: str = ""
    aps: Dict[str, float] = field(default_factory=dict)
    mean_ap: float = float("nan")
    details: Dict[str, dict] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"pair": self.pair, "status": self.status, "reason": self.reason, "mean_ap": self.mean_ap,
                "aps": self.aps, "details": self.details, "info": self.info}

    @classmethod
    def from_dict(cls, d: dict) -> "PairResult":
        return cls(d["pair"], d["status"], d.get("reason", ""), {k: float(v) for k, v in d.get("aps", {}).items()},
                   float(d.get("mean_ap", float("nan"))), d.get("details", {}), d.get("info", {}))


def _dedup_rows(boxes: np.ndarray) -> np.ndarray:
    """First occurrence of each row, order kept."""
    if len(boxes) == 0:
        return boxes
    _, first = np.unique(boxes, axis=0, return_index=True)
    return boxes[np.sort(first)]


class DetectionExperiment:
    """Runs pairs on one split with one feature store and proposal provider."""

    def __init__(self, config: DetectionConfig, split: DetectionSplit, provider: ProposalProvider,
                 store: FeatureStore, work_dir, progress: bool = True):
        self.cfg = config
        self.split = split
        self.provider = provider
        self.store = store
        self.work_dir = Path(work_dir)
        self.progress = progress
        self._train_windows: Dict[str, Dict[str, np.ndarray]] = {}
        self._test_windows: Dict[str, Dict[str, np.ndarray]] = {}

    # -- windows -----------------------------------------------------------------
    def _capped_pixel_windows(self, method: str, dataset, ids) -> Dict[str, np.ndarray]:
        raw = self.provider.windows(method, dataset, ids)
        out = {}
        for i in ids:
            boxes, _ = raw[i]
            rec = dataset.record(i)
            out[i] = _dedup_rows(pixel_boxes(np.asarray(boxes)[:self.cfg.max_windows_per_image], rec.size))
        return out

    def train_windows(self, method: str) -> Dict[str, np.ndarray]:
        if method not in self._train_windows:
            self._train_windows[method] = self._capped_pixel_windows(method, self.split.train, self.split.train_ids)
        return self._train_windows[method]

    def test_windows(self, method: str) -> Dict[str, np.ndarray]:
        if method not in self._test_windows:
            self._test_windows[method] = self._capped_pixel_windows(method, self.split.test, self.split.test_ids)
        return self._test_windows[method]

    def positive_windows(self, spec: PairSpec) -> Dict[str, Dict[str, np.ndarray]]:
        """class -> positive image -> whole-pixel positive boxes."""
        k = spec.top_k or self.cfg.positive_top_k
        out: Dict[str, Dict[str, np.ndarray]] = {}
        if spec.positive == GROUNDTRUTH:
            for c in self.split.classes:
                out[c] = {}
                for i in self.split.positives[c]:
                    rec = self.split.train.record(i)
                    out[c][i] = _dedup_rows(pixel_boxes(ground_truth_positives(rec, c), rec.size))
            return out
        ids = list(dict.fromkeys(i for c in self.split.classes for i in self.split.positives[c]))
        raw = self.provider.windows(spec.positive, self.split.train, ids)
        for c in self.split.classes:
            out[c] = {}
            for i in self.split.positives[c]:
                rec = self.split.train.record(i)
                boxes, _ = raw[i]
                out[c][i] = _dedup_rows(pixel_boxes(np.asarray(boxes)[:k], rec.size))
        return out

    # -- paths -------------------------------------------------------------------
    def pair_dir(self, spec: PairSpec) -> Path:
        return self.work_dir / "pairs" / spec.slug

    # -- the pair ----------------------------------------------------------------
    def run_pair(self, spec: PairSpec, force: bool = False) -> PairResult:
        d = self.pair_dir(spec)
        res_path = d / "result.json"
        if res_path.exists() and not force:
            res = PairResult.from_dict(json.loads(res_path.read_text()))
            if res.status == "ok":
                log.info("%s: stored result %s", spec.name, res_path)
                return res
        try:
            self.provider.check(spec.negative)
            if spec.positive != GROUNDTRUTH:
                self.provider.check(spec.positive)
        except MethodUnavailable as e:
            return PairResult(spec.name, "not run", str(e))
        t0 = time.time()
        try:
            wtrain = self.train_windows(spec.negative)
            wtest = self.test_windows(spec.negative)
            pos = self.positive_windows(spec)
        except MethodUnavailable as e:
            return PairResult(spec.name, "not run", str(e))
        t_prop = time.time() - t0
        self._extract(spec, wtrain, wtest, pos)
        t_feat = time.time() - t0 - t_prop
        models, train_info = self._train(spec, wtrain, pos, d)
        t_train = time.time() - t0 - t_prop - t_feat
        aps, details = self._test(spec, wtest, models)
        t_test = time.time() - t0 - t_prop - t_feat - t_train
        for c, info in train_info.items():
            details.setdefault(c, {}).update(info)
        res = PairResult(spec.name, "ok", "", aps, mean_ap(aps), details, {
            "positive_method": spec.positive, "negative_method": spec.negative,
            "top_k": spec.top_k or self.cfg.positive_top_k, "iterations": self.cfg.iterations,
            "seconds": {"proposals": round(t_prop, 2), "features": round(t_feat, 2), "training": round(t_train, 2),
                        "test": round(t_test, 2)},
            "windows_per_train_image": float(np.mean([len(v) for v in wtrain.values()])) if wtrain else 0.0,
            "windows_per_test_image": float(np.mean([len(v) for v in wtest.values()])) if wtest else 0.0,
            "feature_rate_windows_per_s": self.store.rate if np.isfinite(self.store.rate) else None,
        })
        d.mkdir(parents=True, exist_ok=True)
        write_json_atomic(res_path, res.to_dict())
        return res

    # -- features ------------------------------------------------------------------
    def _extract(self, spec, wtrain, wtest, pos):
        jobs = []
        for i in self.split.train_ids:
            boxes = [wtrain[i]] + [pos[c][i] for c in self.split.classes if i in pos[c]]
            rec = self.split.train.record(i)
            jobs.append((i, np.concatenate(boxes), rec.read))
        for i in self.split.test_ids:
            rec = self.split.test.record(i)
            jobs.append((i, wtest[i], rec.read))
        self.store.extract_all(jobs, progress=self.progress, desc=f"features {spec.name}")

    # -- training ------------------------------------------------------------------
    def _initial_negatives(self, spec, wtrain, pos) -> Dict[str, Dict[str, List[int]]]:
        cfg = self.cfg
        sel: Dict[str, Dict[str, List[int]]] = {}
        for c in self.split.classes:
            sel[c] = {}
            for i in self.split.positives[c]:
                idx = negatives_from_positive_image(wtrain[i], pos[c][i], cfg.negative_overlap,
                                                    cfg.max_negatives_per_positive_image,
                                                    cfg.positive_image_negatives_nms,
                                                    seed=stable_seed(cfg.seed, "pos-neg", c, i))
                if len(idx):
                    sel[c][i] = [int(v) for v in idx]
            for j in self.split.negatives[c]:
                idx = random_negatives(len(wtrain[j]), cfg.random_negatives_per_negative_image,
                                       stable_seed(cfg.seed, "rand-neg", c, j))
                if len(idx):
                    sel[c][j] = [int(v) for v in idx]
        return sel

    def _class_data(self, c, wtrain, pos, sel_c) -> Tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for i in self.split.positives[c]:
            if len(pos[c][i]):
                xs.append(self.store.get(i, pos[c][i]))
                ys.append(np.ones(len(pos[c][i]), np.int8))
        for j, idx in sel_c.items():
            if idx:
                xs.append(self.store.get(j, wtrain[j][np.asarray(sorted(idx))]))
                ys.append(-np.ones(len(idx), np.int8))
        if not xs:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.int8)
        return np.concatenate(xs), np.concatenate(ys)

    def _train(self, spec, wtrain, pos, d: Path):
        from ..progress import progress_bar

        cfg = self.cfg
        sel = None
        models: Dict[str, LinearModel] = {}
        info: Dict[str, dict] = {c: {} for c in self.split.classes}
        start = 0
        # resume from the last finished iteration
        for it in reversed(range(cfg.iterations)):
            f = d / f"iter{it}.npz"
            if f.exists():
                models, sel = _load_iteration(f)
                start = it + 1
                log.info("%s: resuming after iteration %d (%s)", spec.name, it, f)
                break
        if sel is None:
            sel = self._initial_negatives(spec, wtrain, pos)
        for it in range(start, cfg.iterations):
            if it > 0:
                self._mine(spec, wtrain, models, sel, it)
            bar = progress_bar(self.split.classes, desc=f"train {spec.name} it{it + 1}/{cfg.iterations}", unit="cls",
                               enabled=self.progress)
            new_models = {}
            for c in bar:
                x, y = self._class_data(c, wtrain, pos, sel[c])
                npos, nneg = int((y > 0).sum()), int((y < 0).sum())
                if npos == 0 or nneg == 0:
                    info[c]["skipped"] = f"no {'positives' if npos == 0 else 'negatives'} to train on"
                    continue
                m = train_svm(x, y, cfg.svm, seed=cfg.seed)
                new_models[c] = m
            bar.close()
            models = new_models
            d.mkdir(parents=True, exist_ok=True)
            _save_iteration(d / f"iter{it}.npz", models, sel)
        for c, m in models.items():
            info[c].update({"C": m.c, "positives": m.num_positives, "negatives": m.num_negatives,
                            "cv_ap": {str(k): round(v, 4) for k, v in m.cv_ap.items()}})
        return models, info

    def _mine(self, spec, wtrain, models, sel, it):
        """Image-major hard-negative mining: each training image's windows are scored once
        by the detectors of all classes it is a negative for."""
        from ..progress import progress_bar

        cfg = self.cfg
        neg_of: Dict[str, List[str]] = {}
        for c in self.split.classes:
            if c in models:
                for j in self.split.negatives[c]:
                    neg_of.setdefault(j, []).append(c)
        for j in progress_bar(list(neg_of), desc=f"mine {spec.name} it{it + 1}", unit="img", enabled=self.progress):
            if len(wtrain[j]) == 0:
                continue
            x = self.store.get(j, wtrain[j])
            for c in neg_of[j]:
                s = models[c].score(x)
                added = mine_hard_negatives({j: s}, {j: sel[c].get(j, [])}, cfg.hard_negatives_per_image,
                                            cfg.max_negatives_per_negative_image)
                if j in added:
                    sel[c].setdefault(j, []).extend(int(v) for v in added[j])

    # -- test ----------------------------------------------------------------------
    def _test(self, spec, wtest, models):
        from ..progress import progress_bar

        cfg = self.cfg
        classes = [c for c in self.split.classes if c in models]
        dets: Dict[str, Dict[str, Tuple[np.ndarray, np.ndarray]]] = {c: {} for c in classes}
        if classes:
            norm = models[classes[0]].normalize
            w = np.stack([models[c].w for c in classes], axis=1)
            b = np.array([models[c].b for c in classes], np.float32)
            for i in progress_bar(self.split.test_ids, desc=f"test {spec.name}", unit="img", enabled=self.progress):
                boxes = wtest[i]
                if len(boxes) == 0:
                    continue
                s = normalize_features(self.store.get(i, boxes), norm) @ w + b
                for k, c in enumerate(classes):
                    dets[c][i] = image_detections(boxes, s[:, k], cfg.test_nms, cfg.max_detections_per_image)
        aps, details = {}, {}
        for c in self.split.classes:
            if c not in models:
                details[c] = {"ap": None}
                continue
            gt = {}
            for i in self.split.test_ids:
                rec = self.split.test.record(i)
                boxes, diff = rec.boxes_of(c)
                gt[i] = (boxes, diff)
            r = average_precision(dets[c], gt, cfg.eval_iou)
            aps[c] = r.ap
            details[c] = {"ap": r.ap, "gt_boxes": r.num_positives, "detections": r.num_detections}
        return aps, details


def image_detections(boxes, scores, nms_iou: float = 0.7, max_detections: Optional[int] = None
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """One image's detections of one class: windows sorted by score, a window removed if it
    overlaps a higher-scoring kept one by MORE than ``nms_iou``; the best ``max_detections``."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    keep = nms(boxes, scores, nms_iou)
    if max_detections is not None:
        keep = keep[:max_detections]
    return boxes[keep], scores[keep]


def _save_iteration(path: Path, models: Dict[str, LinearModel], sel):
    classes = sorted(models)
    arrays = {"classes": np.array(classes, dtype=object).astype(str)}
    if classes:
        arrays["w"] = np.stack([models[c].w for c in classes])
        arrays["b"] = np.array([models[c].b for c in classes])
        arrays["c"] = np.array([models[c].c for c in classes])
        arrays["npos"] = np.array([models[c].num_positives for c in classes])
        arrays["nneg"] = np.array([models[c].num_negatives for c in classes])
    meta = {"normalize": next(iter(models.values())).normalize if models else "none",
            "cv_ap": {c: {str(k): v for k, v in models[c].cv_ap.items()} for c in classes},
            "selection": sel}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _load_iteration(path: Path):
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    classes = [str(c) for c in z["classes"]]
    models = {}
    for k, c in enumerate(classes):
        models[c] = LinearModel(z["w"][k].astype(np.float32), float(z["b"][k]), float(z["c"][k]), meta["normalize"],
                                {float(a): b for a, b in meta["cv_ap"].get(c, {}).items()}, int(z["npos"][k]),
                                int(z["nneg"][k]))
    sel = {c: {i: list(v) for i, v in s.items()} for c, s in meta["selection"].items()}
    return models, sel
