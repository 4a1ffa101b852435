"""Writeback (CONFIG_ZRAM_WRITEBACK; not in the reference kernel): the rules of spec §2.13."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from zsmalloc.errors import SysfsError
from zsmalloc.zram.device import Zram

PAGE = 4096


def prefix_page(n: int, seed: int) -> bytes:
    """Random bytes then zeros: compresses to a little more than n bytes."""
    return np.random.default_rng(seed).bytes(n) + bytes(PAGE - n)


def huge_page(seed: int) -> bytes:
    return np.random.default_rng(seed).bytes(PAGE)


def device(tmp_path: Path, nr_blocks: int = 64, nr_slots: int = 16) -> Zram:
    backing = tmp_path / "backing.img"
    backing.write_bytes(bytes(nr_blocks * PAGE))
    z = Zram()
    z.write_attr("backing_dev", str(backing))
    z.write_attr("disksize", str(nr_slots * PAGE))
    return z


def bd_stat(z: Zram) -> list[int]:
    return [int(v) for v in z.read_attr("bd_stat").split()]


def test_preconditions(tmp_path: Path) -> None:
    z = Zram()
    with pytest.raises(SysfsError) as exc:
        z.write_attr("writeback", "huge")
    assert exc.value.errno == errno.EINVAL  # not initialised
    z.write_attr("disksize", "64K")
    with pytest.raises(SysfsError) as exc:
        z.write_attr("writeback", "huge")
    assert exc.value.errno == errno.ENODEV and "backing" in str(exc.value)
    with pytest.raises(SysfsError) as exc:
        z.write_attr("backing_dev", str(tmp_path))
    assert exc.value.errno == errno.EBUSY
    assert z.read_attr("backing_dev") == "none\n"
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    z2 = Zram()
    with pytest.raises(SysfsError) as exc:
        z2.write_attr("backing_dev", str(empty))
    assert exc.value.errno == errno.EINVAL
    assert z2.read_attr("backing_dev") == "none\n"


def test_huge_writeback_net_effect(tmp_path: Path) -> None:
    z = device(tmp_path)
    pages = {0: huge_page(1), 1: prefix_page(500, 2), 2: huge_page(3), 3: b"\x07" * PAGE}
    for slot, page in pages.items():
        z.write(slot * PAGE, page)
    before = z.mm_stat()
    z.write_attr("writeback", "huge")
    after = z.mm_stat()
    assert after.orig_data_size == before.orig_data_size  # pages_stored unchanged
    assert after.compr_data_size == before.compr_data_size - 2 * PAGE
    assert after.mem_used_total < before.mem_used_total  # the huge zspages are gone
    assert after.same_pages == before.same_pages == 1  # untouched
    assert after.huge_pages == before.huge_pages - 2 == 0
    assert after.huge_pages_since == before.huge_pages_since == 2  # unchanged
    assert z.read_attr("bd_stat") == "       2        0        2\n"
    assert [z.slot(s)["kind"] for s in range(4)] == ["wb", "compressed", "wb", "same"]
    # the data comes back from the backing file; each read of a WB slot is a bd_read
    for slot, page in pages.items():
        assert z.read(slot * PAGE, PAGE) == page
    assert bd_stat(z) == [2, 2, 2]
    # freeing a WB slot releases its block; pages_stored drops
    z.discard(0, PAGE)
    assert bd_stat(z)[0] == 1 and z.mm_stat().orig_data_size == after.orig_data_size - PAGE


def test_largest_first_and_lowest_block_from_one(tmp_path: Path) -> None:
    """Buckets by size/64, largest bucket first, head of bucket (highest index) first;
    blocks are the lowest free index >= 1; the limit stops with EIO."""
    z = device(tmp_path)
    sizes = {0: 300, 1: 2000, 2: 2010, 3: 900, 4: 2020}
    for slot, n in sizes.items():
        z.write(slot * PAGE, prefix_page(n, slot))
    stored = {s: z.slot(s)["size"] for s in sizes}
    z.write_attr("writeback_limit_enable", "1")
    z.write_attr("writeback_limit", "3")
    with pytest.raises(SysfsError) as exc:
        z.write_attr("writeback", "page_indexes=0-4")  # any slot in the range
    assert exc.value.errno == errno.EIO
    assert z.read_attr("writeback_limit") == "0\n"
    order = sorted(sizes, key=lambda s: (stored[s] // 64, s), reverse=True)
    assert [int(z.handle[s]) for s in order[:3]] == [1, 2, 3]
    assert [z.slot(s)["kind"] for s in order[3:]] == ["compressed", "compressed"]
    assert bd_stat(z) == [3, 0, 3]
    # block 2 freed, then the next writeback takes block 2 again
    z.discard(order[1] * PAGE, PAGE)
    z.write_attr("writeback_limit_enable", "0")
    z.write_attr("writeback", f"page_index={order[3]}")
    assert int(z.handle[order[3]]) == 2


def test_idle_mode_and_access_clearing_idle(tmp_path: Path) -> None:
    z = device(tmp_path)
    for s in range(4):
        z.write(s * PAGE, prefix_page(700 + s, s))
    z.write_attr("idle", "all")
    z.read(1 * PAGE, PAGE)  # accessed: no longer idle
    z.write(2 * PAGE, prefix_page(1200, 9))  # rewritten: not idle
    z.write_attr("writeback", "type=idle")
    assert [z.slot(s)["kind"] for s in range(4)] == ["wb", "compressed", "compressed", "wb"]
    assert z.mm_stat().orig_data_size == 4 * PAGE


def test_backing_device_full(tmp_path: Path) -> None:
    """3 blocks, block 0 never used: two pages fit, then ENOSPC; no reserved block leaks."""
    z = device(tmp_path, nr_blocks=3)
    for s in range(4):
        z.write(s * PAGE, huge_page(s))
    with pytest.raises(SysfsError) as exc:
        z.write_attr("writeback", "huge")
    assert exc.value.errno == errno.ENOSPC
    assert bd_stat(z) == [2, 0, 2]
    assert sorted(int(z.handle[s]) for s in range(4) if z.slot(s)["kind"] == "wb") == [1, 2]


@pytest.mark.parametrize(
    ("spec", "err"),
    [
        ("page_index=16", errno.ERANGE),
        ("page_indexes=3-2", errno.ERANGE),
        ("page_indexes=3", errno.EINVAL),
        ("page_indexes=0-16", errno.ERANGE),
        ("type=bogus", errno.EINVAL),
        ("bogus", errno.EINVAL),
        ("page_index=x", errno.EINVAL),
    ],
)
def test_bad_writeback_requests_change_nothing(tmp_path: Path, spec: str, err: int) -> None:
    z = device(tmp_path)
    for s in range(3):
        z.write(s * PAGE, huge_page(s))
    z.write_attr("idle", "all")
    flags = z.flags.copy()
    with pytest.raises(SysfsError) as exc:
        z.write_attr("writeback", f"page_index=1 {spec}")
    assert exc.value.errno == err
    assert (z.flags == flags).all() and bd_stat(z) == [0, 0, 0]


def test_same_and_empty_slots_are_never_written_back(tmp_path: Path) -> None:
    z = device(tmp_path)
    z.write(0, bytes(PAGE))
    z.write(PAGE, b"\x11" * PAGE)
    z.write_attr("writeback", "page_indexes=0-15")
    assert bd_stat(z) == [0, 0, 0]
    assert z.slot(0)["kind"] == "same" and z.slot(2)["kind"] == "empty"


def test_legacy_mode_word_ends_parsing(tmp_path: Path) -> None:
    """A mode scans the range selected so far and stops: later tokens are ignored."""
    z = device(tmp_path)
    for s in range(3):
        z.write(s * PAGE, huge_page(s))
    z.write_attr("writeback", "page_index=1 huge page_index=99")
    assert [z.slot(s)["kind"] for s in range(3)] == ["huge", "wb", "huge"]


def test_overwrite_of_a_written_back_slot_releases_its_block(tmp_path: Path) -> None:
    z = device(tmp_path)
    z.write(0, huge_page(1))
    z.write_attr("writeback", "huge")
    assert bd_stat(z) == [1, 0, 1]
    new = prefix_page(100, 5)
    z.write(0, new)
    assert bd_stat(z) == [0, 0, 1] and z.read(0, PAGE) == new
    assert z.mm_stat().orig_data_size == PAGE


def test_unused_reserved_block_is_released(tmp_path: Path) -> None:
    """A slot selected twice: the second time it is no longer a candidate, so the block
    reserved for it is released at the end (bd_count counts used blocks only)."""
    z = device(tmp_path)
    z.write(PAGE, huge_page(1))
    z.write_attr("writeback", "page_index=1 page_index=1")
    assert bd_stat(z) == [1, 0, 1]
    assert int(z.handle[1]) == 1 and int(z.bd_map.sum()) == 1
