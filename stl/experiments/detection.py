"""What Table 1, Table 2 and Fig. 6 share: the data, the configs, the classifier, the proposal
runs, the feature cache and the detector experiment, built once from typed options.

    stl table 1 [--model efficientnet_lite0] [--device cpu]
        [--ilsvrc ROOT] [--ilsvrc-train ROOT] [--config FILE] [--set KEY=VALUE ...]
        [--classes N | WNID,WNID,...] [--limit N] [--fast] [--max-windows N]
        [--pairs P,P,...] [--work results/detection] [--out results/table1]

Data: with ``ilsvrc`` (``--ilsvrc``, or $STL_ILSVRC, or the data/ilsvrc link) the paper's
setting runs (``stl/resources/configs/detection_ilsvrc200.json``): training images
from the ILSVRC-2012 training set with boxes (``--ilsvrc-train``,
$STL_ILSVRC_TRAIN, else the same root), test images from ILSVRC-2012 val.
Without, it runs the SMALL REAL RUN on the ILSVRC val images in ../shared
(``stl/resources/configs/detection_shared.json``; 1-3 images per class, split
into training and test): its numbers prove only that the pipeline runs end to
end on real data, and every output says so.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from ..core.config import STLConfig
from ..detection.config import FAST_STL, DetectionConfig
from ..models.spec import ModelSpec
from .. import resources

PAPER_CONFIG = resources.config("detection_ilsvrc200")
SHARED_CONFIG = resources.config("detection_shared")

SMALL_RUN_NOTE = ("**SMALL REAL RUN on the ILSVRC-2012 val images in ../shared** ({desc}). These hold only one to "
                  "three images per class, so the numbers below prove ONLY that the pipeline runs end to end on "
                  "real data; they are NOT comparable with the paper's (50 training images per class, 4975 "
                  "negative images, 10,000 test images).")


@dataclass
class DetectionOptions:
    """Everything a detector experiment is told (``stl table 1|2``, ``stl fig6``).

    ``overrides``: DetectionConfig values by dotted key (``{"data.num_classes": 5}``);
    ``classes``: a number (first N of the paper's 200) or wnids; ``fast``: one segmentation
    (HSV, k=300) for STL; ``stl``: the STLConfig of the STL runs (profile and ``--set``) before
    the detection config's segmentation settings."""

    model: ModelSpec = field(default_factory=ModelSpec)
    stl: STLConfig = field(default_factory=STLConfig)
    ilsvrc: Optional[str] = None
    ilsvrc_train: Optional[str] = None
    config: Optional[str] = None
    overrides: Dict[str, object] = field(default_factory=dict)
    classes: Optional[Sequence] = None
    limit: Optional[int] = None
    fast: bool = False
    max_windows: Optional[int] = None
    iterations: Optional[int] = None
    pairs: Optional[Sequence[str]] = None
    work: str = "results/detection"
    #: where the proposal runs (STL, ...) are computed: an :class:`stl.executors.Executor`
    #: (None: this process; a Ray executor spreads their images over workers)
    executor: Optional[object] = None
    runs: Optional[str] = None
    features: Optional[str] = None
    out: Optional[str] = None
    force: bool = False
    progress: bool = True


def loud(msg: str):
    bar = "!" * 78
    print(f"\n{bar}\n{msg}\n{bar}\n", file=sys.stderr, flush=True)


def resolve_setup(opts: DetectionOptions):
    """(config, mode, test_root, train_root, config path)."""
    from ..data import SHARED_SAMPLES, resolve_root, root_configured, shared_dir

    full = root_configured("ilsvrc", opts.ilsvrc)  # the commands' one rule (stl.data.choose_root)
    if full:
        test_root = resolve_root("ilsvrc", opts.ilsvrc)
        train_root = opts.ilsvrc_train or os.environ.get("STL_ILSVRC_TRAIN") or test_root
        cfg_path = Path(opts.config) if opts.config else PAPER_CONFIG
        mode = "full"
    else:
        test_root = shared_dir() / SHARED_SAMPLES["ilsvrc"][0]
        if not (test_root / "metadata").exists():
            raise SystemExit(f"no ILSVRC data: pass --ilsvrc ROOT (ILSVRC-2012 val), set $STL_ILSVRC, or provide "
                             f"../shared ({test_root} not found)")
        train_root = test_root
        cfg_path = Path(opts.config) if opts.config else SHARED_CONFIG
        mode = "shared"
    cfg = DetectionConfig.from_json(cfg_path) if cfg_path.exists() else DetectionConfig()
    over = dict(opts.overrides)
    if opts.classes is not None:
        if isinstance(opts.classes, int):
            over["data.num_classes"] = int(opts.classes)
        else:
            over["data.classes"] = list(opts.classes)
            over.setdefault("data.num_classes", None)
    if opts.fast:
        over["stl_color_spaces"], over["stl_ks"] = list(FAST_STL["stl_color_spaces"]), list(FAST_STL["stl_ks"])
    if opts.max_windows is not None:
        over["max_windows_per_image"] = opts.max_windows
    if opts.iterations is not None:
        over["iterations"] = opts.iterations
    if over:
        cfg = cfg.with_overrides(over)
    return cfg, mode, Path(test_root), Path(train_root), str(cfg_path)


def data_tag(*roots) -> str:
    return hashlib.sha1("|".join(str(Path(r).resolve()) for r in roots).encode()).hexdigest()[:8]


class Setup:
    """Everything a detector experiment needs, built from its options."""

    def __init__(self, which: str, opts: DetectionOptions, default_pairs: Sequence[str] = ()):
        from ..runner import model_tag
        from ..detection.data import build_split
        from ..detection.features import FeatureStore
        from ..detection.pipeline import DetectionExperiment
        from ..detection.proposals import ProposalProvider

        self.opts = opts
        self.which = which
        self.cfg, self.mode, self.test_root, self.train_root, self.config_path = resolve_setup(opts)
        self.pairs = list(opts.pairs) if opts.pairs else list(default_pairs)
        self.out = Path(opts.out or f"results/{which}")
        self.out.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        self.split = build_split(self.cfg.data, test_root=self.test_root, train_root=self.train_root,
                                 limit_per_class=opts.limit)
        self.t_split = time.time() - t0
        self.description = self.split.description
        if self.mode == "shared":
            loud(SMALL_RUN_NOTE.format(desc=self.description).replace("**", ""))
        else:
            print(f"data: {self.description}", flush=True)
        self.model = opts.model.run_name
        self.stl_config = self.cfg.stl_config(opts.stl)
        tag = data_tag(self.test_root, self.train_root)
        work = Path(opts.work)
        extra = () if self.stl_config == self.cfg.stl_config() else (self.stl_config.to_dict(),)
        self.fingerprint = self.cfg.fingerprint(model_tag(self.model), opts.model.engine, opts.model.precision, tag,
                                                opts.limit, sorted(self.split.test_ids), sorted(self.split.train_ids),
                                                *extra)
        self.work = work / f"{self.mode}-{self.fingerprint}"
        self.work.mkdir(parents=True, exist_ok=True)
        from ..io import write_json_atomic

        write_json_atomic(self.work / "config.json", {"config": self.cfg.to_dict(), "model": str(self.model),
                                                      "engine": opts.model.engine,
                                                      "precision": opts.model.precision,
                                                      "test_root": str(self.test_root),
                                                      "train_root": str(self.train_root), "limit": opts.limit})
        write_json_atomic(self.work / "split.json", {**self.split.summary(), "positives": self.split.positives,
                                                     "negatives": self.split.negatives,
                                                     "test_ids": self.split.test_ids})
        self._clf = None
        progress = opts.progress
        runs = Path(opts.runs) if opts.runs else work / "runs" / tag
        fdir = Path(opts.features) if opts.features else (
            work / "features" / f"{model_tag(self.model)}__ctx{self.cfg.features.context_padding}__{tag}")
        self.store = FeatureStore(fdir, self.classifier(), model_tag(self.model), "",
                                  self.cfg.features.context_padding, self.cfg.features.dtype,
                                  self.cfg.features.batch_size, self.cfg.features.memory_mib)
        self.provider = ProposalProvider(runs, self.classifier, self.model, self.stl_config, progress,
                                         executor=opts.executor, model_spec=opts.model)
        self.experiment = DetectionExperiment(self.cfg, self.split, self.provider, self.store, self.work, progress)

    def classifier(self):
        if self._clf is None:
            self._clf = self.opts.model.build(mean_mode=self.stl_config.caffe_mean)
            print(f"classifier: {self._clf.describe()}; window feature: {self._clf.feature_name}", flush=True)
        return self._clf

    def run(self, pairs: Optional[Sequence[str]] = None):
        from ..detection.pipeline import PairSpec

        results = {}
        for p in (pairs or self.pairs):
            spec = PairSpec.parse(p)
            t = time.time()
            r = self.experiment.run_pair(spec, force=self.opts.force)
            r.pair = p
            results[p] = r
            if r.status == "ok":
                print(f"{p}: mAP {100 * r.mean_ap:.2f}% over {sum(np.isfinite(list(r.aps.values())))} classes "
                      f"({time.time() - t:.1f} s)", flush=True)
            else:
                loud(f"{p}: NOT RUN -- {r.reason}")
        return results

    def note(self) -> str:
        if self.mode == "shared":
            return SMALL_RUN_NOTE.format(desc=self.description)
        return (f"Data: {self.description}. Model: {self.model} (window feature: "
                f"{self.classifier().feature_name}); the paper used CaffeNet fc7.")

    def run_info(self, results) -> dict:
        return {"mode": self.mode, "note": self.note(), "config_file": self.config_path, "config": self.cfg.to_dict(),
                "model": str(self.model), "engine": self.opts.model.engine, "device": self.opts.model.device,
                "work_dir": str(self.work), "split": self.split.summary(),
                "feature_extraction": {"windows_computed": self.store.num_computed,
                                       "seconds": round(self.store.seconds_computing, 2),
                                       "windows_per_second": (round(self.store.rate, 2)
                                                              if np.isfinite(self.store.rate) else None)},
                "pairs": {k: v.to_dict() for k, v in results.items()}}


def write_text(path: Path, text: str):
    """:func:`stl.experiments.common.write_text`, then say so."""
    from .common import write_text as write

    write(path, text)
    print(f"wrote {path}")


def run_table(which: str, opts: DetectionOptions, pairs, markdown) -> int:
    """The one body of Table 1 and Table 2 (``which``: "table1" | "table2"): train and test the
    detectors of ``pairs``, write ``<which>.md`` (``markdown(rows, results, reference, note)``),
    ``<which>.csv``, ``<which>_per_class.csv``, ``<which>_diff.json``, ``<which>_run.json``;
    exit status 0 if any pair ran."""
    from ..detection import report
    from ..io import write_json_atomic

    s = Setup(which, opts, pairs)
    results = s.run()
    ref = report.load_reference()
    rows = report.table_rows(results, s.pairs, f"{which}_mAP", ref)
    md = markdown(rows, results, ref, s.note())
    write_text(s.out / f"{which}.md", md)
    write_text(s.out / f"{which}.csv", report.rows_csv(rows))
    write_text(s.out / f"{which}_per_class.csv", report.rows_csv(report.per_class_rows(results, s.pairs, ref)))
    write_json_atomic(s.out / f"{which}_diff.json", {r["pair"]: {k: r[k] for k in (
        "status", "reason", "ours_mAP", "paper_mAP", "diff_vs_paper", "paper_same_classes_mAP",
        "diff_vs_paper_same_classes", "classes")} for r in rows})
    write_json_atomic(s.out / f"{which}_run.json", s.run_info(results))
    print(md)
    return 0 if any(r.status == "ok" for r in results.values()) else 1
