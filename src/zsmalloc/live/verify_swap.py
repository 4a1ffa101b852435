"""``estimate --pid`` against a real swap-out: a process pushed into zram swap, every column.

``zsmalloc estimate --pid PID`` says what zram would hold if the process were
swapped out whole.  This check does it for real:

1. ``machine_lock("swap")``; SIGTERM and SIGHUP raise KeyboardInterrupt, so
   every step below is undone whatever happens;
2. a zram device of our own becomes swap (:class:`~zsmalloc.live.swap.LiveZramSwap`:
   hot-add, ``mkswap``, ``swapon`` at priority 32767, zswap off meanwhile);
   for zswap instead, :class:`~zsmalloc.live.zswap.LiveZswap` (a swap file of
   our own, zswap on with ``compressor``, its shrinker off);
3. a memory cgroup of our own (:class:`~zsmalloc.live.cgroup.MemoryCgroup`,
   v1 or v2) and, started inside it, a real process with ``mib`` MiB of mixed
   memory (:class:`~zsmalloc.live.memhog.MemHog`), then stopped (SIGSTOP);
4. the estimate, exactly as ``zsmalloc estimate --pid`` makes it (swap rules of
   the running kernel's profile), plus the swap header page ``mkswap`` wrote;
5. the swap-out: the cgroup's limit lowered step by step, then everything
   reclaimable reclaimed (:meth:`~zsmalloc.live.cgroup.MemoryCgroup.swap_out`);
6. the kernel's ``mm_stat`` (zswap: its debugfs counters) against the
   estimate's: exact when no page swap could take stayed resident, else
   within 0.1 %; the swap events of /proc/vmstat beside them;
7. the process killed, the cgroup removed, swap off, the device removed.

Other processes swapping meanwhile would put their pages on our device (it has
the top priority): when the machine-wide swap-out count exceeds the cgroup's
swap use and the counters differ, the run is repeated (``ATTEMPTS``), then
refused with :class:`~zsmalloc.errors.KernelUnavailableError` (cannot verify:
a busy machine), never reported as a match or a mismatch.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace
from typing import Any

from zsmalloc.errors import KernelUnavailableError
from zsmalloc.estimate.driver import Tally, run_estimate
from zsmalloc.estimate.process import ProcessSource
from zsmalloc.estimate.report import build_report
from zsmalloc.estimate.sources import ArraySource, PageSource
from zsmalloc.estimate.swap import SwapRules
from zsmalloc.live.cgroup import MemoryCgroup
from zsmalloc.live.lock import machine_lock
from zsmalloc.live.memhog import MemHog
from zsmalloc.live.result import (
    AT_LEAST,
    EXACT,
    NEAR,
    Comparison,
    Progress,
    VerifyResult,
    first_divergence,
)
from zsmalloc.live.swap import LiveZramSwap, swap_unavailable_reason, terminations_interrupt
from zsmalloc.profile import VERSIONS, KernelProfile
from zsmalloc.zram.stats import MM_STAT_COLUMNS, MmStat

PAGE = os.sysconf("SC_PAGE_SIZE")
DEFAULT_MIB = 64  # CI: a real mix, THPs included, in seconds; the figures use 512+
ATTEMPTS = 3  # runs disturbed by other processes' swap-outs are repeated this often
VMSTAT_EVENTS = ("pswpout", "swpout_zero", "thp_swpout", "thp_swpout_fallback", "zswpout")

NOTES = (
    "rules: every mm_stat column must equal the estimate's ('exact') when no page swap",
    "could take stayed resident after the swap-out, else agree within 0.1 %.  The",
    "estimate includes page 0, the swap header mkswap wrote.  swpout_zero (vmstat,",
    "machine-wide) counts the zero-filled folios kept in the swap zero map.",
)
ZSWAP_NOTES = (
    "rules: stored_pages, stored_incompressible_pages and pool_total_size must equal the",
    "estimate's zswap view ('exact') when no page stayed resident, else agree within",
    "0.1 %.  The swap file takes no large entries: THPs are split first, and their",
    "zero-filled pages map the shared zero page; single zero-filled pages go to the",
    "swap zero map (swpout_zero, machine-wide: kernel >= estimate).",
)


def running_profile() -> KernelProfile:
    """The profile row of the running kernel: the newest row not newer than ``uname -r``."""
    release = os.uname().release
    try:
        mine = tuple(int(x) for x in release.split("-")[0].split(".")[:2])
    except ValueError:
        return KernelProfile()
    rows = [v for v in VERSIONS if tuple(int(x) for x in v.split(".")) <= mine]
    return KernelProfile(rows[-1] if rows else VERSIONS[0], PAGE)


def vmstat() -> dict[str, int]:
    out = dict.fromkeys(VMSTAT_EVENTS, 0)
    with open("/proc/vmstat") as f:
        for line in f:
            key, _, value = line.partition(" ")
            if key in out:
                out[key] = int(value)
    return out


def estimate_process(
    pid: int, algorithm: str, rules: SwapRules, extra: list[PageSource], zswap: bool
) -> Tally:
    """``zsmalloc estimate --pid PID --algo A`` (with ``--zswap``), plus ``extra`` pages."""
    src = ProcessSource(pid, PAGE, rules=rules)
    return run_estimate([*extra, src], [algorithm], page_size=PAGE, zswap=zswap)


def verify_swap(
    mib: int = DEFAULT_MIB,
    algorithm: str = "lzo-rle",
    seed: int = 1,
    zswap: bool = False,
    progress: Progress | None = None,
) -> VerifyResult:
    """Swap out a real process of ``mib`` MiB and compare with its estimate (module doc).

    ``zswap`` swaps through the kernel's zswap (``algorithm`` as its compressor)
    in front of a swap file instead of into zram.  Raises KernelUnavailableError
    with the reason where it cannot run (not root, no zram or zswap, no memory
    cgroup, a busy machine).
    """
    reason = swap_unavailable_reason()
    if zswap and reason is None:
        from zsmalloc.live.zswap import zswap_unavailable_reason

        reason = zswap_unavailable_reason()
    if reason:
        raise KernelUnavailableError(reason)
    foreign = []
    for _ in range(ATTEMPTS):
        result = _swap_out_once(mib, algorithm, seed, zswap, progress)
        if result.divergence is None or result.divergence.kind != "harness":
            return result
        foreign.append(result.events["machine_swap_outs"] - result.events["cgroup_swap_pages"])
    raise KernelUnavailableError(
        f"other processes swapped pages out during each of {ATTEMPTS} attempts "
        f"({', '.join(map(str, foreign))} pages besides ours, on our device or in the "
        "counters); an exact comparison needs a quiet machine, retry later"
    )


def _swap_out_once(
    mib: int, algorithm: str, seed: int, zswap: bool, progress: Progress | None
) -> VerifyResult:
    """One run of :func:`verify_swap`: set up, build, estimate, swap out, compare, undo."""

    def step(what: str) -> None:
        if progress is not None:
            progress(f"swap-out {'zswap' if zswap else 'zram'} {algorithm}: {what}", 0, None)

    t0 = time.perf_counter()
    result = VerifyResult("swap-zswap" if zswap else "swap", algorithm, 0, seed=seed)
    result.notes = ZSWAP_NOTES if zswap else NOTES
    size = (mib * 2 + 256) << 20  # room for every page, THP clusters never short
    with terminations_interrupt(), contextlib.ExitStack() as stack:
        if zswap:
            from zsmalloc.live.zswap import LiveZswap

            # LiveZswap takes machine_lock("swap") itself (a second flock would wait on it).
            rig: Any = LiveZswap(compressor=algorithm, swap_size=size, memory_limit=size)
        else:
            stack.enter_context(machine_lock("swap"))
            rig = LiveZramSwap(algorithm, size)
        step("setting up swap")
        with rig:
            result.device = "zswap" if zswap else rig.name
            # From here on anything swapped out machine-wide may land on our device:
            # the foreign-swap check below counts from now, not from the swap-out step.
            v_setup = vmstat()
            before_zswap = rig.counters() if zswap else {}
            if before_zswap.get("stored_pages", 0):
                raise KernelUnavailableError(
                    f"zswap already holds {before_zswap['stored_pages']} pages of other "
                    "processes; an exact comparison needs it empty"
                )
            with MemoryCgroup(f"zsmalloc-swap-{os.getpid()}") as cg:
                step(f"building a {mib} MiB process")
                with MemHog(mib, seed, cg.joiner()) as hog:
                    hog.stop()
                    step("estimating it")
                    extra: list[PageSource] = []
                    if not zswap:  # mkswap's header is in zram before any swap-out
                        extra.append(ArraySource(rig.header, PAGE, "swap header (mkswap)"))
                    t1 = time.perf_counter()
                    tally = estimate_process(
                        hog.pid, algorithm, SwapRules("swap", running_profile()), extra, zswap
                    )
                    result.events["estimate_ms"] = round(1000 * (time.perf_counter() - t1))
                    step("swapping it out")
                    v0 = vmstat()
                    t1 = time.perf_counter()
                    cg.swap_out()
                    result.events["swap_out_ms"] = round(1000 * (time.perf_counter() - t1))
                    v1 = vmstat()
                    kernel_mm = None if zswap else rig.zram.mm_stat()
                    kernel_zswap = rig.counters() if zswap else {}
                    left = _left_resident(hog.pid)
                    swapped = cg.swap_usage() // PAGE
                    result.events.update(
                        process_mib=mib,
                        process_resident_kb=hog.resident_kb,
                        left_resident=left,
                        cgroup_swap_pages=swapped,
                        vm_swap_kb=_status_kb(hog.pid, "VmSwap"),
                    )
        result.restore_errors = list(rig.undo_errors)
    for e in VMSTAT_EVENTS:
        result.events[e] = v1[e] - v0[e]
    _compare(result, tally, algorithm, kernel_mm, kernel_zswap, left)
    machine = sum(v1[e] - v_setup[e] for e in ("pswpout", "swpout_zero", "zswpout"))
    result.events["machine_swap_outs"] = machine
    if result.divergence is not None and machine > swapped:
        # Pages of other processes may have reached our device: not the model's fault.
        result.divergence = replace(result.divergence, kind="harness")
    result.seconds = time.perf_counter() - t0
    return result


def _compare(
    result: VerifyResult,
    tally: Tally,
    algorithm: str,
    kernel_mm: MmStat | None,
    kernel_zswap: dict[str, int],
    left: int,
) -> None:
    """Fill the result's comparisons and its verdict."""
    report = build_report(tally)
    est = report.algos[algorithm]
    rule = EXACT if left == 0 else NEAR
    result.nr_pages = tally.pages + tally.zero_map_pages
    result.counts = {"to_device": tally.pages, "zero_map": tally.zero_map_pages}
    proc = tally.sources[-1]
    result.events.update(
        zero_thp_pages=proc.zero_thp_pages,
        zero_map_single_pages=proc.zero_map_pages,
        same_filled_pages=tally.same_pages,
        **{f"skipped: {k}": v for k, v in proc.skipped.items()},
    )
    if kernel_mm is not None:
        result.comparisons += [
            Comparison(name, k, m, rule, "swap-out")
            for name, k, m in zip(MM_STAT_COLUMNS, kernel_mm, est.mm_stat, strict=True)
        ]
        # Zero-filled folios: single pages and all-zero THPs, in the swap zero map.
        result.comparisons.append(
            Comparison(
                "swpout_zero (vmstat)", result.events["swpout_zero"], tally.zero_map_pages, AT_LEAST
            )
        )
        what = "mm_stat"
    else:
        z = est.zswap or {}
        for name in ("stored_pages", "stored_incompressible_pages", "pool_total_size"):
            result.comparisons.append(
                Comparison(name, kernel_zswap.get(name, 0), int(z.get(name, 0)), rule, "swap-out")
            )
        # A swap file splits THPs: only single zero-filled pages reach the zero map.
        result.comparisons.append(
            Comparison(
                "swpout_zero (vmstat)",
                result.events["swpout_zero"],
                proc.zero_map_pages,
                AT_LEAST,
            )
        )
        what = "zswap debugfs"
    result.divergence = first_divergence(result.comparisons, what)


def _left_resident(pid: int) -> int:
    """Pages swap could still take from ``pid`` after the swap-out (0: all gone)."""
    src = ProcessSource(pid, PAGE, rules=SwapRules("block"))
    try:
        return src.resident_pages()
    finally:
        src.close()


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0
