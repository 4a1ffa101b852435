"""``estimate_zswap`` per kernel and pool against the guests' store-only runs.

The estimate takes the pages (or their lengths) in one pass, never the model: this
checks its closed form (zsmalloc) and its in-order allocation (zbud, z3fold) against
what each Debian kernel measured on the same pages (tests/data/kernels/zswap*).
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from recordings import PAGE_SETS, RECORDINGS, read_recording

from zsmalloc.profile import KernelProfile, profile_for_release
from zsmalloc.zswap.compression import page_clens
from zsmalloc.zswap.estimate import estimate_zswap, estimate_zswap_pools

STORE_ONLY = [p for p in RECORDINGS if "-limit-" not in p.name]


@pytest.mark.parametrize("path", STORE_ONLY, ids=lambda p: p.name.split(".txt")[0])
def test_estimate_equals_the_guest(path: object) -> None:
    rec = read_recording(path)  # type: ignore[arg-type]
    pages = np.frombuffer(gzip.decompress(rec.page_set.read_bytes()), np.uint8).reshape(-1, 4096)
    prof = profile_for_release(rec.release)
    e = estimate_zswap(pages, compressor=rec.compressor, profile=prof, zpool=rec.zpool or None)
    want = rec.snapshots["after"]
    assert e.pool_total_size == want["pool_total_size"]
    assert e.stored_pages == want["stored_pages"]
    assert e.reject_compress_poor == want["reject_compress_poor"]
    assert e.reject_compress_fail == want.get("reject_compress_fail", 0)
    assert e.same_filled_pages == want.get("same_filled_pages", 0)
    assert e.stored_incompressible_pages == want.get("stored_incompressible_pages", 0)
    assert not e.approximate


def test_every_pool_at_once_and_the_kernel_default() -> None:
    edge = gzip.decompress(PAGE_SETS["edge"].read_bytes())
    pages = np.frombuffer(edge, np.uint8).reshape(-1, 4096)
    p61 = KernelProfile("6.1")
    views = estimate_zswap_pools(pages, compressor="lzo", profile=p61)
    assert [v.zpool for v in views] == ["zbud", "z3fold", "zsmalloc"]
    assert estimate_zswap(pages, compressor="lzo", profile=p61) == views[0]  # Debian: zbud
    assert [v.zpool for v in estimate_zswap_pools(pages, profile=KernelProfile("6.18"))] == [
        "zsmalloc"
    ]
    clens = page_clens(pages, "lzo", same_filled=True)
    assert estimate_zswap(clens=clens, profile=p61, zpool="z3fold") == views[1]


def test_66_is_marked_approximate() -> None:
    e = estimate_zswap(clens=[1000] * 100, profile=KernelProfile("6.6"), zpool="zsmalloc")
    assert e.approximate and e.kernel == "6.6"


def test_zpool_the_kernel_lacks_is_refused() -> None:
    from zsmalloc.errors import UnknownAlgorithmError

    with pytest.raises(UnknownAlgorithmError):
        estimate_zswap(clens=[100], profile=KernelProfile("6.16"), zpool="zbud")
    with pytest.raises(UnknownAlgorithmError):
        estimate_zswap(clens=[100], profile=KernelProfile("6.18"), zpool="z3fold")
