"""Pages of every kind the kernel-exact compressors must get right.

Each generator returns one 4 KiB page (bytes) from a numpy ``Generator``, so a
seed fixes the whole set.  The kinds aim at the places where an LZ compressor
model goes wrong: skip acceleration on incompressible data (random, ELF),
hash collisions (text, heap, integers), lzo-rle's zero runs around the 2051
cap and near ``ip_end``, matches running into the end of the page (LZ4's
MFLIMIT/LASTLITERALS, LZO's 8-byte steps past ``ip_end``), lengths that make
the extra length bytes roll over (15 + 255k), and compressed sizes around
zram's huge threshold (3625).

Real files come from /usr (text, ELF); "heap" pages are read from this test
process's own anonymous memory (/proc/self/mem), never another process's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

PAGE = 4096
TEXT_SUFFIXES = {".h", ".py", ".txt", ".html", ".conf", ".pm", ".c", ".md", ".rst", ".css"}


def _files(roots: list[str], want: Callable[[Path], bool], limit: int = 400) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for name in sorted(names):
                p = Path(dirpath) / name
                try:
                    if p.is_file() and not p.is_symlink() and p.stat().st_size > 0 and want(p):
                        found.append(p)
                except OSError:
                    continue
                if len(found) >= limit * (roots.index(root) + 1):
                    break
            if len(found) >= limit * (roots.index(root) + 1):
                break
    return found


_cache: dict[str, list[Path]] = {}


def text_files() -> list[Path]:
    if "text" not in _cache:
        _cache["text"] = _files(
            ["/usr/include", "/usr/lib/python3.11", "/usr/share/doc", "/usr/share"],
            lambda p: p.suffix in TEXT_SUFFIXES,
        )
    return _cache["text"]


def elf_files() -> list[Path]:
    def is_elf(p: Path) -> bool:
        with open(p, "rb") as f:
            return f.read(4) == b"\x7fELF"

    if "elf" not in _cache:
        _cache["elf"] = _files(["/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/lib"], is_elf)
    return _cache["elf"]


def _file_page(rng: np.random.Generator, files: list[Path], aligned: bool) -> bytes:
    if not files:
        return rng.integers(0, 128, PAGE, dtype=np.uint8).tobytes()
    p = files[int(rng.integers(len(files)))]
    size = p.stat().st_size
    if aligned:
        off = int(rng.integers(0, max(1, (size + PAGE - 1) // PAGE))) * PAGE
    else:
        off = int(rng.integers(0, max(1, size - PAGE + 1)))
    with open(p, "rb") as f:
        f.seek(off)
        data = f.read(PAGE)
    return data + bytes(PAGE - len(data))  # a file's last page is zero-padded, as in page cache


def text_page(rng: np.random.Generator) -> bytes:
    return _file_page(rng, text_files(), aligned=bool(rng.integers(2)))


def elf_page(rng: np.random.Generator) -> bytes:
    return _file_page(rng, elf_files(), aligned=True)


_heap_ranges: list[tuple[int, int]] = []


def heap_page(rng: np.random.Generator) -> bytes:
    """A page of this process's heap or anonymous memory, read through /proc/self/mem."""
    if not _heap_ranges:
        for line in Path("/proc/self/maps").read_text().splitlines():
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) rw-p \S+ \S+ 0\s*(\S*)$", line)
            if m and m.group(3) in ("", "[heap]"):
                lo, hi = int(m.group(1), 16), int(m.group(2), 16)
                if hi - lo <= 1 << 30:
                    _heap_ranges.append((lo, hi))
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        for _ in range(20):
            lo, hi = _heap_ranges[int(rng.integers(len(_heap_ranges)))]
            addr = lo + int(rng.integers(0, (hi - lo) // PAGE)) * PAGE
            try:
                data = os.pread(fd, PAGE, addr)
            except OSError:
                continue
            if len(data) == PAGE:
                return data
    finally:
        os.close(fd)
    return int_page(rng)


def int_page(rng: np.random.Generator) -> bytes:
    dtype = [np.int8, np.int16, np.int32, np.int64][int(rng.integers(4))]
    n = PAGE // np.dtype(dtype).itemsize
    how = int(rng.integers(5))
    if how == 0:
        a = rng.integers(0, int(rng.choice([2, 10, 100, 1000])), n)
    elif how == 1:
        a = np.cumsum(rng.integers(0, 5, n))
    elif how == 2:
        a = rng.poisson(float(rng.choice([0.5, 3.0, 30.0])), n)
    elif how == 3:
        a = np.sort(rng.integers(0, 1 << 20, n))
    else:
        a = np.arange(n) * int(rng.integers(1, 9))
    return a.astype(dtype).tobytes()


def pointer_page(rng: np.random.Generator) -> bytes:
    if rng.integers(2):
        base = 0x7F0000000000 + int(rng.integers(0, 1 << 32)) * 16
        a = base + rng.integers(0, 1 << int(rng.integers(4, 20)), PAGE // 8) * 8
        a[rng.random(PAGE // 8) < 0.3] = 0
        return a.astype(np.uint64).tobytes()
    return np.cumsum(rng.normal(0, 1, PAGE // 8)).astype(np.float64).tobytes()


def random_page(rng: np.random.Generator) -> bytes:
    return rng.integers(0, 256, PAGE, dtype=np.uint8).tobytes()


def same_filled_page(rng: np.random.Generator) -> bytes:
    word = [bytes(8), b"\xff" * 8, rng.integers(0, 256, 8, dtype=np.uint8).tobytes()]
    return word[int(rng.integers(3))] * (PAGE // 8)


def zero_run_page(rng: np.random.Generator) -> bytes:
    """Zero runs of lengths around lzo-rle's 2051 cap, anywhere, up to the page end."""
    out = bytearray(rng.integers(1, 256, PAGE, dtype=np.uint8).tobytes())
    how = int(rng.integers(4))
    if how == 0:  # one run of 2051 +- 30
        length = 2051 + int(rng.integers(-30, 31))
        start = int(rng.integers(0, PAGE - length + 1))
    elif how == 1:  # a run reaching the end of the page (or just short of it)
        length = int(rng.integers(1, PAGE))
        start = PAGE - length - int(rng.integers(0, 40))
    elif how == 2:  # two caps' worth and more
        length = int(rng.integers(2040, PAGE))
        start = int(rng.integers(0, PAGE - length + 1))
    else:  # many short runs (4-byte words of zero and just under)
        for _ in range(int(rng.integers(1, 60))):
            s = int(rng.integers(0, PAGE))
            e = min(PAGE, s + int(rng.integers(1, 40)))
            out[s:e] = bytes(e - s)
        return bytes(out[:PAGE])
    start = max(0, start)
    out[start : start + length] = bytes(length)
    return bytes(out[:PAGE])


def tail_match_page(rng: np.random.Generator) -> bytes:
    """Matches that run into the last bytes of the page."""
    period = int(rng.integers(1, 300))
    block = rng.integers(0, 256, period, dtype=np.uint8).tobytes()
    prefix_len = int(rng.integers(0, PAGE))
    body = (block * (PAGE // period + 2))[: PAGE - prefix_len]
    out = bytearray(rng.integers(0, 256, prefix_len, dtype=np.uint8).tobytes() + body)
    if rng.integers(3) == 0:  # break the match just before the end
        k = int(rng.integers(1, 40))
        out[PAGE - k] ^= 0x5A
    return bytes(out)


def long_match_page(rng: np.random.Generator) -> bytes:
    """Short periods and constant runs: matches past 15, 33, 270, 525 ... bytes."""
    period = int(rng.integers(1, 17))
    block = rng.integers(1, 256, period, dtype=np.uint8).tobytes()
    out = bytearray((block * (PAGE // period + 1))[:PAGE])
    for _ in range(int(rng.integers(0, 8))):
        out[int(rng.integers(PAGE))] = int(rng.integers(256))
    return bytes(out)


def huge_edge_page(rng: np.random.Generator) -> bytes:
    """Incompressible prefixes sized so compressed lengths straddle 3625."""
    k = int(rng.integers(3540, 3700))
    fill = [bytes(PAGE - k), bytes([int(rng.integers(1, 256))]) * (PAGE - k)]
    return rng.integers(0, 256, k, dtype=np.uint8).tobytes() + fill[int(rng.integers(2))]


def sparse_page(rng: np.random.Generator) -> bytes:
    a = np.zeros(PAGE, dtype=np.uint8)
    idx = rng.integers(0, PAGE, int(rng.integers(1, 400)))
    a[idx] = rng.integers(1, 256, idx.size)
    return a.tobytes()


def fuzz_page(rng: np.random.Generator) -> bytes:
    """Random concatenations of zero / random / text / constant / self-copy segments."""
    out = bytearray()
    while len(out) < PAGE:
        n = int(rng.integers(1, 1200))
        kind = int(rng.integers(5))
        if kind == 0:
            out += bytes(n)
        elif kind == 1:
            out += rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        elif kind == 2:
            out += text_page(rng)[:n]
        elif kind == 3:
            out += bytes([int(rng.integers(256))]) * n
        elif out:
            s = int(rng.integers(len(out)))
            out += out[s : s + n]
    return bytes(out[:PAGE])


KINDS: dict[str, Callable[[np.random.Generator], bytes]] = {
    "text": text_page,
    "elf": elf_page,
    "heap": heap_page,
    "ints": int_page,
    "pointers_floats": pointer_page,
    "random": random_page,
    "same_filled": same_filled_page,
    "zero_runs": zero_run_page,
    "tail_match": tail_match_page,
    "long_match": long_match_page,
    "huge_edge": huge_edge_page,
    "sparse": sparse_page,
    "fuzz": fuzz_page,
}


def make_pages(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """``n`` pages cycling through every kind: (uint8 (n, 4096), kind of each page)."""
    rng = np.random.default_rng(seed)
    names = list(KINDS)
    pages = np.empty((n, PAGE), dtype=np.uint8)
    kinds = []
    for i in range(n):
        kind = names[i % len(names)]
        page = KINDS[kind](rng)
        assert len(page) == PAGE, (kind, len(page))
        pages[i] = np.frombuffer(page, dtype=np.uint8)
        kinds.append(kind)
    return pages, kinds


def edge_sweep_pages(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Deterministic sweeps over the boundaries, every length in each window.

    - zero runs of 2020 ... 2080 bytes at several starts, including ones
      ending at, just before and past lzo's ``ip_end`` (n - 20);
    - a match running to the very end after a random prefix of 3900 ... 4095;
    - a constant run to the end after a random prefix of every 7th length;
    - 3450 ... 3650 random bytes before zeros or after a constant: lengths
      straddling the huge threshold 3625 for every algorithm.
    """
    rng = np.random.default_rng(seed)
    pages: list[bytes] = []
    kinds: list[str] = []

    def add(kind: str, page: bytes | bytearray) -> None:
        assert len(page) == PAGE
        pages.append(bytes(page))
        kinds.append(kind)

    for length in range(2020, 2081):
        for start in (
            0,
            1,
            4,
            5,
            100,
            1023,
            PAGE - length,
            PAGE - length - 5,
            PAGE - length - 20,
            PAGE - length - 21,
        ):
            out = bytearray(rng.integers(1, 256, PAGE, dtype=np.uint8).tobytes())
            out[start : start + length] = bytes(length)
            add("sweep_zero_run", out)
    for a in range(3900, PAGE):
        out = bytearray(rng.integers(0, 256, PAGE, dtype=np.uint8).tobytes())
        d = int(rng.integers(1, 200))
        for i in range(a, PAGE):  # byte by byte: the copy may overlap itself
            out[i] = out[i - d]
        add("sweep_tail_match", out)
    for a in range(0, PAGE, 7):
        out = bytearray(rng.integers(0, 256, a, dtype=np.uint8).tobytes())
        add("sweep_const_run", out + bytes([0x41]) * (PAGE - a))
    for k in range(3450, 3651):
        prefix = rng.integers(0, 256, k, dtype=np.uint8).tobytes()
        add("sweep_huge_edge", prefix + bytes(PAGE - k))
        add("sweep_huge_edge", b"\x07" * (PAGE - k) + prefix)
    return np.frombuffer(b"".join(pages), dtype=np.uint8).reshape(-1, PAGE), kinds
