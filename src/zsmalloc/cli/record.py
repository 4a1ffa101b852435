"""``zsmalloc record [-o TRACE] [--duration S] [--pool NAME]``: zsmalloc's calls, live.

Captures zs_malloc, zs_free and zs_compact (and pools made and destroyed) through
tracefs kprobe events (:mod:`zsmalloc.live.record`) into a zs trace
(:mod:`zsmalloc.zs.trace`; ``docs/record.md``), which ``zsmalloc replay`` and ``zsmalloc
whatif --trace`` take.  Root, and a kernel with kprobe events (Debian's have them).

Exit status: 0 for a complete trace, 1 when events were lost (the trace says
``# incomplete``; one line on stderr says why), 2 when this machine cannot record
(one line: not root, no kprobes -- as on this project's development host --, no
tracefs, zsmalloc not loaded).
"""

from __future__ import annotations

import signal
import sys
from typing import IO, Any

import click

from zsmalloc.errors import InputError


def render_replay(res: Any) -> list[str]:
    """A zs trace's replay (:class:`~zsmalloc.zs.replay.ZsReplayResult`) as text lines."""
    lines = [f"{res.path}: Linux {res.profile.describe()}: {res.ops} operations replayed, "
             f"{res.checks} of the kernel's answers checked"]
    for p in res.pools.values():
        s = p.summary()
        lines.append(
            f"pool {s['pool']} {s['name'] or '?'} ({s['state']}): {s['allocs']} zs_malloc, "
            f"{s['frees']} zs_free, {s['compactions']} zs_compact, {s['failed_allocs']} "
            f"failed, {s['unknown_frees']} frees of unknown objects; {s['total_pages']} pages "
            f"at the end (peak {s['max_pages']}), pages_compacted {s['pages_compacted']}, "
            f"{s['live_objects']} objects of {s['live_bytes']} bytes"
            + (f"; {s['checks_skipped']} answers not checkable" if s["checks_skipped"] else "")
        )
    for why in res.incomplete:
        lines.append(f"INCOMPLETE recording: {why}")
    for why in res.inexact:
        lines.append(f"INEXACT order: {why}")
    if res.mismatch_line is not None:
        k, m = res.kernel_value, res.model_value
        if res.what == "m":
            lines.append(f"MISMATCH at line {res.mismatch_line} (pool {res.mismatch_pool}): "
                         f"kernel {k[0]} pages, pages_compacted {k[1]}; model {m[0]} pages, "
                         f"pages_compacted {m[1]}")
        else:
            lines.append(f"MISMATCH at line {res.mismatch_line} (pool {res.mismatch_pool}): "
                         f"zs_compact freed {k[0]} pages in the kernel, {m[0]} in the model")
    elif res.checks:
        lines.append(f"all {res.checks} answers match")
    else:
        lines.append("nothing to compare (no m line, no zs_compact of a pool made in the trace)")
    return lines


@click.command("record")
@click.option("-o", "--output", default="-", show_default=True,
              type=click.Path(dir_okay=False, allow_dash=True),
              help="The zs trace (.gz: compressed; -: standard output).")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None,
              help="Seconds to record (default: until Ctrl-C or SIGTERM).")
@click.option("--pool", default=None, help="Only the pool of this name (zram0, zswap...).")
@click.option("--tracefs", type=click.Path(file_okay=False, exists=True), default=None,
              help="Where tracefs is mounted (default: /sys/kernel/tracing, or under debugfs).")
@click.option("--buffer-kb", type=click.IntRange(64), default=None,
              help="Ring buffer per CPU while recording (KiB; default: 256 MiB split between "
              "the CPUs, 4..64 MiB each).")
def record_cmd(
    output: str,
    duration: float | None,
    pool: str | None,
    tracefs: str | None,
    buffer_kb: int | None,
) -> None:
    """Record zs_malloc/zs_free/zs_compact on this machine into a zs trace (root, kprobes)."""
    import gzip
    from pathlib import Path

    from zsmalloc.live.record import Recorder, record_unavailable_reason

    root = Path(tracefs) if tracefs else None
    reason = record_unavailable_reason(root)
    if reason:
        click.echo(f"zsmalloc: record: {reason}", err=True)
        sys.exit(2)
    out: IO[str]
    if output == "-":
        out = sys.stdout
    elif output.endswith(".gz"):
        out = gzip.open(output, "wt", encoding="utf-8")  # noqa: SIM115 - closed below
    else:
        try:
            out = open(output, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror}", path=output) from None
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    rec: Recorder | None = None
    try:
        rec = Recorder(out, pool=pool, buffer_kb=buffer_kb, tracefs=root)
        rec.start()
        click.echo("recording zsmalloc's calls" + (f" for {duration:g} s" if duration else
                   " (Ctrl-C to stop)"), err=True)
        rec.run(duration, lambda: stopping)
        counts = rec.stop()
    finally:
        if rec is not None:
            rec.teardown()
        for s, h in old.items():
            signal.signal(s, h)
        if out is not sys.stdout:
            out.close()
    lost = rec.conv.incomplete
    click.echo(f"{counts.allocs} zs_malloc, {counts.frees} zs_free, {counts.compactions} "
               f"zs_compact in {len(counts.pools)} pools ({counts.events} events)", err=True)
    if counts.overlaps:
        click.echo(f"note: {counts.overlaps} calls overlapped in time: a replay may differ from "
                   "the kernel by a few pages (docs/record.md)", err=True)
    if lost:
        click.echo(f"zsmalloc: record: incomplete trace: {'; '.join(lost)}", err=True)
        sys.exit(1)
