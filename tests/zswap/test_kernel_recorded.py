"""The model against zswap numbers recorded on the reference kernel (6.18.44).

The 1024 pages of ``shared_pages.bin.gz`` were swapped out, in order, through
the kernel's zswap (``LiveZswap``: own swap file, MADV_PAGEOUT, shrinker off)
and ``/sys/kernel/debug/zswap`` read afterwards::

    with LiveZswap(compressor=algo, swap_size=16 << 20) as z:
        z.hold(pages); z.counters()

giving the table below.  27 of the pages are all zeros and never reach zswap.
The live suite (tests/kernel/test_zswap_live.py) re-checks this on fresh
random workloads.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from zsmalloc.live.verify_zswap import model_counters
from zsmalloc.zswap.estimate import estimate_zswap
from zsmalloc.zswap.params import ZswapParams

# algo: (stored_pages, stored_incompressible_pages, pool_total_size)
KERNEL = {
    "lzo": (997, 55, 3481600),
    "lzo-rle": (997, 53, 3264512),
}


@pytest.fixture(scope="module")
def shared_pages(testdata: Path) -> bytes:
    return gzip.open(testdata / "shared_pages.bin.gz").read()


@pytest.mark.parametrize("algo", sorted(KERNEL))
def test_model_matches_kernel(shared_pages: bytes, algo: str, pool_factory: object) -> None:
    z, zero = model_counters(
        shared_pages, algo, 1 << 20, ZswapParams(enabled=True, compressor=algo), pool_factory
    )
    d = z.debugfs()
    assert zero == 27
    assert (d["stored_pages"], d["stored_incompressible_pages"], d["pool_total_size"]) == KERNEL[
        algo
    ]


@pytest.mark.parametrize("algo", sorted(KERNEL))
def test_closed_form_estimate_matches_kernel(shared_pages: bytes, algo: str) -> None:
    e = estimate_zswap(shared_pages, compressor=algo)
    assert (e.stored_pages, e.stored_incompressible_pages, e.pool_total_size) == KERNEL[algo]
    assert e.zero_pages == 27 and e.pages == 1024


def test_estimate_without_writeback_rejects_incompressible(shared_pages: bytes) -> None:
    e = estimate_zswap(shared_pages, compressor="lzo", writeback=False)
    assert e.rejected_pages == KERNEL["lzo"][1]
    assert e.stored_pages == KERNEL["lzo"][0] - KERNEL["lzo"][1]
    assert e.stored_incompressible_pages == 0


def test_estimate_with_pool_limit(shared_pages: bytes, pool_factory: object) -> None:
    # The unlimited run needs 3481600 / 4096 = 850 pages; allow 850 (10 % of 8500).
    # Every store made while total >= 850 is rejected and counted (spec §6), and
    # nothing is freed in a store-only run, so stored = 997 - hits.  Each rejection
    # runs the worker, which visits one entry per shrink_memcg call: fresh entries are
    # all referenced, so it gives up after 16 rotations (16 failures) each time, and
    # with 986 entries fewer than 16 * hits rotations never reach an unreferenced one.
    e = estimate_zswap(
        shared_pages,
        compressor="lzo",
        totalram_pages=8500,
        max_pool_percent=10,
        pool_factory=pool_factory,
    )
    assert e.max_pool_pages == 850 and e.pool_total_size // 4096 == 850
    assert e.pool_limit_hit is not None and 1 <= e.pool_limit_hit * 16 < 986
    assert e.final_stored_pages == 997 - e.pool_limit_hit
    assert e.written_back_pages == 0
    far = estimate_zswap(shared_pages, totalram_pages=1 << 22)
    assert (far.written_back_pages, far.pool_limit_hit) == (0, 0)
    assert far.final_stored_pages == 997
