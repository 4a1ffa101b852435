"""Which pages of a process swap could take, and why the others stay.

Reclaim swaps out *swap-backed* pages: anonymous pages (heap, stacks, the
copy-on-write copies a process made of its libraries' ``.data`` and RELRO
pages and of any private file mapping it wrote to) and shmem pages (shared
anonymous mappings, memfd, tmpfs and SysV shared memory).  It never swaps
page-cache pages (it drops or writes them back to their files), and it leaves
alone what it may not touch:

==========================================  ====================================
skipped                                     why (Linux 6.18)
==========================================  ====================================
mlocked (``VM_LOCKED``, ``PG_mlocked``,      on the unevictable LRU: reclaim never
SHM_LOCK)                                    sees them
hugetlbfs pages (``VM_HUGETLB``)             not on any LRU; never swapped
device and PFN mappings (``VM_IO``,          no ``struct page`` to swap (or the
``VM_PFNMAP``)                               driver's own pages)
the shared zero page                         a read of untouched anonymous memory
                                             maps it: nothing of the process
MADV_FREE'd pages, ``VM_DROPPABLE``          not swap-backed: reclaim discards them
==========================================  ====================================

Kernel special mappings (``[vdso]``, ``[vvar]``...) are not looked at.

Where the answer comes from, per page:

* ``/proc/PID/smaps`` gives each mapping and its ``VmFlags`` (``lo`` VM_LOCKED,
  ``ht`` hugetlb, ``io``/``pf`` device, ``dp`` droppable) and its resident and
  anonymous sizes, so mappings with nothing resident are never walked;
* ``/proc/PID/pagemap`` says per page: present (bit 63), swapped (62),
  file-page-or-shared-anon (61: *not* an anonymous page), mapped exclusively
  (56), and the page frame number (root only);
* ``/proc/kpageflags`` (root only) says per page frame: anonymous, swap-backed
  (so shmem is swap-backed and not anonymous), mlocked, unevictable, hugetlb,
  the zero page, and the head and tail pages of a large folio (THP).

Without root there are no frame numbers and no page flags: anonymous pages are
the present pages that pagemap does not call file pages, shmem is recognised by
its mapping (a tmpfs file, ``/dev/zero (deleted)``, ``/memfd:``, ``/SYSV``),
mlock by ``VM_LOCKED`` alone, and a present anonymous page that is not mapped
exclusively and reads as zeros is taken for the shared zero page.  THPs cannot
be told apart: every page counts as its own folio (:attr:`Vma.thp_pages` says
how much that may concern).

Pages are classified a pagemap batch at a time, vectorised with numpy
(:func:`classify`), and grouped into the extents the process source reads
(:func:`extents`): runs of single pages, and whole THPs, which the swap layer
treats as one folio (:mod:`zsmalloc.estimate.swap`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Final

import numpy as np

# ---- /proc/PID/pagemap (Documentation/admin-guide/mm/pagemap.rst) ---------------------
PM_PRESENT: Final = np.uint64(1 << 63)
PM_SWAP: Final = np.uint64(1 << 62)
PM_FILE: Final = np.uint64(1 << 61)  # file page or shared anonymous (shmem): not PageAnon
PM_MMAP_EXCLUSIVE: Final = np.uint64(1 << 56)
PM_PFN_MASK: Final = np.uint64((1 << 55) - 1)

# ---- /proc/kpageflags (include/uapi/linux/kernel-page-flags.h; 33 is kernel-internal) --
KPF_ANON: Final = np.uint64(1 << 12)
KPF_SWAPBACKED: Final = np.uint64(1 << 14)
KPF_COMPOUND_HEAD: Final = np.uint64(1 << 15)
KPF_COMPOUND_TAIL: Final = np.uint64(1 << 16)
KPF_HUGE: Final = np.uint64(1 << 17)  # hugetlbfs
KPF_UNEVICTABLE: Final = np.uint64(1 << 18)
KPF_NOPAGE: Final = np.uint64(1 << 20)
KPF_THP: Final = np.uint64(1 << 22)  # any large anonymous (or shmem) folio, not only 2 MiB
KPF_ZERO_PAGE: Final = np.uint64(1 << 24)
KPF_MLOCKED: Final = np.uint64(1 << 33)
KPAGEFLAGS = "/proc/kpageflags"
KPF_GAP: Final = 8
"""pfns at most this far apart are read from kpageflags in one call (fewest calls plus
entries read and dropped, measured over all processes of a machine)."""

# Mappings the kernel makes for itself (install_special_mapping): never process memory.
SPECIAL_MAPPINGS: Final = frozenset(
    ["[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]", "[uprobes]", "[sigpage]", "[vectors]"]
)
# Names of shmem mappings that live on the kernel's internal shm mount (no mount point).
SHMEM_NAMES: Final = ("/dev/zero (deleted)", "/memfd:", "/SYSV", "[anon_shmem")
SHMEM_FILESYSTEMS: Final = frozenset(["tmpfs", "shmem"])


class Page(IntEnum):
    """What one pagemap entry is to swap: a page it takes, or why not (``LABELS``)."""

    NOT_COUNTED = 0  # not in RAM and not ours to count (a file mapping's holes...)
    ANON = 1  # anonymous, swap-backed: swapped
    SHMEM = 2  # shmem: swapped
    MAYBE_ZERO_PAGE = 3  # without root: anonymous, shared, to be read: zeros = the zero page
    UNTOUCHED = 4
    SWAPPED = 5
    ZERO_PAGE = 6
    MLOCKED = 7
    HUGETLB = 8
    DEVICE = 9
    NOT_SWAPBACKED = 10
    SEEN = 11  # shared with a process read before: swapped (and counted) once


LABELS: Final = {
    Page.UNTOUCHED: "pages never touched",
    Page.SWAPPED: "pages swapped out",
    Page.ZERO_PAGE: "shared zero page mappings (nothing to swap)",
    Page.MLOCKED: "mlocked pages (never swapped)",
    Page.HUGETLB: "hugetlbfs pages (never swapped)",
    Page.DEVICE: "device and PFN-mapped pages (not swappable)",
    Page.NOT_SWAPBACKED: "MADV_FREE'd or droppable pages (discarded, not swapped)",
    Page.SEEN: "pages shared with a process read before",
}
MAYBE_ZERO_LABEL: Final = "shared zero page mappings (nothing to swap; zeros, not exclusive)"
SWAPPED_KINDS: Final = (Page.ANON, Page.SHMEM, Page.MAYBE_ZERO_PAGE)


# ---- mappings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Vma:
    """One mapping of ``/proc/PID/smaps``: its range, backing, ``VmFlags`` and sizes (kB)."""

    start: int
    end: int
    perms: str
    dev: tuple[int, int]  # (major, minor) of the backing file's device
    inode: int
    name: str
    vm_flags: frozenset[str] = frozenset()
    sizes_kb: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def shared(self) -> bool:
        return self.perms[3:4] == "s"

    @property
    def anonymous(self) -> bool:
        """No file behind it: heap, stacks, ``[anon:...]`` and unnamed private mappings."""
        return self.inode == 0 and self.name not in SPECIAL_MAPPINGS

    def shmem(self, shmem_devs: frozenset[tuple[int, int]]) -> bool:
        """Backed by shmem: a tmpfs file, shared anonymous memory, memfd, SysV (by name)."""
        return self.inode != 0 and (self.dev in shmem_devs or self.name.startswith(SHMEM_NAMES))

    def skip_reason(self) -> Page | None:
        """Why reclaim never swaps anything in this whole mapping, or None."""
        f = self.vm_flags
        if "ht" in f:
            return Page.HUGETLB
        if "io" in f or "pf" in f:
            return Page.DEVICE
        if "lo" in f:
            return Page.MLOCKED
        if "dp" in f:
            return Page.NOT_SWAPBACKED
        return None

    def worth_walking(self, shmem_devs: frozenset[tuple[int, int]]) -> bool:
        """Could pagemap find a page swap takes (or one worth counting as skipped) here?"""
        resident = self.sizes_kb.get("Rss", 1) + self.sizes_kb.get("Swap", 0)
        if resident == 0 or self.name in SPECIAL_MAPPINGS:
            return False
        return (
            self.anonymous
            or self.skip_reason() is not None
            or self.shmem(shmem_devs)
            or self.sizes_kb.get("Anonymous", 1) > 0  # copy-on-write pages of a file
        )

    @property
    def thp_pages_kb(self) -> int:
        """AnonHugePages: anonymous THP memory here (kB), as smaps counts it."""
        return self.sizes_kb.get("AnonHugePages", 0)


def _vma_header(line: str) -> Vma | None:
    """A smaps/maps mapping line, or None for a field line."""
    parts = line.split(maxsplit=5)
    if len(parts) < 5 or "-" not in parts[0] or ":" not in parts[3]:
        return None
    try:
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        major, minor = (int(x, 16) for x in parts[3].split(":"))
        inode = int(parts[4])
    except ValueError:
        return None
    name = parts[5].strip() if len(parts) > 5 else ""
    return Vma(lo, hi, parts[1], (major, minor), inode, name)


def parse_smaps(lines: Iterable[str]) -> Iterator[Vma]:
    """The mappings of a ``/proc/PID/smaps`` (or ``maps``) text, one line at a time."""
    cur: Vma | None = None
    flags: frozenset[str] = frozenset()
    sizes: dict[str, int] = {}
    for line in lines:
        head = _vma_header(line)
        if head is not None:
            if cur is not None:
                yield replace(cur, vm_flags=flags, sizes_kb=sizes)
            cur, flags, sizes = head, frozenset(), {}
            continue
        key, _, value = line.partition(":")
        if key == "VmFlags":
            flags = frozenset(value.split())
        elif value.endswith(" kB\n") or value.endswith(" kB"):
            try:
                sizes[key] = int(value.split()[0])
            except ValueError:
                continue
    if cur is not None:
        yield replace(cur, vm_flags=flags, sizes_kb=sizes)


def shmem_devices(mountinfo: str = "/proc/self/mountinfo") -> frozenset[tuple[int, int]]:
    """(major, minor) of every tmpfs mount: its files' pages are shmem."""
    out = set()
    try:
        with open(mountinfo) as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) > 2 and right.split()[:1] and right.split()[0] in SHMEM_FILESYSTEMS:
                    major, minor = fields[2].split(":")
                    out.add((int(major), int(minor)))
    except (OSError, ValueError):
        pass
    return frozenset(out)


# ---- page flags ---------------------------------------------------------------------------


class KPageFlags:
    """``/proc/kpageflags`` (root only): the flags of page frames, read in runs."""

    def __init__(self) -> None:
        self.fd = os.open(KPAGEFLAGS, os.O_RDONLY)

    @staticmethod
    def available() -> bool:
        return os.access(KPAGEFLAGS, os.R_OK)

    def read(self, pfns: np.ndarray) -> np.ndarray:
        """Flags of each pfn (0 where it cannot be read).

        The pfns of a process are scattered over physical memory: one pread each costs
        a syscall and some numpy work (~7 us), while the kernel fills an entry in ~0.2 us.
        So pfns up to :data:`KPF_GAP` apart share one read (the entries between are read
        and dropped), every read lands in one buffer, and one gather picks the flags out.
        """
        out = np.zeros(len(pfns), dtype=np.uint64)
        if not len(pfns):
            return out
        order = np.argsort(pfns, kind="stable")
        sp = pfns[order].astype(np.int64)
        breaks = np.flatnonzero(np.diff(sp) > KPF_GAP) + 1
        starts = np.concatenate(([0], breaks))
        ends = np.concatenate((breaks, [len(sp)]))
        firsts = sp[starts]
        lens = sp[ends - 1] - firsts + 1
        offs = np.concatenate(([0], np.cumsum(lens)[:-1]))
        buf = np.zeros(int(lens.sum()), dtype=np.uint64)  # what no read reaches stays 0
        view = memoryview(buf.data).cast("B")
        spans = zip(
            firsts.tolist(),
            offs.tolist(),
            lens.tolist(),
            starts.tolist(),
            ends.tolist(),
            strict=True,
        )
        for first, off, n, lo, hi in spans:
            try:
                os.preadv(self.fd, [view[off * 8 : (off + n) * 8]], first * 8)
            except OSError:
                # Not seen on a live kernel; where a span fails its own pfns may not.
                for pfn in sp[lo:hi].tolist():
                    buf[off + pfn - first] = self.one(pfn)
        run = np.repeat(np.arange(len(starts)), ends - starts)
        out[order] = buf[offs[run] + sp - firsts[run]]
        return out

    def one(self, pfn: int) -> int:
        try:
            raw = os.pread(self.fd, 8, pfn * 8)
        except OSError:
            return 0
        return int.from_bytes(raw, "little") if len(raw) == 8 else 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def classify(
    entries: np.ndarray,
    vma: Vma,
    kflags: np.ndarray | None,
    shmem_devs: frozenset[tuple[int, int]],
) -> np.ndarray:
    """A :class:`Page` code per pagemap entry of ``vma`` (``kflags``: None without root)."""
    n = len(entries)
    present = (entries & PM_PRESENT) != 0
    swapped = ~present & ((entries & PM_SWAP) != 0)
    file_page = (entries & PM_FILE) != 0
    codes = np.full(n, Page.NOT_COUNTED, dtype=np.uint8)
    reason = vma.skip_reason()
    is_shmem = vma.shmem(shmem_devs)
    if reason is not None and reason != Page.MLOCKED:
        codes[present] = reason  # nothing here is swapped, whatever the page
        return codes
    codes[swapped] = Page.SWAPPED
    if vma.anonymous or is_shmem:
        codes[~present & ~swapped] = Page.UNTOUCHED
    if kflags is None:
        anon = present & ~file_page
        codes[anon] = Page.ANON
        if not vma.shared:  # the zero page is mapped read-only into private mappings only
            codes[anon & ((entries & PM_MMAP_EXCLUSIVE) == 0)] = Page.MAYBE_ZERO_PAGE
        if is_shmem:
            codes[present & file_page] = Page.SHMEM
        elif vma.anonymous:  # a "file" page in anonymous memory: the huge zero page
            codes[present & file_page] = Page.ZERO_PAGE
        if reason == Page.MLOCKED:
            codes[np.isin(codes, SWAPPED_KINDS)] = Page.MLOCKED
        return codes
    anon = (kflags & KPF_ANON) != 0
    backed = (kflags & KPF_SWAPBACKED) != 0
    codes[present & anon & backed] = Page.ANON
    codes[present & ~anon & backed] = Page.SHMEM
    codes[present & anon & ~backed] = Page.NOT_SWAPBACKED
    locked = (kflags & (KPF_MLOCKED | KPF_UNEVICTABLE)) != 0
    if reason == Page.MLOCKED:
        locked = np.ones(n, dtype=bool)
    codes[present & locked & np.isin(codes, SWAPPED_KINDS)] = Page.MLOCKED
    codes[present & ((kflags & KPF_HUGE) != 0)] = Page.HUGETLB
    codes[present & ((kflags & KPF_NOPAGE) != 0)] = Page.DEVICE
    codes[present & ((kflags & KPF_ZERO_PAGE) != 0)] = Page.ZERO_PAGE
    return codes


# ---- folios -------------------------------------------------------------------------------

SINGLE: Final = 0  # a run of pages, each its own folio
MAYBE_ZERO: Final = 1  # a run of single pages that may be the shared zero page (no root)
FOLIO: Final = 2  # one whole large folio (a THP), swapped as one


@dataclass(frozen=True)
class Extent:
    """A run of pages to read: ``nr_pages`` from page index ``first`` of a batch."""

    first: int
    nr_pages: int
    kind: int  # SINGLE, MAYBE_ZERO or FOLIO


def whole_folios(
    codes: np.ndarray,
    pfns: np.ndarray,
    kflags: np.ndarray,
    kpf: KPageFlags,
) -> np.ndarray:
    """Group id (> 0) of each page that belongs to a large folio this batch maps whole.

    A large folio is swapped as one only when reclaim finds it mapped whole; a
    partly mapped one is split first (shrink_folio_list()).  Here "whole" means
    its head page and every tail page up to the next frame that is not a tail,
    mapped in order at consecutive addresses within this batch.  0 elsewhere.
    """
    n = len(codes)
    group = np.zeros(n, dtype=np.int64)
    swappable = np.isin(codes, (Page.ANON, Page.SHMEM))
    thp = swappable & ((kflags & KPF_THP) != 0)
    idx = np.flatnonzero(thp)
    if not len(idx):
        return group
    pf = pfns[idx].astype(np.int64)
    head = (kflags[idx] & KPF_COMPOUND_HEAD) != 0
    starts = np.ones(len(idx), dtype=bool)
    starts[1:] = (np.diff(idx) != 1) | (np.diff(pf) != 1) | head[1:]
    first = np.flatnonzero(starts)
    stop = np.concatenate((first[1:], [len(idx)]))
    gid = 0
    for a, b in zip(first.tolist(), stop.tolist(), strict=True):
        if not head[a]:
            continue  # begins with a tail page: the folio is only partly mapped here
        after = kpf.one(int(pf[b - 1]) + 1)
        if after & int(KPF_COMPOUND_TAIL) and not after & int(KPF_COMPOUND_HEAD):
            continue  # the folio goes on beyond what is mapped here
        gid += 1
        group[idx[a:b]] = gid
    return group


def extents(codes: np.ndarray, group: np.ndarray | None = None) -> list[Extent]:
    """The runs to read, in address order: single pages, maybe-zero pages, whole folios."""
    kind = np.full(len(codes), -1, dtype=np.int64)
    kind[np.isin(codes, (Page.ANON, Page.SHMEM))] = SINGLE
    kind[codes == Page.MAYBE_ZERO_PAGE] = MAYBE_ZERO
    g = np.zeros(len(codes), dtype=np.int64) if group is None else group
    kind[g > 0] = FOLIO
    if not (kind >= 0).any():
        return []
    change = np.ones(len(codes), dtype=bool)
    change[1:] = (kind[1:] != kind[:-1]) | (g[1:] != g[:-1])
    starts = np.flatnonzero(change)
    stops = np.concatenate((starts[1:], [len(codes)]))
    return [
        Extent(int(a), int(b - a), int(kind[a]))
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True)
        if kind[a] >= 0
    ]
