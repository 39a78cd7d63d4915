"""One resumable, per-image, atomic on-disk store (used by the runner and the detection feature cache).

A :class:`Store` is a folder::

    <root>/store.json        identity: what made the entries (format, model, settings, ...)
    <root>/<quoted id>.h5    one entry per image: HDF5 datasets + attributes
    <root>.lock              the writers' lock (:mod:`filelock`)

Guarantees (tested by ``tests/test_store.py`` and the runner's kill -9 test):

* **atomic entries** -- an entry is written to a temporary file in the same
  folder, flushed with ``fsync`` and renamed over its final name
  (``os.replace``), so a process killed at any instant (SIGKILL included)
  leaves only whole entries; temporaries left by a killed writer are removed
  by the next writer (:meth:`Store.remove_stale_temps`).
* **resumable** -- :meth:`Store.ids` lists what is stored; a rerun computes
  only the rest.
* **readable while written** -- readers never see a half-written entry (see
  above) and take no lock.
* **one writer** -- :meth:`Store.lock` is an OS file lock (``flock``), so a
  writer killed with SIGKILL releases it with its process; a second writer
  gets :class:`StoreLocked` at once (``wait=False``) or waits (``wait=True``).
* **identity** -- opening a store whose ``store.json`` disagrees on one of the
  ``identity_keys`` raises :class:`StoreMismatch` (use another folder).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, unquote

import numpy as np

from .errors import CorruptFileError, UserError
from .io import atomic_path

IDENTITY_FILE = "store.json"
SUFFIX = ".h5"


class StoreError(UserError, RuntimeError):
    """A store that cannot be used as asked."""


class StoreLocked(StoreError):
    """Another process holds the store's lock."""


class StoreMismatch(StoreError):
    """The store was made with other settings."""


def quote_id(image_id) -> str:
    """A file-name-safe form of an image id (``/`` and ``%`` percent-escaped)."""
    return quote(str(image_id), safe="")


def fsync_file(path) -> None:
    """Flush a file to disk and give it the usual permissions (``mkstemp`` creates 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def open_h5(path, what: str = "HDF5 file"):
    """``h5py.File(path, "r")``; a file that cannot be opened or read (truncated, not HDF5, a folder) raises
    :class:`stl.errors.CorruptFileError` naming ``path`` (h5py's own messages do not)."""
    import h5py

    path = Path(path)
    if path.is_dir():
        raise CorruptFileError(path, f"{path}: is a folder, not an {what}")
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise CorruptFileError(path, f"{path}: not a readable {what} (truncated, or not HDF5? "
                                     f"{str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    try:
        with f:
            yield f
    except (OSError, KeyError) as e:
        if isinstance(e, UserError):
            raise
        raise CorruptFileError(path, f"{path}: damaged {what} (truncated? {type(e).__name__}: "
                                     f"{str(e).splitlines()[0] if str(e) else ''})") from None


def h5_attrs(obj) -> dict:
    """HDF5 attributes as plain Python values (bytes decoded, numpy scalars unwrapped)."""
    out = {}
    for k, v in obj.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def write_h5_attrs(obj, attrs: Mapping) -> None:
    """Write attributes; dicts / lists become JSON, None is skipped."""
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, (dict, list, tuple)):
            v = json.dumps(v, sort_keys=True, default=str)
        obj.attrs[k] = v


class Store:
    """A folder of per-image HDF5 entries with an identity record and a writers' lock.

    ``identity`` (a JSON-able dict) is written to ``store.json`` on the first
    write; when the store already has one, the keys in ``identity_keys``
    (default: all of ``identity``) must agree, else :class:`StoreMismatch`.
    ``identity=None`` opens an existing store for reading and adopts its
    identity.
    """

    def __init__(self, root, identity: Optional[dict] = None, identity_keys: Optional[Sequence[str]] = None):
        self.root = Path(root)
        self.identity_keys = tuple(identity_keys) if identity_keys is not None else (
            tuple(identity) if identity else ())
        stored = self.stored_identity()
        if identity is None:
            self.identity = stored or {}
        else:
            self.identity = dict(identity)
            if stored is not None:
                bad = [k for k in self.identity_keys if str(stored.get(k)) != str(self.identity.get(k))]
                if bad:
                    raise StoreMismatch(
                        f"{self.root} was made with other settings ("
                        + ", ".join(f"{k}: {stored.get(k)!r} vs {self.identity.get(k)!r}" for k in bad)
                        + "); use another folder or delete it")

    # -- identity -------------------------------------------------------------------
    def stored_identity(self) -> Optional[dict]:
        p = self.root / IDENTITY_FILE
        if not p.is_file():
            return None
        try:
            identity = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptFileError(p, f"{p}: damaged identity record ({e}); the entries beside it cannot be "
                                      f"attributed; move {self.root} away") from None
        if not isinstance(identity, dict):
            raise CorruptFileError(p, f"{p}: damaged identity record (not a JSON object); move {self.root} away")
        return identity

    def _write_identity(self):
        p = self.root / IDENTITY_FILE
        if not p.exists() and self.identity:
            with atomic_path(p) as tmp:
                Path(tmp).write_text(json.dumps(self.identity, indent=1, sort_keys=True, default=str))

    # -- entries --------------------------------------------------------------------
    def path(self, image_id) -> Path:
        return self.root / f"{quote_id(image_id)}{SUFFIX}"

    def exists(self) -> bool:
        return self.root.is_dir()

    def __contains__(self, image_id) -> bool:
        return self.path(image_id).is_file()

    def files(self) -> List[Path]:
        """Entry files, sorted by name (no temporaries)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob(f"*{SUFFIX}") if not p.name.startswith("."))

    def ids(self) -> List[str]:
        """Ids of the stored entries (sorted by file name)."""
        return [unquote(p.name[:-len(SUFFIX)]) for p in self.files()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def __len__(self) -> int:
        return len(self.files())

    def write(self, image_id, datasets: Mapping[str, np.ndarray], attrs: Optional[Mapping] = None,
              dtypes: Optional[Mapping[str, object]] = None) -> Path:
        """Write (or replace) one entry atomically: temporary file, fsync, rename."""
        import h5py

        self.root.mkdir(parents=True, exist_ok=True)
        self._write_identity()
        path = self.path(image_id)
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                for name, arr in datasets.items():
                    dt = (dtypes or {}).get(name)
                    f.create_dataset(name, data=arr if dt is None else np.asarray(arr, dt))
                write_h5_attrs(f, {"image_id": str(image_id), **dict(attrs or {})})
            fsync_file(tmp)
        return path

    def read(self, image_id, names: Optional[Sequence[str]] = None) -> Tuple[Dict[str, np.ndarray], dict]:
        """(datasets, attributes) of one entry; ``KeyError`` if it is not stored."""
        path = self.path(image_id)
        if not path.is_file():
            raise KeyError(f"{self.root}: no entry for {image_id!r}")
        with open_h5(path, "entry") as f:
            data = {k: f[k][()] for k in (names if names is not None else f.keys())}
            return data, h5_attrs(f)

    def check(self, image_id, names: Sequence[str] = ()) -> Optional[str]:
        """None if the entry reads back whole (its ``names`` datasets present), else why not."""
        try:
            data, _ = self.read(image_id)
        except CorruptFileError as e:
            return str(e)
        missing = [n for n in names if n not in data]
        return f"{self.path(image_id)}: damaged entry (no {', '.join(missing)})" if missing else None

    def set_aside(self, image_id) -> Path:
        """Rename an entry to ``<entry>.corrupt[.N]`` (kept, no longer listed); returns the new path."""
        src = self.path(image_id)
        dst = src.with_name(src.name + ".corrupt")
        n = 1
        while dst.exists():
            dst = src.with_name(f"{src.name}.corrupt.{n}")
            n += 1
        os.replace(src, dst)
        return dst

    def corrupt_files(self) -> List[Path]:
        """Entries set aside by :meth:`set_aside`."""
        return sorted(self.root.glob(f"*{SUFFIX}.corrupt*")) if self.root.is_dir() else []

    def delete(self, image_id) -> None:
        self.path(image_id).unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete every entry, the identity record and the folder (if nothing else is in it)."""
        for p in self.files():
            p.unlink()
        (self.root / IDENTITY_FILE).unlink(missing_ok=True)
        try:
            self.root.rmdir()
        except OSError:
            pass

    def remove_stale_temps(self) -> int:
        """Delete temporaries a killed writer left (call while holding the lock)."""
        n = 0
        if self.root.is_dir():
            for t in self.root.glob(".*.tmp"):
                t.unlink(missing_ok=True)
                n += 1
        return n

    # -- locking --------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.root.with_name(self.root.name + ".lock")

    @contextmanager
    def lock(self, wait: bool = False):
        """Hold the writers' lock; :class:`StoreLocked` if another process has it and not ``wait``."""
        yield from _locked(self.lock_path, wait, what=str(self.root))


def _locked(lock_path: Path, wait: bool, what: str):
    from filelock import FileLock, Timeout

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        raise StoreLocked(f"{what} is being written by another process (lock {lock_path})") from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def file_lock(lock_path, wait: bool = False, what: str = ""):
    """The store's lock for any path (the runner locks ``<run>.h5.lock``)."""
    yield from _locked(Path(lock_path), wait, what or str(lock_path))


def is_locked(lock_path) -> bool:
    """Whether some process holds the lock at ``lock_path`` now."""
    from filelock import FileLock, Timeout

    if not Path(lock_path).exists():
        return False
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


class RunError(UserError, RuntimeError):
    """A stored run cannot be continued (locked, or made with other settings)."""
