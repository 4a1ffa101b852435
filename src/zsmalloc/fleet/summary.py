"""The fleet's figures: totals, distributions, the best algorithm, one zram setting.

Every result is one machine's (or one source's) zram device, so the fleet's
RAM for an algorithm is the sum of the devices' ``mem_used_total``.  The best
algorithm is the one with the least of it, over the algorithms every result
measured (an algorithm some machines lack cannot be compared fairly).

The recommendation is one setting for every machine, argued from the data:

``disksize``
    the largest uncompressed input one result measured, plus ``headroom``
    (default 25 %), rounded up to a whole MiB: every measured machine's pages
    fit, with room to grow.  zram's ``disksize`` bounds the *uncompressed*
    data a device accepts (``orig_data_size``).
``mem_limit``
    ``disksize`` times the most RAM per stored byte any result needed with
    that algorithm (``mem_used_total / orig_data_size``, the reciprocal of its
    effective ratio), rounded up to a MiB: a device filled to ``disksize``
    with pages like the least compressible machine's still fits, and more
    compressible machines never reach it.  zram refuses a write that would
    take ``mem_used_total`` past ``mem_limit`` (-ENOMEM: the page stays in RAM
    or goes to the next swap device).  zram's slot table and zsmalloc's slab
    objects are not counted by ``mem_limit``; their size is shown beside it.

Ratios are distributed across results, not pages: the percentiles say how
differently the machines compress (numpy's linear interpolation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zsmalloc.errors import InputError
from zsmalloc.fleet.results import Result

MIB = 1 << 20
DEFAULT_HEADROOM = 0.25
PERCENTILES = (0, 10, 50, 90, 100)
SLOT_TABLE_ENTRY = 16  # bytes of zram's table per disksize page (struct zram_table_entry)


def human(n: float) -> str:
    """Bytes in binary units with three significant digits (1.5 GiB, 640 MiB)."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if abs(n) >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:.3g} {unit}" if abs(v) < 1000 else f"{v:.0f} {unit}"
    return f"{int(n)} B"


def sysfs_size(n: int) -> str:
    """A byte count as zram's sysfs reads it (memparse): ``1536M``, ``2G``."""
    if n % (1 << 30) == 0:
        return f"{n >> 30}G"
    return f"{-(-n // MIB)}M"


@dataclass
class AlgoTotal:
    """One algorithm over the whole fleet."""

    algo: str
    orig_bytes: int
    compr_bytes: int
    mem_used: int
    mem_used_after_compact: int
    huge_pages: int
    same_pages: int
    metadata_bytes: int
    zswap_pool_bytes: int | None  # None unless every result measured zswap
    kernel_exact: bool
    wins: int  # results where this algorithm takes the least RAM
    effective: dict[int, float]  # percentile -> effective ratio across results
    compression: dict[int, float]  # percentile -> compression ratio across results

    @property
    def effective_ratio(self) -> float:
        return self.orig_bytes / self.mem_used if self.mem_used else math.inf

    @property
    def compression_ratio(self) -> float:
        return self.orig_bytes / self.compr_bytes if self.compr_bytes else math.inf


@dataclass
class Recommendation:
    """One zram setting for every machine, and why."""

    algo: str
    disksize: int
    mem_limit: int
    reasons: list[str]

    def sysfs_lines(self, device: str = "zram0") -> list[str]:
        """The writes that apply it (comp_algorithm before disksize, as zram requires)."""
        sys_dir = f"/sys/block/{device}"
        return [
            f"echo {self.algo} > {sys_dir}/comp_algorithm",
            f"echo {sysfs_size(self.disksize)} > {sys_dir}/disksize",
            f"echo {sysfs_size(self.mem_limit)} > {sys_dir}/mem_limit",
        ]


@dataclass
class Fleet:
    """Every result, the per-algorithm totals, the best algorithm and the setting."""

    results: list[Result]
    algos: list[str]  # measured by every result, in the order first seen
    totals: dict[str, AlgoTotal]
    best: str
    recommendation: Recommendation
    headroom: float
    notes: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return sum(r.pages for r in self.results)

    def best_of(self, r: Result) -> str:
        """The algorithm taking the least RAM for one result (first on a tie)."""
        return min(self.algos, key=lambda a: r.algos[a].mem_used)

    def to_json(self) -> dict[str, Any]:
        rec = self.recommendation
        return {
            "results": [
                {
                    "name": r.name,
                    "path": r.path,
                    "host": r.host,
                    "sources": r.sources,
                    "pages": r.pages,
                    "page_size": r.page_size,
                    "chain_size": r.chain_size,
                    "interrupted": r.interrupted,
                    "best": self.best_of(r),
                    "algorithms": {
                        a: {
                            "orig_data_size": r.algos[a].orig_bytes,
                            "compr_data_size": r.algos[a].compr_bytes,
                            "mem_used_total": r.algos[a].mem_used,
                            "effective_ratio": _finite(r.algos[a].effective_ratio),
                            "compression_ratio": _finite(r.algos[a].compression_ratio),
                            "zswap_pool_total_size": r.algos[a].zswap_pool_bytes,
                            "zswap_pool": r.algos[a].zswap_pool,
                        }
                        for a in self.algos
                    },
                }
                for r in self.results
            ],
            "totals": {
                a: {
                    "orig_data_size": t.orig_bytes,
                    "compr_data_size": t.compr_bytes,
                    "mem_used_total": t.mem_used,
                    "mem_used_total_after_compact": t.mem_used_after_compact,
                    "huge_pages": t.huge_pages,
                    "same_pages": t.same_pages,
                    "metadata_bytes_approx": t.metadata_bytes,
                    "zswap_pool_total_size": t.zswap_pool_bytes,
                    "kernel_exact": t.kernel_exact,
                    "effective_ratio": _finite(t.effective_ratio),
                    "compression_ratio": _finite(t.compression_ratio),
                    "best_for_results": t.wins,
                    "effective_ratio_percentiles": {
                        str(k): _finite(v) for k, v in t.effective.items()
                    },
                    "compression_ratio_percentiles": {
                        str(k): _finite(v) for k, v in t.compression.items()
                    },
                }
                for a, t in self.totals.items()
            },
            "best": self.best,
            "recommendation": {
                "algorithm": rec.algo,
                "disksize": rec.disksize,
                "mem_limit": rec.mem_limit,
                "headroom": self.headroom,
                "sysfs": rec.sysfs_lines(),
                "reasons": rec.reasons,
            },
            "notes": self.notes,
        }


def _finite(x: float) -> float | None:
    """JSON has no infinity (a ratio over zero bytes, all pages same-filled): null."""
    return x if math.isfinite(x) else None


def _percentiles(values: list[float]) -> dict[int, float]:
    arr = np.array(values, dtype=np.float64)
    # Interpolating between two infinite ratios gives inf - inf = nan: the value is inf.
    with np.errstate(invalid="ignore"):
        got = {p: float(np.percentile(arr, p)) for p in PERCENTILES}
    return {p: math.inf if math.isnan(v) else v for p, v in got.items()}


def common_algorithms(results: list[Result], wanted: list[str] | None = None) -> list[str]:
    """Algorithms every result measured (in first-seen order), or ``wanted`` checked."""
    seen: list[str] = []
    for r in results:
        seen += [a for a in r.algos if a not in seen]
    if wanted:
        for a in wanted:
            lacking = [r.name for r in results if a not in r.algos]
            if lacking:
                raise InputError(f"--algo {a}: not measured by {', '.join(lacking[:5])}")
        return list(wanted)
    common = [a for a in seen if all(a in r.algos for r in results)]
    if not common:
        raise InputError("no algorithm was measured by every result: estimate with a common --algo")
    return common


def _total(results: list[Result], algo: str, wins: int) -> AlgoTotal:
    rs = [r.algos[algo] for r in results]
    zswap = [a.zswap_pool_bytes for a in rs]
    return AlgoTotal(
        algo=algo,
        orig_bytes=sum(a.orig_bytes for a in rs),
        compr_bytes=sum(a.compr_bytes for a in rs),
        mem_used=sum(a.mem_used for a in rs),
        mem_used_after_compact=sum(a.mem_used_after_compact for a in rs),
        huge_pages=sum(a.huge_pages for a in rs),
        same_pages=sum(a.same_pages for a in rs),
        metadata_bytes=sum(a.metadata_bytes for a in rs),
        zswap_pool_bytes=None if None in zswap else sum(z for z in zswap if z is not None),
        kernel_exact=all(a.kernel_exact for a in rs),
        wins=wins,
        effective=_percentiles([a.effective_ratio for a in rs]),
        compression=_percentiles([a.compression_ratio for a in rs]),
    )


def recommend(results: list[Result], algo: str, headroom: float) -> Recommendation:
    """disksize and mem_limit for ``algo``, with the argument in words (see the module)."""
    largest = max(results, key=lambda r: r.algos[algo].orig_bytes)
    orig = largest.algos[algo].orig_bytes
    disksize = max(MIB, -(-math.ceil(orig * (1 + headroom)) // MIB) * MIB)
    # The most RAM per stored byte (the lowest effective ratio) among the results.
    worst = min(results, key=lambda r: r.algos[algo].effective_ratio)
    w = worst.algos[algo]
    ram_per_byte = w.mem_used / w.orig_bytes if w.orig_bytes else 1.0
    mem_limit = max(MIB, -(-math.ceil(disksize * ram_per_byte) // MIB) * MIB)
    median = float(np.median([r.algos[algo].effective_ratio for r in results]))
    slot_table = disksize // results[0].page_size * SLOT_TABLE_ENTRY
    reasons = [
        f"{algo} takes the least RAM over the fleet's measured pages (see the totals).",
        f"disksize {sysfs_size(disksize)}: the largest input one result measured is "
        f"{human(orig)} ({largest.name}); plus {headroom:.0%} headroom, rounded up to a MiB. "
        "disksize bounds the uncompressed data the device accepts.",
        f"mem_limit {sysfs_size(mem_limit)}: the least compressible result, {worst.name}, "
        f"needs {ram_per_byte:.3f} bytes of RAM per byte stored with {algo} (effective ratio "
        f"{w.effective_ratio:.2f}x); a device filled to disksize with pages like its would "
        f"take {human(disksize * ram_per_byte)}. The median result ({median:.2f}x) would "
        f"take {human(disksize / median)}.",
        "Past mem_limit zram refuses the write (-ENOMEM): the page stays in RAM or goes to "
        "the next swap device, so the limit bounds zram's RAM, never the data's safety.",
        f"Not counted by mem_limit: zram's slot table, {SLOT_TABLE_ENTRY} B per disksize "
        f"page ({human(slot_table)} at this disksize), and zsmalloc's slab objects for "
        "handles and zspages (per result in the tables, approximate).",
    ]
    return Recommendation(algo, disksize, mem_limit, reasons)


def build_fleet(
    results: list[Result], *, headroom: float = DEFAULT_HEADROOM, algos: list[str] | None = None
) -> Fleet:
    """Merge the results into the fleet's figures."""
    if not results:
        raise InputError("no result to report on")
    if not 0 <= headroom <= 10:
        raise InputError(f"headroom: expected 0 to 1000 %, found {headroom:.0%}")
    names = common_algorithms(results, algos)
    best_per = [min(names, key=lambda a: r.algos[a].mem_used) for r in results]
    totals = {a: _total(results, a, best_per.count(a)) for a in names}
    best = min(names, key=lambda a: totals[a].mem_used)
    notes = []
    skipped = sorted({a for r in results for a in r.algos} - set(names))
    if skipped:
        notes.append(f"not compared, as not every result measured them: {', '.join(skipped)}")
    approx = [a for a in names if not totals[a].kernel_exact]
    if approx:
        notes.append(
            f"approximate for {', '.join(approx)}: library compressors, whose lengths may "
            "differ slightly from the kernel's (lzo, lzo-rle and lz4 are exact)"
        )
    for what, get in (
        ("page sizes", lambda r: r.page_size),
        ("chain sizes", lambda r: r.chain_size),
        ("compression levels", lambda r: r.level),
    ):
        values = sorted({str(get(r)) for r in results})
        if len(values) > 1:
            notes.append(f"the results were estimated with different {what}: {', '.join(values)}")
    losing = [r.name for r in results if r.algos[best].effective_ratio < 1]
    if losing:
        notes.append(
            f"zram takes more RAM than the data itself with {best} on: {', '.join(losing)} "
            "(mostly incompressible pages): compressed swap does not pay off there"
        )
    cut = [r.name for r in results if r.interrupted]
    if cut:
        notes.append(f"interrupted estimates (partial figures): {', '.join(cut)}")
    rec = recommend(results, best, headroom)
    return Fleet(results, names, totals, best, rec, headroom, notes)
