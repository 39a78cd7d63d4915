"""One registry class for everything that is looked up by name: models, proposal methods, datasets.

A :class:`Registry` maps names to factories. Every registry uses the same key
rule (:func:`normalize`: case-insensitive, ``-`` and ``_`` are the same, outer
blanks ignored), so ``STL-CL``, ``stl_cl`` and ``Stl-Cl`` name one method and
``ILSVRC2012-val`` names the dataset ``ilsvrc2012_val``. The spelling given at
registration is the *canonical* name (what ``names()`` lists and what result
files are named after). A miss raises :class:`UnknownName` (a ``KeyError``)
that lists the known names.

Built-in entries are registered by importing their modules; a registry is
given those module names (``builtin=``) and imports them on first use, so
``import stl.proposals`` stays cheap and no package imports its plug-ins at
its bottom.
"""
from __future__ import annotations

import importlib
from typing import Dict, Generic, Iterator, List, Optional, Sequence, Tuple, TypeVar

T = TypeVar("T")


def normalize(name) -> str:
    """The one key rule: lower case, ``-`` read as ``_``, blanks stripped."""
    return str(name).strip().lower().replace("-", "_")


class UnknownName(KeyError):
    """A name that is not registered; the message lists the known ones."""

    def __str__(self):  # KeyError quotes its argument; show the message as written
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Name -> factory, with one key rule and lazily imported built-in modules.

    >>> r = Registry("colour")
    >>> @r.register("Dark-Red")
    ... def dark_red(): return "#8b0000"
    >>> r.get("dark_red")()
    '#8b0000'
    >>> r.canonical("DARK_RED")
    'Dark-Red'
    """

    def __init__(self, kind: str, builtin: Sequence[str] = ()):
        self.kind = kind
        self._builtin = tuple(builtin)
        self._loaded = not self._builtin
        self._entries: Dict[str, Tuple[str, T, dict]] = {}

    # -- registration -------------------------------------------------------------
    def register(self, name: str, obj: Optional[T] = None, **info):
        """``register(name, obj)`` or the decorator ``@register(name)``; ``info`` is kept
        beside the entry (e.g. the subset a dataset name implies)."""

        def add(o: T) -> T:
            key = normalize(name)
            if key in self._entries:
                raise KeyError(f"{self.kind} {name!r} registered twice "
                               f"(already as {self._entries[key][0]!r})")
            self._entries[key] = (str(name), o, dict(info))
            return o

        return add(obj) if obj is not None else add

    def _load(self):
        if self._loaded:
            return
        self._loaded = True
        for mod in self._builtin:
            importlib.import_module(mod)

    # -- lookup -------------------------------------------------------------------
    def __contains__(self, name) -> bool:
        self._load()
        return normalize(name) in self._entries

    def _entry(self, name) -> Tuple[str, T, dict]:
        self._load()
        try:
            return self._entries[normalize(name)]
        except KeyError:
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def get(self, name) -> T:
        """The factory registered under ``name`` (any spelling the key rule accepts)."""
        return self._entry(name)[1]

    def info(self, name) -> dict:
        """What was registered beside the entry (``register(name, obj, **info)``), as a copy."""
        return dict(self._entry(name)[2])

    def canonical(self, name) -> str:
        """The spelling ``name`` was registered with."""
        return self._entry(name)[0]

    def names(self) -> List[str]:
        """Canonical names, sorted."""
        self._load()
        return sorted(e[0] for e in self._entries.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self):
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


def check_options(owner: str, options: dict, valid: Sequence[str]):
    """Raise ``TypeError`` naming the valid options if ``options`` has any other key
    (plug-in factories call this instead of swallowing ``**kwargs``)."""
    bad = sorted(set(options) - set(valid))
    if bad:
        raise TypeError(f"{owner}: unknown option(s) {', '.join(map(repr, bad))}; "
                        f"valid: {', '.join(sorted(valid)) or '(none)'}")


__all__ = ["Registry", "UnknownName", "normalize", "check_options"]
