"""The estimate report: figures per algorithm, as rich tables or as JSON.

One :class:`Report` is built from a :class:`~zsmalloc.estimate.driver.Tally`;
the text and the JSON views are rendered from the same objects, so they can
never disagree.  For each algorithm it holds:

* ``mm_stat`` — the nine columns exactly as ``/sys/block/zramN/mm_stat`` would
  show them after the pages were written in order to a fresh device, and again
  after ``echo 1 > compact``;
* derived figures — compression ratio (orig/compr, zramctl's DATA/COMPR),
  effective ratio (orig/mem_used_total: what the RAM really holds, allocator
  overhead included), bytes lost to fragmentation by cause and by class,
  same-filled and huge page counts, what compaction frees;
* memory at other ``CONFIG_ZSMALLOC_CHAIN_SIZE`` values (4..16);
* the per-class table (debugfs ``classes`` layout, fullness bands included)
  and the compressed-length histogram, for ``--classes`` and ``--plot``;
* with ``--zswap``, zswap's view of the same pages (swapped out once each:
  stored, zero-filled, incompressible, pool size) on the report's kernel, from
  :func:`zsmalloc.zswap.estimate.estimate_zswap`: for the kernel's default pool, and
  side by side for every pool that kernel offers (``zswap_pools``: zbud, z3fold,
  zsmalloc on 6.1; zbud and zsmalloc on 6.12; zsmalloc from 6.16).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from zsmalloc.estimate.driver import Tally
from zsmalloc.estimate.fill import (
    FillState,
    chain_size_totals,
    fill_state,
    kernel_version_totals,
)
from zsmalloc.mm.memdesc import memdesc_cost
from zsmalloc.profile import DEFAULT_VERSION, KernelProfile, kernel_version
from zsmalloc.zram.stats import MM_STAT_COLUMNS, MmStat
from zsmalloc.zs.size_class import class_table

if TYPE_CHECKING:
    from zsmalloc.estimate.pool_fill import PoolResult

CHAIN_SIZES = range(4, 17)  # Kconfig ZSMALLOC_CHAIN_SIZE range
LOSS_CAUSES = ("header", "rounding", "tail", "free_slots")

# Kernel memory zram and zsmalloc use beside the zspage pages, which mm_stat leaves
# out (spec zram.md §2.18).  Sizes on the reference 6.18.44 kernel: the slot table
# entry from BTF (struct zram_table_entry), the slab objects from
# /sys/kernel/slab/{zs_handle,zspage}-zramN/object_size.  Slab pages are shared
# between caches of the same size, so their rounding is left out: approximate.
ZRAM_TABLE_ENTRY_SIZE = 16
ZS_HANDLE_OBJ_SIZE = 8
ZSPAGE_OBJ_SIZE = 56


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


@dataclass
class AlgoReport:
    """Every figure for one compression algorithm."""

    algo: str
    state: FillState
    len_hist: np.ndarray
    chain_totals: dict[int, int]
    kernel_totals: dict[str, int]  # mem_used_total per kernel version's class table
    verified: dict[str, object] | None = None  # replay_check's summary, with --verify
    zswap: dict[str, Any] | None = None  # zswap's view of the same pages, with --zswap
    zswap_pools: dict[str, dict[str, Any]] | None = None  # ... on each pool the kernel offers
    pool: PoolResult | None = None  # the objects in a real Pool, compacted (run_pool)
    zero_map_pages: int = 0  # zero-filled folios the swap layer kept (never in zram)

    @property
    def mm_stat(self) -> MmStat:
        return self.state.mm_stat()

    @property
    def mm_stat_after_compact(self) -> MmStat:
        """After ``echo 1 > compact``: from zs_compact on a real Pool when it was run
        (``run_pool``), else from the closed form (which it always equals)."""
        if self.pool is None:
            return self.state.mm_stat(compacted=True)
        ps = self.state.table.page_size
        return self.state.mm_stat()._replace(
            mem_used_total=self.pool.total_pages_after_compact * ps,
            pages_compacted=self.pool.pages_compacted,
        )

    def derived(self) -> dict[str, Any]:
        st = self.state
        ps = st.table.page_size
        orig, compr, total = st.pages_stored * ps, st.compr_data_size, st.total_pages * ps
        lost = {k: int(v.sum()) for k, v in st.lost_bytes().items()}
        return {
            "compression_ratio": _ratio(orig, compr),
            "effective_ratio": _ratio(orig, total),
            "saved_bytes": orig - total,
            "lost_to_fragmentation_bytes": total - compr,
            "lost_to_fragmentation_pct_of_mem_used": (
                100.0 * (total - compr) / total if total else 0.0
            ),
            "lost_by_cause_bytes": lost,
            "same_pages": st.same_pages,
            "zero_map_pages": self.zero_map_pages,
            # What swapping the pages out frees: zram's pages and the zero map's, less the pool.
            "swapped_out_bytes": (st.pages_stored + self.zero_map_pages) * ps,
            "swap_out_ratio": _ratio((st.pages_stored + self.zero_map_pages) * ps, total),
            "huge_pages": st.huge_pages,
            "huge_bytes": st.huge_pages * ps,
            "stored_objects": int(st.obj_used.sum()),
            "zspages": int((st.obj_allocated // st.objs_per_zspage).sum()),
            "compact_frees_bytes": self.mm_stat_after_compact.pages_compacted * ps,
            "classes_used": int((st.obj_used > 0).sum()),
            "metadata_bytes_approx": self.metadata_bytes(),
            # struct page today against memdesc's word + zpdesc slab (zsmalloc.mm.memdesc)
            "memdesc_what_if": memdesc_cost(st.total_pages, ps).as_dict(),
        }

    def metadata_bytes(self) -> dict[str, int]:
        """Memory outside mm_stat for a device of exactly these pages (approximate)."""
        st = self.state
        out = {
            "slot_table": ZRAM_TABLE_ENTRY_SIZE * st.pages_stored,
            "handles": ZS_HANDLE_OBJ_SIZE * int(st.obj_used.sum()),
            "zspages": ZSPAGE_OBJ_SIZE * int((st.obj_allocated // st.objs_per_zspage).sum()),
        }
        out["total"] = sum(out.values())
        return out

    def classes(self) -> list[dict[str, Any]]:
        """One row per real class (all of them, as debugfs prints empty ones too)."""
        st = self.state
        lost = st.lost_bytes()
        free = st.freeable
        ps = st.table.page_size
        rows = []
        for k, idx in enumerate(st.index):
            rows.append(
                {
                    "class": int(idx),
                    "size": int(st.size[k]),
                    "fullness": [int(x) for x in st.bands[k]],
                    "obj_allocated": int(st.obj_allocated[k]),
                    "obj_used": int(st.obj_used[k]),
                    "pages_used": int(st.pages_used[k]),
                    "pages_per_zspage": int(st.pages_per_zspage[k]),
                    "freeable": int(free[k]),
                    "stored_bytes": int(st.stored_bytes[k]),
                    "lost_bytes": int(st.pages_used[k] * ps - st.stored_bytes[k]),
                    "lost_by_cause_bytes": {c: int(lost[c][k]) for c in LOSS_CAUSES},
                }
            )
        return rows

    def histogram(self) -> dict[str, Any]:
        """Non-same-filled pages by compressed length (sparse: only lengths that occur)."""
        nz = np.flatnonzero(self.len_hist)
        return {"length": nz.tolist(), "pages": self.len_hist[nz].tolist()}

    compressor: dict[str, Any] | None = None  # the backend's describe(): kernel, exactness

    @property
    def kernel_exact(self) -> bool:
        """Whether the compressed lengths are the kernel's (zstd: only with its version)."""
        return bool(self.compressor["kernel_exact"]) if self.compressor else True

    @property
    def approximate(self) -> str | None:
        """Why the lengths are not the kernel's, when they are not."""
        return self.compressor.get("approximate") if self.compressor else None

    @property
    def exact_command(self) -> str | None:
        """The command that makes them the kernel's, where one does."""
        return self.compressor.get("exact_command") if self.compressor else None

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel_exact": self.kernel_exact,
            "approximate": self.approximate,
            "exact_command": self.exact_command,
            "compressor": self.compressor,
            "mm_stat": self.mm_stat._asdict(),
            "mm_stat_after_compact": self.mm_stat_after_compact._asdict(),
            "mm_stat_line": self.mm_stat.format().rstrip("\n"),
            "mm_stat_after_compact_line": self.mm_stat_after_compact.format().rstrip("\n"),
            "derived": self.derived(),
            "mem_used_total_by_chain_size": {str(k): v for k, v in self.chain_totals.items()},
            "mem_used_total_by_kernel": dict(self.kernel_totals),
            "classes": self.classes(),
            "compressed_length_histogram": self.histogram(),
            "verified_by_replay": self.verified,
            "compaction_run_in_pool": self.pool is not None,
            "zswap": self.zswap,
            "zswap_pools": self.zswap_pools,
        }


@dataclass
class Report:
    """The whole estimate: the input, the model and one AlgoReport per algorithm."""

    tally: Tally
    chain_size: int
    algos: dict[str, AlgoReport]
    default_input: str | None = None  # why this input was chosen, when no SOURCE was given
    class_table_variant: str | None = None  # --class-delta/--chain-rule: "class delta 64"

    @property
    def page_size(self) -> int:
        return self.tally.page_size

    @property
    def huge_class_size(self) -> int:
        return next(iter(self.algos.values())).state.table.huge_class_size

    def summary_line(self) -> str:
        t = self.tally
        mib = t.pages * t.page_size / 2**20
        rate = t.pages / t.elapsed if t.elapsed > 0 else 0.0
        head = "interrupted after" if t.interrupted else "estimated"
        best = min(self.algos.values(), key=lambda a: a.state.total_pages)
        eff = best.derived()["effective_ratio"]
        eff_s = f"{eff:.2f}x" if eff else "n/a"
        ram = f"{best.state.total_pages * t.page_size / 2**20:.1f} MiB of RAM"
        if t.zero_map_pages:  # a swap-out: the ratio is of everything that left RAM
            out = (t.pages + t.zero_map_pages) * t.page_size / 2**20
            swap = best.derived()["swap_out_ratio"]
            return (
                f"{head} a swap-out of {t.pages + t.zero_map_pages} pages ({out:.1f} MiB, "
                f"{t.zero_map_pages} of them zero-filled: the swap zero map) in "
                f"{t.elapsed:.1f} s ({rate:,.0f} pages/s); best: {best.algo}, {ram} "
                f"({swap:.2f}x)"
            )
        return (
            f"{head} {t.pages} pages ({mib:.1f} MiB) in {t.elapsed:.1f} s "
            f"({rate:,.0f} pages/s); best: {best.algo}, {ram} ({eff_s})"
        )

    @property
    def kernel(self) -> str:
        """The kernel whose zram, zsmalloc and zswap the figures are (a profile row)."""
        return next(iter(self.algos.values())).state.table.profile.version

    def to_json(self) -> dict[str, Any]:
        t = self.tally
        return {
            "kernel": f"Linux {self.kernel} zram + zsmalloc (model)",
            "kernel_version": self.kernel,
            "page_size": t.page_size,
            "chain_size": self.chain_size,
            "class_table_variant": self.class_table_variant,
            "level": t.level,
            "deflate_winbits": t.setup.winbits,
            "huge_class_size": self.huge_class_size,
            "input": {
                "pages": t.pages,
                "bytes": t.pages * t.page_size,
                "same_filled_pages": t.same_pages,
                "zero_map_pages": t.zero_map_pages,
                "zero_thp_pages": t.zero_thp_pages,
                "zram_used_as": [r.to_json() for r in t.rules],
                "interrupted": t.interrupted,
                "elapsed_s": round(t.elapsed, 3),
                "pages_per_s": round(t.pages / t.elapsed) if t.elapsed > 0 else None,
                "peak_rss_bytes": t.peak_rss,
                "default_input": self.default_input,
                "host": socket.gethostname(),
                "cluster": t.cluster,
                "sources": [s.to_json() for s in t.sources],
            },
            "mm_stat_columns": list(MM_STAT_COLUMNS),
            "algorithms": {a: r.to_json() for a, r in self.algos.items()},
        }


def zswap_view(
    tally: Tally,
    algo: str,
    kernel: str = DEFAULT_VERSION,
    chain_size: int = 8,
    zpool: str | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]] | None:
    """zswap's store-only figures for the same pages on ``kernel`` (zsmalloc.zswap.estimate):
    (the default pool's, or ``zpool``'s; every offered pool's by name), or None.

    The pages go in the order they were read: zbud and z3fold pack by order.  Pages the
    sources already left in the swap zero map come last, as all-zero pages (6.1 and 6.6
    have no zero map: zswap keeps them as same-filled words, in no pool page).
    """
    if tally.zswap_hist is None:
        return None
    from zsmalloc.estimate.driver import ZSWAP_SAME_FLAG
    from zsmalloc.zswap.estimate import estimate_zswap_pools
    from zsmalloc.zswap.rules import zswap_rules

    profile = KernelProfile(kernel, tally.page_size, chain_size)
    rules = zswap_rules(profile)
    if tally.zswap_lengths is not None:
        zl = tally.zswap_page_lengths(algo)
        same = (zl & ZSWAP_SAME_FLAG) != 0
        clens = np.where(same & rules.same_filled, 0, zl & ~ZSWAP_SAME_FLAG)
    else:  # a tally without the order: counts only (enough for zsmalloc's closed form)
        h = tally.zswap_hist[algo].copy()
        h[0] += tally.zero_map_pages
        clens = np.repeat(np.arange(len(h)), h)
    names = (zpool,) if zpool else None
    views = {
        v.zpool: v.as_dict()
        for v in estimate_zswap_pools(clens=clens, compressor=algo, profile=profile, zpools=names)
    }
    default = zpool or (rules.default_zpool if rules.zpool else "zsmalloc")
    main = views[default] if default in views else next(iter(views.values()))
    return main, views


def build_report(
    tally: Tally,
    chain_size: int = 8,
    default_input: str | None = None,
    *,
    run_pool: bool = False,
    kernel: str | None = None,
    zpool: str | None = None,
    class_delta: int | None = None,
    chain_rule: str | None = None,
) -> Report:
    """Turn a tally into the full report (the fill model per algorithm).

    ``run_pool`` also gives each algorithm's objects to a real Pool and runs
    zs_compact on it (:mod:`zsmalloc.estimate.pool_fill`): the after-compact
    columns and the debugfs table then come from the allocator model.  ``kernel`` (a
    profile row or a release; default: the kernel whose compressors made the tally)
    gives the class table, the huge threshold and the allocator's rules, and zswap's
    rules; ``zpool`` limits the zswap view to that allocator.
    """
    version = tally.setup.kernel if kernel is None else kernel_version(kernel)
    table = class_table(
        KernelProfile(version, tally.page_size, chain_size, class_delta, chain_rule)
    )
    algos = {}
    for algo in tally.algos:
        h = tally.len_hist[algo]
        algos[algo] = AlgoReport(
            algo=algo,
            state=fill_state(h, tally.same_pages, table),
            len_hist=h,
            chain_totals=chain_size_totals(h, tally.same_pages, tally.page_size, CHAIN_SIZES),
            kernel_totals=kernel_version_totals(h, tally.same_pages, tally.page_size, chain_size),
            zero_map_pages=tally.zero_map_pages,
            compressor=tally.backend(algo).describe(),
        )
        view = zswap_view(tally, algo, version, chain_size, zpool)
        if view is not None:
            algos[algo].zswap, algos[algo].zswap_pools = view
        if run_pool:
            from zsmalloc.estimate.pool_fill import fill_pool  # the numba allocator: lazily

            algos[algo].pool = fill_pool(algos[algo].state)
    return Report(
        tally=tally,
        chain_size=chain_size,
        algos=algos,
        default_input=default_input,
        class_table_variant=table.profile.variant_label() or None,
    )
