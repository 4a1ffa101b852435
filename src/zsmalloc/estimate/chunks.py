"""Splitting the input into independent chunks of pages, and tallying one chunk.

A sequential fill of a fresh zram device depends only on how many pages have
each compressed length (:mod:`zsmalloc.estimate.fill`), so the pages can be
counted in any number of pieces, anywhere, and the tallies added up
(:meth:`Tally.merge <zsmalloc.estimate.driver.Tally.merge>`): the result is the
single pass's, exactly.  This module cuts SOURCE arguments into such pieces and
tallies one of them; :mod:`zsmalloc.estimate.cluster` runs them on Dask.

A :class:`Chunk` names pages, it never holds them: a path with a byte range
(or, for an ELF core, pieces of its ``PT_LOAD`` segments), so what travels to
a worker is a few hundred bytes however large the chunk, and the worker reads
the pages where they live.  The cuts keep every page exactly as the single
pass (:mod:`zsmalloc.estimate.sources`) makes it:

=============== ==============================================================
raw file/device byte ranges of ``task_pages`` whole pages; the last range runs
                to the end of the file (a partial last page is zero-padded as
                before, and a file that grew is read whole, as one pass would)
compressed file one chunk: a gzip/xz/bzip2/zstd stream cannot be entered in
                the middle
directory       its files in the same sorted walk, packed into chunks of about
                ``task_pages``; a large file is cut into ranges as above.  A
                file that cannot be read is skipped and counted, as in one
                pass (and named, which one pass does not)
ELF core dump   pieces of its segments: a piece is a segment of its own
                (offset, length), cut at whole pages from the segment start,
                so the zero padding and the truncated-core count are the same
=============== ==============================================================

Page order is kept in :attr:`Chunk.index` (only ``--verify`` cares: it replays
the pages in order).  Standard input cannot be cut or sent: it is refused.
"""

from __future__ import annotations

import lzma
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from zsmalloc.errors import InputError
from zsmalloc.estimate.driver import CHUNK_PAGES, SourceSummary, Tally, new_tally, tally_pages
from zsmalloc.estimate.sources import (
    ChainedSource,
    CoreDumpSource,
    DirectorySource,
    FileSource,
    PageSource,
    open_path,
    open_stream,
    read_exact_into,
    walk_files,
)
from zsmalloc.estimate.swap import BLOCK_RULES, SwapRules

TASK_PAGES = 16384
"""Pages per chunk by default: 64 MiB of 4 KiB pages, about a second of one core's work,
so that scheduling costs little and a lost worker loses little."""

MAX_PARTS = 4096
"""At most this many files in one chunk (a directory of many tiny files)."""

STDIN_REFUSED = (
    "-: standard input cannot be cut into chunks or sent to workers; "
    "estimate it without --scheduler"
)
UNREADABLE_FILES = DirectorySource.part_unreadable
UNREADABLE_FILE_PARTS = "unreadable parts of files"  # a later range of a split file


@dataclass(frozen=True)
class Part:
    """A run of pages of one file.

    ``offset``/``nbytes``: bytes [offset, offset + nbytes) of the file (``nbytes``
    None: to its end).  ``decompress``: the file is a compressed stream, read
    whole.  ``segments``: for an ELF core, ``(offset, size, vaddr)`` pieces of
    its PT_LOAD segments (offset/nbytes unused).
    """

    path: str
    offset: int = 0
    nbytes: int | None = None
    decompress: bool = False
    segments: tuple[tuple[int, int, int], ...] | None = None

    def open(self, page_size: int) -> PageSource:
        """The page source reading this part (files are opened when read, not here)."""
        if self.segments is not None:
            return CoreDumpSource(self.path, page_size, list(self.segments))
        return FileRangeSource(self.path, page_size, self.offset, self.nbytes, self.decompress)


@dataclass(frozen=True)
class Chunk:
    """One task's worth of pages: parts of one SOURCE, in page order."""

    index: int  # position in the whole input's page order
    source: int  # which SOURCE argument the parts belong to
    parts: tuple[Part, ...]
    pages: int | None  # pages expected (progress only); None where unknown
    members: bool = False  # files of a directory: one that fails is skipped and counted


@dataclass
class SourcePlan:
    """What one SOURCE argument is, for the report, and the pages it should give."""

    label: str
    kind: str
    pages: int | None


@dataclass
class Plan:
    """The whole input cut into chunks."""

    chunks: list[Chunk]
    sources: list[SourcePlan]

    @property
    def total_pages(self) -> int | None:
        """Pages expected in all (progress), or None when a source cannot say."""
        sizes = [s.pages for s in self.sources]
        return None if None in sizes else sum(p for p in sizes if p is not None)


@dataclass
class ChunkResult:
    """What a worker sends back for one chunk: a tally, never pages."""

    index: int
    source: int
    tally: Tally
    summary: SourceSummary  # what this chunk of its SOURCE delivered and skipped
    unreadable: list[str] = field(default_factory=list)  # "path: reason", member files
    error: InputError | None = None  # the SOURCE itself failed: fatal, as in one pass


class FileRangeSource(PageSource):
    """Bytes [offset, offset + nbytes) of a file as pages; a partial last page is
    zero-padded.  Opened on the first read, so a worker holds no descriptor early."""

    kind = "file"

    def __init__(
        self,
        path: str,
        page_size: int,
        offset: int = 0,
        nbytes: int | None = None,
        decompress: bool = False,
    ) -> None:
        super().__init__(path, page_size)
        self.offset = offset
        self.remaining = nbytes
        self.decompress = decompress
        self._stream: IO[bytes] | None = None

    def read_pages(self, out: np.ndarray) -> int:
        ps = self.page_size
        try:
            if self._stream is None:
                self._stream, _ = open_stream(Path(self.label), decompress=self.decompress)
                if self.offset:
                    self._stream.seek(self.offset)
            want = len(out) * ps
            if self.remaining is not None:
                want = min(want, self.remaining)
            mv = memoryview(out.data).cast("B")[:want]
            got = read_exact_into(self._stream, mv)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise InputError(f"cannot read: {exc}", path=self.label) from None
        if self.remaining is not None:
            self.remaining -= got
        n = -(-got // ps)
        if got % ps:
            out[n - 1, got % ps :] = 0
        self.pages += n
        return n

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class ChunkSource(ChainedSource):
    """The member files of one directory chunk, one after another (as the directory's
    own source reads them); a file that fails is skipped, counted and named."""

    kind = "directory"
    part_unreadable = UNREADABLE_FILES

    def __init__(self, chunk: Chunk, page_size: int) -> None:
        super().__init__(f"chunk {chunk.index}", page_size)
        self.chunk = chunk
        self.unreadable: list[str] = []
        self._part = chunk.parts[0]  # the part being read

    def parts(self) -> Iterator[PageSource]:
        for part in self.chunk.parts:
            self._part = part
            yield part.open(self.page_size)

    def part_failed(self, part: PageSource, exc: InputError) -> None:
        # A file cut into ranges is counted once, by its first range, as one pass counts
        # it once; a later range failing alone (the file changed meanwhile) still shows.
        first = self._part.offset == 0
        self.count_skipped(UNREADABLE_FILES if first else UNREADABLE_FILE_PARTS)
        self.unreadable.append(str(exc))


# -- planning ------------------------------------------------------------------


def _ranges(nbytes: int, first_room: int, task_pages: int, page_size: int) -> Iterator[int]:
    """Lengths of the pieces a file of ``nbytes`` is cut into: the first fills the
    current chunk's ``first_room`` pages, the next ones whole chunks; the last is
    returned as -1 (to the end of the file)."""
    room = first_room
    left = nbytes
    while -(-left // page_size) > room:
        yield room * page_size
        left -= room * page_size
        room = task_pages
    yield -1


class _Packer:
    """Fills chunks of one source with parts, about ``task_pages`` pages each."""

    def __init__(self, chunks: list[Chunk], source: int, task_pages: int, members: bool) -> None:
        self.chunks = chunks
        self.source = source
        self.task_pages = task_pages
        self.members = members
        self.parts: list[Part] = []
        self.pages = 0

    @property
    def room(self) -> int:
        return self.task_pages - self.pages

    def add(self, part: Part, pages: int) -> None:
        self.parts.append(part)
        self.pages += pages
        if self.pages >= self.task_pages or len(self.parts) >= MAX_PARTS:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            idx = len(self.chunks)
            self.chunks.append(
                Chunk(idx, self.source, tuple(self.parts), self.pages, members=self.members)
            )
        self.parts = []
        self.pages = 0


def _plan_file(pk: _Packer, path: str, nbytes: int, page_size: int) -> None:
    """Cut a raw file of ``nbytes`` into ranges, the last one running to its end."""
    offset = 0
    for length in _ranges(nbytes, pk.room, pk.task_pages, page_size):
        if length < 0:
            pk.add(Part(path, offset, None), -(-(nbytes - offset) // page_size))
        else:
            pk.add(Part(path, offset, length), length // page_size)
            offset += length


def _plan_core(pk: _Packer, path: str, segments: list[tuple[int, int, int]], ps: int) -> None:
    """Cut a core's segments into pieces of whole pages, as segments of their own."""
    pieces: list[tuple[int, int, int]] = []
    pages = 0
    for seg_off, size, vaddr in segments:
        done = 0
        while done < size:
            take = min(size - done, (pk.task_pages - pages) * ps)
            pieces.append((seg_off + done, take, vaddr + done))
            pages += -(-take // ps)
            done += take
            if pages >= pk.task_pages:
                pk.add(Part(path, segments=tuple(pieces)), pages)
                pieces, pages = [], 0
    if pieces:
        pk.add(Part(path, segments=tuple(pieces)), pages)
    pk.flush()


def plan_source(
    chunks: list[Chunk], index: int, path: str, page_size: int, task_pages: int
) -> SourcePlan:
    """Append the chunks of SOURCE ``path`` (argument number ``index``) to ``chunks``.

    Opens the path as the single pass does (:func:`open_path`), so a missing or
    unreadable SOURCE raises the same :class:`InputError`.
    """
    if path == "-":
        raise InputError(STDIN_REFUSED)
    src = open_path(path, page_size)
    try:
        plan = SourcePlan(src.label, src.kind, None)
        if isinstance(src, DirectorySource):
            pk = _Packer(chunks, index, task_pages, members=True)
            plan.pages = 0
            for p in walk_files(src.path):
                try:
                    size = p.stat(follow_symlinks=False).st_size
                except OSError:
                    size = 0  # its read will fail, and be counted, on the worker
                _plan_file(pk, str(p), size, page_size)
                plan.pages += -(-size // page_size)
            pk.flush()
            return plan
        plan.pages = src.total_pages()
        pk = _Packer(chunks, index, task_pages, members=False)
        if isinstance(src, CoreDumpSource):
            _plan_core(pk, path, src.segments, page_size)
            return plan
        assert isinstance(src, FileSource), f"no plan for a {src.kind}"
        st = os.stat(src.path)
        if src.compression or not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            # A compressed stream (or a pipe) is read whole, sniffed as one pass does.
            pk.add(Part(path, decompress=True), plan.pages or 0)
        else:
            _plan_file(pk, path, (plan.pages or 0) * page_size, page_size)
        pk.flush()
        return plan
    finally:
        src.close()


def plan_chunks(paths: Sequence[str], page_size: int, task_pages: int = TASK_PAGES) -> Plan:
    """Cut every SOURCE into chunks of about ``task_pages`` pages, in page order."""
    if task_pages < 1:
        raise InputError(f"pages per task: expected at least 1, found {task_pages}")
    chunks: list[Chunk] = []
    sources = [plan_source(chunks, i, p, page_size, task_pages) for i, p in enumerate(paths)]
    return Plan(chunks, sources)


# -- tallying one chunk ---------------------------------------------------------


@dataclass(frozen=True)
class TallySpec:
    """How to tally: the same for every chunk of one estimate."""

    algos: tuple[str, ...]
    page_size: int
    level: int | None = None
    zswap: bool = False
    keep_lengths: bool = False
    rules: SwapRules = BLOCK_RULES  # how the pages reach zram (--as)


def open_chunk(chunk: Chunk, page_size: int) -> PageSource:
    """The page source of one chunk: its member files one after another, or its one
    range of a file or a core."""
    if chunk.members:
        return ChunkSource(chunk, page_size)
    (part,) = chunk.parts
    return part.open(page_size)


def tally_chunk(chunk: Chunk, spec: TallySpec) -> ChunkResult:
    """Read and tally one chunk (on a worker): the pages stay where they were read.

    A member file that cannot be read is skipped, counted and named; the SOURCE
    itself failing is returned as ``error`` rather than raised, so the scheduler
    does not retry what would fail again (retries are for workers that died or
    broke).
    """
    tally = new_tally(
        spec.algos,
        spec.page_size,
        keep_lengths=spec.keep_lengths,
        zswap=spec.zswap,
        level=spec.level,
    )
    src = open_chunk(chunk, spec.page_size)
    src.rules = spec.rules
    # The buffers' size changes nothing but memory (see driver): no bigger than the chunk.
    buf_pages = max(1, min(CHUNK_PAGES, CHUNK_PAGES if chunk.pages is None else chunk.pages))
    error = None
    try:
        tally_pages(tally, [src], chunk_pages=buf_pages)
    except InputError as exc:
        error = exc
    if tally.sources:
        (summary,) = tally.sources
    else:  # the source failed before its summary was taken
        summary = SourceSummary.of(src)
    tally.sources = []  # the caller sums the chunks' summaries per SOURCE
    unreadable = src.unreadable if isinstance(src, ChunkSource) else []
    return ChunkResult(chunk.index, chunk.source, tally, summary, unreadable, error)
