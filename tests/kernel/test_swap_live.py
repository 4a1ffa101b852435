"""``estimate --pid`` against a real swap-out of a real process (root; skipped otherwise).

A Python process of its own (:mod:`zsmalloc.live.memhog`: dicts, strings,
floats, numpy arrays with THPs, zero-filled, shared, mlocked, MADV_FREE'd and
library memory) is started in a memory cgroup, estimated, then swapped out
into a hot-added zram device used as swap (and, once, through zswap before a
swap file); every mm_stat column (zswap: its debugfs counters) must equal the
estimate when no page stayed resident.  The machine is left as found whatever
happens, Ctrl-C included: no swap area, zram device, cgroup or process of ours.

Size: ``ZSMALLOC_LIVE_SWAP_MIB`` (default 64, for CI); the issue's figures use
512 and more (``python bench/swap_out.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zsmalloc.cli.live import render_result

pytestmark = pytest.mark.kernel

MIB = int(os.environ.get("ZSMALLOC_LIVE_SWAP_MIB", "64"))


@pytest.fixture
def swap_ok() -> None:
    from zsmalloc.live.swap import swap_unavailable_reason

    reason = swap_unavailable_reason()
    if reason:
        pytest.skip(reason)


def ours() -> tuple[object, ...]:
    """Everything a swap-out check could leave behind."""
    swaps = [
        line.split()[0]
        for line in Path("/proc/swaps").read_text().splitlines()[1:]
        if "zram" in line or "zsmalloc" in line
    ]
    cgroups = sorted(
        p.name
        for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory"))
        if root.is_dir()
        for p in root.iterdir()
        if p.name.startswith("zsmalloc-swap-")
    )
    zswap = Path("/sys/module/zswap/parameters/enabled")
    return tuple(swaps), cgroups, zswap.read_text() if zswap.exists() else None


def check(algo: str, zswap: bool = False, seed: int = 1) -> None:
    from zsmalloc.errors import KernelUnavailableError
    from zsmalloc.live.verify_swap import verify_swap

    before = ours()
    try:
        result = verify_swap(MIB, algo, seed=seed, zswap=zswap)
    except KernelUnavailableError as exc:
        pytest.skip(str(exc))
    assert result.ok, render_result(result)
    assert ours() == before
    assert not result.restore_errors
    if not zswap:
        assert not (Path("/sys/block") / result.device).exists()  # always removes its device
    e = result.events
    assert e["left_resident"] == 0  # so every comparison was exact
    assert all(c.rule in ("exact", ">= model") for c in result.comparisons)
    # The mix really has what the rules are about.
    mix = f"counts {result.counts}, events {e}"
    assert result.counts["zero_map"] > 0 and e["same_filled_pages"] > 0, mix
    assert e["skipped: mlocked pages (never swapped)"] > 0
    assert e["skipped: MADV_FREE'd or droppable pages (discarded, not swapped)"] > 0
    rows = {c.name: c for c in result.comparisons}
    if zswap:
        assert rows["stored_pages"].kernel > MIB * 128  # at least half the data reached zswap
    else:
        assert rows["huge_pages"].kernel > 0 and rows["same_pages"].kernel > 0
        assert e["thp_swpout"] > 0  # THPs went out whole, as the estimate assumed


@pytest.mark.usefixtures("swap_ok")
@pytest.mark.parametrize("algo", ["lzo", "lzo-rle", "lz4"])
def test_swap_out_equals_estimate(algo: str) -> None:
    check(algo)


@pytest.mark.usefixtures("swap_ok")
def test_zswap_swap_out_equals_estimate() -> None:
    from zsmalloc.live.zswap import zswap_unavailable_reason

    reason = zswap_unavailable_reason()
    if reason:
        pytest.skip(reason)
    check("lzo", zswap=True)


@pytest.mark.usefixtures("swap_ok")
def test_interrupted_swap_out_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the middle of the swap-out: process, cgroup, swap and device all go."""
    from zsmalloc.live import verify_swap
    from zsmalloc.live.cgroup import MemoryCgroup

    seen: dict[str, object] = {}

    def interrupted(self: MemoryCgroup, steps: int = 8) -> None:
        seen["cgroup"] = self.path
        seen["pids"] = (self.path / "cgroup.procs").read_text().split()
        seen["swaps"] = Path("/proc/swaps").read_text()
        raise KeyboardInterrupt

    monkeypatch.setattr(MemoryCgroup, "swap_out", interrupted)
    before = ours()
    with pytest.raises(KeyboardInterrupt):
        verify_swap.verify_swap(16, "lz4")
    assert ours() == before
    assert "zram" in str(seen["swaps"])  # it was swap while interrupted
    assert not Path(str(seen["cgroup"])).exists()
    for pid in seen["pids"]:  # type: ignore[attr-defined]
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
