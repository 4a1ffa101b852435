"""The memory cgroup harness on a fake hierarchy: what it writes, in which order.

The live swap-out checks (tests/kernel/test_swap_live.py) run on whichever
hierarchy the machine has; here both are played on plain files so that each
rule is checked everywhere: v1 lowers ``memory.limit_in_bytes`` step by step
and sweeps with ``memory.force_empty``; v2 never sets ``memory.max`` below the
usage (that would call the OOM killer on the process) and reclaims through
``memory.reclaim``; statistics are flushed (memory.stat read) before each step.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from zsmalloc.errors import KernelUnavailableError
from zsmalloc.live import cgroup


def fake(tmp_path: Path, version: int, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    monkeypatch.setattr(cgroup, "memory_cgroup_root", lambda: (tmp_path, version))
    writes: list[tuple[str, str]] = []
    real_write = Path.write_text
    real_read = Path.read_text

    def write(self: Path, data: str, *a: object, **k: object) -> int:
        if self.parent.parent == tmp_path:
            writes.append((self.name, data))
        return real_write(self, data)

    def read(self: Path, *a: object, **k: object) -> str:
        if self.parent.parent == tmp_path and self.name == "memory.stat":
            writes.append(("read memory.stat", ""))
        return real_read(self)

    monkeypatch.setattr(Path, "write_text", write)
    monkeypatch.setattr(Path, "read_text", read)
    return writes


def empty(d: Path) -> None:
    for f in d.iterdir():
        f.unlink()


def test_v1_steps_down_then_force_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = fake(tmp_path, 1, monkeypatch)
    with cgroup.MemoryCgroup("cg") as cg:
        (cg.path / "memory.usage_in_bytes").write_text("900")
        (cg.path / "memory.stat").write_text("swap 4096\n")
        writes.clear()
        cg.swap_out(steps=3)
        limits = [int(v) for name, v in writes if name == "memory.limit_in_bytes"]
        assert limits == [675, 450, 225]  # 900 * k / 4, falling
        assert writes[0] == ("read memory.stat", "")  # flushed before the first step
        sweeps = [i for i, (name, _) in enumerate(writes) if name == "memory.force_empty"]
        assert len(sweeps) == 2  # nothing freed (a file): stops after two idle sweeps
        assert all(writes[i - 1] == ("read memory.stat", "") for i in sweeps)
        assert cg.swap_usage() == 4096
        empty(cg.path)  # a real cgroup's files are the kernel's: rmdir takes them along
    assert not (tmp_path / "cg").exists()


def test_v2_never_limits_below_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = fake(tmp_path, 2, monkeypatch)
    with cgroup.MemoryCgroup("cg") as cg:
        (cg.path / "memory.current").write_text(str(8 << 20))
        (cg.path / "memory.swap.current").write_text("8192")
        writes.clear()
        cg.swap_out(steps=4)
        assert [v for name, v in writes if name == "memory.max"] == [str(8 << 20)]
        reclaims = [int(v) for name, v in writes if name == "memory.reclaim"]
        assert reclaims[:4] == [(8 << 20) // 5] * 4  # the steps, then whole sweeps
        assert all(r == 8 << 20 for r in reclaims[4:]) and len(reclaims) > 4
        assert cg.swap_usage() == 8192
        assert cg.set_limit(None) and (cg.path / "memory.max").read_text() == "max"
        empty(cg.path)


def test_no_memory_controller_is_a_clear_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroup, "memory_cgroup_root", lambda: None)
    with pytest.raises(KernelUnavailableError, match="no memory cgroup controller"):
        cgroup.MemoryCgroup("cg")
