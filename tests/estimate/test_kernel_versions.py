"""RAM used under other kernels' class tables (zsmalloc.md §10 and Appendices A and B).

Expected page counts come from the spec's tables:
- a 200-byte object (+8 = 208) is class 11 in both; 6.18 packs 59 objects in 3 pages,
  6.1 packs 39 objects in 2 pages (Appendix A / B, row 11);
- a 3300-byte object (+8 = 3308) is class 211 in 6.18 (6 objects in 5 pages), but at
  least 3257 is huge in 6.1: stored raw, one page each.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from zsmalloc.estimate.fill import fill_state, kernel_version_totals
from zsmalloc.estimate.pool_fill import fill_pool
from zsmalloc.profile import profile_for_release
from zsmalloc.zs.size_class import class_table

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
    assert got == {"6.1": 4 * PAGE, "6.6": 6 * PAGE, "6.12": 6 * PAGE, "6.16": 6 * PAGE,
                   "6.17": 6 * PAGE, "6.18": 6 * PAGE, "7.2": 6 * PAGE, "7.3": 6 * PAGE}


def test_huge_threshold_moves_in_61() -> None:
    got = kernel_version_totals(hist(l3300=12), 5, PAGE, 8)
    # 6.18: 12 objects of class 211 = 2 zspages x 5 pages; 6.1: 12 huge pages.
    assert got["6.18"] == 10 * PAGE and got["6.1"] == 12 * PAGE


def test_61_ignores_the_chain_size() -> None:
    h = hist(l200=60, l3300=12, l1000=7)
    assert kernel_version_totals(h, 0, PAGE, 16)["6.1"] == kernel_version_totals(h, 0, PAGE, 8)[
        "6.1"
    ]


def _fill_trace(path: Path) -> tuple[np.ndarray, int, list[int], str]:
    """Stored-size histogram, same-filled pages and the last m row of a guest fill trace."""
    h = np.zeros(PAGE + 1, np.int64)
    same, last, release = 0, [], ""
    with gzip.open(path, "rt") as f:
        for line in f:
            w = line.split()
            if line.startswith("# zram size trace"):
                release = dict(x.split("=", 1) for x in w if "=" in x)["kernel"]
            elif w[0] == "w":
                h[int(w[2])] += 1
            elif w[0] == "s":
                same += 1
            elif w[0] == "m":
                last = [int(x) for x in w[1:]]
    return h, same, last, release


@pytest.mark.parametrize(
    "name", ["6.1-fill-lz4", "6.12-fill-lz4", "6.18-fill-lz4", "7.3.4-fill-lz4", "6.1-shared-zstd"]
)
def test_each_kernels_own_fill_and_compaction(testdata: Path, name: str) -> None:
    """A fill recorded on a kernel (tests/data/kernels): the closed form over that kernel's
    class table gives the kernel's last mm_stat; the kernel's own allocator (6.1: four
    lists, old compaction) holds as many pages, and compacting it frees none."""
    h, same, last, release = _fill_trace(testdata / "kernels" / f"{name}.trace.gz")
    table = class_table(profile_for_release(release))
    state = fill_state(h, same, table)
    assert list(state.mm_stat()) == last
    pool = fill_pool(state)  # raises when the allocator and the closed form disagree
    assert pool.total_pages == last[2] // PAGE
    assert pool.pages_compacted == 0 and pool.total_pages_after_compact == pool.total_pages
    assert pool.classes_text.startswith(
        " class  size almost_full" if release.startswith("6.1.") else " class  size       10%"
    )


def test_estimate_cli_kernel_61_is_the_61_guest(
    testdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``estimate --kernel 6.1 --compact`` of the shared pages with lz4 prints the mm_stat
    Debian's 6.1 kernel showed after writing them (6.1-shared-lz4), before and after the
    compaction its own allocator runs (lz4 compresses alike in 6.1 and 6.18)."""
    import json

    from zsmalloc.cli.main import main

    *_, last, _ = _fill_trace(testdata / "kernels" / "6.1-shared-lz4.trace.gz")
    main(["estimate", str(testdata / "shared_pages.bin.gz"), "--algo", "lz4",
          "--kernel", "6.1.0-57-amd64", "--compact", "--json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    lz4 = doc["algorithms"]["lz4"]
    assert doc["huge_class_size"] == 3257
    assert [int(v) for v in lz4["mm_stat_line"].split()] == last
    assert [int(v) for v in lz4["mm_stat_after_compact_line"].split()] == last
