"""A zram device with 16 and 64 KiB pages: the kernel's numbers, page for page.

The arm64 16 KiB guest (Debian 6.12) wrote the shared pages, read as 16 KiB pages,
to a fresh zram with lz4, lz4hc, zstd and deflate; the device model writing the same
bytes must end with the kernel's mm_stat.  No kernel with 64 KiB pages could be
booted: there the device must agree with ``estimate`` (the closed form on the same
compressors, whose 64 KiB lengths are checked in tests/compress/test_big_pages.py)
and read every page back.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from guest_traces import load_pages, read_fill_trace
from zsmalloc._jit import HAVE_NUMBA
from zsmalloc.estimate import estimate
from zsmalloc.profile import KernelProfile
from zsmalloc.zram.device import Zram

ARM64_BACKENDS = ("lz4", "lz4hc", "zstd", "deflate")  # comp_algorithm of the guest
# Without the JIT (CI's plain-Python run) the device on big pages is checked with lz4
# alone: lz4hc and deflate over megabytes take minutes as plain Python, and their
# plain-Python output is checked in tests/compress/test_pure_python_parity.py.
JIT_OFF_SKIP = "plain-Python lz4hc/deflate/lzo on MiBs of big pages take minutes"


@pytest.mark.parametrize("algo", ["lz4", "lz4hc", "deflate", "zstd"])
def test_16k_device_ends_with_the_kernels_mm_stat(algo: str, testdata: Path) -> None:
    if not HAVE_NUMBA and algo != "lz4":
        pytest.skip(JIT_OFF_SKIP)
    t = read_fill_trace(testdata / f"kernels/arm64-16k-6.12-shared16k-{algo}.trace.gz")
    pages = load_pages(testdata, t)
    z = Zram(profile=KernelProfile("6.12", 16384), backends=ARM64_BACKENDS)
    z.write_attr("comp_algorithm", algo)
    if algo == "zstd":
        from zsmalloc import compress

        if not compress.get("zstd", kernel="6.12", page_size=16384).kernel_exact:
            pytest.skip("the kernel's zstd (1.5.2) is not installed")
    z.write_attr("disksize", str(pages.size))
    z.write(0, pages.tobytes())
    assert list(z.mm_stat()) == t.final_mm_stat
    assert z.read(0, pages.size) == pages.tobytes()


@pytest.mark.parametrize("algo", ["lzo-rle", "deflate"])
def test_64k_device_agrees_with_estimate(algo: str, testdata: Path) -> None:
    if not HAVE_NUMBA:
        pytest.skip(JIT_OFF_SKIP)
    big = gzip.decompress((testdata / "kernels/userspace-bigpages.bin.gz").read_bytes())
    shared = gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())
    data = big + shared
    z = Zram(profile=KernelProfile("6.18", 65536), backends=("lzo-rle", "deflate"))
    z.write_attr("comp_algorithm", algo)
    z.write_attr("disksize", str(len(data)))
    z.write(0, data)
    rep = estimate(data, algos=[algo], page_size=65536)
    assert z.mm_stat() == rep.algos[algo].mm_stat
    assert z.read(0, len(data)) == data
    assert z.mm_stat().huge_pages == int(np.sum(rep.algos[algo].len_hist[rep.huge_class_size :]))
