"""The fleet report as text: rich tables on a terminal, from the same Fleet as the page."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from zsmalloc.fleet.summary import Fleet, human, sysfs_size


def _ratio(x: float) -> str:
    return f"{x:.2f}x" if x != float("inf") else "inf"


def results_table(fleet: Fleet) -> Table:
    """One row per result: RAM and effective ratio per algorithm; totals last."""
    tab = Table(title="RAM per result (mem_used_total, effective ratio)", title_justify="left")
    tab.add_column("result")
    tab.add_column("uncompressed", justify="right")
    for a in fleet.algos:
        tab.add_column(a, justify="right")
    for r in fleet.results:
        best = fleet.best_of(r)
        cells = []
        for a in fleet.algos:
            x = r.algos[a]
            cell = f"{human(x.mem_used)} {_ratio(x.effective_ratio)}"
            cells.append(f"[bold green]{cell}[/]" if a == best else cell)
        tab.add_row(r.name, human(r.algos[fleet.algos[0]].orig_bytes), *cells)
    tot = fleet.totals
    tab.add_row(
        "[bold]all results[/]",
        human(tot[fleet.algos[0]].orig_bytes),
        *[
            f"[bold]{human(tot[a].mem_used)} {_ratio(tot[a].effective_ratio)}[/]"
            for a in fleet.algos
        ],
        end_section=True,
    )
    return tab


def zswap_table(fleet: Fleet) -> Table | None:
    """zswap's pool per result and algorithm, on the kernel and allocator each result
    was estimated for (``estimate --zswap --kernel K --zpool P``); None unless every
    result measured it."""
    if any(fleet.totals[a].zswap_pool_bytes is None for a in fleet.algos):
        return None
    tab = Table(
        title="zswap instead (pool_total_size, on each result's kernel and zpool)",
        title_justify="left",
    )
    tab.add_column("result")
    tab.add_column("kernel zpool")
    for a in fleet.algos:
        tab.add_column(a, justify="right")
    for r in fleet.results:
        pools = {r.algos[a].zswap_pool for a in fleet.algos}
        tab.add_row(
            r.name,
            "/".join(sorted(p or "?" for p in pools)),
            *[human(r.algos[a].zswap_pool_bytes or 0) for a in fleet.algos],
        )
    tab.add_row(
        "[bold]all results[/]",
        "",
        *[f"[bold]{human(fleet.totals[a].zswap_pool_bytes or 0)}[/]" for a in fleet.algos],
        end_section=True,
    )
    return tab


def render(fleet: Fleet, console: Console) -> None:
    """Print the report: per-result table (and zswap's), the verdict, the setting and
    why, notes."""
    console.print(results_table(fleet))
    zt = zswap_table(fleet)
    if zt is not None:
        console.print(zt)
    rec = fleet.recommendation
    best = fleet.totals[fleet.best]
    console.print(
        f"best: [bold]{fleet.best}[/], {human(best.mem_used)} of RAM for "
        f"{human(best.orig_bytes)} ({_ratio(best.effective_ratio)}), least RAM on "
        f"{best.wins} of {len(fleet.results)} results"
    )
    console.print(
        f"setting: disksize {sysfs_size(rec.disksize)}, mem_limit {sysfs_size(rec.mem_limit)}"
    )
    for line in rec.sysfs_lines():
        console.print(f"  {line}", highlight=False)
    for reason in rec.reasons:
        console.print(f"- {reason}", highlight=False)
    for note in fleet.notes:
        console.print(f"note: {note}", highlight=False)
