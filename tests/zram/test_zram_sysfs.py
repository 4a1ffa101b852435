"""sysfs attribute semantics, errno and text formats, as observed on the 6.18.44 kernel.

Expected values come from the reference kernel: spec zram.md §0.2 (live output
formats) and a probe of a fresh hot-added device (memparse bases, errnos);
tests/kernel/test_zram_live.py repeats the comparison live.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zsmalloc.errors import SysfsError
from zsmalloc.kparse import kstrtou16, kstrtoull, memparse
from zsmalloc.zram.device import Zram
from zsmalloc.zram.stats import IoStat, MmStat, format_debug_stat, new_stats

# spec zram.md §0.2: live output of the reference kernel
PAGE = 4096
LIVE_MM_STAT = (
    "268435456 163599349 166625280        0 166625280    10130        0    17709    17709\n"
)


def test_stat_formats_are_the_kernels() -> None:
    assert MmStat.parse(LIVE_MM_STAT).format() == LIVE_MM_STAT
    io = IoStat.from_stats(new_stats()).format()
    assert io == " " * 7 + "0" + " " * 8 + "0 0" + " " * 8 + "0\n"
    assert len(io) == 29
    assert format_debug_stat(new_stats()) == "version: 1\n0" + " " * 8 + "0\n"


def test_fresh_device_reads_like_a_hot_added_one() -> None:
    """Read on the reference kernel right after hot_add."""
    z = Zram()
    assert z.read_attr("comp_algorithm") == "[lzo-rle] lzo lz4 \n"
    assert z.read_attr("disksize") == "0\n"
    assert z.read_attr("initstate") == "0\n"
    assert z.read_attr("mm_stat") == "       0 " * 8 + "       0\n"
    assert z.read_attr("debug_stat") == "version: 1\n0        0\n"


def test_reference_attribute_set() -> None:
    z = Zram(writeback=False, multi_comp=False)
    assert list(z.attributes()) == [
        "algorithm_params",
        "comp_algorithm",
        "compact",
        "debug_stat",
        "disksize",
        "idle",
        "initstate",
        "io_stat",
        "mem_limit",
        "mem_used_max",
        "mm_stat",
        "reset",
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1k", 1024),
        ("0x10", 16),
        ("010k", 8192),
        ("64M", 64 << 20),
        ("1G\n", 1 << 30),
        ("12abc", 12),
        ("abc", 0),
        ("3e", 3 << 60),
    ],
)
def test_memparse(text: str, value: int) -> None:
    assert memparse(text)[0] == value


def test_mem_limit_rounds_up_to_pages_and_parses_like_memparse() -> None:
    z = Zram()
    z.write_attr("mem_limit", "1k")
    assert z.mm_stat().mem_limit == 4096
    z.write_attr("mem_limit", "0x10")
    assert z.mm_stat().mem_limit == 4096
    z.write_attr("mem_limit", "010k")
    assert z.mm_stat().mem_limit == 8192


def errno_of(z: Zram, attr: str, value: str) -> int | None:
    try:
        z.write_attr(attr, value)
    except SysfsError as exc:
        return exc.errno
    return None


# (attr, value, errno) observed on the reference kernel, device not initialised
UNINIT = [
    ("compact", "1", errno.EINVAL),
    ("idle", "all", errno.EINVAL),
    ("mem_used_max", "0", None),
    ("mem_used_max", "5", errno.EINVAL),
    ("mem_limit", "abc", errno.EINVAL),
    ("mem_limit", "1k", None),
    ("disksize", "0", errno.EINVAL),
    ("disksize", "abc", errno.EINVAL),
    ("comp_algorithm", "zstd", errno.EINVAL),
    ("comp_algorithm", "x" * 130, errno.E2BIG),
    ("algorithm_params", "level", errno.EINVAL),
    ("algorithm_params", "level=3 foo=1", None),
    ("algorithm_params", "algo=lz4 level=2", errno.EINVAL),
    ("algorithm_params", "priority=1 level=2", errno.EINVAL),
    ("reset", "0", errno.EINVAL),
    ("reset", "abc", errno.EINVAL),
    ("reset", "70000", errno.ERANGE),
]
# after comp_algorithm lzo and disksize 1000
INIT = [
    ("disksize", "8192", errno.EBUSY),
    ("disksize", "0", errno.EINVAL),
    ("comp_algorithm", "lz4", errno.EBUSY),
    ("idle", "10", errno.EINVAL),
    ("idle", "all", None),
    ("mem_used_max", "0", None),
    ("algorithm_params", "level=5", None),
    ("compact", "x", None),
]


def test_errnos_match_the_reference_kernel() -> None:
    z = Zram(writeback=False, multi_comp=False)
    for attr, value, err in UNINIT:
        assert errno_of(z, attr, value) == err, (attr, value)
    assert z.read_attr("mm_stat") == "       0 " * 3 + "    4096 " + "       0 " * 4 + "       0\n"
    z.write_attr("comp_algorithm", "lzo\n")
    assert z.read_attr("comp_algorithm") == "lzo-rle [lzo] lz4 \n"
    z.write_attr("disksize", "1000")
    assert z.read_attr("disksize") == "4096\n" and z.read_attr("initstate") == "1\n"
    for attr, value, err in INIT:
        before = (z.read_attr("mm_stat"), z.read_attr("comp_algorithm"), z.disksize)
        assert errno_of(z, attr, value) == err, (attr, value)
        if err is not None:  # a refused write changes nothing
            assert (z.read_attr("mm_stat"), z.read_attr("comp_algorithm"), z.disksize) == before
    z.write_attr("reset", "1")
    assert z.read_attr("comp_algorithm") == "[lzo-rle] lzo lz4 \n"
    z.write_attr("disksize", "5000")  # rounded up to whole pages
    assert z.read_attr("disksize") == "8192\n"
    z.write_attr("reset", "1")
    assert z.read_attr("mm_stat").split() == ["0"] * 9


def test_io_errors_leave_the_device_unchanged() -> None:
    """Observed with O_DIRECT on the reference kernel's /dev/zramN (see test_zram_live)."""
    z = Zram()
    with pytest.raises(SysfsError) as exc:  # capacity 0 before disksize
        z.write(0, bytes(4096))
    assert exc.value.errno == errno.ENOSPC
    z.write_attr("disksize", "8K")
    z.write(0, b"\x01" * 100 + bytes(3996))
    before = z.read_attr("mm_stat")
    for offset, length, err in [
        (512, 4096, errno.EINVAL),
        (0, 512, errno.EINVAL),
        (8192, 4096, errno.ENOSPC),
    ]:
        with pytest.raises(SysfsError) as exc:
            z.write(offset, bytes(length))
        assert exc.value.errno == err
        assert "aligned" in str(exc.value) or "beyond the end" in str(exc.value)
    for offset, length in [(512, 4096), (4096, 8192), (0, 512)]:
        with pytest.raises(SysfsError) as exc:
            z.discard(offset, length)
        assert exc.value.errno == errno.EINVAL
    assert z.read_attr("mm_stat") == before
    # like the block device: a read past the end is EOF, a crossing one is cut short,
    # and so is a crossing write
    assert z.read(8192, 4096) == b""
    assert z.read(4096, 8192) == bytes(4096)
    assert z.write(4096, b"\x02" * 8192) == 4096
    assert z.read(0, 16384) == b"\x01" * 100 + bytes(3996) + b"\x02" * 4096


def test_unknown_and_readonly_attributes() -> None:
    z = Zram(writeback=False)
    for attr, value, err in [
        ("backing_dev", "/tmp/x", errno.ENOENT),
        ("mm_stat", "1", errno.EACCES),
    ]:
        assert errno_of(z, attr, value) == err
    with pytest.raises(SysfsError):
        z.read_attr("reset")


def test_kstrtoull() -> None:
    assert kstrtoull("+12\n", 10, attr="a") == 12
    for bad in ("", "12 ", "1\n\n", "-1", "0x10"):
        with pytest.raises(SysfsError) as exc:
            kstrtoull(bad, 10, attr="a")
        assert exc.value.errno == errno.EINVAL
    with pytest.raises(SysfsError) as exc:
        kstrtou16("65536", 10, attr="a")
    assert exc.value.errno == errno.ERANGE


def test_algorithm_params_level_reaches_the_backend() -> None:
    """lz4's level is the acceleration: level 9 is used at disksize, and changes sizes."""
    rng = np.random.default_rng(0)
    page = rng.integers(0, 4, PAGE, dtype=np.uint8).tobytes()  # 2 bits of entropy a byte
    sizes = []
    for params in (None, "level=9"):
        z = Zram()
        z.write_attr("comp_algorithm", "lz4")
        if params:
            z.write_attr("algorithm_params", params)
        z.write_attr("disksize", "4K")
        z.write(0, page)
        assert z.read(0, 4096) == page
        sizes.append(z.mm_stat().compr_data_size)
    from zsmalloc.compress import get

    assert sizes == [len(get("lz4").compress(page)), len(get("lz4", level=9).compress(page))]
    assert sizes[0] != sizes[1]


@given(
    n=st.integers(0, 1 << 40),
    base=st.sampled_from(["dec", "hex", "oct"]),
    suffix=st.sampled_from(["", "k", "K", "m", "M", "g", "G", "t", "p", "e"]),
)
def test_memparse_bases_and_suffixes(n: int, base: str, suffix: str) -> None:
    """lib/cmdline.c memparse: simple_strtoull base 0, then one suffix; wraps at 64 bits."""
    digits = {"dec": str(n), "hex": f"0x{n:x}", "oct": f"0{n:o}"}[base]
    shift = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}[suffix.lower()]
    value, used = memparse(digits + suffix + "\n")
    if base == "hex" and suffix in ("e", "E"):  # 'e' is a hex digit: 0x1e is 30, not 1 << 60
        assert value == int(digits + suffix, 16)
    else:
        assert value == (n << shift) % (1 << 64)
    assert used == len(digits) + len(suffix)
