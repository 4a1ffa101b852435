"""``zsmalloc zswap``: the zswap model from the command line.

* ``zsmalloc zswap replay TRACE [--kernel V] [--every N] [--worker sync|manual] [--ram SIZE]
  [--json]`` replays a swap trace (format: :mod:`zsmalloc.zswap.trace`, docs/zswap.md)
  through the zswap of kernel V (6.18 by default; its zpool, same-filled pages and
  counters: :mod:`zsmalloc.zswap.rules`) and prints that kernel's debugfs counters over
  time: at each ``stat`` line, every N events, and at the end.
* ``zsmalloc zswap verify [--pages N] [--ops N] [--seed S] [--algo A] [--limit]``:
  the live check; an alias of ``zsmalloc verify --zswap`` (:mod:`zsmalloc.cli.verify`),
  same options, same defaults.

A corrupt trace line is one error line naming file and line, exit status 2.
"""

from __future__ import annotations

import json
import sys

import click

from zsmalloc.cli.options import kernel_option
from zsmalloc.cli.verify import zswap_verify_cmd

# Short column titles for the text table, in debugfs order.
_TITLES = {
    "pool_limit_hit": "limit_hit",
    "reject_reclaim_fail": "rej_reclaim",
    "reject_alloc_fail": "rej_alloc",
    "reject_kmemcache_fail": "rej_kmem",
    "reject_compress_fail": "rej_cfail",
    "reject_compress_poor": "rej_cpoor",
    "decompress_fail": "decomp_fail",
    "written_back_pages": "written_back",
    "pool_total_size": "pool_total_size",
    "stored_pages": "stored",
    "stored_incompressible_pages": "incomp",
    "duplicate_entry": "dup",
    "same_filled_pages": "same",
}


@click.group("zswap")
def zswap_cmd() -> None:
    """The zswap model: replay swap traces, check against the live kernel."""


@zswap_cmd.command("replay")
@click.argument("trace", type=click.Path(dir_okay=False))
@click.option(
    "--every",
    default=0,
    type=click.IntRange(0),
    show_default=True,
    help="Also print the counters every N events (0: only at 'stat' lines and the end).",
)
@click.option(
    "--worker",
    type=click.Choice(["sync", "manual"]),
    default="sync",
    show_default=True,
    help="Run the pool-limit shrink worker right after the rejected store (sync) or "
    "only at 'w' lines (manual).",
)
@click.option("--ram", default=None, help="totalram, e.g. 16G (overrides the trace's 'ram').")
@kernel_option(help="Kernel whose zswap replays the trace (its zpool, rules and counters).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per report line.")
def replay_cmd(
    trace: str, every: int, worker: str, ram: str | None, kernel: str, as_json: bool
) -> None:
    """Replay a zswap swap trace; print the debugfs counters over time."""
    from zsmalloc.errors import InputError
    from zsmalloc.profile import KernelProfile
    from zsmalloc.zswap.rules import zswap_rules
    from zsmalloc.zswap.trace import parse_size, replay, scan_trace

    ram_bytes = None
    if ram is not None:
        try:
            ram_bytes = parse_size(ram)
        except ValueError:
            raise InputError(f"--ram: expected bytes like 16G, found {ram!r}") from None
    t = scan_trace(trace)  # every line checked before any output; nothing kept
    mismatches: list[tuple[int, str, int, int]] = []
    profile = KernelProfile(kernel)
    rows = replay(
        t, every=every, worker=worker, ram=ram_bytes, mismatches=mismatches, profile=profile
    )
    files = zswap_rules(profile).debugfs
    if as_json:
        for line, counters in rows:  # printed as the replay goes
            click.echo(json.dumps({"line": line, **counters}))
        for line, name, want, got in mismatches:
            click.echo(
                json.dumps({"mismatch": line, "counter": name, "expected": want, "model": got})
            )
        sys.exit(1 if mismatches else 0)
    widths = [max(len(_TITLES[n]), 6) for n in files]
    header = f"{'line':>8} " + " ".join(
        f"{_TITLES[n]:>{w}}" for n, w in zip(files, widths, strict=True)
    )
    for k, (line, counters) in enumerate(rows):
        if k == 0:  # after the first event ran: a refused first event prints nothing
            click.echo(header)
        click.echo(
            f"{line:>8} "
            + " ".join(f"{counters[n]:>{w}}" for n, w in zip(files, widths, strict=True))
        )
    for line, name, want, got in mismatches:
        click.echo(f"MISMATCH at line {line}: {name} expected {want}, model {got}")
    if t.expect_lines:
        click.echo(f"{t.expect_lines} expect lines, {len(mismatches)} differences")
    sys.exit(1 if mismatches else 0)


# The live check: the same click command as `zsmalloc verify --zswap`, registered here too.
zswap_cmd.add_command(zswap_verify_cmd, "verify")
