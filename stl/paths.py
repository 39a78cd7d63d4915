"""Repository locations shared by the library."""
from __future__ import annotations

import os
from pathlib import Path

#: the repository root (the package is installed in editable mode)
REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``$STL_SHARED`` or ``../shared`` next to the repository (real test data and models)."""
    return Path(os.environ.get("STL_SHARED") or (REPO.parent / "shared")).resolve()
