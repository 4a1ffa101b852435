"""The zswap model against the running kernel's zswap (root; skipped with the reason otherwise).

A small store-only workload goes through the kernel's zswap and the model;
stored_pages, stored_incompressible_pages and pool_total_size must be equal,
and again after random frees (invalidate) and swap-ins (exclusive load).
The machine must be left as found: swap off, zswap parameters unchanged,
no cgroup, no swap file, whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kernel


@pytest.fixture
def live_ok() -> None:
    from zsmalloc.zswap.live import zswap_unavailable_reason

    reason = zswap_unavailable_reason()
    if reason:
        pytest.skip(reason)


def run_or_skip(*args: Any, **kwargs: Any) -> Any:
    """verify.run, skipping when the machine is busy swapping (other processes)."""
    from zsmalloc.errors import KernelUnavailableError
    from zsmalloc.zswap.verify import run

    try:
        return run(*args, **kwargs)
    except KernelUnavailableError as exc:
        pytest.skip(str(exc))


def machine_state() -> tuple[object, ...]:
    from zsmalloc.zswap.live import SAVED_PARAMS, read_param

    swaps = Path("/proc/swaps").read_text().splitlines()[1:]
    cgroups = sorted(
        p.name
        for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory"))
        if root.is_dir()
        for p in root.iterdir()
        if p.name.startswith("zsmalloc-zswap-")
    )
    files = sorted(p.name for p in Path("/var/tmp").glob("zsmalloc-zswap-*"))
    mounts = Path("/proc/mounts").read_text().count(" debugfs ")
    return tuple(read_param(n) for n in SAVED_PARAMS), swaps, cgroups, files, mounts


@pytest.mark.usefixtures("live_ok")
def test_store_only_matches_kernel() -> None:
    before = machine_state()
    result = run_or_skip(1500, seed=11, compressor="lzo", churn=800)
    rows = {r.name: r for r in result.rows if r.phase == "store"}
    for name in ("stored_pages", "stored_incompressible_pages", "pool_total_size"):
        assert rows[name].kernel == rows[name].model, result.render()
    assert rows["stored_pages"].kernel > 1000  # the pages really reached zswap
    assert rows["stored_incompressible_pages"].kernel > 0
    # after 800 frees and exclusive loads, the pool is still the model's, page for page
    churn = {r.name: r for r in result.rows if r.phase == "churn"}
    assert churn["stored_pages"].kernel < rows["stored_pages"].kernel - 300
    assert churn["pool_total_size"].kernel == churn["pool_total_size"].model
    assert result.ok, result.render()
    assert machine_state() == before


@pytest.mark.slow
@pytest.mark.usefixtures("live_ok")
def test_pool_limit_matches_kernel() -> None:
    """max = totalram // 100 pages at 1 %; every store beyond it counts (spec §6)."""
    from zsmalloc.zswap.verify import totalram_pages

    before = machine_state()
    result = run_or_skip(500, seed=3, limit=True)
    rows = {r.name: r for r in result.rows}
    assert rows["stored_pages"].kernel == totalram_pages() // 100
    assert rows["pool_limit_hit"].kernel == 500
    assert result.ok, result.render()
    assert machine_state() == before


@pytest.mark.usefixtures("live_ok")
def test_restores_everything_after_an_error() -> None:
    from zsmalloc.zswap.live import LiveZswap, read_param

    before = machine_state()
    with pytest.raises(RuntimeError, match="boom"), LiveZswap(swap_size=16 << 20) as z:
        assert read_param("enabled") == "Y"
        assert z.hold(bytes(range(256)) * 16 * 8) == 0  # 8 pages paged out
        assert z.counters()["stored_pages"] == 8
        raise RuntimeError("boom")
    assert machine_state() == before
    assert not z.undo_errors


@pytest.mark.usefixtures("live_ok")
def test_unknown_kernel_compressor_is_a_clean_error() -> None:
    from zsmalloc.errors import SysfsError
    from zsmalloc.zswap.live import LiveZswap

    before = machine_state()
    with pytest.raises(SysfsError, match="crypto API"), LiveZswap(compressor="no-such-algo"):
        pass
    assert machine_state() == before


def test_cli_verify_without_root_or_zswap_is_clean() -> None:
    """Whatever the machine, the command never prints a traceback."""
    out = subprocess.run(
        [sys.executable, "-m", "zsmalloc.cli.main", "zswap", "verify", "--pages", "0"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
