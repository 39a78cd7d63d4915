"""Compute a proposal method over a dataset; store the windows in HDF5; resume.

One file per dataset x method x model::

    results/runs/<dataset key>/<METHOD>__<model>.h5   (methods that run a classifier)
    results/runs/<dataset key>/<METHOD>.h5            (the others)

Layout (``format = "stl-run/1"``)::

    /                 attrs: format, dataset, subset, root, dataset_key, method, model,
                      method_config (JSON), max_windows, num_images, num_failures,
                      dataset_size, complete, stl_version, checksum, ...
    /image_ids        the stored images in dataset order (strings)
    /images/<key>     boxes float32 (K, 4) original-image pixels, pixel-inclusive;
                      scores float32 (K,), ranked best first, K <= max_windows;
                      attrs: image_id, height, width, seconds, num_windows_total, checksums
    /failures/<key>   attrs: image_id, error (exception type), message

``<key>`` is :func:`stl.store.entry_key` of the image id (a safe prefix and a hash; the id
itself is the ``image_id`` attribute; files of stl <= 0.3 used the percent-quoted id and
still load). ``checksums`` (JSON): the BLAKE2b of each group's boxes and scores; the root's
``checksum``: of the image ids, their groups' checksums and image sizes. Both are verified
when a run is read (:func:`load_run`), and every image's windows are checked
(:func:`stl.core.boxes.check_windows`: (K, 4) and (K,) finite numbers, no inverted box), so a
damaged file is a :class:`stl.errors.CorruptFileError` naming it and the group, never wrong
numbers. Files without checksums (stl <= 0.3) load unverified.

Crash safety and resuming: every image is written the moment the method finishes it
(``on_done`` of :meth:`stl.proposals.ProposalMethod.propose_batch`; methods that do not
report images one by one: when their chunk returns; Ray: per chunk) as its own entry of a
:class:`stl.store.Store` in ``<run>.h5.partial/`` (failed images in
``<run>.h5.partial/failures/``): a temporary file, fsync'ed and renamed into place, so a
killed process leaves only whole entries, and the entry is checked as it is committed. At
the end of a run (and on Ctrl-C / SIGTERM) the run file and the entries are merged into a
new run file, written to a temporary file and renamed over ``<run>.h5``; then the entries
are deleted. A rerun reads the run file and any entries a killed run left, skips the images
found there and computes only the rest. :func:`load_run` reads the run file plus leftover
entries, so an interrupted run can be evaluated as is; a reader racing with a consolidation
reads again (the merge is invisible to it). Failed images (unreadable file, method error)
are recorded under ``failures`` and retried by the next run. The store's lock
(``<run>.h5.lock``, an OS file lock via :mod:`filelock`, released by the OS when its
process dies) keeps two runs from writing the same file. A full disk is one
:class:`stl.errors.WriteError` naming the file; what was stored before stays.
"""
from __future__ import annotations

import json
import logging
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import unquote

import numpy as np

from .core.boxes import check_windows, scale_boxes
from .core.config import EVAL_NUM_WINDOWS
from .errors import CorruptFileError, UserError, one_line
from .io import atomic_path, folder_write_error
from .executors.compute import compute_chunk as _compute_chunk, method_meta  # noqa: F401
from .paths import model_tag, safe_name  # noqa: F401  (re-exported)
from .store import RunError  # noqa: F401  (re-exported)
from .store import (CHECKSUMS_ATTR, Store, StoreLocked, StoreMismatch, checksum_error, checksums, entry_key,
                    file_lock, fsync_file, h5_attrs, h5_output, open_h5, quote_id, write_h5_attrs)

log = logging.getLogger(__name__)

FORMAT = "stl-run/1"
#: windows stored per image: the largest N of the Fig. 3 protocol
DEFAULT_MAX_WINDOWS = max(EVAL_NUM_WINDOWS)
DEFAULT_CHUNK = 16  # images whose forwards share classifier batches
#: run attributes that must agree between a stored run and the run resuming it
IDENTITY_KEYS = ("format", "dataset_key", "method", "model", "max_windows", "method_config", "preprocessing")
#: how often :func:`load_run` reads again when a consolidation replaced the run file while it read
READ_ATTEMPTS = 8


# ----------------------------------------------------------------------------- naming
def run_filename(method: str, model=None, uses_classifier: bool = True, profile: str = "authors") -> str:
    """``METHOD__model.h5``; runs of the "corrected" profile get ``__corrected`` appended (the
    default "authors" profile keeps the plain name). Methods without a classifier: ``METHOD.h5``."""
    tag = model_tag(model) if uses_classifier else ""
    if tag and profile and profile != "authors":
        tag = f"{tag}__{safe_name(profile)}"
    return f"{safe_name(method.upper())}__{tag}.h5" if tag else f"{safe_name(method.upper())}.h5"


def run_path(out_dir, dataset_key: str, method: str, model=None, uses_classifier: bool = True,
             profile: str = "authors") -> Path:
    return Path(out_dir) / safe_name(dataset_key) / run_filename(method, model, uses_classifier, profile)


_q = entry_key


def partial_dir(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".partial")


# ----------------------------------------------------------------------------- reading
@dataclass
class StoredRun:
    """A run read back: proposals and failures per image id, plus the run's attributes."""

    path: Path
    meta: dict
    image_ids: List[str]
    boxes: Dict[str, np.ndarray]
    scores: Dict[str, np.ndarray]
    image_attrs: Dict[str, dict]
    failures: Dict[str, str] = field(default_factory=dict)
    num_partial_chunks: int = 0
    #: damaged per-image entries left out (``load_run(..., skip_corrupt=True)``): "path: why"
    corrupt: List[str] = field(default_factory=list)

    def proposals(self) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
        return {i: (self.boxes[i], self.scores[i]) for i in self.image_ids}

    def __len__(self):
        return len(self.image_ids)


_attrs = h5_attrs


def check_entry(data) -> None:
    """The check of a per-image entry's datasets (``validate`` of the run's stores): boxes and
    scores present and usable (:func:`stl.core.boxes.check_windows`); ``ValueError`` saying why."""
    missing = [n for n in ("boxes", "scores") if n not in data]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    check_windows(data["boxes"], data["scores"])


def _entries(path: Path) -> Store:
    """The per-image entries of an unfinished run."""
    return Store(partial_dir(path), validate=check_entry)


def _failed_entries(path: Path) -> Store:
    return Store(partial_dir(path) / "failures")


def _read_entries(path: Path, max_windows: Optional[int] = None, corrupt: Optional[List[str]] = None):
    """Like :func:`_read_file`, for the per-image entries beside a run file (meta = the entries' identity).
    A damaged entry raises :class:`CorruptFileError`, or is listed in ``corrupt`` and left out when a
    list is given. An entry removed while it is read (a consolidation) is left out."""
    store, fstore = _entries(path), _failed_entries(path)
    entries, failures = {}, {}
    sl = slice(None) if max_windows is None else slice(0, max_windows)

    def damaged(e):
        if corrupt is None:
            raise CorruptFileError(e.path, f"{e} -- an unfinished run's entry: rerun the same `stl run` to set it "
                                           f"aside and recompute the image, or evaluate the rest with "
                                           f"--skip-corrupt") from None
        corrupt.append(str(e))

    for p in store.files():
        try:
            data, a = store.read_file(p)
        except FileNotFoundError:
            continue
        except CorruptFileError as e:
            damaged(e)
            continue
        i = str(a.get("image_id") or store.id_of(p))
        entries[i] = (data["boxes"].astype(np.float32)[sl], data["scores"].astype(np.float32)[sl], a)
    for p in fstore.files():
        try:
            _, a = fstore.read_file(p, names=())
        except FileNotFoundError:
            continue
        except CorruptFileError as e:
            damaged(e)
            continue
        failures[str(a.get("image_id") or fstore.id_of(p))] = (a.get("error", ""), a.get("message", ""))
    return dict(store.identity), sorted(entries), entries, failures


def set_aside_corrupt_entries(path) -> List[Tuple[Path, str]]:
    """Rename the per-image entries of ``path`` that do not read back whole to ``<entry>.corrupt``
    (kept for inspection; their images are then computed again). Returns [(new path, why)]."""
    out = []
    for store, names in ((_entries(Path(path)), ("boxes", "scores")), (_failed_entries(Path(path)), ())):
        for p in store.files():
            why = store.check_file(p, names)
            if why:
                new = store.set_aside_file(p)
                log.warning("%s -- set aside as %s; its image will be computed again", why, new.name)
                out.append((new, why))
    return out


def _num_entries(path: Path) -> int:
    return len(_entries(path)) + len(_failed_entries(path))


def _run_checksum(ids: Sequence[str], sums: Dict[str, str], attrs: Dict[str, dict]) -> str:
    """The run file's ``checksum``: BLAKE2b of its image ids in order, each group's ``checksums``
    attribute (as stored) and each image's height and width."""
    import hashlib

    rows = [[i, sums.get(i), (attrs.get(i) or {}).get("height"), (attrs.get(i) or {}).get("width")] for i in ids]
    return "blake2b:" + hashlib.blake2b(json.dumps(rows, default=str).encode(), digest_size=16).hexdigest()


def _image_ids_of(f) -> List[str]:
    return [s.decode() if isinstance(s, bytes) else str(s) for s in f["image_ids"][()]] if "image_ids" in f else []


def _read_file(path: Path, max_windows: Optional[int] = None):
    """(meta, ordered ids, entries {id: (boxes, scores, attrs)}, failures {id: (error, message)}), every
    image's windows checked and, where the file has them, its checksums verified."""
    entries, failures, sums = {}, {}, {}
    with open_h5(path, "stl run file") as f:
        meta = _attrs(f)
        if meta.get("format") != FORMAT:
            raise RunError(f"{path}: not an stl run file (format {meta.get('format')!r}; "
                           f"`stl run` writes {FORMAT!r})")
        sl = slice(None) if max_windows is None else slice(0, max_windows)
        for q, g in f.get("images", {}).items():
            if g is None or "boxes" not in g or "scores" not in g:  # None: a link h5py cannot follow
                raise CorruptFileError(path, f"{path}: damaged stl run file (images/{q} has no boxes/scores)")
            a = _attrs(g)
            data = {"boxes": g["boxes"][()], "scores": g["scores"][()]}
            stored = a.pop(CHECKSUMS_ATTR, None)
            why = checksum_error(data, stored)
            try:
                boxes, scores = check_windows(data["boxes"], data["scores"]) if why is None else (None, None)
            except ValueError as e:
                why = str(e)
            if why:
                raise CorruptFileError(path, f"{path}: damaged stl run file (images/{q}: {why})")
            i = str(a.get("image_id", unquote(q)))
            entries[i] = (boxes[sl], scores[sl], a)
            sums[i] = stored
        for q, g in f.get("failures", {}).items():
            if g is None:
                raise CorruptFileError(path, f"{path}: damaged stl run file (failures/{q} cannot be read)")
            a = _attrs(g)
            failures[str(a.get("image_id", unquote(q)))] = (a.get("error", ""), a.get("message", ""))
        listed = _image_ids_of(f)
    want = meta.pop("checksum", None)
    if want is not None and want != _run_checksum(listed, sums, {i: e[2] for i, e in entries.items()}):
        raise CorruptFileError(path, f"{path}: damaged stl run file (its image list or sizes do not match the "
                                     f"stored checksum)")
    order = [i for i in listed if i in entries] + sorted(set(entries) - set(listed))
    return meta, order, entries, failures


def stored_ids(path) -> set:
    """Ids of the images stored in a run file and its per-image entries (failures not included)."""
    path = Path(path)
    ids = set(_entries(path).ids())
    if path.exists():
        with open_h5(path, "stl run file") as f:
            if "image_ids" in f:
                ids.update(_image_ids_of(f))
            else:
                ids.update(str(_attrs(g).get("image_id", unquote(q))) for q, g in f.get("images", {}).items())
    return ids


def _file_state(path: Path):
    """What changes when a consolidation renames a new run file over ``path`` (None: no file)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size


def load_run(path, include_partial: bool = True, max_windows: Optional[int] = None,
             skip_corrupt: bool = False) -> StoredRun:
    """Read a run file (and, by default, the per-image entries an interrupted run left beside it).

    A damaged run file raises :class:`stl.errors.CorruptFileError` naming it; so does a damaged
    per-image entry, unless ``skip_corrupt`` (then it is left out and listed in ``corrupt``).
    A run being consolidated while it is read (``stl eval`` during ``stl run``) is read again, so
    the merge of the entries into the run file is never seen half-done."""
    path = Path(path)
    if path.is_dir():
        raise CorruptFileError(path, f"{path}: is a folder, not an stl run file (RUN.h5)")
    for attempt in range(READ_ATTEMPTS):
        state = _file_state(path)
        try:
            run = _load_run_once(path, include_partial, max_windows, skip_corrupt)
        except (CorruptFileError, RunError, FileNotFoundError) as e:
            gone = isinstance(e, FileNotFoundError) and not isinstance(e, UserError)  # an entry removed meanwhile
            if attempt == READ_ATTEMPTS - 1 or (not gone and _file_state(path) == state):
                raise
            time.sleep(0.05 * attempt)
            continue  # the run file was replaced (or entries removed) while it was read: read again
        if _file_state(path) == state:
            return run
        time.sleep(0.05 * attempt)
    raise RunError(f"{path}: changed {READ_ATTEMPTS} times while being read (a run consolidating it again and "
                   f"again?); try again")


def _load_run_once(path: Path, include_partial: bool, max_windows: Optional[int], skip_corrupt: bool) -> StoredRun:
    n_partial = _num_entries(path) if include_partial else 0
    exists = path.exists()
    if not exists and not n_partial:
        raise RunError(f"{path}: no such run file (and no unfinished entries in {partial_dir(path)})")
    corrupt: List[str] = []
    sources = ([_read_file(path, max_windows)] if exists else []) + \
        ([_read_entries(path, max_windows, corrupt if skip_corrupt else None)] if n_partial else [])
    meta, order, boxes, scores, attrs, failures = {}, [], {}, {}, {}, {}
    for k, (m, o, e, fl) in enumerate(sources):
        if not meta or (k == 0 and exists):
            meta = m
        for i, err in fl.items():
            if i not in boxes:
                failures[i] = err[1] if not err[0] else f"{err[0]}: {err[1]}"
        for i in o:
            if i not in boxes:
                order.append(i)
                boxes[i], scores[i], attrs[i] = e[i]
                failures.pop(i, None)
    return StoredRun(path, meta, order, boxes, scores, attrs, failures, num_partial_chunks=n_partial,
                     corrupt=corrupt)


# ----------------------------------------------------------------------------- writing
_write_meta = write_h5_attrs


def _write_failure(fails, image_id, error, message):
    g = fails.require_group(_q(image_id))
    g.attrs["image_id"] = image_id
    g.attrs["error"] = error
    g.attrs["message"] = message


def _identity(meta: dict) -> dict:
    """Run attributes as stored in the entries' ``store.json`` (dicts/lists JSON-encoded, as in HDF5)."""
    return {k: (json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list, tuple)) else v)
            for k, v in meta.items() if v is not None}


def consolidate(path, order: Optional[Sequence[str]] = None, meta_update: Optional[dict] = None,
                dataset_ids: Optional[Sequence[str]] = None) -> bool:
    """Merge the run file and its per-image entries into a new run file (atomically: written to a
    temporary file and renamed over the old one, so readers see the old file or the new one), then
    delete the entries. Images are listed in ``order`` (the dataset's order) first. Every image is
    checked as it is read (a damaged run file or entry raises :class:`CorruptFileError` naming it,
    and nothing changes) and stored with its checksums. Returns True if the run file was (re)written.
    A full disk raises :class:`stl.errors.WriteError` naming the run file; the old file and the
    entries stay."""
    path = Path(path)
    store, fstore = _entries(path), _failed_entries(path)
    efiles, ffiles = store.files(), fstore.files()
    if not efiles and not ffiles and (not meta_update or not path.exists()):
        return False
    meta, old_order, images, failures = _read_file(path) if path.exists() else ({}, [], {}, {})
    images = {i: images[i] for i in old_order}
    failures = {i: f for i, f in failures.items() if i not in images}
    if not meta:
        meta = dict(store.identity or fstore.identity)
    for p in ffiles:
        _, a = fstore.read_file(p, names=())
        i = str(a.get("image_id") or fstore.id_of(p))
        if i not in images:
            failures[i] = (a.get("error", ""), a.get("message", ""))
    for p in efiles:
        data, a = store.read_file(p)
        i = str(a.get("image_id") or store.id_of(p))
        if i in images:
            continue
        images[i] = (data["boxes"].astype(np.float32).reshape(-1, 4), data["scores"].astype(np.float32).reshape(-1),
                     a)
        failures.pop(i, None)
    pos = {i: k for k, i in enumerate(order or [])}
    ids = sorted(images, key=lambda i: (pos.get(i, len(pos)), i))
    import h5py

    with h5_output(path) as out:
        group = out.create_group("images")
        sums = {}
        for i in ids:
            boxes, scores, a = images[i]
            g = group.create_group(entry_key(i))
            g.create_dataset("boxes", data=boxes)
            g.create_dataset("scores", data=scores)
            sums[i] = json.dumps(checksums({"boxes": boxes, "scores": scores}), sort_keys=True)
            write_h5_attrs(g, {**a, "image_id": i, CHECKSUMS_ATTR: sums[i]})
        fails = out.create_group("failures")
        for i in sorted(failures):
            _write_failure(fails, i, *failures[i])
        out.create_dataset("image_ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
        meta.update(meta_update or {})
        meta["num_images"] = len(ids)
        meta["num_failures"] = len(failures)
        if dataset_ids is not None:
            want = set(dataset_ids)
            meta["dataset_size"] = len(want)
            meta["complete"] = bool(want <= (set(ids) | set(failures)))
        meta["checksum"] = _run_checksum(ids, sums, {i: images[i][2] for i in ids})
        _write_meta(out, meta)
    fstore.remove()
    store.remove()
    return True


# ----------------------------------------------------------------------------- locking
@contextmanager
def run_lock(path: Path):
    """The run's writers' lock (``<run>.h5.lock``, :func:`stl.store.file_lock`); RunError if held."""
    path = Path(path)
    try:
        with file_lock(path.with_name(path.name + ".lock"), what=str(path)):
            yield
    except StoreLocked as e:
        raise RunError(f"{e} (a second `stl run` on the same output?)") from None


def _remove_stale_temps(path: Path):
    if path.parent.is_dir():
        for t in path.parent.glob(f".{path.name}*.tmp"):
            t.unlink(missing_ok=True)
    _entries(path).remove_stale_temps()
    _failed_entries(path).remove_stale_temps()


# ----------------------------------------------------------------------------- running
@dataclass
class RunSummary:
    path: Path
    computed: int
    skipped: int
    failures: Dict[str, str]
    seconds: float
    complete: bool


def _check_identity(path: Path, meta: dict, dataset=None):
    if path.exists():
        try:
            with open_h5(path, "stl run file") as f:
                old = _attrs(f)
        except CorruptFileError as e:
            raise RunError(f"{e}; it cannot be continued: move it away (keep it) and rerun to start "
                           f"again") from None
        if old.get("format") != FORMAT:
            raise RunError(f"{path} exists and is not an stl run file (format {old.get('format')!r}); "
                           f"use another --out or move it away")
    else:
        old = _entries(path).stored_identity() or _failed_entries(path).stored_identity()
        if old is None:
            return
    new = _identity(meta)
    bad = [k for k in IDENTITY_KEYS if k in old and k in new and str(old[k]) != str(new[k])]
    if bad:
        raise RunError(f"{path} was made with other settings ({', '.join(f'{k}: {old[k]!r} vs {new[k]!r}' for k in bad)}); "
                       f"use another --out or delete it")
    if old.get("root") and meta.get("root") and old["root"] != meta["root"]:
        if dataset is not None:
            _check_sizes_on_root(path, dataset, old["root"], meta["root"])
        log.warning("%s was started on dataset root %s, continuing with %s", path, old["root"], meta["root"])


def _check_sizes_on_root(path: Path, dataset, old_root, new_root):
    """Refuse to continue a run on another root whose images have other sizes than the stored ones
    (the run would mix windows of two image sets: no root could evaluate it)."""
    run = load_run(path, max_windows=1, skip_corrupt=True)
    for image_id in run.image_ids:
        a = run.image_attrs.get(image_id) or {}
        if a.get("height") is None or a.get("width") is None or image_id not in dataset:
            continue  # runs of stl < 0.2 did not record sizes
        try:
            rec = dataset.record(image_id)
        except Exception:  # a bad annotation: that image fails on its own
            continue
        h, w = int(a["height"]), int(a["width"])
        if (h, w) != tuple(rec.size):
            raise RunError(f"{path}: image {image_id} was computed on a {w}x{h} image (root {old_root}), but "
                           f"{rec.path or image_id} of --root {new_root} is {rec.size[1]}x{rec.size[0]}: the "
                           f"run cannot be continued on another image set (use another --out, or the first root)")


class _Terminate(KeyboardInterrupt):
    pass


@contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into KeyboardInterrupt (main thread only) so the run consolidates."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminate(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_method(dataset, method, path, *, method_name: Optional[str] = None, model=None,
               chunk_size: int = DEFAULT_CHUNK, max_windows: int = DEFAULT_MAX_WINDOWS, progress: bool = True,
               extra_meta: Optional[dict] = None, executor=None) -> RunSummary:
    """Compute ``method`` on every image of ``dataset`` not yet in ``path``; store and consolidate.

    ``method.propose_batch`` is called on chunks of ``chunk_size`` images (STL
    shares classifier batches across them); if it raises, the chunk's images
    are retried one at a time and the failing ones recorded. STL-CL (methods
    with ``needs_label``) gets each image's labels.

    ``executor`` (:mod:`stl.executors`; default: this process) computes the chunks;
    ``method`` is then a live method or a :class:`stl.executors.MethodSpec` its workers
    build. This function stays the only writer of the store: each image is committed
    as its chunk comes back, in whatever order the workers finish.
    """
    from .executors.local import LocalExecutor

    path = Path(path)
    _check_run_arguments([path], chunk_size, max_windows)
    executor = executor if executor is not None else LocalExecutor()
    ids = dataset.image_ids
    t0 = time.time()
    with run_lock(path):
        try:
            info = executor.start(method, method_name, model)
            meta = _run_meta(dataset, info, executor, max_windows, extra_meta)
            summary = _run_locked(dataset, executor, info, meta, path, ids, chunk_size, max_windows, progress)
        finally:
            executor.close()
    return _summary(path, ids, summary, t0)


def _check_run_arguments(paths, chunk_size: int, max_windows: int) -> None:
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if max_windows < 1:
        raise ValueError(f"max_windows must be >= 1, not {max_windows}")
    for path in paths:
        if Path(path).is_dir():
            raise RunError(f"{path} is a folder; the run file needs that name (use another --out)")


def _summary(path: Path, ids, result, t0: float) -> RunSummary:
    """The :class:`RunSummary` of a finished run: ``result`` = (computed, skipped, failures)."""
    computed, skipped, failures_now = result
    final = load_run(path, include_partial=False) if path.exists() else None
    complete = bool(final and set(ids) <= set(final.image_ids) | set(final.failures))
    return RunSummary(path, computed, skipped, failures_now, time.time() - t0, complete)


class _RunJob:
    """One method's run under its lock: what is stored already, its stores and bar; it commits each
    finished image and records failures (:func:`run_method`, :func:`run_methods`)."""

    def __init__(self, dataset, executor, info, meta, path, ids, chunk_size, progress):
        from .progress import job_bar

        self.path, self.ids, self.info = path, ids, info
        self.computed, self.failures_now = 0, {}
        for folder in (partial_dir(path), partial_dir(path) / "failures"):  # before computing anything
            why = folder_write_error(folder) if folder.is_dir() else None
            if why:
                raise RunError(f"{folder}: the unfinished run's folder is not writable ({why}); nothing would be "
                               f"stored: make it writable, or move it away to start again")
        _remove_stale_temps(path)
        _check_identity(path, meta, dataset)
        set_aside_corrupt_entries(path)
        done = stored_ids(path)
        self.todo = [i for i in ids if i not in done]
        self.todo_set = set(self.todo)
        self.skipped = len(ids) - len(self.todo)
        if self.skipped:
            log.info("%s: %d of %d images already done, computing %d", path, self.skipped, len(ids), len(self.todo))
        if info["needs_label"] and self.todo:
            err = executor.check_labels(dataset.record(self.todo[0]))
            if err:
                raise RunError(err)
        identity = _identity(meta)
        try:
            self.store = Store(partial_dir(path), identity, IDENTITY_KEYS, validate=check_entry)
            self.fstore = Store(partial_dir(path) / "failures", identity, IDENTITY_KEYS)
        except StoreMismatch as e:
            raise RunError(str(e)) from None
        # one bar per run: images, moved inside the chunk in flight by STL's forwards (stl.progress)
        self.bar = job_bar(total=len(ids), initial=self.skipped, enabled=progress,
                           desc=f"{meta['method']} {dataset.key}", chunk=chunk_size)

    def commit(self, entry):
        """Store one finished image at once (an atomic entry); windows the store refuses fail the image."""
        image_id, boxes, scores, attrs = entry
        try:
            self.store.write(image_id, {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
                                        "scores": np.asarray(scores, np.float32).reshape(-1)}, attrs)
        except ValueError as e:
            self.fail({image_id: ("ValueError", f"{image_id}: unusable windows: {e}")})
            return
        self.fstore.delete(image_id)
        self.computed += 1
        self.bar.update(1)

    def fail(self, fails):
        for image_id, (err, msg) in fails.items():
            self.fstore.write(image_id, {}, {"error": err, "message": msg})
        self.failures_now.update({i: f"{e}: {m}" for i, (e, m) in fails.items()})
        self.bar.update(len(fails))
        if fails:
            self.bar.write(f"{len(fails)} image(s) failed: " + "; ".join(
                f"{i}: {m}" for i, (e, m) in list(fails.items())[:3]))

    def chunk_done(self, entries, fails, status=None):
        """What a chunk returned: images not committed on the way (executors that return a chunk's
        images at once: Ray), failures, the executor's status line."""
        for entry in entries:
            self.commit(entry)
        self.fail(fails)
        if status:
            self.bar.set_postfix_str(status, refresh=False)

    def abort(self):
        """After an error or an interrupt: what was finished goes into the run file; a failure here
        must not hide the first error."""
        self.bar.close()
        try:
            consolidate(self.path, order=self.ids, dataset_ids=self.ids)
        except Exception as e:
            log.debug("%s: not consolidated (%s); the finished images stay in %s and a rerun merges them",
                      self.path, one_line(e), partial_dir(self.path))

    def finish(self):
        self.bar.close()
        consolidate(self.path, order=self.ids, dataset_ids=self.ids)
        return self.computed, self.skipped, self.failures_now


def _run_locked(dataset, executor, info, meta, path, ids, chunk_size, max_windows, progress):
    """The body of :func:`run_method` under the run's lock: skip what is stored, stream
    the rest through ``executor``, commit each image, consolidate."""
    job = _RunJob(dataset, executor, info, meta, path, ids, chunk_size, progress)
    try:
        with _sigterm_as_interrupt(), job.bar.tracking():
            chunks = [job.todo[start:start + chunk_size] for start in range(0, len(job.todo), chunk_size)]
            for entries, fails in executor.imap(dataset, chunks, max_windows, on_entry=job.commit):
                job.chunk_done(entries, fails, executor.status())
    except BaseException:
        job.abort()
        raise
    return job.finish()


def _run_meta(dataset, info, executor, max_windows, extra_meta=None) -> dict:
    meta = dict(format=FORMAT, **dataset.meta(), **info["meta"], max_windows=int(max_windows),
                stl_version=_stl_version(), created=time.strftime("%Y-%m-%d %H:%M:%S"))
    if executor.name != "local":
        meta["executor"] = executor.describe()
    meta.update(extra_meta or {})
    return meta


@dataclass
class MethodJob:
    """One method of :func:`run_methods`: the live method, its run file, its name and model tag."""

    method: object
    path: Path
    method_name: Optional[str] = None
    model: Optional[str] = None


def run_methods(dataset, jobs: Sequence[MethodJob], *, chunk_size: int = DEFAULT_CHUNK,
                max_windows: int = DEFAULT_MAX_WINDOWS, progress: bool = True, threads: Optional[int] = None
                ) -> List[RunSummary]:
    """Several methods over the same images in ONE pass, in this process: each chunk of images is
    computed by every method in turn before the next chunk, so methods that share a forward cache
    (STL-WL, STL-CL and STL+ on one classifier and config:
    :func:`stl.proposals.stl_methods.shared_contexts`) evaluate each masked image and crop once.

    Each method keeps its own run file, lock, store, bar and failures exactly as
    :func:`run_method` (which it equals for one method); each image is committed the moment it is
    finished. Returns one :class:`RunSummary` per job, in order.
    """
    from contextlib import ExitStack

    from .executors.local import LocalExecutor

    _check_run_arguments([j.path for j in jobs], chunk_size, max_windows)
    ids = dataset.image_ids
    t0 = time.time()
    live = []
    with ExitStack() as stack:
        for j in jobs:
            path = Path(j.path)
            stack.enter_context(run_lock(path))
            executor = LocalExecutor(threads=threads)
            stack.callback(executor.close)
            info = executor.start(j.method, j.method_name, j.model)
            meta = _run_meta(dataset, info, executor, max_windows)
            live.append((executor, _RunJob(dataset, executor, info, meta, path, ids, chunk_size, progress)))
        todo = set().union(*[job.todo_set for _, job in live]) if live else set()
        order = [i for i in ids if i in todo]
        try:
            with _sigterm_as_interrupt():
                for start in range(0, len(order), chunk_size):
                    chunk = order[start:start + chunk_size]
                    for executor, job in live:
                        mine = [i for i in chunk if i in job.todo_set]
                        if not mine:
                            continue
                        with job.bar.tracking():
                            for entries, fails in executor.imap(dataset, [mine], max_windows, on_entry=job.commit):
                                job.chunk_done(entries, fails)
        except BaseException:
            for _, job in live:
                job.abort()
            raise
        results = [job.finish() for _, job in live]
    return [_summary(job.path, ids, result, t0) for (_, job), result in zip(live, results)]


def run_jobs(dataset, jobs: Sequence[MethodJob], executor=None, *, chunk_size: int = DEFAULT_CHUNK,
             max_windows: int = DEFAULT_MAX_WINDOWS, progress: bool = True) -> List[RunSummary]:
    """Every job over ``dataset``: in one pass (:func:`run_methods`) when there are several and the
    executor runs them in this process, so methods sharing a forward cache share it; otherwise one
    :func:`run_method` after the other (a Ray worker keeps only its latest chunk). One
    :class:`RunSummary` per job, in order."""
    if executor is not None and executor.builds_locally and len(jobs) > 1:
        return run_methods(dataset, jobs, chunk_size=chunk_size, max_windows=max_windows, progress=progress,
                           threads=getattr(executor, "threads", None))
    return [run_method(dataset, j.method, j.path, method_name=j.method_name, model=j.model, chunk_size=chunk_size,
                       max_windows=max_windows, progress=progress, executor=executor) for j in jobs]


def _stl_version() -> str:
    try:
        from importlib.metadata import version

        return version("stl")
    except Exception:  # pragma: no cover
        return "unknown"
