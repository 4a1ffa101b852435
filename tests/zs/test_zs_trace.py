"""zs traces (``zsmalloc record``'s format): parsing, streaming, replay, bad input.

Ground truth: the guest recordings in tests/data/record (their ``m`` lines are the
guest's mm_stat after each operation, their ``c`` lines what the kernel's zs_compact
returned).
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from cli_helpers import run_cli
from zsmalloc.errors import InputError
from zsmalloc.profile import profile_for_release
from zsmalloc.zs.replay import replay_zs
from zsmalloc.zs.trace import (
    ObjectIds,
    ZsTraceWriter,
    iter_zs_trace,
    parse_zs_trace,
    sniff_zs_trace,
)

HEADER = b"# zs trace v1 kernel=6.12.118+deb13-amd64 page_size=4096 chain_size=8\n"


@pytest.fixture(scope="module")
def recorded(testdata: Path) -> Path:
    return testdata / "record" / "6.18.15+deb13-amd64.zs.gz"


def test_recorded_zs_trace_matches_the_kernel(recorded: Path) -> None:
    res = replay_zs(recorded)
    assert res.ok and not res.incomplete
    # 2041 mm_stat rows (setup, 2000 operations, 40 shrinker runs) and 89 compactions
    assert res.checks == 2130
    (pool,) = res.pools.values()
    s = pool.summary()
    assert (s["name"], s["state"], s["unknown_frees"]) == ("zram0", "created", 0)
    assert s["pages_compacted"] > 0  # compaction really moved objects


def test_streamed_in_small_pieces_is_the_same(recorded: Path) -> None:
    whole = replay_zs(recorded).to_dict()
    pieces = replay_zs(recorded, chunk_bytes=100).to_dict()
    for d in (whole, pieces):
        d.pop("seconds")
    assert pieces == whole
    assert len(list(iter_zs_trace(recorded, chunk_bytes=4096))) > 5


def test_another_kernels_model_differs(recorded: Path) -> None:
    """6.1's chain of 4 pages does not give 6.12's numbers: the check can fail."""
    res = replay_zs(recorded, profile_for_release("6.1.0-57-amd64"))
    assert not res.ok and res.mismatch_line is not None
    assert res.kernel_value != res.model_value


def test_sniff(recorded: Path, tmp_path: Path) -> None:
    assert sniff_zs_trace(recorded)
    other = tmp_path / "x.trace"
    other.write_text("# zram size trace v1 kernel=6.18\nw 0 100\n")
    assert not sniff_zs_trace(other)


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (b"q 0 1\n", 2, "unknown operation 'q'"),
        (b"a 0 1\n", 2, "too few fields"),
        (b"a 0 1 2 3\n", 2, "too many fields"),
        (b"# fine\na 0 1 x\n", 3, "not a decimal number"),
        (b"a 0 1 5000\n", 2, "size 1..4096"),
        (b"a 0 0 100\n", 2, "object ID >= 1"),
        (b"a 0 1 100\na 0 1 100\n", 3, "allocated again while live"),
        (b"a 0 1 100\nf 0 2\n", 3, "freed but not live"),
        (b"f 0 1\n", 2, "freed but not live"),
        (b"ab 0 1 100\n", 2, "no space after"),
    ],
)
def test_bad_line_is_named(body: bytes, line: int, words: str) -> None:
    with pytest.raises(InputError, match=words) as exc:
        replay_zs(parse_zs_trace(HEADER + body))
    assert exc.value.line == line


def test_bad_line_is_named_when_streamed(tmp_path: Path) -> None:
    p = tmp_path / "t.zs.gz"
    body = b"".join(b"a 0 %d 100\n" % i for i in range(1, 3000)) + b"c 0 zz\n"
    p.write_bytes(gzip.compress(HEADER + body))
    with pytest.raises(InputError, match="not a decimal number") as exc:
        replay_zs(p, chunk_bytes=1000)
    assert exc.value.line == 3001


def test_not_a_zs_trace(tmp_path: Path) -> None:
    p = tmp_path / "t"
    p.write_text("# zram size trace v1\n")
    with pytest.raises(InputError, match="not a zs trace"):
        list(iter_zs_trace(p))


def test_unknown_frees_and_failures_are_counted_not_replayed() -> None:
    res = replay_zs(parse_zs_trace(
        HEADER + b"# pool 0 existing name=zswap\na 0 1 100\nf 0 0\nx 0 9000\nf 0 1\n"
        b"m 0 5 5\n"
    ))
    s = res.pools[0].summary()
    assert (s["unknown_frees"], s["failed_allocs"], s["frees"], s["allocs"]) == (1, 1, 1, 1)
    # a pool that held objects before the recording: its m line cannot be checked
    assert res.checks == 0 and s["checks_skipped"] == 1 and not res.ok


def test_pools_replay_apart() -> None:
    text = (HEADER + b"# pool 0 created name=zram0\n# pool 1 created name=zram1\n"
            b"a 0 1 3000\na 1 1 3000\na 0 2 3000\nm 0 3 0\nm 1 3 0\n")
    res = replay_zs(parse_zs_trace(text))
    assert res.ok and res.checks == 2
    assert res.total_pages == 6


def test_incomplete_recording_is_reported() -> None:
    res = replay_zs(parse_zs_trace(HEADER + b"a 0 1 100\n# incomplete zs_malloc_ret: 3 missed\n"))
    assert res.incomplete == ["zs_malloc_ret: 3 missed"]
    assert not res.to_dict()["complete"]


def test_object_ids_take_the_lowest_free() -> None:
    ids = ObjectIds()
    assert [ids.new(h) for h in (10, 20, 30)] == [1, 2, 3]
    assert ids.drop(20) == 2 and ids.drop(99) == 0
    assert ids.new(40) == 2 and ids.new(50) == 4


def test_writer_round_trip() -> None:
    out = io.StringIO()
    w = ZsTraceWriter(out, {"kernel": "6.18", "page_size": 4096})
    w.pool(0, "created", "zram0")
    w.alloc(0, 0xFFFF1000, 3000)
    w.alloc(0, 0xFFFF2000, 200)
    w.free(0, 0xFFFF1000)
    w.free(0, 0xDEAD)  # allocated before the recording
    w.compact(0, 0)
    t = parse_zs_trace(out.getvalue().encode())
    assert t.pools == {0: ("created", "zram0")}
    assert out.getvalue().splitlines()[2:] == ["a 0 1 3000", "a 0 2 200", "f 0 1", "f 0 0",
                                               "c 0 0"]
    assert w.unknown_frees == 1


# ---- the commands that take zs traces -----------------------------------------------------
def test_replay_cli_recognises_a_zs_trace(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["replay", str(recorded)], capsys)
    assert code == 0 and "all 2130 answers match" in out
    code, out, _ = run_cli(["replay", str(recorded), "--kernel", "6.1"], capsys)
    assert code == 1 and "MISMATCH at line" in out
    code, out, _ = run_cli(["replay", str(recorded), "--json"], capsys)
    assert code == 0 and json.loads(out)["checks"] == 2130


def test_replay_cli_zs_from_stdin(recorded: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", open(recorded, "rb"))  # noqa: SIM115 - pytest closes it
    code, out, _ = run_cli(["replay", "-", "--zs"], capsys)
    assert code == 0 and "all 2130 answers match" in out


def test_replay_cli_nothing_to_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "t.zs"
    p.write_bytes(HEADER + b"a 0 1 100\n")
    code, out, _ = run_cli(["replay", str(p)], capsys)
    assert code == 2 and "nothing to compare" in out


def test_replay_cli_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "t.zs"
    p.write_bytes(HEADER + b"a 0 1 100\nz\n")
    code, _, err = run_cli(["replay", str(p)], capsys)
    assert code == 2 and "t.zs:3: unknown operation" in err and len(err.strip().splitlines()) == 1


def test_whatif_takes_a_zs_trace(recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["whatif", "--trace", str(recorded), "--vary", "chain=4,16",
                            "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["workload"]["kind"] == "zs trace" and d["workload"]["checks"] == 2130
    ref = d["reference"]["mm_stat"]
    # the reference is the kernel's own pool: its pages and pages_compacted at the end
    last = [w for w in gzip.decompress(recorded.read_bytes()).decode().splitlines()
            if w.startswith("m ")][-1].split()
    assert (ref["mem_used_total"], ref["pages_compacted"]) == (int(last[2]) * 4096, int(last[3]))
    assert len(d["variants"]) == 2
