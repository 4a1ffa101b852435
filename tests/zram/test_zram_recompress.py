"""Recompression (CONFIG_ZRAM_MULTI_COMP; not in the reference kernel): spec §2.14 rules.

Expected outcomes are computed from the rules themselves, applied page by page
with the compressors and the class table: accept the first secondary result
whose zsmalloc class index is strictly smaller, spend max_pages on every slot
tried, largest objects first, INCOMPRESSIBLE after the highest priority failed.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest

from zsmalloc.compress import get
from zsmalloc.errors import SysfsError
from zsmalloc.zram.device import ALL_BACKENDS, Zram
from zsmalloc.zs.size_class import class_table

PAGE = 4096
TABLE = class_table()
BACKENDS = tuple(b for b in ALL_BACKENDS if b != "842")


def text_page(seed: int) -> bytes:
    """Word soup: lzo leaves room that zstd can take, by a varying amount."""
    rng = np.random.default_rng(seed)
    words = [b"zram ", b"slot ", b"page ", b"idle ", b"huge ", b"the ", b"of "]
    words += [rng.bytes(int(rng.integers(2, 9))) for _ in range(int(rng.integers(5, 60)))]
    out = b"".join(words[int(i)] for i in rng.integers(0, len(words), 1500))
    return out[:PAGE].ljust(PAGE, b".")


def make(pages: dict[int, bytes], secondaries: str = "zstd") -> Zram:
    z = Zram(backends=BACKENDS)
    z.write_attr("comp_algorithm", "lzo")
    for prio, alg in enumerate(secondaries.split(), 1):
        z.write_attr("recomp_algorithm", f"algo={alg} priority={prio}")
    z.write_attr("disksize", "64K")
    for slot, page in pages.items():
        z.write(slot * PAGE, page)
    return z


def accepted(page: bytes, old: int, alg: str, threshold: int = 0) -> int | None:
    """The spec's acceptance rule for one try: new length, or None."""
    new = len(get(alg).compress(page))
    if TABLE.lookup_class_index(new) >= TABLE.lookup_class_index(old):
        return None
    if threshold and new >= threshold:
        return None
    return new


def test_recomp_algorithm_listing_and_errors() -> None:
    z = Zram(backends=BACKENDS)
    z.write_attr("recomp_algorithm", "algo=zstd")
    z.write_attr("recomp_algorithm", "algo=lz4 priority=3")
    assert z.read_attr("recomp_algorithm") == (
        "#1: lzo-rle lzo lz4 lz4hc [zstd] deflate \n#3: lzo-rle lzo [lz4] lz4hc zstd deflate \n"
    )
    for bad, err in [
        ("priority=1", errno.EINVAL),
        ("algo=zstd priority=4", errno.EINVAL),
        ("algo=nope", errno.EINVAL),
        ("algo", errno.EINVAL),
    ]:
        with pytest.raises(SysfsError) as exc:
            z.write_attr("recomp_algorithm", bad)
        assert exc.value.errno == err, bad


def test_every_slot_follows_the_acceptance_rule() -> None:
    pages = {s: text_page(s) for s in range(12)}
    pages[12] = np.random.default_rng(1).bytes(PAGE)  # huge and incompressible
    z = make(pages)
    old = {s: z.slot(s)["size"] for s in pages}
    before = z.mm_stat()
    z.write_attr("recompress", "")
    n_new = 0
    for s, page in pages.items():
        want = accepted(page, old[s], "zstd")
        info = z.slot(s)
        if want is None:
            assert info["priority"] == 0 and info["size"] == old[s]
            assert "incompressible" in info["flags"]  # the highest priority was tried
        else:
            n_new += 1
            assert info["priority"] == 1 and info["size"] == want
            assert info["kind"] == "compressed"
        assert z.read(s * PAGE, PAGE) == page  # decompressed with the slot's algorithm
    assert 0 < n_new < len(pages)
    after = z.mm_stat()
    assert after.orig_data_size == before.orig_data_size
    assert after.compr_data_size == sum(z.slot(s)["size"] for s in pages)
    assert after.mem_used_max == before.mem_used_max  # recompression does not update it
    # a second run finds nothing to do: recompressed slots are at the top priority,
    # the others are INCOMPRESSIBLE
    flags = z.flags.copy()
    z.write_attr("recompress", "")
    assert (z.flags == flags).all()


def test_max_pages_spends_on_largest_first() -> None:
    pages = {s: text_page(100 + s) for s in range(10)}
    z = make(pages)
    old = {s: z.slot(s)["size"] for s in pages}
    z.write_attr("recompress", "max_pages=3")
    tried = [
        s for s in pages if z.slot(s)["priority"] == 1 or "incompressible" in z.slot(s)["flags"]
    ]
    order = sorted(pages, key=lambda s: (old[s] // 64, s), reverse=True)
    assert sorted(tried) == sorted(order[:3])


def test_threshold_skips_small_objects_and_bounds_new_size() -> None:
    pages = {s: text_page(200 + s) for s in range(10)}
    z = make(pages)
    old = {s: z.slot(s)["size"] for s in pages}
    threshold = sorted(old.values())[5]
    z.write_attr("recompress", f"threshold={threshold}")
    for s, page in pages.items():
        info = z.slot(s)
        if old[s] < threshold:
            assert info["priority"] == 0 and info["flags"] == []  # not even tried
        else:
            want = accepted(page, old[s], "zstd", threshold)
            assert info["size"] == (old[s] if want is None else want)
    with pytest.raises(SysfsError) as exc:
        z.write_attr("recompress", "threshold=3625")  # must be below huge_class_size
    assert exc.value.errno == errno.EINVAL


def test_huge_mode_drops_the_huge_flag() -> None:
    z = make({0: text_page(7), 1: np.random.default_rng(2).bytes(PAGE)}, secondaries="zstd")
    rng = np.random.default_rng(3)
    semi = rng.integers(0, 16, PAGE, dtype=np.uint8).tobytes()  # lzo cannot fit it, zstd can
    z.write(2 * PAGE, semi)
    assert [z.slot(s)["kind"] for s in range(3)] == ["compressed", "huge", "huge"]
    before = z.mm_stat()
    z.write_attr("recompress", "type=huge")
    want = accepted(semi, PAGE, "zstd")
    assert want is not None
    assert z.slot(2) == {"kind": "compressed", "size": want, "flags": [], "priority": 1}
    assert z.slot(0)["priority"] == 0  # not huge: not a candidate
    after = z.mm_stat()
    assert after.huge_pages == before.huge_pages - 1
    assert after.huge_pages_since == before.huge_pages_since
    assert z.read(2 * PAGE, PAGE) == semi


def test_priority_range_errors() -> None:
    z = make({0: text_page(1)})
    for spec, err in [
        ("priority=2", errno.EINVAL),
        ("algo=lz4", errno.EINVAL),
        ("type=cold", errno.EINVAL),
        ("max_pages", errno.EINVAL),
    ]:
        with pytest.raises(SysfsError) as exc:
            z.write_attr("recompress", spec)
        assert exc.value.errno == err, spec
    z2 = Zram(backends=BACKENDS)
    with pytest.raises(SysfsError) as exc:
        z2.write_attr("recompress", "")
    assert exc.value.errno == errno.EINVAL  # not initialised


def test_chained_priorities_try_in_order() -> None:
    """With lz4 at 1 and zstd at 2, zstd is tried only when lz4 makes no progress."""
    rng = np.random.default_rng(4)
    pages = {s: text_page(300 + s) for s in range(4)}  # lz4 no better than lzo; zstd is
    for s in range(4, 10):  # short periods and small integers: lz4 often beats lzo
        if s % 2:
            unit = rng.bytes(int(rng.integers(3, 400)))
            pages[s] = (unit * (PAGE // len(unit) + 1))[:PAGE]
        else:
            pages[s] = rng.integers(0, 1000, PAGE // 4, dtype=np.uint32).tobytes()
    pages[10] = rng.bytes(PAGE)
    z = make(pages, secondaries="lz4 zstd")
    old = {s: z.slot(s)["size"] for s in pages}
    z.write_attr("recompress", "")
    outcomes = set()
    for s, page in pages.items():
        first = accepted(page, old[s], "lz4")
        second = accepted(page, old[s], "zstd")
        info = z.slot(s)
        if first is not None:
            outcomes.add(1)
            assert (info["priority"], info["size"]) == (1, first)
        elif second is not None:
            outcomes.add(2)
            assert (info["priority"], info["size"]) == (2, second)
        else:
            outcomes.add(0)
            assert "incompressible" in info["flags"] and info["priority"] == 0
        assert z.read(s * PAGE, PAGE) == page
    assert outcomes == {0, 1, 2}
