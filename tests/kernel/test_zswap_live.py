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

from zsmalloc.cli.live import render_result

pytestmark = pytest.mark.kernel


@pytest.fixture
def live_ok() -> None:
    from zsmalloc.live.zswap import zswap_unavailable_reason

    reason = zswap_unavailable_reason()
    if reason:
        pytest.skip(reason)


def run_or_skip(*args: Any, **kwargs: Any) -> Any:
    """verify_zswap, skipping when the machine is busy swapping (other processes)."""
    from zsmalloc.errors import KernelUnavailableError
    from zsmalloc.live.verify_zswap import verify_zswap

    try:
        return verify_zswap(*args, **kwargs)
    except KernelUnavailableError as exc:
        pytest.skip(str(exc))


def machine_state() -> tuple[object, ...]:
    from zsmalloc.live.zswap import SAVED_PARAMS, read_param

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
    rows = {r.name: r for r in result.comparisons if r.phase == "stores"}
    for name in ("stored_pages", "stored_incompressible_pages", "pool_total_size"):
        assert rows[name].kernel == rows[name].model, render_result(result)
    assert rows["stored_pages"].kernel > 1000  # the pages really reached zswap
    assert rows["stored_incompressible_pages"].kernel > 0
    # after 800 frees and exclusive loads, the pool is still the model's, page for page
    churn = {r.name: r for r in result.comparisons if r.phase == "churn"}
    assert churn["stored_pages"].kernel < rows["stored_pages"].kernel - 300
    assert churn["pool_total_size"].kernel == churn["pool_total_size"].model
    assert result.ok, render_result(result)
    assert result.events["left_resident"] == 0 and result.counts["store"] == 1500
    assert machine_state() == before


@pytest.mark.slow
@pytest.mark.usefixtures("live_ok")
def test_pool_limit_matches_kernel() -> None:
    """max = totalram // 100 pages at 1 %; every store beyond it counts (spec §6)."""
    from zsmalloc.live.zswap import totalram_pages

    before = machine_state()
    result = run_or_skip(500, seed=3, limit=True)
    rows = {r.name: r for r in result.comparisons}
    assert rows["stored_pages"].kernel == totalram_pages() // 100
    assert rows["pool_limit_hit"].kernel == 500
    assert result.ok, render_result(result)
    assert machine_state() == before


@pytest.mark.usefixtures("live_ok")
def test_restores_everything_after_an_error() -> None:
    from zsmalloc.live.zswap import LiveZswap, read_param

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
    from zsmalloc.live.zswap import LiveZswap

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


def test_verify_commands_are_one_command() -> None:
    """``zsmalloc verify --zswap`` and ``zsmalloc zswap verify``: same options, same defaults."""
    from zsmalloc.cli.verify import run_check, verify_cmd, zswap_verify_cmd
    from zsmalloc.cli.zswap import zswap_cmd
    from zsmalloc.live.defaults import ZSWAP

    assert zswap_cmd.get_command(None, "verify") is zswap_verify_cmd  # type: ignore[arg-type]
    shared = {p.name for p in zswap_verify_cmd.params}
    # verify's own: which check, and --guest's package, accelerator and recorder check
    assert shared == {p.name for p in verify_cmd.params} - {
        "mode", "packages", "accel", "record", "parallel"}
    assert shared >= {"algo", "n_ops", "seed", "nr_pages", "limit", "save", "as_json"}
    assert zswap_verify_cmd.callback is not None and run_check is not None
    assert ZSWAP["n_ops"] > 0 and ZSWAP["nr_pages"] > 0  # a real workload, not 0 ops


@pytest.mark.usefixtures("live_ok")
def test_parameter_parsing_matches_the_kernel() -> None:
    """Each value written to the real /sys/module/zswap/parameters and to the model:
    same errno, same value kept.  Only while zswap is off (nothing of anyone's is
    stored); every parameter is written back."""
    import errno
    import os

    from zsmalloc.errors import SysfsError
    from zsmalloc.live.zswap import ZSWAP_PARAMS, read_param
    from zsmalloc.zswap.params import ZswapParams

    if read_param("enabled") != "N":
        pytest.skip("zswap is enabled on this machine: its parameters are in use")
    names = ("max_pool_percent", "accept_threshold_percent", "shrinker_enabled")
    values = [
        "101", "010", "0x10", "0X1f", " 1", "1_0", "1\n", "1\n\n", "+5", "-1", "",
        "4294967295", "4294967296", "99999999999999999999999x", "0x", "٣", "5\0abc",
    ]  # fmt: skip
    flags = ["yes", "o", "of", "On", "x", " y", "1\n", "N", "0x5", ""]
    saved = {n: read_param(n) for n in names}

    def kernel_write(name: str, value: str) -> tuple[int | None, str]:
        fd = os.open(ZSWAP_PARAMS / name, os.O_WRONLY)
        try:
            os.write(fd, value.encode())
            return None, read_param(name)
        except OSError as exc:
            return exc.errno, read_param(name)
        finally:
            os.close(fd)

    model = ZswapParams(**{n: v == "Y" if v in "YN" else int(v) for n, v in saved.items()})
    try:
        for name in names:
            for value in flags if name == "shrinker_enabled" else values:
                k_err, k_now = kernel_write(name, value)
                try:
                    model = model.with_value(name, value)
                    m_err = None
                except SysfsError as exc:
                    m_err = exc.errno
                assert (m_err, model.as_sysfs()[name]) == (k_err, k_now), (name, value)
                if k_err is not None:
                    assert k_err in (errno.EINVAL, errno.ERANGE)
    finally:
        for name, value in saved.items():
            kernel_write(name, value)
    assert {n: read_param(n) for n in names} == saved
