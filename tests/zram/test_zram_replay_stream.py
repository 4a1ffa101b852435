"""Traces are replayed piece by piece, and the pool grows as it goes: same answers.

A trace file is read :data:`~zsmalloc.zram.trace.CHUNK_BYTES` at a time, so its
length costs no memory; the replay loop returns to Python whenever the pool must
reserve more host memory and resumes.  Neither may change a number: the kernel's
recorded mm_stat lines must match however the file is cut and however little was
reserved up front, and errors must name the file's own line numbers.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import zsmalloc.zs.state as state_mod
from zsmalloc.cli.main import main
from zsmalloc.errors import InputError
from zsmalloc.zram.replay import replay
from zsmalloc.zram.trace import iter_trace, read_trace

TRACES = ("fill-lz4", "churn-lzo-rle", "compact-lz4")


def _summary(r: object) -> tuple[object, ...]:
    return (r.ok, r.ops, r.ops_replayed, r.m_lines, r.m_checked, r.mismatch_line,  # type: ignore[attr-defined]
            r.kernel_row, r.model_row, r.final_mm_stat)  # type: ignore[attr-defined]


@settings(max_examples=6, deadline=None)
@given(chunk=st.integers(40, 200_000), name=st.sampled_from(TRACES))
def test_any_cut_of_the_file_replays_the_same(testdata: Path, chunk: int, name: str) -> None:
    path = testdata / "traces" / f"{name}.trace.gz"
    whole = replay(read_trace(path))
    assert whole.ok
    assert _summary(replay(path, chunk_bytes=chunk)) == _summary(whole)


def test_pieces_carry_the_files_line_numbers(testdata: Path) -> None:
    path = testdata / "traces" / "fill-lz4.trace.gz"
    whole = read_trace(path)
    pieces = list(iter_trace(path, chunk_bytes=1000))
    assert len(pieces) > 10
    assert [int(x) for p in pieces for x in p.line_of] == whole.line_of.tolist()
    assert all(p.header == whole.header for p in pieces)


def test_a_bad_line_far_into_the_file_names_its_line(tmp_path: Path, testdata: Path) -> None:
    text = gzip.decompress((testdata / "traces" / "fill-lz4.trace.gz").read_bytes())
    lines = text.split(b"\n")
    lines[3000] = b"w 1 x"
    bad = tmp_path / "bad.trace"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError, match="not a decimal number") as exc:
        replay(bad, chunk_bytes=4096)
    assert exc.value.line == 3001


@pytest.mark.parametrize("name", TRACES)
def test_a_pool_that_starts_small_matches_the_kernel(
    testdata: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """16 pages reserved up front: the loop stops to grow the pool again and again."""
    monkeypatch.setattr(state_mod, "RESERVE_ARENA_BYTES", 16 * 4096)
    grows = []
    real = state_mod.grow_pool_state

    def counting(*args: object) -> object:
        grows.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("zsmalloc.zs.pool.grow_pool_state", counting)
    result = replay(testdata / "traces" / f"{name}.trace.gz")
    assert result.ok and result.m_checked == result.m_lines > 0
    assert len(grows) >= 3


def test_without_a_disksize_the_slot_table_grows(testdata: Path, tmp_path: Path) -> None:
    text = gzip.decompress((testdata / "traces" / "churn-lzo-rle.trace.gz").read_bytes())
    body = b"\n".join(line for line in text.split(b"\n") if not line.startswith(b"#"))
    bare = tmp_path / "bare.trace"
    bare.write_bytes(body)
    result = replay(bare, chunk_bytes=2000)
    assert result.ok and result.m_checked == result.m_lines > 0


def test_an_empty_trace_does_not_match(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.trace"
    empty.write_bytes(b"# zram size trace v1 algo=lz4\n")
    assert not replay(empty).ok
    for content in (b"", b"# comments only\n\n", b"w 0 100\nc\n"):
        empty.write_bytes(content)
        with pytest.raises(SystemExit) as exc:
            main(["replay", str(empty)])
        err = capsys.readouterr().err
        assert exc.value.code == 2
        assert "nothing to compare" in err and err.count("\n") == 1
