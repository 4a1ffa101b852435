"""``zsmalloc verify --zswap``: the zswap model against the running kernel's zswap.

A store-only workload of known pages goes through the kernel's zswap (with
:class:`~zsmalloc.zswap.live.LiveZswap`: own swap file, own cgroup, the pages
paged out with ``MADV_PAGEOUT``) and through :class:`~zsmalloc.zswap.zswap.Zswap`
on the package's zsmalloc :class:`~zsmalloc.Pool`, and the counters are
compared.  For store-only runs the pool size depends only on how many objects
each size class holds, so the model must match exactly.

What is compared, and how (printed with the result):

* exact: ``stored_pages``, ``stored_incompressible_pages``, ``pool_total_size``
  and the change of every ``reject_*`` counter, ``decompress_fail`` and
  ``pool_limit_hit`` (the limit is never reached: checked before the run).
* exact, but timing-dependent in general: ``written_back_pages`` (0 expected:
  the shrinker is off and the pool limit is not hit, so no writeback path runs;
  in a run with the shrinker on it would depend on reclaim timing).
* at least the model: ``zswpout`` in /proc/vmstat is machine-wide, so another
  process swapping at the same moment can add to it; tolerance: +any.

The workload (``--pages N``, ``--seed``) mixes pages of the shared testdata
(recorded on the reference kernel) with synthetic ones: random bytes followed
by zeros (every zsmalloc class), random pages (stored as-is, 4096 bytes),
same-filled non-zero pages (compressed, 6.18 has no same-filled path) and
all-zero pages (swap zero map, never zswap).  Page contents go to the holder
process through a pipe and are never written anywhere.

Root only; everything is restored afterwards (see :mod:`.live`).
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zsmalloc.errors import InputError, KernelUnavailableError
from zsmalloc.profile import DEFAULT_PROFILE
from zsmalloc.zswap.compression import page_clens
from zsmalloc.zswap.live import LiveZswap, read_param, zswap_unavailable_reason
from zsmalloc.zswap.params import ZswapParams
from zsmalloc.zswap.zswap import Zswap, default_pool_factory

PAGE = DEFAULT_PROFILE.page_size  # the live kernel here runs 4 KiB pages

EXACT = (
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
DELTA_COUNTERS = (*EXACT[3:], "written_back_pages")


def workload(nr_pages: int, seed: int, testdata_pages: bytes | None) -> bytes:
    """``nr_pages`` pages of known content, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    out = np.zeros((nr_pages, PAGE), np.uint8)
    shared = np.frombuffer(testdata_pages, np.uint8).reshape(-1, PAGE) if testdata_pages else None
    kinds = rng.choice(5, size=nr_pages, p=[0.40, 0.40, 0.08, 0.06, 0.06])
    for i, kind in enumerate(kinds):
        if kind == 0 and shared is not None:
            out[i] = shared[rng.integers(len(shared))]
        elif kind in (0, 1):  # random prefix, then zeros: clen spans every class
            n = int(rng.integers(1, PAGE + 1))
            out[i, :n] = rng.integers(0, 256, n, dtype=np.uint8)
        elif kind == 2:  # incompressible
            out[i] = rng.integers(0, 256, PAGE, dtype=np.uint8)
        elif kind == 3:  # same-filled, not zero: zswap compresses it (6.10+)
            out[i] = np.frombuffer(
                np.full(PAGE // 8, rng.integers(1, 2**63), np.uint64).tobytes(), np.uint8
            )
        # kind 4: all zeros
    return out.tobytes()


def _testdata_pages() -> bytes | None:
    import gzip

    from zsmalloc.testing.shared import testdata_dir

    d = testdata_dir()
    if d is None or not (d / "shared_pages.bin.gz").exists():
        return None
    return gzip.open(d / "shared_pages.bin.gz").read()


def totalram_pages() -> int:
    """MemTotal / 4 KiB: the kernel's totalram_pages() (spec §6)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024 // PAGE
    raise KernelUnavailableError("no MemTotal in /proc/meminfo")


def vmstat_all() -> dict[str, int]:
    """/proc/vmstat as a dict (missing events read as 0 via .get by callers)."""
    out: dict[str, int] = {}
    for line in Path("/proc/vmstat").read_text().splitlines():
        key, _, value = line.partition(" ")
        out[key] = int(value)
    for e in (*SWAPOUT_EVENTS, "zswpin"):
        out.setdefault(e, 0)
    return out


@dataclass
class Comparison:
    name: str
    kernel: int
    model: int
    rule: str  # "exact" or ">= model"
    phase: str = "store"  # "store": after the stores; "churn": after the frees and loads

    @property
    def ok(self) -> bool:
        return self.kernel == self.model if self.rule == "exact" else self.kernel >= self.model


@dataclass
class VerifyResult:
    compressor: str
    nr_pages: int
    seed: int
    zero_pages: int
    left_resident: int
    rows: list[Comparison] = field(default_factory=list)
    undo_errors: list[str] = field(default_factory=list)
    notes: tuple[str, ...] = ()
    churn_ops: int = 0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows) and self.left_resident == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "compressor": self.compressor,
            "pages": self.nr_pages,
            "seed": self.seed,
            "zero_pages": self.zero_pages,
            "left_resident": self.left_resident,
            "counters": {
                f"{r.phase}:{r.name}": {
                    "kernel": r.kernel,
                    "model": r.model,
                    "rule": r.rule,
                    "ok": r.ok,
                }
                for r in self.rows
            },
            "restore_errors": self.undo_errors,
        }

    def render(self) -> str:
        lines = [
            f"zswap check: {self.nr_pages} pages (seed {self.seed}, "
            f"{self.zero_pages} all-zero -> swap zero map), compressor {self.compressor}",
            f"{'counter':<30}{'kernel':>14}{'model':>14}  rule",
        ]
        phase = "store"
        for r in self.rows:
            if r.phase != phase:
                phase = r.phase
                lines.append(f"-- after {self.churn_ops} frees/swap-ins of random stored pages --")
            mark = "ok" if r.ok else "MISMATCH"
            lines.append(f"{r.name:<30}{r.kernel:>14}{r.model:>14}  {r.rule:<9} {mark}")
        lines += self.notes
        if self.left_resident:
            lines.append(f"{self.left_resident} pages could not be paged out (still resident)")
        for e in self.undo_errors:
            lines.append(f"RESTORE FAILED: {e}")
        lines.append("result: " + ("MATCH" if self.ok else "MISMATCH"))
        return "\n".join(lines)


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


def _live_pages(nr_pages: int, seed: int, limit: bool, totalram: int) -> bytes:
    if not limit:
        return workload(nr_pages, seed, _testdata_pages())
    rng = np.random.default_rng(seed)
    n = totalram // 100 + nr_pages
    return rng.integers(0, 256, n * PAGE, dtype=np.uint8).tobytes()


def run(
    nr_pages: int,
    seed: int = 1,
    compressor: str = "lzo",
    pool_factory: Any = default_pool_factory,
    limit: bool = False,
    churn: int = 0,
    save: Path | None = None,
) -> VerifyResult:
    """Run the live check; raises KernelUnavailableError when it cannot run here.

    Store-only by default (``nr_pages`` pages, pool limit far away).  With
    ``limit``, the pool is filled to ``max_pool_percent=1`` with incompressible
    pages and ``nr_pages`` more are offered beyond it.  ``churn`` > 0 (store-only
    mode) then frees or swaps in that many distinct random pages and compares again.
    ``save`` writes the run as a zswap trace (sizes only) with the kernel's values
    as ``expect`` lines, replayable by ``zsmalloc zswap replay``.
    """
    if nr_pages < 1:
        raise InputError(f"--pages must be at least 1, found {nr_pages}")
    reason = zswap_unavailable_reason()
    if reason:
        raise KernelUnavailableError(reason)
    totalram = totalram_pages()
    max_pct = 1 if limit else int(read_param("max_pool_percent"))
    if limit and 16 * nr_pages >= totalram // 100:
        raise InputError(
            f"--limit needs 16 x pages < {totalram // 100} (the pool limit in pages) so that "
            f"the outcome does not depend on when the shrink worker runs; found {nr_pages}"
        )
    pages = _live_pages(nr_pages, seed, limit, totalram)
    # Model first: a bad compressor name fails here, before the machine is touched.
    params = ZswapParams(
        enabled=True,
        compressor=compressor,
        max_pool_percent=max_pct,
        accept_threshold_percent=int(read_param("accept_threshold_percent")),
        shrinker_enabled=False,
    )
    model, zero = model_counters(pages, compressor, totalram, params, pool_factory)
    ops = [] if limit else churn_ops(len(pages) // PAGE, churn, seed)
    if not limit and model.total_pages() >= model.max_pages() * 9 // 10:
        raise InputError(
            f"{nr_pages} pages would come near the pool limit ({model.max_pages()} pages); "
            "use fewer pages"
        )
    live_args = {
        "compressor": compressor,
        "swap_size": (len(pages) // PAGE + 1024) * PAGE,
        "memory_limit": max(512 << 20, 2 * len(pages)),
        "max_pool_percent": max_pct if limit else None,
    }
    nr = len(pages) // PAGE
    others: list[int] = []
    for _ in range(ATTEMPTS):
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
    before, after, left = k.before, k.after, k.left
    zswpout, zswpin, after_churn = k.zswpout, k.zswpin, k.after_churn
    result = VerifyResult(
        compressor,
        len(pages) // PAGE,
        seed,
        zero,
        left,
        undo_errors=k.undo_errors,
        notes=LIMIT_NOTES if limit else STORE_ONLY_NOTES + (CHURN_NOTES if ops else ()),
        churn_ops=len(ops),
    )
    m = model.debugfs()
    for name in (*EXACT, "written_back_pages"):
        kv = after.get(name, 0) - (before.get(name, 0) if name in DELTA_COUNTERS else 0)
        result.rows.append(Comparison(name, kv, m[name], "exact"))
    result.rows.append(Comparison("zswpout (vmstat)", zswpout, model.counters.zswpout, ">= model"))
    if ops:
        for op, i in ops:
            if op == "d":
                model.invalidate(i)
            else:
                model.load(i)
        m = model.debugfs()
        for name in ("stored_pages", "stored_incompressible_pages", "pool_total_size"):
            result.rows.append(Comparison(name, after_churn[name], m[name], "exact", "churn"))
        result.rows.append(
            Comparison("zswpin (vmstat)", zswpin, model.counters.zswpin, ">= model", "churn")
        )
    if save is not None:
        save_trace(save, result, page_clens(pages, compressor), ops, params, totalram)
    return result


ATTEMPTS = 3
SWAPOUT_EVENTS = ("pswpout", "zswpout", "swpout_zero")


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


def churn_ops(nr_pages: int, churn: int, seed: int) -> list[tuple[str, int]]:
    """``churn`` (at most ``nr_pages``) distinct random pages, each dropped or touched."""
    rng = np.random.default_rng(seed + 1)
    chosen = rng.permutation(nr_pages)[: min(churn, nr_pages)]
    return [("d" if rng.random() < 0.5 else "t", int(i)) for i in chosen]


def run_cli(
    *,
    algo: str = "lzo",
    n_ops: int = 0,
    seed: int = 1,
    nr_pages: int = 20000,
    save: str | None = None,
    as_json: bool = False,
    limit: bool = False,
    **_: Any,
) -> int:
    """Entry point for ``zsmalloc verify --zswap``: ``n_ops`` frees/swap-ins follow the stores."""
    import click

    result = run(
        nr_pages,
        seed=seed,
        compressor=algo,
        limit=limit,
        churn=n_ops,
        save=Path(save) if save else None,
    )
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else result.render())
    return 0 if result.ok else 1


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
            f"{r.name} {r.kernel}" for r in result.rows if r.phase == phase and r.rule == "exact"
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
        expect("store"),
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
