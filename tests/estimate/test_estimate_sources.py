"""Page sources: what pages each kind of input yields, and what it skips."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from zsmalloc.errors import InputError
from zsmalloc.estimate.process import AllProcessesSource, ProcessSource
from zsmalloc.estimate.sources import (
    ArraySource,
    CoreDumpSource,
    DirectorySource,
    FileSource,
    open_path,
)

PAGE = 4096


def drain(src: object, chunk: int = 7) -> np.ndarray:
    """All pages of a source, read through a small buffer (exercises refills)."""
    out = []
    buf = np.empty((chunk, PAGE), dtype=np.uint8)
    while True:
        n = src.read_pages(buf)  # type: ignore[attr-defined]
        out.append(buf[:n].copy())
        if n < chunk:
            break
    src.close()  # type: ignore[attr-defined]
    return np.concatenate(out)


def as_pages(data: bytes) -> np.ndarray:
    """What zram would hold: the bytes, the last page zero-padded."""
    padded = data + bytes(-len(data) % PAGE)
    return np.frombuffer(padded, dtype=np.uint8).reshape(-1, PAGE)


@given(data=st.binary(max_size=5 * PAGE + 100))
def test_file_pages_are_the_bytes_zero_padded(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    p = tmp_path_factory.mktemp("f") / "img"
    p.write_bytes(data)
    src = open_path(p, PAGE)
    assert src.total_pages() == -(-len(data) // PAGE)
    assert np.array_equal(drain(src), as_pages(data))


@pytest.mark.parametrize(
    ("name", "pack"),
    [
        ("gz", gzip.compress),
        ("xz", lzma.compress),
        ("bz2", bz2.compress),
        ("zst", lambda d: zstandard.ZstdCompressor().compress(d)),
    ],
)
def test_compressed_images_are_decompressed(tmp_path: Path, name: str, pack: object) -> None:
    data = os.urandom(3 * PAGE) + b"tail"
    p = tmp_path / f"img.{name}"
    p.write_bytes(pack(data))  # type: ignore[operator]
    src = open_path(p, PAGE)
    assert isinstance(src, FileSource) and src.compression is not None
    assert np.array_equal(drain(src), as_pages(data))


def test_directory_files_in_sorted_order_each_on_new_pages(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    files = {"a.txt": b"A" * 10, "b/c.bin": b"C" * (PAGE + 1), "b/d": b"", "z": b"Z" * PAGE}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    os.symlink(tmp_path / "z", tmp_path / "link")  # not followed
    src = open_path(tmp_path, PAGE)
    assert isinstance(src, DirectorySource)
    expected = np.concatenate([as_pages(files[n]) for n in ("a.txt", "b/c.bin", "b/d", "z")])
    assert src.total_pages() == len(expected)
    assert np.array_equal(drain(src, chunk=2), expected)
    assert src.files == 4


def elf_core(segments: list[tuple[int, bytes]]) -> bytes:
    """A minimal ELF64 little-endian ET_CORE: a PT_NOTE and one PT_LOAD per segment."""
    phnum = len(segments) + 1
    phoff = 64
    data_off = phoff + 56 * phnum
    note = b"\0" * 20
    ehdr = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, phoff, 0, 0, 64, 56, phnum, 0, 0, 0)
    phdrs = struct.pack("<IIQQQQQQ", 4, 0, data_off, 0, 0, len(note), 0, 4)
    body = note
    for vaddr, seg in segments:
        off = data_off + len(body)
        phdrs += struct.pack("<IIQQQQQQ", 1, 6, off, vaddr, 0, len(seg), len(seg), PAGE)
        body += seg
    return ehdr + phdrs + body


def test_core_dump_yields_its_memory_segments(tmp_path: Path) -> None:
    seg1, seg2 = os.urandom(2 * PAGE), b"x" * 100
    p = tmp_path / "core"
    p.write_bytes(elf_core([(0x400000, seg1), (0x7F0000000000, seg2)]))
    src = open_path(p, PAGE)
    assert isinstance(src, CoreDumpSource)
    assert src.total_pages() == 3
    assert np.array_equal(drain(src, chunk=2), np.concatenate([as_pages(seg1), as_pages(seg2)]))


def test_elf_executable_is_a_plain_file() -> None:
    src = open_path(sys.executable, PAGE)
    assert isinstance(src, FileSource)
    src.close()


CHILD = """
import mmap, sys
m = mmap.mmap(-1, 64 * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(48):                       # touch 48 pages with a known pattern
    m[i * 4096:(i + 1) * 4096] = bytes([i + 1]) * 8 + b"zsmalloc" * 511
print(hex(__import__("ctypes").addressof(__import__("ctypes").c_char.from_buffer(m))))
sys.stdout.flush()
sys.stdin.read()
"""


@pytest.fixture
def child() -> tuple[subprocess.Popen[str], int]:
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None
    addr = int(p.stdout.readline(), 16)
    yield p, addr
    p.kill()
    p.wait()


def test_process_source_reads_resident_anonymous_pages(
    child: tuple[subprocess.Popen[str], int],
) -> None:
    proc, _addr = child
    try:
        src = ProcessSource(proc.pid, PAGE)
    except InputError as exc:  # e.g. Yama ptrace_scope forbids it here
        pytest.skip(str(exc))
    pages = drain(src, chunk=64)
    # Every page the child touched is there, byte for byte, and untouched ones are not.
    marker = b"zsmalloc" * 511
    found = {
        int(p[0]) for p in pages if p[8:].tobytes() == marker and len(set(p[:8].tolist())) == 1
    }
    assert found == set(range(1, 49))
    assert src.skipped.get("pages never touched", 0) >= 16


def test_process_exit_midway_ends_the_source(child: tuple[subprocess.Popen[str], int]) -> None:
    proc, _ = child
    try:
        src = ProcessSource(proc.pid, PAGE)
    except InputError as exc:
        pytest.skip(str(exc))
    proc.kill()
    proc.wait()
    time.sleep(0.05)
    pages = drain(src)  # no exception: what could not be read is skipped
    assert len(pages) == src.pages


def test_self_and_missing_pids_are_refused() -> None:
    with pytest.raises(InputError, match="this estimate itself"):
        ProcessSource(os.getpid(), PAGE)
    with pytest.raises(InputError, match="no such process"):
        ProcessSource(2**22 + 12345, PAGE)
    with pytest.raises(InputError, match="--page-size"):
        ProcessSource(1, 16384)


def test_all_processes_never_reads_itself() -> None:
    src = AllProcessesSource(PAGE, [os.getpid()])
    assert src.pids == [] and drain(src).shape == (0, PAGE)


def test_array_source_and_bad_sizes() -> None:
    a = np.arange(3 * PAGE, dtype=np.uint32).view(np.uint8)[: 3 * PAGE]
    assert np.array_equal(drain(ArraySource(a, PAGE)), a.reshape(-1, PAGE))
    with pytest.raises(InputError, match="whole 4096-byte pages"):
        ArraySource(b"x" * 100, PAGE)


FORKER = """
import mmap, os, sys
m = mmap.mmap(-1, 32 * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(32):
    m[i * 4096:(i + 1) * 4096] = bytes([i + 1]) * 8 + b"cowshare" * 511
pid = os.fork()                          # the child shares every page, copy-on-write
if pid:
    print(os.getpid(), pid, flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="page frame numbers are visible to root only")
def test_copy_on_write_pages_are_read_once() -> None:
    p = subprocess.Popen(
        [sys.executable, "-c", FORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout is not None
        parent, child = (int(x) for x in p.stdout.readline().split())
        src = AllProcessesSource(PAGE, [parent, child])
        pages = drain(src, chunk=64)
        marker = b"cowshare" * 511
        found = [int(pg[0]) for pg in pages if pg[8:].tobytes() == marker]
        assert sorted(found) == list(range(1, 33))  # each shared page once, not twice
        assert src.skipped["pages shared with a process read before"] >= 32
    finally:
        assert p.stdin is not None
        p.stdin.close()  # both processes read stdin: EOF ends the forked child too
        p.wait(timeout=10)


@given(
    sizes=st.lists(st.integers(0, 3 * PAGE), min_size=1, max_size=6),
    chunk=st.integers(1, 9),
)
def test_directory_pages_do_not_depend_on_the_buffer_size(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], chunk: int
) -> None:
    root = tmp_path_factory.mktemp("d")
    rng = np.random.default_rng(len(sizes))
    blobs = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in sizes]
    for i, b in enumerate(blobs):
        (root / f"f{i:02d}").write_bytes(b)
    expected = np.concatenate([as_pages(b) for b in blobs])
    assert np.array_equal(drain(DirectorySource(root, PAGE), chunk=chunk), expected)


def test_pseudo_filesystems_are_not_entered(tmp_path: Path) -> None:
    from zsmalloc.estimate.sources import pseudo_mount_points, walk_files

    assert "/proc" in pseudo_mount_points()  # proc is mounted wherever this runs
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"x")
    (tmp_path / "b" / "y").write_bytes(b"y")
    skip = frozenset({os.path.realpath(tmp_path / "b")})
    assert [p.name for p in walk_files(tmp_path, skip)] == ["x"]


def test_many_sources_hold_few_descriptors(tmp_path: Path) -> None:
    """Each file is opened when its turn comes and closed when read: 300 files, 64 fds."""
    import resource

    from zsmalloc.estimate.driver import run_estimate

    paths = []
    for i in range(300):
        p = tmp_path / f"f{i:03d}"
        p.write_bytes(bytes([i % 251 + 1]) * 100 + b"x" * 50)
        paths.append(p)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 48, hard))
    try:
        srcs = [open_path(p, PAGE) for p in paths]
        tally = run_estimate(srcs, ["lz4"], chunk_pages=16)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert tally.pages == 300 and [s.pages for s in tally.sources] == [1] * 300


CRASHER = """
import mmap, os, resource, signal
resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
m = mmap.mmap(-1, 16 * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(16):
    m[i * 4096:(i + 1) * 4096] = bytes([i + 1]) * 8 + b"coredump" * 511
os.kill(os.getpid(), signal.SIGSEGV)
"""


def test_a_kernel_core_dump_reads_as_readelf_says(tmp_path: Path) -> None:
    """A core the kernel wrote: our PT_LOAD pages are the bytes readelf locates."""
    import shutil

    if not shutil.which("readelf"):
        pytest.skip("readelf (binutils) not installed")
    with open("/proc/sys/kernel/core_pattern") as f:
        if f.read().strip() not in ("core", "core.%p"):
            pytest.skip("core_pattern sends cores elsewhere")
    subprocess.run([sys.executable, "-c", CRASHER], cwd=tmp_path, check=False)
    cores = sorted(tmp_path.glob("core*"))
    if not cores:
        pytest.skip("no core dump was written here")
    core = cores[0]
    data = core.read_bytes()
    expected = []
    out = subprocess.run(["readelf", "-lW", str(core)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and int(f[4], 16):
            off, filesz = int(f[1], 16), int(f[4], 16)
            expected.append(as_pages(data[off : off + filesz]))
    src = open_path(core, PAGE)
    assert isinstance(src, CoreDumpSource)
    pages = drain(src, chunk=100)
    assert np.array_equal(pages, np.concatenate(expected))
    marker = b"coredump" * 511
    assert sum(1 for p in pages if p[8:].tobytes() == marker) == 16
