"""zram's interface per kernel (profile rows), as the kernels showed it.

Expected values come from Debian's kernels booted in guests (their attribute lists and
stat files are in tests/data/guest and tests/data/kernels) and, where a guest run does
not reach, from their zram_drv.c (Debian source packages 6.1.176, 6.12.117, 7.2.13,
7.3.4; docs/kernels.md).
"""

from __future__ import annotations

import errno

import pytest

from zsmalloc.errors import SysfsError
from zsmalloc.profile import KernelProfile
from zsmalloc.zram.device import Zram

DEBIAN_61 = """CONFIG_ZRAM=m
CONFIG_ZRAM_DEF_COMP="lzo-rle"
CONFIG_ZRAM_WRITEBACK=y
CONFIG_CRYPTO_DEFLATE=y
CONFIG_CRYPTO_LZO=y
CONFIG_CRYPTO_LZ4=m
CONFIG_CRYPTO_LZ4HC=m
CONFIG_CRYPTO_ZSTD=m
"""
DEBIAN_612 = """CONFIG_ZRAM_BACKEND_LZ4=y
CONFIG_ZRAM_BACKEND_LZ4HC=y
CONFIG_ZRAM_BACKEND_ZSTD=y
CONFIG_ZRAM_BACKEND_DEFLATE=y
# CONFIG_ZRAM_BACKEND_842 is not set
# CONFIG_ZRAM_BACKEND_LZO is not set
CONFIG_ZRAM_DEF_COMP="lz4"
CONFIG_ZRAM_WRITEBACK=y
CONFIG_ZRAM_TRACK_ENTRY_ACTIME=y
# CONFIG_ZRAM_MULTI_COMP is not set
"""


def device(version: str, config: str = DEBIAN_612) -> Zram:
    return Zram.from_kernel_config(config, KernelProfile(version))


def errno_of(z: Zram, attr: str, value: str) -> int:
    with pytest.raises(SysfsError) as e:
        z.write_attr(attr, value)
    assert e.value.errno is not None
    return e.value.errno


def test_61_crypto_api() -> None:
    z = device("6.1", DEBIAN_61)
    # the guest's fresh device: "lzo [lzo-rle] lz4 lz4hc zstd" (crypto table order)
    assert z.read_attr("comp_algorithm") == "lzo [lzo-rle] lz4 lz4hc zstd \n"
    z.write_attr("comp_algorithm", "deflate\n")  # any crypto compressor of the build
    assert z.read_attr("comp_algorithm") == "lzo lzo-rle lz4 lz4hc zstd [deflate] \n"
    assert errno_of(z, "comp_algorithm", "842") == errno.EINVAL
    # strscpy into char[CRYPTO_MAX_ALG_NAME]: a long name is cut, then unknown: EINVAL
    assert errno_of(z, "comp_algorithm", "x" * 300) == errno.EINVAL
    assert errno_of(z, "algorithm_params", "level=1") == errno.ENOENT
    assert "algorithm_params" not in z.attributes()


def test_61_stat_files() -> None:
    z = device("6.1", DEBIAN_61)
    z.write_attr("disksize", "1M")
    assert z.read_attr("io_stat") == "       0        0        0        0\n"
    assert z.read_attr("debug_stat") == "version: 1\n       0        0\n"


@pytest.mark.parametrize(
    ("version", "io_third", "debug_first", "max_comp_streams"),
    [
        ("6.1", "       0", "       0", True),
        ("6.6", "0", "       0", True),
        ("6.12", "0", "       0", True),
        ("6.16", "0", "0", False),
        ("6.18", "0", "0", False),
        ("7.3", "0", "0", False),
    ],
)
def test_formats_and_max_comp_streams(
    version: str, io_third: str, debug_first: str, max_comp_streams: bool
) -> None:
    z = device(version, DEBIAN_61 if version in ("6.1", "6.6") else DEBIAN_612)
    assert z.read_attr("io_stat") == f"       0        0 {io_third}        0\n"
    assert z.read_attr("debug_stat") == f"version: 1\n{debug_first}        0\n"
    assert ("max_comp_streams" in z.attributes()) == max_comp_streams
    if max_comp_streams:  # shows num_online_cpus(), takes anything and ignores it
        z.write_attr("max_comp_streams", "banana")
        assert z.read_attr("max_comp_streams") == f"{z.nr_cpus}\n"


def test_612_backends_from_the_config() -> None:
    z = device("6.12")
    assert z.read_attr("comp_algorithm") == "[lz4] lz4hc zstd deflate \n"
    assert errno_of(z, "comp_algorithm", "lzo") == errno.EINVAL  # no lzo backend built
    assert "recompress" not in z.attributes() and "backing_dev" in z.attributes()
    z.write_attr("disksize", "1M")
    z.write_attr("algorithm_params", "level=3")  # 6.12..6.18: accepted after init too


def test_72_params_and_writeback_batching() -> None:
    z = device("7.2")
    assert z.read_attr("writeback_batch_size") == "32\n"
    assert z.read_attr("compressed_writeback") == "0\n"
    assert errno_of(z, "writeback_batch_size", "0") == errno.EINVAL
    z.write_attr("writeback_batch_size", "64")
    assert z.read_attr("writeback_batch_size") == "64\n"
    z.write_attr("compressed_writeback", "y")
    assert z.read_attr("compressed_writeback") == "1\n"
    # validate_algo_priority: both given, they must agree
    assert errno_of(z, "algorithm_params", "algo=zstd priority=0") == errno.EINVAL
    z.write_attr("algorithm_params", "algo=lz4 priority=0 level=2")
    z.write_attr("disksize", "1M")
    assert errno_of(z, "algorithm_params", "level=3") == errno.EBUSY
    assert errno_of(z, "algorithm_params", "level=x") == errno.EINVAL  # parsed first
    assert errno_of(z, "compressed_writeback", "0") == errno.EBUSY
    assert "writeback_batch_size" not in device("6.18").attributes()


def test_winbits_is_an_unknown_key_before_616() -> None:
    z = device("6.12")
    z.write_attr("comp_algorithm", "deflate")
    z.write_attr("algorithm_params", "deflate.winbits=15")
    assert z.params[0].winbits is None
    z = device("6.18")
    z.write_attr("comp_algorithm", "deflate")
    z.write_attr("algorithm_params", "deflate.winbits=15")
    assert z.params[0].winbits == 15
