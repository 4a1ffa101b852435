"""``zsmalloc verify --zswap``: the zswap model against the running kernel's zswap.

A workload of known pages (:func:`~zsmalloc.live.workload.zswap_pages`) goes
through the kernel's zswap (:class:`~zsmalloc.live.zswap.LiveZswap`: own swap
file, own cgroup, the pages paged out with ``MADV_PAGEOUT``) and through
:class:`~zsmalloc.zswap.zswap.Zswap` on the package's zsmalloc
:class:`~zsmalloc.Pool`, and the counters are compared.  For store-only runs
the pool size depends only on how many objects each size class holds, so the
model must match exactly.  Then ``churn`` distinct random pages are dropped
(slot freed: ``zswap_invalidate``) or read back (exclusive ``zswap_load``)
and the counters are compared again: the pool size after frees depends on
zsmalloc's exact object placement.

What is compared, and how (the result's ``notes`` say it too):

* exact: ``stored_pages``, ``stored_incompressible_pages``, ``pool_total_size``
  and the change of every ``reject_*`` counter, ``decompress_fail`` and
  ``pool_limit_hit`` (the limit is never reached: checked before the run).
* exact, but timing-dependent in general: ``written_back_pages`` (0 expected:
  the shrinker is off and the pool limit is not hit, so no writeback path runs;
  in a run with the shrinker on it would depend on reclaim timing).
* at least the model: ``zswpout``/``zswpin`` in /proc/vmstat are machine-wide,
  so another process swapping at the same moment can add to them.

zswap and swap are machine-wide: when other processes swap during a run, the
run is repeated (``ATTEMPTS``) and otherwise refused with
:class:`~zsmalloc.errors.KernelUnavailableError` ("cannot verify", never a
match or a mismatch).  Root only; everything is restored afterwards.
"""

from __future__ import annotations

import gzip
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsmalloc.errors import InputError, KernelUnavailableError
from zsmalloc.kparse import param_set_uint
from zsmalloc.live.defaults import ZSWAP
from zsmalloc.live.result import (
    AT_LEAST,
    EXACT,
    Comparison,
    Divergence,
    Progress,
    VerifyResult,
    first_divergence,
)
from zsmalloc.live.workload import (
    incompressible_pages,
    testdata_pages,
    zswap_churn,
    zswap_pages,
)
from zsmalloc.live.zswap import (
    PAGE,
    SWAPOUT_EVENTS,
    LiveZswap,
    read_param,
    totalram_pages,
    vmstat_all,
    zswap_unavailable_reason,
)
from zsmalloc.zswap.compression import page_clens
from zsmalloc.zswap.params import ZswapParams
from zsmalloc.zswap.zswap import Zswap, default_pool_factory

EXACT_COUNTERS = (
    "stored_pages",
    "stored_incompressible_pages",
    "pool_total_size",
    "reject_compress_fail",
    "reject_compress_poor",
    "reject_alloc_fail",
    "reject_kmemcache_fail",
    "reject_reclaim_fail",
    "decompress_fail",
    "pool_limit_hit",
)
DELTA_COUNTERS = (*EXACT_COUNTERS[3:], "written_back_pages")  # events: compared as changes
CHURN_COUNTERS = ("stored_pages", "stored_incompressible_pages", "pool_total_size")
ATTEMPTS = 3

STORE_ONLY_NOTES = (
    "rules: 'exact' must be equal.  written_back_pages would depend on reclaim timing",
    "with the shrinker on; here the shrinker is off and the pool limit is not reached,",
    "so it must stay 0.  zswpout (/proc/vmstat) is machine-wide: any other swapping",
    "can only add to it, so the kernel may exceed the model (tolerance: +any).",
)
CHURN_NOTES = (
    "churn: then, on distinct random pages in random order, half are dropped",
    "(MADV_DONTNEED: swap slot freed -> zswap_invalidate) and half read (swap-in through",
    "the swap cache -> exclusive zswap_load, entry freed); vm.page-cluster=0 meanwhile,",
    "so no readahead loads neighbours.  The pool size after frees depends on which",
    "zspages held the freed objects: exact.  zswpin (vmstat): kernel >= model.",
)
LIMIT_NOTES = (
    "pool-limit run: max_pool_percent=1, incompressible pages (one zsmalloc page each),",
    "so the pool fills to max = totalram // 100 pages and every later store is refused",
    "and counted in pool_limit_hit (spec §6).  Each refusal queues the shrink worker;",
    "when it runs depends on timing (asynchronous), but on fresh (referenced) entries it",
    "gives up after 16 rotations, and 16 x refusals < stored entries, so however often",
    "it runs it writes nothing back: written_back_pages must be 0.  zswpout: +any.",
)


def model_counters(
    pages: bytes,
    compressor: str,
    totalram: int,
    params: ZswapParams,
    pool_factory: Any = default_pool_factory,
) -> tuple[Zswap, int]:
    """Feed ``pages`` to the model as the kernel sees them; returns it and the zero count."""
    z = Zswap(totalram, params, pool_factory=pool_factory, worker="sync")
    clens = page_clens(pages, compressor)
    zero = 0
    for off, c in enumerate(clens):
        zero += c == 0
        z.store(off, clen=c)
    return z, zero


def verify_zswap(
    nr_pages: int = ZSWAP["nr_pages"],
    seed: int = ZSWAP["seed"],
    compressor: str = ZSWAP["algorithm"],
    churn: int = ZSWAP["n_ops"],
    limit: bool = False,
    save: Path | None = None,
    pool_factory: Any = default_pool_factory,
    progress: Progress | None = None,
) -> VerifyResult:
    """Run the live check; raises KernelUnavailableError when it cannot run here.

    Stores ``nr_pages`` pages (pool limit far away), then frees or swaps in
    ``churn`` distinct random ones and compares again.  With ``limit``, the
    pool is filled to ``max_pool_percent=1`` with incompressible pages and
    ``nr_pages`` more are offered beyond it (no churn).  ``save`` writes the
    run as a zswap trace (sizes only) with the kernel's values as ``expect``
    lines, replayable by ``zsmalloc zswap replay``.
    """

    def step(what: str, done: int, total: int | None = None) -> None:
        if progress is not None:
            progress(f"zswap {compressor} seed {seed}: {what}", done, total)

    if nr_pages < 1:
        raise InputError(f"--pages must be at least 1, found {nr_pages}")
    if churn < 0:
        raise InputError(f"--ops must be at least 0, found {churn}")
    reason = zswap_unavailable_reason()
    if reason:
        raise KernelUnavailableError(reason)
    t0 = time.perf_counter()
    totalram = totalram_pages()
    max_pct = 1 if limit else param_set_uint(read_param("max_pool_percent"))
    if limit and 16 * nr_pages >= totalram // 100:
        raise InputError(
            f"--limit needs 16 x pages < {totalram // 100} (the pool limit in pages) so that "
            f"the outcome does not depend on when the shrink worker runs; found {nr_pages}"
        )
    step("building pages", 0)
    if limit:
        pages = incompressible_pages(totalram // 100 + nr_pages, seed)
    else:
        pages = zswap_pages(nr_pages, seed, testdata_pages())
    nr = len(pages) // PAGE
    # Model first: a bad compressor name fails here, before the machine is touched.
    params = ZswapParams(
        enabled=True,
        compressor=compressor,
        max_pool_percent=max_pct,
        accept_threshold_percent=param_set_uint(read_param("accept_threshold_percent")),
        shrinker_enabled=False,
    )
    step("model stores", 0, nr)
    model, zero = model_counters(pages, compressor, totalram, params, pool_factory)
    step("model stores", nr, nr)
    ops = [] if limit else zswap_churn(nr, churn, seed)
    if not limit and model.total_pages() >= model.max_pages() * 9 // 10:
        raise InputError(
            f"{nr_pages} pages would come near the pool limit ({model.max_pages()} pages); "
            "use fewer pages"
        )
    live_args = {
        "compressor": compressor,
        "swap_size": (nr + 1024) * PAGE,
        "memory_limit": max(512 << 20, 2 * len(pages)),
        "max_pool_percent": max_pct if limit else None,
    }
    others: list[int] = []
    for attempt in range(ATTEMPTS):
        step("kernel run", attempt, ATTEMPTS)
        k = _measure(live_args, pages, ops)
        if k.undo_errors:
            break
        # Every page we hold is swapped out exactly once (zero map, zswap or disk);
        # more swap-outs machine-wide mean another process swapped meanwhile.
        extra = k.swapouts - nr + k.swapouts_churn
        if extra == 0:
            break
        others.append(extra)
    else:
        raise KernelUnavailableError(
            f"other processes swapped pages through zswap during each of {ATTEMPTS} attempts "
            f"({', '.join(map(str, others))} pages besides ours); an exact comparison needs "
            "a quiet machine, retry later"
        )
    result = VerifyResult(
        "zswap",
        compressor,
        nr,
        seed=seed,
        ops_planned=len(ops),
        ops_done=len(ops),
        counts={"store": nr, "drop": sum(op == "d" for op, _ in ops)},
        events={"zero_pages": zero, "left_resident": k.left},
        notes=LIMIT_NOTES if limit else STORE_ONLY_NOTES + (CHURN_NOTES if ops else ()),
        restore_errors=k.undo_errors,
    )
    result.counts["touch"] = len(ops) - result.counts["drop"]
    m = model.debugfs()
    for name in (*EXACT_COUNTERS, "written_back_pages"):
        kv = k.after.get(name, 0) - (k.before.get(name, 0) if name in DELTA_COUNTERS else 0)
        result.comparisons.append(Comparison(name, kv, m[name], EXACT, "stores"))
    result.comparisons.append(
        Comparison("zswpout (vmstat)", k.zswpout, model.counters.zswpout, AT_LEAST, "stores")
    )
    if ops:
        for op, i in ops:
            if op == "d":
                model.invalidate(i)
            else:
                model.load(i)
        m = model.debugfs()
        for name in CHURN_COUNTERS:
            result.comparisons.append(
                Comparison(name, k.after_churn[name], m[name], EXACT, "churn")
            )
        result.comparisons.append(
            Comparison("zswpin (vmstat)", k.zswpin, model.counters.zswpin, AT_LEAST, "churn")
        )
    if k.left:
        # Pages still mapped never reached swap: the counters cannot be compared.
        result.divergence = Divergence(
            "after MADV_PAGEOUT",
            "pages paged out",
            (nr - k.left,),
            (nr,),
            ("paged_out",),
            kind="harness",
        )
    else:
        result.divergence = first_divergence(result.comparisons, "debugfs")
    if save is not None:
        save_trace(save, result, page_clens(pages, compressor), ops, params, totalram)
    result.seconds = time.perf_counter() - t0
    return result


@dataclass
class KernelRun:
    """What one live session measured."""

    before: dict[str, int]
    after: dict[str, int]
    after_churn: dict[str, int]
    left: int
    zswpout: int
    zswpin: int
    swapouts: int  # machine-wide swap-outs during the stores
    swapouts_churn: int  # ... during the churn (ours: none)
    undo_errors: list[str]


def _measure(live_args: dict[str, Any], pages: bytes, ops: list[tuple[str, int]]) -> KernelRun:
    live = LiveZswap(**live_args)
    with live:
        before = live.counters()
        if before.get("stored_pages", 0):
            raise KernelUnavailableError(
                f"zswap already holds {before['stored_pages']} pages of other processes; "
                "an exact comparison needs it empty"
            )
        v0 = vmstat_all()
        left = live.hold(pages)
        after = live.counters()
        v1 = vmstat_all()
        after_churn: dict[str, int] = {}
        if ops:
            live.command(ops)
            after_churn = live.counters()
        v2 = vmstat_all()
    return KernelRun(
        before=before,
        after=after,
        after_churn=after_churn,
        left=left,
        zswpout=v1["zswpout"] - v0["zswpout"],
        zswpin=v2["zswpin"] - v0["zswpin"],
        swapouts=sum(v1[e] - v0[e] for e in SWAPOUT_EVENTS),
        swapouts_churn=sum(v2[e] - v1[e] for e in SWAPOUT_EVENTS),
        undo_errors=live.undo_errors,
    )


def save_trace(
    path: Path,
    result: VerifyResult,
    clens: list[int],
    ops: list[tuple[str, int]],
    params: ZswapParams,
    totalram: int,
) -> None:
    """Write a run as a zswap trace: sizes only (no contents), kernel values as ``expect``."""

    def expect(phase: str) -> str:
        pairs = [
            f"{c.name} {c.kernel}"
            for c in result.comparisons
            if c.phase == phase and c.rule == EXACT
        ]
        return "expect " + " ".join(pairs)

    lines = [
        "zswap-trace 1",
        f"# zsmalloc verify --zswap on {os.uname().release}: {result.nr_pages} pages, "
        f"seed {result.seed}, {len(ops)} churn ops; expect lines are the kernel's debugfs",
        f"ram {totalram * PAGE}",
        *(f"param {k} {v}" for k, v in params.as_sysfs().items() if k != "enabled"),
        "param enabled Y",
        *(f"s {off} {c}" for off, c in enumerate(clens)),
        expect("stores"),
        *(f"{'i' if op == 'd' else 'l'} {i}" for op, i in ops),
    ]
    if ops:
        lines.append(expect("churn"))
    text = "\n".join(lines) + "\n"
    try:
        if path.suffix == ".gz":
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
    except OSError as exc:
        raise InputError(f"cannot write trace: {exc}", path=str(path)) from None
