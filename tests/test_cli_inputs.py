"""Whatever the user feeds the CLI: one line on stderr and a status, never a traceback.

Each class of input that once escaped as a library exception or went by silently:

* corrupt or truncated compressed input (.gz with a bad deflate block, .zst, .xz,
  .bz2) for every command that reads pages or traces;
* scripts that are not text, or a closed standard input;
* lists that do not say what they mean (``--algo ''``, ``lz4,,lzo``, ``lz4,lz4``);
* a write to a closed pipe or a full disk on stdout;
* a zram script writing more than the device holds (stops at its end, says so);
* an empty trace (nothing to compare is not a match).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zstandard

PAGE = 4096
PAGES = np.random.default_rng(5).integers(0, 4, 64 * PAGE, dtype=np.uint8).tobytes()


def run(args: list[str], stdin: object = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zsmalloc.cli.main", *args],
        capture_output=True,
        text=True,
        stdin=stdin,  # type: ignore[arg-type]
        timeout=600,
    )


def one_line_error(p: subprocess.CompletedProcess[str], status: int = 2) -> str:
    """The one error line (a first run's compile notice may come before it)."""
    assert p.returncode == status, (p.returncode, p.stderr)
    lines = [x for x in p.stderr.splitlines() if not x.startswith("zsmalloc: compiling ")]
    assert len(lines) == 1 and lines[0].startswith("zsmalloc: error: "), p.stderr
    assert "Traceback" not in p.stderr
    return lines[0] + "\n"


def _flip(data: bytes, at: int, n: int = 64) -> bytes:
    b = bytearray(data)
    for i in range(at, min(at + n, len(b))):
        b[i] ^= 0x5A
    return bytes(b)


# (suffix, corrupt bytes): each breaks the format's structure, not only its contents
CORRUPT: dict[str, Callable[[bytes], bytes]] = {
    "bad-deflate.gz": lambda d: _flip(gzip.compress(d), 20),
    "truncated.gz": lambda d: gzip.compress(d)[:-200],
    "truncated.zst": lambda d: zstandard.ZstdCompressor().compress(d)[:-200],
    "bad-header.zst": lambda d: _flip(zstandard.ZstdCompressor().compress(d), 4, 8),
    "bad.xz": lambda d: _flip(lzma.compress(d), 60),
    "truncated.xz": lambda d: lzma.compress(d)[:-100],
    "bad.bz2": lambda d: _flip(bz2.compress(d), 40),
}


@pytest.fixture(params=sorted(CORRUPT))
def corrupt(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[bytes], Path]:
    name = request.param

    def make(data: bytes) -> Path:
        path = tmp_path / f"input-{name}"
        path.write_bytes(CORRUPT[name](data))
        return path

    return make


def test_corrupt_pages_for_estimate_and_sizes(corrupt: Callable[[bytes], Path]) -> None:
    path = corrupt(PAGES)
    for args in (["estimate", str(path), "--algo", "lz4"], ["sizes", str(path), "--algo", "lz4"]):
        err = one_line_error(run(args))
        assert str(path) in err and "corrupt" in err


def test_corrupt_traces_for_replay_and_zswap_replay(
    corrupt: Callable[[bytes], Path], testdata: Path
) -> None:
    zram = corrupt(gzip.decompress((testdata / "traces" / "fill-lz4.trace.gz").read_bytes()))
    err = one_line_error(run(["replay", str(zram)]))
    assert str(zram) in err and "corrupt" in err
    zswap = corrupt(b"ram 1G\nparam enabled Y\n" + b"s 0 100\ni 0\n" * 20000)
    err = one_line_error(run(["zswap", "replay", str(zswap)]))
    assert str(zswap) in err and "corrupt" in err


def test_scripts_that_are_not_text(tmp_path: Path) -> None:
    binary = tmp_path / "binary.zram"
    binary.write_bytes(b"set disksize 64K\n" + bytes(range(256)) * 4)
    err = one_line_error(run(["zram", str(binary)]))
    assert f"{binary}:2:" in err and "not a text file" in err
    latin1 = tmp_path / "latin1.zram"
    latin1.write_bytes("set disksize 64K\nshow mm_stat # café\n".encode("latin-1"))
    err = one_line_error(run(["zram", str(latin1)]))
    assert f"{latin1}:2:" in err and "UTF-8" in err
    err = one_line_error(run(["zram", "-"], stdin=binary.open("rb")))
    assert "<stdin>:2:" in err


def test_a_closed_stdin() -> None:
    code = (
        "import os, sys\n"
        "os.close(0)\n"
        "sys.stdin = None\n"
        "sys.argv = ['zsmalloc', 'zram', '-']\n"
        "from zsmalloc.cli.main import main\n"
        "main()\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "standard input is closed" in one_line_error(p)
    p = run(["replay", "-"], stdin=subprocess.DEVNULL)  # an empty stdin: nothing to compare
    assert "nothing to compare" in one_line_error(p)


@pytest.mark.parametrize(
    ("algo", "problem"),
    [
        ("", "empty algorithm name"),
        ("lz4,,lzo", "empty algorithm name"),
        ("lz4,", "empty algorithm name"),
        ("lz4,lz4", "lz4 is given twice"),
        ("lz4, lz4", "lz4 is given twice"),
    ],
)
def test_algorithm_lists_that_do_not_say_what_they_mean(
    tmp_path: Path, algo: str, problem: str
) -> None:
    pages = tmp_path / "p.bin"
    pages.write_bytes(PAGES)
    for cmd in ("estimate", "sizes"):
        assert problem in one_line_error(run([cmd, str(pages), "--algo", algo]))
    results = tmp_path / "r.json"
    results.write_text("{}")
    assert problem in one_line_error(run(["report", str(results), "--algo", algo]))


def test_zstd_level_99_is_clamped_as_the_kernel_does(tmp_path: Path) -> None:
    """ZSTD_getCParams() clamps the level: 99 compresses exactly as 22."""
    pages = tmp_path / "p.bin"
    pages.write_bytes(PAGES)
    at99 = run(["sizes", str(pages), "--algo", "zstd", "--level", "99"])
    at22 = run(["sizes", str(pages), "--algo", "zstd", "--level", "22"])
    assert at99.returncode == at22.returncode == 0, at99.stderr
    assert at99.stdout == at22.stdout


def test_a_closed_pipe_on_stdout_exits_1_quietly(testdata: Path) -> None:
    """The reader is gone before the first write: status 1, nothing on stderr."""
    for args in (
        ["classes"],
        ["sizes", str(testdata / "shared_pages.bin.gz"), "--algo", "lz4"],
        ["replay", str(testdata / "traces" / "fill-lz4.trace.gz"), "--json"],
    ):
        r, w = os.pipe()
        os.close(r)
        p = subprocess.run(
            [sys.executable, "-m", "zsmalloc.cli.main", *args], stdout=w, stderr=subprocess.PIPE
        )
        os.close(w)
        assert p.returncode == 1, p.stderr
        assert p.stderr == b""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_on_stdout_is_one_line() -> None:
    with open("/dev/full", "w") as full:
        p = subprocess.run(
            [sys.executable, "-m", "zsmalloc.cli.main", "classes"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert "cannot write the output: No space left on device" in one_line_error(p, status=1)


def test_writing_past_the_end_stops_there_and_says_so(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(PAGES)  # 64 pages into a 16-page device
    p = run(
        [
            "zram",
            "-e",
            f"set disksize 64K; write {big}; show mm_stat; write /dev/zero at 32K; show mm_stat",
        ]
    )
    assert p.returncode == 0, p.stderr
    notes = p.stderr.splitlines()
    assert notes == [
        f"zsmalloc: note: -e:2: write {big}: stopped at the end of zram0 (disksize 65536) "
        "after 16 pages; the rest was not written",
        "zsmalloc: note: -e:4: write /dev/zero: stopped at the end of zram0 (disksize 65536) "
        "after 8 pages; the rest was not written",
    ]
    first, second = (line.split() for line in p.stdout.splitlines())
    assert first[0] == second[0] == str(16 * PAGE)  # orig_data_size: the device is full
    p = run(["zram", "-e", "set disksize 64K; write /dev/zero at 64K"])
    assert "ENOSPC" in one_line_error(p)  # starting at the end: the kernel's error


def test_a_value_the_kernel_reads_in_part_is_noted() -> None:
    p = run(["zram", "-e", "set disksize 1.5M; show disksize"])
    assert p.returncode == 0 and p.stdout == "4096\n"  # memparse("1.5M") is 1: one page
    assert "the kernel's memparse reads '1' = 1 bytes and ignores '.5M'" in p.stderr
    assert "expected a size" in one_line_error(run(["zram", "--disksize", "1.5M", "-e", ""]))


@pytest.mark.parametrize(
    "suffix,pack",
    [
        (".gz", gzip.compress),
        (".xz", lzma.compress),
        (".bz2", bz2.compress),
        (".zst", lambda b: zstandard.ZstdCompressor().compress(b)),
    ],
)
def test_a_compressed_source_leaves_no_file_open(
    tmp_path: Path, suffix: str, pack: Callable[[bytes], bytes]
) -> None:
    """Closing a decompressing stream closes the file under it (GzipFile, LZMAFile and
    BZ2File given a file object leave it open): many SOURCE arguments must not leak
    a descriptor each."""
    import gc
    import warnings

    from zsmalloc.estimate.sources import open_path

    path = tmp_path / f"pages{suffix}"
    path.write_bytes(pack(bytes(4096) * 3))
    src = open_path(path, 4096)
    out = np.empty((4, 4096), np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert src.read_pages(out) == 3
        src.close()
        gc.collect()  # a file object dropped unclosed warns when it is freed
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
