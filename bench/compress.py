"""Throughput of the kernel-exact compressors against C libraries, in one run.

For each of lzo, lzo-rle and lz4 it prints MB/s (10^6 bytes of input per
second, best of ``--repeat`` runs, wall clock) for:

- ``page bytes``: one ``compress(page)`` call per page (real output);
- ``page len``: one ``compressed_len(page)`` call per page;
- ``batch len``: ``compress_lengths(pages)`` (all cores, lengths only);
- ``batch stored``: ``stored_sizes(pages)`` (zram's rule: same-filled pages skip
  compression, so this is the estimation path);
- ``batch bytes``: ``compress_pages(pages)`` (all cores, real output);

next to the C libraries called once per page on the same pages in the same
run: ``lz4.block.compress`` (LZ4 1.9.x, single-threaded) and python-lzo's
``lzo.compress`` (liblzo2 lzo1x_1), and the ratio of our batch figure to
``lz4.block``.  Pages: ``tests/data/shared_pages.bin.gz`` (text, ELF, heap,
integers, random, same-filled...) repeated to ``--pages``.

    /work/venv/bin/python bench/compress.py --pages 8192 --repeat 5
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
from collections.abc import Callable

import numpy as np

from zsmalloc import compress
from zsmalloc.testing.shared import testdata_dir


def load_pages(n: int) -> np.ndarray:
    d = testdata_dir()
    if d is not None:
        raw = gzip.decompress((d / "shared_pages.bin.gz").read_bytes())
        base = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 4096)
    else:  # a crude mix when shared/ is absent
        rng = np.random.default_rng(0)
        base = rng.integers(0, 8, (1024, 4096), dtype=np.uint8)
        base[::4] = rng.integers(0, 256, (256, 4096), dtype=np.uint8)
    reps = -(-n // base.shape[0])
    return np.ascontiguousarray(np.tile(base, (reps, 1))[:n])


def best_times(jobs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall time of each job; the jobs take turns, so all see the same machine load."""
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(repeat):
        for name, fn in jobs.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pages", type=int, default=8192)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    pages = load_pages(args.pages)
    blobs = [p.tobytes() for p in pages]
    nbytes = pages.size
    try:
        import numba

        threads = numba.get_num_threads()
    except ImportError:
        threads = 1
    print(
        f"{pages.shape[0]} pages ({nbytes / 2**20:.0f} MiB), best of {args.repeat}; "
        f"{os.cpu_count()} CPUs, {threads} numba threads; MB/s of input; load average "
        f"{os.getloadavg()[0]:.1f}"
    )

    import lz4.block

    jobs: dict[str, Callable[[], object]] = {
        "lz4.block.compress (C, 1 thread)": lambda: [
            lz4.block.compress(b, store_size=False) for b in blobs
        ],
    }
    try:
        import lzo

        jobs["python-lzo compress (C, 1 thread)"] = lambda: [
            lzo.compress(b, 1, False) for b in blobs
        ]
    except ImportError:
        pass

    cols = ["page bytes", "page len", "batch len", "batch stored", "batch bytes"]
    for algo in compress.KERNEL_EXACT:
        b = compress.get(algo)
        b.compress(blobs[0])  # compile / load the cache outside the timing
        compress.compress_lengths(pages[:64], algo)
        compress.stored_sizes(pages[:64], algo)
        compress.compress_pages(pages[:64], algo)
        jobs[f"{algo}/page bytes"] = lambda b=b: [b.compress(x) for x in blobs]
        jobs[f"{algo}/page len"] = lambda b=b: [b.compressed_len(x) for x in blobs]
        jobs[f"{algo}/batch len"] = lambda a=algo: compress.compress_lengths(pages, a)
        jobs[f"{algo}/batch stored"] = lambda a=algo: compress.stored_sizes(pages, a)
        jobs[f"{algo}/batch bytes"] = lambda a=algo: compress.compress_pages(pages, a)

    rate = {k: nbytes / t / 1e6 for k, t in best_times(jobs, args.repeat).items()}
    c_lz4 = rate["lz4.block.compress (C, 1 thread)"]
    print(f"{'algorithm':<10}" + "".join(f"{c:>14}" for c in cols) + f"{'batch/lz4.block':>17}")
    for algo in compress.KERNEL_EXACT:
        figures = [rate[f"{algo}/{c}"] for c in cols]
        print(
            f"{algo:<10}"
            + "".join(f"{f:>14.0f}" for f in figures)
            + f"{figures[2] / c_lz4:>16.2f}x"
        )
    for name in jobs:
        if "/" not in name:
            print(f"{name:<36}{rate[name]:>10.0f}")


if __name__ == "__main__":
    main()
