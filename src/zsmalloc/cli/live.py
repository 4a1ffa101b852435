"""Rendering what the live checks return: divergences, result reports, progress bars.

The checks in :mod:`zsmalloc.live` return data (:class:`VerifyResult`,
:class:`Divergence`); this module turns it into the text ``zsmalloc verify``
and ``zsmalloc replay`` print, and draws the progress the checks report
through their callback.  The text is plain (no markup), so tests compare it
exactly; the progress bar goes to stderr, and only on a terminal.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zsmalloc.live.result import Divergence, Progress, VerifyResult

KIND_NOTE = {
    "shrinker": " (the kernel's zsmalloc shrinker compacted the pool on its own)",
    "harness": " (the harness could not run the check as planned: not a model error)",
}


def render_divergence(div: Divergence) -> str:
    """Where, what, and the two rows one above the other::

    op 1234 (write slot 7 (zeros)): mm_stat differs in mem_used_total, mem_used_max
      kernel     4096     2581    28672 ...
      model      4096     2581    32768 ...
    """
    if div.detail:
        return f"{div.where}: {div.what} differs at {div.detail}"
    head = f"{div.where}: {div.what} differs in {', '.join(div.differing)}"
    head += KIND_NOTE.get(div.kind, "")
    k = " ".join(f"{v:8d}" for v in div.kernel)
    m = " ".join(f"{v:8d}" for v in div.model)
    return f"{head}\n  kernel {k}\n  model  {m}"


def render_result(result: VerifyResult) -> str:
    """The report of one live check, as ``zsmalloc verify`` prints it."""
    render = {
        "zram": _zram_lines,
        "guest": _zram_lines,
        "zswap": _zswap_lines,
        "estimate": _estimate_lines,
        "swap": _swap_lines,
        "swap-zswap": _swap_lines,
    }[result.check]
    lines = render(result)
    lines += [f"RESTORE FAILED: {e}" for e in result.restore_errors]
    return "\n".join(lines)


def _zram_lines(r: VerifyResult) -> list[str]:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items()))
    e = r.events
    title = "verify --kernel" if r.check == "zram" else f"verify --guest {r.device}"
    lines = [
        f"{title}: {r.algorithm}, seed {r.seed}, {r.nr_pages} pages: "
        f"{r.ops_done}/{r.ops_planned} ops in {r.seconds:.1f} s ({counts})",
        *(f"  {note}" for note in r.notes),
        f"  refused stores (mem_limit) {e.get('failed_stores', 0)}, reads checked "
        f"{e.get('reads_checked', 0)}, shrinker compactions followed "
        f"{e.get('shrinker_events', 0)}",
    ]
    if r.divergence is None:
        final = " ".join(str(c.kernel) for c in r.comparisons if c.phase == "end")
        lines.append(
            f"  all mm_stat and io_stat rows match after every operation; final mm_stat {final}"
        )
    else:
        lines.append("DIVERGENCE at " + render_divergence(r.divergence))
    return lines


def _zswap_lines(r: VerifyResult) -> list[str]:
    lines = [
        f"zswap check: {r.nr_pages} pages (seed {r.seed}, "
        f"{r.events.get('zero_pages', 0)} all-zero -> swap zero map), compressor {r.algorithm}",
        f"{'counter':<30}{'kernel':>14}{'model':>14}  rule",
    ]
    phase = r.comparisons[0].phase if r.comparisons else ""
    for c in r.comparisons:
        if c.phase != phase:
            phase = c.phase
            lines.append(f"-- after {r.ops_done} frees/swap-ins of random stored pages --")
        mark = "ok" if c.ok else "MISMATCH"
        lines.append(f"{c.name:<30}{c.kernel:>14}{c.model:>14}  {c.rule:<9} {mark}")
    lines += r.notes
    if r.divergence is not None and r.divergence.kind == "harness":
        lines.append(render_divergence(r.divergence))
    lines.append("result: " + ("MATCH" if r.ok else "MISMATCH"))
    return lines


def _estimate_lines(r: VerifyResult) -> list[str]:
    lines = [f"estimate vs {r.device or 'zram'}: {r.algorithm}, {r.nr_pages} pages"]
    for phase in dict.fromkeys(c.phase for c in r.comparisons):
        row = [c for c in r.comparisons if c.phase == phase]
        lines.append(f"  after the {phase}:")
        lines.append("    kernel   " + " ".join(f"{c.kernel:8d}" for c in row))
        lines.append("    estimate " + " ".join(f"{c.model:8d}" for c in row))
    if r.divergence is None:
        lines.append("  every mm_stat column equal")
    else:
        lines.append("DIVERGENCE at " + render_divergence(r.divergence))
    return lines


def _swap_lines(r: VerifyResult) -> list[str]:
    """A process swapped out for real against its estimate: one row per counter."""
    e = r.events
    into = (
        f"zswap ({r.algorithm}) before a swap file"
        if r.check == "swap-zswap"
        else (f"{r.device} ({r.algorithm}) as swap")
    )
    lines = [
        f"swap-out of a process built with {e.get('process_mib', 0)} MiB of data "
        f"({e.get('process_resident_kb', 0) // 1024} MiB resident, seed {r.seed}) into {into}: "
        f"{r.seconds:.1f} s",
        f"  estimate: {r.counts.get('to_device', 0)} pages to the device, "
        f"{r.counts.get('zero_map', 0)} zero-filled to the swap zero map "
        f"({e.get('zero_thp_pages', 0)} in all-zero THPs); {e.get('same_filled_pages', 0)} "
        f"same-filled; {e.get('estimate_ms', 0)} ms",
        f"  kernel: swap-out {e.get('swap_out_ms', 0)} ms, {e.get('left_resident', 0)} pages "
        f"left resident; vmstat pswpout {e.get('pswpout', 0)}, swpout_zero "
        f"{e.get('swpout_zero', 0)}, zswpout {e.get('zswpout', 0)}, thp_swpout "
        f"{e.get('thp_swpout', 0)}, thp_swpout_fallback {e.get('thp_swpout_fallback', 0)}",
    ]
    skipped = [
        f"{v} {k.removeprefix('skipped: ')}" for k, v in e.items() if k.startswith("skipped")
    ]
    if skipped:
        lines.append("  skipped by the estimate: " + ", ".join(skipped))
    lines.append(f"{'counter':<24}{'estimate':>12}{'kernel':>12}{'difference':>22}  rule")
    for c in r.comparisons:
        diff = "0"
        if c.kernel != c.model:
            off = "" if c.off is None else f" ({100 * c.off:+.3f} %)"
            diff = f"{c.kernel - c.model:+d}{off}"
        mark = "ok" if c.ok else "MISMATCH"
        lines.append(f"{c.name:<24}{c.model:>12}{c.kernel:>12}{diff:>22}  {c.rule} {mark}")
    lines += r.notes
    if r.divergence is not None and r.divergence.kind == "harness":
        lines.append(render_divergence(r.divergence))
    lines.append("result: " + ("MATCH" if r.ok else "MISMATCH"))
    return lines


@contextlib.contextmanager
def progress_bar() -> Iterator[Progress]:
    """A ``progress(what, done, total)`` callback drawing rich bars on stderr (a TTY only)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    err = Console(stderr=True)
    with Progress(*columns, console=err, transient=True, disable=not sys.stderr.isatty()) as bar:
        tasks: dict[str, object] = {}

        def report(what: str, done: int, total: int | None) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)  # type: ignore[arg-type]

        yield report
