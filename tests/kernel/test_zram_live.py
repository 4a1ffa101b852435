"""The zram model against our own hot-added device of the running kernel.

Skipped, with the reason, without root or zram.  Every device is removed.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from zsmalloc.cli.live import render_divergence
from zsmalloc.errors import OutOfMemoryError, SysfsError
from zsmalloc.live.verify_zram import verify_zram
from zsmalloc.live.zram import ZRAM_CONTROL, LiveZram, zram_unavailable_reason
from zsmalloc.zram.device import Zram
from zsmalloc.zram.replay import replay
from zsmalloc.zram.trace import read_trace

pytestmark = pytest.mark.kernel
PAGE = 4096
STAT_FILES = ("mm_stat", "io_stat", "debug_stat", "comp_algorithm", "disksize", "initstate")


@pytest.fixture(autouse=True)
def _need_zram() -> None:
    reason = zram_unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize(("algo", "seed"), [("lzo", 11), ("lzo-rle", 12), ("lz4", 13)])
def test_verify_short_run_matches(algo: str, seed: int, tmp_path: Path) -> None:
    """A few hundred random ops (writes of real and synthetic pages, overwrites, discards,
    compactions, reads, mem_limit hits): mm_stat and io_stat equal after every op."""
    trace = tmp_path / "run.trace.gz"
    result = verify_zram(algo, n_ops=300, seed=seed, nr_pages=48, save=trace)
    assert result.ok, render_divergence(result.divergence) if result.divergence else ""
    assert result.ops_done == 300
    assert result.counts["write"] > 150 and result.events["reads_checked"] > 0
    assert result.device.startswith("zram") and result.device != "zram0"
    assert not (Path("/sys/block") / result.device).exists()  # always removes its device
    # the saved kernel run is a trace the replay reproduces line for line
    replayed = replay(read_trace(trace))
    assert replayed.ok and replayed.m_checked == 300 - result.counts.get("read", 0)


def test_stat_files_are_byte_identical_after_a_workload(live_zram: Callable[..., LiveZram]) -> None:
    live = live_zram(algorithm="lz4", disksize=64 * PAGE)
    model = model_like("lz4", 64 * PAGE)
    rng = np.random.default_rng(5)
    files = sorted(Path("/usr/bin").iterdir())[:40]
    for i, path in enumerate(files):
        try:
            data = path.read_bytes()[:PAGE]
        except OSError:
            continue
        page = data.ljust(PAGE, b"\0") if i % 3 else rng.bytes(PAGE)
        live.write_page(i, page)
        model.write(i * PAGE, page)
    for s in range(0, 40, 3):
        live.discard(s)
        model.discard(s * PAGE, PAGE)
    live.compact()
    model.compact()
    live.set_attr("mem_limit", "1M")
    model.write_attr("mem_limit", "1M")
    skip_if_shrinker(live, model)
    for name in STAT_FILES:
        assert model.read_attr(name) == live.attr(name), name
    for s in range(40):
        assert model.read(s * PAGE, PAGE) == live.read_page(s)


def model_like(algo: str, disksize: int) -> Zram:
    """A model device configured as the live one: algorithm, then disksize."""
    model = Zram()
    model.write_attr("comp_algorithm", algo)
    model.write_attr("disksize", str(disksize))
    return model


def skip_if_shrinker(live: LiveZram, model: Zram) -> None:
    """The kernel's zsmalloc shrinker may compact by itself under memory pressure (spec
    §2.11): that is not a model error, so such a run proves nothing either way."""
    if live.mm_stat().pages_compacted > model.mm_stat().pages_compacted:
        pytest.skip("the kernel's zsmalloc shrinker compacted the pool during the test")


def uninitialised(live: LiveZram) -> None:
    live.close()
    live.set_attr("reset", 1)


def live_errno(live: LiveZram, attr: str, value: str) -> int | None:
    try:
        live.set_attr(attr, value)
    except SysfsError as exc:
        return exc.errno
    return None


def model_errno(model: Zram, attr: str, value: str) -> int | None:
    try:
        model.write_attr(attr, value)
    except SysfsError as exc:
        return exc.errno
    return None


STEPS = [
    ("compact", "1"),
    ("idle", "all"),
    ("mem_used_max", "0"),
    ("mem_used_max", "7"),
    ("mem_limit", "x"),
    ("mem_limit", "0x1001"),
    ("mem_limit", "017k"),
    ("disksize", "0"),
    ("disksize", "nope"),
    ("comp_algorithm", "zstd"),
    ("comp_algorithm", "lz4hc"),
    ("comp_algorithm", "y" * 127),
    ("comp_algorithm", "y" * 128),
    ("algorithm_params", "level"),
    ("algorithm_params", "level="),
    ("algorithm_params", "level=x"),
    ("algorithm_params", "level=2 bogus=1"),
    ("algorithm_params", "algo=lz4"),
    ("algorithm_params", "priority=1"),
    ("algorithm_params", "priority=-1"),
    ("reset", "0"),
    ("reset", "65536"),
    ("reset", "+0"),
    ("comp_algorithm", "lz4\n"),
    ("disksize", "5000"),
    ("disksize", "8192"),
    ("comp_algorithm", "lzo"),
    ("idle", "5"),
    ("idle", "all\n"),
    ("compact", ""),
    ("mem_used_max", "0\n"),
    # lib/ parsers at their edges: memparse reads a suffix without digits, kstrtou16
    # takes no '_' or blank, base 10 no "0x", an overflow is ERANGE before the tail
    ("mem_limit", "K"),
    ("mem_limit", "0xk"),
    ("mem_limit", " 5"),
    ("mem_used_max", "0_0"),
    ("mem_used_max", "00"),
    ("reset", " 1"),
    ("reset", "1_0"),
    ("reset", "0x1"),
    ("reset", "99999999999999999999x"),
    ("reset", "1\0junk"),
    ("idle", "all\n\n"),
    ("algorithm_params", "=5"),
    ("algorithm_params", 'level="3"'),
    ("algorithm_params", "level=3_0"),
    ("algorithm_params", "level=-2147483649"),
    ("algorithm_params", "algo=lz4 level=3"),
]


def test_attribute_errnos_and_texts_match(live_zram: Callable[..., LiveZram]) -> None:
    live = live_zram(algorithm="lzo-rle", disksize=16 * PAGE)
    uninitialised(live)
    model = Zram(writeback=False, multi_comp=False)
    for attr, value in STEPS:
        assert model_errno(model, attr, value) == live_errno(live, attr, value), (attr, value)
        for name in STAT_FILES:
            assert model.read_attr(name) == live.attr(name), (attr, value, name)
    assert sorted(model.attributes()) == sorted(
        n for n in model.attributes() if (live.sysfs / n).exists()
    )


def test_block_io_errors_match(live_zram: Callable[..., LiveZram]) -> None:
    live = live_zram(algorithm="lz4", disksize=2 * PAGE)
    model = model_like("lz4", 2 * PAGE)
    buf = mmap.mmap(-1, 3 * PAGE)
    buf.write(np.random.default_rng(1).bytes(3 * PAGE))
    assert live._fd is not None
    fd = live._fd

    def kernel(call: Callable[[], object]) -> object:
        try:
            return call()
        except OSError as exc:
            return -(exc.errno or 0)

    def ours(call: Callable[[], object]) -> object:
        try:
            return call()
        except SysfsError as exc:
            return -(exc.errno or 0)

    data = bytes(buf)
    for off, n in [(2 * PAGE, PAGE), (PAGE, 2 * PAGE), (512, PAGE), (0, 512)]:
        k = kernel(lambda off=off, n=n: os.pwritev(fd, [memoryview(buf)[:n]], off))
        m = ours(lambda off=off, n=n: model.write(off, data[:n]))
        assert k == m, (off, n)
    for off, n in [(2 * PAGE, PAGE), (PAGE, 2 * PAGE)]:
        k = kernel(lambda off=off, n=n: len(os.preadv(fd, [memoryview(buf)[:n]], off) * b"x"))
        m = ours(lambda off=off, n=n: len(model.read(off, n)))
        assert k == m, (off, n)
    for off, n in [(512, PAGE), (PAGE, 2 * PAGE), (0, 512)]:
        k = kernel(lambda off=off, n=n: fcntl.ioctl(fd, 0x1277, struct.pack("QQ", off, n)) and 0)
        m = ours(lambda off=off, n=n: model.discard(off, n) or 0)
        assert k == m == -errno.EINVAL
    assert model.read_attr("mm_stat") == live.attr("mm_stat")
    assert model.read_attr("io_stat") == live.attr("io_stat")


def test_mem_limit_refusal_matches(live_zram: Callable[..., LiveZram]) -> None:
    live = live_zram(algorithm="lzo", disksize=8 * PAGE)
    model = model_like("lzo", 8 * PAGE)
    rng = np.random.default_rng(9)
    for attr, value in [("mem_limit", "8K")]:
        live.set_attr(attr, value)
        model.write_attr(attr, value)
    for slot in range(4):
        page = rng.bytes(PAGE)
        with_kernel = True
        try:
            live.write_page(slot, page)
        except OSError as exc:
            assert exc.errno == errno.EIO
            with_kernel = False
        try:
            model.write(slot * PAGE, page)
            with_model = True
        except OutOfMemoryError:
            with_model = False
        assert with_kernel == with_model
        skip_if_shrinker(live, model)
        assert model.read_attr("mm_stat") == live.attr("mm_stat")
        assert model.read_attr("io_stat") == live.attr("io_stat")


def test_no_device_left_behind() -> None:
    assert (ZRAM_CONTROL / "hot_add").exists()
    made = []
    with pytest.raises(RuntimeError), LiveZram(algorithm="lz4", disksize=PAGE) as live:
        made.append(f"zram{live.dev_id}")
        raise RuntimeError("boom")
    assert not (Path("/sys/block") / made[0]).exists()


def test_huge_threshold_boundary_matches(live_zram: Callable[..., LiveZram]) -> None:
    """lz4 pages of compressed length 3624 and 3625: normal object vs huge, on both."""
    live = live_zram(algorithm="lz4", disksize=2 * PAGE)
    model = model_like("lz4", 2 * PAGE)
    for slot, n in enumerate((3587, 3588)):
        page = np.random.default_rng(n).bytes(n) + bytes(PAGE - n)
        live.write_page(slot, page)
        model.write(slot * PAGE, page)
        assert model.read_attr("mm_stat") == live.attr("mm_stat")
    assert live.mm_stat().compr_data_size == 3624 + PAGE
