"""Which compressors each kernel's zram runs, and how zstd versions are found.

Ground truth: the kernel sources (Debian linux-source-6.1/6.12/7.2/7.3: zstd_lib.h,
drivers/block/zram/backend_*.c, crypto/*.c) and the guest traces: a level on a
kernel before 6.12 has nowhere to go (no algorithm_params), 7.3 refuses levels out of
range at disksize where 7.2 clamps them, deflate.winbits exists from about 6.16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsmalloc import compress
from zsmalloc.compress import zstd as zstd_lib
from zsmalloc.errors import InputError, UnknownAlgorithmError, UnknownKernelError
from zsmalloc.profile import profile_for_release


@pytest.mark.parametrize(
    ("release", "row", "zstd", "params"),
    [
        ("6.1.0-57-amd64", "6.1", (1, 4, 10), False),
        ("6.1", "6.1", (1, 4, 10), False),
        ("6.8.0-45-generic", "6.6", (1, 5, 2), False),
        ("6.12.118+deb13-arm64-16k", "6.12", (1, 5, 2), True),
        ("6.17.1", "6.17", (1, 5, 7), True),
        ("6.18.44-fc-v595", "6.18", (1, 5, 7), True),
        ("7.2.13+deb14-amd64", "7.2", (1, 5, 7), True),
        ("7.3.4", "7.3", (1, 5, 7), True),
        ("8.0", "7.3", (1, 5, 7), True),
    ],
)
def test_each_kernel_has_its_compressors(release: str, row: str, zstd: tuple, params: bool) -> None:
    """The zstd_lib.h versions of Debian's source packages; algorithm_params from 6.12."""
    p = profile_for_release(release)
    assert (p.version, p.zstd_version) == (row, zstd)
    assert (p.zram_compressors == "backends") == params
    b = compress.get("zstd", kernel=release)
    assert b.kernel == row
    assert b.describe()["zstd_version"] == ".".join(map(str, zstd))


def test_older_kernels_and_garbage_are_refused() -> None:
    with pytest.raises(UnknownKernelError, match="older than every known"):
        compress.get("lz4", kernel="5.15.0")
    with pytest.raises(UnknownKernelError, match="expected a kernel version"):
        compress.get("lz4", kernel="linux")


def test_crypto_api_kernels_take_no_level() -> None:
    for kernel in ("6.1", "6.6"):
        for algo in compress.ALGORITHMS:
            compress.get(algo, kernel=kernel)
            with pytest.raises(InputError, match="no algorithm_params"):
                compress.get(algo, 1, kernel=kernel)


def test_level_checks_follow_the_kernel() -> None:
    # 7.2 clamps (LZ4HC_compress_generic: > 16 is 16; ZSTD_getParams: > 22 is 22) ...
    hc17 = compress.get("lz4hc", 17, kernel="7.2")
    hc16 = compress.get("lz4hc", 16, kernel="7.2")
    page = (np.arange(4096) % 251).astype(np.uint8).tobytes()
    assert hc17.compress(page) == hc16.compress(page)
    assert compress.get("zstd", 40, kernel="7.2").compress(page) == compress.get(
        "zstd", 22, kernel="7.2"
    ).compress(page)
    # ... 7.3 refuses them at disksize
    for algo, level in (("lz4hc", 17), ("lz4hc", 0), ("zstd", 23)):
        with pytest.raises(InputError, match="refuses level"):
            compress.get(algo, level, kernel="7.3")
    # zlib_deflateInit2() refuses a level above 9 on every kernel
    with pytest.raises(InputError, match=r"level must be -1 \.\. 9"):
        compress.get("deflate", 10, kernel="7.2")


def test_deflate_winbits() -> None:
    with pytest.raises(InputError, match=r"no algorithm_params deflate\.winbits"):
        compress.get("deflate", winbits=-15, kernel="6.12")
    for bad in (-16, -8, 0, 8, 16):
        with pytest.raises(InputError, match="winbits must be"):
            compress.get("deflate", winbits=bad, kernel="7.2")
    with pytest.raises(InputError, match="deflate parameter"):
        compress.get("lz4", winbits=15, kernel="7.2")
    page = (np.arange(4096) % 7).astype(np.uint8).tobytes()
    raw = compress.get("deflate", winbits=-15, kernel="7.2").compress(page)
    wrapped = compress.get("deflate", winbits=15, kernel="7.2").compress(page)
    assert len(wrapped) == len(raw) + 6  # zlib header and Adler-32
    assert compress.get("deflate", winbits=15, kernel="7.2").decompress(wrapped) == page


def test_bad_names_and_page_sizes() -> None:
    with pytest.raises(UnknownAlgorithmError, match="842: not supported"):
        compress.get("842")
    with pytest.raises(compress.registry.InvalidSizeError, match="page size must be one of"):
        compress.get("lz4", page_size=8192)


def test_zstd_without_the_kernels_version_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty version directory: only the installed zstandard (1.5.7) is there."""
    monkeypatch.setenv(zstd_lib.ZSTD_DIR_ENV, str(tmp_path))
    zstd_lib.rescan()
    try:
        exact = compress.get("zstd", kernel="7.2")
        assert exact.kernel_exact and exact.approximate is None
        for kernel, want, release in (("6.12", "1.5.2", "0.19.0"), ("6.1", "1.4.10", "0.15.2")):
            b = compress.get("zstd", kernel=kernel)
            assert not b.kernel_exact
            assert f"Linux {kernel} carries zstd {want}" in (b.approximate or "")
            assert b.exact_command is not None
            assert b.exact_command.startswith(f"pip install --target {tmp_path}/")
            assert b.exact_command.endswith(f"zstandard=={release}")
            # still a working compressor, only not the kernel's lengths
            page = (np.arange(4096) % 13).astype(np.uint8).tobytes()
            assert b.decompress(b.compress(page)) == page
    finally:
        monkeypatch.delenv(zstd_lib.ZSTD_DIR_ENV)
        zstd_lib.rescan()


def test_crypto_zstd_is_level_3_for_an_unknown_size() -> None:
    """6.1/6.6 compress with the large-input level-3 row (dfast, windowLog 21), shrunk to
    the page; 6.12 and later with the level-3 row for a 4 KiB input.  Different frames."""
    rng = np.random.default_rng(1)
    words = rng.choice([b"zram ", b"zsmalloc ", b"class ", b"page ", b"\n"], 2000)
    page = b"".join(words)[:4096]
    crypto = compress.get("zstd", kernel="6.6")
    backend = compress.get("zstd", kernel="6.12")
    assert crypto.compress(page) != backend.compress(page)
    assert crypto.decompress(crypto.compress(page)) == page
