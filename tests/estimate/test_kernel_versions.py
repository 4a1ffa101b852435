"""RAM used under other kernels' class tables (zsmalloc.md §10 and Appendices A and B).

Expected page counts come from the spec's tables:
- a 200-byte object (+8 = 208) is class 11 in both; 6.18 packs 59 objects in 3 pages,
  6.1 packs 39 objects in 2 pages (Appendix A / B, row 11);
- a 3300-byte object (+8 = 3308) is class 211 in 6.18 (6 objects in 5 pages), but at
  least 3257 is huge in 6.1: stored raw, one page each.
"""

from __future__ import annotations

import numpy as np

from zsmalloc.estimate.fill import kernel_version_totals

PAGE = 4096


def hist(**counts: int) -> np.ndarray:
    h = np.zeros(PAGE + 1, np.int64)
    for length, n in counts.items():
        h[int(length.removeprefix("l"))] = n
    return h


def test_small_objects_pack_differently_in_61() -> None:
    got = kernel_version_totals(hist(l200=60), 0, PAGE, 8)
    # 6.18: ceil(60/59) = 2 zspages x 3 pages; 6.1: ceil(60/39) = 2 zspages x 2 pages.
    # 7.x builds 6.18's table (zsmalloc.md §10.3).
    assert got == {"6.1": 4 * PAGE, "6.6": 6 * PAGE, "6.12": 6 * PAGE, "6.18": 6 * PAGE,
                   "7.2": 6 * PAGE, "7.3": 6 * PAGE}


def test_huge_threshold_moves_in_61() -> None:
    got = kernel_version_totals(hist(l3300=12), 5, PAGE, 8)
    # 6.18: 12 objects of class 211 = 2 zspages x 5 pages; 6.1: 12 huge pages.
    assert got["6.18"] == 10 * PAGE and got["6.1"] == 12 * PAGE


def test_61_ignores_the_chain_size() -> None:
    h = hist(l200=60, l3300=12, l1000=7)
    assert kernel_version_totals(h, 0, PAGE, 16)["6.1"] == kernel_version_totals(h, 0, PAGE, 8)[
        "6.1"
    ]
