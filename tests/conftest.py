"""Shared test fixtures.

Real-data tests read ``../shared`` (or $STL_SHARED) in place and skip with a
reason where it is absent. CI sets STL_REQUIRE_ALL=1: then a missing required
part (../shared, pycaffe) FAILS the test instead of skipping it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script(relpath: str, name: str = None):
    """A script of the repository that is not a package module (``tools/x.py``, ``data/fetch_data.py``)
    imported as a module, registered in ``sys.modules`` (dataclasses look their module up there)."""
    import importlib.util
    import sys

    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def require_all() -> bool:
    return os.environ.get("STL_REQUIRE_ALL", "") not in ("", "0")


def missing(reason: str):
    """Skip (developer machine) or fail (CI, STL_REQUIRE_ALL=1) for a missing required part."""
    if require_all():
        pytest.fail(f"required part missing (STL_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


def shared_path() -> Path:
    return Path(os.environ.get("STL_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    p = shared_path()
    if not (p / "README.md").exists():
        missing(f"real data directory not found at {p} (set STL_SHARED)")
    return p


@pytest.fixture(scope="session")
def ilsvrc_dir(shared_dir) -> Path:
    return shared_dir / "data" / "ilsvrc2012-val-227"


@pytest.fixture(scope="session")
def voc_dir(shared_dir) -> Path:
    return shared_dir / "data" / "voc2007-test-sample"


@pytest.fixture(scope="session")
def require_pycaffe():
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe  # noqa: F401
    except ImportError as e:
        missing(f"pycaffe not importable ({e}); build it with `make caffe`")
    return caffe


@pytest.fixture(scope="session")
def lite0():
    from stl.models import build_classifier

    return build_classifier("efficientnet_lite0")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def photos(tmp_path):
    """A small real image folder in the ImageFolder layout (scikit-image's bundled photos):
    photos/n02123045/chelsea.png, photos/n07920052/coffee.png, photos/n07920052/sub/astro.PNG,
    plus a text file and a hidden folder that are not images of the dataset."""
    import shutil

    import skimage

    root = tmp_path / "photos"
    for rel, src in (("n02123045/chelsea.png", "chelsea.png"), ("n07920052/coffee.png", "coffee.png"),
                     ("n07920052/sub/astro.PNG", "astronaut.png")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(skimage.data_dir) / src, root / rel)
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    shutil.copy(Path(skimage.data_dir) / "rocket.jpg", root / ".hidden" / "r.jpg")
    return root
