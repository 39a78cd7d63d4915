"""Evaluate stored runs (HDF5 files written by :mod:`stl.runner`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..core.config import EVAL_IOU, EVAL_NUM_WINDOWS
from .protocol import AUTHORS_MAX_SUBWIN, EvalProtocol, EvalResult, eval_protocol, evaluate


@dataclass
class RunEvaluation:
    path: Path
    method: str
    model: str
    dataset: object  # stl.data.Dataset
    result: EvalResult
    num_failures: int
    num_partial_chunks: int

    @property
    def paper_key(self) -> Optional[str]:
        return getattr(self.dataset, "paper_key", None)

    @property
    def label(self) -> str:
        return f"{self.method} ({self.model})" if self.model else self.method


def dataset_of_run(meta: dict, root=None):
    """Rebuild the dataset a run was computed on (``root`` overrides the stored root)."""
    from ..data import get_dataset

    from ..data import available_datasets

    name = meta.get("dataset_key") if meta.get("dataset_key") in available_datasets() else meta.get("dataset")
    if not name:
        raise ValueError("run file has no 'dataset' attribute")
    kw = {}
    if meta.get("layout") and name.startswith("ilsvrc"):
        kw["layout"] = meta["layout"]
    return get_dataset(name, root=root or meta.get("root") or None, subset=meta.get("subset") or None, **kw)


def evaluate_run(path, root=None, dataset=None, num_windows=EVAL_NUM_WINDOWS, iou_threshold: float = EVAL_IOU,
                 matching: str = "pascal", protocol: Union[str, EvalProtocol, None] = None) -> RunEvaluation:
    """Evaluate one run file: on the images it holds, or on ``dataset`` 's images if given
    (images of the dataset not in the run end up in ``result.missing``). ``protocol``: an
    :class:`~stl.evaluation.protocol.EvalProtocol` or a preset name (default ``"authors"``)."""
    from ..runner import load_run

    proto = eval_protocol(protocol)
    # the authors' tie order looks at up to 5000 windows whatever N is (a tie group cut by N)
    cap = max(max(num_windows), AUTHORS_MAX_SUBWIN) if proto.tie_order == "authors" else max(num_windows)
    run = load_run(path, max_windows=cap)
    if dataset is None:
        ds = dataset_of_run(run.meta, root)
        unknown = [i for i in run.image_ids if i not in ds]
        if unknown:
            raise ValueError(f"{path}: {len(unknown)} stored images (e.g. {unknown[0]}) are not in "
                             f"{ds.describe()} (wrong --root?)")
        records = [ds.record(i) for i in run.image_ids]
    else:  # evaluate on the given dataset's images; those the run lacks are listed as missing
        ds = dataset
        records = list(ds)
    res = evaluate(records, run.proposals(), num_windows, iou_threshold, mode=ds.eval_mode, matching=matching,
                   protocol=proto)
    return RunEvaluation(Path(path), str(run.meta.get("method", "?")), str(run.meta.get("model", "")), ds, res,
                         len(run.failures), run.num_partial_chunks)
