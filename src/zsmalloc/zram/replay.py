"""Replay a zram size trace on the model and compare every ``m`` line.

The trace (:mod:`zsmalloc.zram.trace`) says which slot got how many bytes;
this drives the slot table of :mod:`zsmalloc.zram.table` on a fresh pool, the
way zram_write_page / zram_bio_discard / compact_store drive the kernel's,
and after every ``m`` line compares the model's nine mm_stat columns with the
kernel's.  The whole loop is one numba function, so millions of operations
replay at allocator speed; it stops at the first mismatch and returns where.
The model's row is built by :func:`zsmalloc.zram.stats.mm_stat_show`, the same
code the device's ``mm_stat`` runs.

Same-filled writes carry no fill word in the trace; the word does not affect
any counter, so 0 is stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.profile import KernelProfile
from zsmalloc.zram.stats import MM_STAT_COLUMNS, MM_STAT_DTYPE, MmStat, build_mm_stat, mm_stat_show
from zsmalloc.zram.table import (
    ZramTable,
    mem_limit_pages,
    new_table,
    slot_layout,
    zram_create_pool,
    zram_discard_range,
    zram_reset_max_used,
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
def _row_equal(words: np.ndarray, expected: np.ndarray) -> bool:
    """One mm_stat row (its int64 words) equal to a trace row, column for column."""
    for c in range(words.size):  # noqa: SIM110 - a plain loop: no allocation under numba
        if words[c] != expected[c]:
            return False
    return True


@njit
def replay_ops(
    st: PoolState,
    zt: ZramTable,
    op: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    mrows: np.ndarray,
    row: np.ndarray,
    row_words: np.ndarray,
) -> tuple[int, int]:
    """Run every op; returns (index of the first mismatching ``m`` op or -1, m lines checked).

    ``a`` holds the slot, the limit in pages (``l``, converted by the caller) or
    the row of ``mrows`` (``m``); ``b`` the size of a ``w``.  ``row`` is the
    model's :data:`MM_STAT_DTYPE` record and ``row_words`` the same bytes as int64.
    """
    no_data = np.empty(0, dtype=np.uint8)
    s = zt.stats[0]
    checked = 0
    for i in range(op.size):
        code = op[i]
        if code == OP_WRITE:
            if zram_write_obj(st, zt, a[i], b[i], no_data, no_data) != 0:
                s["failed_writes"] += 1
        elif code == OP_SAME:
            zram_write_same(st, zt, a[i], 0)
        elif code == OP_DISCARD:
            zram_discard_range(st, zt, a[i], 1)
        elif code == OP_COMPACT:
            zs_compact(st)
        elif code == OP_LIMIT:
            zt.dev[0]["limit_pages"] = a[i]
        elif code == OP_RESET_MAX:
            zram_reset_max_used(st, zt)
        elif code == OP_MM_STAT:
            mm_stat_show(
                row,
                zt.stats,
                zt.dev[0]["limit_pages"],
                zs_get_total_pages(st),
                zs_pages_compacted(st),
                zt.layout[0]["PAGE_SHIFT"],
            )
            checked += 1
            if not _row_equal(row_words, mrows[a[i]]):
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
    profile: KernelProfile | None = None  # the kernel the model followed
    mismatch_line: int | None = None
    kernel_row: MmStat | None = None
    model_row: MmStat | None = None
    final_mm_stat: MmStat | None = None

    @property
    def ok(self) -> bool:
        return self.mismatch_line is None

    @property
    def ops_per_second(self) -> float:
        return self.ops_replayed / self.seconds if self.seconds > 0 else float("inf")

    @property
    def differing_columns(self) -> list[str]:
        if self.kernel_row is None or self.model_row is None:
            return []
        return [
            name
            for name, k, m in zip(MM_STAT_COLUMNS, self.kernel_row, self.model_row, strict=True)
            if k != m
        ]

    def to_dict(self) -> dict[str, object]:
        def row(r: MmStat | None) -> list[int] | None:
            return list(r) if r is not None else None

        return {
            "path": self.path,
            "kernel_profile": self.profile.describe() if self.profile else None,
            "ok": self.ok,
            "ops": self.ops,
            "ops_replayed": self.ops_replayed,
            "m_lines": self.m_lines,
            "m_checked": self.m_checked,
            "seconds": round(self.seconds, 6),
            "ops_per_second": round(self.ops_per_second, 1),
            "mismatch_line": self.mismatch_line,
            "kernel": row(self.kernel_row),
            "model": row(self.model_row),
            "differing_columns": self.differing_columns or None,
            "final_mm_stat": row(self.final_mm_stat),
        }


def replay(trace: Trace, profile: KernelProfile | None = None) -> ReplayResult:
    """Replay ``trace`` on a fresh device model of ``profile``; compare every ``m`` line.

    By default the profile is the trace's own (the kernel its header names).
    """
    profile = profile or trace.profile
    page_size = profile.page_size
    nr_slots = int(trace.a[trace.op <= OP_DISCARD].max(initial=-1)) + 1
    if trace.disksize is not None:
        nr_slots = max(nr_slots, (trace.disksize + page_size - 1) // page_size)
    pool = zram_create_pool(profile, nr_slots)
    st = pool.state
    zt = new_table(profile, nr_slots)
    lay = slot_layout(profile)
    zt.dev[0]["huge_class_size"] = pool.huge_class_size
    limit = trace.header.get("mem_limit", "0")  # a limit set before the recording started
    if limit.isdigit():
        zt.dev[0]["limit_pages"] = mem_limit_pages(lay, int(limit))
    # ``l`` lines carry bytes; the loop stores pages, converted here by the one formula
    a = trace.a
    limits = trace.op == OP_LIMIT
    if limits.any():
        a = a.copy()
        a[limits] = mem_limit_pages(lay, a[limits])
    row = np.zeros(1, MM_STAT_DTYPE)
    row_words = row.view(np.int64)
    args = (zt, trace.op, a, trace.b, trace.mrows, row, row_words)
    # compile (or load from the cache) before the clock starts: an empty run, same types
    replay_ops(st, zt, trace.op[:0], a[:0], trace.b[:0], trace.mrows, row, row_words)
    t0 = time.perf_counter()
    bad, checked = replay_ops(st, *args)
    seconds = time.perf_counter() - t0
    final = build_mm_stat(
        zt.stats,
        int(zt.dev[0]["limit_pages"]),
        int(zs_get_total_pages(st)),
        int(zs_pages_compacted(st)),
        profile.PAGE_SHIFT,
    )
    result = ReplayResult(
        trace.path,
        len(trace),
        int(trace.mrows.shape[0]),
        int(checked),
        seconds,
        ops_replayed=len(trace) if bad < 0 else int(bad) + 1,
        profile=profile,
        final_mm_stat=final,
    )
    if bad >= 0:
        result.mismatch_line = int(trace.line_of[bad])
        result.kernel_row = MmStat(*(int(v) for v in trace.mrows[trace.a[bad]]))
        result.model_row = MmStat.from_record(row[0])
    return result
