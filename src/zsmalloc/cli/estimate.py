"""``zsmalloc estimate``: what zram would really take for these pages, and why.

Builds the page sources, runs the driver under a progress bar (stderr, on a terminal),
then prints the report (stdout): rich tables, or JSON with ``--json``.  With
``--scheduler`` the pass runs on a Dask cluster instead
(:mod:`zsmalloc.estimate.cluster`, imported only then).
Ctrl-C stops early and still prints the report for the pages done so far,
with a summary line saying so (exit status 130).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from zsmalloc.cli.options import kernel_option, variant_options
from zsmalloc.cli.progress import ErrConsole, progress_bar, status, stderr_console
from zsmalloc.errors import InputError
from zsmalloc.estimate.driver import (
    CompressorSetup,
    Tally,
    check_algorithms,
    peak_rss_bytes,
    run_estimate,
    warm_up,
)
from zsmalloc.estimate.process import (
    AllProcessesSource,
    ProcessSource,
    candidate_pids,
    is_kernel_thread,
    rss_anon_pages,
)
from zsmalloc.estimate.report import build_report
from zsmalloc.estimate.sample import SampleSource
from zsmalloc.estimate.sources import PageSource, open_path
from zsmalloc.estimate.swap import BLOCK, MODES, SWAP, SwapRules
from zsmalloc.profile import DEFAULT_PROFILE, MAX_CHAIN_SIZE, MIN_CHAIN_SIZE, KernelProfile

DEFAULT_ALGOS = "lzo-rle,lz4"
UNREADABLE_SHOWN = 10  # unreadable files named on stderr (all of them are in --json)


def any_readable(pids: list[int], page_size: int) -> bool:
    """Whether at least one of these processes lets us read its memory.

    Owning a process is not always enough (Yama's ptrace_scope, containers): try.
    """
    for pid in pids:
        if is_kernel_thread(pid) or not rss_anon_pages(pid, page_size):
            continue
        try:
            ProcessSource(pid, page_size).close()
        except InputError:
            continue
        return True
    return False


def zram_rules(zram_as: str | None, default: str, profile: KernelProfile) -> SwapRules:
    """How a source's pages reach zram: ``--as`` when given, else the source's default
    (swap for process memory, block for files and images), with ``profile``'s rules."""
    return SwapRules(zram_as or default, profile)


def default_sources(
    page_size: int, zram_as: str | None = None, profile: KernelProfile = DEFAULT_PROFILE
) -> tuple[list[PageSource], str]:
    """This machine's readable process memory, or the built-in sample; and which it is."""
    if page_size == os.sysconf("SC_PAGE_SIZE"):
        root = os.geteuid() == 0
        src = AllProcessesSource(page_size, rules=zram_rules(zram_as, SWAP, profile))
        if src.total_pages() and any_readable(src.pids, page_size):
            who = "all processes (running as root)" if root else "your own processes (not root)"
            return [src], f"the memory of this machine's readable processes: {who}"
    sample = SampleSource(page_size)
    sample.rules = zram_rules(zram_as, BLOCK, profile)
    return [sample], "a built-in sample: no readable process memory here"


def build_sources(
    paths: tuple[str, ...],
    pids: tuple[int, ...],
    all_processes: bool,
    page_size: int,
    zram_as: str | None = None,
    profile: KernelProfile = DEFAULT_PROFILE,
) -> list[PageSource]:
    sources: list[PageSource] = []
    seen_pfns: set[int] = set()  # a page frame shared by processes is stored once
    as_swap = zram_rules(zram_as, SWAP, profile)
    try:
        for p in paths:
            src = open_path(p, page_size)
            src.rules = zram_rules(zram_as, BLOCK, profile)
            sources.append(src)
        for pid in pids:
            sources.append(ProcessSource(pid, page_size, seen_pfns, as_swap))
        if all_processes:
            others = [p for p in candidate_pids() if p not in pids]
            sources.append(AllProcessesSource(page_size, others, seen_pfns, as_swap))
    except BaseException:
        for s in sources:
            s.close()
        raise
    return sources


def local_tally(
    srcs: list[PageSource],
    default_input: str | None,
    algos: list[str],
    setup: CompressorSetup,
    zswap: bool,
    verify: bool,
    sample_rules: SwapRules,
    err: ErrConsole,
) -> tuple[Tally, str | None]:
    """The pass in this process, on every core; falls back to the sample (read under
    ``sample_rules``) when the default input (the processes) gives nothing after all."""
    ps = setup.page_size
    with status(err, "sizing the input"):
        sizes = [s.total_pages() for s in srcs]
        total = None if None in sizes else sum(t for t in sizes if t is not None)
    with status(err, "loading the compressors (compiled on first use)"):
        warm_up(algos, setup=setup)
    with progress_bar(err, ps) as bar:
        task = bar.add_task(f"compressing ({', '.join(algos)})", total=total or None)

        def estimate_all(srcs: list[PageSource]) -> Tally:
            return run_estimate(
                srcs,
                algos,
                page_size=ps,
                keep_lengths=verify,
                zswap=zswap,
                level=setup.level,
                on_chunk=lambda n: bar.advance(task, n),
                kernel=setup.kernel,
                winbits=setup.winbits,
            )

        try:
            tally = estimate_all(srcs)
        except InputError:
            if default_input is None or isinstance(srcs[0], SampleSource):
                raise
            # The processes gave nothing after all (they exited, or refused): the sample.
            srcs = [SampleSource(ps)]
            srcs[0].rules = sample_rules
            default_input = "a built-in sample: the readable processes gave no pages"
            bar.reset(task, total=srcs[0].total_pages())
            tally = estimate_all(srcs)
    return tally, default_input


def cluster_tally(
    scheduler: str,
    workers: int | None,
    task_pages: int,
    paths: tuple[str, ...],
    algos: list[str],
    setup: CompressorSetup,
    zswap: bool,
    verify: bool,
    rules: SwapRules,
    err: ErrConsole,
) -> Tally:
    """The pass on a Dask cluster (zsmalloc.estimate.cluster): the bar follows the
    chunks as the workers finish them."""
    from zsmalloc.estimate.chunks import Plan
    from zsmalloc.estimate.cluster import LOCAL, ClusterRun, connect, run_estimate_on_cluster

    ps = setup.page_size
    what = "starting a local Dask cluster" if scheduler == LOCAL else f"connecting to {scheduler}"
    with ExitStack() as stack:
        with status(err, what):
            client = stack.enter_context(connect(scheduler, workers))
        bar = stack.enter_context(progress_bar(err, ps))
        task = bar.add_task("workers: loading the compressors, planning the chunks", total=None)

        def on_plan(plan: Plan, run: ClusterRun) -> None:
            bar.update(
                task,
                total=plan.total_pages or None,
                description=f"{run.tasks} tasks on {run.workers} Dask workers ({', '.join(algos)})",
            )

        tally = run_estimate_on_cluster(
            client,
            paths,
            algos,
            page_size=ps,
            level=setup.level,
            zswap=zswap,
            keep_lengths=verify,
            rules=rules,
            kernel=setup.kernel,
            winbits=setup.winbits,
            task_pages=task_pages,
            on_plan=on_plan,
            on_chunk=lambda n: bar.advance(task, n),
        )
    unreadable = (tally.cluster or {}).get("unreadable_files", [])
    for line in unreadable[:UNREADABLE_SHOWN]:
        err.print(f"zsmalloc: skipped: {line}", markup=False, highlight=False)
    if len(unreadable) > UNREADABLE_SHOWN:
        err.print(f"zsmalloc: skipped {len(unreadable) - UNREADABLE_SHOWN} more unreadable files")
    return tally


@click.command(
    "estimate",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option(
    "--pid",
    "pids",
    type=int,
    multiple=True,
    metavar="PID",
    help="Also read live process PID: the pages swap could take from it (resident "
    "anonymous and shmem pages of any mapping; mlocked, hugetlbfs, device mappings and the "
    "shared zero page skipped and counted). Needs root (exact: page flags) or your own "
    "process. Repeatable.",
)
@click.option(
    "--all-processes",
    is_flag=True,
    help="Also read every readable process (all as root, your own otherwise); "
    "unreadable ones are skipped and counted.",
)
@click.option(
    "--algo",
    default=DEFAULT_ALGOS,
    show_default=True,
    metavar="A[,B...]",
    help="zram compression algorithms to compare side by side: lzo, lzo-rle, lz4, lz4hc, "
    "deflate (exact, as the kernel compresses), zstd (exact with the kernel's zstd "
    "version installed, else marked approximate with the command that fixes it).",
)
@click.option(
    "--level",
    type=int,
    default=None,
    metavar="N",
    help="zram's algorithm_params level=N for every algorithm (lz4: acceleration; "
    "lz4hc, zstd, deflate: compression level; lzo ignores it). Default: each "
    "backend's own. Kernels before 6.12 have no algorithm_params.",
)
@click.option(
    "--deflate-winbits",
    "winbits",
    type=int,
    default=None,
    metavar="W",
    help="zram's algorithm_params deflate.winbits=W (-15..-9 raw deflate, 9..15 with the "
    "zlib header; default -11). Kernels from 6.16.",
)
@click.option(
    "--chain",
    "chain_size",
    type=click.IntRange(MIN_CHAIN_SIZE, MAX_CHAIN_SIZE),
    default=8,
    show_default=True,
    metavar="N",
    help="CONFIG_ZSMALLOC_CHAIN_SIZE: most pages per zspage, 4..16 as Kconfig allows "
    "(the kernel's default is 8).",
)
@click.option(
    "--page-size",
    type=click.Choice(["4096", "16384", "65536"]),
    default="4096",
    show_default=True,
    help="Kernel PAGE_SIZE in bytes (arm64 runs 16 KiB and 64 KiB pages); zram stores one "
    "page per slot and the size classes follow it.",
)
@kernel_option(
    help="The kernel whose zram and zsmalloc are modelled: its compressors (zstd version; "
    "the crypto API without algorithm_params before 6.12), class table and huge threshold "
    "(6.1: 4-page zspages, 3257), swap rules and, with --compact and --classes, its "
    "allocator and compaction."
)
@variant_options
@click.option(
    "--compact",
    is_flag=True,
    help="Run compaction in the allocator model (a Pool given the same objects, then "
    "zs_compact) and show mm_stat after `echo 1 > compact`. Without it the after-compact "
    "columns (in JSON) come from the closed form, which they always equal after a fill.",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Also replay every page, in order, through the full step-by-step zram and "
    "zsmalloc model and check it agrees with the report, column by column (slower; "
    "keeps 2 bytes per page per algorithm).",
)
@click.option(
    "--zswap",
    is_flag=True,
    help="Also show what zswap would hold for the same pages, each swapped out once, on "
    "the --kernel's zswap: pool_total_size and stored_pages for every pool that kernel "
    "offers (6.1: zbud, z3fold, zsmalloc; 6.12: zbud, zsmalloc; later: zsmalloc), next to "
    "zram (no pool limit).",
)
@click.option(
    "--zpool",
    type=click.Choice(["zbud", "z3fold", "zsmalloc"]),
    default=None,
    help="With --zswap: only this allocator (zswap.zpool; the kernel must have it).",
)
@click.option(
    "--as",
    "zram_as",
    type=click.Choice(MODES),
    default=None,
    help="What zram is used as. swap: the pages are swapped out, and the kernel's swap "
    "rules apply first (since 6.12 zero-filled folios stay in the swap zero map and never "
    "reach zram); block: every page is written to zram. Default: swap for process memory "
    "(--pid, --all-processes), block for files, images and core dumps.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run on a Dask cluster: the scheduler's address (tcp://host:8786), or `local` "
    "for a LocalCluster on this machine. The SOURCEs are cut into chunks that the "
    "workers read where they live (the paths must name the same files there); the "
    "report is the same as without. Needs the `fleet` extra (pip install 'zsmalloc[fleet]').",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 4096),
    default=None,
    metavar="N",
    help="With --scheduler local: worker processes to start (default: one per CPU).",
)
@click.option(
    "--task-pages",
    type=click.IntRange(1, 2**31),
    default=16384,
    show_default=True,
    metavar="N",
    help="With --scheduler: pages per task (16384 = 64 MiB of 4 KiB pages).",
)
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON on stdout.")
@click.option(
    "--classes",
    is_flag=True,
    help="Add the debugfs-style size-class table (fullness bands 10%..100%) per algorithm.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE",
    help="Write a PNG: stored bytes and fragmentation per size class, and the "
    "compressed-size histogram, per algorithm.",
)
def estimate(
    sources: tuple[str, ...],
    pids: tuple[int, ...],
    all_processes: bool,
    algo: str,
    level: int | None,
    winbits: int | None,
    chain_size: int,
    page_size: str,
    kernel: str,
    class_delta: int | None,
    chain_rule: str | None,
    compact: bool,
    verify: bool,
    zswap: bool,
    zpool: str | None,
    zram_as: str | None,
    scheduler: str | None,
    workers: int | None,
    task_pages: int,
    as_json: bool,
    classes: bool,
    plot: str | None,
) -> None:
    """How much RAM zram would really take for these pages, and why.

    Each SOURCE is a file or disk/memory image (read as PAGE_SIZE pages; .gz, .xz,
    .bz2 and .zst are decompressed), a directory (every file below it), an ELF
    core dump (its memory segments), or - for a raw image on standard input.
    The pages are compressed exactly as the kernel's zram would (Linux 6.18 unless
    --kernel says otherwise), and the
    report shows, per algorithm side by side, the nine mm_stat columns of a
    fresh zram device after writing them in order, before and after
    compaction, with the compression and effective ratios, the memory lost to
    fragmentation (by cause and by size class), same-filled and huge pages,
    and the memory at other chain sizes.

    With no SOURCE and no --pid/--all-processes, the input is the memory of this
    machine's readable processes, or a built-in sample where there is none.

    With --scheduler, the SOURCEs are estimated on a Dask cluster, chunk by
    chunk, with the same result.

    Only statistics are reported: page contents are never written anywhere.
    """
    ps = int(page_size)
    setup = CompressorSetup(kernel, ps, level, winbits)
    algos = check_algorithms(algo.split(","), setup=setup)
    if zswap and (level is not None or winbits is not None):
        raise InputError(
            "--zswap with --level or --deflate-winbits: zswap compresses with each "
            "compressor's defaults (it has no algorithm_params); drop one of them"
        )
    if zpool is not None:
        from zsmalloc.zswap.rules import zswap_rules

        if not zswap:
            raise InputError("--zpool chooses zswap's allocator: use it with --zswap")
        zswap_rules(kernel).check_zpool(zpool) if zpool != "zsmalloc" else None
    if plot:
        parent = Path(plot).resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise InputError("cannot write the plot: no writable directory there", path=plot)
    err = stderr_console()
    default_input = None
    # checked before the pass: a bad --class-delta is one error line, not a wasted read
    KernelProfile(kernel, ps, chain_size, class_delta, chain_rule)
    profile = KernelProfile(kernel, page_size=ps, chain_size=chain_size)  # its swap rules
    if scheduler is not None:
        if pids or all_processes or not sources:
            raise InputError(
                "--scheduler: give the SOURCE paths (files, directories, images, core dumps) "
                "the workers should read; live processes (--pid, --all-processes, the "
                "default input) are read on this machine only"
            )
        rules = zram_rules(zram_as, BLOCK, profile)
        tally = cluster_tally(
            scheduler, workers, task_pages, sources, algos, setup, zswap, verify, rules, err
        )
    else:
        if workers is not None:
            raise InputError("--workers sizes a local Dask cluster: use it with --scheduler local")
        if not sources and not pids and not all_processes:
            srcs, default_input = default_sources(ps, zram_as, profile)
        else:
            srcs = build_sources(sources, pids, all_processes, ps, zram_as, profile)
        sample_rules = zram_rules(zram_as, BLOCK, profile)
        tally, default_input = local_tally(
            srcs, default_input, algos, setup, zswap, verify, sample_rules, err
        )
    if tally.pages == 0:
        raise InputError("interrupted before any page was processed")
    run_pool = compact or classes
    what = "giving the objects to a Pool and compacting it" if run_pool else "summing up"
    with status(err, what):
        report = build_report(
            tally, chain_size, default_input, run_pool=run_pool, kernel=kernel, zpool=zpool,
            class_delta=class_delta, chain_rule=chain_rule,
        )
    if verify:
        from zsmalloc.estimate.verify import replay_check

        for a, r in report.algos.items():
            with status(err, f"--verify: replaying {tally.pages} pages ({a}) through the model"):
                r.verified = replay_check(tally.page_lengths(a), r.state)
    if plot:
        from zsmalloc.estimate.plot import write_plot

        with status(err, f"drawing {plot}"):
            write_plot(report, plot)
    tally.peak_rss = peak_rss_bytes()  # the whole command's, plot and replay included
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
        if tally.interrupted:
            err.print(report.summary_line())
    else:
        from rich.console import Console

        from zsmalloc.estimate.render import render

        render(report, Console(), classes=classes, compact=compact)
        if plot:
            click.echo(f"plot written to {plot}")
    if tally.interrupted:
        sys.exit(130)
