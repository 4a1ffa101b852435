"""Fixtures shared by every test module.

- ``testdata``: ``tests/data``, recorded on real kernels (6.18.44 here, Debian's
  6.1/6.12/7.2 in QEMU guests); part of the repository, so it is always there.
- ``live_zram``: a factory for our own hot-added zram device; skips with the
  precise reason when there is no root or no zram.  Devices are always removed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from zsmalloc.testing.shared import testdata_dir

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def testdata() -> Path:
    # the checkout's, or this directory's when the tests run against an installed
    # package (the sdist carries them: python -m build, .ci/run)
    d = testdata_dir() or Path(__file__).parent / "data"
    assert d.is_dir(), "tests/data (kernel-recorded ground truth) is part of the repository"
    return d


@pytest.fixture
def live_zram() -> Iterator[Callable[..., object]]:
    """Factory: ``live_zram(algorithm="lz4", disksize=...)`` -> an entered LiveZram."""
    from zsmalloc.live.zram import LiveZram, zram_unavailable_reason

    reason = zram_unavailable_reason()
    if reason:
        pytest.skip(reason)
    made: list[LiveZram] = []

    def make(**kwargs: object) -> LiveZram:
        dev = LiveZram(**kwargs)  # type: ignore[arg-type]
        made.append(dev)
        return dev.__enter__()

    try:
        yield make
    finally:
        for dev in made:
            dev.remove()


# What a test may leave in os.environ: pytest's own marker, and the CLI's pin of numpy's
# BLAS to one thread (set once by `zsmalloc` when run in-process, as in a real run).
_ENVIRON_OWNED = {"PYTEST_CURRENT_TEST", "OPENBLAS_NUM_THREADS"}


@pytest.fixture(autouse=True)
def environ_unchanged() -> Iterator[None]:
    """Fail the test that changes this process's environment and does not put it back:
    every process started afterwards would inherit it (Dask's nannies once left
    MALLOC_TRIM_THRESHOLD_ behind, and a later swap-out test saw a different process)."""
    before = {k: v for k, v in os.environ.items() if k not in _ENVIRON_OWNED}
    yield
    after = {k: v for k, v in os.environ.items() if k not in _ENVIRON_OWNED}
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the test left os.environ changed: {changed}"
