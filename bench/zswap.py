"""Store-only zswap: the model's speed next to the kernel's, measured in the same run.

Usage::

    python bench/zswap.py [--pages 50000] [--algo lzo] [--seed 1]

The workload is ``zsmalloc verify --zswap``'s (:func:`zsmalloc.live.workload.zswap_pages`),
the kernel side its harness (:class:`zsmalloc.live.zswap.LiveZswap`).
Printed, in pages per second:

* kernel: the running kernel's zswap taking the pages (a holder process pages
  them out with MADV_PAGEOUT: pipe, page faults, reclaim, compression,
  zs_malloc); root only, skipped otherwise;
* model: compressed lengths (batch) plus one ``Zswap.store`` per page on the
  package's zsmalloc Pool (the full rule engine, as ``zswap replay`` runs it);
* estimate: ``estimate_zswap`` (batch lengths plus the closed-form pool size);

and each model figure as a ratio to the kernel's.  The counters of all three
are printed too, and compared with the kernel's; they must agree.
"""

from __future__ import annotations

import argparse
import time

from zsmalloc.errors import KernelUnavailableError
from zsmalloc.live.result import compare_rows
from zsmalloc.live.workload import testdata_pages, zswap_pages
from zsmalloc.live.zswap import LiveZswap, totalram_pages
from zsmalloc.zswap.compression import page_clens
from zsmalloc.zswap.estimate import estimate_zswap
from zsmalloc.zswap.params import ZswapParams
from zsmalloc.zswap.zswap import Zswap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=50000)
    ap.add_argument("--algo", default="lzo")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    pages = zswap_pages(args.pages, args.seed, testdata_pages())
    n = args.pages

    estimate_zswap(pages[: 64 * 4096], compressor=args.algo)  # warm up numba
    t = time.perf_counter()
    z = Zswap(totalram_pages(), ZswapParams(enabled=True, compressor=args.algo))
    for off, c in enumerate(page_clens(pages, args.algo)):
        z.store(off, clen=c)
    model_s = time.perf_counter() - t
    md = z.debugfs()

    t = time.perf_counter()
    e = estimate_zswap(pages, compressor=args.algo)
    est_s = time.perf_counter() - t

    kernel_s = None
    try:
        with LiveZswap(compressor=args.algo, swap_size=(n + 1024) * 4096) as live:
            t = time.perf_counter()
            left = live.hold(pages)
            kernel_s = time.perf_counter() - t
            kd = live.counters()
        if left or live.undo_errors:
            print(f"kernel: {left} pages left resident; restore errors {live.undo_errors}")
    except KernelUnavailableError as exc:  # no root, no zswap: model figures only
        print(f"kernel: not measured ({exc})")

    def row(name: str, secs: float, stored: int, size: int) -> None:
        ratio = f"  {kernel_s / secs:6.2f}x kernel speed" if kernel_s and name != "kernel" else ""
        print(f"{name:<9}{n / secs:>12,.0f} pages/s   stored {stored}  pool {size}{ratio}")

    if kernel_s:
        row("kernel", kernel_s, kd["stored_pages"], kd["pool_total_size"])
    row("model", model_s, md["stored_pages"], md["pool_total_size"])
    row("estimate", est_s, e.stored_pages, e.pool_total_size)
    if kernel_s:
        columns = ("stored_pages", "stored_incompressible_pages", "pool_total_size")
        for name, got in (
            ("model", tuple(md[c] for c in columns)),
            ("estimate", (e.stored_pages, e.stored_incompressible_pages, e.pool_total_size)),
        ):
            div = compare_rows(
                f"{name} vs kernel", "debugfs", [kd[c] for c in columns], got, columns
            )
            print(f"{name}: counters {'equal' if div is None else 'DIFFER: ' + str(div.to_dict())}")


if __name__ == "__main__":
    main()
