"""The zswap swap trace: a text format of swap events, and its replayer.

A trace says what the swap layer asked of zswap, one event a line; replaying
it through :class:`~zsmalloc.zswap.zswap.Zswap` gives the debugfs counters of
spec §10 after every step.  Pages are given by their compressed length (what a
recorder can capture without keeping memory contents) or by index into a file
of raw pages.  ``#`` starts a comment; blank lines are ignored; fields are
separated by blanks.  A ``.gz`` trace is read through gzip.

=============================  ==================================================
line                           meaning
=============================  ==================================================
``zswap-trace 1``              optional magic and format version (first line)
``ram SIZE``                   totalram: bytes, with an optional K/M/G/T suffix
                               (``24G``); required before the first store
``param NAME VALUE``           write ``/sys/module/zswap/parameters/NAME``
``pages PATH``                 raw 4 KiB pages (``.gz`` allowed), for ``p`` lines;
                               PATH is relative to the trace
``cgroup NAME [PARENT]``       create a memory cgroup (default parent: the root)
``cgset NAME FILE VALUE``      write ``memory.zswap.max`` or ``memory.zswap.writeback``
``s OFF CLEN[,CLEN...] [CG]``  swap out a page (a folio with several CLENs, at OFF,
                               OFF+1, ...) that compresses to CLEN bytes with
                               unlimited room: 1..4095 stored compressed, 4096 fits
                               exactly, > 4096 does not fit, 0 = all zeros
``p OFF IDX [CG]``             swap out page IDX of the ``pages`` file at OFF
``l OFF``                      swap in through the swap cache (the entry is freed)
``L OFF``                      swap in bypassing the swap cache (the entry stays)
``i OFF``                      the swap slot is freed (``zswap_invalidate``)
``w``                          run the pool-limit shrink worker if it is pending
``shrink NR [CG]``             the dynamic shrinker scans NR entries of CG's LRU
``stat``                       report the counters at this point
``expect NAME VALUE ...``      the kernel's debugfs values here (NAME a debugfs
                               file): replay reports every difference
=============================  ==================================================

CG is a cgroup name from a ``cgroup`` line; without it the page belongs to the
root cgroup.  The whole trace is checked before anything runs, so a corrupt
line is reported (:class:`~zsmalloc.errors.InputError` with path and line)
without output; an event the model refuses (a load of an offset that holds no
page, a bad parameter value) is reported the same way, naming its line, after
the report lines of the events before it.

Nothing is held whole: :func:`scan_trace` checks the file line by line and keeps
only its header facts, and :meth:`Trace.iter_events` reads it again as the replay
goes; the ``pages`` file is read in chunks, once per compressor, keeping only one
length per page.  Numbers are plain ASCII decimal (``1_0``, ``+1`` or another
script's digits are refused, as the kernel's parsers refuse them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zsmalloc.errors import InputError, ZsmallocError
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile
from zsmalloc.streams import open_input, read_exact_into, text_lines
from zsmalloc.zswap.compression import page_clens
from zsmalloc.zswap.params import ZswapParams
from zsmalloc.zswap.rules import ALL_DEBUGFS, zswap_rules
from zsmalloc.zswap.zswap import ZsPoolLike, Zswap

_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# op -> (min fields, max fields) after the op itself
_ARITY = {
    "zswap-trace": (1, 1),
    "ram": (1, 1),
    "param": (2, 2),
    "pages": (1, 1),
    "cgroup": (1, 2),
    "cgset": (3, 3),
    "s": (2, 3),
    "p": (2, 3),
    "l": (1, 1),
    "L": (1, 1),
    "i": (1, 1),
    "w": (0, 0),
    "shrink": (1, 2),
    "stat": (0, 0),
    "expect": (2, 2 * len(ALL_DEBUGFS)),
}


_DECIMAL = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"-?[0-9]+")
PAGES_CHUNK = 1 << 12  # pages of a ``pages`` file compressed at a time


def parse_size(text: str) -> int:
    """Bytes with an optional K/M/G/T (binary) suffix; ValueError if malformed."""
    mult = 1
    if text[-1:].lower() in _SUFFIX:
        mult, text = _SUFFIX[text[-1].lower()], text[:-1]
    if not _DECIMAL.fullmatch(text):
        raise ValueError(text)
    return int(text) * mult


@dataclass(frozen=True)
class Event:
    line: int
    op: str
    args: tuple[str, ...]


@dataclass
class Trace:
    """A checked trace: the few header facts, and its events (kept, or read again)."""

    path: str
    events: list[Event] = field(default_factory=list)
    ram: int | None = None
    pages_path: Path | None = None
    kept: bool = True  # events holds every event (parse_trace), else read them again
    expect_lines: int = 0

    def error(self, line: int, message: str) -> InputError:
        return InputError(message, path=self.path, line=line)

    def iter_events(self) -> Iterator[Event]:
        """The events in order: the kept list, or the file read (and checked) again."""
        if self.kept:
            yield from self.events
            return
        again = Trace(self.path, kept=False)
        yield from _read_events(again)


def _int(trace: Trace, line: int, text: str, what: str, lo: int = 0) -> int:
    if not _SIGNED.fullmatch(text):
        raise trace.error(line, f"{what}: expected an integer, found {text!r}")
    n = int(text)
    if n < lo:
        raise trace.error(line, f"{what}: expected >= {lo}, found {n}")
    return n


def _read_events(trace: Trace) -> Iterator[Event]:
    """Check every line of ``trace.path`` as it is read; yield its events."""
    with open_input(trace.path, label=trace.path, what="trace") as stream:
        for n, raw in text_lines(stream):
            body = raw.split("#", 1)[0].split()
            if not body:
                continue
            op, args = body[0], tuple(body[1:])
            if op not in _ARITY:
                raise trace.error(n, f"unknown event {op!r}; expected one of {', '.join(_ARITY)}")
            lo, hi = _ARITY[op]
            if not lo <= len(args) <= hi:
                want = str(lo) if lo == hi else f"{lo}..{hi}"
                raise trace.error(n, f"{op!r} takes {want} fields, found {len(args)}")
            _check_event(trace, n, op, args)
            if op == "expect":
                trace.expect_lines += 1
            yield Event(n, op, args)


def parse_trace(path: str | Path) -> Trace:
    """Read and check every line of a trace, keeping its events (for small traces).

    The first bad line raises InputError.  :func:`scan_trace` checks without keeping.
    """
    trace = Trace(str(path))
    trace.events = list(_read_events(trace))
    return trace


def scan_trace(path: str | Path) -> Trace:
    """Check every line of a trace and keep only its header facts (any length).

    The events are read again, as the replay consumes them, by
    :meth:`Trace.iter_events`.
    """
    trace = Trace(str(path), kept=False)
    for _ in _read_events(trace):
        pass
    return trace


def _check_event(trace: Trace, n: int, op: str, args: tuple[str, ...]) -> None:
    """Syntax of one event's fields (semantics are the model's business)."""
    if op == "zswap-trace" and args[0] != "1":
        raise trace.error(n, f"unsupported trace format version {args[0]!r}; expected 1")
    elif op == "ram":
        try:
            trace.ram = parse_size(args[0])
        except ValueError:
            raise trace.error(n, f"ram: expected bytes like 8G, found {args[0]!r}") from None
        if trace.ram <= 0:
            raise trace.error(n, f"ram: expected at least one page, found {args[0]!r}")
    elif op == "pages":
        trace.pages_path = (Path(trace.path).parent / args[0]).resolve()
    elif op == "s":
        _int(trace, n, args[0], "offset")
        for c in args[1].split(","):
            _int(trace, n, c, "compressed length")
    elif op == "p":
        if trace.pages_path is None:
            raise trace.error(n, "'p' needs a 'pages PATH' line before it")
        _int(trace, n, args[0], "offset")
        _int(trace, n, args[1], "page index")
    elif op in ("l", "L", "i"):
        _int(trace, n, args[0], "offset")
    elif op == "shrink":
        _int(trace, n, args[0], "nr_to_scan")
    elif op == "expect":
        if len(args) % 2:
            raise trace.error(n, "expect takes NAME VALUE pairs")
        for name, value in zip(args[::2], args[1::2], strict=True):
            if name not in ALL_DEBUGFS:
                raise trace.error(n, f"expect: {name!r} is not a debugfs counter")
            _int(trace, n, value, name)


class _Pages:
    """The ``pages`` file: one compressed length per page and compressor, never the pages.

    The file is read in chunks once per compressor the trace uses (the first time a
    ``p`` line needs it), keeping an int32 per page: bounded memory for any size.
    """

    def __init__(self, path: Path, trace: Trace, page_size: int) -> None:
        self.path = path
        self.page_size = page_size
        self._clens: dict[tuple[str, bool], np.ndarray] = {}
        self.nr = self._lengths(None).size  # one pass: readable, whole pages, how many

    def _lengths(self, compressor: str | None, same_filled: bool = False) -> np.ndarray:
        """clen of every page (or zeros, to count them), read chunk by chunk."""
        page_size = self.page_size
        out: list[np.ndarray] = []
        buf = np.empty((PAGES_CHUNK, page_size), dtype=np.uint8)
        total = 0
        with open_input(self.path, label=str(self.path), what="pages file") as stream:
            while True:
                got = read_exact_into(stream, memoryview(buf.data).cast("B"))
                total += got
                if got % page_size:
                    raise InputError(
                        f"pages file must hold whole {page_size}-byte pages, "
                        f"found {total} bytes",
                        path=str(self.path),
                    )
                n = got // page_size
                if compressor is None:
                    out.append(np.zeros(n, np.int32))
                elif n:
                    out.append(
                        np.asarray(page_clens(buf[:n], compressor, same_filled), np.int32)
                    )
                if n < PAGES_CHUNK:
                    break
        return np.concatenate(out) if out else np.zeros(0, np.int32)

    def clen(self, idx: int, compressor: str, same_filled: bool = False) -> int:
        """The page's compressed length; 0 for a page zswap keeps as a word (all zeros;
        ``same_filled``: any same-filled page, 6.1 and 6.6)."""
        key = (compressor, same_filled)
        if key not in self._clens:
            self._clens[key] = self._lengths(compressor, same_filled)
        return int(self._clens[key][idx])


def replay(
    trace: Trace,
    *,
    every: int = 0,
    worker: str = "sync",
    ram: int | None = None,
    pool_factory: Callable[[], ZsPoolLike] | None = None,
    mismatches: list[tuple[int, str, int, int]] | None = None,
    profile: KernelProfile = DEFAULT_PROFILE,
) -> Iterator[tuple[int, dict[str, int]]]:
    """Run the trace; yield ``(line, debugfs counters)`` at ``stat`` and ``expect``
    lines, every ``every`` events (0 = never) and once at the end.

    Each ``expect`` value that differs from the model is appended to ``mismatches``
    as ``(line, name, expected, model)``.
    """
    totalram = ram if ram is not None else trace.ram
    if totalram is None:
        raise InputError("no 'ram SIZE' line and no --ram given", path=trace.path)
    if totalram < profile.page_size:
        raise InputError(f"ram: expected at least one {profile.page_size}-byte page, "
                         f"found {totalram} bytes", path=trace.path)
    z = Zswap(
        totalram // profile.page_size,
        ZswapParams(),
        pool_factory=pool_factory,
        worker=worker,
        profile=profile,
    )
    pages = _Pages(trace.pages_path, trace, profile.page_size) if trace.pages_path else None
    known = zswap_rules(profile).debugfs
    # A counter this kernel lacks is refused before anything runs (one more streamed pass).
    for ev in trace.iter_events() if trace.expect_lines else ():
        if ev.op == "expect":
            for name in ev.args[::2]:
                if name not in known:
                    raise trace.error(
                        ev.line, f"expect: Linux {profile.version} has no debugfs file {name!r}"
                    )
    last, reported = 0, -1
    for k, ev in enumerate(trace.iter_events(), start=1):
        try:
            _apply(z, ev, pages, trace)
        except InputError as exc:
            if exc.line is not None:
                raise
            raise trace.error(ev.line, str(exc)) from None
        except ZsmallocError as exc:
            raise trace.error(ev.line, str(exc)) from None
        last = ev.line
        if ev.op == "expect":
            now = z.debugfs()
            for name, value in zip(ev.args[::2], ev.args[1::2], strict=True):
                if now[name] != int(value) and mismatches is not None:
                    mismatches.append((ev.line, name, int(value), now[name]))
        if ev.op in ("stat", "expect") or (every and k % every == 0):
            reported = ev.line
            yield ev.line, z.debugfs()
    if reported != last:
        yield last, z.debugfs()


def _apply(z: Zswap, ev: Event, pages: _Pages | None, trace: Trace) -> None:
    op, a = ev.op, ev.args
    if op == "param":
        z.set_param(a[0], a[1])
    elif op == "cgroup":
        z.mkdir_memcg(a[0], a[1] if len(a) > 1 else None)
    elif op == "cgset":
        z.memcg(a[0]).set_file(a[1], a[2])
    elif op == "s":
        clens = [int(c) for c in a[1].split(",")]
        z.store_folio(int(a[0]), clens=clens, memcg=a[2] if len(a) > 2 else None)
    elif op == "p":
        assert pages is not None
        idx = int(a[1])
        if idx >= pages.nr:
            raise trace.error(ev.line, f"page index {idx} out of range 0..{pages.nr - 1}")
        clen = pages.clen(idx, z.current_compressor, z.rules.same_filled)
        z.store(int(a[0]), clen=clen, memcg=a[2] if len(a) > 2 else None)
    elif op in ("l", "L"):
        z.load(int(a[0]), swapcache=op == "l")
    elif op == "i":
        z.invalidate(int(a[0]))
    elif op == "w":
        if z.shrink_work_pending:
            z.run_shrink_worker()
    elif op == "shrink":
        z.shrinker_scan(a[1] if len(a) > 1 else None, int(a[0]))
