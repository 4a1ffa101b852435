"""Replay a zram size trace on the model and compare every ``m`` line.

The trace (:mod:`zsmalloc.zram.trace`) says which slot got how many bytes;
this drives the slot layer of :mod:`zsmalloc.zram.table` on a fresh pool, the
way zram_write_page / zram_bio_discard / compact_store drive the kernel's,
and after every ``m`` line compares the model's nine mm_stat columns with the
kernel's.  The whole loop is one numba function, so millions of operations
replay at allocator speed; it stops at the first mismatch and returns where.

Same-filled writes carry no fill word in the trace; the word does not affect
any counter, so 0 is stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.zram.stats import (
    LIMIT_PAGES,
    MAX_USED_PAGES,
    MM_STAT_COLUMNS,
    PAGE_SHIFT,
    PAGE_SIZE,
    mm_stat_values,
    new_stats,
)
from zsmalloc.zram.table import (
    new_table,
    zram_create_pool,
    zram_discard_range,
    zram_write_obj,
    zram_write_same,
)
from zsmalloc.zram.trace import (
    OP_COMPACT,
    OP_DISCARD,
    OP_LIMIT,
    OP_MM_STAT,
    OP_RESET_MAX,
    OP_SAME,
    OP_WRITE,
    Trace,
)
from zsmalloc.zs.core import zs_compact, zs_get_total_pages, zs_pages_compacted
from zsmalloc.zs.state import PoolState


@njit
def model_mm_stat(st: PoolState, stats: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` with the nine mm_stat columns (mirrors mm_stat_show)."""
    out[0] = stats[7] << PAGE_SHIFT  # PAGES_STORED
    out[1] = stats[0]  # COMPR_DATA_SIZE
    out[2] = zs_get_total_pages(st) << PAGE_SHIFT
    out[3] = stats[LIMIT_PAGES] << PAGE_SHIFT
    out[4] = stats[MAX_USED_PAGES] << PAGE_SHIFT
    out[5] = stats[4]  # SAME_PAGES
    out[6] = zs_pages_compacted(st)
    out[7] = stats[5]  # HUGE_PAGES
    out[8] = stats[6]  # HUGE_PAGES_SINCE


@njit
def replay_ops(
    st: PoolState,
    op: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    mrows: np.ndarray,
    handle: np.ndarray,
    flags: np.ndarray,
    stats: np.ndarray,
    bd_map: np.ndarray,
    huge_class_size: int,
    row: np.ndarray,
) -> tuple[int, int]:
    """Run every op; returns (index of the first mismatching ``m`` op or -1, m lines checked)."""
    no_data = np.empty(0, dtype=np.uint8)
    checked = 0
    for i in range(op.size):
        code = op[i]
        if code == OP_WRITE:
            if (
                zram_write_obj(
                    st, handle, flags, stats, bd_map, a[i], b[i], huge_class_size, no_data
                )
                != 0
            ):
                stats[2] += 1  # FAILED_WRITES
        elif code == OP_SAME:
            zram_write_same(st, handle, flags, stats, bd_map, a[i], 0)
        elif code == OP_DISCARD:
            zram_discard_range(st, handle, flags, stats, bd_map, a[i], 1)
        elif code == OP_COMPACT:
            zs_compact(st)
        elif code == OP_LIMIT:
            stats[LIMIT_PAGES] = (a[i] + PAGE_SIZE - 1) >> PAGE_SHIFT
        elif code == OP_RESET_MAX:
            stats[MAX_USED_PAGES] = zs_get_total_pages(st)
        elif code == OP_MM_STAT:
            model_mm_stat(st, stats, row)
            checked += 1
            k = a[i]
            for c in range(9):
                if row[c] != mrows[k, c]:
                    return i, checked
    return -1, checked


@dataclass
class ReplayResult:
    """Outcome of a replay: counts, speed, and the first mismatch if any."""

    path: str
    ops: int
    m_lines: int
    m_checked: int
    seconds: float
    ops_replayed: int = 0  # up to and including the first mismatch
    mismatch_line: int | None = None
    kernel_row: list[int] = field(default_factory=list)
    model_row: list[int] = field(default_factory=list)
    final_mm_stat: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.mismatch_line is None

    @property
    def ops_per_second(self) -> float:
        return self.ops_replayed / self.seconds if self.seconds > 0 else float("inf")

    @property
    def differing_columns(self) -> list[str]:
        return [
            MM_STAT_COLUMNS[c]
            for c in range(min(len(self.kernel_row), len(self.model_row)))
            if self.kernel_row[c] != self.model_row[c]
        ]

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "ok": self.ok,
            "ops": self.ops,
            "ops_replayed": self.ops_replayed,
            "m_lines": self.m_lines,
            "m_checked": self.m_checked,
            "seconds": round(self.seconds, 6),
            "ops_per_second": round(self.ops_per_second, 1),
            "mismatch_line": self.mismatch_line,
            "kernel": self.kernel_row or None,
            "model": self.model_row or None,
            "differing_columns": self.differing_columns or None,
            "final_mm_stat": self.final_mm_stat,
        }


def replay(trace: Trace, chain_size: int = 8) -> ReplayResult:
    """Replay ``trace`` on a fresh device model and compare every ``m`` line."""
    nr_slots = int(trace.a[trace.op <= OP_DISCARD].max(initial=-1)) + 1
    if trace.disksize is not None:
        nr_slots = max(nr_slots, (trace.disksize + PAGE_SIZE - 1) // PAGE_SIZE)
    pool = zram_create_pool(nr_slots, chain_size)
    st = pool.state
    from zsmalloc.zs.core import zs_huge_class_size

    huge_class_size = int(zs_huge_class_size(st))
    handle, flags = new_table(nr_slots)
    stats = new_stats()
    limit = trace.header.get("mem_limit", "0")  # a limit set before the recording started
    stats[LIMIT_PAGES] = (int(limit) + PAGE_SIZE - 1) >> PAGE_SHIFT if limit.isdigit() else 0
    bd_map = np.zeros(1, dtype=np.uint8)
    row = np.zeros(9, dtype=np.int64)
    tables = (handle, flags, stats, bd_map, huge_class_size, row)
    # compile (or load from the cache) before the clock starts: an empty run, same types
    replay_ops(st, trace.op[:0], trace.a[:0], trace.b[:0], trace.mrows, *tables)
    t0 = time.perf_counter()
    bad, checked = replay_ops(st, trace.op, trace.a, trace.b, trace.mrows, *tables)
    seconds = time.perf_counter() - t0
    final = mm_stat_values(stats, int(zs_get_total_pages(st)), int(zs_pages_compacted(st)))
    result = ReplayResult(
        trace.path,
        len(trace),
        int(trace.mrows.shape[0]),
        int(checked),
        seconds,
        ops_replayed=len(trace) if bad < 0 else int(bad) + 1,
        final_mm_stat=final,
    )
    if bad >= 0:
        result.mismatch_line = int(trace.line_of[bad])
        result.kernel_row = [int(v) for v in trace.mrows[trace.a[bad]]]
        result.model_row = [int(v) for v in row]
    return result
