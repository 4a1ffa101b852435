"""Where the kernel-recorded ground truth lives: the repository's ``tests/data``.

A checkout carries it (``tests/data``: pages, traces and the spec tables recorded on
real kernels; see its README), so a fresh clone tests itself.  An installed package
has no tests: :func:`testdata_dir` is then None and the callers that can do without
(the zswap live check's page mix, ``bench/compress.py``) fall back to synthetic pages.
``ZSMALLOC_TESTDATA`` points elsewhere (a directory laid out like ``tests/data``).
"""

from __future__ import annotations

import os
from pathlib import Path


def testdata_dir() -> Path | None:
    """``tests/data`` of the checkout this package runs from, or ``$ZSMALLOC_TESTDATA``."""
    env = os.environ.get("ZSMALLOC_TESTDATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "tests" / "data"
        if (candidate / "shared_pages.bin.gz").is_file():
            return candidate
    return None
