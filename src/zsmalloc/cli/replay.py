"""``zsmalloc replay TRACE [--json]``: replay a zram size trace, compare every mm_stat line.

Exit status 0 when every ``m`` line matches the model, 1 at the first
mismatch (its line number and both rows are printed), 2 for an unreadable or
corrupt trace (one line naming the file and line).
"""

from __future__ import annotations

import json
import sys

import click

from zsmalloc.cli.live import render_divergence
from zsmalloc.live.result import Divergence


@click.command("replay")
@click.argument("trace", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def replay_cmd(trace: str, as_json: bool) -> None:
    """Replay a zram size trace (plain or .gz) and compare every mm_stat line."""
    from zsmalloc.zram.replay import replay
    from zsmalloc.zram.trace import read_trace

    t = read_trace(trace)
    result = replay(t)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        algo = t.algorithm or "?"
        click.echo(
            f"{trace}: {result.ops_replayed}/{result.ops} ops replayed ({algo}), "
            f"{result.m_checked}/{result.m_lines} mm_stat lines checked, "
            f"{result.ops_per_second:,.0f} ops/s"
        )
        if result.ok:
            click.echo(f"all {result.m_lines} mm_stat lines match")
        else:
            div = Divergence(
                f"line {result.mismatch_line}",
                "mm_stat",
                tuple(result.kernel_row or ()),
                tuple(result.model_row or ()),
            )
            click.echo(f"MISMATCH at {render_divergence(div)}")
    sys.exit(0 if result.ok else 1)
