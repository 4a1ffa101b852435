"""The estimate driver: stream pages, compress them on every core, tally the lengths.

One pass over the sources, in fixed-size chunks of pages:

* a reader thread fills chunk k+1 from the sources (``read_pages``) while the
  main thread compresses chunk k, so I/O overlaps compression; two chunk buffers
  are reused, so memory stays bounded whatever the input size (a third bought
  nothing while reading outpaces compressing, and fresh memory is not free: on a
  virtual machine a first touch costs ~1-2 ms per MiB);
* each chunk is compressed once per algorithm through the batch API
  (:func:`zsmalloc.compress.stored_sizes`, a numba ``prange`` over pages), with
  the huge threshold at PAGE_SIZE so that the result is the same-filled mark (0)
  or the exact compressed length (capped at PAGE_SIZE: huge at any chain size);
* the lengths go into one histogram per algorithm, which is all
  :mod:`zsmalloc.estimate.fill` needs (the order of the pages does not matter
  for a sequential fill of a fresh device), plus, on request, the per-page
  lengths in page order (2 bytes a page) for a replay through the full zram
  model.

Ctrl-C stops the pass between chunks: the tally then covers the pages
processed so far and says it was interrupted.  Page contents are only ever in
the chunk buffers.

Tallies add up: a sequential fill depends only on the length histograms (see
:mod:`zsmalloc.estimate.fill`), so passes over disjoint parts of the input can
run anywhere and :meth:`Tally.merge` their results without any error; this is
what ``estimate --scheduler`` does on a Dask cluster (cluster.py).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from zsmalloc.errors import InputError, UnknownAlgorithmError
from zsmalloc.estimate.sources import PageSource
from zsmalloc.estimate.swap import SwapRules, drop_zero_pages
from zsmalloc.profile import DEFAULT_PROFILE, kernel_version

if TYPE_CHECKING:
    from zsmalloc.compress import Backend

CHUNK_PAGES = 4096  # 16 MiB of 4 KiB pages per chunk; two chunks in flight at most
CHUNK_BUFFERS = 2
CHUNK_BYTES = CHUNK_PAGES * DEFAULT_PROFILE.page_size  # larger pages: fewer of them per chunk

# numba's default (workqueue) threading layer aborts the process when two threads
# launch parallel code at once, and the others would only oversubscribe the cores:
# threads of one process that tally at the same time (a Dask worker's threads) take
# turns compressing, each turn on every core, while their readers keep reading.
_COMPRESS_LOCK = threading.Lock()


def parse_algorithm_list(text: str, option: str = "--algo") -> list[str]:
    """``a,b,c`` as names, refusing what does not say what it means.

    An empty name (``''``, ``lz4,,lzo``, ``lz4,``) or a name given twice is an
    UnknownAlgorithmError naming the option; blanks around names are dropped.
    Whether the names are known is the caller's business (:func:`check_algorithms`).
    """
    names = [a.strip() for a in text.split(",")]
    for a in names:
        if not a:
            raise UnknownAlgorithmError(
                f"{option} {text!r}: an empty algorithm name (expected e.g. lz4,zstd)"
            )
        if names.count(a) > 1:
            raise UnknownAlgorithmError(f"{option} {text!r}: {a} is given twice")
    return names


@dataclass(frozen=True)
class CompressorSetup:
    """What every algorithm of an estimate is configured with: the kernel whose zram is
    modelled (a :mod:`zsmalloc.profile` row), its PAGE_SIZE, and zram's
    ``algorithm_params`` (level, deflate.winbits).  A value: it travels to a cluster's
    workers, and equal setups share their backends."""

    kernel: str = DEFAULT_PROFILE.version
    page_size: int = DEFAULT_PROFILE.page_size
    level: int | None = None
    winbits: int | None = None

    def __post_init__(self) -> None:
        # a release ("6.12.118+deb13-amd64") names its row: one spelling per kernel
        object.__setattr__(self, "kernel", kernel_version(self.kernel))

    def backend(self, algo: str) -> Backend:
        """The compressor of ``algo`` under this setup (raises for a bad name or param)."""
        from zsmalloc.compress import get

        # deflate.winbits is deflate's alone; the level goes to every backend (lzo
        # ignores it, as zram's lzo backend does)
        winbits = self.winbits if algo == "deflate" else None
        return get(algo, self.level, kernel=self.kernel, page_size=self.page_size, winbits=winbits)


def check_algorithms(
    algos: Sequence[str], level: int | None = None, setup: CompressorSetup | None = None
) -> list[str]:
    """Validate a list of algorithm names (``--algo a,b``), keeping their order.

    Every name must be known (UnknownAlgorithmError naming the known ones), none may
    be empty (``--algo ''``, ``lz4,,lzo``) or given twice: a list that says something
    other than what it means is refused, not tidied up.  Each backend is made under
    ``setup`` (default: the reference kernel with ``level``), so a parameter the kernel
    would refuse is an InputError here, before any page is read.
    """
    if setup is None:
        setup = CompressorSetup(level=level)
    if isinstance(algos, str) or not all(isinstance(a, str) for a in algos):
        raise UnknownAlgorithmError(f"expected a list of algorithm names, found {algos!r}")
    out = parse_algorithm_list(",".join(algos))
    for a in out:
        setup.backend(a)  # raises UnknownAlgorithmError naming the known ones
    if not out:
        raise UnknownAlgorithmError("no compression algorithm given (--algo)")
    return out


@dataclass
class SourceSummary:
    """What one source delivered, for the report (no page contents)."""

    label: str
    kind: str
    pages: int  # pages that reached zram
    skipped: dict[str, int]
    rules: SwapRules | None = None  # how its pages reached zram (swap or block)
    zero_map_pages: int = 0  # zero-filled single pages: the swap zero map
    zero_thp_pages: int = 0  # pages of all-zero THPs: the swap zero map
    thp_pages: int = 0  # pages read as parts of whole THPs
    shmem_pages: int = 0  # shmem pages among those swap takes (zero map included)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, s: PageSource) -> SourceSummary:
        return cls(
            s.label,
            s.kind,
            s.pages,
            dict(s.skipped),
            s.rules,
            s.zero_map_pages,
            s.zero_thp_pages,
            s.thp_pages,
            s.shmem_pages,
            list(s.notes),
        )

    def merge(self, other: SourceSummary) -> None:
        """Add what another part of the same source delivered (a chunk of it)."""
        self.pages += other.pages
        for k, v in other.skipped.items():
            self.skipped[k] = self.skipped.get(k, 0) + v
        self.zero_map_pages += other.zero_map_pages
        self.zero_thp_pages += other.zero_thp_pages
        self.thp_pages += other.thp_pages
        self.shmem_pages += other.shmem_pages
        self.notes += [n for n in other.notes if n not in self.notes]

    def to_json(self) -> dict[str, object]:
        return {
            "label": self.label,
            "kind": self.kind,
            "pages": self.pages,
            "skipped": self.skipped,
            "zram_used_as": None if self.rules is None else self.rules.mode,
            "zero_map_pages": self.zero_map_pages,
            "zero_thp_pages": self.zero_thp_pages,
            "thp_pages": self.thp_pages,
            "shmem_pages": self.shmem_pages,
            "notes": self.notes,
        }


@dataclass
class Tally:
    """Everything the pass measured: per algorithm, a histogram of compressed lengths."""

    page_size: int
    algos: list[str]
    len_hist: dict[str, np.ndarray]  # non-same-filled pages by compressed length
    level: int | None = None  # zram's algorithm_params level (None: each backend's default)
    setup: CompressorSetup = field(default_factory=CompressorSetup)  # kernel, params
    pages: int = 0
    same_pages: int = 0
    interrupted: bool = False
    elapsed: float = 0.0
    sources: list[SourceSummary] = field(default_factory=list)
    lengths: dict[str, list[np.ndarray]] | None = None  # per page, in order; 0 = same-filled
    peak_rss: int | None = None  # this process's VmHWM after the pass (bytes)
    # zswap's compressed lengths (0 = all-zero page), capped at PAGE_SIZE, with --zswap
    zswap_hist: dict[str, np.ndarray] | None = None
    # ... and per page, in order, uncapped (up to PAGE_SIZE + 1: "does not fit"), a
    # same-filled page's with ZSWAP_SAME_FLAG set: each kernel's zswap reads them its way
    # (6.1 keeps every same-filled page as a word; zbud and z3fold pack in order)
    zswap_lengths: dict[str, list[np.ndarray]] | None = None
    cluster: dict[str, Any] | None = None  # how a Dask cluster computed it (--scheduler)
    # the setup's backends, made once per process (not pickled: a worker makes its own)
    _backends: dict[str, Backend] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_backends"] = {}
        return state

    def merge(self, other: Tally) -> None:
        """Add ``other``'s pages (a pass over other input) to this tally, exactly.

        Histograms and counts add up; per-page lengths and source summaries are
        appended, so merge in input order where the page order matters (--verify).
        ``elapsed`` and ``peak_rss`` are the caller's to set.
        """
        if (other.page_size, other.algos, other.setup) != (
            self.page_size,
            self.algos,
            self.setup,
        ):
            raise ValueError(
                f"cannot merge a tally of {other.algos} at page size {other.page_size} "
                f"({other.setup}) into one of {self.algos} at {self.page_size} ({self.setup})"
            )
        if (other.lengths is None) != (self.lengths is None) or (other.zswap_hist is None) != (
            self.zswap_hist is None
        ):
            raise ValueError("cannot merge tallies made with different keep_lengths/zswap")
        for a in self.algos:
            self.len_hist[a] += other.len_hist[a]
            if self.zswap_hist is not None and other.zswap_hist is not None:
                self.zswap_hist[a] += other.zswap_hist[a]
            if self.lengths is not None and other.lengths is not None:
                self.lengths[a].extend(other.lengths[a])
            if self.zswap_lengths is not None and other.zswap_lengths is not None:
                self.zswap_lengths[a].extend(other.zswap_lengths[a])
        self.pages += other.pages
        self.same_pages += other.same_pages
        self.interrupted |= other.interrupted
        self.sources.extend(other.sources)

    @property
    def zero_map_pages(self) -> int:
        """Pages the swap layer kept in its zero map: they never reached zram."""
        return sum(s.zero_map_pages + s.zero_thp_pages for s in self.sources)

    @property
    def zero_thp_pages(self) -> int:
        """Of :attr:`zero_map_pages`, the pages of all-zero THPs (a swap file splits
        those THPs instead, and maps their pages to the shared zero page)."""
        return sum(s.zero_thp_pages for s in self.sources)

    @property
    def rules(self) -> list[SwapRules]:
        """The distinct rules the sources' pages reached zram under, in source order."""
        out: list[SwapRules] = []
        for s in self.sources:
            if s.rules is not None and s.rules not in out:
                out.append(s.rules)
        return out

    def backend(self, algo: str) -> Backend:
        """The compressor that measured ``algo``'s lengths."""
        b = self._backends.get(algo)
        if b is None:
            b = self._backends[algo] = self.setup.backend(algo)
        return b

    def zswap_page_lengths(self, algo: str) -> np.ndarray:
        """zswap's per-page lengths in swap-out order (see :attr:`zswap_lengths`), with the
        pages the sources left in the swap zero map appended as all-zero pages."""
        if self.zswap_lengths is None:
            raise ValueError("zswap lengths were not kept (zswap=False)")
        parts = [*self.zswap_lengths[algo], np.zeros(self.zero_map_pages, np.int32)]
        return np.concatenate(parts)

    def page_lengths(self, algo: str) -> np.ndarray:
        """Per-page compressed lengths in write order (0 = same-filled); needs keep_lengths."""
        if self.lengths is None:
            raise ValueError("per-page lengths were not kept (keep_lengths=False)")
        parts = self.lengths[algo]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)


def peak_rss_bytes() -> int | None:
    """This process's own peak resident set (VmHWM), or None where /proc has none.

    Not ``ru_maxrss``: after a vfork-based spawn that also counts the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _compress_lengths(pages: np.ndarray, backend: Backend) -> np.ndarray:
    """Same-filled mark (0) or exact compressed length of each page, on every core."""
    # A huge threshold of PAGE_SIZE keeps every length below it as it is; longer ones
    # come back as PAGE_SIZE, which is huge for every chain size anyway.
    return np.asarray(backend.stored_sizes(pages, huge_class_size=pages.shape[1]))


def warm_up(
    algos: Sequence[str],
    page_size: int = DEFAULT_PROFILE.page_size,
    level: int | None = None,
    setup: CompressorSetup | None = None,
) -> None:
    """Compile (first run) or load (later runs) each compressor before the pass starts."""
    if setup is None:
        setup = CompressorSetup(page_size=page_size, level=level)
    page = np.zeros((1, setup.page_size), dtype=np.uint8)
    page[0, ::7] = 1  # not same-filled: the compressor itself runs
    with _COMPRESS_LOCK:
        for algo in algos:
            _compress_lengths(page, setup.backend(algo))


ZSWAP_SAME_FLAG = 1 << 30
"""Marks a same-filled page's entry in :attr:`Tally.zswap_lengths` (its length below)."""


def _zswap_lengths(
    pages: np.ndarray,
    lengths: np.ndarray,
    nonzero_same: np.ndarray,
    backend: Backend,
    tally: Tally,
) -> np.ndarray:
    """zswap's view of a chunk: every page's compressed length with unlimited room (int32).

    ``lengths`` are zram's (0 same-filled, capped at PAGE_SIZE); zswap needs what they
    hide: the length of a same-filled page that is not all zeros (6.12 on compress it;
    it is marked with :data:`ZSWAP_SAME_FLAG` for 6.1 and 6.6, which keep it as a word),
    and whether a page at the cap fits a page exactly (stored before 6.18) or not.
    """
    zl = lengths.astype(np.int32)
    capped = np.flatnonzero(lengths >= tally.page_size)
    if len(capped):
        zl[capped] = np.minimum(backend.compress_lengths(pages[capped]), tally.page_size + 1)
    if len(nonzero_same):
        raw = backend.compress_lengths(pages[nonzero_same])
        zl[nonzero_same] = np.minimum(raw, tally.page_size + 1) | ZSWAP_SAME_FLAG
    return zl


def _tally_chunk(tally: Tally, pages: np.ndarray) -> None:
    """Compress one chunk with every algorithm and add it to the tally."""
    from zsmalloc._jit import dynamic_prange

    with _COMPRESS_LOCK, dynamic_prange():
        _tally_chunk_locked(tally, pages)


def _tally_chunk_locked(tally: Tally, pages: np.ndarray) -> None:
    hist_len = tally.page_size + 1
    same_idx = nonzero_same = None
    for algo in tally.algos:
        backend = tally.backend(algo)
        lengths = _compress_lengths(pages, backend)
        if same_idx is None:
            same_idx = np.flatnonzero(lengths == 0)
            tally.same_pages += len(same_idx)
        counts = np.bincount(lengths, minlength=hist_len)
        counts[0] = 0  # same-filled pages are counted apart
        tally.len_hist[algo] += counts
        if tally.lengths is not None:
            tally.lengths[algo].append(lengths.astype(np.uint16))
        if tally.zswap_hist is not None:
            # zswap skips only all-zero pages; other same-filled pages are compressed.
            if nonzero_same is None:
                nonzero_same = same_idx[pages[same_idx].any(axis=1)]
            zl = _zswap_lengths(pages, lengths, nonzero_same, backend, tally)
            tally.zswap_hist[algo] += np.bincount(
                np.minimum(zl & ~ZSWAP_SAME_FLAG, tally.page_size), minlength=hist_len
            )
            if tally.zswap_lengths is not None:
                tally.zswap_lengths[algo].append(zl)
    tally.pages += len(pages)


class _Reader(threading.Thread):
    """Fills free chunk buffers from the sources, in order, and queues them."""

    def __init__(self, sources: Sequence[PageSource], buffers: list[np.ndarray]) -> None:
        super().__init__(name="zsmalloc-estimate-reader", daemon=True)
        self.sources = sources
        self.free: queue.Queue[np.ndarray] = queue.Queue()
        for b in buffers:
            self.free.put(b)
        self.filled: queue.Queue[tuple[np.ndarray, int] | BaseException | None] = queue.Queue()
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            it = iter(self.sources)
            src = next(it, None)
            while src is not None and not self.stop.is_set():
                try:
                    buf = self.free.get(timeout=0.1)
                except queue.Empty:
                    continue
                n = 0
                while n < len(buf) and src is not None:
                    want = len(buf) - n
                    got = src.read_pages(buf[n:])
                    if src.rules.zero_map and not src.applies_swap_rules:
                        # Each page is its own folio: zero-filled ones stay in the zero map.
                        kept = drop_zero_pages(buf[n : n + got])
                        src.zero_mapped(got - kept)
                        n += kept
                    else:
                        n += got
                    if got < want:  # src is exhausted: free its descriptor now
                        src.close()
                        src = next(it, None)
                    if self.stop.is_set():
                        break
                if n:
                    self.filled.put((buf, n))
            self.filled.put(None)
        except BaseException as exc:  # handed to the main thread, raised there
            self.filled.put(exc)


def new_tally(
    algos: Sequence[str],
    page_size: int = DEFAULT_PROFILE.page_size,
    *,
    keep_lengths: bool = False,
    zswap: bool = False,
    level: int | None = None,
    setup: CompressorSetup | None = None,
) -> Tally:
    """An empty tally for ``algos`` (already checked), ready for :func:`tally_pages`.

    ``setup`` configures the compressors (default: the reference kernel at
    ``page_size`` with ``level``); its page size and level are the tally's.
    """
    if setup is None:
        setup = CompressorSetup(page_size=page_size, level=level)
    page_size, level = setup.page_size, setup.level
    hist_len = page_size + 1  # lengths are capped at PAGE_SIZE (see _compress_lengths)
    return Tally(
        page_size=page_size,
        algos=list(algos),
        len_hist={a: np.zeros(hist_len, dtype=np.int64) for a in algos},
        level=level,
        setup=setup,
        lengths={a: [] for a in algos} if keep_lengths else None,
        zswap_hist={a: np.zeros(hist_len, dtype=np.int64) for a in algos} if zswap else None,
        zswap_lengths={a: [] for a in algos} if zswap else None,
    )


def tally_pages(
    tally: Tally,
    sources: Sequence[PageSource],
    *,
    chunk_pages: int = CHUNK_PAGES,
    on_chunk: Callable[[int], None] | None = None,
) -> None:
    """Stream every page of ``sources`` into ``tally``, then close and summarise them.

    Ctrl-C ends the pass early with ``tally.interrupted`` set; a source's
    :class:`InputError` propagates (after every source is closed).
    """
    chunk_pages = max(1, min(chunk_pages, CHUNK_BYTES // tally.page_size))
    buffers = [
        np.empty((chunk_pages, tally.page_size), dtype=np.uint8) for _ in range(CHUNK_BUFFERS)
    ]
    reader = _Reader(sources, buffers)
    reader.start()
    try:
        while True:
            item = reader.filled.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            buf, n = item
            _tally_chunk(tally, buf[:n])
            reader.free.put(buf)
            if on_chunk is not None:
                on_chunk(n)
    except KeyboardInterrupt:
        tally.interrupted = True
    finally:
        reader.stop.set()
        reader.join(timeout=2.0)
        for s in sources:
            s.close()  # first: closing a chained source merges its last part's counts
            tally.sources.append(SourceSummary.of(s))


def run_estimate(
    sources: Sequence[PageSource],
    algos: Sequence[str],
    *,
    page_size: int = DEFAULT_PROFILE.page_size,
    chunk_pages: int = CHUNK_PAGES,
    keep_lengths: bool = False,
    zswap: bool = False,
    level: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
    kernel: str = DEFAULT_PROFILE.version,
    winbits: int | None = None,
) -> Tally:
    """One pass over ``sources``: compress every page with every algorithm, tally lengths.

    ``zswap`` also tallies zswap's view of the same pages (all-zero pages only
    skip zswap, so other same-filled pages are compressed too).
    ``on_chunk(n)`` is called after each chunk of ``n`` pages (progress bars).
    ``kernel``, ``level`` and ``winbits`` configure the compressors as that kernel's zram
    with ``algorithm_params level= deflate.winbits=`` (:class:`CompressorSetup`).
    Ctrl-C ends the pass early with ``interrupted`` set.  An input without a
    single page raises :class:`InputError`.
    """
    setup = CompressorSetup(kernel, page_size, level, winbits)
    algos = check_algorithms(algos, setup=setup)
    tally = new_tally(algos, keep_lengths=keep_lengths, zswap=zswap, setup=setup)
    t0 = time.perf_counter()
    try:
        tally_pages(tally, sources, chunk_pages=chunk_pages, on_chunk=on_chunk)
    finally:
        tally.elapsed = time.perf_counter() - t0
        tally.peak_rss = peak_rss_bytes()
    check_not_empty(tally)
    return tally


def check_not_empty(tally: Tally) -> None:
    """Raise :class:`InputError` for a finished pass that found not a single page."""
    if tally.pages == 0 and not tally.interrupted:
        names = ", ".join(s.label for s in tally.sources) or "no source"
        raise InputError(f"{names}: no pages to estimate (empty input)")
