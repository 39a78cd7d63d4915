"""One resumable, per-image, atomic on-disk store (used by the runner and the detection feature cache).

A :class:`Store` is a folder::

    <root>/store.json        identity: what made the entries (format, model, settings, ...)
    <root>/<entry name>      one entry per image: HDF5 datasets + attributes (:func:`entry_name`)
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
* **any id** -- an entry's file name is :func:`entry_name` of its id: a readable ASCII prefix
  and a hash of the whole id, so every id (``.x``, ``../x``, 245 characters, CJK, ids that
  differ only in case) gets a safe, distinct, bounded name; the id itself is stored inside
  the entry (``image_id``), which is how :meth:`Store.ids` maps names back. Entries written
  by stl <= 0.3 under percent-quoted names are still found and read.
* **checked** -- every numeric dataset is stored with its checksum (``checksums``, BLAKE2b),
  verified when it is read; a store made with ``validate=`` checks each entry's content when
  it is written and when it is read. A damaged entry is a :class:`stl.errors.CorruptFileError`
  naming its file.
* **disk full** -- an entry is built in memory and written with one plain write, so a full
  disk (``ENOSPC``) is a :class:`stl.errors.WriteError` naming the entry, never a half-written
  HDF5 file, and the old entry (if any) stays.
"""
from __future__ import annotations

import errno
import hashlib
import io
import itertools
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, unquote

import numpy as np

from .errors import CorruptFileError, UserError, WriteError
from .io import atomic_path

IDENTITY_FILE = "store.json"
SUFFIX = ".h5"
#: longest readable prefix of an entry name (ASCII); the whole name stays under 100 bytes, far
#: below the 255-byte limit of file names even with a temporary's or ``.corrupt.N`` suffix
ENTRY_PREFIX_MAX = 64
#: attribute holding the checksums of an entry's (or a run file group's) numeric datasets
CHECKSUMS_ATTR = "checksums"


class StoreError(UserError, RuntimeError):
    """A store that cannot be used as asked."""


class StoreLocked(StoreError):
    """Another process holds the store's lock."""


class StoreMismatch(StoreError):
    """The store was made with other settings."""


def quote_id(image_id) -> str:
    """The percent-quoted form of an image id that stl <= 0.3 named entries and run-file groups
    by (read only, for stores and run files on disk; new ones use :func:`entry_key`)."""
    return quote(str(image_id), safe="")


def entry_key(image_id) -> str:
    """A safe, distinct, bounded name for an image id (entry files, run-file groups).

    ``<prefix>~<hash>``: the id with every run of characters other than ASCII letters, digits,
    ``.``, ``_`` and ``-`` replaced by ``_``, leading dots replaced by ``_`` (never a hidden
    file, never ``.`` or ``..``), cut to :data:`ENTRY_PREFIX_MAX` characters; then 16 hex
    digits of the BLAKE2b hash of the whole id (UTF-8), so ids that differ anywhere -- also
    only in case, or after the prefix -- get different names. The id cannot be recovered
    from the name: it is stored inside the entry.

    Parameters
    ----------
    image_id : str
        Any image id.

    Returns
    -------
    str
        At most ``ENTRY_PREFIX_MAX + 17`` ASCII characters.
    """
    text = str(image_id)
    prefix = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
    prefix = re.sub(r"^\.+", "_", prefix)[:ENTRY_PREFIX_MAX] or "_"
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"{prefix}~{digest}"


def entry_name(image_id) -> str:
    """The file name of an image's entry in a :class:`Store`: :func:`entry_key` + ``.h5``."""
    return entry_key(image_id) + SUFFIX


def array_checksum(arr) -> str:
    """``blake2b:<hex>`` of an array's dtype, shape and bytes (C order)."""
    a = np.ascontiguousarray(arr)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return "blake2b:" + h.hexdigest()


def checksums(datasets: Mapping[str, np.ndarray]) -> Dict[str, str]:
    """{name: :func:`array_checksum`} of the numeric (bool, integer, float) datasets."""
    return {k: array_checksum(v) for k, v in datasets.items() if np.asarray(v).dtype.kind in "biuf"}


def checksum_error(datasets: Mapping[str, np.ndarray], stored) -> Optional[str]:
    """Why ``datasets`` do not match the ``checksums`` attribute ``stored`` (a JSON object, as
    written by :func:`write_h5_attrs`), or None (also when nothing was stored: files of stl <= 0.3)."""
    if stored is None:
        return None
    try:
        want = json.loads(stored) if isinstance(stored, str) else dict(stored)
        if not isinstance(want, dict):
            raise ValueError
    except (ValueError, TypeError):
        return "unreadable checksums attribute"
    bad = [k for k, v in datasets.items() if k in want and array_checksum(v) != want[k]]
    return f"checksum mismatch: {', '.join(bad)} changed since written" if bad else None


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
    except (OSError, ValueError, RuntimeError) as e:
        raise CorruptFileError(path, f"{path}: not a readable {what} (truncated, or not HDF5? "
                                     f"{str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    try:
        with f:
            yield f
    except (OSError, KeyError, RuntimeError, UnicodeDecodeError) as e:  # h5py: a plain RuntimeError for some damage
        if isinstance(e, UserError) or (isinstance(e, RuntimeError) and type(e) is not RuntimeError):
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


class _GuardedFile:
    """A binary file written in plain, unbuffered writes whose failure (a full disk) is recorded,
    not raised, so :func:`h5_output` can remove the temporary and raise one :class:`WriteError`."""

    def __init__(self, path):
        self.f = open(path, "w+b", buffering=0)
        self.error: Optional[OSError] = None

    def write(self, data) -> int:
        view = memoryview(data)
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")
        n = len(view)
        while self.error is None and len(view):
            try:
                k = self.f.write(view)
            except OSError as e:
                self.error = e
                break
            if not k:  # nothing written: no room
                self.error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                break
            view = view[k:]
        return n

    def fsync(self):
        if self.error is None:
            try:
                os.fsync(self.f.fileno())
            except OSError as e:
                self.error = e

    def close(self):
        self.f.close()


_MEMORY_FILES = itertools.count()  #: unique names of h5_output's in-memory files


@contextmanager
def h5_output(path):
    """Yield an ``h5py.File`` open for writing that replaces ``path`` atomically when the block ends
    (a temporary file beside it, fsync'ed, renamed over ``path``; the old file stays until then).

    HDF5 builds the file in memory (its ``core`` driver, no backing store): it never sees a write
    fail -- an HDF5 whose writes fail, or whose failed writes are hidden from it, can crash the
    process (a segfault) -- and the finished image is then written in one plain write through
    :class:`_GuardedFile`, whose failure (a full disk) is raised here. The run is held in memory
    twice while it is written (its arrays, and the file image).

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file to write.

    Yields
    ------
    h5py.File

    Raises
    ------
    stl.errors.WriteError
        Naming ``path``, when the file cannot be written (a full disk: ``ENOSPC``); the temporary
        is removed and ``path`` is left as it was.
    """
    import h5py

    name = f"stl-h5-output-{os.getpid()}-{next(_MEMORY_FILES)}"
    f = h5py.File(name, "w", driver="core", backing_store=False)
    try:
        yield f
        f.flush()
        image = f.id.get_file_image()
    finally:
        f.close()
    with atomic_path(path) as tmp:
        guard = _GuardedFile(tmp)
        try:
            guard.write(image)
            guard.fsync()
            if guard.error is not None:
                raise WriteError(path, guard.error)
        finally:
            guard.close()


def h5_bytes(datasets: Mapping[str, np.ndarray], attrs: Mapping) -> bytes:
    """An HDF5 file holding ``datasets`` and ``attrs`` (:func:`write_h5_attrs`), built in memory."""
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for name, arr in datasets.items():
            f.create_dataset(name, data=arr)
        write_h5_attrs(f, attrs)
    return buf.getvalue()


def write_bytes_synced(path, content: bytes) -> None:
    """Write ``content`` to the new file ``path`` and flush it to disk (``fsync``)."""
    with open(path, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())


class Store:
    """A folder of per-image HDF5 entries with an identity record and a writers' lock.

    ``identity`` (a JSON-able dict) is written to ``store.json`` on the first
    write; when the store already has one, the keys in ``identity_keys``
    (default: all of ``identity``) must agree, else :class:`StoreMismatch`.
    ``identity=None`` opens an existing store for reading and adopts its
    identity. ``validate(datasets)``, if given, checks an entry's content: it raises
    ``ValueError`` (saying why) for an entry that must not be stored; it is called by
    :meth:`write` (the error propagates: nothing is written) and by every read of a whole
    entry (the entry is then reported damaged: :class:`stl.errors.CorruptFileError`).
    """

    def __init__(self, root, identity: Optional[dict] = None, identity_keys: Optional[Sequence[str]] = None,
                 validate: Optional[Callable[[Mapping[str, np.ndarray]], None]] = None):
        self.root = Path(root)
        self.validate = validate
        self._ids: Dict[str, str] = {}  # entry file name -> image id (read from the entry once)
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
        except FileNotFoundError:  # removed meanwhile (a consolidation)
            return None
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
        """Where the entry of ``image_id`` is written (:func:`entry_name`)."""
        return self.root / entry_name(image_id)

    def legacy_path(self, image_id) -> Optional[Path]:
        """Where stl <= 0.3 wrote the entry of ``image_id`` (its percent-quoted id), or None if that
        name could not be a file (longer than 255 bytes) or is the current name."""
        name = quote_id(image_id) + SUFFIX
        if len(name.encode()) > 255 or name == entry_name(image_id):
            return None
        return self.root / name

    def _legacy_entry(self, image_id) -> Optional[Path]:
        """The legacy file of ``image_id`` if there is one and it holds that id (an id such as
        ``x~<16 hex digits>`` has a legacy name that may be another id's current name)."""
        p = self.legacy_path(image_id)
        if p is None or not p.is_file():
            return None
        try:
            return p if self.id_of(p) == str(image_id) else None
        except CorruptFileError:
            return p  # damaged: reported when it is read
        except FileNotFoundError:
            return None

    def find(self, image_id) -> Optional[Path]:
        """The file holding the entry of ``image_id`` (current name first, then the legacy one), or None."""
        p = self.path(image_id)
        return p if p.is_file() else self._legacy_entry(image_id)

    def exists(self) -> bool:
        return self.root.is_dir()

    def __contains__(self, image_id) -> bool:
        return self.find(image_id) is not None

    def files(self) -> List[Path]:
        """Entry files, sorted by name (no temporaries: those end in ``.tmp``)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob(f"*{SUFFIX}") if p.is_file())

    def id_of(self, path) -> str:
        """The image id of the entry file ``path`` (its ``image_id`` attribute; for an entry of
        stl <= 0.3 without one, its unquoted name). Raises :class:`stl.errors.CorruptFileError`
        for a file that cannot be read, ``FileNotFoundError`` for one that is gone."""
        path = Path(path)
        if path.name not in self._ids:
            with open_h5(path, "entry") as f:
                i = f.attrs.get("image_id")
            i = i.decode() if isinstance(i, bytes) else (str(i) if i is not None else unquote(path.name[:-len(SUFFIX)]))
            self._ids[path.name] = i
        return self._ids[path.name]

    def ids(self) -> List[str]:
        """Ids of the stored entries, sorted (each read from its entry: see :meth:`id_of`)."""
        return sorted(dict.fromkeys(self.id_of(p) for p in self.files()))

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def __len__(self) -> int:
        return len(self.files())

    def write(self, image_id, datasets: Mapping[str, np.ndarray], attrs: Optional[Mapping] = None,
              dtypes: Optional[Mapping[str, object]] = None) -> Path:
        """Write (or replace) one entry atomically: built in memory, written to a temporary file,
        fsync'ed and renamed over :meth:`path`; an entry under the legacy name is then removed.

        Raises ``ValueError`` (from ``validate``) for content that must not be stored, and
        :class:`stl.errors.WriteError` naming the entry when the disk is full.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_identity()
        arrays = {name: np.asarray(arr) if (dtypes or {}).get(name) is None else np.asarray(arr, dtypes[name])
                  for name, arr in datasets.items()}
        if self.validate is not None:
            self.validate(arrays)
        path = self.path(image_id)
        content = h5_bytes(arrays, {**dict(attrs or {}), "image_id": str(image_id),
                                    CHECKSUMS_ATTR: checksums(arrays)})
        with atomic_path(path) as tmp:
            write_bytes_synced(tmp, content)
        self._ids[path.name] = str(image_id)
        legacy = self._legacy_entry(image_id)
        if legacy is not None:
            legacy.unlink(missing_ok=True)
        return path

    def read_file(self, path, names: Optional[Sequence[str]] = None) -> Tuple[Dict[str, np.ndarray], dict]:
        """(datasets, attributes) of the entry file ``path``, checked: its checksums (when stored) and,
        when every dataset is read, ``validate``. The ``checksums`` attribute is not returned.

        Raises :class:`stl.errors.CorruptFileError` naming ``path`` for a damaged entry, and
        ``FileNotFoundError`` for one that is gone (removed or renamed by a writer meanwhile).
        """
        path = Path(path)
        with open_h5(path, "entry") as f:
            missing = [n for n in (names or ()) if n not in f]
            if missing:
                raise CorruptFileError(path, f"{path}: damaged entry (no {', '.join(missing)})")
            data = {k: f[k][()] for k in (names if names is not None else f.keys())}
            attrs = h5_attrs(f)
        why = checksum_error(data, attrs.pop(CHECKSUMS_ATTR, None))
        if why is None and self.validate is not None and names is None:
            try:
                self.validate(data)
            except (ValueError, TypeError) as e:
                why = str(e)
        if why:
            raise CorruptFileError(path, f"{path}: damaged entry ({why})")
        if "image_id" in attrs:
            self._ids[path.name] = str(attrs["image_id"])
        return data, attrs

    def read(self, image_id, names: Optional[Sequence[str]] = None) -> Tuple[Dict[str, np.ndarray], dict]:
        """(datasets, attributes) of one entry (:meth:`read_file`); ``KeyError`` if it is not stored."""
        path = self.find(image_id)
        if path is None:
            raise KeyError(f"{self.root}: no entry for {image_id!r}")
        return self.read_file(path, names)

    def check_file(self, path, names: Sequence[str] = ()) -> Optional[str]:
        """None if the entry file reads back whole (checksums, ``validate``, its ``names`` datasets
        present), else why not (a gone file is no damage: None)."""
        try:
            data, _ = self.read_file(path)
        except CorruptFileError as e:
            return str(e)
        except FileNotFoundError:
            return None
        missing = [n for n in names if n not in data]
        return f"{path}: damaged entry (no {', '.join(missing)})" if missing else None

    def check(self, image_id, names: Sequence[str] = ()) -> Optional[str]:
        """:meth:`check_file` of the entry of ``image_id`` (None if it is not stored)."""
        path = self.find(image_id)
        return None if path is None else self.check_file(path, names)

    def set_aside_file(self, path) -> Path:
        """Rename an entry file to ``<entry>.corrupt[.N]`` (kept, no longer listed); returns the new path."""
        src = Path(path)
        dst = src.with_name(src.name + ".corrupt")
        n = 1
        while dst.exists():
            dst = src.with_name(f"{src.name}.corrupt.{n}")
            n += 1
        os.replace(src, dst)
        self._ids.pop(src.name, None)
        return dst

    def set_aside(self, image_id) -> Path:
        """:meth:`set_aside_file` of the entry of ``image_id`` (``KeyError`` if it is not stored)."""
        path = self.find(image_id)
        if path is None:
            raise KeyError(f"{self.root}: no entry for {image_id!r}")
        return self.set_aside_file(path)

    def corrupt_files(self) -> List[Path]:
        """Entries set aside by :meth:`set_aside`."""
        return sorted(self.root.glob(f"*{SUFFIX}.corrupt*")) if self.root.is_dir() else []

    def delete(self, image_id) -> None:
        """Remove the entry of ``image_id`` (under either name), if stored."""
        for p in (self.path(image_id), self._legacy_entry(image_id)):
            if p is not None:
                p.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete every entry, the identity record and the folder (if nothing else is in it)."""
        for p in self.files():
            p.unlink(missing_ok=True)
        self._ids.clear()
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
