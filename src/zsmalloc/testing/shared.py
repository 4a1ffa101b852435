"""Where the kernel-recorded ground truth lives (``shared/testdata``).

The repository is checked out beside ``shared/`` (``../shared`` from the repo
root), in development and in CI alike.  ``ZSMALLOC_SHARED`` overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path | None:
    """The ``shared/`` folder, or None when it is not beside this checkout."""
    env = os.environ.get("ZSMALLOC_SHARED")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [p / "shared" for p in here.parents]
    for c in candidates:
        if (c / "testdata").is_dir():
            return c
    return None


def testdata_dir() -> Path | None:
    s = shared_dir()
    return s / "testdata" if s else None
