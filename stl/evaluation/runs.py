"""Evaluate stored runs (HDF5 files written by :mod:`stl.runner`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from ..core.config import EVAL_IOU, EVAL_NUM_WINDOWS
from .protocol import AUTHORS_MAX_SUBWIN, EvalProtocol, EvalResult, eval_protocol, evaluate
from ..errors import EvalError


@dataclass
class RunEvaluation:
    path: Path
    method: str
    model: str
    dataset: object  # stl.data.Dataset
    result: EvalResult
    num_failures: int
    num_partial_chunks: int
    #: corrupt per-image entries left out (only with ``skip_corrupt``)
    corrupt: list = None
    #: the run file's attributes (method_config, created, stl_version, ...)
    meta: dict = None

    @property
    def paper_key(self) -> Optional[str]:
        return getattr(self.dataset, "paper_key", None)

    @property
    def label(self) -> str:
        return f"{self.method} ({self.model})" if self.model else self.method


def dataset_of_run(meta: dict, root=None, path=None):
    """Rebuild the dataset a run was computed on (``root`` overrides the stored root)."""
    from ..data import DatasetError, available_datasets, get_dataset

    where = f"{path}: " if path else ""
    name = meta.get("dataset_key") if meta.get("dataset_key") in available_datasets() else meta.get("dataset")
    if not name:
        raise EvalError(f"{where}run file has no 'dataset' attribute (not written by `stl run`?)")
    kw = {}
    if meta.get("layout") and name.startswith("ilsvrc"):
        kw["layout"] = meta["layout"]
    stored_root = meta.get("root") or None
    try:
        return get_dataset(name, root=root or stored_root, subset=meta.get("subset") or None, **kw)
    except DatasetError as e:
        if root is None and stored_root:
            raise DatasetError(f"{where}the run's dataset root {stored_root} is not usable ({e}); if the dataset "
                               f"moved, pass --root NEW_ROOT") from None
        raise DatasetError(f"{where}{e}") from None


def check_ground_truth(meta: dict, path=None, dataset=None) -> None:
    """EvalError when the run's dataset (or ``dataset``) has no ground-truth boxes (an image folder)."""
    from ..data import available_datasets, has_ground_truth

    name = meta.get("dataset")
    no_gt = (dataset is not None and not getattr(dataset, "has_ground_truth", True)) or \
        (dataset is None and name in available_datasets() and not has_ground_truth(name))
    if no_gt:
        raise EvalError(f"{path}: dataset {meta.get('dataset_key') or name} has no ground-truth boxes, so there is "
                        f"nothing to evaluate; `stl export {path} --format ...` writes its windows for a detector")


def check_image_sizes(run, records, root=None) -> None:
    """Refuse to score a run against a dataset whose images differ from the ones it was computed on:
    each stored image records the (height, width) of its file; every record must agree."""
    for rec in records:
        a = run.image_attrs.get(rec.image_id) or {}
        h, w = a.get("height"), a.get("width")
        if h is None or w is None:
            continue  # runs of stl < 0.2 did not record sizes
        if (int(h), int(w)) != tuple(rec.size):
            raise EvalError(
                f"{run.path}: image {rec.image_id} was computed on a {int(w)}x{int(h)} image, but the dataset's "
                f"{rec.path or 'image'} is {rec.size[1]}x{rec.size[0]}: the run's windows cannot be scored "
                f"against this dataset ({'--root ' + str(root) if root else 'its root'} holds other images; "
                f"wrong --root?)")


def evaluate_run(path, root=None, dataset=None, num_windows=EVAL_NUM_WINDOWS, iou_threshold: float = EVAL_IOU,
                 matching: str = "pascal", protocol: Union[str, EvalProtocol, None] = None,
                 skip_corrupt: bool = False, image_ids: Optional[Sequence[str]] = None) -> RunEvaluation:
    """Evaluate one run file: on the images it holds, on ``image_ids`` among them (every one must
    be stored: an :class:`~stl.errors.EvalError` names the first that is not), or on ``dataset`` 's
    images if given (images of the dataset not in the run end up in ``result.missing``). ``protocol``: an
    :class:`~stl.evaluation.protocol.EvalProtocol` or a preset name (default ``"authors"``).

    Refuses (:class:`stl.errors.EvalError`) a dataset whose image sizes differ from those stored in the
    run (another dataset under the same ids would be scored against the wrong boxes). A corrupt
    per-image entry of an unfinished run is an error unless ``skip_corrupt`` (then it is left out and
    listed in ``corrupt``)."""
    from ..runner import load_run

    proto = eval_protocol(protocol)
    # the authors' tie order looks at up to 5000 windows whatever N is (a tie group cut by N)
    cap = max(max(num_windows), AUTHORS_MAX_SUBWIN) if proto.tie_order == "authors" else max(num_windows)
    run = load_run(path, max_windows=cap, skip_corrupt=skip_corrupt)
    check_ground_truth(run.meta, path, dataset)
    if dataset is None:
        ds = dataset_of_run(run.meta, root, path)
        unknown = [i for i in run.image_ids if i not in ds]
        if unknown:
            raise EvalError(f"{path}: {len(unknown)} stored images (e.g. {unknown[0]}) are not in "
                            f"{ds.describe()} (wrong --root?)")
        if image_ids is not None:
            stored = set(run.image_ids)
            absent = [i for i in image_ids if i not in stored]
            if absent:
                raise EvalError(f"{path}: {len(absent)} of the {len(image_ids)} images asked for are not in this run "
                                f"(e.g. {absent[0]}); every method must be scored on the same images")
        records = [ds.record(i) for i in (run.image_ids if image_ids is None else dict.fromkeys(image_ids))]
    else:  # evaluate on the given dataset's images; those the run lacks are listed as missing
        ds = dataset
        records = list(ds)
    check_image_sizes(run, [r for r in records if r.image_id in run.image_attrs], root)
    res = evaluate(records, run.proposals(), num_windows, iou_threshold, mode=ds.eval_mode, matching=matching,
                   protocol=proto)
    return RunEvaluation(Path(path), str(run.meta.get("method", "?")), str(run.meta.get("model", "")), ds, res,
                         len(run.failures), run.num_partial_chunks, list(run.corrupt), dict(run.meta))
