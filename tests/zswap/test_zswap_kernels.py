"""zswap per kernel: the rules table, parameters, and the 6.1/6.6 paths the guests do not
reach (loads, duplicates, the parameters that switch same-filled handling off).

Each expectation is a line of that kernel's mm/zswap.c (cited), or of its Debian config.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from cli_helpers import run_cli
from zsmalloc.errors import InputError, SysfsError, UnknownAlgorithmError
from zsmalloc.profile import VERSIONS, KernelProfile
from zsmalloc.zpool.zpool import Zpool, zpool_create_pool
from zsmalloc.zswap.params import ZswapParams
from zsmalloc.zswap.rules import RULES, zswap_rules
from zsmalloc.zswap.zswap import Zswap

WORD_PAGE = (0x0123456789ABCDEF).to_bytes(8, "little") * 512  # same-filled, not zero


def make(version: str, **params: object) -> Zswap:
    params.setdefault("enabled", True)
    return Zswap(1 << 18, ZswapParams(**params), profile=KernelProfile(version))  # type: ignore[arg-type]


def test_every_profile_row_has_rules() -> None:
    assert set(RULES) == set(VERSIONS)
    assert all(RULES[v].version == v for v in VERSIONS)


@pytest.mark.parametrize(
    ("version", "zpool", "allocators", "default"),
    [
        ("6.1", True, ("zbud", "z3fold", "zsmalloc"), "zbud"),  # Debian's config
        ("6.12", True, ("zbud", "z3fold", "zsmalloc"), "zsmalloc"),  # z3fold deprecated
        ("6.16", True, ("zsmalloc",), "zsmalloc"),  # zbud, z3fold removed in 6.15
        ("6.17", True, ("zsmalloc",), "zsmalloc"),
        ("6.18", False, ("zsmalloc",), "zsmalloc"),  # zpool removed in 6.18
    ],
)
def test_which_allocators_each_kernel_has(
    version: str, zpool: bool, allocators: tuple[str, ...], default: str
) -> None:
    r = zswap_rules(version)
    assert (r.zpool, r.allocators, r.default_zpool) == (zpool, allocators, default)


def test_debian_builds() -> None:
    assert zswap_rules("6.1").pools() == ("zbud", "z3fold", "zsmalloc")
    assert zswap_rules("6.12").pools() == ("zbud", "zsmalloc")  # CONFIG_Z3FOLD_DEPRECATED unset


def test_zpool_parameter() -> None:
    z = make("6.12", zpool="zbud")
    assert z.current_zpool == "zbud"
    z.set_param("zpool", " zsmalloc\n")  # strstrip(), then zpool_has_pool()
    assert z.current_zpool == "zsmalloc" and [p.zpool_type for p in z.pools] == ["zsmalloc"]
    with pytest.raises(UnknownAlgorithmError) as e:
        make("6.16").set_param("zpool", "zbud")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(SysfsError) as e2:  # no such file in 6.18
        make("6.18").set_param("zpool", "zsmalloc")
    assert e2.value.errno == errno.ENOENT
    with pytest.raises(SysfsError):
        make("6.12").set_param("same_filled_pages_enabled", "N")  # removed in 6.11


def test_params_listing() -> None:
    assert make("6.1").summary()["params"] == {
        "accept_threshold_percent": "90",
        "compressor": "lzo",
        "enabled": "Y",
        "max_pool_percent": "20",
        "non_same_filled_pages_enabled": "Y",
        "same_filled_pages_enabled": "Y",
        "zpool": "zbud",
    }
    assert "exclusive_loads" in make("6.6").summary()["params"]


@pytest.mark.parametrize("zpool", ["zbud", "z3fold", "zsmalloc"])
def test_61_same_filled_pages_take_no_pool_memory(zpool: str) -> None:
    z = make("6.1", zpool=zpool)
    assert z.store(0, WORD_PAGE).where == "zswap"
    assert z.store(1, bytes(4096)).where == "zswap"  # no swap zero map before 6.12
    d = z.debugfs()
    assert (d["same_filled_pages"], d["stored_pages"], d["pool_total_size"]) == (2, 2, 0)
    z.invalidate(0)
    assert z.debugfs()["same_filled_pages"] == 1


def test_61_same_filled_switched_off_compresses_the_page() -> None:
    z = make("6.1", same_filled_pages_enabled=False)
    z.store(0, WORD_PAGE)
    d = z.debugfs()
    assert (d["same_filled_pages"], d["stored_pages"], d["pool_total_size"]) == (0, 1, 4096)
    with pytest.raises(InputError):  # by length: it cannot be compressed here
        z.store(1, clen=0)
    z2 = make("6.1", non_same_filled_pages_enabled=False)
    assert z2.store(0, clen=100).where == "disk" and z2.store(1, WORD_PAGE).where == "zswap"


def test_612_compresses_same_filled_pages_and_maps_zeros_away() -> None:
    z = make("6.12")
    assert z.store(0, bytes(4096)).where == "zero"
    assert z.store(1, WORD_PAGE).where == "zswap"
    assert z.debugfs()["stored_pages"] == 1 and "same_filled_pages" not in z.debugfs()


@pytest.mark.parametrize(
    ("version", "clen", "stored", "counter"),
    [
        ("6.1", 4096, True, None),  # fits dlen exactly: stored, 4096 bytes
        ("6.1", 4097, False, None),  # -EINVAL, counted nowhere
        ("6.12", 4097, False, "reject_compress_fail"),
        ("6.18", 4097, True, None),  # stored as-is
    ],
)
def test_output_that_does_not_fit(
    version: str, clen: int, stored: bool, counter: str | None
) -> None:
    z = make(version, zpool="zsmalloc") if version != "6.18" else make(version)
    assert z.store(0, clen=clen).stored is stored
    d = z.debugfs()
    rejects = {k: v for k, v in d.items() if k.startswith("reject_") and v}
    assert rejects == ({counter: 1} if counter else {})


def test_zbud_and_z3fold_refuse_what_they_cannot_hold() -> None:
    """zbud_alloc()/z3fold_alloc() -ENOSPC is reject_compress_poor; 6.1 adds 8 bytes."""
    z = make("6.1", zpool="zbud")
    assert not z.store(0, clen=3961).stored and z.store(1, clen=3960).stored
    z3 = make("6.1", zpool="z3fold")
    assert not z3.store(0, clen=4089).stored and z3.store(1, clen=4088).stored
    z12 = make("6.12", zpool="zbud")
    assert not z12.store(0, clen=3969).stored and z12.store(1, clen=3968).stored
    for m in (z, z3, z12):
        assert m.debugfs()["reject_compress_poor"] == 1


def test_61_loads_keep_the_entry_66_can_take_it() -> None:
    z = make("6.1")
    z.store(0, clen=1000)
    assert z.load(0) == "zswap" and z.debugfs()["stored_pages"] == 1  # frontswap: kept
    z66 = make("6.6", exclusive_loads=True)
    z66.store(0, clen=1000)
    assert z66.load(0) == "zswap" and z66.debugfs()["stored_pages"] == 0


def test_duplicate_stores() -> None:
    """6.1: frontswap invalidates first (no count); 6.6 counts duplicate_entry."""
    z = make("6.1")
    z.store(0, clen=1000)
    z.store(0, clen=9000)  # does not fit: the old copy is gone all the same
    assert z.debugfs()["stored_pages"] == 0 and z.debugfs()["duplicate_entry"] == 0
    z66 = make("6.6")
    z66.store(0, clen=1000)
    z66.store(0, clen=1000)
    assert z66.debugfs()["duplicate_entry"] == 1 and z66.debugfs()["stored_pages"] == 1


def test_61_limit_is_strict_and_hysteresis_rounds_twice() -> None:
    """zswap_is_full(): max < pages; zswap_can_accept(): totalram*90/100*max/100 > pages."""
    z = Zswap(1000, ZswapParams(enabled=True, max_pool_percent=1), profile=KernelProfile("6.1"),
              worker="manual")
    for off in range(10):  # 10 one-page objects (zbud, 3000 bytes): the limit is 10 pages
        assert z.store(off, clen=3000).stored
    assert z.store(10, clen=3000).stored  # 10 pages is not full yet (strict <)
    assert not z.store(11, clen=3000).stored and z.debugfs()["pool_limit_hit"] == 1
    assert z.shrink_work_pending and z.reached_full
    assert not z.can_accept()  # 1000 * 90 // 100 * 1 // 100 = 9 > 11 is false


def test_61_zsmalloc_pool_cannot_shrink() -> None:
    z = Zswap(1000, ZswapParams(enabled=True, max_pool_percent=0, zpool="zsmalloc"),
              profile=KernelProfile("6.1"))
    z.store(0, clen=3000)
    z.store(1, clen=3000)  # full: the work runs zpool_shrink(), -EINVAL without driver shrink
    d = z.debugfs()
    assert (d["pool_limit_hit"], d["reject_reclaim_fail"], d["written_back_pages"]) == (1, 1, 0)


def test_61_zbud_eviction_writes_back_and_the_total_stays_stale() -> None:
    """The shrink work reclaims one zbud page; zswap_pool_total_size is refreshed by the
    entry frees inside it, before zbud frees the page, so it still counts that page."""
    z = Zswap(1000, ZswapParams(enabled=True, max_pool_percent=0), profile=KernelProfile("6.1"))
    z.store(0, clen=3000)
    assert not z.store(1, clen=3000).stored  # full: one page reclaimed, one written back
    d = z.debugfs()
    assert (d["written_back_pages"], d["stored_pages"], z.total_pages()) == (1, 0, 0)
    assert d["pool_total_size"] == 4096  # stale until the next store or free
    z.load(0)  # from the swap device now
    assert z.slots[0].where == "disk"


def test_66_writeback_from_the_pool_lru() -> None:
    z = Zswap(1000, ZswapParams(enabled=True, max_pool_percent=0, zpool="zsmalloc"),
              profile=KernelProfile("6.6"))
    z.store(0, clen=4096)
    z.store(1, clen=4096)  # full (1 page > 0): reclaim until zswap_can_accept()
    d = z.debugfs()
    assert d["written_back_pages"] == 1 and d["stored_pages"] == 0


def test_zpool_layer() -> None:
    p61 = KernelProfile("6.1")
    zb = zpool_create_pool("zbud", p61, lru=True, evict=lambda h: 0)
    assert zb.evictable and zb.malloc(4000) == -errno.ENOSPC and zb.malloc(0) == -errno.EINVAL
    zs = Zpool("zsmalloc", p61, evict=lambda h: 0)
    assert not zs.evictable and zs.shrink(1) == (-errno.EINVAL, 0)
    assert zs.malloc(4097) == -errno.EINVAL  # 6.1's zs_malloc: oversize is -EINVAL
    assert Zpool("zsmalloc", KernelProfile("6.12")).malloc(4097) == -errno.ENOSPC
    with pytest.raises(UnknownAlgorithmError):
        Zpool("zram", p61)


def test_trace_replay_under_61(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """zsmalloc zswap replay --kernel 6.1: z3fold's three buddies in one page, a
    same-filled page in no page, 6.1's counters in the table."""
    trace = tmp_path / "t.trace"
    trace.write_text(
        "zswap-trace 1\nram 1G\nparam zpool z3fold\nparam enabled Y\n"
        "s 0 1000\ns 1 1000\ns 2 640\ns 3 0\ni 0\n"
        "expect same_filled_pages 1 stored_pages 3 pool_total_size 4096\n"
    )
    code, out, err = run_cli(["zswap", "replay", str(trace), "--kernel", "6.1"], capsys)
    assert code == 0, err
    assert out.splitlines()[0].split()[-2:] == ["stored", "same"]
    assert "1 expect lines, 0 differences" in out
    code, out, err = run_cli(["zswap", "replay", str(trace), "--kernel", "6.18"], capsys)
    assert code == 2 and "has no debugfs file 'same_filled_pages'" in err
