"""``estimate`` against the running kernel: the same pages, our own zram device, every column.

``zsmalloc estimate`` predicts, without a device, the ``mm_stat`` a fresh
zram would show after the pages were written in order, and again after
``echo 1 > compact`` (:mod:`zsmalloc.estimate.fill`'s closed form).  This
check writes the same pages with O_DIRECT to a hot-added zram device
(:class:`~zsmalloc.live.zram.LiveZram`; with ``level``, lz4's acceleration
through ``algorithm_params``) and compares all nine columns at both points.

The tests run it on a small image of this machine's real data
(tests/kernel/test_estimate_live.py); bench/estimate_vs_kernel.py times the
same comparison on a large one, with ``dd`` writing the device.
"""

from __future__ import annotations

import time

import numpy as np

from zsmalloc.estimate.driver import run_estimate
from zsmalloc.estimate.report import build_report
from zsmalloc.estimate.sources import ArraySource
from zsmalloc.live.result import EXACT, Comparison, Progress, VerifyResult, compare_rows
from zsmalloc.live.zram import PAGE_SIZE, LiveZram
from zsmalloc.zram.stats import MM_STAT_COLUMNS, MmStat


def estimate_mm_stat(
    pages: np.ndarray, algorithm: str, level: int | None = None
) -> tuple[MmStat, MmStat]:
    """What ``zsmalloc estimate`` says: mm_stat after the writes, and after compaction."""
    report = build_report(run_estimate([ArraySource(pages, PAGE_SIZE)], [algorithm], level=level))
    est = report.algos[algorithm]
    return MmStat(*est.mm_stat), MmStat(*est.mm_stat_after_compact)


def verify_estimate(
    pages: np.ndarray,
    algorithm: str,
    level: int | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """Estimate ``pages`` (n x 4096 bytes), write them to a live zram device, compare mm_stat.

    Raises KernelUnavailableError (no root, no zram) after the estimate,
    before any device is made.
    """
    what = f"estimate {algorithm}" + (f" level {level}" if level is not None else "")
    t0 = time.perf_counter()
    if progress is not None:
        progress(f"{what}: estimating", 0, None)
    written, compacted = estimate_mm_stat(pages, algorithm, level)
    result = VerifyResult("estimate", algorithm, len(pages), counts={"write": len(pages)})
    params = None if level is None else f"algo={algorithm} level={level}"
    with LiveZram(
        algorithm=algorithm, disksize=len(pages) * PAGE_SIZE, algorithm_params=params
    ) as z:
        result.device = z.name
        if progress is not None:
            progress(f"{what}: writing {z.path}", 0, None)
        z.write_pages(pages)
        after_writes = z.mm_stat()
        z.compact()
        after_compact = z.mm_stat()
    result.counts["compact"] = 1
    for phase, kernel, model in (
        ("writes", after_writes, written),
        ("compaction", after_compact, compacted),
    ):
        result.comparisons += [
            Comparison(name, k, m, EXACT, phase)
            for name, k, m in zip(MM_STAT_COLUMNS, kernel, model, strict=True)
        ]
        result.divergence = result.divergence or compare_rows(
            f"after the {phase}", "mm_stat", kernel, model
        )
    result.seconds = time.perf_counter() - t0
    return result
