"""Every kernel's recorded traces replay exactly, each under its own profile.

tests/data/kernels holds traces recorded in QEMU guests booting Debian's kernel packages
(tests/data/kernels/README.md): fill, churn (writes, overwrites, discards, compactions)
and compact workloads on 6.1, 6.12, 6.16, 6.17, 6.18, 7.2 and 7.3, and the shared page
set written once on 6.1, 6.12, 7.2 and arm64 16 KiB 6.12.  Each names its kernel in the
header (``kernel=6.1.0-57-amd64``), which picks the profile
(:func:`zsmalloc.profile.profile_for_release`); every ``m`` line must match.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from zsmalloc._jit import HAVE_NUMBA
from zsmalloc.cli.main import main
from zsmalloc.profile import KernelProfile
from zsmalloc.testing import shared
from zsmalloc.zram.replay import replay
from zsmalloc.zram.trace import read_trace

DATA = shared.testdata_dir()
KERNEL_TRACES = sorted(p.name for p in (DATA / "kernels").glob("*.trace.gz")) if DATA else []
WORKLOADS = ("fill", "churn", "compact")
RELEASES = ("6.1", "6.12", "6.16", "6.17", "6.18", "7.2", "7.3-rc7", "7.3.4")


def test_every_release_has_every_workload() -> None:
    for release in RELEASES:
        for workload in WORKLOADS:
            assert [n for n in KERNEL_TRACES if n.startswith(f"{release}-{workload}-")], (
                release,
                workload,
            )


# Without the JIT (CI's second run: the same logic as plain Python) a few suffice.
JIT_OFF_SAMPLE = (
    "6.1-churn-lzo-rle.trace.gz",
    "6.12-compact-lz4.trace.gz",
    "7.2-shared-zstd.trace.gz",
)


@pytest.mark.parametrize("name", KERNEL_TRACES)
def test_kernel_trace_replays_exactly(testdata: Path, name: str) -> None:
    if not HAVE_NUMBA and name not in JIT_OFF_SAMPLE:
        pytest.skip("numba's JIT is off: a sample of the traces is replayed")
    t = read_trace(testdata / "kernels" / name)
    result = replay(t)
    assert result.ok, result.to_dict()
    assert result.m_checked == result.m_lines == t.mrows.shape[0] > 0


@pytest.mark.parametrize("workload", ["churn-lzo-rle", "compact-lzo"])
def test_61_needs_its_own_rules(testdata: Path, workload: str) -> None:
    """6.18's rules (here with 6.1's class table, the 6.6-like hybrid no kernel has) would
    not do: the naive 6.18 model diverges from the 6.1 kernel on its churn trace, and the
    6.18 profile from the first write on (its class table)."""
    from naive import NaiveZsmalloc, NaiveZsmalloc61
    from test_naive_oracle import replay_pages
    from zsmalloc.zs.size_class import class_table

    path = testdata / "kernels" / f"6.1-{workload}.trace.gz"
    t61 = class_table(KernelProfile("6.1"))
    assert replay_pages(path, NaiveZsmalloc61(t61)) > 0
    if workload.startswith("churn"):
        with pytest.raises(AssertionError):
            replay_pages(path, NaiveZsmalloc(t61))
    assert not replay(read_trace(path, KernelProfile("6.18"))).ok


def test_cli_takes_the_kernel_from_the_header(
    testdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(testdata / "kernels" / "6.1-churn-lzo-rle.trace.gz")
    with pytest.raises(SystemExit) as exc:
        main(["replay", path])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "Linux 6.1, 4 KiB pages, chain 4" in out and "all 10001 mm_stat lines match" in out
    with pytest.raises(SystemExit) as exc:
        main(["replay", path, "--kernel", "6.18.44"])
    assert exc.value.code == 1
    assert "MISMATCH at line 8" in capsys.readouterr().out
