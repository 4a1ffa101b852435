"""Store outcomes and reject counters (spec §4, §5, §10, §12), load and invalidate (§7, §8)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from zsmalloc.errors import InputError, InvalidSizeError, SysfsError, UnknownAlgorithmError
from zsmalloc.zswap.compression import zswap_compress_outcome
from zsmalloc.zswap.zswap import Zswap

REJECT_COUNTERS = (
    "reject_compress_fail",
    "reject_compress_poor",
    "reject_alloc_fail",
    "reject_kmemcache_fail",
    "reject_reclaim_fail",
)


@pytest.mark.parametrize(
    ("algo", "clen", "wb", "expected"),
    [
        ("lzo", 4095, False, (4095, None)),  # no huge threshold in zswap
        ("lzo", 4096, True, (4096, None)),  # fits exactly: stored as-is
        ("lzo", 4096, False, (None, "reject_compress_fail")),
        ("lzo", 5000, True, (4096, None)),
        ("lzo", 5000, False, (None, "reject_compress_fail")),  # -EINVAL
        ("lz4", 5000, False, (None, "reject_compress_fail")),
        ("zstd", 5000, False, (None, "reject_compress_fail")),
        ("deflate", 5000, False, (None, "reject_compress_poor")),  # -ENOSPC
        ("842", 5000, False, (None, "reject_compress_poor")),
        ("deflate", 4096, False, (None, "reject_compress_fail")),  # fits: not -ENOSPC
    ],
)
def test_compress_outcome_table(
    algo: str, clen: int, wb: bool, expected: tuple[int | None, str | None]
) -> None:
    assert tuple(zswap_compress_outcome(algo, clen, wb, 4096)) == expected


def counters(z: Zswap) -> dict[str, int]:
    d = z.debugfs()
    return {k: d[k] for k in (*REJECT_COUNTERS, "stored_pages", "stored_incompressible_pages")}


def test_reject_counters_with_writeback_disabled(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20, compressor="deflate")
    z.mkdir_memcg("nowb")
    z.memcg("nowb").set_file("memory.zswap.writeback", "0")
    assert z.store(0, clen=5000, memcg="nowb").where == "memory"  # no swap-device fallback
    z.store(1, clen=4096, memcg="nowb")
    z.store(2, clen=1000, memcg="nowb")
    z.store(3, clen=5000)  # root: writeback allowed -> stored as-is
    assert counters(z) == {
        "reject_compress_fail": 1,
        "reject_compress_poor": 1,
        "reject_alloc_fail": 0,
        "reject_kmemcache_fail": 0,
        "reject_reclaim_fail": 0,
        "stored_pages": 2,
        "stored_incompressible_pages": 1,
    }
    # memcg charge is the entry length in bytes (spec §12), not zsmalloc's footprint
    assert z.memcg("nowb").stat()["memory.zswap.current"] == 1000
    assert z.memcg().zswap_b == 1000 + 4096


def test_zero_pages_never_reach_zswap(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20)
    assert z.store(0, bytes(4096)).where == "zero"
    assert z.store(1, clen=0).where == "zero"
    assert z.counters.zswpout == 0 and z.debugfs()["stored_pages"] == 0
    assert z.load(0) == "zero"


def test_disabled_zswap_goes_to_disk_and_drops_stale(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20)
    z.store(7, clen=100)
    z.set_param("enabled", "N")
    assert z.store(7, clen=100).where == "disk"
    assert z.debugfs()["stored_pages"] == 0 and z.total_pages() == 0
    assert z.load(7) == "disk" and z.memcg().nr_disk_swapins == 1


def test_load_is_exclusive_through_swapcache(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20)
    z.store(5, clen=700)
    assert z.load(5, swapcache=False) == "zswap"  # SWP_SYNCHRONOUS_IO: entry kept
    assert z.debugfs()["stored_pages"] == 1
    assert z.load(5) == "zswap"  # through the swap cache: freed
    assert z.debugfs()["stored_pages"] == 0 and z.total_pages() == 0
    assert z.counters.vmstat() == {"zswpin": 2, "zswpout": 1, "zswpwb": 0}
    z.invalidate(5)
    with pytest.raises(InputError, match="offset 5"):
        z.load(5)


def test_restore_replaces_old_entry(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20)
    z.store(1, clen=5000)
    z.store(1, clen=100)  # the page was re-dirtied: old entry freed after the new is stored
    assert z.debugfs()["stored_pages"] == 1
    assert z.debugfs()["stored_incompressible_pages"] == 0
    assert z.memcg().zswap_b == 100


def test_memcg_zswap_max(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20)
    z.mkdir_memcg("a")
    z.memcg("a").set_file("memory.zswap.max", "8K")  # 2 pages
    assert z.store(0, clen=5000, memcg="a").stored
    assert z.store(1, clen=3000, memcg="a").stored  # usage 1 page (4096 B) < 2
    # usage 7096 B = 1 whole page < 2: still allowed (whole pages, rounded down)
    assert z.store(2, clen=1200, memcg="a").stored
    before = counters(z)
    # 8296 B = 2 pages >= 2: refused; shrink_memcg only rotates a referenced head
    assert z.store(3, clen=100, memcg="a").where == "disk"
    assert counters(z) == before  # this reject has no counter
    assert z.lru_order("a") == [1, 2, 0]  # the head got its second chance
    z.memcg("a").set_file("memory.zswap.max", "0")
    assert not z.store(4, clen=10, memcg="a").stored


def test_bad_input_leaves_state_unchanged(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20)
    z.store(0, clen=300)
    snapshot = (z.debugfs(), dict(z.tree), z.lru_order())
    with pytest.raises(InvalidSizeError):
        z.store(1, b"short")
    with pytest.raises(InvalidSizeError):
        z.store(1, clen=-3)
    with pytest.raises(InputError):
        z.store(-1, clen=10)
    with pytest.raises(SysfsError):
        z.store(1, clen=10, memcg="nosuch")
    with pytest.raises(SysfsError):
        z.memcg().set_file("memory.zswap.max", "1M")  # root has no such file
    z.mkdir_memcg("x")
    with pytest.raises(SysfsError):
        z.memcg("x").set_file("memory.zswap.writeback", "2")
    with pytest.raises(UnknownAlgorithmError):
        z.set_param("compressor", "nope")
    assert (z.debugfs(), dict(z.tree), z.lru_order()) == snapshot


def test_compressor_switch_keeps_draining_pool(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20, compressor="lzo")
    z.store(0, clen=5000)
    z.set_param("compressor", "lz4")
    z.store(1, clen=5000)
    assert [p.compressor for p in z.pools] == ["lz4", "lzo"]
    assert z.total_pages() == 2  # pool_total_size sums every pool
    z.invalidate(0)
    assert [p.compressor for p in z.pools] == ["lz4"]  # drained old pool is gone
