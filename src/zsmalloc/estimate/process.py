"""Live process memory as pages: what swapping a process out to zram would store.

zram as swap receives a process's *anonymous* pages: private or heap/stack
memory that has no file behind it.  So a process source reads, from
``/proc/PID/maps``, the writable mappings with no backing file (inode 0: the
heap, stacks, ``[anon:...]`` and unnamed mappings; not ``[vdso]``/``[vvar]``),
asks ``/proc/PID/pagemap`` which of their pages are resident (bit 63), and
reads those pages from ``/proc/PID/mem``, in address order.

- Pages not resident (never touched, or already swapped out) are skipped and
  counted: they are not in RAM, so they would not be written to zram now.
- A page that cannot be read (the mapping vanished, ``EIO``) is skipped and
  counted.  A process that exits midway ends its source early.
- A page frame shared by several processes (copy-on-write after fork) is
  read once: swapping it out stores it once.  Telling needs the page frame
  numbers of pagemap, which only root sees; without root shared pages count
  in every process that maps them.
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
from dataclasses import dataclass

import numpy as np

from zsmalloc.errors import InputError
from zsmalloc.estimate.sources import ChainedSource, PageSource

PM_PRESENT = np.uint64(1 << 63)
PM_SWAP = np.uint64(1 << 62)
PM_MMAP_EXCLUSIVE = np.uint64(1 << 56)
PM_PFN_MASK = np.uint64((1 << 55) - 1)
_NOT_ANON = ("[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]", "[uprobes]")
PAGEMAP_BATCH = 1 << 16  # pagemap entries read at a time (512 KiB)


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/PID/maps that zram could receive pages from."""

    start: int
    end: int
    name: str


def anon_writable_mappings(maps_text: str) -> list[Mapping]:
    """The anonymous, writable, private mappings of a ``/proc/PID/maps`` text."""
    out = []
    for line in maps_text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 5:
            continue
        addr, perms, _off, _dev, inode = parts[:5]
        name = parts[5].strip() if len(parts) > 5 else ""
        if "w" not in perms or perms[3] != "p" or inode != "0" or name in _NOT_ANON:
            continue
        lo, hi = addr.split("-")
        out.append(Mapping(int(lo, 16), int(hi, 16), name))
    return out


def process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _runs(mask: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-d bool array."""
    if not mask.any():
        return
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    yield from zip(starts.tolist(), stops.tolist(), strict=True)


class ProcessSource(PageSource):
    """The resident anonymous memory of one live process."""

    kind = "process"

    def __init__(self, pid: int, page_size: int, seen_pfns: set[int] | None = None) -> None:
        self.pid = pid
        self.seen_pfns = seen_pfns
        self.name = process_name(pid)
        super().__init__(f"pid {pid} ({self.name})", page_size)
        sys_page = os.sysconf("SC_PAGE_SIZE")
        if page_size != sys_page:
            raise InputError(
                f"process memory comes in this machine's {sys_page}-byte pages; "
                f"--page-size {page_size} cannot be used with --pid/--all-processes"
            )
        if pid == os.getpid():
            raise InputError(f"pid {pid} is this estimate itself")
        self._mem_fd = self._pagemap_fd = -1
        try:
            with open(f"/proc/{pid}/maps") as f:
                self.mappings = anon_writable_mappings(f.read())
            self._mem_fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
            self._pagemap_fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
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
        self._pending = self._present_runs()
        self._carry: tuple[int, int] | None = None

    def total_pages(self) -> int | None:
        return rss_anon_pages(self.pid, self.page_size)

    def _present_runs(self) -> Iterator[tuple[int, int]]:
        """(address, nr_pages) of each run of resident pages, in address order."""
        ps = self.page_size
        for m in self.mappings:
            first, last = m.start // ps, m.end // ps
            for lo in range(first, last, PAGEMAP_BATCH):
                hi = min(last, lo + PAGEMAP_BATCH)
                try:
                    raw = os.pread(self._pagemap_fd, (hi - lo) * 8, lo * 8)
                except OSError:
                    self.count_skipped("pages not readable", hi - lo)
                    continue
                if not raw:  # the process has exited
                    return
                entries = np.frombuffer(raw, dtype=np.uint64)
                present = (entries & PM_PRESENT) != 0
                self.count_skipped("pages swapped out", int(((entries & PM_SWAP) != 0).sum()))
                self.count_skipped(
                    "pages never touched", int((~present & ((entries & PM_SWAP) == 0)).sum())
                )
                self.count_skipped("pages not readable", (hi - lo) - len(entries))
                if self.seen_pfns is not None:
                    present &= ~self._seen_before(entries, present)
                for a, b in _runs(present):
                    yield (lo + a) * ps, b - a

    def _seen_before(self, entries: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Resident pages shared with a process read before (same page frame).

        A page frame shared by several processes (copy-on-write after fork) is
        swapped out, and stored in zram, once.  Only pages not mapped exclusively
        can be shared, and their pfn is visible to root only (0 otherwise).
        """
        assert self.seen_pfns is not None
        shared = np.flatnonzero(present & ((entries & PM_MMAP_EXCLUSIVE) == 0))
        dup = np.zeros(len(entries), dtype=bool)
        for i, pfn in zip(shared.tolist(), (entries[shared] & PM_PFN_MASK).tolist(), strict=True):
            if pfn == 0:
                continue  # no pfn without CAP_SYS_ADMIN: cannot tell, keep it
            if pfn in self.seen_pfns:
                dup[i] = True
            else:
                self.seen_pfns.add(pfn)
        self.count_skipped("pages shared with a process read before", int(dup.sum()))
        return dup

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

    def read_pages(self, out: np.ndarray) -> int:
        n = 0
        while n < len(out):
            if self._carry is None:
                self._carry = next(self._pending, None)
                if self._carry is None:
                    break
            addr, count = self._carry
            take = min(count, len(out) - n)
            n += self._read_run(addr, out[n : n + take])
            self._carry = None if take == count else (addr + take * self.page_size, count - take)
        self.pages += n
        return n

    def close(self) -> None:
        for fd in (self._mem_fd, self._pagemap_fd):
            if fd >= 0:
                os.close(fd)
        self._mem_fd = self._pagemap_fd = -1


def rss_anon_pages(pid: int, page_size: int) -> int:
    """Resident anonymous pages, from /proc/PID/status (RssAnon): a good guess."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024 // page_size
    except OSError:
        return 0
    return 0


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

    def __init__(
        self,
        page_size: int,
        pids: list[int] | None = None,
        seen_pfns: set[int] | None = None,
    ) -> None:
        super().__init__("all processes", page_size)
        # Page frames already read: a copy-on-write page shared by several processes
        # counts once, as it would be swapped out once.
        self.seen_pfns = set() if seen_pfns is None else seen_pfns
        self.pids = [p for p in (candidate_pids() if pids is None else pids) if p != os.getpid()]
        self.readable = 0
        self.unreadable = 0
        self.kernel_threads = 0

    def total_pages(self) -> int | None:
        return sum(rss_anon_pages(pid, self.page_size) for pid in self.pids)

    def parts(self) -> Iterator[PageSource]:
        for pid in self.pids:
            if is_kernel_thread(pid):
                self.kernel_threads += 1
                continue
            try:
                src = ProcessSource(pid, self.page_size, self.seen_pfns)
            except InputError:
                self.unreadable += 1
                continue
            self.readable += 1
            self.label = (
                f"{self.readable} processes read, {self.unreadable} exited or unreadable, "
                f"{self.kernel_threads} kernel threads"
            )
            yield src
