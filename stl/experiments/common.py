"""Helpers shared by the experiment modules: where the data is, stored runs, outputs."""
from __future__ import annotations

import logging
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

log = logging.getLogger("stl.experiments")

#: default folder of stored runs (the one ``stl run`` and ``stl eval`` use)
DEFAULT_RUNS = Path("results") / "runs"


# ----------------------------------------------------------------------------- data
@dataclass
class DataChoice:
    dataset: object  # stl.data.Dataset
    description: str  # which data this is, for captions and logs
    full: bool  # True: a configured full dataset; False: the ../shared sample


def ilsvrc_data(root=None, subset: str = "200rnd", limit: Optional[int] = None) -> DataChoice:
    """ILSVRC-2012 val: ``root`` (or $STL_ILSVRC / data/ilsvrc), else the ../shared sample."""
    return _choose("ilsvrc", "ilsvrc2012_val", root, subset, limit)


def voc_data(root=None, limit: Optional[int] = None) -> DataChoice:
    """PASCAL VOC 2007 test: ``root`` (or $STL_VOC / data/VOCdevkit), else the ../shared sample."""
    return _choose("voc", "voc2007_test", root, None, limit)


def _choose(kind, name, root, subset, limit) -> DataChoice:
    from ..data import ROOT_SOURCES, SHARED_SAMPLES, DatasetError, choose_root, get_dataset
    from ..paths import shared_dir

    chosen = choose_root(kind, root)
    if chosen is None:
        raise DatasetError(f"no {kind} data: pass --{kind} ROOT (or set ${ROOT_SOURCES[kind][0]}); the shared "
                           f"sample {shared_dir() / SHARED_SAMPLES[kind][0]} is absent too")
    return DataChoice(get_dataset(name, root=chosen.path, subset=subset, limit=limit), chosen.description,
                      chosen.full)


# ----------------------------------------------------------------------------- classifier / runs
def build(model, mean_mode: Optional[str] = None):
    """The classifier of ``model`` (a :class:`stl.models.spec.ModelSpec`, or a registry name /
    ``PROTOTXT:CAFFEMODEL``); a Caffe model subtracts the mean as ``mean_mode`` says
    (``STLConfig.caffe_mean``; default: the authors' profile's, as ``stl run``)."""
    from ..core.config import DEFAULT
    from ..models.spec import ModelSpec

    clf = ModelSpec.of(model).build(mean_mode=mean_mode or DEFAULT.caffe_mean)
    log.info("classifier: %s", clf.describe())
    return clf


class LazyClassifier:
    """Builds the classifier of ``model`` (a ModelSpec or a name) with ``mean_mode``
    (``STLConfig.caffe_mean``) on first use (commands that find every run stored never load it)."""

    def __init__(self, model, mean_mode: Optional[str] = None):
        from ..core.config import DEFAULT
        from ..models.spec import ModelSpec

        self.model = ModelSpec.of(model)
        self.mean_mode = mean_mode or DEFAULT.caffe_mean
        self._clf = None

    def preprocessing_identity(self) -> dict:
        """The stored-run identity of the classifier this builds (without building it)."""
        return self.model.preprocessing_identity(self.mean_mode)

    def __call__(self):
        if self._clf is None:
            self._clf = build(self.model, self.mean_mode)
        return self._clf


def stored_run(dataset, method_name: str, model: Optional[str], get_classifier: Callable, runs_dir=DEFAULT_RUNS,
               config=None, path=None, progress: bool = True, chunk_size: int = 8):
    """Compute (or resume) ``method_name`` on every image of ``dataset`` through the runner and
    return the :class:`stl.runner.StoredRun` restricted to those images, plus its path.

    The run file is the one ``stl run`` writes (``<runs>/<dataset key>/<METHOD>__<model>.h5``)
    unless ``path`` is given, so figures computed from it and ``stl eval`` see the same windows.
    """
    import json

    from ..core.config import DEFAULT
    from ..proposals import build_method
    from ..runner import load_run, run_method, run_path, stored_ids

    try:
        method = build_method(method_name)
        needs = bool(getattr(method, "uses_classifier", False))
    except (ValueError, TypeError):
        needs = True
    uses = needs
    if path is None:
        path = run_path(runs_dir, dataset.key, method_name, model if uses else None, uses,
                        (config or DEFAULT).profile)
    path = Path(path)
    if needs and path.exists() and set(dataset.image_ids) <= stored_ids(path):
        # everything stored: no classifier needed, provided the run was made with this config
        stored = load_run(path)
        want = json.dumps((config or DEFAULT).identity(), sort_keys=True, default=str)
        expect = getattr(get_classifier, "preprocessing_identity", None)  # known without building it?
        same_pre = expect is not None and (str(stored.meta.get("preprocessing"))
                                           == json.dumps(expect(), sort_keys=True, default=str))
        if str(stored.meta.get("method_config")) == want and same_pre:
            log.info("%s: all %d images already stored in %s", method_name, len(dataset), path)
            return stored, path
    if needs:
        kw = {"classifier": get_classifier()}
        if config is not None:
            kw["config"] = config
        method = build_method(method_name, **kw)
    summary = run_method(dataset, method, path, method_name=method_name, model=model if uses else None,
                         chunk_size=chunk_size, progress=progress)
    if summary.failures:
        log.warning("%s failed on %d images, e.g. %s", method_name, len(summary.failures),
                    next(iter(summary.failures.items())))
    run = load_run(path)
    return run, path


# ----------------------------------------------------------------------------- outputs
def save_figure(fig, out_dir, stem: str) -> List[Path]:
    """Write ``fig`` as ``<out>/<stem>.png`` and ``.pdf`` (atomically); returns the paths."""
    from ..io import atomic_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        target = out_dir / f"{stem}.{ext}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=150 if ext == "png" else None)
        paths.append(target)
    return paths


def write_text(path, text: str) -> Path:
    from ..io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return path


def fmt(v, spec: str = ".3f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isnan(v):
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def markdown_table(rows: Sequence[Dict], columns: Sequence[str], headers: Optional[Sequence[str]] = None,
                   specs: Optional[Dict[str, str]] = None) -> str:
    specs = specs or {}
    headers = list(headers or columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c), specs.get(c, ".3f")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: Sequence[Dict], columns: Sequence[str]) -> str:
    from ..evaluation.report import to_csv

    return to_csv(list(rows), list(columns))


def wrap(text: str, width: int = 150) -> str:
    return "\n".join(textwrap.wrap(text, width))


def class_words(wnid: str, classes=None) -> str:
    """Short human-readable name of an ImageNet wnid (first synonym)."""
    from ..models.base import ClassList

    classes = classes or ClassList.imagenet()
    try:
        return classes.words[classes.index(wnid)].split(",")[0].strip()
    except KeyError:
        return str(wnid)
