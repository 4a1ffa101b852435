"""Live differential check: the zram model against a hot-added device of the running kernel.

One random workload (:mod:`zsmalloc.kernel.workload`) is applied to our own
``/dev/zramN`` (:class:`~zsmalloc.kernel.live.LiveZram`) and to a
:class:`~zsmalloc.zram.device.Zram` model side by side.  After every
operation all nine ``mm_stat`` columns and ``io_stat`` (whose counters are
deterministic here: failed writes, notify_free) are compared, and reads are
checked against the data last written.  The first disagreement stops the run
and is returned as a :class:`~zsmalloc.kernel.diff.Divergence`.

The kernel's zsmalloc shrinker (``mm-zspool:zramN``) may compact the pool by
itself under memory pressure (spec zram.md §2.11, §5.8).  When the kernel's
``pages_compacted`` moved although we did not compact, the model is compacted
too (a shrinker scan is exactly ``zs_compact``); if the rows then agree, the
event is counted and the run goes on, otherwise the divergence is reported
with ``kind="shrinker"`` so it is not mistaken for a model bug.

The kernel run can be saved as a trace in the shared/testdata format (with
the ``l``/``r`` extension lines for mem_limit and mem_used_max resets).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zsmalloc.compress import stored_size
from zsmalloc.errors import OutOfMemoryError
from zsmalloc.kernel.diff import IO_STAT_COLUMNS, Divergence, compare_rows, compare_texts
from zsmalloc.kernel.live import LiveZram
from zsmalloc.kernel.workload import Op, generate
from zsmalloc.zram.device import Zram, page_same_filled
from zsmalloc.zram.stats import MmStat
from zsmalloc.zram.trace import TraceWriter

TEXT_FILES = ("mm_stat", "io_stat", "debug_stat", "comp_algorithm", "disksize", "initstate")


@dataclass
class VerifyResult:
    """What a verify run did and found."""

    algorithm: str
    seed: int
    ops_planned: int
    nr_pages: int
    ops_done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    failed_stores: int = 0
    shrinker_events: int = 0
    reads_checked: int = 0
    seconds: float = 0.0
    divergence: Divergence | None = None
    final_mm_stat: list[int] = field(default_factory=list)
    device: str = ""  # the hot-added device used (removed again at the end)

    @property
    def ok(self) -> bool:
        return self.divergence is None

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "algorithm": self.algorithm,
            "seed": self.seed,
            "pages": self.nr_pages,
            "ops_planned": self.ops_planned,
            "ops_done": self.ops_done,
            "counts": self.counts,
            "failed_stores": self.failed_stores,
            "shrinker_events": self.shrinker_events,
            "reads_checked": self.reads_checked,
            "seconds": round(self.seconds, 3),
            "final_mm_stat": self.final_mm_stat,
            "device": self.device,
            "divergence": self.divergence.to_dict() if self.divergence else None,
        }


def _stored_size(model: Zram, page: bytes) -> int:
    """What the store adds to compr_data_size (0 for same-filled), for the trace."""
    same, _ = page_same_filled(np.frombuffer(page, dtype=np.uint8))
    comp_len = 0 if same else len(model.comps[0].compress(page))
    return stored_size(comp_len, same, model.huge_class_size)


def verify_zram(
    algorithm: str = "lzo-rle",
    n_ops: int = 2000,
    seed: int = 1,
    nr_pages: int = 256,
    save: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Run the workload on a live device and on the model; stop at the first divergence.

    Raises KernelUnavailableError (no root, no zram) before doing anything.
    """
    result = VerifyResult(algorithm, seed, n_ops, nr_pages)
    model = Zram(name="model")
    page_size = model.profile.page_size  # the live kernel's too (x86_64: 4 KiB)
    disksize = nr_pages * page_size
    model.set_comp_algorithm(algorithm)
    model.set_disksize(disksize)
    written: dict[int, bytes] = {}
    writer = None
    t0 = time.perf_counter()
    with LiveZram(algorithm=algorithm, disksize=disksize) as live:
        result.device = f"zram{live.dev_id}"
        if save is not None:
            writer = TraceWriter(
                save,
                {
                    "kernel": Path("/proc/sys/kernel/osrelease").read_text().strip(),
                    "algo": algorithm,
                    "disksize": disksize,
                    "workload": "verify",
                    "seed": seed,
                },
            )
        try:
            for i, op in enumerate(generate(n_ops, seed, nr_pages, page_size=page_size)):
                where = f"op {i + 1} ({op.describe()})"
                div = _apply(op, live, model, written, result, writer, where)
                if div is None:
                    shrinker_before = result.shrinker_events
                    div = _compare(live, model, result, where)
                    if writer is not None and result.shrinker_events > shrinker_before:
                        writer.comment("the kernel's zsmalloc shrinker compacted here")
                        writer.compact()
                result.counts[op.kind] = result.counts.get(op.kind, 0) + 1
                result.ops_done = i + 1
                if writer is not None and op.kind != "read":
                    writer.mm_stat(live.mm_stat())
                if div is not None:
                    result.divergence = div
                    break
                if progress is not None:
                    progress(i + 1)
            if result.divergence is None:  # the files themselves, byte for byte
                for name in TEXT_FILES:
                    div = compare_texts(
                        "after the last op", name, live.attr(name), model.read_attr(name)
                    )
                    if div is not None:
                        result.divergence = div
                        break
        finally:
            if writer is not None:
                writer.close()
            result.final_mm_stat = live.mm_stat()
    result.seconds = time.perf_counter() - t0
    return result


def _apply(
    op: Op,
    live: LiveZram,
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
        except OSError:
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
            result.failed_stores += 1
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
        result.reads_checked += 1
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
            value = MmStat(*live.mm_stat()).mem_used_total + page_size
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


def _compare(live: LiveZram, model: Zram, result: VerifyResult, where: str) -> Divergence | None:
    """mm_stat then io_stat; a shrinker compaction on the kernel side is followed, not blamed."""
    k, m = MmStat(*live.mm_stat()), model.mm_stat()
    div = compare_rows(where, "mm_stat", k, m)
    if div is not None and k.pages_compacted > m.pages_compacted:
        model.compact()  # the shrinker's scan is zs_compact()
        m = model.mm_stat()
        div = compare_rows(where, "mm_stat", k, m)
        if div is None:
            result.shrinker_events += 1
        else:
            return Divergence(div.where, div.what, div.kernel, div.model, div.columns, "shrinker")
    if div is not None:
        return div
    k_io = [int(v) for v in live.attr("io_stat").split()]
    return compare_rows(where, "io_stat", k_io, model.io_stat(), IO_STAT_COLUMNS)


def run_cli(
    *,
    algo: str = "lzo-rle",
    n_ops: int = 2000,
    seed: int = 1,
    nr_pages: int = 256,
    save: str | None = None,
    as_json: bool = False,
) -> int:
    """``zsmalloc verify --kernel``: run, print, return the exit status (0 match, 1 divergence)."""
    import json
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    err = Console(stderr=True)
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"verify zram {algo} seed {seed}", total=n_ops)
        result = verify_zram(
            algo, n_ops, seed, nr_pages, save, progress=lambda n: bar.update(task, completed=n)
        )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
        print(
            f"verify --kernel: {algo}, seed {seed}, {nr_pages} pages: {result.ops_done}/{n_ops} "
            f"ops in {result.seconds:.1f} s ({counts})"
        )
        print(
            f"  refused stores (mem_limit) {result.failed_stores}, reads checked "
            f"{result.reads_checked}, shrinker compactions followed {result.shrinker_events}"
        )
        if result.ok:
            print(
                f"  all mm_stat and io_stat rows match after every operation; final mm_stat "
                f"{' '.join(map(str, result.final_mm_stat))}"
            )
        else:
            assert result.divergence is not None
            print("DIVERGENCE at " + result.divergence.render())
        if save:
            print(f"  kernel run saved to {save}")
    return 0 if result.ok else 1
