"""Windows of the proposal methods on the training and test images.

Registry methods (BING, SELSEARCH, EDGEBOXES, STL-CL, STL-WL, ...) are computed
through :mod:`stl.runner` into its resumable HDF5 runs
(``<runs>/<dataset key>/<METHOD>[__<model>].h5``); images already stored are
read back, the others computed. Methods that read per-image files (MCG; they
take the image id) are read directly. ``GROUNDTRUTH`` is the annotated boxes
of the class (positive boxes only). A method that cannot be built (model file
missing, MCG folder not given) raises :class:`MethodUnavailable` with the
reason -- it is reported as "not run", never replaced by another method.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

log = logging.getLogger(__name__)

GROUNDTRUTH = "GROUNDTRUTH"


class MethodUnavailable(RuntimeError):
    """A proposal method cannot run here (missing model/input files); the message says why."""


Windows = Dict[str, Tuple[np.ndarray, np.ndarray]]


class ProposalProvider:
    """Gets (and stores) the ranked windows of a method on the images of a dataset view.

    ``get_classifier``: called once, the first time a method needs the classifier
    (STL). ``stl_config``: the STL settings; runs made with non-default STL settings
    are kept apart (``<runs>-stl<hash>/``) so they never mix with paper-setting runs.
    """

    def __init__(self, runs_dir, get_classifier: Callable, model=None, stl_config=None, progress: bool = True,
                 chunk_size: int = 8, executor=None, model_spec=None):
        from ..core.config import DEFAULT

        self.runs_dir = Path(runs_dir)
        self.get_classifier = get_classifier
        self.model = model
        self.stl_config = stl_config or DEFAULT
        self.progress = progress
        self.chunk_size = chunk_size
        #: where the proposal runs are computed (``stl.executors``; None: this process) and the
        #: :class:`stl.models.spec.ModelSpec` remote workers build their classifier from
        self.executor = executor
        self.model_spec = model_spec
        self._methods: Dict[str, object] = {}
        self._cache: Dict[Tuple[str, str], Windows] = {}

    def _runs_dir_of(self, name: str) -> Path:
        """Methods that take an STLConfig (the registry's options) store their runs per config."""
        from ..proposals import method_options

        return self.stl_runs_dir() if "config" in method_options(name) else self.runs_dir

    def stl_runs_dir(self) -> Path:
        from ..core.config import DEFAULT

        if self.stl_config == DEFAULT:
            return self.runs_dir
        import hashlib
        import json

        h = hashlib.sha1(json.dumps(self.stl_config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:8]
        return self.runs_dir.with_name(f"{self.runs_dir.name}-stl{h}")

    def method(self, name: str):
        name = name.upper()
        if name in self._methods:
            return self._methods[name]
        from ..proposals import build_run_method

        try:
            m = build_run_method(name, self.get_classifier, self.stl_config)
        except (KeyError, FileNotFoundError, ValueError, ImportError, OSError) as e:
            msg = str(e).strip("'\"")
            raise MethodUnavailable(msg if msg.upper().startswith(name) else f"{name}: {msg}") from None
        self._methods[name] = m
        return m

    def check(self, name: str) -> None:
        """Raise :class:`MethodUnavailable` now if the method cannot be built."""
        if name.upper() != GROUNDTRUTH:
            self.method(name)

    def windows(self, name: str, dataset, image_ids) -> Windows:
        """image id -> (boxes, scores), ranked best first, original-image pixels."""
        name = name.upper()
        if name == GROUNDTRUTH:
            raise ValueError("GROUNDTRUTH windows depend on the class; use ground_truth_positives()")
        ids = list(dict.fromkeys(image_ids))
        key = (name, dataset.key)
        have = self._cache.setdefault(key, {})
        todo = [i for i in ids if i not in have]
        if todo:
            have.update(self._compute(name, dataset, todo))
        return {i: have[i] for i in ids}

    def _compute(self, name: str, dataset, ids) -> Windows:
        from .data import SubsetView
        from ..runner import load_run, run_method, run_path, RunError

        m = self.method(name)
        view = SubsetView(getattr(dataset, "parent", dataset), ids)
        if m.needs_image_id:
            out = {}
            for i in ids:
                rec = view.record(i)
                try:
                    out[i] = m.propose(str(rec.path) if rec.path is not None else None, None,
                                       image_id=rec.image_id)
                except FileNotFoundError as e:
                    raise MethodUnavailable(f"{name}: {e}") from None
            return out
        uses = m.uses_classifier
        runs = self._runs_dir_of(name)
        path = run_path(runs, view.key, name, self.model if uses else None, uses)
        work = m
        if self.executor is not None and not self.executor.builds_locally and self.model_spec is not None:
            from ..executors import MethodSpec

            work = MethodSpec.from_model_spec(name, self.model_spec, self.stl_config)
        try:
            summary = run_method(view, work, path, method_name=name, model=self.model if uses else None,
                                 chunk_size=self.chunk_size, progress=self.progress, executor=self.executor)
        except RunError as e:
            raise MethodUnavailable(f"{name}: {e}") from None
        if summary.failures:
            log.warning("%s: %d image(s) failed (no windows): %s", name, len(summary.failures),
                        "; ".join(f"{k}: {v}" for k, v in list(summary.failures.items())[:3]))
        run = load_run(path)
        out = {}
        for i in ids:
            if i in run.boxes:
                out[i] = (np.asarray(run.boxes[i], np.float64), np.asarray(run.scores[i], np.float64))
            else:
                out[i] = (np.zeros((0, 4)), np.zeros(0))
        return out

    def run_file(self, name: str, dataset) -> Optional[Path]:
        from ..runner import run_path

        m = self._methods.get(name.upper())
        if m is None:
            return None
        uses = m.uses_classifier
        runs = self._runs_dir_of(name)
        return run_path(runs, dataset.key, name.upper(), self.model if uses else None, uses)


def ground_truth_positives(record, wnid: str) -> np.ndarray:
    """The annotated boxes of class ``wnid`` in a record (difficult ones excluded)."""
    boxes, _ = record.boxes_of(wnid, include_difficult=False)
    return np.asarray(boxes, np.float64).reshape(-1, 4)
