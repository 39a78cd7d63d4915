"""Every location the library reads or writes outside the package, resolved in one place.

Package files (reference numbers, configs, the sample's annotations, deploy
prototxts) are *resources* (:mod:`stl.resources`) and travel inside the wheel.
Everything else comes from the environment:

==================  =====================================================  ==========================================
variable            what                                                   default
==================  =====================================================  ==========================================
``STL_SHARED``      real test data and models (``shared/`` README)         ``../shared`` next to a source checkout
``STL_WEIGHTS``     downloaded weights (``make models``)                   ``models/weights`` in a checkout, else
                                                                           ``$XDG_DATA_HOME/stl/weights``
``STL_CACHE``       derived model files (decoded SqueezeNet, random nets)  ``.cache/models`` in a checkout, else
                                                                           ``$XDG_CACHE_HOME/stl/models``
``STL_HOSANG_DIR``  Hosang et al.'s published proposals (``make data``)    ``data/hosang`` in a checkout, else
                                                                           ``$XDG_DATA_HOME/stl/hosang``
``STL_ILSVRC``,     dataset roots (:func:`stl.data.resolve_root`)          links ``data/ilsvrc``, ``data/VOCdevkit``
``STL_VOC``                                                                in a checkout
==================  =====================================================  ==========================================

:func:`source_checkout` is the only place that asks whether the package runs
from a repository checkout; an installed wheel never reads the repository.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import List, Optional

PACKAGE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def source_checkout() -> Optional[Path]:
    """The repository root when ``stl`` is imported from a source checkout (editable
    install or ``PYTHONPATH``), else None (an installed wheel)."""
    root = PACKAGE.parent
    pyproject = root / "pyproject.toml"
    try:
        if pyproject.is_file() and 'name = "stl"' in pyproject.read_text():
            return root
    except OSError:  # pragma: no cover
        pass
    return None


def source_revision() -> str:
    """The git commit of the source checkout ``stl`` runs from (``+dirty`` with uncommitted
    changes to tracked files), or ``"unknown (not a git checkout)"``: what a result file records
    as the code that made it."""
    import subprocess

    root = source_checkout()
    if root is None or not (root / ".git").exists():
        return "unknown (not a git checkout)"
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (git failed)"
    return sha + ("+dirty" if dirty else "")


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or (Path.home() / fallback))


def shared_dir() -> Path:
    """``$STL_SHARED``, else ``../shared`` next to the checkout (``./shared`` when installed)."""
    env = os.environ.get("STL_SHARED")
    if env:
        return Path(env).expanduser().resolve()
    repo = source_checkout()
    return ((repo.parent if repo else Path.cwd()) / "shared").resolve()


def weights_dir() -> Path:
    """Where ``make models`` puts downloaded weights (``$STL_WEIGHTS`` overrides)."""
    env = os.environ.get("STL_WEIGHTS")
    if env:
        return Path(env).expanduser()
    repo = source_checkout()
    return repo / "models" / "weights" if repo else _xdg("XDG_DATA_HOME", ".local/share") / "stl" / "weights"


def cache_dir() -> Path:
    """Derived model files (``$STL_CACHE`` overrides)."""
    env = os.environ.get("STL_CACHE")
    if env:
        return Path(env).expanduser()
    repo = source_checkout()
    return repo / ".cache" / "models" if repo else _xdg("XDG_CACHE_HOME", ".cache") / "stl" / "models"


def hosang_root() -> Path:
    """Where ``make data`` puts Hosang et al.'s published proposals (``$STL_HOSANG_DIR`` overrides)."""
    env = os.environ.get("STL_HOSANG_DIR")
    if env:
        return Path(env).expanduser()
    repo = source_checkout()
    return repo / "data" / "hosang" if repo else _xdg("XDG_DATA_HOME", ".local/share") / "stl" / "hosang"


def dataset_links(links) -> List[Path]:
    """The checkout's ``data/<link>`` candidates for a dataset root (none when installed)."""
    repo = source_checkout()
    return [repo / link for link in links] if repo else []


# ----------------------------------------------------------------------------- file names
def special_file(path) -> Optional[str]:
    """What ``path`` is when it exists but is neither a regular file nor a folder ("a FIFO", "a
    character device", "a block device", "a socket"), else None. Opening a FIFO blocks until
    something writes to it, so readers of input files ask this before opening one."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    for test, what in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return None


def safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in str(text))
    return keep.strip("._") or "x"


def model_tag(model) -> str:
    """A short file-name tag for a model given as name, (prototxt, caffemodel) or 'a.prototxt:b.caffemodel'."""
    if model is None:
        return ""
    if isinstance(model, (tuple, list)):
        model = model[-1] if len(model) > 1 else model[0]
    model = str(model)
    if ":" in model and model.split(":")[0].endswith(".prototxt"):
        model = model.split(":", 1)[1]
    if "/" in model or model.endswith((".caffemodel", ".onnx")):
        model = Path(model).stem
    return safe_name(model)
