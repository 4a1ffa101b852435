"""Text views of an estimate report: rich tables, and the debugfs ``classes`` layout.

Everything here reads a :class:`~zsmalloc.estimate.report.Report`; nothing is
computed that the JSON view would not also contain.  Algorithms are shown side
by side, one column each, so the choice between them reads across a row.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from zsmalloc.estimate.report import LOSS_CAUSES, MM_STAT_COLUMNS, Report
from zsmalloc.profile import KernelProfile


def human(n: float) -> str:
    """Bytes as KiB/MiB/GiB with three significant digits."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if abs(n) >= 1 << shift:
            return (
                f"{n / (1 << shift):.3g} {unit}"
                if abs(n) < 1000 << shift
                else (f"{n / (1 << shift):.0f} {unit}")
            )
    return f"{int(n)} B"


def _ratio(x: float | None) -> str:
    return f"{x:.2f}x" if x else "n/a"


def input_lines(rep: Report) -> list[str]:
    t = rep.tally
    lines = []
    if rep.default_input:
        lines.append(f"input (no SOURCE given): {rep.default_input}")
    for rules in t.rules:
        lines.append(f"zram used as {rules.describe().removeprefix('zram as ')}")
    for s in t.sources:
        zero = s.zero_map_pages + s.zero_thp_pages
        head = f"  {s.kind}: {s.label}: "
        if zero:
            head += (
                f"{s.pages + zero} pages swap could take: {s.pages} to zram, "
                f"{zero} to the swap zero map"
            )
        else:
            head += f"{s.pages} pages to zram"
        if s.shmem_pages:
            head += f"; {s.shmem_pages} of them shmem"
        if s.thp_pages:
            head += f"; {s.thp_pages} in THPs read whole"
        lines.append(head)
        skipped = ", ".join(f"{v} {k}" for k, v in s.skipped.items() if v)
        if skipped:
            lines.append(f"    skipped: {skipped}")
        lines += [f"    note: {n}" for n in s.notes]
    if any(r.zero_map for r in t.rules):
        thp = f", {t.zero_thp_pages} of them in all-zero THPs" if t.zero_thp_pages else ""
        lines.append(
            f"swap zero map: {t.zero_map_pages} zero-filled pages "
            f"({human(t.zero_map_pages * t.page_size)}{thp}): swapped out without reaching "
            "zram, so not in mm_stat"
        )
    lines.append(
        f"{t.pages} pages of {t.page_size} B ({human(t.pages * t.page_size)}) reach zram, "
        f"{t.same_pages} same-filled; model: Linux {rep.kernel} zram, zsmalloc chain size "
        f"{KernelProfile(rep.kernel, rep.page_size, rep.chain_size).chain_size}, "
        f"huge_class_size {rep.huge_class_size}"
        + (f"; class-table variant: {rep.class_table_variant}" if rep.class_table_variant else "")
    )
    params = [
        f"{k}={v}"
        for k, v in (("level", t.setup.level), ("deflate.winbits", t.setup.winbits))
        if v is not None
    ]
    if params:
        lines.append(f"algorithm_params: {' '.join(params)}")
    if t.cluster:
        c = t.cluster
        lines.append(
            f"computed on a Dask cluster ({c['scheduler']}): {c['tasks']} tasks of up to "
            f"{c['task_pages']} pages on {c['workers']} workers"
        )
    for a, r in rep.algos.items():
        if not r.kernel_exact:
            lines.append(f"APPROXIMATE for {a}: {r.approximate}")
            if r.exact_command:
                lines.append(f"  exact after: {r.exact_command}")
    if t.interrupted:
        lines.append("INTERRUPTED: the figures cover only the pages read before Ctrl-C")
    return lines


def algo_table(rep: Report, title: str, first: str) -> Table:
    """A table with a label column, then one right-aligned column per algorithm."""
    tab = Table(title=title, title_justify="left")
    tab.add_column(first)
    for a in rep.algos:
        tab.add_column(a, justify="right")
    return tab


def mm_stat_table(rep: Report, *, compacted: bool = False) -> Table:
    title = "mm_stat after compact" if compacted else "mm_stat after the writes"
    tab = algo_table(rep, title, "column")
    vals = {a: (r.mm_stat_after_compact if compacted else r.mm_stat) for a, r in rep.algos.items()}
    for col in MM_STAT_COLUMNS:
        tab.add_row(col, *[str(getattr(vals[a], col)) for a in rep.algos])
    return tab


def derived_table(rep: Report) -> Table:
    tab = algo_table(rep, "what it means", "figure")
    d = {a: r.derived() for a, r in rep.algos.items()}
    ps = rep.page_size

    def row(name: str, f: object) -> None:
        tab.add_row(name, *[f(d[a]) for a in rep.algos])  # type: ignore[operator]

    tab.add_row(
        "RAM used (mem_used_total)",
        *[human(r.state.total_pages * ps) for r in rep.algos.values()],
    )
    row("compression (orig/compr)", lambda x: _ratio(x["compression_ratio"]))
    row("effective (orig/RAM used)", lambda x: _ratio(x["effective_ratio"]))
    row("saved", lambda x: human(x["saved_bytes"]))
    row(
        "lost to fragmentation",
        lambda x: (
            f"{human(x['lost_to_fragmentation_bytes'])} "
            f"({x['lost_to_fragmentation_pct_of_mem_used']:.0f}%)"
        ),
    )
    for cause, what in zip(
        LOSS_CAUSES,
        (
            "  8-byte handles",
            "  rounding to class size",
            "  zspage tails",
            "  free slots",
        ),
        strict=True,
    ):
        row(what, lambda x, c=cause: human(x["lost_by_cause_bytes"][c]))
    row("same-filled pages (0 B each)", lambda x: str(x["same_pages"]))
    if any(r.zero_map for r in rep.tally.rules):
        row("swap zero map pages (not in zram)", lambda x: str(x["zero_map_pages"]))
        row("swapped out (zram + zero map)", lambda x: human(x["swapped_out_bytes"]))
        row("swap-out ratio (swapped out/RAM)", lambda x: _ratio(x["swap_out_ratio"]))
    row("huge pages (stored raw)", lambda x: f"{x['huge_pages']} ({human(x['huge_bytes'])})")
    row("objects / zspages", lambda x: f"{x['stored_objects']} / {x['zspages']}")
    row(
        "metadata beside mm_stat (approx.)",
        lambda x: human(x["metadata_bytes_approx"]["total"]),
    )
    row("`compact` would free", lambda x: human(x["compact_frees_bytes"]))
    if all(x["compact_frees_bytes"] == 0 for x in d.values()):
        tab.caption = (
            "compaction frees nothing right after a fill: each class has at most one "
            "partly used zspage, and compaction needs two"
        )
        tab.caption_justify = "left"
    return tab


def chain_table(rep: Report) -> Table:
    # CONFIG_ZSMALLOC_CHAIN_SIZE exists since 6.3: the rows are that Kconfig's choices
    # (6.18's classes).  A kernel without it (6.1 always chains up to 4 pages) gets the
    # table as the alternative it is, with no row marked as the model.
    fixed = KernelProfile(rep.kernel, rep.page_size, rep.chain_size).chain_size != rep.chain_size
    title = "RAM used at other CONFIG_ZSMALLOC_CHAIN_SIZE"
    if fixed:
        title += f" (6.3 and later; Linux {rep.kernel} has no such setting)"
    tab = algo_table(rep, title, "chain size")
    base = {a: r.chain_totals[rep.chain_size] for a, r in rep.algos.items()}
    for chain in (4, 6, 8, 10, 12, 16):
        cells = []
        for a, r in rep.algos.items():
            v = r.chain_totals[chain]
            delta = v - base[a]
            sign = "+" if delta > 0 else "-" if delta < 0 else "±"
            cells.append(
                human(v) + ("" if chain == rep.chain_size else f" ({sign}{human(abs(delta))})")
            )
        model = chain == rep.chain_size and not fixed
        tab.add_row(str(chain) + (" (model)" if model else ""), *cells)
    return tab


def kernel_table(rep: Report) -> Table:
    tab = algo_table(rep, "RAM used under other kernels (same pages, same chain size)", "kernel")
    base = rep.kernel  # the modelled kernel: the others differ by their class tables only
    shown = ["6.1", "6.6", "6.12", "6.18"]
    for version in shown + ([base] if base not in shown else []):
        cells = []
        for r in rep.algos.values():
            v, delta = r.kernel_totals[version], r.kernel_totals[version] - r.kernel_totals[base]
            sign = "+" if delta > 0 else "-"
            cells.append(human(v) + (f" ({sign}{human(abs(delta))})" if delta else ""))
        label = {"6.1": "6.1 (4-page zspages)"}.get(version, version)
        label += " (model)" if version == rep.kernel else ""
        tab.add_row(label, *cells)
    return tab


def top_loss_table(rep: Report, top: int = 5) -> Table:
    tab = Table(title=f"most lost, by class (top {top})", title_justify="left")
    for a in rep.algos:
        tab.add_column(a)
    columns = []
    for r in rep.algos.values():
        rows = sorted(r.classes(), key=lambda c: -c["lost_bytes"])[:top]
        columns.append(
            [
                f"{c['class']:3d} ({c['size']:4d} B) {human(c['lost_bytes'])}"
                for c in rows
                if c["lost_bytes"]
            ]
        )
    for i in range(max(map(len, columns), default=0)):
        tab.add_row(*[col[i] if i < len(col) else "" for col in columns])
    return tab


def zswap_table(rep: Report) -> Table:
    """zswap on the report's kernel: every pool it offers side by side, next to zram."""
    first = next(r.zswap for r in rep.algos.values() if r.zswap)
    kernel, default = first["kernel"], first["zpool"]
    pools = list(next(iter(rep.algos.values())).zswap_pools or {default: first})
    title = (
        f"zswap instead, Linux {kernel} (before a swap file, THPs split; store-only, "
        "no pool limit)"
    )
    tab = algo_table(rep, title, "figure")
    z = {a: r.zswap_pools or {default: r.zswap or {}} for a, r in rep.algos.items()}

    def row(name: str, pool: str, key: str, f: object = str) -> None:
        tab.add_row(name, *[f(z[a][pool][key]) for a in rep.algos])  # type: ignore[operator]

    tab.add_row("zram: RAM used (mem_used_total)",
                *[human(r.mm_stat.mem_used_total) for r in rep.algos.values()])
    approximate = False
    for pool in pools:
        label = pool + (" (default)" if pool == default and len(pools) > 1 else "")
        row(f"{label}: pool_total_size", pool, "pool_total_size", human)
        row(f"{label}: stored_pages", pool, "stored_pages")
        if any(z[a][pool]["reject_compress_poor"] for a in rep.algos):
            row(f"{label}: too big for it (reject_compress_poor)", pool, "reject_compress_poor")
        row(f"{label}: RAM saved", pool, "saved_bytes", human)
        approximate |= any(z[a][pool]["approximate"] for a in rep.algos)
    if any(z[a][default]["same_filled_pages"] for a in rep.algos):
        row("same-filled pages (stored as a word, no pool memory)", default, "same_filled_pages")
    else:
        row("zero-filled pages (swap zero map)", default, "zero_pages")
    if any(z[a][default]["stored_incompressible_pages"] for a in rep.algos):
        row("stored as-is (a page each)", default, "stored_incompressible_pages")
    row("pages it would not take (to the swap device)", default, "rejected_pages")
    row("compressed bytes", default, "compressed_bytes", human)
    if approximate:
        tab.caption = (
            "approximate: 6.6 spreads entries over 32 pools by their slab addresses, "
            "which no model knows (dealt out in turn here)"
        )
        tab.caption_justify = "left"
    return tab


def render(rep: Report, console: Console, *, classes: bool = False, compact: bool = False) -> None:
    """Print the report for people."""
    for line in input_lines(rep):
        console.print(Text(line), soft_wrap=True)
    parts: list[object] = [mm_stat_table(rep)]
    if compact:
        parts.append(mm_stat_table(rep, compacted=True))
    parts += [derived_table(rep), chain_table(rep), kernel_table(rep), top_loss_table(rep)]
    if any(r.zswap for r in rep.algos.values()):
        parts.append(zswap_table(rep))
    console.print(Group(*parts))  # type: ignore[arg-type]
    if classes:
        for a, r in rep.algos.items():
            console.print(Text(f"\n/sys/kernel/debug/zsmalloc/zramN/classes ({a}):", style="bold"))
            assert r.pool is not None, "build_report(run_pool=True) renders the classes table"
            console.print(Text(r.pool.classes_text), soft_wrap=True)
    console.print(Text(rep.summary_line(), style="bold"), soft_wrap=True)
