"""zswap's rules per kernel: one row of data per profile version, nothing tested elsewhere.

zswap changed more between 6.1 and 6.18 than any other part of the stack: it was a
frontswap backend on a chosen zpool allocator with the allocator's LRU doing
writeback (6.1), then kept its own LRU over 32 zpools (6.6), then became memcg-aware
with a shrinker and handed zero pages to the swap layer (6.12), lost the zpool layer
(6.18) and learnt to store incompressible pages as they are (6.18).  Each difference is
a field of :class:`ZswapRules`; :func:`zswap_rules` gives the row of a profile, and the
model (:mod:`zsmalloc.zswap.zswap`), the estimate and the CLI ask it, never a version.

Read in each kernel's mm/zswap.c, mm/zbud.c, mm/z3fold.c, mm/zpool.c (Debian's source
packages 6.1.176 and 6.12.117, 7.2.13 for the 6.18 code; a v6.6 tree for 6.6) and in
Debian's kernel configs and images (6.1.0-57, 6.12.118, 6.16.12, 6.17.13, 6.18.15: the
debugfs names in vmlinux, the ``CONFIG_ZSWAP_ZPOOL_DEFAULT`` and allocator options):

========================  ======  =======  ========  ===========  =========
rule                      6.1     6.6      6.12      6.16, 6.17   6.18 on
========================  ======  =======  ========  ===========  =========
zpool layer               yes     yes      yes       yes          no
allocators (upstream)     zbud z3fold zsmalloc       + deprecated zsmalloc    zsmalloc
Debian builds             all 3   -        zbud,     zsmalloc     zsmalloc
                                           zsmalloc
default (Debian config)   zbud    zbud     zsmalloc  zsmalloc     zsmalloc
zpools per pool           1       32       1         1            1
same-filled pages         stored as one word, counted in
                          ``same_filled_pages``;   the swap zero map instead
                          others compressed
header on evictable pool  8 bytes  -       -         -            -
writeback                 zpool   pool     memcg     memcg        memcg
                          shrink  LRU      LRU       LRU          LRU
limit check               is_full is_full  check_limits (hysteresis from max_pages)
compress failure counted  no      no       yes       yes          yes
incompressible as-is      no      no       no        no           yes
loads exclusive           no      param    yes       yes          yes
large folios              no      no       no        yes          yes
========================  ======  =======  ========  ===========  =========

The allocators' removal: z3fold was deprecated in 6.12 (``Z3FOLD_DEPRECATED``), zbud and
z3fold were removed in 6.15 (commit 6df8bae8e851 "mm: zbud: remove zbud", after
z3fold's removal in the same series), and the zpool layer in 6.18 (commit 5c3f8be0c6b1
"mm: zswap: interact directly with zsmalloc": "since zbud and z3fold were removed in
6.15, zsmalloc has been the only option").

6.6 is read from the source only: Debian ships no 6.6 kernel, so no guest checked it.
Its 32 zpools are chosen by ``hash_ptr(entry)``, the slab address of the entry, which
no model can know: the model spreads entries over the zpools in turn, so a 6.6
``pool_total_size`` is an approximation (each zpool rounds its own zspages up).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from zsmalloc.errors import UnknownAlgorithmError
from zsmalloc.profile import VERSIONS, KernelProfile

ZPOOL_DRIVERS = ("zbud", "z3fold", "zsmalloc")

# debugfs files in zswap_debugfs_init() order (the order they are created in).
DEBUGFS_61 = (
    "pool_limit_hit",
    "reject_reclaim_fail",
    "reject_alloc_fail",
    "reject_kmemcache_fail",
    "reject_compress_poor",
    "written_back_pages",
    "duplicate_entry",
    "pool_total_size",
    "stored_pages",
    "same_filled_pages",
)
DEBUGFS_612 = (
    "pool_limit_hit",
    "reject_reclaim_fail",
    "reject_alloc_fail",
    "reject_kmemcache_fail",
    "reject_compress_fail",
    "reject_compress_poor",
    "written_back_pages",
    "pool_total_size",
    "stored_pages",
)
DEBUGFS_616 = (
    "pool_limit_hit",
    "reject_reclaim_fail",
    "reject_alloc_fail",
    "reject_kmemcache_fail",
    "reject_compress_fail",
    "reject_compress_poor",
    "decompress_fail",
    "written_back_pages",
    "pool_total_size",
    "stored_pages",
)
DEBUGFS_618 = (*DEBUGFS_616, "stored_incompressible_pages")
ALL_DEBUGFS = tuple(dict.fromkeys((*DEBUGFS_618, *DEBUGFS_61)))
"""Every debugfs file some kernel has (trace ``expect`` names are checked against it)."""

PARAMS_61 = (
    "enabled",
    "compressor",
    "zpool",
    "max_pool_percent",
    "accept_threshold_percent",
    "same_filled_pages_enabled",
    "non_same_filled_pages_enabled",
)
PARAMS_66 = (*PARAMS_61, "exclusive_loads")
PARAMS_612 = (
    "enabled",
    "compressor",
    "zpool",
    "max_pool_percent",
    "accept_threshold_percent",
    "shrinker_enabled",
)
PARAMS_618 = tuple(p for p in PARAMS_612 if p != "zpool")


@dataclass(frozen=True)
class ZswapRules:
    """What zswap does in one kernel (see the module's table)."""

    version: str
    zpool: bool  # allocation goes through mm/zpool.c (``zswap.zpool`` chooses)
    allocators: tuple[str, ...]  # zpool drivers the kernel has (upstream)
    debian_allocators: tuple[str, ...]  # the ones Debian's build offers
    default_zpool: str  # CONFIG_ZSWAP_ZPOOL_DEFAULT in Debian's config
    nr_zpools: int  # zpools per zswap pool (ZSWAP_NR_ZPOOLS)
    same_filled: bool  # same-value pages kept as one word (same_filled_pages)
    zswap_header: int  # bytes of struct zswap_header before each object of an evictable pool
    writeback: str  # "zpool" (the allocator's LRU), "pool-lru" (zswap's), "memcg-lru"
    limits: str  # "6.1", "6.6" (zswap_is_full/can_accept), "check_limits"
    compress_fail_counted: bool  # reject_compress_fail exists
    overflow_enospc: tuple[str, ...]  # compressors whose "does not fit" is -ENOSPC (poor)
    store_incompressible: bool  # a page that does not compress is stored as-is
    exclusive_loads: str  # "never", "param" (exclusive_loads), "always"
    large_folios: bool  # zswap_store() takes a large folio whole
    shrinker: bool  # the memory-pressure shrinker (shrinker_enabled)
    params: tuple[str, ...]  # /sys/module/zswap/parameters, in declaration order
    debugfs: tuple[str, ...]  # /sys/kernel/debug/zswap, in creation order

    @property
    def zpool_lru(self) -> bool:
        """Do zbud and z3fold keep an LRU and reclaim pages (zpool_shrink)?"""
        return self.writeback == "zpool"

    def check_zpool(self, name: str) -> str:
        """``name`` if this kernel has that allocator, else UnknownAlgorithmError (-ENOENT)."""
        if not self.zpool:
            raise UnknownAlgorithmError(
                f"Linux {self.version} has no zpool layer: zswap always uses zsmalloc",
                errno=2,
            )
        if name not in self.allocators:
            raise UnknownAlgorithmError(
                f"zpool {name!r} is not available in Linux {self.version}; "
                f"known: {', '.join(self.allocators)}",
                errno=2,
            )
        return name

    def pools(self) -> tuple[str, ...]:
        """The allocators a user of this kernel can pick (Debian's where it built the row)."""
        return self.debian_allocators or self.allocators


_61 = ZswapRules(
    version="6.1",
    zpool=True,
    allocators=ZPOOL_DRIVERS,
    debian_allocators=ZPOOL_DRIVERS,
    default_zpool="zbud",
    nr_zpools=1,
    same_filled=True,
    zswap_header=8,
    writeback="zpool",
    limits="6.1",
    compress_fail_counted=False,
    overflow_enospc=(),
    store_incompressible=False,
    exclusive_loads="never",
    large_folios=False,
    shrinker=False,
    params=PARAMS_61,
    debugfs=DEBUGFS_61,
)
_66 = replace(
    _61,
    version="6.6",
    debian_allocators=(),  # no Debian 6.6; the Kconfig default was still zbud (6.7: zsmalloc)
    nr_zpools=32,
    zswap_header=0,
    writeback="pool-lru",
    limits="6.6",
    exclusive_loads="param",
    params=PARAMS_66,
)
_612 = ZswapRules(
    version="6.12",
    zpool=True,
    allocators=ZPOOL_DRIVERS,
    debian_allocators=("zbud", "zsmalloc"),
    default_zpool="zsmalloc",
    nr_zpools=1,
    same_filled=False,
    zswap_header=0,
    writeback="memcg-lru",
    limits="check_limits",
    compress_fail_counted=True,
    overflow_enospc=("842",),  # deflate's crypto wrapper still says -EINVAL
    store_incompressible=False,
    exclusive_loads="always",
    large_folios=False,
    shrinker=True,
    params=PARAMS_612,
    debugfs=DEBUGFS_612,
)
_616 = replace(
    _612,
    version="6.16",
    allocators=("zsmalloc",),
    debian_allocators=("zsmalloc",),
    large_folios=True,
    overflow_enospc=("deflate", "842"),  # deflate became an acomp stream (6.15)
    debugfs=DEBUGFS_616,
)
_618 = replace(
    _616,
    version="6.18",
    zpool=False,
    store_incompressible=True,
    params=PARAMS_618,
    debugfs=DEBUGFS_618,
)

RULES: dict[str, ZswapRules] = {
    "6.1": _61,
    "6.6": _66,
    "6.12": _612,
    "6.16": _616,
    "6.17": replace(_616, version="6.17"),
    "6.18": _618,
    "7.2": replace(_618, version="7.2"),
    "7.3": replace(_618, version="7.3"),
}
"""One row per profile version (checked at import: every row of the profile has one)."""

missing = [v for v in VERSIONS if v not in RULES]
if missing:  # a profile row without zswap rules: a bug here, like a BUILD_BUG_ON
    raise AssertionError(f"zswap rules missing for kernel rows {missing}")
del missing


def zswap_rules(profile: KernelProfile | str) -> ZswapRules:
    """The zswap rules of a profile (or of a profile row such as ``"6.1"``)."""
    version = profile if isinstance(profile, str) else profile.version
    return RULES[version]
