"""Trace files: the numba parser agrees with a plain reading, and corrupt lines are named."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zsmalloc.errors import InputError
from zsmalloc.zram.trace import (
    OP_LETTERS,
    TraceWriter,
    parse_trace,
    read_bytes,
    read_trace,
)

TRACES = ("fill-lz4", "churn-lzo-rle", "compact-lz4")


def naive_parse(text: str) -> tuple[list[tuple[str, ...]], list[list[int]]]:
    """The obvious per-line reading: (op, args...) tuples and the m rows."""
    ops: list[tuple[str, ...]] = []
    rows: list[list[int]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        words = line.split()
        ops.append(tuple(words))
        if words[0] == "m":
            rows.append([int(w) for w in words[1:]])
    return ops, rows


@pytest.mark.parametrize("name", TRACES)
def test_parser_agrees_with_a_plain_reading(testdata: Path, name: str) -> None:
    path = testdata / "traces" / f"{name}.trace.gz"
    text = gzip.decompress(path.read_bytes()).decode()
    ops, rows = naive_parse(text)
    t = read_trace(path)
    assert len(t) == len(ops)
    assert [OP_LETTERS[c] for c in t.op] == [o[0] for o in ops]
    assert t.mrows.tolist() == rows
    writes = [(int(o[1]), int(o[2])) for o in ops if o[0] == "w"]
    w = t.op == 0
    assert list(zip(t.a[w].tolist(), t.b[w].tolist(), strict=True)) == writes
    assert t.algorithm == name.split("-", 1)[1]
    assert t.header["kernel"].startswith("6.18")
    # line numbers: the first op is on line 2 (after the header comment)
    assert int(t.line_of[0]) == 2


def test_plain_and_gzip_read_the_same(testdata: Path, tmp_path: Path) -> None:
    src = testdata / "traces" / "fill-lz4.trace.gz"
    plain = tmp_path / "fill.trace"
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    a, b = read_trace(src), read_trace(plain)
    assert np.array_equal(a.op, b.op) and np.array_equal(a.mrows, b.mrows)
    assert read_bytes(plain) == read_bytes(src)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("w 1", "too few fields"),
        ("w 1 2 3", "too many fields"),
        ("x 1", "unknown operation 'x'"),
        ("w 1 a", "not a decimal number"),
        ("w 1 -5", "not a decimal number"),
        ("m 1 2 3", "too few fields for 'm'"),
        ("w 1 99999999999999999999999", "number too large"),
        ("w1 2", "no space after"),
        ("w 1 3700", "write size 3700"),
        ("w 1 0", "write size 0"),
        ("w 1 4097", "write size 4097"),
        ("d 5000", "slot 5000 beyond disksize"),
    ],
)
def test_corrupt_line_is_reported_with_its_number(line: str, problem: str) -> None:
    head = "# zram size trace v1 algo=lz4 disksize=4096000\nw 0 100\nm 1 2 3 4 5 6 7 8 9\n"
    text = f"{head}{line}\nc\n"
    with pytest.raises(InputError) as exc:
        parse_trace(text.encode(), "t.trace")
    assert exc.value.line == 4
    assert exc.value.path == "t.trace"
    assert problem in str(exc.value)
    assert str(exc.value).startswith("t.trace:4: ")


@given(
    n_good=st.integers(0, 40),
    bad=st.sampled_from(["w", "w 1 x", "q", "s", "d 1 2", "m 1", "c 1", "l", "w 3 3625"]),
)
def test_any_corrupt_line_names_its_own_number(n_good: int, bad: str) -> None:
    good = ["w 1 100", "s 2", "d 1", "c", "m 0 0 0 0 0 0 0 0 0", "# comment", ""]
    lines = [good[i % len(good)] for i in range(n_good)]
    text = "\n".join([*lines, bad, "w 0 10"]) + "\n"
    with pytest.raises(InputError) as exc:
        parse_trace(text.encode(), "t")
    assert exc.value.line == n_good + 1


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read trace"):
        read_trace(tmp_path / "nope.trace")
    broken = tmp_path / "broken.trace.gz"
    broken.write_bytes(gzip.compress(b"w 0 10\n")[:12])
    with pytest.raises(InputError, match="corrupt gzip"):
        read_trace(broken)


@pytest.mark.parametrize("suffix", [".trace", ".trace.gz"])
def test_writer_round_trips(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    with TraceWriter(path, {"algo": "lzo", "disksize": 8192}) as w:
        w.write(1, 4096)
        w.same(0)
        w.discard(1)
        w.compact()
        w.mem_limit(12288)
        w.reset_max()
        w.mm_stat([4096, 0, 0, 12288, 0, 1, 0, 0, 1])
    t = read_trace(path)
    assert [OP_LETTERS[c] for c in t.op] == list("wsdclrm")
    assert t.header == {"algo": "lzo", "disksize": "8192"}
    assert t.a.tolist()[:5] == [1, 0, 1, 0, 12288]
    assert t.mrows.tolist() == [[4096, 0, 0, 12288, 0, 1, 0, 0, 1]]


ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("w"), st.integers(0, 999), st.sampled_from([1, 100, 3624, 4096])),
        st.tuples(st.just("s"), st.integers(0, 999)),
        st.tuples(st.just("d"), st.integers(0, 999)),
        st.tuples(st.just("c")),
        st.tuples(st.just("l"), st.integers(0, 1 << 40)),
        st.tuples(st.just("r")),
        st.tuples(st.just("m"), st.lists(st.integers(0, 1 << 50), min_size=9, max_size=9)),
    ),
    max_size=60,
)


@given(ops=ops_strategy)
def test_writer_and_parser_round_trip(tmp_path_factory: pytest.TempPathFactory, ops: list) -> None:
    path = tmp_path_factory.mktemp("rt") / "t.trace"
    with TraceWriter(path, {"disksize": 4096000}) as w:
        for op in ops:
            {
                "w": w.write,
                "s": w.same,
                "d": w.discard,
                "c": w.compact,
                "l": w.mem_limit,
                "r": w.reset_max,
                "m": w.mm_stat,
            }[op[0]](*op[1:])
    t = read_trace(path)
    assert [OP_LETTERS[c] for c in t.op] == [op[0] for op in ops]
    assert t.mrows.tolist() == [op[1] for op in ops if op[0] == "m"]
    for k, op in enumerate(ops):
        if op[0] in "wsdl":
            assert int(t.a[k]) == op[1]
        if op[0] == "w":
            assert int(t.b[k]) == op[2]
        assert int(t.line_of[k]) == k + 2  # after the header line
