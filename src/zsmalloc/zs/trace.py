"""zs traces: what zsmalloc's users asked of it, one call a line (``zsmalloc record``).

A zram size trace (:mod:`zsmalloc.zram.trace`) says what zram did to its slots; a zs
trace says what any user of zsmalloc (zram, zswap, ...) asked of the allocator, as
``zsmalloc record`` captures it with kprobe events on a live kernel
(:mod:`zsmalloc.zs.record`).  It replays in bare pools under any kernel or class-table
variant (:mod:`zsmalloc.zs.replay`, ``zsmalloc replay``, ``zsmalloc whatif --trace``)::

    # zs trace v1 kernel=6.12.118+deb13-amd64 page_size=4096 chain_size=8 source=kprobe
    # pool 0 created name=zram0
    a POOL ID SIZE      zs_malloc(pool, SIZE) returned a handle: it is object ID now
    x POOL SIZE         zs_malloc(pool, SIZE) failed (an error value; nothing allocated)
    f POOL ID           zs_free(pool, handle of object ID); ID 0: an object the pool held
                        before the recording began (unknown: its size and place)
    c POOL FREED        zs_compact(pool) returned FREED pages (also the shrinker's calls)
    m POOL PAGES COMP   check: zs_get_total_pages(pool) and pages_compacted are these here

The first line is the header (``key=value`` words: the recording kernel's release,
PAGE_SIZE and CONFIG_ZSMALLOC_CHAIN_SIZE where its config says it; the profile to
replay under comes from them).  Other lines starting ``#`` are comments; three kinds
mean something:

* ``# pool N created name=NAME`` (the recorder saw zs_create_pool make it: it starts
  empty), ``# pool N existing`` (it held objects before the recording began: frees of
  unknown objects are to be expected and the model's page counts are not the kernel's),
  ``# pool N destroyed``;
* ``# incomplete REASON``: the recorder lost events (a kretprobe missed, the ring
  buffer overran); a replay says so and its numbers are not the kernel's;
* ``# inexact REASON``: calls into one pool overlapped in time; the model runs them
  one after the other, which the kernel did not quite (docs/record.md), so a replay
  may differ from the kernel by a few pages;
* ``# end KEY=VALUE ...``: the recorder's counts at the end.

POOL numbers name the kernel's pools in the order the recorder first saw them.  Object
IDs stand for the kernel's handles, which are slab addresses: each pool gives a new
object the lowest ID not live in it (1, 2, ...), so IDs stay as small as the most
objects ever live at once and a replay maps them to its own handles with one array.
``m`` lines are optional; ``zsmalloc verify --guest --record`` writes them from the
guest device's mm_stat after each operation.

Traces can be any length: :func:`iter_zs_trace` parses a file (plain or compressed, as
every input, :mod:`zsmalloc.streams`) in pieces of whole lines with a numba loop over
the raw bytes, and a malformed line is an :class:`~zsmalloc.errors.InputError` naming
its line.
"""

from __future__ import annotations

import gzip
import heapq
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.errors import InputError, UnknownKernelError
from zsmalloc.profile import DEFAULT_CHAIN_SIZE, KernelProfile, profile_for_release

MAGIC = b"# zs trace v1"
OP_ALLOC, OP_FAIL, OP_FREE, OP_COMPACT, OP_CHECK = range(5)
OP_LETTERS = "axfcm"
_LETTERS = np.frombuffer(OP_LETTERS.encode(), dtype=np.uint8).copy()
_NFIELDS = np.array([3, 2, 2, 2, 3], dtype=np.int64)  # fields after the letter, per op
CHUNK_BYTES = 2 << 20
"""Trace text parsed at a time (about 150,000 lines)."""
MAX_LINE_BYTES = 1 << 16
"""A longer line is not a trace line (a binary file): refused rather than buffered."""
_ERRORS = {
    1: "unknown operation {op!r} (expected one of a x f c m, or # for a comment)",
    2: "too few fields for {op!r}: expected {n}",
    3: "too many fields for {op!r}: expected {n}",
    4: "not a decimal number in a {op!r} line",
    5: "number too large in a {op!r} line",
    6: "no space after the operation letter {op!r}",
}
_POOL_COMMENT = re.compile(rb"^# pool (\d+) (created|existing|destroyed)(?: name=(\S*))?",
                           re.MULTILINE)
_INCOMPLETE = re.compile(rb"^# incomplete (.*)$", re.MULTILINE)
_INEXACT = re.compile(rb"^# inexact (.*)$", re.MULTILINE)


@njit(inline="always")
def parse_fields(buf: np.ndarray, i: int, size: int, want: int, vals: np.ndarray) -> tuple[
    int, int
]:
    """The decimal fields of one trace line, from just after its letter at ``buf[i - 1]``.

    Shared by the zs-level and the zram size traces.  Returns (the position after the
    line, 0), or (where it stopped, an error code): 6 the letter is not alone, 3 too many
    fields, 5 a number at or above 2**62, 4 not a number, 2 too few fields.
    """
    if i < size and buf[i] != 32 and buf[i] != 9 and buf[i] != 10 and buf[i] != 13:
        return i, 6
    got = 0
    while True:
        while i < size and (buf[i] == 32 or buf[i] == 9 or buf[i] == 13):
            i += 1
        if i >= size or buf[i] == 10:
            break
        if got == want:
            return i, 3
        v = 0
        digits = 0
        while i < size and buf[i] >= 48 and buf[i] <= 57:
            if v > 461168601842738790:  # v * 10 would pass 2**62
                return i, 5
            v = v * 10 + (int(buf[i]) - 48)
            digits += 1
            i += 1
        if digits == 0 or (
            i < size and buf[i] != 32 and buf[i] != 9 and buf[i] != 10 and buf[i] != 13
        ):
            return i, 4
        vals[got] = v
        got += 1
    i += 1
    if got < want:
        return i, 2
    return i, 0


@njit
def _parse(buf: np.ndarray, letters: np.ndarray, nfields: np.ndarray) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, int
]:
    """(op, pool, a, b, line_of, err_line, err_code, err_op): one entry per operation line.

    The fields after the letter are the pool, then ``a`` and ``b``; decimal, >= 0.
    Comments (``#``) and blank lines are skipped.
    """
    cap = 1
    for i in range(buf.size):
        if buf[i] == 10:
            cap += 1
    op = np.empty(cap, np.int8)
    pool = np.zeros(cap, np.int64)
    a = np.zeros(cap, np.int64)
    b = np.zeros(cap, np.int64)
    line_of = np.empty(cap, np.int64)
    vals = np.zeros(3, np.int64)
    n = 0
    line = 0
    i = 0
    size = buf.size
    while i < size:
        line += 1
        c = buf[i]
        if c == 35 or c == 10 or c == 13:  # comment or blank line
            while i < size and buf[i] != 10:
                i += 1
            i += 1
            continue
        code = -1
        for k in range(letters.size):
            if c == letters[k]:
                code = k
        if code < 0:
            return op[:0], pool[:0], a[:0], b[:0], line_of[:0], line, 1, c
        want = nfields[code]
        i, err = parse_fields(buf, i + 1, size, want, vals)
        if err:
            return op[:0], pool[:0], a[:0], b[:0], line_of[:0], line, err, c
        op[n] = code
        pool[n] = vals[0]
        a[n] = vals[1]
        b[n] = vals[2] if want == 3 else 0
        line_of[n] = line
        n += 1
    return op[:n], pool[:n], a[:n], b[:n], line_of[:n], 0, 0, 0


@dataclass
class ZsTrace:
    """A piece of a zs trace (or a whole small one): flat arrays, one entry per op line."""

    path: str
    header: dict[str, str]
    op: np.ndarray  # int8 OP_* codes
    pool: np.ndarray  # the pool number of each op
    a: np.ndarray  # ID (a, f), SIZE (x), FREED (c), PAGES (m)
    b: np.ndarray  # SIZE (a), pages_compacted (m)
    line_of: np.ndarray  # 1-based source line of each op
    profile: KernelProfile
    pools: dict[int, tuple[str, str]] = field(default_factory=dict)  # N -> (state, name)
    incomplete: list[str] = field(default_factory=list)  # the recorder's reasons
    inexact: list[str] = field(default_factory=list)  # why the order may not be the kernel's

    def __len__(self) -> int:
        return int(self.op.size)


def is_zs_trace(head: bytes) -> bool:
    """Does text starting with ``head`` look like a zs trace (its header line)?"""
    return head.startswith(MAGIC)


def parse_header(first_line: bytes) -> dict[str, str]:
    """``key=value`` words of the header line."""
    out: dict[str, str] = {}
    for word in first_line.decode("utf-8", "replace").split():
        if "=" in word:
            k, _, v = word.partition("=")
            out[k] = v
    return out


def header_profile(header: dict[str, str], path: str) -> KernelProfile:
    """The profile of the recording kernel: the header's ``kernel=`` (6.18 without one),
    ``page_size=`` and ``chain_size=``."""
    page, chain = header.get("page_size", ""), header.get("chain_size", "")
    try:
        return profile_for_release(
            header.get("kernel", "6.18"),
            int(page) if page.isdigit() else None,
            int(chain) if chain.isdigit() else DEFAULT_CHAIN_SIZE,
        )
    except (UnknownKernelError, ValueError) as exc:
        raise InputError(f"header: {exc}", path=path, line=1) from None


def parse_piece(
    raw: bytes, path: str, header: dict[str, str], first_line: int, profile: KernelProfile
) -> ZsTrace:
    """Whole lines of a zs trace that start after line ``first_line``, parsed and checked."""
    op, pool, a, b, line_of, err_line, err_code, err_op = _parse(
        np.frombuffer(raw, dtype=np.uint8), _LETTERS, _NFIELDS
    )
    if err_code:
        letter = chr(err_op) if 32 < err_op < 127 else f"\\x{err_op:02x}"
        k = OP_LETTERS.find(letter)
        n = int(_NFIELDS[k]) if k >= 0 else 0
        raise InputError(
            _ERRORS[err_code].format(op=letter, n=n), path=path, line=first_line + int(err_line)
        )
    if first_line:
        line_of += first_line
    t = ZsTrace(path, header, op, pool, a, b, line_of, profile)
    if b"# " in raw:  # comments that mean something (rare: a regex over the piece)
        for m in _POOL_COMMENT.finditer(raw):
            t.pools[int(m.group(1))] = (
                m.group(2).decode(), (m.group(3) or b"").decode("utf-8", "replace")
            )
        t.incomplete = [m.group(1).decode("utf-8", "replace") for m in
                        _INCOMPLETE.finditer(raw)]
        t.inexact = [m.group(1).decode("utf-8", "replace") for m in _INEXACT.finditer(raw)]
    _validate(t)
    return t


def _validate(t: ZsTrace) -> None:
    """Sizes zs_malloc can have returned a handle for, object IDs >= 1."""
    ps = t.profile.page_size
    bad = (t.op == OP_ALLOC) & ((t.b < 1) | (t.b > ps) | (t.a < 1))
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(
            f"expected an object ID >= 1 and a size 1..{ps} (PAGE_SIZE of the trace's "
            f"kernel), found ID {int(t.a[k])} size {int(t.b[k])}",
            path=t.path,
            line=int(t.line_of[k]),
        )


def parse_zs_trace(raw: bytes, path: str = "<trace>",
                   profile: KernelProfile | None = None) -> ZsTrace:
    """A whole (small) zs trace from its text; see :func:`iter_zs_trace` for files."""
    if not is_zs_trace(raw):
        raise InputError("not a zs trace: the first line must start '# zs trace v1'",
                         path=path, line=1)
    header = parse_header(raw.split(b"\n", 1)[0])
    return parse_piece(raw, path, header, 0, profile or header_profile(header, path))


def iter_zs_trace(
    path: str | os.PathLike[str],
    profile: KernelProfile | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[ZsTrace]:
    """The zs trace at ``path`` (``-``: standard input) as pieces of whole lines.

    Every piece carries the header and the profile (by default the header's kernel);
    line numbers are the file's.  At least one piece is yielded.  Memory is bounded by
    ``chunk_bytes`` of text, whatever the trace's length.
    """
    from zsmalloc.streams import open_input

    label = str(path)
    with open_input(path, label=label, what="trace") as f:
        header: dict[str, str] | None = None
        prof = profile
        carry = b""
        lines_before = 0
        yielded = False
        while True:
            block = f.read(chunk_bytes)
            data = carry + block
            cut = len(data) if not block else data.rfind(b"\n") + 1
            if block and cut == 0:
                if len(data) > MAX_LINE_BYTES:
                    raise InputError(f"line longer than {MAX_LINE_BYTES} bytes: not a trace?",
                                     path=label, line=lines_before + 1)
                carry = data
                continue
            piece, carry = data[:cut], data[cut:]
            if header is None:
                if not is_zs_trace(piece):
                    raise InputError(
                        "not a zs trace: the first line must start '# zs trace v1'",
                        path=label, line=1,
                    )
                header = parse_header(piece.split(b"\n", 1)[0])
                prof = profile or header_profile(header, label)
            assert prof is not None
            if piece or not yielded:
                yield parse_piece(piece, label, header, lines_before, prof)
                yielded = True
            lines_before += piece.count(b"\n")
            if not block:
                return


def sniff_zs_trace(path: str | os.PathLike[str]) -> bool:
    """Is the file at ``path`` a zs trace (rather than a zram size trace)?  Reads its
    first line only (``-``, standard input, cannot be read twice: False)."""
    if str(path) == "-":
        return False
    from zsmalloc.streams import open_input

    with open_input(path, label=str(path), what="trace") as f:
        return is_zs_trace(f.readline(MAX_LINE_BYTES))


class ObjectIds:
    """The IDs of one pool's live objects: the lowest free one for each new object."""

    def __init__(self) -> None:
        self.by_handle: dict[int, int] = {}
        self._free: list[int] = []  # a heap of IDs below _next that are not live
        self._next = 1

    def new(self, handle: int) -> int:
        oid = heapq.heappop(self._free) if self._free else self._next
        if oid == self._next:
            self._next += 1
        self.by_handle[handle] = oid
        return oid

    def drop(self, handle: int) -> int:
        """The ID of ``handle`` (now free), or 0 for a handle not allocated in the trace."""
        oid = self.detach(handle)
        self.release(oid)
        return oid

    def detach(self, handle: int) -> int:
        """The ID of ``handle``, no longer found by it (its zs_free has begun: the kernel
        may hand the handle out again before that zs_free returns), not yet free."""
        return self.by_handle.pop(handle, 0)

    def release(self, oid: int) -> None:
        """A detached ID is free (its zs_free returned)."""
        if oid:
            heapq.heappush(self._free, oid)

    def __len__(self) -> int:
        return len(self.by_handle)


class ZsTraceWriter:
    """Write a zs trace line by line; gzip when the file name ends in .gz.

    The caller speaks in the kernel's terms (pool numbers, handles); the writer hands
    out the object IDs (:class:`ObjectIds`).  ``out`` may be any text sink.
    """

    def __init__(self, out: IO[str], header: dict[str, object]) -> None:
        self._f = out
        self.ids: dict[int, ObjectIds] = {}
        self.lines = 0
        self.unknown_frees = 0
        words = " ".join(f"{k}={v}" for k, v in header.items())
        self._f.write(f"{MAGIC.decode()} {words}\n")

    @classmethod
    def open(cls, path: str | Path, header: dict[str, object]) -> ZsTraceWriter:
        p = Path(path)
        f: IO[str] = (
            gzip.open(p, "wt", encoding="utf-8")  # noqa: SIM115 - closed in close()
            if p.suffix == ".gz"
            else open(p, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        )
        return cls(f, header)

    def _ids(self, pool: int) -> ObjectIds:
        ids = self.ids.get(pool)
        if ids is None:
            ids = self.ids[pool] = ObjectIds()
        return ids

    def alloc(self, pool: int, handle: int, size: int) -> None:
        self._f.write(f"a {pool} {self._ids(pool).new(handle)} {size}\n")
        self.lines += 1

    def fail(self, pool: int, size: int) -> None:
        self._f.write(f"x {pool} {size}\n")
        self.lines += 1

    def free(self, pool: int, handle: int) -> None:
        self.free_id(pool, self.detach(pool, handle))

    def detach(self, pool: int, handle: int) -> int:
        """At a zs_free's entry: its object's ID (0: unknown), written by :meth:`free_id`."""
        return self._ids(pool).detach(handle)

    def free_id(self, pool: int, oid: int) -> None:
        """At the zs_free's return: the ``f`` line, and the ID free for new objects."""
        self._ids(pool).release(oid)
        self.unknown_frees += oid == 0
        self._f.write(f"f {pool} {oid}\n")
        self.lines += 1

    def compact(self, pool: int, freed: int) -> None:
        self._f.write(f"c {pool} {freed}\n")
        self.lines += 1

    def check(self, pool: int, pages: int, compacted: int) -> None:
        self._f.write(f"m {pool} {pages} {compacted}\n")
        self.lines += 1

    def pool(self, pool: int, state: str, name: str = "") -> None:
        """``state``: created, existing or destroyed (see the module docstring)."""
        self.comment(f"pool {pool} {state}" + (f" name={name}" if name else ""))
        if state == "destroyed":
            self.ids.pop(pool, None)

    def comment(self, text: str) -> None:
        self._f.write(f"# {text}\n")

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()
