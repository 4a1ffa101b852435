"""Throughput of the kernel-exact compressors against C libraries, in one run.

For each of lzo, lzo-rle, lz4, lz4hc (level 9), deflate (level 6, 2 KiB window)
and zstd (level 3, through zstandard) it prints MB/s (10^6 bytes of input per second,
best of ``--repeat`` runs, wall clock) for:

- ``page bytes``: one ``compress(page)`` call per page (real output);
- ``page len``: one ``compressed_len(page)`` call per page;
- ``batch len``: ``compress_lengths(pages)`` (all cores, lengths only);
- ``batch stored``: ``stored_sizes(pages)`` (zram's rule: same-filled pages skip
  compression, so this is the estimation path);
- ``batch bytes``: ``compress_pages(pages)`` (all cores, real output);

next to the C library of the same format called once per page on the same pages in
the same run (``C lib``, one thread), and the ratio of our ``batch len`` per thread
(divided by the threads the batch ran on: numba's rule, ``NUMBA_NUM_THREADS`` or the
CPUs, for numba, the native loop and zstd alike) to it, ``per core/C``:
``lz4.block.compress`` (LZ4 1.10 fast) for lzo, lzo-rle and lz4, python-lzo's
``lzo.compress`` (liblzo2 lzo1x_1) beside them when installed, ``lz4.block`` in
high-compression mode 9 for lz4hc (a newer HC than the kernel's, the same work),
``zlib.compressobj(6, DEFLATED, -11, 8)`` for deflate (stock zlib; on 4 KiB pages
the kernel's output), and ``zstandard`` itself for zstd (ours is that library, with
the kernel's parameters).  With ``--kernel-lib`` (the kernel's own lib/lzo, lib/lz4
and lib/zlib_deflate built in user space by ``tools/kernel-lib/build.sh``) a last
column gives our ``batch len`` per thread against that code, one page per call.
Pages: ``tests/data/shared_pages.bin.gz`` (text, ELF, heap, integers, random,
same-filled...) repeated to ``--pages``; ``--page-size`` reads them as 16 or 64 KiB
pages.

    .venv/bin/python bench/compress.py --pages 8192 --repeat 5
    NUMBA_NUM_THREADS=1 .venv/bin/python bench/compress.py   # one core each
    tools/kernel-lib/build.sh SRC /tmp/k.so   # a kernel tree, then:
    .venv/bin/python bench/compress.py --kernel-lib /tmp/k.so
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
from collections.abc import Callable

import numpy as np

from zsmalloc import compress
from zsmalloc._jit import thread_count
from zsmalloc.testing.shared import testdata_dir


def load_pages(n: int, page_size: int = 4096) -> np.ndarray:
    d = testdata_dir()
    if d is not None:
        raw = gzip.decompress((d / "shared_pages.bin.gz").read_bytes())
        base = np.frombuffer(raw, dtype=np.uint8).reshape(-1, page_size)
    else:  # a crude mix when shared/ is absent
        rng = np.random.default_rng(0)
        base = rng.integers(0, 8, (1024 * 4096 // page_size, page_size), dtype=np.uint8)
        base[::4] = rng.integers(0, 256, base[::4].shape, dtype=np.uint8)
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
    ap.add_argument("--page-size", type=int, default=4096, choices=(4096, 16384, 65536))
    ap.add_argument("--kernel-lib", help="libkernel-lib.so from tools/kernel-lib/build.sh")
    args = ap.parse_args()

    ps = args.page_size
    pages = load_pages(args.pages, ps)
    blobs = [p.tobytes() for p in pages]
    nbytes = pages.size
    threads = thread_count()
    print(
        f"{pages.shape[0]} pages ({nbytes / 2**20:.0f} MiB), best of {args.repeat}; "
        f"{os.cpu_count()} CPUs, {threads} threads per batch; MB/s of input; load average "
        f"{os.getloadavg()[0]:.1f}"
    )

    import zlib

    import lz4.block

    c_libs: dict[str, tuple[str, Callable[[], object]]] = {
        "lz4": ("lz4.block", lambda: [lz4.block.compress(b, store_size=False) for b in blobs]),
        "lz4hc": (
            "lz4.block HC 9",
            lambda: [
                lz4.block.compress(b, mode="high_compression", compression=9, store_size=False)
                for b in blobs
            ],
        ),
        "deflate": ("zlib 6, -11", lambda: [_zlib(zlib, b) for b in blobs]),
    }
    import zstandard

    cctx = zstandard.ZstdCompressor(level=3, write_content_size=True, write_checksum=False)
    c_libs["zstd"] = ("zstandard 3", lambda: [cctx.compress(b) for b in blobs])
    for algo in ("lzo", "lzo-rle"):
        c_libs[algo] = c_libs["lz4"]
    jobs: dict[str, Callable[[], object]] = {name: fn for name, fn in c_libs.values()}
    try:
        import lzo

        jobs["python-lzo lzo1x_1"] = lambda: [lzo.compress(b, 1, False) for b in blobs]
    except ImportError:
        pass

    kernel_jobs = _kernel_lib_jobs(args.kernel_lib, pages) if args.kernel_lib else {}
    jobs.update(kernel_jobs)
    cols = ["page bytes", "page len", "batch len", "batch stored", "batch bytes"]
    algos = [*compress.KERNEL_EXACT, "zstd"]
    for algo in algos:
        b = compress.get(algo, page_size=ps)
        b.compress(blobs[0])  # compile / load the cache outside the timing
        b.compress_lengths(pages[:64])
        b.stored_sizes(pages[:64])
        b.compress_pages(pages[:64])
        jobs[f"{algo}/page bytes"] = lambda b=b: [b.compress(x) for x in blobs]
        jobs[f"{algo}/page len"] = lambda b=b: [b.compressed_len(x) for x in blobs]
        jobs[f"{algo}/batch len"] = lambda b=b: b.compress_lengths(pages)
        jobs[f"{algo}/batch stored"] = lambda b=b: b.stored_sizes(pages)
        jobs[f"{algo}/batch bytes"] = lambda b=b: b.compress_pages(pages)

    rate = {k: nbytes / t / 1e6 for k, t in best_times(jobs, args.repeat).items()}
    print(
        f"{'algorithm':<10}"
        + "".join(f"{c:>14}" for c in cols)
        + f"{'C lib':>16}{'MB/s':>8}{'per core/C':>11}"
        + (f"{'kernel C':>9}{'per core/kC':>12}" if kernel_jobs else "")
    )

    def kernel_cell(algo: str) -> str:
        return _kernel_column(rate.get(f"kernel {algo}"), rate[f"{algo}/batch len"] / threads)

    for algo in algos:
        figures = [rate[f"{algo}/{c}"] for c in cols]
        lib, _ = c_libs[algo]
        print(
            f"{algo:<10}"
            + "".join(f"{f:>14.0f}" for f in figures)
            + f"{lib:>16}{rate[lib]:>8.0f}{figures[2] / threads / rate[lib]:>10.2f}x"
            + (kernel_cell(algo) if kernel_jobs else "")
        )
    if "python-lzo lzo1x_1" in rate:
        print(f"{'python-lzo lzo1x_1 (C, 1 thread)':<36}{rate['python-lzo lzo1x_1']:>10.0f}")


def _kernel_column(kernel: float | None, ours_per_core: float) -> str:
    if kernel is None:  # zstd: the kernel's lib/zstd is not part of tools/kernel-lib
        return f"{'-':>9}{'-':>12}"
    return f"{kernel:>9.0f}{ours_per_core / kernel:>11.2f}x"


def _kernel_lib_jobs(path: str, pages: np.ndarray) -> dict[str, Callable[[], object]]:
    """The kernel's compressors (tools/kernel-lib/wrap.c), one ctypes call per page."""
    import ctypes

    lib = ctypes.CDLL(path)
    n, ps = pages.shape
    dst = ctypes.create_string_buffer(2 * ps)
    base = pages.ctypes.data
    calls: dict[str, tuple[Callable[..., int], tuple[int, ...]]] = {
        "lzo": (lib.k_lzo, (0,)),
        "lzo-rle": (lib.k_lzo, (1,)),
        "lz4": (lib.k_lz4, (1,)),
        "lz4hc": (lib.k_lz4hc, (9,)),
        "deflate": (lib.k_deflate, (6, 11)),
    }
    for fn, _ in calls.values():
        fn.restype = ctypes.c_int
    ptr = ctypes.c_void_p

    def job(fn: Callable[..., int], extra: tuple[int, ...]) -> Callable[[], object]:
        return lambda: [fn(ptr(base + i * ps), ps, dst, *extra) for i in range(n)]

    return {f"kernel {algo}": job(fn, extra) for algo, (fn, extra) in calls.items()}


def _zlib(zlib: object, b: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -11, 8)  # type: ignore[attr-defined]
    return c.compress(b) + c.flush()  # type: ignore[no-any-return]


if __name__ == "__main__":
    main()
