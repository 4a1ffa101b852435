"""Pool limit and hysteresis (spec §6), with cases that a wrong rule fails.

Every stored page here is incompressible (``clen`` 5000 > 4096): stored as-is,
one object of the huge class, one zsmalloc page.  So ``total_pages()`` is the
number of entries and each expected value is spec arithmetic.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zsmalloc.errors import SysfsError
from zsmalloc.zswap.zswap import Zswap

RAW = 5000  # compresses to more than a page: stored as-is (4096 B, one page)


def fill(z: Zswap, offsets: range) -> list[bool]:
    return [z.store(o, clen=RAW).stored for o in offsets]


def test_limit_and_threshold_arithmetic(make_zswap: Callable[..., Zswap]) -> None:
    # max = 1099 * 1 // 100 = 10; thr = 10 * 99 // 100 = 9 (of max, not of RAM:
    # 1099 * 1 * 99 // 10000 would be 10).
    z = make_zswap(1099, max_pool_percent=1, accept_threshold_percent=99)
    assert (z.max_pages(), z.accept_thr_pages()) == (10, 9)


def test_hysteresis_sequence(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1000, max_pool_percent=1, accept_threshold_percent=50)  # max 10, thr 5
    assert fill(z, range(10)) == [True] * 10  # totals 0..9 are below max
    assert z.total_pages() == 10 and z.counters.pool_limit_hit == 0

    assert z.store(10, clen=RAW).where == "disk"  # 10 >= 10: hit, full, reject
    assert z.counters.pool_limit_hit == 1 and z.reached_full
    assert z.shrink_work_pending  # a rejected store while full queues the worker

    for o in range(4):
        z.invalidate(o)
    assert z.total_pages() == 6
    # 6 < max but still full: 6 > thr.  A rule without hysteresis would accept.
    assert not z.store(11, clen=RAW).stored
    assert z.counters.pool_limit_hit == 1  # below max: no hit counted

    z.invalidate(4)  # total 5 == thr: "at or below" accepts (a strict "<" would not)
    assert z.store(12, clen=RAW).stored
    assert not z.reached_full
    assert z.debugfs()["stored_pages"] == 6


def test_every_attempt_at_limit_counts(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1000, max_pool_percent=1)
    fill(z, range(10))
    assert fill(z, range(10, 15)) == [False] * 5
    assert z.counters.pool_limit_hit == 5  # every attempt, not only the transition


def test_store_that_crosses_the_limit_succeeds(make_zswap: Callable[..., Zswap]) -> None:
    # The check runs once per folio, before compression: 9 < 10, so a 4-page folio goes in.
    z = make_zswap(1000, max_pool_percent=1)
    fill(z, range(9))
    assert z.store_folio(100, clens=[RAW] * 4).stored
    assert z.total_pages() == 13 and z.counters.pool_limit_hit == 0


def test_max_pool_percent_zero_rejects_everything(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1000, max_pool_percent=0)
    assert fill(z, range(3)) == [False] * 3
    assert z.counters.pool_limit_hit == 3 and z.debugfs()["stored_pages"] == 0


def test_threshold_100_means_no_hysteresis(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1000, max_pool_percent=1, accept_threshold_percent=100)
    fill(z, range(11))  # the 11th is rejected
    z.invalidate(0)
    assert z.store(20, clen=RAW).stored  # 9 <= thr 10


def test_rejected_store_drops_stale_entry(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1000, max_pool_percent=1)
    fill(z, range(10))
    assert not z.store(3, clen=RAW).stored  # offset 3 re-swapped while full
    assert 3 not in z.tree and z.debugfs()["stored_pages"] == 9


def test_bad_parameter_changes_nothing(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1000)
    before = z.params
    for name, value, err in [
        ("accept_threshold_percent", "1_0", errno.EINVAL),
        ("accept_threshold_percent", " 90", errno.EINVAL),
        ("max_pool_percent", "-1", errno.EINVAL),
        ("max_pool_percent", "4294967296", errno.ERANGE),
        ("enabled", "maybe", errno.EINVAL),
        ("shrinker_enabled", None, errno.EINVAL),
        ("zpool", "zsmalloc", errno.ENOENT),
    ]:
        with pytest.raises(SysfsError) as exc:
            z.set_param(name, value)  # type: ignore[arg-type]
        assert exc.value.errno == err, (name, value)
    assert z.params == before


def test_parameters_parse_as_the_live_kernel_does(make_zswap: Callable[..., Zswap]) -> None:
    """Values written to /sys/module/zswap/parameters on 6.18.44, and what it kept.

    The numbers are param_set_uint (kstrtouint, base 0, no range check: 101 is
    taken), the flags param_set_bool (kstrtobool: first one or two bytes).
    tests/kernel/test_zswap_live.py repeats this against the running kernel.
    """
    z = make_zswap(1000)
    for name, value, kept in [
        ("accept_threshold_percent", "101", 101),
        ("accept_threshold_percent", "010", 8),
        ("accept_threshold_percent", "0x10", 16),
        ("accept_threshold_percent", "+5\n", 5),
        ("max_pool_percent", "5\0abc", 5),  # the kernel reads a C string
        ("max_pool_percent", "0X1f", 31),
        ("max_pool_percent", "", 31),  # a zero-byte write reaches no setter
        ("shrinker_enabled", "yes", True),
        ("shrinker_enabled", "of", False),
        ("shrinker_enabled", "On", True),
    ]:
        z.set_param(name, value)
        assert getattr(z.params, name) == kept, (name, value)


@given(
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=80),
    max_pct=st.integers(0, 3),
    acc=st.integers(0, 100),
)
def test_check_limits_matches_spec_formula(
    make_zswap: Callable[..., Zswap], ops: list[tuple[bool, int]], max_pct: int, acc: int
) -> None:
    """Whatever the history, each store's fate is the spec §6 rule on the state before it."""
    z = make_zswap(1000, max_pool_percent=max_pct, accept_threshold_percent=acc)
    full, hits = False, 0
    for is_store, off in ops:
        if not is_store:
            z.invalidate(off)
            continue
        total, mx, thr = z.total_pages(), 1000 * max_pct // 100, 1000 * max_pct // 100 * acc // 100
        if total >= mx:
            hits, full = hits + 1, True
        elif full and total <= thr:
            full = False
        assert z.store(off, clen=RAW).stored == (not full)
        assert z.counters.pool_limit_hit == hits
        assert z.total_pages() == len(z.tree) == z.counters.stored_pages
