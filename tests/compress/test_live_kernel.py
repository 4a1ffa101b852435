"""Our stored sizes against the running kernel's zram, page by page.

Each page of every kind (zram_page_kinds) is written alone to its own slot of
a hot-added zram device; the change of ``mm_stat`` column 2 (compr_data_size)
after the write is what zram stored for it: 0 same-filled, 4096 huge, else
the exact compressed length.  Ours must equal it for every page.

The page count per algorithm is ``ZSMALLOC_LIVE_PAGES`` (default 300, to keep
the suite fast; the acceptance run used 5000) and the seed
``ZSMALLOC_LIVE_SEED``; "heap" pages are live memory, so every run differs.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest
from zram_page_kinds import PAGE, edge_sweep_pages, make_pages

from zsmalloc import compress
from zsmalloc.live.zram import LiveZram

LIVE_PAGES = int(os.environ.get("ZSMALLOC_LIVE_PAGES", "300"))
LIVE_SEED = int(os.environ.get("ZSMALLOC_LIVE_SEED", "20251126"))


def kernel_stored_sizes(z: LiveZram, pages: np.ndarray) -> np.ndarray:
    """The compr_data_size delta of writing each page to its own slot."""
    sizes = np.empty(pages.shape[0], dtype=np.int64)
    prev = z.mm_stat().compr_data_size
    for i in range(pages.shape[0]):
        z.write_page(i, pages[i].tobytes())
        cur = z.mm_stat().compr_data_size
        sizes[i] = cur - prev
        prev = cur
    return sizes


def mismatch_report(kernel: np.ndarray, ours: np.ndarray, kinds: list[str]) -> str:
    bad = np.nonzero(kernel != ours)[0]
    by_kind = Counter(kinds[i] for i in bad)
    first = [(int(i), kinds[i], int(kernel[i]), int(ours[i])) for i in bad[:10]]
    return f"{bad.size} of {kernel.size} pages differ; by kind {dict(by_kind)}; first {first}"


@pytest.mark.kernel
@pytest.mark.parametrize("algo", ["lzo", "lzo-rle", "lz4"])
def test_every_page_length_matches_the_kernel(live_zram, algo: str) -> None:
    pages, kinds = make_pages(LIVE_PAGES, seed=LIVE_SEED)
    z = live_zram(algorithm=algo, disksize=(LIVE_PAGES + 16) * PAGE)
    kernel = kernel_stored_sizes(z, pages)
    ours = compress.stored_sizes(pages, algo)
    assert np.array_equal(kernel, ours), mismatch_report(kernel, ours, kinds)
    # The set must exercise every outcome of zram's rule, not only easy pages.
    assert (kernel == 0).any() and (kernel == PAGE).any()
    assert ((kernel > 3000) & (kernel < PAGE)).any()


@pytest.mark.kernel
@pytest.mark.parametrize("level", [2, 9, 0, -1, 2**26, 2**31 - 1])
def test_lz4_acceleration_level_matches_the_kernel(live_zram, level: int) -> None:
    """zram's ``algorithm_params algo=lz4 level=N`` is LZ4's acceleration (< 1 means 1).

    ``acceleration << 6`` is a u32 in the kernel: 2^26 starts with step 0.
    """
    n = max(60, LIVE_PAGES // 3)
    pages, kinds = make_pages(n, seed=LIVE_SEED + level % 1000)
    z = live_zram(
        algorithm="lz4", disksize=(n + 16) * PAGE, algorithm_params=f"algo=lz4 level={level}"
    )
    kernel = kernel_stored_sizes(z, pages)
    ours = compress.stored_sizes(pages, "lz4", level=level)
    assert np.array_equal(kernel, ours), mismatch_report(kernel, ours, kinds)
    if level > 1:  # the level must matter, or this test proves nothing
        default = compress.stored_sizes(pages, "lz4")
        assert not np.array_equal(default, ours)


@pytest.mark.kernel
@pytest.mark.parametrize("algo", ["lzo", "lzo-rle", "lz4"])
def test_boundary_sweeps_match_the_kernel(live_zram, algo: str) -> None:
    """Every zero-run length 2020-2080, tail matches, constant runs, sizes around 3625."""
    pages, kinds = edge_sweep_pages(seed=LIVE_SEED)
    z = live_zram(algorithm=algo, disksize=(pages.shape[0] + 16) * PAGE)
    kernel = kernel_stored_sizes(z, pages)
    ours = compress.stored_sizes(pages, algo)
    assert np.array_equal(kernel, ours), mismatch_report(kernel, ours, kinds)
    # Both sides of the huge threshold were reached.
    edge = np.array([k == "sweep_huge_edge" for k in kinds])
    assert (kernel[edge] == PAGE).any()
    assert np.isin([3623, 3624], kernel[edge]).any(), sorted(set(kernel[edge].tolist()))
