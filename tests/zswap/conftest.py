"""Fixtures for the zswap tests.

``make_zswap`` builds a :class:`~zsmalloc.zswap.zswap.Zswap` on the package's
zsmalloc ``Pool`` when it exists, otherwise on the list-based oracle of
``tests/naive.py`` (which replays the kernel's zram traces exactly).  The rule
tests store pages "as-is" (``clen > 4096``): each such object takes exactly one
page of the huge class, so ``total_pages`` equals the number stored and the
expected values follow from the spec alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from zsmalloc.zswap.params import ZswapParams
from zsmalloc.zswap.zswap import ZsPoolLike, Zswap


def _pool_factory() -> Callable[[], ZsPoolLike]:
    try:
        from zsmalloc.zs.pool import Pool

        p = Pool()
        handles = [p.malloc(100), p.malloc(4096)]
        assert p.total_pages() == 2
        for h in handles:
            p.free(h)
        return Pool  # type: ignore[return-value]
    except Exception:  # the package's Pool missing or unfinished: use the oracle
        from naive import NaiveZsmalloc

        class NaivePool(NaiveZsmalloc):
            def total_pages(self) -> int:
                return self.pages

        return NaivePool


@pytest.fixture(scope="session")
def pool_factory() -> Callable[[], ZsPoolLike]:
    return _pool_factory()


@pytest.fixture(scope="session")
def make_zswap(pool_factory: Callable[[], ZsPoolLike]) -> Callable[..., Zswap]:
    def make(totalram_pages: int = 1000, worker: str = "manual", **params: Any) -> Zswap:
        params.setdefault("enabled", True)
        return Zswap(
            totalram_pages, ZswapParams(**params), pool_factory=pool_factory, worker=worker
        )

    return make
