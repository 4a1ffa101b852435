"""``zsmalloc classes``: the size-class table a pool of this configuration would build.

The text lines up with the RFC author's simulator (github.com/sergey-senozhatsky/
simulate-zsmalloc, ``print_pool_stats`` and ``print_summary``), so that a table can be
pasted into a mail next to his: the simulator's six columns first, in its widths, then
this package's (class index, merged indices, the zs_malloc sizes served, huge).
``--simulator`` prints exactly the simulator's lines and nothing else (the tests compare
them with the simulator's own output, tests/data/simulator); ``--requests`` its
"Detailed Request View" (one line per 16-byte request size); ``--json`` the same rows
as data.
"""

from __future__ import annotations

import json
from typing import TypedDict

import click

from zsmalloc.cli.options import kernel_option, variant_options
from zsmalloc.profile import (
    MAX_CHAIN_SIZE,
    MIN_CHAIN_SIZE,
    MIN_VARIANT_CHAIN_SIZE,
    PAGE_SIZES,
    KernelProfile,
)
from zsmalloc.zs.size_class import ClassTable, class_table


class ClassRow(TypedDict):
    """One real class, as ``--json`` prints it."""

    index: int
    size: int
    merged: list[int]  # first and last index served by it
    merge_count: int  # how many indices it serves (the simulator's Merge#)
    user_sizes: list[int]  # first and last zs_malloc size landing in it
    pages_per_zspage: int
    objs_per_zspage: int
    waste: int  # tail bytes of one zspage
    waste_pct: float  # of the zspage
    span: int  # objects of a full zspage that straddle two pages
    huge: bool


def class_rows(t: ClassTable) -> list[ClassRow]:
    """One row per real class: the columns of the spec's Appendix A and the simulator's."""
    rows: list[ClassRow] = []
    for idx in t.real_indices:
        i = int(idx)
        lo, hi = t.merged_range(i)
        ulo, uhi = t.user_size_range(i)
        rows.append(
            {
                "index": i,
                "size": int(t.size[i]),
                "merged": [lo, hi],
                "merge_count": hi - lo + 1,
                "user_sizes": [ulo, uhi],
                "pages_per_zspage": int(t.pages_per_zspage[i]),
                "objs_per_zspage": int(t.objs_per_zspage[i]),
                "waste": t.waste(i),
                "waste_pct": t.waste_pct(i),
                "span": int(t.span[i]),
                "huge": bool(t.huge[i]),
            }
        )
    return rows


def _sim(n: int, width: int) -> str:
    """C's ``% -Nd``: a space for the sign of a non-negative number, left-justified."""
    return f"{n: d}".ljust(width)


SIM_HEADER = "Phys Size  | Chain | Objs/Page | Waste        | Span  | Merge#"
SIM_RULE = "-" * 65


def simulator_row(r: ClassRow) -> str:
    """One class as the simulator's print_pool_stats() prints it (no newline)."""
    waste = f"{r['waste']:4d} ({r['waste_pct']:4.1f}%)"
    return (
        f"{_sim(r['size'], 10)} | {_sim(r['pages_per_zspage'], 5)} | "
        f"{_sim(r['objs_per_zspage'], 9)} | {waste} | {_sim(r['span'], 5)} | "
        f"{_sim(r['merge_count'], 6)}"
    )


def summary_lines(t: ClassTable, nr_real: int, label: str = "SUMMARY") -> list[str]:
    """The simulator's print_summary() lines for this table."""
    return [
        f"{label} Avg Effective Waste (User Requests): {t.avg_effective_waste_pct():.2f}%",
        f"{label} Total Logical Classes: {t.nr_size_classes}",
        f"{label} Total Physical Classes: {nr_real}",
        f"{label} Total Span (All Logicals): {t.total_span()}",
    ]


def title(t: ClassTable) -> str:
    """``PAGE_SIZE: 4096, CHAIN_SIZE: 8`` (the simulator's first line) and what the model adds."""
    p = t.profile
    return (
        f"PAGE_SIZE: {t.page_size}, CHAIN_SIZE: {t.chain_size}  "
        f"(Linux {p.version}, class delta {t.size_class_delta}, {t.chain_rule})"
    )


def render_text(t: ClassTable, rows: list[ClassRow]) -> list[str]:
    """The table: the simulator's columns, then index, merged indices, user sizes, huge."""
    lines = [title(t), "", f"{SIM_HEADER} | idx  | merged idx | user sizes  | huge", SIM_RULE]
    for r in rows:
        lo, hi = r["merged"]
        ulo, uhi = r["user_sizes"]
        merged = f"{lo}" if lo == hi else f"{lo}-{hi}"
        cols = [simulator_row(r), f"{r['index']:<4d}", f"{merged:<10}", f"{ulo}-{uhi}".ljust(11)]
        lines.append(" | ".join([*cols, "huge" if r["huge"] else ""]).rstrip(" |"))
    lines += ["", *summary_lines(t, len(rows)), ""]
    lines.append(f"{len(rows)} classes over {t.nr_size_classes} indices")
    lines.append(f"huge_class_size {t.huge_class_size}")
    return lines


def request_lines(t: ClassTable) -> list[str]:
    """The simulator's print_request_table(): per slot size 32, 48, .., PAGE_SIZE the class
    it lands in, that class's tail waste, the padding of a zspage full of such requests
    (MergeWaste) and the class's span."""
    out = [
        "Req   | Phys  | Chain | Objs/Page | TailWaste  | MergeWaste | Span ",
        "-" * 76,
    ]
    for req in range(t.min_alloc_size, t.page_size + 1, 16):
        i = int(t.index[t.get_size_class_index(req)])
        size, objs = int(t.size[i]), int(t.objs_per_zspage[i])
        out.append(
            f"{_sim(req, 5)} | {_sim(size, 5)} | {_sim(int(t.pages_per_zspage[i]), 5)} | "
            f"{_sim(objs, 9)} | {_sim(t.waste(i), 10)} | {_sim((size - req) * objs, 10)} | "
            f"{_sim(int(t.span[i]), 5)}"
        )
    return out


@click.command("classes")
@click.option("--chain", "chain_size",
              type=click.IntRange(MIN_VARIANT_CHAIN_SIZE, MAX_CHAIN_SIZE),
              default=8, show_default=True,
              help="CONFIG_ZSMALLOC_CHAIN_SIZE: the most pages one zspage may chain "
              f"(Kconfig: {MIN_CHAIN_SIZE}..{MAX_CHAIN_SIZE}; 1..3 give what-if tables, "
              "as the RFC's simulator does).")
@click.option("--page-size", type=click.Choice([str(p) for p in PAGE_SIZES]), default="4096",
              show_default=True, help="PAGE_SIZE in bytes.")
@kernel_option(help="Kernel whose rules build the table (6.1: 4 pages, usedpc).")
@variant_options
@click.option("--simulator", "as_simulator", is_flag=True,
              help="Print exactly the simulator's class lines and summary (to diff with it).")
@click.option("--requests", "as_requests", is_flag=True,
              help="Print the simulator's request view: one line per 16-byte slot size.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def classes(
    chain_size: int,
    page_size: str,
    kernel: str,
    class_delta: int | None,
    chain_rule: str | None,
    as_simulator: bool,
    as_requests: bool,
    as_json: bool,
) -> None:
    """Print the size-class table: each real class with pages and objects per zspage, tail
    waste, the objects that span two pages, merged indices and the zs_malloc sizes it
    serves; the simulator's summary lines; then huge_class_size (zram stores pages
    compressing to at least that raw).  --class-delta and --chain-rule build a variant."""
    version = kernel
    prof = KernelProfile(version, int(page_size), chain_size, class_delta, chain_rule,
                         variant_chain=chain_size < MIN_CHAIN_SIZE)
    t = class_table(prof)
    rows = class_rows(t)
    if as_json:
        doc = {
            "kernel": version,
            "page_size": t.page_size,
            "chain_size": t.chain_size,
            "class_delta": t.size_class_delta,
            "chain_rule": t.chain_rule,
            "nr_size_classes": t.nr_size_classes,
            "nr_classes": len(rows),
            "huge_class_size": t.huge_class_size,
            "avg_effective_waste_pct": t.avg_effective_waste_pct(),
            "total_span": t.total_span(),
            "classes": rows,
        }
        click.echo(json.dumps(doc, indent=1))
        return
    if as_requests:
        click.echo("\n".join(request_lines(t)))
        return
    if as_simulator:
        lines = [SIM_HEADER, SIM_RULE, *map(simulator_row, rows), "",
                 f"Total Logical: {t.nr_size_classes}", f"Total Physical: {len(rows)}",
                 *summary_lines(t, len(rows))]
        click.echo("\n".join(lines))
        return
    click.echo("\n".join(render_text(t, rows)))
