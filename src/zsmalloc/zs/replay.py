"""Replay a zs trace (:mod:`zsmalloc.zs.trace`) in bare pools, one model pool per pool.

Each pool of the trace is an allocator of its own, so its operations run on a
:class:`~zsmalloc.zs.pool.Pool` of their own, in trace order, in one numba loop per
piece of the trace (the trace is read piece by piece: any length, bounded memory):
``a`` is zs_malloc (object ID -> the model's handle), ``f`` zs_free, ``c`` zs_compact,
``x`` and ``f P 0`` (an object from before the recording) are counted and skipped.

Where the trace carries the kernel's answers they are checked: a ``c`` line's FREED
against the pages the model's compaction freed, an ``m`` line against the model's
zs_get_total_pages() and pages_compacted.  The first difference stops the replay and
is reported with its line.  A pool that existed before the recording began started
non-empty in the kernel and empty in the model: its answers are not checked (counted
as skipped).  ``check=False`` replays to the end without judging (``whatif`` under a
class-table variant, whose numbers are meant to differ).

A trace that allocates an ID already live, or frees an ID that is not, is corrupt: an
:class:`~zsmalloc.errors.InputError` naming the line.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.errors import InputError, InvariantError
from zsmalloc.profile import KernelProfile
from zsmalloc.zs.compact import zs_pages_compacted
from zsmalloc.zs.core import zs_compact, zs_free, zs_get_total_pages, zs_malloc
from zsmalloc.zs.pool import Pool
from zsmalloc.zs.state import PoolState, pool_short
from zsmalloc.zs.trace import (
    CHUNK_BYTES,
    OP_ALLOC,
    OP_CHECK,
    OP_COMPACT,
    OP_FAIL,
    OP_FREE,
    ZsTrace,
    iter_zs_trace,
)

ENOMEM = errno.ENOMEM
DONE, GROW, MISMATCH, BAD_ALLOC, BAD_FREE, MODEL_FAILED = range(6)
# counters of one pool, in PoolReplay's order
C_ALLOCS, C_FAILED, C_FREES, C_UNKNOWN, C_COMPACT, C_CHECKED, C_SKIPPED, C_MAX, C_BYTES = range(9)
NR_COUNTERS = 9


@njit
def replay_pool_ops(
    st: PoolState,
    op: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    handles: np.ndarray,
    sizes: np.ndarray,
    counters: np.ndarray,
    model: np.ndarray,
    check: bool,
    start: int,
) -> tuple[int, int]:
    """Run one pool's ops ``start..``; (DONE or why it stopped, the op's index).

    ``handles[ID]``/``sizes[ID]``: the model's handle and the size of each live object
    (0: not live).  ``model`` receives the model's answer at a MISMATCH (two values).
    A GROW stop leaves op ``index`` undone (the pool reserves more, then resumes).
    """
    for i in range(start, op.size):
        code = op[i]
        if code == OP_ALLOC:
            oid = a[i]
            if handles[oid] != 0:
                return BAD_ALLOC, i
            h = zs_malloc(st, b[i])
            if h < 0:
                if h == -ENOMEM and pool_short(st):
                    return GROW, i
                model[0] = h
                return MODEL_FAILED, i
            handles[oid] = h
            sizes[oid] = b[i]
            counters[C_ALLOCS] += 1
            counters[C_BYTES] += b[i]
            pages = zs_get_total_pages(st)
            if pages > counters[C_MAX]:
                counters[C_MAX] = pages
        elif code == OP_FREE:
            oid = a[i]
            if oid == 0:
                counters[C_UNKNOWN] += 1
                continue
            h = handles[oid]
            if h == 0:
                return BAD_FREE, i
            zs_free(st, h)
            counters[C_BYTES] -= sizes[oid]
            handles[oid] = 0
            sizes[oid] = 0
            counters[C_FREES] += 1
        elif code == OP_FAIL:
            counters[C_FAILED] += 1
        elif code == OP_COMPACT:
            freed = zs_compact(st)
            counters[C_COMPACT] += 1
            if check:
                counters[C_CHECKED] += 1
                if freed != a[i]:
                    model[0] = freed
                    model[1] = zs_pages_compacted(st)
                    return MISMATCH, i
            else:
                counters[C_SKIPPED] += 1
        elif code == OP_CHECK:
            if check:
                counters[C_CHECKED] += 1
                pages, compacted = zs_get_total_pages(st), zs_pages_compacted(st)
                if pages != a[i] or compacted != b[i]:
                    model[0] = pages
                    model[1] = compacted
                    return MISMATCH, i
            else:
                counters[C_SKIPPED] += 1
    return DONE, op.size


@dataclass
class PoolReplay:
    """One pool of the trace, replayed (its model pool in :attr:`pool`)."""

    number: int
    name: str
    state: str  # created (in the trace), existing (before it), or "" (no comment said)
    pool: Pool
    handles: np.ndarray
    sizes: np.ndarray
    counters: np.ndarray = field(default_factory=lambda: np.zeros(NR_COUNTERS, np.int64))
    ops: int = 0

    @property
    def checked_here(self) -> bool:
        """Are the kernel's answers comparable (the pool started empty in the trace)?"""
        return self.state == "created"

    def summary(self) -> dict[str, object]:
        c = self.counters
        st = self.pool.state
        return {
            "pool": self.number, "name": self.name, "state": self.state or "unknown",
            "ops": self.ops, "allocs": int(c[C_ALLOCS]), "failed_allocs": int(c[C_FAILED]),
            "frees": int(c[C_FREES]), "unknown_frees": int(c[C_UNKNOWN]),
            "compactions": int(c[C_COMPACT]), "checks": int(c[C_CHECKED]),
            "checks_skipped": int(c[C_SKIPPED]),
            "total_pages": int(zs_get_total_pages(st)), "max_pages": int(c[C_MAX]),
            "pages_compacted": int(zs_pages_compacted(st)),
            "live_objects": int((self.handles != 0).sum()), "live_bytes": int(c[C_BYTES]),
        }


@dataclass
class ZsReplayResult:
    """A whole zs trace, replayed: per pool, and the first difference if any."""

    path: str
    profile: KernelProfile
    pools: dict[int, PoolReplay]
    ops: int
    seconds: float
    incomplete: list[str]
    mismatch_line: int | None = None
    mismatch_pool: int | None = None
    kernel_value: tuple[int, int] | None = None  # (pages, pages_compacted) or (freed, -)
    model_value: tuple[int, int] | None = None
    what: str = ""  # "m" or "c"
    inexact: list[str] = field(default_factory=list)  # the recorder's ``# inexact`` lines

    @property
    def checks(self) -> int:
        return sum(int(p.counters[C_CHECKED]) for p in self.pools.values())

    @property
    def ok(self) -> bool:
        """No difference, and at least one answer of the kernel checked."""
        return self.mismatch_line is None and self.checks > 0

    @property
    def total_pages(self) -> int:
        return sum(int(zs_get_total_pages(p.pool.state)) for p in self.pools.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path, "kernel_profile": self.profile.describe(), "ok": self.ok,
            "ops": self.ops, "checks": self.checks, "seconds": round(self.seconds, 6),
            "complete": not self.incomplete, "incomplete": self.incomplete,
            "exact_order": not self.inexact, "inexact": self.inexact,
            "mismatch_line": self.mismatch_line, "mismatch_pool": self.mismatch_pool,
            "mismatch_what": self.what or None,
            "kernel": list(self.kernel_value) if self.kernel_value else None,
            "model": list(self.model_value) if self.model_value else None,
            "total_pages": self.total_pages,
            "pools": [p.summary() for p in self.pools.values()],
        }


class ZsReplayer:
    """Model pools replaying a zs trace piece after piece (see :func:`replay_zs`)."""

    def __init__(self, profile: KernelProfile, check: bool) -> None:
        self.profile = profile
        self.check = check
        self.pools: dict[int, PoolReplay] = {}
        self.seconds = 0.0
        self.ops = 0
        self.incomplete: list[str] = []
        self.known: dict[int, tuple[str, str]] = {}  # the pool comments so far

    def _pool(self, no: int, piece: ZsTrace) -> PoolReplay:
        p = self.pools.get(no)
        if p is None:
            state, name = self.known.get(no, ("", ""))
            p = self.pools[no] = PoolReplay(no, name, state, Pool(profile=self.profile),
                                            np.zeros(64, np.int64), np.zeros(64, np.int64))
        return p

    def run(self, piece: ZsTrace, result: ZsReplayResult) -> bool:
        """Replay one piece; False when it stopped at a difference (filled in ``result``)."""
        self.incomplete += piece.incomplete
        result.inexact += piece.inexact
        for no, (state, name) in piece.pools.items():
            if state != "destroyed" or no not in self.known:
                self.known[no] = (state, name)
        self.ops += len(piece)
        if not len(piece):
            return True
        order = np.argsort(piece.pool, kind="stable")
        bounds = np.flatnonzero(np.diff(piece.pool[order])) + 1
        first_stop: tuple[int, int, PoolReplay, int] | None = None  # (line, why, pool, index)
        for sel in np.split(order, bounds):
            p = self._pool(int(piece.pool[sel[0]]), piece)
            op, a, b = piece.op[sel], piece.a[sel], piece.b[sel]
            ids = (op == OP_ALLOC) | (op == OP_FREE)
            need = int(a[ids].max(initial=0)) + 1
            if need > p.handles.size:
                n = max(need, 2 * p.handles.size)
                p.handles = np.concatenate([p.handles, np.zeros(n - p.handles.size, np.int64)])
                p.sizes = np.concatenate([p.sizes, np.zeros(n - p.sizes.size, np.int64)])
            model = np.zeros(2, np.int64)
            start = 0
            t0 = time.perf_counter()
            while True:
                why, index = replay_pool_ops(p.pool.state, op, a, b, p.handles, p.sizes,
                                             p.counters, model, self.check and p.checked_here,
                                             start)
                if why != GROW:
                    break
                if not p.pool.grow():
                    raise InvariantError("zs replay: the pool was short but could not grow")
                start = index
            self.seconds += time.perf_counter() - t0
            p.ops += index if why != DONE else len(sel)
            if why == DONE:
                continue
            line = int(piece.line_of[sel[index]])
            if why == BAD_ALLOC:
                raise InputError(f"object {int(a[index])} of pool {p.number} is allocated "
                                 "again while live", path=piece.path, line=line)
            if why == BAD_FREE:
                raise InputError(f"object {int(a[index])} of pool {p.number} is freed but "
                                 "not live", path=piece.path, line=line)
            if why == MODEL_FAILED:
                raise InvariantError(f"zs replay: the model's zs_malloc({int(b[index])}) "
                                     f"failed ({int(model[0])}) at line {line}")
            if first_stop is None or line < first_stop[0]:
                first_stop = (line, why, p, index)
                result.kernel_value = (int(a[index]), int(b[index]))
                result.model_value = (int(model[0]), int(model[1]))
                result.what = "m" if int(op[index]) == OP_CHECK else "c"
                if result.what == "c":
                    result.kernel_value = (int(a[index]), -1)
        if first_stop is not None:
            result.mismatch_line = first_stop[0]
            result.mismatch_pool = first_stop[2].number
            return False
        return True


def replay_zs(
    trace: ZsTrace | str | os.PathLike[str],
    profile: KernelProfile | None = None,
    *,
    check: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> ZsReplayResult:
    """Replay ``trace`` (a parsed piece or a file, read piece by piece) on fresh pools of
    ``profile`` (default: the trace's kernel); compare the kernel's answers (``check``).
    """
    pieces = [trace] if isinstance(trace, ZsTrace) else iter_zs_trace(
        trace, chunk_bytes=chunk_bytes)
    rep: ZsReplayer | None = None
    result: ZsReplayResult | None = None
    for piece in pieces:
        if rep is None or result is None:
            rep = ZsReplayer(profile or piece.profile, check)
            result = ZsReplayResult(piece.path, rep.profile, rep.pools, 0, 0.0, rep.incomplete)
        ok = rep.run(piece, result)
        result.ops, result.seconds = rep.ops, rep.seconds
        if not ok:
            break
    assert rep is not None and result is not None  # iter_zs_trace yields at least one piece
    return result


def warm_up(profile: KernelProfile) -> None:
    """Compile the replay loop (or load it from numba's cache) before any clock starts."""
    from zsmalloc.zs.trace import parse_zs_trace

    replay_zs(parse_zs_trace(b"# zs trace v1\na 0 1 100\nf 0 1\nc 0 0\nm 0 0 0\n",
                             "<warm-up>", profile), profile, check=False)
