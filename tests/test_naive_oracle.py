"""The naive oracle earns its place: it replays the kernel's traces exactly.

Only once ``tests/naive.py`` reproduces every recorded mm_stat page count can it
stand in for the kernel in property tests of the fast allocator.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from naive import NaiveZsmalloc, NaiveZsmalloc61, fullness_group, fullness_group_61
from zsmalloc.profile import KernelProfile
from zsmalloc.zs.size_class import class_table


def replay_pages(path: Path, zs: NaiveZsmalloc | None = None) -> int:
    """Replay a zram size trace on the naive model; check columns 3 and 7 of every m line."""
    zs = zs or NaiveZsmalloc()
    slots: dict[int, int] = {}  # slot -> handle (same-filled slots hold no object)
    checked = 0
    with gzip.open(path, "rt") as f:
        for lineno, line in enumerate(f, 1):
            op, *args = line.split()
            if op == "#":
                continue
            if op == "w":
                slot, size = int(args[0]), int(args[1])
                new = zs.malloc(size)  # the new object first, then the old one goes
                old = slots.pop(slot, None)
                if old:
                    zs.free(old)
                slots[slot] = new
            elif op in ("s", "d"):
                old = slots.pop(int(args[0]), None)
                if old:
                    zs.free(old)
            elif op == "c":
                zs.compact()
            elif op == "m":
                cols = [int(x) for x in args]
                assert (cols[2] // 4096, cols[6]) == (zs.pages, zs.pages_compacted), (
                    f"{path.name}:{lineno}"
                )
                checked += 1
    return checked


@pytest.mark.parametrize("name", ["fill-lz4", "churn-lzo-rle", "compact-lz4"])
def test_naive_replays_kernel_traces(testdata: Path, name: str) -> None:
    assert replay_pages(testdata / "traces" / f"{name}.trace.gz") > 0


@pytest.mark.parametrize("name", ["churn-lzo-rle", "compact-lzo", "fill-lz4", "shared-zstd"])
def test_naive_61_replays_61_kernel_traces(testdata: Path, name: str) -> None:
    """The 6.1 oracle (§10, §10.1) against Debian's 6.1.0-57 kernel, recorded in a guest."""
    naive = NaiveZsmalloc61(class_table(KernelProfile("6.1")))
    assert replay_pages(testdata / "kernels" / f"6.1-{name}.trace.gz", naive) > 0


def test_fullness_groups_61() -> None:
    """6.1: almost empty up to 3/4 (integer division), almost full above."""
    assert [fullness_group_61(i, 4) for i in range(5)] == [0, 1, 1, 1, 3]
    assert [fullness_group_61(i, 5) for i in range(6)] == [0, 1, 1, 1, 2, 3]
    assert [fullness_group_61(i, 128) for i in (96, 97)] == [1, 2]


def test_fullness_groups_from_spec() -> None:
    # zsmalloc.md §1.1 examples.
    assert fullness_group(1, 128) == 1
    assert fullness_group(10, 100) == 2
    assert [fullness_group(i, 4) for i in (1, 2, 3)] == [3, 6, 8]
    assert [fullness_group(i, 5) for i in (1, 2, 3, 4)] == [3, 5, 7, 9]
    assert fullness_group(1, 2) == 6 and fullness_group(1, 1) == 11 and fullness_group(0, 9) == 0


def test_worked_example() -> None:
    """zsmalloc.md §11, step by step (size 3000 -> class 190: 3 pages, 4 objects)."""
    zs = NaiveZsmalloc()
    h = [zs.malloc(3000) for _ in range(9)]
    assert zs.pages == 9
    for i, pages in ((0, 9), (1, 9), (5, 9), (8, 6), (2, 6)):
        zs.free(h[i])
        assert zs.pages == pages
    assert zs.can_compact(190) == 3
    assert zs.compact() == 3 and zs.pages == 3 and zs.pages_compacted == 3
    # h3 moved to B's free-list head, index 1; B is full and alone in group 11.
    zp, idx = zs.where[h[3]]
    assert idx == 1 and zp.group == 11 and zs.lists[190][11] == [zp]
    zs.malloc(3000)
    assert zs.pages == 6
