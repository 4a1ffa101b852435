"""``zsmalloc replay TRACE [--kernel V] [--json]``: replay a zram size trace, check every mm_stat.

A zs trace (``zsmalloc record``'s format, :mod:`zsmalloc.zs.trace`; recognised by its
header line, or ``--zs`` for standard input) replays in bare pools instead
(:mod:`zsmalloc.zs.replay`): its ``m`` lines and zs_compact returns are the kernel's
answers compared; a trace with none of them prints the replay's figures and exits 2.

The model follows the kernel the trace was recorded on: the header's ``kernel=``
(``6.1.0-57-amd64`` -> the 6.1 profile, ``-16k`` flavours with 16 KiB pages), unless
``--kernel``, ``--page-size`` or ``--chain`` say otherwise.  The trace is read piece
by piece (any length, bounded memory; ``-`` for standard input).

Exit status 0 when every ``m`` line matches the model, 1 at the first
mismatch (its line number and both rows are printed), 2 for an unreadable or
corrupt trace, or one with no ``m`` line to compare (one line naming the file and
line).
"""

from __future__ import annotations

import json
import sys

import click

from zsmalloc.cli.live import render_divergence
from zsmalloc.cli.notice import compile_notice
from zsmalloc.cli.options import kernel_option
from zsmalloc.errors import InputError
from zsmalloc.live.result import Divergence
from zsmalloc.profile import (
    DEFAULT_CHAIN_SIZE,
    DEFAULT_PROFILE,
    MAX_CHAIN_SIZE,
    MIN_CHAIN_SIZE,
    PAGE_SIZES,
)


@click.command("replay")
@click.argument("trace", type=click.Path(dir_okay=False, allow_dash=True))
@kernel_option(default=None, help="Replay as this kernel (default: the trace header's kernel=).")
@click.option("--page-size", type=click.Choice([str(p) for p in PAGE_SIZES]), default=None,
              help="PAGE_SIZE of the recording kernel (default: from its release, else 4096).")
@click.option("--chain", "chain_size", type=click.IntRange(MIN_CHAIN_SIZE, MAX_CHAIN_SIZE),
              default=DEFAULT_CHAIN_SIZE, show_default=True,
              help="CONFIG_ZSMALLOC_CHAIN_SIZE of the recording kernel (6.1 has none: 4).")
@click.option("--zs", "zs", is_flag=True,
              help="TRACE is a zs trace (zsmalloc record's; files are recognised by header).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def replay_cmd(
    trace: str, kernel: str | None, page_size: str | None, chain_size: int, zs: bool,
    as_json: bool,
) -> None:
    """Replay a zram size trace or a zs trace (plain or compressed; - for stdin); compare
    the kernel's answers in it (mm_stat lines)."""
    from zsmalloc.profile import profile_for_release
    from zsmalloc.zram.replay import replay, warm_up
    from zsmalloc.zs.trace import sniff_zs_trace

    if zs or sniff_zs_trace(trace):
        _replay_zs(trace, kernel, page_size, chain_size, as_json)
        return

    release = kernel
    if release is None and trace != "-":  # the header line only: the rest streams later
        from zsmalloc.streams import open_input
        from zsmalloc.zram.trace import trace_release

        with open_input(trace, label=trace, what="trace") as f:
            release = trace_release(f.readline(1 << 16))
    given = release is not None or page_size is not None or chain_size != DEFAULT_CHAIN_SIZE
    # standard input cannot be read twice: its header's kernel= is honoured by replay()
    profile = profile_for_release(release or "6.18", int(page_size) if page_size else None,
                                  chain_size) if given else None
    with compile_notice("the replay loop"):
        warm_up(profile or DEFAULT_PROFILE)
    result = replay(trace, profile)
    profile = result.profile or DEFAULT_PROFILE
    if result.m_lines == 0:
        raise InputError(
            f"no mm_stat ('m') line in {result.ops} operations: nothing to compare", path=trace
        )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(
            f"{trace}: Linux {profile.describe()}: "
            f"{result.ops_replayed}/{result.ops} ops replayed ({result.algorithm or '?'}), "
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


def _replay_zs(
    trace: str, kernel: str | None, page_size: str | None, chain_size: int, as_json: bool
) -> None:
    """``replay`` of a zs trace: exit 0 all answers match, 1 a mismatch, 2 none to check."""
    from zsmalloc.cli.record import render_replay
    from zsmalloc.profile import profile_for_release
    from zsmalloc.zs.replay import replay_zs, warm_up
    from zsmalloc.zs.trace import iter_zs_trace

    given = kernel is not None or page_size is not None or chain_size != DEFAULT_CHAIN_SIZE
    profile = None
    if given:
        release = kernel
        if release is None and trace != "-":
            release = next(iter(iter_zs_trace(trace, chunk_bytes=1 << 16))).header.get("kernel")
        profile = profile_for_release(release or "6.18", int(page_size) if page_size else None,
                                      chain_size)
    with compile_notice("the replay loop"):
        warm_up(profile or DEFAULT_PROFILE)
    res = replay_zs(trace, profile)
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
    else:
        click.echo("\n".join(render_replay(res)))
    sys.exit(0 if res.ok else 1 if res.mismatch_line is not None else 2)
