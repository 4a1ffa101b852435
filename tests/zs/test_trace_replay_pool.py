"""Replay the kernel-recorded zram size traces straight onto a Pool.

A tiny driver (not the zram layer): ``w`` allocates the new object first and then
frees the slot's old one (zram's overwrite order); ``s`` and ``d`` free the slot's
object; ``c`` compacts.  After every operation the pool must show the kernel's
``mm_stat`` column 3 (mem_used_total = pages * 4096) and column 7
(pages_compacted) from the recorded ``m`` line.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from zsmalloc import Pool

TRACES = ["fill-lz4", "churn-lzo-rle", "compact-lz4"]


@pytest.mark.parametrize("name", TRACES)
def test_trace_pages_exact(testdata: Path, name: str) -> None:
    pool = Pool(max_pages=1 << 15)
    slots: dict[int, int] = {}
    checked = 0
    with gzip.open(testdata / "traces" / f"{name}.trace.gz", "rt") as f:
        for lineno, line in enumerate(f, 1):
            op = line.split()
            if not op or op[0].startswith("#"):
                continue
            if op[0] == "w":
                handle = pool.malloc(int(op[2]))
                old = slots.pop(int(op[1]), None)
                if old is not None:
                    pool.free(old)
                slots[int(op[1])] = handle
            elif op[0] in ("s", "d"):
                old = slots.pop(int(op[1]), None)
                if old is not None:
                    pool.free(old)
            elif op[0] == "c":
                pool.compact()
            elif op[0] == "m":
                mm_stat = [int(x) for x in op[1:]]
                got = (pool.total_pages() * 4096, pool.pages_compacted)
                assert got == (mm_stat[2], mm_stat[6]), f"{name}:{lineno}"
                checked += 1
    assert checked > 0
    for h in slots.values():
        pool.free(h)
    assert pool.total_pages() == 0
