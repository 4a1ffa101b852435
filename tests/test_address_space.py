"""Under ``ulimit -v``: any disksize, any Pool, and a clean error when memory runs out.

The model reserves host memory as it is used (zsmalloc/zs/state.py), so nothing
asks for a 4 GiB arena up front: ``Pool()``, a 64 GiB zram device written at its
far end, and the replay of a trace recorded with a 64 GiB disksize all work with
3 GiB of address space left (the old up-front reservation alone was 5 GiB for a
Pool, 64 GiB for the device), as they do in the kernel.  When the limit is really
reached, the CLI says so in one line.

Each case runs in a child process that first does the same work on a small scale
(numba compiles or loads its code: what the interpreter and the libraries map
depends on the machine) and then limits itself to what it maps now plus a budget,
as ``ulimit -v`` would.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

GiB = 1 << 30
MiB = 1 << 20
PAGE = 4096

PRELUDE = """
import mmap, resource, sys
from zsmalloc.cli.main import main

def limit(budget):
    with open('/proc/self/statm') as f:
        mapped = int(f.read().split()[0]) * mmap.PAGESIZE
    resource.setrlimit(resource.RLIMIT_AS, (mapped + budget, mapped + budget))

def cli(*argv):
    try:
        main(list(argv))
    except SystemExit as exc:
        if exc.code:
            raise
"""


def child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + code], capture_output=True, text=True, timeout=600
    )


def test_pool_and_a_64g_device_with_3g_left() -> None:
    code = (
        "from zsmalloc import Pool, Zram\n"
        "z = Zram(); z.write_attr('disksize', '64K'); z.write(0, bytes(range(256)) * 32)\n"
        "Pool().malloc(100)\n"
        f"limit({3 * GiB})\n"
        "p = Pool()\n"
        "h = p.malloc(3000); p.write(h, b'x' * 3000); assert p.read(h, 3000) == b'x' * 3000\n"
        "z = Zram(); z.write_attr('disksize', '64G')\n"
        "end = 64 * 2**30 - 2 * 4096\n"
        "z.write(end, bytes(range(256)) * 32)\n"
        "assert z.read(end, 8192) == bytes(range(256)) * 32\n"
        "print(z.read_attr('mm_stat'), end='')\n"
    )
    out = child(code)
    assert out.returncode == 0, out.stderr
    mm = out.stdout.split()
    assert mm[0] == str(2 * PAGE) and mm[7] == "0"  # two pages stored, none huge


def test_replay_of_a_64g_trace_with_3g_left(testdata: Path, tmp_path: Path) -> None:
    """The kernel's recorded mm_stat lines do not depend on disksize: a 64 GiB header
    must replay them as exactly as the recorded one."""
    src = testdata / "traces" / "churn-lzo-rle.trace.gz"
    text = gzip.decompress(src.read_bytes())
    first, rest = text.split(b"\n", 1)
    words = [w if not w.startswith(b"disksize=") else b"disksize=%d" % (64 * GiB)
             for w in first.split()]
    trace = tmp_path / "64g.trace"
    trace.write_bytes(b" ".join(words) + b"\n" + rest)
    out = child(f"cli('replay', {str(src)!r})\nlimit({3 * GiB})\ncli('replay', {str(trace)!r})\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("mm_stat lines match") == 2


def test_the_zram_script_with_3g_left(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(PAGE) + b"\x01" * PAGE)
    script = f"set disksize 64G; write {data} at {64 * GiB - 2 * PAGE}; show mm_stat"
    out = child(
        f"cli('zram', '-e', 'set disksize 64K; write {data}')\n"
        f"limit({3 * GiB})\n"
        f"cli('zram', '-e', {script!r})\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == [str(2 * PAGE), str(PAGE)]  # one huge, one same-filled


@pytest.mark.parametrize("budget", [64 * MiB, 192 * MiB])
def test_running_out_is_one_line(tmp_path: Path, budget: int) -> None:
    """Data that does not fit in what is left: the error names the cause, no traceback."""
    data = tmp_path / "random.bin"
    with open(data, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(4 * MiB))  # 256 MiB that does not compress
    out = child(
        f"cli('zram', '-e', 'set disksize 64K; write {data} pages 8')\n"
        f"limit({budget})\n"
        f"cli('zram', '-e', 'set disksize 1G; write {data}; show mm_stat')\n"
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("zsmalloc: error: -e:2: cannot reserve")
    assert "ulimit -v" in out.stderr
