"""``zsmalloc estimate`` end to end: kernel-recorded mm_stat, options, errors, Ctrl-C."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import kernel_mm_stat, run_cli
from zsmalloc.errors import InputError
from zsmalloc.estimate import driver
from zsmalloc.estimate.driver import run_estimate
from zsmalloc.estimate.sample import SampleSource
from zsmalloc.estimate.sources import FileSource
from zsmalloc.zram.stats import MmStat


@pytest.mark.parametrize("extra", [[], ["--compact"]])
def test_shared_pages_json_matches_kernel(
    testdata: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's acceptance test: gzip input, three algorithms, before and after compact
    (from the closed form, and with --compact from zs_compact on a real Pool)."""
    path = str(testdata / "shared_pages.bin.gz")
    code, out, _ = run_cli(
        ["estimate", path, "--algo", "lzo,lzo-rle,lz4", "--json", *extra], capsys
    )
    assert code == 0
    rep = json.loads(out)
    expected = kernel_mm_stat(testdata)
    assert set(rep["algorithms"]) == set(expected) == {"lzo", "lzo-rle", "lz4"}
    cols = rep["mm_stat_columns"]
    for algo, (before, after) in expected.items():
        got = rep["algorithms"][algo]
        assert MmStat(**got["mm_stat"]) == before
        assert MmStat(**got["mm_stat_after_compact"]) == after
        assert MmStat.parse(got["mm_stat_line"]) == before
        assert cols == list(MmStat._fields)
        assert got["kernel_exact"] is True
        assert got["compaction_run_in_pool"] is bool(extra)
    assert rep["input"]["pages"] == 1024


def test_text_report_classes_and_plot(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "est.png"
    code, out, _ = run_cli(
        [
            "estimate",
            str(testdata / "shared_pages.bin.gz"),
            "--algo",
            "lz4",
            "--classes",
            "--compact",
            "--plot",
            str(png),
        ],
        capsys,
    )
    assert code == 0
    before, _after = kernel_mm_stat(testdata)["lz4"]
    # the mm_stat table shows the kernel's numbers
    mm_row = next(line for line in out.splitlines() if "mem_used_total" in line)
    assert str(before.mem_used_total) in mm_row
    assert "obj_allocated" in out and "pages_per_zspage" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Debugfs table totals add up to mem_used_total.
    total_line = next(line for line in out.splitlines() if line.startswith(" Total"))
    pages_used = int(total_line.split()[-2])
    assert pages_used * 4096 == before.mem_used_total


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["estimate", "--help"], capsys)
    assert code == 0
    for opt in (
        "--pid",
        "--all-processes",
        "--algo",
        "--chain",
        "--page-size",
        "--kernel",
        "--level",
        "--deflate-winbits",
        "--compact",
        "--json",
        "--classes",
        "--plot",
    ):
        assert opt in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["/nonexistent/file.img"], "/nonexistent/file.img: no such file or directory"),
        (["--pid", "999999999"], "pid 999999999: no such process"),
        (["--algo", "lz5", "README.md"], "unknown compression algorithm 'lz5'"),
        (
            ["--plot", "/nonexistent/x.png", "README.md"],
            "/nonexistent/x.png: cannot write the plot",
        ),
        (
            ["--kernel", "6.1", "--level", "3", "README.md"],
            "Linux 6.1 zram has no algorithm_params",
        ),
        (
            ["--algo", "deflate", "--deflate-winbits", "20", "README.md"],
            "deflate: winbits must be -15 .. -9 (raw) or 9 .. 15",
        ),
        (
            ["--algo", "deflate", "--deflate-winbits", "15", "--kernel", "6.12", "README.md"],
            "Linux 6.12 has no algorithm_params deflate.winbits",
        ),
        (["--algo", "lz4hc", "--kernel", "7.3", "--level", "17", "README.md"], "refuses level 17"),
        (["--zswap", "--level", "3", "README.md"], "--zswap with --level"),
    ],
)
def test_user_errors_are_one_line(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["estimate", *args], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and needle in err, err


def test_a_kernel_without_a_profile_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(["estimate", "--kernel", "5.4", "README.md"], capsys)
    assert (code, out) == (2, "")
    assert "kernel '5.4' is older than every known profile" in err


def test_kernel_thread_pid_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from zsmalloc.estimate.process import is_kernel_thread

    pid = next((p for p in (2, 3, 4) if is_kernel_thread(p)), None)
    if pid is None:
        pytest.skip("no kernel thread visible here (a pid namespace?)")
    code, _, err = run_cli(["estimate", "--pid", str(pid)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "is a kernel thread: it has no user memory" in err


def test_empty_source_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    code, _, err = run_cli(["estimate", str(empty)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "no pages to estimate" in err and str(empty) in err
    os.mkdir(tmp_path / "emptydir")
    code, _, err = run_cli(["estimate", str(tmp_path / "emptydir")], capsys)
    assert code == 2 and "no pages" in err


def as_nobody(fn: object) -> tuple[int, str]:
    """Run ``fn()`` in a child process with uid/gid nobody; (exit code, its one-line output).

    The child is forked with the package already imported, and ``fn`` must not need
    the checkout's files: the checkout may sit where nobody cannot read (a ``mktemp
    -d`` directory is 0700), and the code under test must not need it either.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the nobody user")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            msg = fn()  # type: ignore[operator]
            os.write(w, str(msg).encode())
            code = 0
        except BaseException as exc:
            os.write(w, f"{type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def test_unreadable_pid_without_root() -> None:
    from zsmalloc.estimate.process import ProcessSource

    code, out = as_nobody(lambda: ProcessSource(1, 4096))
    assert code == 1
    assert out.startswith("InputError: pid 1 (") and "permission denied" in out


def test_default_input_without_root_is_own_processes_or_sample() -> None:
    from zsmalloc.cli.estimate import default_sources

    code, out = as_nobody(lambda: default_sources(4096)[1])
    assert code == 0
    # nobody owns no process here (this test's child is not readable to itself
    # as a separate pid set), so the fallback is the built-in sample.
    assert out in (
        "a built-in sample: no readable process memory here",
        "the memory of this machine's readable processes: your own processes (not root)",
    )


def test_ctrl_c_keeps_what_was_done(testdata: Path) -> None:
    """Ctrl-C between chunks: the tally covers whole chunks and says it was interrupted."""
    calls = []

    def on_chunk(n: int) -> None:
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    src = FileSource(testdata / "shared_pages.bin.gz", 4096)
    tally = run_estimate([src], ["lz4"], chunk_pages=100, on_chunk=on_chunk)
    assert tally.interrupted
    assert tally.pages == 200
    assert int(tally.len_hist["lz4"].sum()) + tally.same_pages == 200


def test_chunking_does_not_change_the_answer(testdata: Path) -> None:
    """Chunk boundaries (and the reader thread) are invisible in the histogram."""
    a = run_estimate(
        [FileSource(testdata / "shared_pages.bin.gz", 4096)],
        ["lzo"],
        chunk_pages=4096,
        keep_lengths=True,
    )
    b = run_estimate(
        [FileSource(testdata / "shared_pages.bin.gz", 4096)],
        ["lzo"],
        chunk_pages=37,
        keep_lengths=True,
    )
    assert np.array_equal(a.len_hist["lzo"], b.len_hist["lzo"])
    assert np.array_equal(a.page_lengths("lzo"), b.page_lengths("lzo"))
    with gzip.open(testdata / "shared_pages.bin.gz") as f:
        assert a.pages == len(f.read()) // 4096


def test_sample_source_is_reproducible() -> None:
    t1 = run_estimate([SampleSource(4096, 300)], ["lz4"])
    t2 = run_estimate([SampleSource(4096, 300)], ["lz4"])
    assert np.array_equal(t1.len_hist["lz4"], t2.len_hist["lz4"])
    assert t1.pages == 300 and t1.same_pages > 0
    assert t1.len_hist["lz4"][4096] > 0  # the random share is stored raw


def test_default_input_falls_back_to_sample(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zsmalloc.cli import estimate as cli_estimate

    monkeypatch.setattr(cli_estimate.AllProcessesSource, "total_pages", lambda self: 0)
    monkeypatch.setattr(driver, "CHUNK_PAGES", 1024)
    code, out, _ = run_cli(["estimate", "--json", "--algo", "lz4"], capsys)
    assert code == 0
    rep = json.loads(out)
    assert "built-in sample" in rep["input"]["default_input"]
    assert rep["input"]["pages"] == SampleSource(4096).nr_pages


def test_library_entry_point(testdata: Path) -> None:
    from zsmalloc.estimate import estimate

    zeros = np.zeros((4, 4096), dtype=np.uint8)  # four more same-filled pages
    rep = estimate(testdata / "shared_pages.bin.gz", zeros.tobytes(), algos=["lz4"])
    before, _ = kernel_mm_stat(testdata)["lz4"]
    got = rep.algos["lz4"].mm_stat
    assert got == before._replace(
        orig_data_size=before.orig_data_size + 4 * 4096, same_pages=before.same_pages + 4
    )


@pytest.mark.parametrize("algo", ["lzo", "lz4"])
def test_zswap_view_matches_zswap_estimate_on_the_pages(
    testdata: Path, algo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--zswap derives zswap's lengths from the zram pass; zswap's own estimate agrees."""
    from zsmalloc.zswap.estimate import estimate_zswap

    path = testdata / "shared_pages.bin.gz"
    code, out, _ = run_cli(["estimate", str(path), "--algo", algo, "--zswap", "--json"], capsys)
    assert code == 0
    with gzip.open(path) as f:
        pages = np.frombuffer(f.read(), dtype=np.uint8).reshape(-1, 4096)
    # Same-filled but not all-zero pages reach zswap: the data must hold some.
    words = pages.view(np.uint64)
    same = (words == words[:, :1]).all(axis=1)
    assert (same & pages.any(axis=1)).any()
    expected = estimate_zswap(pages=pages, compressor=algo).as_dict()
    assert json.loads(out)["algorithms"][algo]["zswap"] == expected


def test_sigint_prints_the_report_so_far(tmp_path: Path) -> None:
    """A real Ctrl-C (SIGINT) to the command: report of the pages done, summary, status 130.

    Event-driven, no sleeping: the command reads a FIFO, and a write to a FIFO returns
    only once the reader has taken the bytes.  The reader thread holds at most two
    chunks, so when four chunks and more than a pipe's buffer have been taken, the
    first chunk has been tallied; SIGINT then lands while the command waits for more.
    """
    import shutil
    import signal
    import subprocess
    import sys

    exe = shutil.which("zsmalloc") or str(Path(sys.executable).with_name("zsmalloc"))
    driver.warm_up(["lz4"])  # compile here first (numba's disk cache): the child only loads
    fifo = tmp_path / "pages.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [exe, "estimate", str(fifo), "--algo", "lz4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    chunk = driver.CHUNK_PAGES * 4096
    page = (b"zsmalloc estimate, interrupted. " * 128)[:4096]
    fd = os.open(fifo, os.O_WRONLY)  # returns once the command has opened its input
    try:
        block = page * 256
        for _ in range((4 * chunk + (1 << 20)) // len(block)):
            os.write(fd, block)  # returns when the command has read it
        proc.send_signal(signal.SIGINT)
    finally:
        os.close(fd)  # end of input, for a reader still waiting
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "INTERRUPTED" in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("interrupted after ") and " pages " in summary
    pages = int(summary.split()[2])
    assert driver.CHUNK_PAGES <= pages <= 5 * driver.CHUNK_PAGES


def test_chain_option_agrees_with_the_chain_size_table(
    testdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(testdata / "shared_pages.bin.gz")
    _, out8, _ = run_cli(["estimate", path, "--algo", "lz4", "--json"], capsys)
    _, out16, _ = run_cli(["estimate", path, "--algo", "lz4", "--json", "--chain", "16"], capsys)
    r8, r16 = json.loads(out8), json.loads(out16)
    assert r16["chain_size"] == 16 and r16["huge_class_size"] == 3833
    by_chain = r8["algorithms"]["lz4"]["mem_used_total_by_chain_size"]
    assert by_chain["16"] == r16["algorithms"]["lz4"]["mm_stat"]["mem_used_total"]
    assert by_chain["8"] == r8["algorithms"]["lz4"]["mm_stat"]["mem_used_total"]
    # With a higher huge threshold, fewer pages are stored raw.
    assert (
        r16["algorithms"]["lz4"]["mm_stat"]["huge_pages"]
        < r8["algorithms"]["lz4"]["mm_stat"]["huge_pages"]
    )


def test_standard_input_is_a_raw_image(testdata: Path, tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    exe = shutil.which("zsmalloc") or str(Path(sys.executable).with_name("zsmalloc"))
    with gzip.open(testdata / "shared_pages.bin.gz") as f:
        raw = f.read()
    proc = subprocess.run(
        [exe, "estimate", "-", "--algo", "lz4", "--json"], input=raw, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    before, _ = kernel_mm_stat(testdata)["lz4"]
    assert MmStat(**rep["algorithms"]["lz4"]["mm_stat"]) == before
    assert rep["input"]["sources"][0]["label"] == "standard input"


def test_default_falls_back_when_no_process_can_be_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Owning processes is not enough under Yama's ptrace_scope: then the sample."""
    from zsmalloc.cli import estimate as cli_estimate

    def refuse(*args: object, **kwargs: object) -> None:
        raise InputError("pid 1: cannot read its memory: permission denied")

    monkeypatch.setattr(cli_estimate, "ProcessSource", refuse)
    code, out, _ = run_cli(["estimate", "--json", "--algo", "lz4"], capsys)
    assert code == 0
    assert "built-in sample" in json.loads(out)["input"]["default_input"]


def test_default_falls_back_when_the_processes_give_no_pages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zsmalloc.cli import estimate as cli_estimate

    monkeypatch.setattr(cli_estimate, "any_readable", lambda pids, ps: True)
    monkeypatch.setattr(cli_estimate.AllProcessesSource, "total_pages", lambda self: 10)
    monkeypatch.setattr(cli_estimate.AllProcessesSource, "parts", lambda self: iter(()))
    code, out, _ = run_cli(["estimate", "--json", "--algo", "lz4"], capsys)
    assert code == 0
    rep = json.loads(out)
    assert rep["input"]["default_input"].endswith("the readable processes gave no pages")
    assert rep["input"]["pages"] == SampleSource(4096).nr_pages


def test_terminal_stderr_gets_the_bar_and_the_same_answer(testdata: Path) -> None:
    """On a terminal, stderr shows rich's bar (rich is imported only then); stdout's
    report is the kernel's all the same."""
    import pty
    import shutil
    import subprocess
    import sys

    exe = shutil.which("zsmalloc") or str(Path(sys.executable).with_name("zsmalloc"))
    driver.warm_up(["lz4"])
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [exe, "estimate", str(testdata / "shared_pages.bin.gz"), "--algo", "lz4", "--json"],
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        out, _ = proc.communicate(timeout=120)
        seen = b""
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child's side is closed
                break
            if not data:
                break
            seen += data
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert b"compressing (lz4)" in seen
    before, _after = kernel_mm_stat(testdata)["lz4"]
    assert MmStat(**json.loads(out)["algorithms"]["lz4"]["mm_stat"]) == before
