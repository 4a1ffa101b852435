"""The zswap trace format, its replayer and ``zsmalloc zswap replay``."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from zsmalloc.errors import InputError
from zsmalloc.zswap.trace import parse_trace, replay

HEADER = "zswap-trace 1\nram 4M\nparam max_pool_percent 1\nparam enabled Y\n"  # max 10 pages


def write(tmp_path: Path, body: str, name: str = "t.trace") -> Path:
    p = tmp_path / name
    p.write_text(HEADER + body)
    return p


def run(path: Path, pool_factory: object, **kw: object) -> list[tuple[int, dict[str, int]]]:
    return list(replay(parse_trace(path), pool_factory=pool_factory, **kw))  # type: ignore[arg-type]


def test_counters_over_time(tmp_path: Path, pool_factory: object) -> None:
    # 12 as-is pages against a 10-page limit: stores 0..9 go in, 10 and 11 hit the limit.
    body = "".join(f"s {o} 5000\n" for o in range(12)) + "stat\ni 0\ni 1\n"
    rows = run(write(tmp_path, body), pool_factory, worker="manual")
    (line1, at_stat), (line2, end) = rows
    assert line1 == 4 + 12 + 1 and line2 == line1 + 2
    assert at_stat["stored_pages"] == 10 and at_stat["pool_total_size"] == 10 * 4096
    assert at_stat["pool_limit_hit"] == 2 and at_stat["stored_incompressible_pages"] == 10
    assert end["stored_pages"] == 8 and end["pool_total_size"] == 8 * 4096


def test_every_n_events(tmp_path: Path, pool_factory: object) -> None:
    body = "".join(f"s {o} 700\n" for o in range(6))
    rows = run(write(tmp_path, body), pool_factory, every=5)
    # 3 params + 6 stores = 10 events (the magic line counts too): rows at 5 and 10
    assert [r[1]["stored_pages"] for r in rows] == [1, 6]


def test_folio_cgroups_and_loads(tmp_path: Path, pool_factory: object) -> None:
    body = (
        "cgroup a\ncgset a memory.zswap.writeback 0\n"
        "s 0 100,5000,200 a\n"  # one page does not compress, a has no writeback: whole folio out
        "s 10 100,200\n"
        "L 10\nl 11\ni 10\n"
    )
    ((_, end),) = run(write(tmp_path, body), pool_factory)
    assert end["reject_compress_fail"] == 1
    assert end["stored_pages"] == 0  # folio 0 undone; 10 kept by L, freed by i; 11 loaded


def test_pages_file(tmp_path: Path, testdata: Path, pool_factory: object) -> None:
    with gzip.open(testdata / "shared_pages.bin.gz") as f:
        pages = f.read(8 * 4096)
    (tmp_path / "p.bin.gz").write_bytes(gzip.compress(pages))
    body = "param max_pool_percent 100\npages p.bin.gz\n"
    body += "".join(f"p {i} {i}\n" for i in range(8))
    ((_, end),) = run(write(tmp_path, body), pool_factory)
    assert end["stored_pages"] == 8


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("s 1\n", 5, "takes 2..3 fields"),
        ("s 1 x\n", 5, "compressed length"),
        ("frob 1\n", 5, "unknown event"),
        ("s 1 100\np 2 0\n", 6, "pages PATH"),
        ("s -1 100\n", 5, "offset"),
        ("param compressor nope\n", 5, "not available"),
        ("param accept_threshold_percent 1_0\n", 5, "not a number"),
        ("param max_pool_percent 4294967296\n", 5, "ERANGE"),
        ("l 99\n", 5, "holds no page"),
        ("s 1 100 nosuch\n", 5, "no cgroup"),
    ],
)
def test_bad_line_names_the_line(
    tmp_path: Path, pool_factory: object, body: str, line: int, message: str
) -> None:
    p = write(tmp_path, body)
    with pytest.raises(InputError, match=message) as exc:
        run(p, pool_factory)
    assert exc.value.line == line and exc.value.path == str(p)
    assert f"{p}:{line}:" in str(exc.value)


def test_missing_ram_and_version(tmp_path: Path, pool_factory: object) -> None:
    p = tmp_path / "n.trace"
    p.write_text("s 0 100\n")
    with pytest.raises(InputError, match="ram"):
        run(p, pool_factory)
    p.write_text("zswap-trace 2\n")
    with pytest.raises(InputError, match="version"):
        parse_trace(p)
    with pytest.raises(InputError, match="cannot read"):
        parse_trace(tmp_path / "absent.trace")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zsmalloc.cli.main", "zswap", *args],
        capture_output=True,
        text=True,
    )


def test_cli_replay(tmp_path: Path) -> None:
    p = write(tmp_path, "s 0 5000\ns 1 700\nstat\n")
    out = cli("replay", str(p), "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert rows[-1]["stored_pages"] == 2 and rows[-1]["stored_incompressible_pages"] == 1
    text = cli("replay", str(p))
    assert text.returncode == 0 and "stored" in text.stdout.splitlines()[0]


def test_cli_corrupt_line_is_one_error_line(tmp_path: Path) -> None:
    p = write(tmp_path, "s 0 100\ns 1 1x0\n")
    out = cli("replay", str(p))
    assert out.returncode == 2 and out.stdout == ""
    assert (
        out.stderr.strip()
        == f"zsmalloc: error: {p}:6: compressed length: expected an integer, found '1x0'"
    )


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "name",
    ["verify-lzo-20000.trace.gz", "verify-lzo-rle-6000.trace.gz", "verify-limit-lzo.trace.gz"],
)
def test_kernel_recorded_trace_replays_exactly(pool_factory: object, name: str) -> None:
    """Recorded live on 6.18.44 with ``--save`` (the header comment names the run):
    stores, then random frees and swap-ins (or, for ``limit``, 500 stores beyond a
    1 % pool limit); the ``expect`` lines are the kernel's debugfs values."""
    trace = parse_trace(DATA / name)
    mismatches: list[tuple[int, str, int, int]] = []
    rows = list(replay(trace, pool_factory=pool_factory, mismatches=mismatches))  # type: ignore[arg-type]
    assert mismatches == []
    expects = [ev for ev in trace.events if ev.op == "expect"]
    assert expects and rows[-1][1]["stored_pages"] > 1000
    if "limit" in name:
        assert rows[-1][1]["pool_limit_hit"] == 500


def test_expect_mismatch_is_reported(tmp_path: Path) -> None:
    p = write(tmp_path, "s 0 5000\nexpect stored_pages 2 pool_total_size 4096\n")
    out = cli("replay", str(p))
    assert out.returncode == 1
    assert "MISMATCH at line 6: stored_pages expected 2, model 1" in out.stdout
    bad = write(tmp_path, "expect stored_pages\n", "bad.trace")
    assert "takes 2..26 fields" in cli("replay", str(bad)).stderr
    bad.write_text(HEADER + "expect nosuch 1\n")
    assert "not a debugfs counter" in cli("replay", str(bad)).stderr
