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
:class:`~zsmalloc.errors.InputError`.  ``.gz`` files are decompressed first.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.errors import InputError, UnknownKernelError
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile, profile_for_release
from zsmalloc.zram.stats import MM_STAT_COLUMNS
from zsmalloc.zs.size_class import class_table

OP_WRITE = 0
OP_SAME = 1
OP_DISCARD = 2
OP_COMPACT = 3
OP_MM_STAT = 4
OP_LIMIT = 5
OP_RESET_MAX = 6

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
        i += 1
        if i < size and buf[i] != 32 and buf[i] != 9 and buf[i] != 10 and buf[i] != 13:
            return op[:0], a[:0], b[:0], line_of[:0], mrows[:0], line, 6, c
        want = nfields[code]
        got = 0
        while True:
            while i < size and (buf[i] == 32 or buf[i] == 9 or buf[i] == 13):
                i += 1
            if i >= size or buf[i] == 10:
                break
            if got == want:
                return op[:0], a[:0], b[:0], line_of[:0], mrows[:0], line, 3, c
            v = 0
            digits = 0
            while i < size and buf[i] >= 48 and buf[i] <= 57:
                if v > 461168601842738790:  # v * 10 would pass 2**62
                    return op[:0], a[:0], b[:0], line_of[:0], mrows[:0], line, 5, c
                v = v * 10 + (int(buf[i]) - 48)
                digits += 1
                i += 1
            if digits == 0 or (
                i < size and buf[i] != 32 and buf[i] != 9 and buf[i] != 10 and buf[i] != 13
            ):
                return op[:0], a[:0], b[:0], line_of[:0], mrows[:0], line, 4, c
            vals[got] = v
            got += 1
        i += 1
        if got < want:
            return op[:0], a[:0], b[:0], line_of[:0], mrows[:0], line, 2, c
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


def read_bytes(path: str | Path) -> bytes:
    """The trace text as bytes, gunzipped if the file is gzip (by magic, not name)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc.strerror}", path=str(path)) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(f"corrupt gzip data: {exc}", path=str(path)) from None
    return raw


def parse_trace(
    raw: bytes, path: str = "<trace>", profile: KernelProfile | None = None
) -> Trace:
    """Parse trace text; any malformed line raises InputError naming that line.

    ``profile`` is the kernel the trace was recorded on; by default the one its header
    names (``kernel=6.1.0-57-amd64`` -> 6.1, see
    :func:`~zsmalloc.profile.profile_for_release`), else the reference 6.18.  Sizes and
    slots are checked against a zram on that profile (PAGE_SIZE and its huge_class_size).
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    op, a, b, line_of, mrows, err_line, err_code, err_op = _parse(buf, _NFIELDS)
    if err_code:
        letter = chr(err_op) if 32 < err_op < 127 else f"\\x{err_op:02x}"
        code = OP_LETTERS.find(letter)
        n = int(_NFIELDS[code]) if code >= 0 else 0
        raise InputError(_ERRORS[err_code].format(op=letter, n=n), path=path, line=int(err_line))
    header: dict[str, str] = {}
    if raw.startswith(b"#"):
        header = _parse_header(raw.split(b"\n", 1)[0].decode("utf-8", "replace"))
    if profile is None:
        release = trace_release(raw)
        try:
            profile = profile_for_release(release) if release else DEFAULT_PROFILE
        except UnknownKernelError as exc:
            raise InputError(f"header kernel={release}: {exc}", path=path, line=1) from None
    trace = Trace(path, header, op, a, b, line_of, mrows, profile=profile)
    _validate(trace, profile.page_size, class_table(profile).huge_class_size)
    return trace


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
    """Read and parse a trace file (plain or gzip), checked against ``profile`` (by
    default the kernel its header names)."""
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
