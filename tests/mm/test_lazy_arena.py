"""The arena and tables are lazily backed: untouched pages cost no resident memory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zsmalloc import Pool


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc/self/statm")
def test_gigabyte_pool_costs_little_until_used() -> None:
    warm = Pool(max_pages=4)  # load the compiled code first: it is resident memory too
    warm.write(warm.malloc(4096), b"\xff" * 4096)
    before = _rss_bytes()
    pool = Pool(max_pages=1 << 20)  # a 4 GiB arena, 64 MiB mem_map, 1 GiB handle table
    created = _rss_bytes()
    assert created - before < 8 << 20
    handles = [pool.malloc(4096) for _ in range(1000)]  # 1000 huge objects: 1000 pages
    for h in handles:
        pool.write(h, b"\xff" * 4096)
    used = _rss_bytes()
    assert used - created < 1000 * 4096 + (8 << 20)
    assert pool.host_bytes()["mem_map"] <= 1001 * 64 + 4096
