"""Kernel profiles (spec §10): version differences as data, and pools for 6.6 / 6.12."""

from __future__ import annotations

import errno
import gzip
from pathlib import Path

import pytest

from zsmalloc import InvalidSizeError, Pool
from zsmalloc.errors import UnknownKernelError
from zsmalloc.profile import VERSIONS, KernelProfile, kernel_version, profile_for
from zsmalloc.zs import core
from zsmalloc.zs.state import PoolState, PoolState61


def test_constants_from_the_spec() -> None:
    p = KernelProfile("6.18")
    assert (p.OBJ_INDEX_BITS, p.ZS_MIN_ALLOC_SIZE, p.ZS_SIZE_CLASS_DELTA) == (24, 32, 16)
    assert p.oversize_errno == errno.ENOSPC and p.obj_tag_shift == 0
    old = KernelProfile("6.6")
    assert (old.OBJ_INDEX_BITS, old.obj_tag_shift, old.oversize_errno) == (23, 1, errno.EINVAL)
    assert KernelProfile("6.1").ZS_MAX_PAGES_PER_ZSPAGE == 4
    assert KernelProfile("6.12").page_type_on_reset == "cleared"
    assert KernelProfile("6.18").page_type_on_reset == "sticky"


def test_unknown_versions_refused() -> None:
    with pytest.raises(UnknownKernelError, match=r"unknown kernel version .5\.10."):
        profile_for("5.10")
    with pytest.raises(UnknownKernelError, match=r"older than every known profile"):
        kernel_version("5.15.0-91-generic")
    with pytest.raises(UnknownKernelError, match=r"expected a kernel version"):
        kernel_version("linux")


def test_releases_map_to_rows() -> None:
    """uname -r of the kernels the guests booted, and releases between rows."""
    assert kernel_version("6.1.0-57-amd64") == "6.1"
    assert kernel_version("6.12.118+deb13-amd64") == "6.12"
    assert kernel_version("7.2.13+deb14-amd64") == "7.2"
    assert kernel_version("7.3.0-rc7-amd64") == "7.3"
    assert kernel_version("6.18.44") == "6.18"
    assert kernel_version("6.8.0-40-generic") == "6.6"  # no row of its own: the older one


def test_rules_per_row() -> None:
    """zsmalloc.md §10: 6.1 has its own rules; 6.6 on share 6.18's; 7.x is 6.18's (§10.3)."""
    rules = {v: (KernelProfile(v).fullness_scheme, KernelProfile(v).compaction) for v in VERSIONS}
    assert rules.pop("6.1") == ("4-group", "6.1")
    assert set(rules.values()) == {("ratio-12", "6.5")}
    assert [v for v in VERSIONS if KernelProfile(v).zspage_isolation] == ["6.1", "6.6"]
    assert type(Pool(version="6.1", max_pages=8).state) is PoolState61
    assert type(Pool(version="7.2", max_pages=8).state) is PoolState


def test_66_obj_encoding_and_errno() -> None:
    pool = Pool(version="6.6", max_pages=16)
    h = pool.malloc(3000)
    obj = int(pool.state.handle_obj[h >> 3])
    # 6.6: obj = ((pfn << 23) | idx) << 1, i.e. pfn << 24 | idx << 1 (spec §3.3)
    pfn = int(pool.state.zs_first[1])
    assert obj == pfn << 24
    h1 = pool.malloc(3000)
    assert int(pool.state.handle_obj[h1 >> 3]) == pfn << 24 | 1 << 1
    with pytest.raises(InvalidSizeError) as e:
        pool.malloc(4097)
    assert e.value.errno == errno.EINVAL
    assert core.zs_malloc(pool.state, 4097) == -errno.EINVAL
    pool.write(h1, b"abc")
    assert pool.read(h1, 3) == b"abc"


@pytest.mark.parametrize("version", ["6.6", "6.12"])
def test_same_page_counts_as_618(testdata: Path, version: str) -> None:
    """6.6 and 6.12 share 6.18's rules (spec §10): the 6.18 trace replays exactly."""
    pool = Pool(version=version, max_pages=1 << 14)
    slots: dict[int, int] = {}
    with gzip.open(testdata / "traces" / "churn-lzo-rle.trace.gz", "rt") as f:
        for line in f:
            op = line.split()
            if op[0] == "w":
                h = pool.malloc(int(op[2]))
                if int(op[1]) in slots:
                    pool.free(slots[int(op[1])])
                slots[int(op[1])] = h
            elif op[0] in ("s", "d") and int(op[1]) in slots:
                pool.free(slots.pop(int(op[1])))
            elif op[0] == "c":
                pool.compact()
            elif op[0] == "m":
                cols = op[1:]
                assert (pool.total_pages() * 4096, pool.pages_compacted) == (
                    int(cols[2]), int(cols[6]))


def test_73_obj_keeps_the_class() -> None:
    """7.3 (Debian's 7.3.4 source): obj = pfn << ZS_OBJ_PFN_SHIFT | class << ZS_OBJ_IDX_BITS
    | idx, with ZS_OBJ_PFN_SHIFT 24 and ZS_OBJ_IDX_BITS 24 - 9 = 15 on 4 KiB pages."""
    p = KernelProfile("7.3")
    assert (p.OBJ_PFN_SHIFT, p.OBJ_CLASS_BITS, p.OBJ_INDEX_BITS, p.ZS_MIN_ALLOC_SIZE) == (
        24, 9, 15, 32)
    pool = Pool(version="7.3", max_pages=16)
    h0, h1 = pool.malloc(3000), pool.malloc(3000)  # class 190 (3 pages, 4 objects)
    pfn = int(pool.state.zs_first[1])
    assert int(pool.state.handle_obj[h0 >> 3]) == pfn << 24 | 190 << 15
    # object 1 starts at byte 3072 of the zspage: still the first page
    assert int(pool.state.handle_obj[h1 >> 3]) == pfn << 24 | 190 << 15 | 1
    pool.write(h1, b"xyz")
    new = pool.migrate(pfn)
    assert int(pool.state.handle_obj[h1 >> 3]) == new << 24 | 190 << 15 | 1
    assert pool.read(h1, 3) == b"xyz"


def test_class_table_variants() -> None:
    """A variant is part of the profile: validated, kernel values stored as None, described."""
    from zsmalloc.errors import InvalidTypeError, UnknownVariantError

    assert KernelProfile(class_delta=16) == KernelProfile()  # 4 KiB: 16 is the kernel's delta
    assert KernelProfile("6.1", chain_rule="usedpc") == KernelProfile("6.1")
    p = KernelProfile(page_size=16384, class_delta=16, chain_rule="waste-threshold")
    assert (p.ZS_SIZE_CLASS_DELTA, p.ZS_SIZE_CLASSES, p.zspage_chain_rule) == (
        16, 1023, "waste-threshold"
    )
    assert p.class_bits == 9  # 1023 indices need a 10-bit zspage->class
    assert p.describe() == "6.18, 16 KiB pages, chain 8, class delta 16, waste-threshold"
    assert KernelProfile(page_size=16384).describe() == "6.18, 16 KiB pages, chain 8"
    assert KernelProfile(page_size=16384).ZS_SIZE_CLASS_DELTA == 64
    with pytest.raises(UnknownVariantError, match="unknown chain rule 'best'"):
        KernelProfile(chain_rule="best")
    with pytest.raises(InvalidSizeError, match="multiple of 8"):
        KernelProfile(class_delta=12)
    with pytest.raises(InvalidSizeError, match="from 8 to 256"):
        KernelProfile(class_delta=512)
    with pytest.raises(InvalidTypeError):
        KernelProfile(class_delta=16.0)  # type: ignore[arg-type]


def test_variant_pool_allocates() -> None:
    """A pool of a variant with more indices than the kernel's zspage->class holds."""
    prof = KernelProfile(page_size=65536, class_delta=8, chain_size=16)
    assert prof.ZS_SIZE_CLASSES == 8189 and prof.class_bits == 12
    pool = Pool(profile=prof, max_pages=256)
    hs = [pool.malloc(s) for s in (1, 100, 1000, 30000, 65536)]
    for h in hs:
        pool.write(h, b"z" * 20)
        assert pool.read(h, 20) == b"z" * 20
    for h in hs:
        pool.free(h)
    assert pool.total_pages() == 0
