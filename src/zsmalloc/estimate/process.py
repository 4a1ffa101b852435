"""Live process memory as pages: what swapping a process out would hand to zram.

A process source reads exactly the pages reclaim could swap out of a process
(:mod:`zsmalloc.estimate.swappable`): present anonymous and shmem pages in any
mapping -- heap, stacks, the copy-on-write pages of its libraries' ``.data``
and RELRO, written private file mappings, shared memory -- and skips, counting
each reason, what the kernel would not swap (mlocked, hugetlbfs, device
mappings, the shared zero page, MADV_FREE'd pages).  It walks
``/proc/PID/smaps`` for the mappings, ``/proc/PID/pagemap`` (and, as root,
``/proc/kpageflags``) for the pages, and reads them from ``/proc/PID/mem`` in
address order.

Then the swap layer's rules apply (:mod:`zsmalloc.estimate.swap`): under swap
rules with a zero map (6.12+), a zero-filled folio never reaches zram.  A
transparent huge page is one folio: it reaches zram whole unless every byte of
it is zero, so this source reads it whole before deciding (``zero_thp_pages``
counts the all-zero ones, ``zero_map_pages`` the zero-filled single pages).

- Pages not resident (never touched, or already swapped out) are skipped and
  counted: they are not in RAM, so they would not be written to zram now.
- A page that cannot be read (the mapping vanished, ``EIO``) is skipped and
  counted.  A process that exits midway ends its source early.
- A page frame shared by several processes (copy-on-write after fork, shmem,
  KSM) is read once: swapping it out stores it once.  Telling needs the page
  frame numbers of pagemap, which only root sees; without root shared pages
  count in every process that maps them.
- Reading another process needs ptrace access (``PTRACE_MODE_ATTACH``): root,
  or the same user where Yama's ``ptrace_scope`` allows it.  An unreadable
  ``--pid`` is an :class:`~zsmalloc.errors.InputError`; ``--all-processes``
  skips and counts unreadable processes.  Our own process is never read: its
  buffers would hold the very pages being measured.

The pages are compressed in memory and only statistics leave this package.
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Iterator

import numpy as np

from zsmalloc.errors import InputError
from zsmalloc.estimate.sources import ChainedSource, PageSource
from zsmalloc.estimate.swap import SWAP_RULES, SwapRules, drop_zero_pages, zero_filled
from zsmalloc.estimate.swappable import (
    FOLIO,
    LABELS,
    MAYBE_ZERO,
    MAYBE_ZERO_LABEL,
    PM_MMAP_EXCLUSIVE,
    PM_PFN_MASK,
    PM_PRESENT,
    SWAPPED_KINDS,
    KPageFlags,
    Page,
    Vma,
    classify,
    extents,
    parse_smaps,
    shmem_devices,
    whole_folios,
)

PAGEMAP_BATCH = 1 << 16  # pagemap entries read at a time (512 KiB), batches aligned to it
NO_PAGE_FLAGS = (
    "not root: no page frame numbers or page flags, so transparent huge pages count page "
    "by page, shmem is known by its mapping and the shared zero page by its zeros"
)


def process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


class ProcessSource(PageSource):
    """The pages swap could take from one live process, under ``rules`` (swap by default)."""

    kind = "process"
    applies_swap_rules = True

    def __init__(
        self,
        pid: int,
        page_size: int,
        seen_pfns: set[int] | None = None,
        rules: SwapRules = SWAP_RULES,
    ) -> None:
        self.pid = pid
        self.seen_pfns = seen_pfns
        self.name = process_name(pid)
        super().__init__(f"pid {pid} ({self.name})", page_size, rules)
        sys_page = os.sysconf("SC_PAGE_SIZE")
        if page_size != sys_page:
            raise InputError(
                f"process memory comes in this machine's {sys_page}-byte pages; "
                f"--page-size {page_size} cannot be used with --pid/--all-processes"
            )
        if pid == os.getpid():
            raise InputError(f"pid {pid} is this estimate itself")
        self._mem_fd = self._pagemap_fd = -1
        self._kpf: KPageFlags | None = None
        try:
            self._mem_fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
            self._pagemap_fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
            with open(f"/proc/{pid}/smaps") as f:
                vmas = list(parse_smaps(f))
        except FileNotFoundError:
            self.close()
            raise InputError(f"pid {pid}: no such process") from None
        except PermissionError:
            self.close()
            raise InputError(
                f"pid {pid} ({self.name}): cannot read its memory: permission denied "
                "(needs root, or a process of your own that ptrace may attach to)"
            ) from None
        except OSError as exc:
            self.close()
            if exc.errno == _errno.ESRCH and is_kernel_thread(pid):
                raise InputError(
                    f"pid {pid} ({self.name}) is a kernel thread: it has no user memory"
                ) from None
            raise InputError(f"pid {pid}: cannot read its memory: {exc.strerror}") from None
        self.shmem_devs = shmem_devices()
        self.vmas: list[Vma] = [v for v in vmas if v.worth_walking(self.shmem_devs)]
        thp_kb = sum(v.thp_pages_kb for v in vmas)
        if KPageFlags.available():
            self._kpf = KPageFlags()
        else:
            self.notes.append(NO_PAGE_FLAGS)
            if thp_kb:
                self.notes.append(
                    f"{thp_kb} kB of THPs here, counted page by page: the zero-filled pages "
                    "of those not all zero would reach zram, not the zero map"
                )
        self._pending = self._extents()
        self._carry: tuple[int, int, int] | None = None  # (address, pages, kind) left to read
        self._staged: np.ndarray | None = None  # a whole THP read ahead, still to deliver

    def total_pages(self) -> int | None:
        return rss_swappable_pages(self.pid, self.page_size)

    # -- which pages ------------------------------------------------------------------
    def _extents(self) -> Iterator[tuple[int, int, int]]:
        """(address, nr_pages, kind) of each run to read, in address order."""
        ps = self.page_size
        for vma in self.vmas:
            lo, last = vma.start // ps, vma.end // ps
            while lo < last:
                # Batches end on multiples of PAGEMAP_BATCH pages, so no PMD-mapped THP
                # (aligned to its size) is cut in two.
                hi = min(last, (lo // PAGEMAP_BATCH + 1) * PAGEMAP_BATCH)
                try:
                    raw = os.pread(self._pagemap_fd, (hi - lo) * 8, lo * 8)
                except OSError:
                    self.count_skipped("pages not readable", hi - lo)
                    lo = hi
                    continue
                if not raw:  # the process has exited
                    return
                entries = np.frombuffer(raw, dtype=np.uint64)
                self.count_skipped("pages not readable", (hi - lo) - len(entries))
                for ext_first, nr, kind in self._batch(entries, vma):
                    yield (lo + ext_first) * ps, nr, kind
                lo = hi

    def _batch(self, entries: np.ndarray, vma: Vma) -> list[tuple[int, int, int]]:
        """Classify one pagemap batch, count what is skipped, return its runs to read."""
        present = (entries & PM_PRESENT) != 0
        pfns = entries & PM_PFN_MASK
        kflags = None
        kpf = self._kpf
        if kpf is not None and (pfns[present] != 0).any():
            kflags = np.zeros(len(entries), dtype=np.uint64)
            kflags[present] = kpf.read(pfns[present])
        elif present.any() and NO_PAGE_FLAGS not in self.notes:
            self.notes.append(NO_PAGE_FLAGS)  # root, yet pagemap hides frame numbers
        codes = classify(entries, vma, kflags, self.shmem_devs)
        if self.seen_pfns is not None:
            self._mark_seen(codes, entries)
        values, counts = np.unique(codes, return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist(), strict=True):
            if v in LABELS:
                self.count_skipped(LABELS[Page(v)], c)
            elif v == Page.SHMEM:
                self.shmem_pages += c
        group = None
        if kflags is not None and kpf is not None:
            group = whole_folios(codes, pfns, kflags, kpf)
        return [(e.first, e.nr_pages, e.kind) for e in extents(codes, group)]

    def _mark_seen(self, codes: np.ndarray, entries: np.ndarray) -> None:
        """Mark pages shared with a process read before (same page frame) as SEEN.

        A page frame shared by several processes (copy-on-write after fork, shmem,
        KSM) is swapped out, and stored in zram, once.  Only pages not mapped
        exclusively can be shared, and their pfn is visible to root only (0 otherwise).
        """
        assert self.seen_pfns is not None
        shared = np.flatnonzero(
            np.isin(codes, SWAPPED_KINDS) & ((entries & PM_MMAP_EXCLUSIVE) == 0)
        )
        pfns = entries[shared] & PM_PFN_MASK
        known = pfns != 0  # no pfn without CAP_SYS_ADMIN: cannot tell, keep the page
        shared, pfns = shared[known], pfns[known]
        # The first mapping of a frame in this batch keeps it unless an earlier batch (or
        # process) had it; every later mapping is SEEN.  Set operations, not a loop.
        uniq, first = np.unique(pfns, return_index=True)
        listed = uniq.tolist()
        before = self.seen_pfns.intersection(listed)
        self.seen_pfns.update(listed)
        seen = np.ones(len(pfns), dtype=bool)
        seen[first] = False
        if before:
            seen |= np.isin(pfns, np.fromiter(before, dtype=np.uint64, count=len(before)))
        codes[shared[seen]] = Page.SEEN

    def resident_pages(self) -> int:
        """How many pages swap could take from the process now, without reading them
        (a swap-out check counts what stayed behind with it)."""
        return sum(nr for _, nr, _ in self._extents())

    # -- reading ----------------------------------------------------------------------
    def _read_run(self, addr: int, out: np.ndarray) -> int:
        """Read len(out) pages at addr; unreadable pages are skipped. Returns pages kept."""
        want = out.nbytes
        try:
            got = os.preadv(self._mem_fd, [memoryview(out.data).cast("B")], addr)
        except OSError as exc:
            if exc.errno == _errno.ESRCH:
                self.count_skipped("pages not readable", len(out))
                return 0
            got = 0
        if got == want:
            return len(out)
        # Partial or failed: page by page, keeping the readable ones in order.
        kept = got // self.page_size
        for i in range(kept, len(out)):
            try:
                page = os.pread(self._mem_fd, self.page_size, addr + i * self.page_size)
            except OSError:
                page = b""
            if len(page) != self.page_size:
                self.count_skipped("pages not readable", 1)
                continue
            out[kept] = np.frombuffer(page, dtype=np.uint8)
            kept += 1
        return kept

    def _read_folio(self, addr: int, nr: int, out: np.ndarray) -> int:
        """Read a whole THP; deliver it into ``out`` unless it is all zero (the zero map).

        A THP larger than the room left in ``out`` is read ahead into a buffer of
        its own and delivered over the next calls.  Returns pages put into ``out``.
        """
        fits = nr <= len(out)
        buf = out[:nr] if fits else np.empty((nr, self.page_size), dtype=np.uint8)
        got = self._read_run(addr, buf)
        self.thp_pages += got
        if got == nr and zero_filled(buf).all():
            self.zero_thp_pages += nr
            return 0
        if fits:
            return got
        self._staged = buf[:got]
        return 0

    def read_pages(self, out: np.ndarray) -> int:
        n = 0
        while n < len(out):
            if self._staged is not None:
                take = min(len(self._staged), len(out) - n)
                out[n : n + take] = self._staged[:take]
                n += take
                self._staged = self._staged[take:] if take < len(self._staged) else None
                continue
            if self._carry is None:
                self._carry = next(self._pending, None)
                if self._carry is None:
                    break
            addr, count, kind = self._carry
            if kind == FOLIO and self.rules.zero_map:
                self._carry = None
                n += self._read_folio(addr, count, out[n:])
                continue
            take = min(count, len(out) - n)
            got = self._read_run(addr, out[n : n + take])
            if kind == FOLIO:  # under block rules a THP is pages like any others
                self.thp_pages += got
            rest = (addr + take * self.page_size, count - take, kind)
            self._carry = None if take == count else rest
            if kind == MAYBE_ZERO:  # without root: zeros here are the shared zero page
                kept = drop_zero_pages(out[n : n + got])
                self.count_skipped(MAYBE_ZERO_LABEL, got - kept)
                got = kept
            if self.rules.zero_map:
                kept = drop_zero_pages(out[n : n + got])
                self.zero_map_pages += got - kept
                got = kept
            n += got
        self.pages += n
        return n

    def close(self) -> None:
        for fd in (self._mem_fd, self._pagemap_fd):
            if fd >= 0:
                os.close(fd)
        self._mem_fd = self._pagemap_fd = -1
        if self._kpf is not None:
            self._kpf.close()
            self._kpf = None


def _status_kb(pid: int, keys: tuple[str, ...]) -> int:
    """The sum of some ``kB`` lines of /proc/PID/status (0 when it cannot be read)."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in keys:
                    total += int(value.split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return total


def rss_anon_pages(pid: int, page_size: int) -> int:
    """Resident anonymous pages, from /proc/PID/status (RssAnon)."""
    return _status_kb(pid, ("RssAnon",)) * 1024 // page_size


def rss_swappable_pages(pid: int, page_size: int) -> int:
    """Resident anonymous and shmem pages (RssAnon + RssShmem): a good guess of what
    a process source reads (it leaves out what swap would not take)."""
    return _status_kb(pid, ("RssAnon", "RssShmem")) * 1024 // page_size


def is_kernel_thread(pid: int) -> bool:
    """Kernel threads have no user memory: an empty maps file (PF_KTHREAD, no mm)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return not f.read(1)
    except OSError:
        return False


def all_pids() -> list[int]:
    return sorted(int(d) for d in os.listdir("/proc") if d.isdigit())


def candidate_pids() -> list[int]:
    """The processes worth trying: all of them as root, this user's own otherwise."""
    if os.geteuid() == 0:
        return all_pids()
    uid = os.getuid()
    out = []
    for pid in all_pids():
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                out.append(pid)
        except OSError:
            continue
    return out


class AllProcessesSource(ChainedSource):
    """Every readable process but this one, in pid order (default: :func:`candidate_pids`)."""

    kind = "all processes"
    part_unreadable = "processes that vanished while read"
    applies_swap_rules = True  # each process source applies them, knowing its folios

    def __init__(
        self,
        page_size: int,
        pids: list[int] | None = None,
        seen_pfns: set[int] | None = None,
        rules: SwapRules = SWAP_RULES,
    ) -> None:
        super().__init__("all processes", page_size)
        self.rules = rules
        # Page frames already read: a copy-on-write page shared by several processes
        # counts once, as it would be swapped out once.
        self.seen_pfns = set() if seen_pfns is None else seen_pfns
        self.pids = [p for p in (candidate_pids() if pids is None else pids) if p != os.getpid()]
        self.readable = 0
        self.unreadable = 0
        self.kernel_threads = 0

    def total_pages(self) -> int | None:
        return sum(rss_swappable_pages(pid, self.page_size) for pid in self.pids)

    def parts(self) -> Iterator[PageSource]:
        for pid in self.pids:
            if is_kernel_thread(pid):
                self.kernel_threads += 1
                continue
            try:
                src = ProcessSource(pid, self.page_size, self.seen_pfns, self.rules)
            except InputError:
                self.unreadable += 1
                continue
            self.readable += 1
            self.label = (
                f"{self.readable} processes read, {self.unreadable} exited or unreadable, "
                f"{self.kernel_threads} kernel threads"
            )
            yield src
