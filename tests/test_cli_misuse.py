"""The README's promise for the CLI, fuzzed: any command line ends in a status, not a traceback.

Hypothesis builds command lines for every offline command (classes, layout, whatif,
estimate, sizes, replay, zram, zswap replay) from a vocabulary of good and bad
option values, inputs (a page file, a trace, an empty file, a corrupt one, a
directory, a missing path) and zram script commands.  ``main`` must end every one
with status 0, 1 (a mismatch) or 2 (a user error, printed as one line); an
exception escaping ``main`` is a bug.  The live-kernel commands (verify) are not
fuzzed here: they touch the machine.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from zsmalloc.cli.main import main

PAGE = 4096
NUMBERS = ["0", "1", "4", "16", "17", "-1", "1.5", "abc", "", "99", "2147483648", "１２", "0x10"]
ALGOS = ["lz4", "lzo", "lzo-rle", "zstd", "deflate", "lz4hc", "842", "", "lz4,,lzo",
         "lz4,lz4", "lz5", "LZ4", " lz4", "lz4,zstd"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> dict[str, str]:
    d = tmp_path_factory.mktemp("inputs")
    pages = d / "pages.bin"
    pages.write_bytes(np.random.default_rng(3).integers(0, 3, 8 * PAGE, dtype=np.uint8).tobytes())
    trace = d / "t.trace"
    trace.write_bytes(gzip.decompress((testdata / "traces" / "compact-lz4.trace.gz").read_bytes())
                      [:20000].rsplit(b"\n", 1)[0] + b"\n")
    zswap = d / "z.trace"
    zswap.write_text("ram 1G\nparam enabled Y\ns 0 100\ns 1 5000\nstat\nl 0\ni 1\n")
    corrupt = d / "corrupt.gz"
    corrupt.write_bytes(gzip.compress(b"w 0 100\n" * 1000)[:-30])
    empty = d / "empty"
    empty.write_bytes(b"")
    odd = d / "odd.bin"
    odd.write_bytes(bytes(PAGE + 7))
    return {"pages": str(pages), "trace": str(trace), "zswap": str(zswap),
            "corrupt": str(corrupt), "empty": str(empty), "odd": str(odd), "dir": str(d),
            "missing": str(d / "missing")}


def options(pairs: dict[str, list[str]], flags: list[str]) -> st.SearchStrategy[list[str]]:
    choices: list[st.SearchStrategy[list[str]]] = []
    if pairs:
        choices.append(st.sampled_from(sorted(pairs)).flatmap(
            lambda o: st.sampled_from(pairs[o]).map(lambda v: [o, v])
        ))
    if flags:
        choices.append(st.sampled_from(flags).map(lambda f: [f]))
    return st.lists(st.one_of(choices), max_size=3).map(lambda ws: [w for x in ws for w in x])


SCRIPT_WORDS = st.sampled_from([
    "set disksize 64K", "set disksize 1.5M", "set disksize 0", "set disksize 64G",
    "set comp_algorithm lz4", "set comp_algorithm bogus", "set mem_limit 8K", "set mem_limit x",
    "set nonexistent 1", "set", "show mm_stat", "show io_stat", "show bogus", "show",
    "write {pages}", "write {pages} at 8K pages 2", "write {pages} skip 1G", "write {missing}",
    "write {dir}", "write {empty}", "write /dev/zero pages 3", "check {pages}", "check {odd}",
    "fill zero pages 3", "fill random at 4K pages 2", "fill byte:x pages 1", "fill byte:7",
    "fill bogus pages 1", "discard 0 4K", "discard 1 1", "discard x", "compact", "reset",
    "idle", "idle 5", "writeback huge", "recompress type=huge", "slot 0", "slot 99999",
    "slot -1", "slot x", "'unclosed", "frobnicate", "", "# comment",
])


def command_lines(inputs: dict[str, str]) -> st.SearchStrategy[list[str]]:
    path = st.sampled_from(sorted(inputs.values()))
    return st.one_of(
        options({"--chain": NUMBERS, "--page-size": ["4096", "16384", "8192", "x"],
                 "--kernel": ["6.1", "6.18", "5.10", ""]}, ["--json"])
        .map(lambda o: ["classes", *o]),
        options({}, ["--json"]).map(lambda o: ["layout", *o]),
        st.tuples(path, options({"--algo": ALGOS, "--level": NUMBERS, "--chain": NUMBERS,
                                 "--page-size": ["4096", "16384"]},
                                ["--json", "--compact", "--classes", "--zswap", "--verify"]))
        .map(lambda t: ["estimate", t[0], *t[1]]),
        st.tuples(path, options({"--algo": ALGOS, "--level": NUMBERS,
                                 "--huge-class-size": NUMBERS}, []))
        .map(lambda t: ["sizes", t[0], *t[1]]),
        st.tuples(path, options({}, ["--json"])).map(lambda t: ["replay", t[0], *t[1]]),
        st.tuples(st.sampled_from(["", "--trace"]), path,
                  options({"--vary": ["chain=4,8", "delta=16,x", "rule=best", "kernel=6.1",
                                      "size=1", "chain=", "delta=8", "chain=2"],
                           "--algo": ALGOS, "--chain": NUMBERS}, ["--json", "--classes"]))
        .map(lambda t: ["whatif", *([t[0]] if t[0] else []), t[1], *t[2]]),
        st.tuples(path, options({"--every": NUMBERS, "--ram": ["1G", "1.5G", "0", "x", "１G"],
                                 "--worker": ["sync", "manual", "bogus"]}, ["--json"]))
        .map(lambda t: ["zswap", "replay", t[0], *t[1]]),
        st.tuples(st.lists(SCRIPT_WORDS, max_size=6),
                  options({"--disksize": ["64K", "1.5M", "0", "x"], "--algo": ALGOS,
                           "--mem-limit": ["8K", "x"]}, []))
        .map(lambda t: ["zram", *t[1], "-e", "; ".join(t[0]).format(**inputs)]),
    )


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_command_line_ends_in_a_status(
    inputs: dict[str, str], capsys: pytest.CaptureFixture[str], data: st.DataObject
) -> None:
    argv = data.draw(command_lines(inputs))
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    code = exc.value.code or 0
    err = capsys.readouterr().err
    event(f"{argv[0]} -> {code}")
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    errors = [x for x in err.splitlines() if x.startswith("zsmalloc: error:")]
    if code == 2 and errors:
        assert len(errors) == 1, (argv, err)
