"""``zsmalloc whatif [SOURCE]... --vary AXIS=V1,V2 ...``: one workload, reference vs variants.

The workload is what ``estimate`` reads (files, images, directories, core dumps,
``--pid``, ``--all-processes``, or with none of them this machine's processes or the
built-in sample), compressed once with ``--algo``; or, with ``--trace``, a zram size
trace replayed step by step.  The reference is ``--kernel``/``--chain`` (6.18, chain 8:
the same figures ``estimate`` prints); every combination of the ``--vary`` axes is a
variant (:mod:`zsmalloc.estimate.whatif`).  Output: one line per side with the mm_stat
columns that move and their difference from the reference, then with ``--classes`` the
per-class rows; ``--json`` has everything.
"""

from __future__ import annotations

import json
from typing import Any

import click

from zsmalloc.cli.options import kernel_option
from zsmalloc.errors import InputError
from zsmalloc.estimate.whatif import (
    AXES,
    Side,
    class_rows,
    delta,
    parse_vary,
    to_json,
    variant_profiles,
)
from zsmalloc.profile import DEFAULT_VERSION, MAX_CHAIN_SIZE, MIN_CHAIN_SIZE, KernelProfile


def _signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def short_label(p: KernelProfile) -> str:
    """``6.18 c8 d16 least-waste``: every part of the class table in a few characters."""
    rule = p.zspage_chain_rule
    return f"{p.version} c{p.ZS_MAX_PAGES_PER_ZSPAGE} d{p.ZS_SIZE_CLASS_DELTA} {rule}"


TOTAL_COLUMNS = ("profile", "mem_used_total", "delta", "delta%", "mem_used_max", "compacted",
                 "lost", "zspages", "span", "read_copy", "huge_size", "memdesc")
TOTAL_FORMAT = ("{:<30} {:>14} {:>12} {:>7} {:>12} {:>9} {:>12} {:>8} {:>6} {:>10} {:>9} "
                "{:>10}")


def _dash(v: int | None) -> object:
    return "-" if v is None else v


def render_totals(ref: Side, variants: list[Side]) -> list[str]:
    """Fixed-width lines (to paste into a mail): one per side, the reference first."""
    base = ref.mm_stat.mem_used_total
    lines = [TOTAL_FORMAT.format(*TOTAL_COLUMNS)]
    for s in [ref, *variants]:
        tot = s.totals()
        d = delta(ref, s)["mem_used_total"] if s is not ref else None
        lines.append(TOTAL_FORMAT.format(
            short_label(s.profile) + (" (ref)" if d is None else ""),
            s.mm_stat.mem_used_total,
            "" if d is None else _signed(d),
            "" if d is None or not base else f"{100.0 * d / base:+.2f}",
            s.mm_stat.mem_used_max, s.mm_stat.pages_compacted,
            s.lost_bytes, tot["zspages"], _dash(tot["span_objects"]),
            _dash(tot["read_copy_bytes"]),
            tot["huge_class_size"], s.memdesc.memdesc_bytes,
        ))
    return lines


CLASS_FORMAT = "{:>6} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>8}"


def render_classes(ref: Side, var: Side) -> list[str]:
    """Per class size: each side's chain/objects, objects stored and pages used."""
    lines = [
        f"per class: {short_label(var.profile)} against {short_label(ref.profile)}",
        CLASS_FORMAT.format("size", "ref p/o", "obj_used", "pages", "var p/o", "obj_used",
                            "pages", "d pages"),
    ]
    for r in class_rows(ref, var):
        cells: list[object] = [r["size"]]
        for side in ("reference", "variant"):
            c = r[side]
            cells += (
                [f"{c['pages_per_zspage']}/{c['objs_per_zspage']}", c["obj_used"],
                 c["pages_used"]] if c else ["-", "-", "-"]
            )
        cells.append(_signed(r["pages_used_delta"]))
        lines.append(CLASS_FORMAT.format(*cells))
    return lines


@click.command(
    "whatif", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--vary", "vary", multiple=True, metavar="AXIS=V1,V2,...",
              help=f"A variant axis and its values; repeatable, every combination is run. "
              f"Axes: {', '.join(AXES)} (kernel=6.1,6.18; chain=4,8,16; delta=16,64; "
              "rule=least-waste,waste-threshold,usedpc).")
@click.option("--trace", "trace", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              metavar="TRACE",
              help="Instead of pages: a zram size trace (zsmalloc replay's format) or a zs trace "
                   "(zsmalloc record's), replayed "
              "step by step; the reference is the kernel its header names unless --kernel.")
@click.option("--pid", "pids", type=int, multiple=True, metavar="PID",
              help="Also read live process PID (as estimate --pid).")
@click.option("--all-processes", is_flag=True, help="Also read every readable process.")
@click.option("--algo", default="lzo-rle", show_default=True, metavar="A",
              help="The one compression algorithm of the workload (zram's default: lzo-rle).")
@click.option("--chain", "chain_size", type=click.IntRange(MIN_CHAIN_SIZE, MAX_CHAIN_SIZE),
              default=None, metavar="N",
              help="The reference's CONFIG_ZSMALLOC_CHAIN_SIZE (default 8, or the trace's).")
@kernel_option(default=None,
               help="The reference kernel (default 6.18, for a trace its header's kernel=).")
@click.option("--classes", "show_classes", is_flag=True,
              help="Also print the per-class rows of each variant against the reference.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON on stdout.")
@click.option("--plot", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write a PNG: each side's memory (data and fragmentation) and the pages "
              "each side uses per class size.")
def whatif_cmd(
    sources: tuple[str, ...],
    vary: tuple[str, ...],
    trace: str | None,
    pids: tuple[int, ...],
    all_processes: bool,
    algo: str,
    chain_size: int | None,
    kernel: str | None,
    show_classes: bool,
    as_json: bool,
    plot: str | None,
) -> None:
    """What a class-table change would do to one workload: the reference kernel's
    mm_stat (exactly what `estimate` says) against every --vary combination's, in total
    and per size class, with the objects that span pages, the bytes their reads copy and
    the memdesc what-if for the pages.

    Each SOURCE is what `estimate` takes; with no SOURCE and no --pid/--all-processes
    the input is this machine's readable processes, or the built-in sample.  --trace
    replays a zram size trace instead (the reference checked against its mm_stat lines).
    """
    if not vary:
        raise InputError("give at least one --vary AXIS=V1,V2,... (axes: " + ", ".join(AXES) + ")")
    axes = parse_vary(vary)
    if trace is not None:
        if sources or pids or all_processes:
            raise InputError("--trace replaces the SOURCEs, --pid and --all-processes")
        ref, variants, workload = _trace_sides(trace, kernel, chain_size, axes)
    else:
        ref, variants, workload = _page_set_sides(
            sources, pids, all_processes, algo, kernel or DEFAULT_VERSION, chain_size or 8, axes
        )
    if plot:
        from zsmalloc.estimate.plot import write_whatif_plot

        write_whatif_plot(ref, variants, plot)
    if as_json:
        click.echo(json.dumps(to_json(ref, variants, workload), indent=1))
        return
    lines = [f"input: {workload['default_input']}"] if workload.get("default_input") else []
    lines.append(f"{workload['summary']}; reference mm_stat: {ref.mm_stat.format().strip()}")
    lines += render_totals(ref, variants)
    if show_classes:
        for v in variants:
            lines += ["", *render_classes(ref, v)]
    if plot:
        lines.append(f"plot written to {plot}")
    click.echo("\n".join(lines))


def _trace_sides(
    trace: str, kernel: str | None, chain_size: int | None, axes: dict[str, list[str]]
) -> tuple[Side, list[Side], dict[str, Any]]:
    """The trace replayed as recorded (checked against its ``m`` lines), then per variant.

    A zs trace (``zsmalloc record``'s, recognised by its header) replays in bare pools."""
    from zsmalloc.cli.notice import compile_notice
    from zsmalloc.estimate.whatif import price_trace, price_zs_trace
    from zsmalloc.zram.trace import iter_trace
    from zsmalloc.zs.trace import iter_zs_trace, sniff_zs_trace

    if trace == "-":
        raise InputError("--trace -: whatif reads the trace once per variant; give a file")
    zs = sniff_zs_trace(trace)
    ref_profile = (  # the header's
        next(iter(iter_zs_trace(trace, chunk_bytes=1 << 16))).profile
        if zs else next(iter(iter_trace(trace, chunk_bytes=1 << 16))).profile
    )
    # (the generator, freed at once, closes the file)
    if kernel is not None or chain_size is not None:
        ref_profile = KernelProfile(kernel or ref_profile.version, ref_profile.page_size,
                                    chain_size or ref_profile.chain_size)
    profiles = variant_profiles(ref_profile, axes)
    if zs:
        with compile_notice("the replay loop"):
            ref, zres = price_zs_trace(trace, ref_profile, check=True)
        if zres.mismatch_line is not None:
            raise InputError(
                f"the reference ({ref_profile.describe()}) differs from the trace's "
                f"recorded answers at line {zres.mismatch_line}: no exact reference to "
                "compare with (`zsmalloc replay` shows them)", path=trace,
            )
        variants = [price_zs_trace(trace, p, check=False)[0] for p in profiles]
        summary = f"{trace}: zs trace, {zres.ops} operations, {zres.checks} answers matched"
        if zres.incomplete:
            summary += f" (INCOMPLETE recording: {'; '.join(zres.incomplete)})"
        if zres.inexact:
            summary += f" (INEXACT order: {'; '.join(zres.inexact)})"
        return ref, variants, {
            "kind": "zs trace", "trace": trace, "ops": zres.ops, "checks": zres.checks,
            "complete": not zres.incomplete, "exact_order": not zres.inexact,
            "summary": summary,
        }
    with compile_notice("the replay loop"):
        ref, res = price_trace(trace, ref_profile, check=True)
    if res.mismatch_line is not None:
        raise InputError(
            f"the reference ({ref_profile.describe()}) differs from the trace's mm_stat at "
            f"line {res.mismatch_line}: no exact reference to compare with "
            "(`zsmalloc replay` shows the rows)", path=trace,
        )
    variants = [price_trace(trace, p, check=False)[0] for p in profiles]
    workload: dict[str, Any] = {
        "kind": "trace", "trace": trace, "ops": res.ops, "m_lines_checked": res.m_checked,
        "summary": f"{trace}: {res.ops} operations, {res.m_checked} mm_stat lines matched",
    }
    return ref, variants, workload


def _page_set_sides(
    sources: tuple[str, ...],
    pids: tuple[int, ...],
    all_processes: bool,
    algo: str,
    kernel: str,
    chain_size: int,
    axes: dict[str, list[str]],
) -> tuple[Side, list[Side], dict[str, Any]]:
    """estimate's pass over the pages, then one fill per side."""
    from zsmalloc.cli.estimate import build_sources, default_sources, local_tally, zram_rules
    from zsmalloc.cli.progress import stderr_console
    from zsmalloc.estimate.driver import CompressorSetup, check_algorithms
    from zsmalloc.estimate.swap import BLOCK
    from zsmalloc.estimate.whatif import price_fill

    setup = CompressorSetup(kernel, 4096)  # the kernel's compressors as well as its classes
    algos = check_algorithms(algo.split(","), setup=setup)
    if len(algos) != 1:
        raise InputError("--algo: whatif prices one algorithm at a time")
    ref_profile = KernelProfile(kernel, 4096, chain_size)
    profiles = variant_profiles(ref_profile, axes)
    err = stderr_console()
    default_input = None
    if not sources and not pids and not all_processes:
        srcs, default_input = default_sources(4096, None, ref_profile)
    else:
        srcs = build_sources(sources, pids, all_processes, 4096, None, ref_profile)
    tally, default_input = local_tally(
        srcs, default_input, algos, setup, False, False,
        zram_rules(None, BLOCK, ref_profile), err,
    )
    if tally.pages == 0:
        raise InputError("interrupted before any page was processed")
    h = tally.len_hist[algos[0]]
    ref = price_fill(h, tally.same_pages, ref_profile)
    variants = [price_fill(h, tally.same_pages, p) for p in profiles]
    workload: dict[str, Any] = {
        "kind": "page set", "algo": algos[0], "pages": tally.pages,
        "sources": list(sources), "pids": list(pids), "default_input": default_input,
        "summary": f"{tally.pages} pages, {algos[0]}",
    }
    return ref, variants, workload
