"""``zsmalloc classes``: the size-class table a pool of this configuration would build."""

from __future__ import annotations

import json
from typing import TypedDict

import click
from rich.console import Console
from rich.table import Table

from zsmalloc.cli.options import kernel_option
from zsmalloc.profile import MAX_CHAIN_SIZE, MIN_CHAIN_SIZE, PAGE_SIZES, KernelProfile
from zsmalloc.zs.size_class import ClassTable, class_table


class ClassRow(TypedDict):
    """One real class, as ``--json`` prints it."""

    index: int
    size: int
    merged: list[int]  # first and last index served by it
    user_sizes: list[int]  # first and last zs_malloc size landing in it
    pages_per_zspage: int
    objs_per_zspage: int
    waste: int
    huge: bool


def class_rows(t: ClassTable) -> list[ClassRow]:
    """One row per real class: the columns of the spec's Appendix A."""
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
                "user_sizes": [ulo, uhi],
                "pages_per_zspage": int(t.pages_per_zspage[i]),
                "objs_per_zspage": int(t.objs_per_zspage[i]),
                "waste": t.waste(i),
                "huge": bool(t.huge[i]),
            }
        )
    return rows


def render_table(t: ClassTable, rows: list[ClassRow]) -> Table:
    table = Table(
        title=f"zsmalloc size classes: Linux {t.version}, {t.page_size} B pages, "
        f"chain {t.chain_size}",
        caption=f"{len(rows)} classes; huge_class_size {t.huge_class_size}",
    )
    for name in ("idx", "size", "merged idx", "user sizes", "ppz", "objs", "waste", ""):
        table.add_column(name, justify="left" if name in ("merged idx", "user sizes") else "right")
    for r in rows:
        lo, hi = r["merged"]
        ulo, uhi = r["user_sizes"]
        table.add_row(
            str(r["index"]),
            str(r["size"]),
            f"{lo}" if lo == hi else f"{lo}-{hi}",
            f"{ulo}-{uhi}",
            str(r["pages_per_zspage"]),
            str(r["objs_per_zspage"]),
            str(r["waste"]),
            "huge" if r["huge"] else "",
        )
    return table


@click.command("classes")
@click.option("--chain", "chain_size", type=click.IntRange(MIN_CHAIN_SIZE, MAX_CHAIN_SIZE),
              default=8, show_default=True,
              help="CONFIG_ZSMALLOC_CHAIN_SIZE: the most pages one zspage may chain.")
@click.option("--page-size", type=click.Choice([str(p) for p in PAGE_SIZES]), default="4096",
              show_default=True, help="PAGE_SIZE in bytes.")
@kernel_option(help="Kernel whose rules build the table (6.1: 4 pages, usedpc).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def classes(chain_size: int, page_size: str, kernel: str, as_json: bool) -> None:
    """Print the size-class table: each real class with its merged index range, the
    zs_malloc sizes it serves, pages and objects per zspage, tail waste, and the huge
    class; then huge_class_size (zram stores pages compressing to at least that raw)."""
    version = kernel
    t = class_table(KernelProfile(version, int(page_size), chain_size))
    rows = class_rows(t)
    if as_json:
        doc = {
            "kernel": version,
            "page_size": t.page_size,
            "chain_size": t.chain_size,
            "nr_size_classes": t.nr_size_classes,
            "nr_classes": len(rows),
            "huge_class_size": t.huge_class_size,
            "classes": rows,
        }
        click.echo(json.dumps(doc, indent=1))
        return
    console = Console()
    console.print(render_table(t, rows))
    console.print(f"huge_class_size {t.huge_class_size}")
