"""Command line shared by experiments/table1.py, table2.py and fig6.py.

    python experiments/table1.py [--model efficientnet_lite0] [--device cpu]
        [--ilsvrc ROOT] [--ilsvrc-train ROOT] [--config FILE] [--set KEY=VALUE ...]
        [--classes N | WNID,WNID,...] [--limit N] [--fast] [--max-windows N]
        [--pairs P,P,...] [--work results/detection] [--out results/table1]

Data: with ``--ilsvrc`` (or $STL_ILSVRC, or the data/ilsvrc link) the paper's
setting runs (``stl/resources/configs/detection_ilsvrc200.json``): training images
from the ILSVRC-2012 training set with boxes (``--ilsvrc-train``,
$STL_ILSVRC_TRAIN, else the same root), test images from ILSVRC-2012 val.
Without, it runs the SMALL REAL RUN on the ILSVRC val images in ../shared
(``stl/resources/configs/detection_shared.json``; 1-3 images per class, split
into training and test): its numbers prove only that the pipeline runs end to
end on real data, and every output says so.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .config import FAST_STL, DetectionConfig

from .. import resources

PAPER_CONFIG = resources.config("detection_ilsvrc200")
SHARED_CONFIG = resources.config("detection_shared")

SMALL_RUN_NOTE = ("**SMALL REAL RUN on the ILSVRC-2012 val images in ../shared** ({desc}). These hold only one to "
                  "three images per class, so the numbers below prove ONLY that the pipeline runs end to end on "
                  "real data; they are NOT comparable with the paper's (50 training images per class, 4975 "
                  "negative images, 10,000 test images).")


def parse_args(which: str, argv=None, default_pairs: Sequence[str] = ()):
    from ..cli.args import add_model_arguments

    p = argparse.ArgumentParser(prog=f"experiments/{which}.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--ilsvrc", default=None, help="ILSVRC-2012 val root (test images); default $STL_ILSVRC / "
                                                  "data/ilsvrc; none: the small run on ../shared")
    p.add_argument("--ilsvrc-train", default=None,
                   help="ILSVRC-2012 training root with box XMLs (default $STL_ILSVRC_TRAIN, else --ilsvrc)")
    p.add_argument("--config", default=None, help="detection config JSON (default: the paper's, or the small "
                                                  "../shared one)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, dotted keys, JSON values (e.g. data.num_classes=5, "
                        "positive_top_k=1, svm.folds=3)")
    p.add_argument("--classes", default=None, help="number of classes (first N of the paper's 200 with enough "
                                                   "images) or comma-separated wnids")
    p.add_argument("--limit", type=int, default=None, help="at most N images per class (training + test)")
    p.add_argument("--fast", action="store_true",
                   help="reduced STL: one segmentation (HSV, k=300) instead of four (CI / quick runs)")
    p.add_argument("--max-windows", type=int, default=None, help="windows per image of the negative/test method")
    p.add_argument("--iterations", type=int, default=None, help="SVM trainings (1 + hard-negative rounds)")
    p.add_argument("--pairs", default=None, help=f"comma-separated pairs (default: {','.join(default_pairs)})")
    p.add_argument("--work", default="results/detection",
                   help="work folder: proposal runs, feature cache, trained detectors (default results/detection)")
    p.add_argument("--runs", default=None, help="proposal run store (default <work>/runs/<data tag>)")
    p.add_argument("--features", default=None, help="feature cache (default <work>/features/<model>__<data tag>)")
    p.add_argument("--out", default=f"results/{which}", help=f"output folder (default results/{which})")
    p.add_argument("--force", action="store_true", help="recompute pair results (cached features/runs are kept)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def loud(msg: str):
    bar = "!" * 78
    print(f"\n{bar}\n{msg}\n{bar}\n", file=sys.stderr, flush=True)


def _env_or_link() -> bool:
    if os.environ.get("STL_ILSVRC"):
        return True
    from ..paths import dataset_links

    return any(p.exists() for p in dataset_links(("data/ilsvrc",)))


def resolve_setup(args):
    """(config, mode, test_root, train_root, description)."""
    from ..data import resolve_root, shared_dir

    full = bool(args.ilsvrc) or _env_or_link()
    if full:
        test_root = resolve_root("ilsvrc", args.ilsvrc)
        train_root = args.ilsvrc_train or os.environ.get("STL_ILSVRC_TRAIN") or test_root
        cfg_path = Path(args.config) if args.config else PAPER_CONFIG
        mode = "full"
    else:
        test_root = shared_dir() / "data" / "ilsvrc2012-val-227"
        if not (test_root / "metadata").exists():
            raise SystemExit(f"no ILSVRC data: pass --ilsvrc ROOT (ILSVRC-2012 val), set $STL_ILSVRC, or provide "
                             f"../shared ({test_root} not found)")
        train_root = test_root
        cfg_path = Path(args.config) if args.config else SHARED_CONFIG
        mode = "shared"
    cfg = DetectionConfig.from_json(cfg_path) if cfg_path.exists() else DetectionConfig()
    over = {}
    for item in args.set:
        if "=" not in item:
            raise SystemExit(f"--set takes KEY=VALUE, not {item!r}")
        k, v = item.split("=", 1)
        try:
            over[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            over[k.strip()] = v
    if args.classes:
        if args.classes.strip().isdigit():
            over["data.num_classes"] = int(args.classes)
        else:
            over["data.classes"] = [c.strip() for c in args.classes.split(",") if c.strip()]
            over.setdefault("data.num_classes", None)
    if args.fast:
        over["stl_color_spaces"], over["stl_ks"] = list(FAST_STL["stl_color_spaces"]), list(FAST_STL["stl_ks"])
    if args.max_windows is not None:
        over["max_windows_per_image"] = args.max_windows
    if args.iterations is not None:
        over["iterations"] = args.iterations
    if over:
        cfg = cfg.with_overrides(over)
    return cfg, mode, Path(test_root), Path(train_root), str(cfg_path)


def model_spec(args):
    return args.model[0] if len(args.model) == 1 else tuple(args.model)


def data_tag(*roots) -> str:
    return hashlib.sha1("|".join(str(Path(r).resolve()) for r in roots).encode()).hexdigest()[:8]


class Setup:
    """Everything an experiment script needs, built from the command line."""

    def __init__(self, which: str, argv=None, default_pairs: Sequence[str] = ()):
        from ..runner import model_tag
        from .data import build_split
        from .features import FeatureStore
        from .pipeline import DetectionExperiment
        from .proposals import ProposalProvider

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        self.args = args = parse_args(which, argv, default_pairs)
        self.which = which
        self.cfg, self.mode, self.test_root, self.train_root, self.config_path = resolve_setup(args)
        self.pairs = [p.strip() for p in args.pairs.split(",")] if args.pairs else list(default_pairs)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        self.split = build_split(self.cfg.data, test_root=self.test_root, train_root=self.train_root,
                                 limit_per_class=args.limit)
        self.t_split = time.time() - t0
        self.description = self.split.description
        if self.mode == "shared":
            loud(SMALL_RUN_NOTE.format(desc=self.description).replace("**", ""))
        else:
            print(f"data: {self.description}", flush=True)
        self.model = model_spec(args)
        tag = data_tag(self.test_root, self.train_root)
        work = Path(args.work)
        self.fingerprint = self.cfg.fingerprint(model_tag(self.model), args.engine, args.precision, tag,
                                                args.limit, sorted(self.split.test_ids), sorted(self.split.train_ids))
        self.work = work / f"{self.mode}-{self.fingerprint}"
        self.work.mkdir(parents=True, exist_ok=True)
        from ..io import write_json_atomic

        write_json_atomic(self.work / "config.json", {"config": self.cfg.to_dict(), "model": str(self.model),
                                                      "engine": args.engine, "precision": args.precision,
                                                      "test_root": str(self.test_root),
                                                      "train_root": str(self.train_root), "limit": args.limit})
        write_json_atomic(self.work / "split.json", {**self.split.summary(), "positives": self.split.positives,
                                                     "negatives": self.split.negatives,
                                                     "test_ids": self.split.test_ids})
        self._clf = None
        progress = not args.no_progress
        runs = Path(args.runs) if args.runs else work / "runs" / tag
        fdir = Path(args.features) if args.features else (
            work / "features" / f"{model_tag(self.model)}__ctx{self.cfg.features.context_padding}__{tag}")
        self.store = FeatureStore(fdir, self.classifier(), model_tag(self.model), "",
                                  self.cfg.features.context_padding, self.cfg.features.dtype,
                                  self.cfg.features.batch_size, self.cfg.features.memory_mib)
        self.provider = ProposalProvider(runs, self.classifier, self.model, self.cfg.stl_config(), progress)
        self.experiment = DetectionExperiment(self.cfg, self.split, self.provider, self.store, self.work, progress)

    def classifier(self):
        if self._clf is None:
            from ..cli.args import build_from_args

            self._clf = build_from_args(self.args)
            print(f"classifier: {self._clf.describe()}; window feature: {self._clf.feature_name}", flush=True)
        return self._clf

    def run(self, pairs: Optional[Sequence[str]] = None):
        from .pipeline import PairSpec

        results = {}
        for p in (pairs or self.pairs):
            spec = PairSpec.parse(p)
            t = time.time()
            r = self.experiment.run_pair(spec, force=self.args.force)
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
                "model": str(self.model), "engine": self.args.engine, "device": self.args.device,
                "work_dir": str(self.work), "split": self.split.summary(),
                "feature_extraction": {"windows_computed": self.store.num_computed,
                                       "seconds": round(self.store.seconds_computing, 2),
                                       "windows_per_second": (round(self.store.rate, 2)
                                                              if np.isfinite(self.store.rate) else None)},
                "pairs": {k: v.to_dict() for k, v in results.items()}}


def write_text(path: Path, text: str):
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    print(f"wrote {path}")
