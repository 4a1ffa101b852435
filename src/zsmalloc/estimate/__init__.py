"""What zram would really take for real data: ``zsmalloc estimate`` as a library.

Module map: ``sources`` (files, images, directories, core dumps, pages in
memory), ``process`` (live processes: the pages swap could take, by the rules
of ``swappable``), ``swap`` (zram as a swap or a block device: the swap zero
map, per folio), ``sample`` (the built-in sample and the
real-data mix used by live checks), ``driver`` (one streaming pass: compress
on every core, tally lengths), ``fill`` (the closed-form zram + zsmalloc
state after a sequential fill), ``report``/``render``/``plot`` (figures, text,
PNG), ``verify`` (replay through the full step-by-step model).

>>> rep = estimate("disk.img", algos=["lz4", "zstd"], kernel="6.12")  # doctest: +SKIP
>>> rep.algos["lz4"].mm_stat                              # doctest: +SKIP
[67108864, 32586690, 34140160, 0, 34140160, 912, 0, 2710, 2710]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zsmalloc.estimate.report import Report


def estimate(
    *sources: str | os.PathLike[str] | bytes | memoryview,
    pids: Sequence[int] = (),
    algos: Sequence[str] = ("lzo-rle", "lz4"),
    chain_size: int = 8,
    kernel: str | None = None,
    level: int | None = None,
    page_size: int = 4096,
    winbits: int | None = None,
) -> Report:
    """Estimate zram's ``mm_stat`` for paths (files, images, directories, cores),
    in-memory pages (bytes-like, whole pages) and live processes.

    ``kernel`` (a version such as "6.12" or a release; default 6.18) picks the zram
    modelled, with its compressors and class table; ``level`` and ``winbits`` are its
    ``algorithm_params level=`` and ``deflate.winbits=``; ``page_size`` its PAGE_SIZE.

    Paths and pages are written to zram as a block device; processes are swapped
    out to zram as swap (that kernel's swap layer: from 6.12 zero-filled folios stay in
    the swap zero map).  ``Report.tally.rules`` says which.
    """
    from zsmalloc.estimate.driver import run_estimate
    from zsmalloc.estimate.process import ProcessSource
    from zsmalloc.estimate.report import build_report
    from zsmalloc.estimate.sources import ArraySource, PageSource, open_path
    from zsmalloc.estimate.swap import SWAP, SwapRules
    from zsmalloc.profile import DEFAULT_VERSION, KernelProfile, kernel_version

    version = kernel_version(DEFAULT_VERSION if kernel is None else kernel)
    as_swap = SwapRules(SWAP, KernelProfile(version, page_size, chain_size))
    srcs: list[PageSource] = []
    try:
        for s in sources:
            if isinstance(s, str | os.PathLike):
                srcs.append(open_path(s, page_size))
            else:
                srcs.append(ArraySource(s, page_size))
        srcs += [ProcessSource(pid, page_size, rules=as_swap) for pid in pids]
    except BaseException:
        for src in srcs:
            src.close()
        raise
    tally = run_estimate(
        srcs, algos, page_size=page_size, level=level, kernel=version, winbits=winbits
    )
    return build_report(tally, chain_size, kernel=version)


__all__ = ["estimate"]
