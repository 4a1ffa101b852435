"""Fixtures for the zswap tests.

``make_zswap`` builds a :class:`~zsmalloc.zswap.zswap.Zswap` on the package's
zsmalloc ``Pool`` (checked once per session; a broken Pool fails the tests).  The rule
tests store pages "as-is" (``clen > 4096``): each such object takes exactly one
page of the huge class, so ``total_pages`` equals the number stored and the
expected values follow from the spec alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from naive import NaiveZsmalloc
from zsmalloc.zs.pool import Pool
from zsmalloc.zswap.params import ZswapParams
from zsmalloc.zswap.zswap import ZsPoolLike, Zswap


def _pool_factory() -> Callable[[], ZsPoolLike]:
    """The package's Pool, after a smoke test against the oracle; a broken Pool fails here.

    There is no fallback: tests/naive.py (checked against the kernel's traces in
    tests/test_naive_oracle.py) judges the Pool, it never stands in for it, so a
    broken Pool cannot leave these tests green.
    """
    pool, oracle = Pool(), NaiveZsmalloc()
    sizes = (100, 3000, 4096, 100)
    handles = [(pool.malloc(n), oracle.malloc(n)) for n in sizes]
    assert pool.total_pages() == oracle.pages, (
        f"Pool smoke test: {oracle.pages} pages expected after zs_malloc{sizes}, "
        f"found {pool.total_pages()}"
    )
    for h, o in handles:
        pool.free(h)
        oracle.free(o)
    assert pool.total_pages() == oracle.pages == 0, "Pool smoke test: pages left after frees"
    return Pool  # type: ignore[return-value]


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
