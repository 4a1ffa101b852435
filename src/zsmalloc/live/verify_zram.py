"""``zsmalloc verify --kernel``: the zram model against a hot-added device of the running kernel.

One random workload (:func:`~zsmalloc.live.workload.zram_ops`) is applied to
our own ``/dev/zramN`` (:class:`~zsmalloc.live.zram.LiveZram`) and to a
:class:`~zsmalloc.zram.device.Zram` model side by side.  After every
operation all nine ``mm_stat`` columns and ``io_stat`` (whose counters are
deterministic here: failed writes, notify_free) are compared, and reads are
checked against the data last written.  The first disagreement stops the run
and is returned as the result's :class:`~zsmalloc.live.result.Divergence`;
after the last operation the stat files are compared as text, byte for byte.

The kernel's zsmalloc shrinker (``mm-zspool:zramN``) may compact the pool by
itself under memory pressure (spec zram.md §2.11, §5.8).  When the kernel's
``pages_compacted`` moved although we did not compact, the model is compacted
too (a shrinker scan is exactly ``zs_compact``); if the rows then agree, the
event is counted and the run goes on, otherwise the divergence is reported
with ``kind="shrinker"`` so it is not mistaken for a model bug.

The kernel run can be saved as a trace in the tests/data format (with
the ``l``/``r`` extension lines for mem_limit and mem_used_max resets).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from zsmalloc.compress import stored_size
from zsmalloc.errors import OutOfMemoryError
from zsmalloc.live.defaults import ZRAM
from zsmalloc.live.result import (
    EXACT,
    IO_STAT_COLUMNS,
    Comparison,
    Divergence,
    Progress,
    VerifyResult,
    compare_rows,
    compare_texts,
)
from zsmalloc.live.workload import Op, zram_ops
from zsmalloc.live.zram import LiveZram
from zsmalloc.zram.device import Zram, page_same_filled
from zsmalloc.zram.stats import MM_STAT_COLUMNS, MmStat
from zsmalloc.zram.trace import TraceWriter

TEXT_FILES = ("mm_stat", "io_stat", "debug_stat", "comp_algorithm", "disksize", "initstate")


class KernelZram(Protocol):
    """The kernel side of a zram check: a live device (:class:`LiveZram`) or a guest's
    recorded run (:class:`zsmalloc.guest.verify.GuestZram`)."""

    def write_page(self, slot: int, data: bytes) -> None: ...  # OSError(EIO) when refused
    def read_page(self, slot: int) -> bytes: ...
    def discard(self, slot: int) -> None: ...
    def compact(self) -> None: ...
    def set_attr(self, name: str, value: str | int) -> None: ...
    def attr(self, name: str) -> str: ...
    def mm_stat(self) -> MmStat: ...
    def io_stat(self) -> tuple[int, ...]: ...


def verify_zram(
    algorithm: str = ZRAM["algorithm"],
    n_ops: int = ZRAM["n_ops"],
    seed: int = ZRAM["seed"],
    nr_pages: int = ZRAM["nr_pages"],
    save: str | Path | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """Run the workload on a live device and on the model; stop at the first divergence.

    Raises KernelUnavailableError (no root, no zram) before doing anything.
    """
    result = VerifyResult("zram", algorithm, nr_pages, seed=seed, ops_planned=n_ops)
    model = Zram(name="model")
    disksize = nr_pages * model.profile.page_size  # the live kernel's too (x86_64: 4 KiB)
    model.set_comp_algorithm(algorithm)
    model.set_disksize(disksize)
    t0 = time.perf_counter()
    with LiveZram(algorithm=algorithm, disksize=disksize) as live:
        result.device = live.name
        release = Path("/proc/sys/kernel/osrelease").read_text().strip()
        check_zram(live, model, zram_ops(n_ops, seed, nr_pages), result, release, save, progress)
    result.seconds = time.perf_counter() - t0
    return result


def check_zram(
    kernel: KernelZram,
    model: Zram,
    ops: Iterable[Op],
    result: VerifyResult,
    release: str,
    save: str | Path | None = None,
    progress: Progress | None = None,
) -> None:
    """Apply ``ops`` to both devices, comparing after each; fill in ``result``.

    Stops at the first divergence; after the last operation the stat files are
    compared as text.  ``save`` writes the kernel's run as a trace whose header names
    ``release``.
    """
    result.events = {"failed_stores": 0, "reads_checked": 0, "shrinker_events": 0}
    algorithm, seed, n_ops = result.algorithm, result.seed, result.ops_planned
    written: dict[int, bytes] = {}
    writer = None
    if save is not None:
        writer = TraceWriter(
            save,
            {
                "kernel": release,
                "algo": algorithm,
                "disksize": model.disksize,
                "workload": "verify",
                "seed": seed,
            },
        )
    try:
        for i, op in enumerate(ops):
            where = f"op {i + 1} ({op.describe()})"
            div = _apply(op, kernel, model, written, result, writer, where)
            if div is None:
                shrinker_before = result.events["shrinker_events"]
                div = _compare(kernel, model, result, where)
                if writer is not None and result.events["shrinker_events"] > shrinker_before:
                    writer.comment("the kernel's zsmalloc shrinker compacted here")
                    writer.compact()
            result.counts[op.kind] = result.counts.get(op.kind, 0) + 1
            result.ops_done = i + 1
            if writer is not None and op.kind != "read":
                writer.mm_stat(list(kernel.mm_stat()))
            if div is not None:
                result.divergence = div
                break
            if progress is not None:
                progress(f"zram {algorithm} seed {seed}: ops", i + 1, n_ops)
        if result.divergence is None:  # the files themselves, byte for byte
            for name in TEXT_FILES:
                div = compare_texts(
                    "after the last op", name, kernel.attr(name), model.read_attr(name)
                )
                if div is not None:
                    result.divergence = div
                    break
    finally:
        if writer is not None:
            writer.close()
        final = zip(MM_STAT_COLUMNS, kernel.mm_stat(), model.mm_stat(), strict=True)
        result.comparisons = [Comparison(n, k, m, EXACT, "end") for n, k, m in final]


def _stored_size(model: Zram, page: bytes) -> int:
    """What the store adds to compr_data_size (0 for same-filled), for the trace."""
    same, _ = page_same_filled(np.frombuffer(page, dtype=np.uint8))
    comp_len = 0 if same else len(model.comps[0].compress(page))
    return stored_size(comp_len, same, model.huge_class_size)


def _apply(
    op: Op,
    live: KernelZram,
    model: Zram,
    written: dict[int, bytes],
    result: VerifyResult,
    writer: TraceWriter | None,
    where: str,
) -> Divergence | None:
    """Do ``op`` on both sides; a disagreement on success/failure or data is a Divergence."""
    page_size = model.profile.page_size
    if op.kind == "write":
        size = _stored_size(model, op.page) if writer is not None else 0
        k_ok = m_ok = True
        try:
            live.write_page(op.slot, op.page)
        except OSError as exc:
            if exc.errno != errno.EIO:  # zram_write_page() fails a refused store with -EIO
                raise
            k_ok = False
        try:
            model.write(op.slot * page_size, op.page)
        except OutOfMemoryError:
            m_ok = False
        if writer is not None:
            if size == 0:
                writer.same(op.slot)
            else:
                writer.write(op.slot, size)
        if k_ok != m_ok:
            return Divergence(
                where,
                "store outcome (1 = stored, 0 = refused)",
                (int(k_ok),),
                (int(m_ok),),
                ("stored",),
            )
        if k_ok:
            written[op.slot] = op.page
        else:
            result.events["failed_stores"] += 1
    elif op.kind == "discard":
        live.discard(op.slot)
        model.discard(op.slot * page_size, page_size)
        written.pop(op.slot, None)
        if writer is not None:
            writer.discard(op.slot)
    elif op.kind == "read":
        k = live.read_page(op.slot)
        m = model.read(op.slot * page_size, page_size)
        want = written.get(op.slot, bytes(page_size))
        result.events["reads_checked"] += 1
        if k != want or m != want:
            return Divergence(
                where,
                "read-back (1 = the data last written)",
                (int(k == want),),
                (int(m == want),),
                ("matches",),
            )
    elif op.kind == "compact":
        live.compact()
        model.compact()
        if writer is not None:
            writer.compact()
    elif op.kind == "limit":
        value = op.value
        if value < 0:  # just above the current use: the next stores that grow the pool fail
            value = live.mm_stat().mem_used_total + page_size
        live.set_attr("mem_limit", value)
        model.set_mem_limit(value)
        if writer is not None:
            writer.mem_limit(value)
    elif op.kind == "reset_max":
        live.set_attr("mem_used_max", 0)
        model.reset_mem_used_max("0")
        if writer is not None:
            writer.reset_max()
    return None


def _compare(
    live: KernelZram, model: Zram, result: VerifyResult, where: str
) -> Divergence | None:
    """mm_stat then io_stat; a shrinker compaction on the kernel side is followed, not blamed."""
    k, m = live.mm_stat(), MmStat(*model.mm_stat())
    div = compare_rows(where, "mm_stat", k, m)
    if div is not None and k.pages_compacted > m.pages_compacted:
        model.compact()  # the shrinker's scan is zs_compact()
        div = compare_rows(where, "mm_stat", k, model.mm_stat())
        if div is None:
            result.events["shrinker_events"] += 1
        else:
            return replace(div, kind="shrinker")
    if div is not None:
        return div
    return compare_rows(where, "io_stat", live.io_stat(), model.io_stat(), IO_STAT_COLUMNS)
