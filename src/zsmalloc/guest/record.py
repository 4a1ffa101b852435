"""``zsmalloc verify --guest PKG --record``: ``zsmalloc record``'s events checked in a guest.

The kernel of this project's development host has no kprobes, so the recorder is
checked where Debian's kernels run: the guest's /init (init.c) writes the recorder's
own event definitions (:func:`zsmalloc.zs.record.event_definitions`) into tracefs before
the zram device exists, runs the same random zram workload as ``verify --guest`` with a
run of the slab shrinkers (``drop_caches``) after every 50th operation, and marks the
ring buffer after each operation (``zsrec op N``) before printing mm_stat.  At the end
it dumps the ring buffer's text, ``kprobe_profile`` and the buffer's stats.

On the host the ring-buffer text goes through the recorder's converter
(:class:`~zsmalloc.zs.record.KprobeConverter`) into a zs trace, and each marker becomes
an ``m`` line holding the guest's mm_stat at that point (mem_used_total in pages, and
pages_compacted).  That trace replays in the model of the guest's kernel
(:func:`~zsmalloc.zs.replay.replay_zs`): every ``m`` line and every zs_compact's return
is compared.  The ground truth is the guest's mm_stat; the model only sees the sizes
zs_malloc was asked for.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from zsmalloc.errors import InputError
from zsmalloc.guest.deb import cached_kernel
from zsmalloc.guest.initramfs import cache_dir
from zsmalloc.guest.program import GUEST_PAGE, GuestReport, parse_report
from zsmalloc.live.defaults import GUEST
from zsmalloc.live.workload import Op, zram_ops
from zsmalloc.streams import open_input
from zsmalloc.zs.record import (
    KprobeConverter,
    RecordCounts,
    chain_size_from_config,
    event_definitions,
    lost_events,
    trace_header,
)
from zsmalloc.zs.replay import ZsReplayResult, replay_zs
from zsmalloc.zs.trace import ZsTraceWriter, parse_zs_trace

MM_USED = 2  # mm_stat's mem_used_total column
MM_COMPACTED = 6  # pages_compacted


@dataclass
class RecordCheck:
    """A guest's recording, converted and replayed."""

    release: str
    ops: int  # workload operations
    counts: RecordCounts
    replay: ZsReplayResult
    zs_trace: str  # the converted trace's text
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.replay.ok and not self.replay.incomplete

    def to_dict(self) -> dict[str, object]:
        return {
            "release": self.release, "ops": self.ops, "ok": self.ok,
            "events": self.counts.events, "checks": self.replay.checks,
            "seconds": round(self.seconds, 3), "counts": self.counts.as_words(),
            "replay": self.replay.to_dict(),
        }


def report_to_zs_trace(report: GuestReport, chain_size: int | None) -> tuple[str, RecordCounts]:
    """The guest's ring-buffer text as a zs trace, with its mm_stat as ``m`` lines.

    ``chain_size``: the kernel's CONFIG_ZSMALLOC_CHAIN_SIZE (None: it has none, 6.1).
    """
    if not report.trace:
        raise InputError("guest report: no ring-buffer text (was it run with --record?)")
    out = io.StringIO()
    header = trace_header(report.release, GUEST_PAGE, chain_size, "guest")
    writer = ZsTraceWriter(out, header)
    rows = [report.initial, *(s.mm_stat for s in report.steps)]

    def marker(text: str) -> None:
        words = text.split()
        if len(words) != 2 or words[0] != "op" or not words[1].isdigit():
            raise InputError(f"guest report: a marker {text!r}")
        n = int(words[1])
        if n >= len(rows) or len(rows[n]) <= MM_COMPACTED:
            raise InputError(f"guest report: marker of operation {n}, which has no mm_stat")
        zram = [no for no, name in conv.names.items() if name == "zram0"]
        if not zram:
            raise InputError("guest report: no zram0 pool in the events before a marker")
        used = rows[n][MM_USED]
        if used % GUEST_PAGE:
            raise InputError(f"guest report: mem_used_total {used} is not whole pages")
        writer.check(zram[-1], used // GUEST_PAGE, rows[n][MM_COMPACTED])

    conv = KprobeConverter(writer, on_marker=marker)
    conv.feed(report.trace)
    conv.finish(lost_events("\n".join(report.kprobe_profile), ["\n".join(report.buffer_stats)]))
    return out.getvalue(), conv.counts


def check_recording(report: GuestReport, chain_size: int | None) -> RecordCheck:
    """Convert and replay a guest's recording (see the module docstring)."""
    text, counts = report_to_zs_trace(report, chain_size)
    trace = parse_zs_trace(text.encode(), f"<{report.release} recording>")
    res = replay_zs(trace)
    return RecordCheck(report.release, len(report.steps), counts, res, text)


def read_report(path: str | Path) -> GuestReport:
    """A guest report saved as text (plain or compressed, tests/data/record)."""
    with open_input(path, label=str(path), what="guest report") as f:
        return parse_report(f.read().decode("utf-8", "replace"))


def verify_guest_record(
    packages: Iterable[str | Path],
    algorithm: str = GUEST["algorithm"],
    n_ops: int = GUEST["n_ops"],
    seed: int = GUEST["seed"],
    nr_pages: int = GUEST["nr_pages"],
    save: str | Path | None = None,
    save_report: str | Path | None = None,
    timeout: float = 1800,
    accel: str = "auto",
    files: list[Path] | None = None,
    parallel: int = 0,
    cpus: int = 1,
) -> RecordCheck:
    """Boot the package's kernel, record the workload's zsmalloc calls, replay, compare.

    ``save`` writes the converted zs trace (``.gz``: compressed), ``save_report`` the
    guest's whole report (what tests/data/record holds).  ``parallel``/``cpus``: two
    tasks writing at once on a guest of ``cpus`` CPUs (see :func:`with_shrinks`).
    """
    from zsmalloc.guest.verify import run_guest

    t0 = time.perf_counter()
    kernel = cached_kernel(packages, cache_dir())
    ops = with_shrinks(list(zram_ops(n_ops, seed, nr_pages, files)), parallel)
    report, seconds = run_guest(kernel, ops, algorithm, nr_pages * GUEST_PAGE, timeout, accel,
                                kprobes=event_definitions(), cpus=cpus)
    if save_report is not None:
        _write_text(save_report, report.raw)
    check = check_recording(report, chain_size_from_config(kernel.config))
    if save is not None:
        _write_text(save, check.zs_trace)
    check.seconds = time.perf_counter() - t0
    check.notes.append(f"{kernel.release} in QEMU ({seconds:.1f} s)")
    return check


SHRINK_EVERY = 50
"""The record check runs the slab shrinkers (drop_caches=2) after every 50th operation."""


def with_shrinks(ops: list[Op], parallel: int = 0) -> list[Op]:
    """``ops`` with a run of the shrinkers after every :data:`SHRINK_EVERY`-th one: zsmalloc's
    pool shrinker must go through zs_compact (it is the only other way pages leave a
    pool), so its compactions must be in the trace, or the next mm_stat differs.

    ``parallel``: before each shrinker run, two tasks write that many pages each at once
    (init.c's ``p``), so that calls into the pool overlap.
    """
    out: list[Op] = []
    for i, op in enumerate(ops, 1):
        out.append(op)
        if i % SHRINK_EVERY == 0:
            if parallel:
                out.append(Op("parallel", value=parallel))
            out.append(Op("shrink"))
    return out


def _write_text(path: str | Path, text: str) -> None:
    import gzip

    p = Path(path)
    data = text.encode()
    p.write_bytes(gzip.compress(data, mtime=0) if p.suffix == ".gz" else data)
