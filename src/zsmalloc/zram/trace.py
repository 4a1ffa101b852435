"""zram size traces: parse and write the ``tests/data/traces`` format.

A trace is one operation a line, recorded on a real zram device, with the
kernel's ``mm_stat`` after some (or every) step::

    # zram size trace v1 kernel=6.18.44 algo=lz4 disksize=8192000 workload=fill seed=1
    w SLOT SIZE     write a page; SIZE = bytes zram stored (comp_len, or PAGE_SIZE when huge)
    s SLOT          write a same-filled page (nothing allocated)
    d SLOT          discard one page (BLKDISCARD of its 4 KiB)
    c               compact
    m C1 ... C9     the nine mm_stat columns right after the operation above

Two extension lines are written by ``zsmalloc verify --save`` so that runs
with a memory limit replay too (the published traces have none):

    l BYTES         write BYTES to mem_limit
    r               write 0 to mem_used_max (reset it to the current total)

Traces can hold millions of lines, so the parser is a numba loop over the raw
bytes that fills flat arrays (op code, two arguments, the source line of each
op, and an ``(n, 9)`` array of expected mm_stat rows) with no per-line Python
objects; a malformed line stops it and is reported with its line number as an
:class:`~zsmalloc.errors.InputError`.  Compressed traces (``.gz``, ``.zst``, ``.xz``,
``.bz2``, by magic) are decompressed as they are read.

:func:`iter_trace` reads a file in pieces of whole lines (:data:`CHUNK_BYTES` of
text at a time), so a trace of any length replays in bounded memory;
:func:`read_trace` / :func:`parse_trace` give one :class:`Trace` of a whole (small)
trace.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.errors import InputError, UnknownKernelError
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile, profile_for_release
from zsmalloc.streams import open_input
from zsmalloc.zram.stats import MM_STAT_COLUMNS
from zsmalloc.zs.size_class import class_table
from zsmalloc.zs.trace import parse_fields

OP_WRITE = 0
OP_SAME = 1
OP_DISCARD = 2
OP_COMPACT = 3
OP_MM_STAT = 4
OP_LIMIT = 5
OP_RESET_MAX = 6

CHUNK_BYTES = 2 << 20
"""Trace text parsed at a time by :func:`iter_trace` (about 200,000 lines)."""
MAX_LINE_BYTES = 1 << 16
"""A longer line is not a trace line (a binary file): refused rather than buffered."""

OP_LETTERS = "wsdcmlr"
OP_LETTERS_BYTES = np.frombuffer(OP_LETTERS.encode(), dtype=np.uint8).copy()
NR_OPS = len(OP_LETTERS)
NR_MM_STAT = len(MM_STAT_COLUMNS)  # the fields of an ``m`` line
# fields after the op letter, per op code
_NFIELDS = np.array([2, 1, 1, 0, NR_MM_STAT, 1, 0], dtype=np.int64)

# parser error codes -> message
_ERRORS = {
    1: "unknown operation {op!r} (expected one of w s d c m l r, or # for a comment)",
    2: "too few fields for {op!r}: expected {n}",
    3: "too many fields for {op!r}: expected {n}",
    4: "not a decimal number in a {op!r} line",
    5: "number too large in a {op!r} line",
    6: "no space after the operation letter {op!r}",
}


@njit
def _count_lines(buf: np.ndarray) -> int:
    n = 1
    for i in range(buf.size):
        if buf[i] == 10:
            n += 1
    return n


@njit
def _parse(buf: np.ndarray, nfields: np.ndarray) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, int
]:
    """Fill op/arg arrays from the trace bytes; returns them plus (err_line, err_code, err_op)."""
    cap = _count_lines(buf)
    op = np.empty(cap, dtype=np.int8)
    a = np.zeros(cap, dtype=np.int64)
    b = np.zeros(cap, dtype=np.int64)
    line_of = np.empty(cap, dtype=np.int64)
    mrows = np.empty((cap, NR_MM_STAT), dtype=np.int64)
    vals = np.zeros(NR_MM_STAT, dtype=np.int64)
    n = 0
    nm = 0
    line = 0
    i = 0
    size = buf.size
    while i < size:
        line += 1
        c = buf[i]
        if c == 35:  # '#': comment
            while i < size and buf[i] != 10:
                i += 1
            i += 1
            continue
        if c == 10 or c == 13:  # blank line
            while i < size and buf[i] != 10:
                if buf[i] != 13:
                    return op[:0], a[:0], b[:0], line_of[:0], mrows[:0], line, 1, c
                i += 1
            i += 1
            continue
        code = -1
        for k in range(NR_OPS):
            if c == OP_LETTERS_BYTES[k]:
                code = k
        if code < 0:
            return op[:0], a[:0], b[:0], line_of[:0], mrows[:0], line, 1, c
        want = nfields[code]
        i, err = parse_fields(buf, i + 1, size, want, vals)
        if err:
            return op[:0], a[:0], b[:0], line_of[:0], mrows[:0], line, err, c
        op[n] = code
        line_of[n] = line
        if code == OP_MM_STAT:
            for k in range(NR_MM_STAT):
                mrows[nm, k] = vals[k]
            a[n] = nm
            nm += 1
        elif want >= 1:
            a[n] = vals[0]
            if want == 2:
                b[n] = vals[1]
        n += 1
    return op[:n], a[:n], b[:n], line_of[:n], mrows[:nm], 0, 0, 0


@dataclass
class Trace:
    """A parsed trace: flat arrays, one entry per operation line."""

    path: str
    header: dict[str, str]
    op: np.ndarray  # int8 OP_* codes
    a: np.ndarray  # slot, limit bytes, or the mm_stat row index for ``m``
    b: np.ndarray  # size for ``w``
    line_of: np.ndarray  # 1-based source line of each op
    mrows: np.ndarray  # (n_m, NR_MM_STAT) expected mm_stat rows, in MmStat's column order
    comments: list[str] = field(default_factory=list)
    profile: KernelProfile = DEFAULT_PROFILE  # the kernel it was recorded on (header kernel=)

    @property
    def algorithm(self) -> str | None:
        return self.header.get("algo")

    @property
    def disksize(self) -> int | None:
        v = self.header.get("disksize")
        return int(v) if v is not None and v.isdigit() else None

    def __len__(self) -> int:
        return int(self.op.size)


def _parse_header(first_line: str) -> dict[str, str]:
    """``key=value`` words of the first comment line."""
    out: dict[str, str] = {}
    for word in first_line.lstrip("#").split():
        if "=" in word:
            k, _, v = word.partition("=")
            out[k] = v
    return out


def trace_release(raw: bytes) -> str | None:
    """The ``kernel=`` of a trace's header line (the recording kernel's release), if any."""
    if not raw.startswith(b"#"):
        return None
    return _parse_header(raw.split(b"\n", 1)[0].decode("utf-8", "replace")).get("kernel")


def header_profile(header: dict[str, str], path: str) -> KernelProfile:
    """The profile of the kernel a header names (``kernel=6.1.0-57-amd64`` -> 6.1, see
    :func:`~zsmalloc.profile.profile_for_release`), else the reference 6.18."""
    release = header.get("kernel")
    try:
        return profile_for_release(release) if release else DEFAULT_PROFILE
    except UnknownKernelError as exc:
        raise InputError(f"header kernel={release}: {exc}", path=path, line=1) from None


def read_bytes(path: str | Path) -> bytes:
    """The whole trace text as bytes, decompressed (small traces and tests: see iter_trace)."""
    with open_input(path, label=str(path), what="trace") as f:
        return f.read()


def _parse_piece(
    raw: bytes,
    path: str,
    header: dict[str, str],
    first_line: int,
    profile: KernelProfile,
) -> Trace:
    """Parse whole lines of a trace that start after line ``first_line``; checked."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    op, a, b, line_of, mrows, err_line, err_code, err_op = _parse(buf, _NFIELDS)
    if err_code:
        letter = chr(err_op) if 32 < err_op < 127 else f"\\x{err_op:02x}"
        code = OP_LETTERS.find(letter)
        n = int(_NFIELDS[code]) if code >= 0 else 0
        raise InputError(
            _ERRORS[err_code].format(op=letter, n=n), path=path, line=first_line + int(err_line)
        )
    if first_line:
        line_of += first_line
    trace = Trace(path, header, op, a, b, line_of, mrows, profile=profile)
    _validate(trace, profile.page_size, class_table(profile).huge_class_size)
    return trace


def parse_trace(
    raw: bytes, path: str = "<trace>", profile: KernelProfile | None = None
) -> Trace:
    """Parse trace text; any malformed line raises InputError naming that line.

    ``profile`` is the kernel the trace was recorded on; by default the one its header
    names (``kernel=6.1.0-57-amd64`` -> 6.1, see
    :func:`~zsmalloc.profile.profile_for_release`), else the reference 6.18.  Sizes and
    slots are checked against a zram on that profile (PAGE_SIZE and its huge_class_size).
    """
    header: dict[str, str] = {}
    if raw.startswith(b"#"):
        header = _parse_header(raw.split(b"\n", 1)[0].decode("utf-8", "replace"))
    if profile is None:
        profile = header_profile(header, path)
    return _parse_piece(raw, path, header, 0, profile)


def iter_trace(
    path: str | os.PathLike[str],
    profile: KernelProfile | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[Trace]:
    """The trace at ``path`` as consecutive pieces of whole lines, each a checked Trace.

    Every piece carries the header of the first line, and the profile (by default the
    kernel the header names, as :func:`parse_trace`); line numbers are the file's.
    At least one piece is yielded, even for an empty file.  Memory is bounded by
    ``chunk_bytes`` of text, whatever the trace's length.
    """
    label = str(path)
    with open_input(path, label=label, what="trace") as f:
        header: dict[str, str] | None = None
        prof = DEFAULT_PROFILE  # replaced once the header is read
        carry = b""
        lines_before = 0
        yielded = False
        while True:
            block = f.read(chunk_bytes)
            data = carry + block
            cut = len(data) if not block else data.rfind(b"\n") + 1
            if block and cut == 0:
                if len(data) > MAX_LINE_BYTES:
                    raise InputError(
                        f"line longer than {MAX_LINE_BYTES} bytes: not a trace?",
                        path=label,
                        line=lines_before + 1,
                    )
                carry = data
                continue
            piece, carry = data[:cut], data[cut:]
            if header is None:
                header = {}
                if piece.startswith(b"#"):
                    first = piece.split(b"\n", 1)[0]
                    header = _parse_header(first.decode("utf-8", "replace"))
                prof = profile if profile is not None else header_profile(header, label)
            if piece or not yielded:
                yield _parse_piece(piece, label, header, lines_before, prof)
                yielded = True
            lines_before += piece.count(b"\n")
            if not block:
                return


def _validate(trace: Trace, page_size: int, huge_class_size: int) -> None:
    """Semantic checks, vectorised: sizes a zram could have stored, slots inside the disk."""
    writes = trace.op == OP_WRITE
    size = trace.b
    bad = writes & (
        (size < 1) | (size > page_size) | ((size >= huge_class_size) & (size != page_size))
    )
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(
            f"write size {int(size[k])}: zram stores 1..{huge_class_size - 1} bytes "
            f"compressed or {page_size} (huge)",
            path=trace.path,
            line=int(trace.line_of[k]),
        )
    disksize = trace.disksize
    slotted = (trace.op == OP_WRITE) | (trace.op == OP_SAME) | (trace.op == OP_DISCARD)
    if disksize is not None:
        nr_pages = (disksize + page_size - 1) // page_size
        over = slotted & (trace.a >= nr_pages)
        if over.any():
            k = int(np.argmax(over))
            raise InputError(
                f"slot {int(trace.a[k])} beyond disksize {disksize} ({nr_pages} slots)",
                path=trace.path,
                line=int(trace.line_of[k]),
            )


def read_trace(path: str | Path, profile: KernelProfile | None = None) -> Trace:
    """Read and parse a whole trace file (plain or compressed), checked against ``profile``
    (by default the kernel its header names).

    Holds the whole trace in memory: for small traces; replay streams with
    :func:`iter_trace`.
    """
    return parse_trace(read_bytes(path), str(path), profile)


class TraceWriter:
    """Write a trace line by line (``verify --save``); gzip when the name ends in .gz."""

    def __init__(self, path: str | Path, header: dict[str, object]) -> None:
        self.path = Path(path)
        self._f: IO[str] = (
            gzip.open(self.path, "wt", encoding="ascii")  # noqa: SIM115 - closed in close()
            if self.path.suffix == ".gz"
            else open(self.path, "w", encoding="ascii")  # noqa: SIM115 - closed in close()
        )
        words = " ".join(f"{k}={v}" for k, v in header.items())
        self._f.write(f"# zram size trace v1 {words}\n")

    def write(self, slot: int, size: int) -> None:
        self._f.write(f"w {slot} {size}\n")

    def same(self, slot: int) -> None:
        self._f.write(f"s {slot}\n")

    def discard(self, slot: int) -> None:
        self._f.write(f"d {slot}\n")

    def compact(self) -> None:
        self._f.write("c\n")

    def mem_limit(self, nbytes: int) -> None:
        self._f.write(f"l {nbytes}\n")

    def reset_max(self) -> None:
        self._f.write("r\n")

    def mm_stat(self, values: Sequence[int]) -> None:
        self._f.write("m " + " ".join(str(int(v)) for v in values) + "\n")

    def comment(self, text: str) -> None:
        self._f.write(f"# {text}\n")

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
