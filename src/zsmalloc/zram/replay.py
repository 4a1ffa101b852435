"""Replay a zram size trace on the model and compare every ``m`` line.

The trace (:mod:`zsmalloc.zram.trace`) says which slot got how many bytes;
this drives the slot table of :mod:`zsmalloc.zram.table` on a fresh pool, the
way zram_write_page / zram_bio_discard / compact_store drive the kernel's,
and after every ``m`` line compares the model's nine mm_stat columns with the
kernel's.  The whole loop is one numba function, so millions of operations
replay at allocator speed; it stops at the first mismatch and returns where.
The model's row is built by :func:`zsmalloc.zram.stats.mm_stat_show`, the same
code the device's ``mm_stat`` runs.

A trace file is read in pieces (:func:`zsmalloc.zram.trace.iter_trace`), so its
length is bounded by nothing but time.  The loop also returns when the pool has
to reserve more host memory (:mod:`zsmalloc.zs.state`) and resumes after it grew;
without a ``disksize`` in the header the slot table grows with the slots seen.
A trace with no ``m`` line has nothing to compare: :class:`ReplayResult` says so
(``ok`` is False), it does not "match".

Same-filled writes carry no fill word in the trace; the word does not affect
any counter, so 0 is stored.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.errors import InputError, InvariantError
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile
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
    CHUNK_BYTES,
    OP_COMPACT,
    OP_DISCARD,
    OP_LIMIT,
    OP_MM_STAT,
    OP_RESET_MAX,
    OP_SAME,
    OP_WRITE,
    Trace,
    iter_trace,
    parse_trace,
)
from zsmalloc.zs.core import zs_compact, zs_get_total_pages, zs_pages_compacted
from zsmalloc.zs.pool import Pool
from zsmalloc.zs.size_class import class_table
from zsmalloc.zs.state import PoolState, pool_short

ENOMEM: Final = errno.ENOMEM
REPLAY_DONE: Final = 0  # every op of the piece ran
REPLAY_MISMATCH: Final = 1  # an ``m`` line differed: stop
REPLAY_GROW: Final = 2  # the pool must reserve more first; op ``index`` did not run


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
    start: int,
) -> tuple[int, int, int]:
    """Run ops ``start..``; returns (REPLAY_*, index where it stopped, m lines checked).

    ``a`` holds the slot, the limit in pages (``l``, converted by the caller) or
    the row of ``mrows`` (``m``); ``b`` the size of a ``w``.  ``row`` is the
    model's :data:`MM_STAT_DTYPE` record and ``row_words`` the same bytes as int64.
    A write refused for want of reserved host memory returns REPLAY_GROW with that
    op not done (a failed zs_malloc changes nothing), to be resumed after growth.
    """
    no_data = np.empty(0, dtype=np.uint8)
    s = zt.stats[0]
    checked = 0
    for i in range(start, op.size):
        code = op[i]
        if code == OP_WRITE:
            err = zram_write_obj(st, zt, a[i], b[i], no_data, no_data)
            if err != 0:
                if err == -ENOMEM and pool_short(st):
                    return REPLAY_GROW, i, checked
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
                return REPLAY_MISMATCH, i, checked
    return REPLAY_DONE, op.size, checked


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
    algorithm: str | None = None  # the header's algo=, if any

    @property
    def ok(self) -> bool:
        """Every ``m`` line matched, and there was at least one to check."""
        return self.mismatch_line is None and self.m_checked > 0

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


class _Replayer:
    """One model device replaying a trace piece after piece (see :func:`replay`)."""

    def __init__(self, header_disksize: int | None, limit: str, profile: KernelProfile) -> None:
        self.profile = profile
        page_size = profile.page_size
        self.fixed = header_disksize is not None  # slots known: no table growth
        nr_slots = (header_disksize + page_size - 1) // page_size if header_disksize else 0
        self.pool = zram_create_pool(profile, nr_slots if self.fixed else 1 << 31)
        self.zt = new_table(profile, nr_slots)
        self.lay = slot_layout(profile)
        self.zt.dev[0]["huge_class_size"] = self.pool.huge_class_size
        if limit.isdigit():  # a limit set before the recording started
            self.zt.dev[0]["limit_pages"] = mem_limit_pages(self.lay, int(limit))
        self.row = np.zeros(1, MM_STAT_DTYPE)
        self.row_words = self.row.view(np.int64)
        self.seconds = 0.0
        self.checked = 0

    def warm_up(self, piece: Trace) -> None:
        """Compile replay_ops (or load it from the cache) before any clock starts."""
        replay_ops(
            self.pool.state, self.zt, piece.op[:0], piece.a[:0], piece.b[:0], piece.mrows,
            self.row, self.row_words, 0,
        )

    def _cover_slots(self, piece: Trace) -> None:
        """Without a disksize header: grow the slot table to the highest slot seen."""
        slotted = piece.op <= OP_DISCARD
        need = int(piece.a[slotted].max(initial=-1)) + 1
        have = self.zt.handle.size
        if self.fixed or need <= have:
            return
        n = max(need, 2 * have)
        zt = self.zt
        handle, flags = np.zeros(n, np.int64), np.zeros(n, np.int64)
        handle[:have], flags[:have] = zt.handle, zt.flags
        self.zt = zt._replace(handle=handle, flags=flags)

    def run(self, piece: Trace) -> tuple[int, int]:
        """Replay one piece: (REPLAY_DONE or REPLAY_MISMATCH, index where it stopped)."""
        self._cover_slots(piece)
        a = piece.a
        limits = piece.op == OP_LIMIT
        if limits.any():  # ``l`` lines carry bytes; the loop stores pages (one formula)
            a = a.copy()
            a[limits] = mem_limit_pages(self.lay, a[limits])
        pool, start = self.pool, 0
        while True:
            t0 = time.perf_counter()
            status, index, checked = replay_ops(
                pool.state, self.zt, piece.op, a, piece.b, piece.mrows, self.row,
                self.row_words, start,
            )
            self.seconds += time.perf_counter() - t0
            self.checked += checked
            if status != REPLAY_GROW:
                return status, index
            if not pool.grow():  # pool_short() said it could
                raise InvariantError("replay: the pool was short but could not grow")
            start = index

    def mm_stat(self) -> MmStat:
        st = self.pool.state
        return build_mm_stat(
            self.zt.stats,
            int(self.zt.dev[0]["limit_pages"]),
            int(zs_get_total_pages(st)),
            int(zs_pages_compacted(st)),
            self.profile.PAGE_SHIFT,
        )


def warm_up(profile: KernelProfile = DEFAULT_PROFILE) -> None:
    """Compile the replay loop (or load it from numba's cache) on an empty trace.

    The CLI calls it first, so that a first run's compilation is not silent
    (:mod:`zsmalloc.cli.notice`); :func:`replay` would otherwise compile on its own.
    """
    empty = parse_trace(b"", "<warm-up>", profile)
    rep = _Replayer(0, "0", profile)
    rep.warm_up(empty)


def replay(
    trace: Trace | str | os.PathLike[str],
    profile: KernelProfile | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> ReplayResult:
    """Replay ``trace`` on a fresh device model of ``profile``; compare every ``m`` line.

    By default the profile is the trace's own (the kernel its header names).
    ``trace`` is a parsed :class:`Trace` or the path of a trace file, which is read
    piece by piece (``chunk_bytes`` of text at a time: any length, bounded memory).
    A corrupt line raises InputError naming it, also after earlier pieces replayed.
    """
    return _replay(trace, profile, chunk_bytes, check=True)[0]


def replay_pool(
    trace: Trace | str | os.PathLike[str],
    profile: KernelProfile | None = None,
    *,
    check: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[ReplayResult, Pool, ZramTable]:
    """:func:`replay`, and the device's pool and slot table as the replay left them.

    ``check=False`` drops the trace's ``m`` lines (reading mm_stat changes nothing):
    the operations replay to the end under a profile the trace was not recorded on
    (``zsmalloc whatif``), whose figures are meant to differ.
    """
    res, rep = _replay(trace, None, chunk_bytes, check=check, model=profile)
    return res, rep.pool, rep.zt


def _as_variant(piece: Trace, model: KernelProfile) -> Trace:
    """The piece without its ``m`` lines, its writes stored as ``model``'s zram would.

    A trace records what zram stored: the compressed length, or PAGE_SIZE for a page
    that compressed to at least the recording kernel's huge_class_size.  Under a model
    whose huge_class_size is lower, a length from there up is stored raw too (the test
    of zram_write_page()); under a higher one a recorded PAGE_SIZE stays PAGE_SIZE, as
    its compressed length is not in the trace.
    """
    keep = piece.op != OP_MM_STAT
    b = piece.b[keep]
    huge = (piece.op[keep] == OP_WRITE) & (b >= class_table(model).huge_class_size)
    b = np.where(huge, model.page_size, b)
    return dataclasses.replace(
        piece, op=piece.op[keep], a=piece.a[keep], b=b, line_of=piece.line_of[keep],
    )


def _replay(
    trace: Trace | str | os.PathLike[str],
    profile: KernelProfile | None,
    chunk_bytes: int,
    *,
    check: bool,
    model: KernelProfile | None = None,
) -> tuple[ReplayResult, _Replayer]:
    """Replay pieces parsed under ``profile`` (the recording kernel's, by default the
    header's) on a device of ``model`` (by default the same); see :func:`replay_pool`."""
    pieces: Iterable[Trace]
    if isinstance(trace, Trace):
        pieces, path = [trace], trace.path
    else:
        pieces, path = iter_trace(trace, profile, chunk_bytes=chunk_bytes), str(trace)
    rep: _Replayer | None = None
    ops = m_lines = 0
    algorithm = None
    for piece in pieces:
        if rep is None:
            profile = model or profile or piece.profile
            rep = _Replayer(piece.disksize, piece.header.get("mem_limit", "0"), profile)
            rep.warm_up(piece)
            algorithm = piece.algorithm
        if not check:
            piece = _as_variant(piece, rep.profile)
        status, index = rep.run(piece)
        if status == REPLAY_MISMATCH:
            result = ReplayResult(
                path,
                ops + len(piece),
                m_lines + int(piece.mrows.shape[0]),
                rep.checked,
                rep.seconds,
                ops_replayed=ops + index + 1,
                final_mm_stat=rep.mm_stat(),
                algorithm=algorithm,
                profile=profile,
            )
            result.mismatch_line = int(piece.line_of[index])
            result.kernel_row = MmStat(*(int(v) for v in piece.mrows[piece.a[index]]))
            result.model_row = MmStat.from_record(rep.row[0])
            return result, rep
        ops += len(piece)
        m_lines += int(piece.mrows.shape[0])
    if rep is None:  # iter_trace yields at least one piece
        raise InputError("empty trace", path=path)
    return ReplayResult(
        path, ops, m_lines, rep.checked, rep.seconds, ops_replayed=ops,
        final_mm_stat=rep.mm_stat(), algorithm=algorithm, profile=profile,
    ), rep
