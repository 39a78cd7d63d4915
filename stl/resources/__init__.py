"""Files that ship inside the package, read with :mod:`importlib.resources`.

::

    reference/paper_reference.json      the paper's published numbers (Fig. 3, Tables 1-2, Fig. 6)
    reference/detection_reference.json  detection reference numbers (Sec. 4)
    configs/detection_*.json            detector experiment configs (``stl table``, ``stl fig6``)
    sample/annotations.json             the bundled sample (scikit-image photos, our boxes)
    models/<bvlc name>/deploy.prototxt  BVLC CaffeNet / AlexNet network definitions (BSD-2)

Use :func:`path` for a file's location (a real path: the package is installed
as a folder) and :func:`read_json` to load one.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path


def path(*parts: str) -> Path:
    """Filesystem path of a packaged resource, e.g. ``path("reference", "paper_reference.json")``."""
    p = resources.files(__name__).joinpath(*parts)
    return Path(str(p))


def read_text(*parts: str) -> str:
    return resources.files(__name__).joinpath(*parts).read_text(encoding="utf-8")


def read_json(*parts: str):
    return json.loads(read_text(*parts))


PAPER_REFERENCE = ("reference", "paper_reference.json")
DETECTION_REFERENCE = ("reference", "detection_reference.json")
SAMPLE_ANNOTATIONS = ("sample", "annotations.json")


def config(name: str) -> Path:
    """A packaged experiment config, ``config("detection_shared")``."""
    return path("configs", name if name.endswith(".json") else name + ".json")


def deploy_prototxt(bvlc_name: str) -> Path:
    """``models/<bvlc_name>/deploy.prototxt`` (``bvlc_reference_caffenet``, ``bvlc_alexnet``)."""
    return path("models", bvlc_name, "deploy.prototxt")
