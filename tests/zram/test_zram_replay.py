"""Replaying the kernel's recorded zram traces: every mm_stat line exact."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from zsmalloc.cli.main import main
from zsmalloc.zram.replay import replay
from zsmalloc.zram.stats import MM_STAT_COLUMNS, MmStat
from zsmalloc.zram.trace import parse_trace, read_bytes, read_trace

TRACES = ("fill-lz4", "churn-lzo-rle", "compact-lz4")


@pytest.mark.parametrize("name", TRACES)
def test_kernel_trace_replays_exactly(testdata: Path, name: str) -> None:
    t = read_trace(testdata / "traces" / f"{name}.trace.gz")
    result = replay(t)
    assert result.ok, result.to_dict()
    assert result.m_checked == result.m_lines == t.mrows.shape[0] > 0
    # the last m line is the kernel's final state, and the model ends there too
    if t.op[-1] == 4:
        assert result.final_mm_stat == MmStat(*t.mrows[-1].tolist())


def _tamper(raw: bytes, m_index: int, column: int) -> tuple[bytes, int]:
    """Add 4096 to one column of the m_index-th m line; returns the text and its line number."""
    lines = raw.decode().split("\n")
    seen = -1
    for n, line in enumerate(lines):
        if line.startswith("m "):
            seen += 1
            if seen == m_index:
                words = line.split()
                words[1 + column] = str(int(words[1 + column]) + 4096)
                lines[n] = " ".join(words)
                return "\n".join(lines).encode(), n + 1
    raise AssertionError("not enough m lines")


@pytest.mark.parametrize(("m_index", "column"), [(0, 2), (500, 0), (1999, 8)])
def test_first_mismatch_is_reported_with_line_and_rows(
    testdata: Path, m_index: int, column: int
) -> None:
    raw, lineno = _tamper(read_bytes(testdata / "traces" / "fill-lz4.trace.gz"), m_index, column)
    result = replay(parse_trace(raw, "tampered"))
    assert not result.ok
    assert result.mismatch_line == lineno
    assert result.m_checked == m_index + 1
    assert result.ops_replayed == lineno - 1  # one op a line after the header
    assert result.kernel_row is not None and result.model_row is not None
    assert result.kernel_row[column] == result.model_row[column] + 4096
    assert result.differing_columns == [MM_STAT_COLUMNS[column]]
    rows = zip(result.kernel_row, result.model_row, strict=True)
    assert [i for i, (k, m) in enumerate(rows) if k != m] == [column]


def test_cli_exit_status(testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = testdata / "traces" / "fill-lz4.trace.gz"
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(good)])
    assert exc.value.code == 0
    assert "all 2000 mm_stat lines match" in capsys.readouterr().out

    raw, lineno = _tamper(read_bytes(good), 10, 1)
    bad = tmp_path / "bad.trace.gz"
    bad.write_bytes(gzip.compress(raw))
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(bad), "--json"])
    assert exc.value.code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["mismatch_line"] == lineno
    assert out["differing_columns"] == ["compr_data_size"]

    corrupt = tmp_path / "corrupt.trace"
    corrupt.write_text("w 0 100\nw 1\n")
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(corrupt)])
    assert exc.value.code == 2
    assert f"{corrupt}:2: too few fields" in capsys.readouterr().err


def test_limit_extension_lines_replay() -> None:
    """``l``/``r`` lines: a store over the limit is refused, max raised before the check."""
    # 1 huge page (1 zspage page) fits a 4096-byte limit; the second huge store is refused
    # after the pool grew to 2 pages, so mem_used_max shows 2 pages; r resets it to 1.
    text = (
        "l 4096\n"
        "w 0 4096\nm 4096 4096 4096 4096 4096 0 0 1 1\n"
        "w 1 4096\nm 4096 4096 4096 4096 8192 0 0 1 1\n"
        "r\nm 4096 4096 4096 4096 4096 0 0 1 1\n"
        "l 0\nw 1 4096\nm 8192 8192 8192 0 8192 0 0 2 2\n"
    )
    result = replay(parse_trace(text.encode(), "limit"))
    assert result.ok, result.to_dict()


def test_header_mem_limit_applies_from_the_start() -> None:
    text = (
        "# zram size trace v1 algo=lz4 disksize=8192 mem_limit=4000\n"
        "w 0 4096\nm 4096 4096 4096 4096 4096 0 0 1 1\n"
        "w 1 4096\nm 4096 4096 4096 4096 8192 0 0 1 1\n"
    )
    assert replay(parse_trace(text.encode(), "hdr")).ok
