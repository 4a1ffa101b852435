"""Which pages of a process swap could take, and the swap layer's zero map.

The expected answers are the kernel's rules as its sources state them (Linux
6.18): reclaim swaps anonymous and shmem pages of any mapping and never
mlocked, hugetlbfs, device-mapped or zero-page mappings, nor MADV_FREE'd pages
(mm/vmscan.c, mm/rmap.c); swap_writeout() keeps zero-filled folios in the zero
map (mm/page_io.c, 6.12+).  tests/kernel/test_swap_live.py checks the sum of it
against a real swap-out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zsmalloc.errors import InputError
from zsmalloc.estimate import swappable
from zsmalloc.estimate.driver import run_estimate
from zsmalloc.estimate.process import ProcessSource
from zsmalloc.estimate.report import build_report
from zsmalloc.estimate.sources import ArraySource
from zsmalloc.estimate.swap import BLOCK_RULES, SwapRules, drop_zero_pages, zero_filled
from zsmalloc.estimate.swappable import (
    FOLIO,
    KPF_ANON,
    KPF_COMPOUND_HEAD,
    KPF_COMPOUND_TAIL,
    KPF_HUGE,
    KPF_MLOCKED,
    KPF_SWAPBACKED,
    KPF_THP,
    KPF_UNEVICTABLE,
    KPF_ZERO_PAGE,
    MAYBE_ZERO,
    PM_FILE,
    PM_MMAP_EXCLUSIVE,
    PM_PRESENT,
    PM_SWAP,
    SINGLE,
    SWAPPED_KINDS,
    Extent,
    Page,
    classify,
    extents,
    parse_smaps,
    whole_folios,
)
from zsmalloc.profile import VERSIONS, KernelProfile

PAGE = 4096
TMPFS_DEV = (0, 23)  # /dev/shm's device in the smaps text below (00:17)

SMAPS = """\
55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]
Size:                132 kB
Rss:                  64 kB
Anonymous:            64 kB
AnonHugePages:         0 kB
VmFlags: rd wr mr mw me ac sd
7f0000300000-7f0000400000 rw-p 00001000 08:01 4242                       /usr/lib/libc.so.6
Rss:                  16 kB
Anonymous:             8 kB
VmFlags: rd wr mr mw me ac sd
7f0000400000-7f0000500000 r--p 00000000 08:01 4242                       /usr/lib/libc.so.6
Rss:                 100 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
7f0000500000-7f0000600000 r--p 00002000 08:01 4243                       /usr/lib/libm.so.6
Rss:                  12 kB
Anonymous:            12 kB
VmFlags: rd mr mw me ac sd
7f0000200000-7f0000300000 rw-s 00000000 00:01 1234                       /dev/zero (deleted)
Rss:                   8 kB
Anonymous:             0 kB
VmFlags: rd wr sh mr mw me ms sd
7f0000600000-7f0000700000 rw-s 00000000 00:17 77                         /dev/shm/buf
Rss:                  20 kB
Anonymous:             0 kB
VmFlags: rd wr sh mr mw me ms sd
7f0000700000-7f0000800000 rw-p 00000000 00:00 0
Rss:                1024 kB
Anonymous:          1024 kB
AnonHugePages:      2048 kB
VmFlags: rd wr mr mw me lo ac sd hg
7f0000800000-7f0000a00000 rw-s 00000000 00:0f 99                         /anon_hugepage (deleted)
Rss:                   0 kB
Shared_Hugetlb:     2048 kB
VmFlags: rd wr sh mr mw me ms de ht sd
7f0000a00000-7f0000b00000 rw-s 00000000 00:06 55                         /dev/dri/card0
Rss:                  64 kB
VmFlags: rd wr sh mr mw me ms io pf de dd sd
7ffd00100000-7ffd00102000 r--p 00000000 00:00 0                          [vvar]
Rss:                   8 kB
VmFlags: rd mr pf io de dd sd
7ffd00200000-7ffd00300000 rw-p 00000000 00:00 0
Rss:                   0 kB
Anonymous:             0 kB
VmFlags: rd wr mr mw me ac sd
"""


def test_smaps_mappings_their_flags_and_which_to_walk() -> None:
    vmas = list(parse_smaps(SMAPS.splitlines(keepends=True)))
    assert len(vmas) == 11
    heap = vmas[0]
    assert (heap.start, heap.end, heap.name) == (0x55D0C0000000, 0x55D0C0021000, "[heap]")
    assert heap.vm_flags == {"rd", "wr", "mr", "mw", "me", "ac", "sd"}
    assert heap.sizes_kb["Anonymous"] == 64 and heap.anonymous
    shmem_devs = frozenset([TMPFS_DEV])
    walked = {v.start: v.worth_walking(shmem_devs) for v in vmas}
    verdicts = {v.start: v.skip_reason() for v in vmas}
    assert walked == {
        0x55D0C0000000: True,  # heap
        0x7F0000300000: True,  # .data of a library: copy-on-write pages are anonymous
        0x7F0000400000: False,  # read-only text, no anonymous page: page cache only
        0x7F0000500000: True,  # RELRO: written at load time, then made read-only
        0x7F0000200000: True,  # shared anonymous memory: shmem
        0x7F0000600000: True,  # a tmpfs file: shmem
        0x7F0000700000: True,  # mlocked: walked to count what stays
        0x7F0000800000: False,  # hugetlbfs with nothing in Rss
        0x7F0000A00000: True,  # a device mapping: walked to count what stays
        0x7FFD00100000: False,  # [vvar]: the kernel's
        0x7FFD00200000: False,  # nothing resident
    }
    assert verdicts[0x7F0000700000] == Page.MLOCKED
    assert verdicts[0x7F0000800000] == Page.HUGETLB
    assert verdicts[0x7F0000A00000] == Page.DEVICE
    assert verdicts[0x55D0C0000000] is None and verdicts[0x7F0000200000] is None
    assert vmas[4].shmem(shmem_devs) and vmas[5].shmem(shmem_devs)
    assert not vmas[5].shmem(frozenset())  # a tmpfs file is known by its mount
    assert vmas[6].thp_pages_kb == 2048


def entries(*flags: np.uint64, pfn0: int = 0x1000) -> np.ndarray:
    e = np.array(flags, dtype=np.uint64)
    present = (e & PM_PRESENT) != 0
    e[present] |= np.arange(pfn0, pfn0 + len(e), dtype=np.uint64)[present]
    return e


P, X, F, S = PM_PRESENT, PM_MMAP_EXCLUSIVE, PM_FILE, PM_SWAP
ANON_VMA, MLOCK_VMA, SHMEM_VMA, DEV_VMA = (
    next(v for v in parse_smaps(SMAPS.splitlines(keepends=True)) if v.start == a)
    for a in (0x55D0C0000000, 0x7F0000700000, 0x7F0000200000, 0x7F0000A00000)
)


def test_pages_without_page_flags() -> None:
    """Not root: pagemap alone.  An exclusive present page that pagemap does not call a
    file page is anonymous; a shared one may be the zero page (its content tells);
    a 'file' page in anonymous memory can only be the huge zero page."""
    e = entries(P | X, P | F, P, S, np.uint64(0))
    codes = classify(e, ANON_VMA, None, frozenset())
    assert codes.tolist() == [
        Page.ANON,
        Page.ZERO_PAGE,
        Page.MAYBE_ZERO_PAGE,
        Page.SWAPPED,
        Page.UNTOUCHED,
    ]
    shm = classify(entries(P | F | X, np.uint64(0)), SHMEM_VMA, None, frozenset())
    assert shm.tolist() == [Page.SHMEM, Page.UNTOUCHED]
    locked = classify(entries(P | X, P | F), MLOCK_VMA, None, frozenset())
    assert locked.tolist() == [Page.MLOCKED, Page.ZERO_PAGE]
    dev = classify(entries(P, P | F, np.uint64(0)), DEV_VMA, None, frozenset())
    assert dev.tolist() == [Page.DEVICE, Page.DEVICE, Page.NOT_COUNTED]


def test_pages_with_page_flags() -> None:
    """Root: /proc/kpageflags decides, page by page."""
    e = entries(*([P | X] * 7), P, np.uint64(0))
    k = np.array(
        [
            KPF_ANON | KPF_SWAPBACKED,  # anonymous: swapped
            KPF_SWAPBACKED,  # shmem (swap-backed, not anonymous): swapped
            KPF_ANON,  # MADV_FREE'd (no longer swap-backed): discarded
            KPF_ANON | KPF_SWAPBACKED | KPF_MLOCKED | KPF_UNEVICTABLE,  # mlocked elsewhere
            KPF_ZERO_PAGE,
            KPF_HUGE | KPF_COMPOUND_HEAD,  # hugetlbfs
            np.uint64(0),  # page cache of a private file mapping, not copied yet
            KPF_ANON | KPF_SWAPBACKED,  # anonymous, shared after fork: still swapped
            np.uint64(0),
        ],
        dtype=np.uint64,
    )
    codes = classify(e, ANON_VMA, k, frozenset())
    assert codes.tolist() == [
        Page.ANON,
        Page.SHMEM,
        Page.NOT_SWAPBACKED,
        Page.MLOCKED,
        Page.ZERO_PAGE,
        Page.HUGETLB,
        Page.NOT_COUNTED,
        Page.ANON,
        Page.UNTOUCHED,
    ]


class FakeKPageFlags:
    """kpageflags of a few frames (``one`` is all whole_folios needs)."""

    def __init__(self, flags: dict[int, int]) -> None:
        self.flags = flags

    def one(self, pfn: int) -> int:
        return self.flags.get(pfn, 0)


@given(pfns=st.lists(st.integers(0, 3000), max_size=400), entries=st.integers(0, 2000))
def test_kpageflags_read_is_one_entry_per_pfn(
    pfns: list[int], entries: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """KPageFlags.read() gives each pfn its own entry of the file, in the caller's order
    (duplicates, neighbours, pfns the read spans skip over), and 0 past the file's end."""
    table = (np.arange(entries, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
    path = tmp_path_factory.mktemp("kpf") / "kpageflags"
    path.write_bytes(table.tobytes())
    kpf = swappable.KPageFlags.__new__(swappable.KPageFlags)
    kpf.fd = os.open(path, os.O_RDONLY)
    try:
        got = kpf.read(np.array(pfns, dtype=np.uint64))
    finally:
        kpf.close()
    assert got.dtype == np.uint64
    assert got.tolist() == [int(table[p]) if p < entries else 0 for p in pfns]


def thp_flags(n: int) -> list[np.uint64]:
    head = KPF_ANON | KPF_SWAPBACKED | KPF_THP | KPF_COMPOUND_HEAD
    tail = KPF_ANON | KPF_SWAPBACKED | KPF_THP | KPF_COMPOUND_TAIL
    return [head] + [tail] * (n - 1)


def test_a_thp_mapped_whole_is_one_folio_and_a_partial_one_is_pages() -> None:
    anon = KPF_ANON | KPF_SWAPBACKED
    # 3 single pages, a whole 8-page THP, then 4 pages of another THP whose frames go on.
    kflags = np.array([anon] * 3 + thp_flags(8) + thp_flags(4), dtype=np.uint64)
    pfns = np.arange(100, 100 + len(kflags), dtype=np.uint64)
    pfns[:3] = [7, 9, 11]
    e = (pfns | PM_PRESENT | PM_MMAP_EXCLUSIVE).astype(np.uint64)
    codes = classify(e, ANON_VMA, kflags, frozenset())
    tail = int(KPF_ANON | KPF_SWAPBACKED | KPF_THP | KPF_COMPOUND_TAIL)
    kpf = FakeKPageFlags({111: 0, 115: tail})  # after the first THP: nothing; the second: a tail
    group = whole_folios(codes, pfns, kflags, kpf)  # type: ignore[arg-type]
    assert group.tolist() == [0] * 3 + [1] * 8 + [0] * 4
    assert extents(codes, group) == [
        Extent(0, 3, SINGLE),
        Extent(3, 8, FOLIO),
        Extent(11, 4, SINGLE),
    ]


def test_a_thp_seen_from_a_tail_is_pages() -> None:
    kflags = np.array(thp_flags(8)[2:], dtype=np.uint64)  # mapped from its third page
    pfns = np.arange(202, 208, dtype=np.uint64)
    e = (pfns | PM_PRESENT).astype(np.uint64)
    codes = classify(e, ANON_VMA, kflags, frozenset())
    group = whole_folios(codes, pfns, kflags, FakeKPageFlags({}))  # type: ignore[arg-type]
    assert not group.any()


def test_extents_keep_address_order_and_kinds() -> None:
    codes = np.array(
        [Page.UNTOUCHED, Page.ANON, Page.ANON, Page.MAYBE_ZERO_PAGE, Page.SHMEM, Page.MLOCKED],
        dtype=np.uint8,
    )
    assert extents(codes) == [Extent(1, 2, SINGLE), Extent(3, 1, MAYBE_ZERO), Extent(4, 1, SINGLE)]


# ---- the swap layer ---------------------------------------------------------------------


def test_zero_map_by_kernel() -> None:
    """The zero map came with 6.12 (mm/page_io.c: swap_zeromap_folio_set)."""
    for v in VERSIONS:
        rules = SwapRules("swap", KernelProfile(v))
        assert rules.zero_map == (v not in ("6.1", "6.6"))
        assert v in rules.describe()
    assert not SwapRules("block").zero_map
    with pytest.raises(InputError, match="expected one of swap, block"):
        SwapRules("tape")


@given(st.lists(st.sampled_from(["zero", "ones", "data"]), max_size=40))
def test_drop_zero_pages_keeps_the_others_in_order(kinds: list[str]) -> None:
    pages = np.zeros((len(kinds), PAGE), dtype=np.uint8)
    for i, k in enumerate(kinds):
        if k == "ones":
            pages[i] = 0xFF
        elif k == "data":
            pages[i, i % PAGE] = i + 1
    before = pages.copy()
    assert zero_filled(pages).tolist() == [k == "zero" for k in kinds]
    kept = drop_zero_pages(pages)
    nonzero = [i for i, k in enumerate(kinds) if k != "zero"]
    assert kept == len(nonzero)
    assert np.array_equal(pages[:kept], before[nonzero])


def mixed_pages() -> np.ndarray:
    """data, zeros, data, zeros, 0xff: two zero-filled pages and one other same-filled."""
    rng = np.random.default_rng(7)
    pages = np.zeros((5, PAGE), dtype=np.uint8)
    pages[0] = rng.integers(0, 4, PAGE)
    pages[2] = rng.integers(0, 256, PAGE)
    pages[4] = 0xFF
    return pages


def test_a_file_as_swap_leaves_zero_pages_in_the_zero_map() -> None:
    src = ArraySource(mixed_pages(), PAGE)
    src.rules = SwapRules("swap")
    tally = run_estimate([src], ["lz4"], zswap=True)
    # zram sees three pages; the 0xff one is zram's own same-filled page.
    assert (tally.pages, tally.same_pages, tally.zero_map_pages) == (3, 1, 2)
    assert tally.sources[0].pages == 3 and tally.sources[0].zero_map_pages == 2
    rep = build_report(tally)
    mm = rep.algos["lz4"].mm_stat
    assert (mm.orig_data_size, mm.same_pages) == (3 * PAGE, 1)
    z = rep.algos["lz4"].zswap
    assert z is not None and (z["zero_pages"], z["stored_pages"]) == (2, 3)
    d = rep.algos["lz4"].derived()
    assert d["zero_map_pages"] == 2 and d["swapped_out_bytes"] == 5 * PAGE
    j = rep.to_json()["input"]
    assert j["zero_map_pages"] == 2 and j["zram_used_as"][0]["mode"] == "swap"


def test_a_file_as_a_block_device_writes_every_page() -> None:
    tally = run_estimate([ArraySource(mixed_pages(), PAGE)], ["lz4"])
    assert (tally.pages, tally.same_pages, tally.zero_map_pages) == (5, 3, 0)
    assert tally.rules == [BLOCK_RULES]


def test_before_612_swap_has_no_zero_map() -> None:
    src = ArraySource(mixed_pages(), PAGE)
    src.rules = SwapRules("swap", KernelProfile("6.6"))
    tally = run_estimate([src], ["lz4"])
    assert (tally.pages, tally.same_pages, tally.zero_map_pages) == (5, 3, 0)


# ---- a real process ---------------------------------------------------------------------

CHILD = r"""
import ctypes, mmap, os, sys, tempfile
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
PAGE, MiB = mmap.PAGESIZE, 1 << 20
buf = bytearray(PAGE)
mv = memoryview(buf)
def marked(tag, i):
    # One page of (tag, 7 x byte) built in place: no page-sized temporary objects
    # whose freed copies would linger, readable, in the heap.
    mv[0:9] = tag
    mv[9:16] = bytes([i % 251 + 1]) * 7
    n = 16
    while n < PAGE:
        mv[n:2 * n] = mv[0:n]
        n *= 2
    return buf
keep = []
a = mmap.mmap(-1, 16 * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(8):                                  # 8 anonymous pages
    a[i * PAGE:(i + 1) * PAGE] = marked(b"anonymous", i)
for i in range(8, 12):                              # 4 written zero-filled pages
    a[i * PAGE:(i + 1) * PAGE] = bytes(PAGE)
for i in range(12, 16):                             # 4 pages only read: the zero page
    a[i * PAGE]
f = tempfile.TemporaryFile()
for i in range(8):
    f.write(marked(b"file-page", i))
f.flush()
fm = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE)
for i in range(8):                                  # all read; 4 written: copy-on-write
    fm[i * PAGE]
for i in range(4):
    fm[i * PAGE:(i + 1) * PAGE] = marked(b"copied--!", i)
sh = mmap.mmap(-1, 4 * PAGE)                        # shared anonymous: shmem
for i in range(4):
    sh[i * PAGE:(i + 1) * PAGE] = marked(b"shmem-pg!", i)
lk = mmap.mmap(-1, 4 * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(4):
    lk[i * PAGE:(i + 1) * PAGE] = marked(b"mlocked!!", i)
libc = ctypes.CDLL(None, use_errno=True)
locked = libc.mlock(ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(lk))),
                    ctypes.c_size_t(4 * PAGE)) == 0
fr = mmap.mmap(-1, 4 * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(4):
    fr[i * PAGE:(i + 1) * PAGE] = marked(b"lazyfree!", i)
fr.madvise(mmap.MADV_FREE)
# Two THPs if the kernel gives them: one half data, half zeros; one all zeros.
t = mmap.mmap(-1, 6 * MiB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
base = ctypes.addressof(ctypes.c_char.from_buffer(t))
off = (-base) % (2 * MiB)
t.madvise(mmap.MADV_HUGEPAGE)
for i in range(256):
    t[off + i * PAGE:off + (i + 1) * PAGE] = marked(b"thp-data!", i)
t[off + 256 * PAGE:off + 4 * MiB] = bytes(4 * MiB - 256 * PAGE)
cold = mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
cold[0] = 1
cold.madvise(getattr(mmap, "MADV_COLD", 20))        # drains this CPU's LRU batches
buf[:] = bytes(PAGE)
keep += [a, f, fm, sh, lk, fr, t, cold]
print(int(locked), base + off, flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def child() -> object:
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None
    locked, thp_addr = (int(x) for x in p.stdout.readline().split())
    yield p.pid, bool(locked), thp_addr
    p.kill()
    p.wait()


def read_all(src: ProcessSource) -> np.ndarray:
    out, buf = [], np.empty((64, PAGE), dtype=np.uint8)
    while True:
        n = src.read_pages(buf)
        out.append(buf[:n].copy())
        if n < len(buf):
            break
    src.close()
    return np.concatenate(out)


def tags(pages: np.ndarray) -> dict[bytes, int]:
    """How many whole pages of each CHILD marker: (tag, 7 equal bytes) repeated."""
    counts: dict[bytes, int] = {}
    for p in pages:
        tag = p[:9].tobytes()
        if p[9:16].tobytes() == bytes([p[9]]) * 7 and np.array_equal(p, np.tile(p[:16], 256)):
            counts[tag] = counts.get(tag, 0) + 1
    return counts


def thp_mapped(pid: int, addr: int) -> bool:
    """Whether the kernel backed ``addr`` with a THP (smaps: AnonHugePages there)."""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            inside = lo <= addr < hi
        elif inside and parts[0] == "AnonHugePages:":
            return int(parts[1]) >= 4096
    return False


def source(pid: int, rules: SwapRules) -> ProcessSource:
    try:
        return ProcessSource(pid, PAGE, rules=rules)
    except InputError as exc:  # e.g. Yama ptrace_scope forbids it here
        pytest.skip(str(exc))


def test_a_process_gives_what_swap_would_take(child: tuple[int, bool, int]) -> None:
    pid, locked, thp_addr = child
    src = source(pid, SwapRules("swap"))
    got = tags(read_all(src))
    root = os.geteuid() == 0
    # Anonymous pages, copies of file pages, shmem: all swapped; the file pages
    # not written stay page cache; mlocked pages stay in RAM.
    assert got.get(b"anonymous") == 8
    assert got.get(b"copied--!") == 4 and b"file-page" not in got
    assert got.get(b"shmem-pg!") == 4
    assert src.shmem_pages == 4  # the one shared anonymous mapping
    assert b"mlocked!!" not in got or not locked
    if locked:
        assert src.skipped["mlocked pages (never swapped)"] >= 4
    zero_page = sum(v for k, v in src.skipped.items() if k.startswith("shared zero page"))
    assert zero_page >= 4
    assert src.zero_map_pages >= 4  # the written zero-filled pages: the zero map
    if root:  # page flags tell MADV_FREE'd pages (no longer swap-backed)
        assert b"lazyfree!" not in got
        assert src.skipped["MADV_FREE'd or droppable pages (discarded, not swapped)"] >= 4
    if root and thp_mapped(pid, thp_addr):
        assert got.get(b"thp-data!") == 256
        assert src.thp_pages >= 1024  # both THPs read whole
        assert src.zero_thp_pages >= 512  # the all-zero one: the zero map
        # The half-zero THP reaches zram whole: its 256 zero-filled pages with it.
        pages = read_all(source(pid, SwapRules("swap")))
        assert int(zero_filled(pages).sum()) >= 256


def test_as_a_block_device_zero_pages_are_written(child: tuple[int, bool, int]) -> None:
    pid, _, _ = child
    swap = source(pid, SwapRules("swap"))
    n_swap = len(read_all(swap))
    block = source(pid, BLOCK_RULES)
    pages = read_all(block)
    assert block.zero_map_pages == block.zero_thp_pages == 0
    assert len(pages) == n_swap + swap.zero_map_pages + swap.zero_thp_pages
    assert int(zero_filled(pages).sum()) >= 4


def test_the_cli_says_which_device_and_rules(child: tuple[int, bool, int], tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from zsmalloc.cli.main import cli

    pid, _, _ = child
    r = CliRunner().invoke(cli, ["estimate", "--pid", str(pid), "--algo", "lz4"])
    if r.exit_code == 2 and "cannot read" in r.output:
        pytest.skip(r.output)
    assert r.exit_code == 0, r.output
    assert "zram used as a swap device, Linux 6.18 swap rules" in r.output
    assert "swap zero map:" in r.output and "mlocked pages" in r.output
    img = tmp_path / "img"
    img.write_bytes(mixed_pages().tobytes())
    r = CliRunner().invoke(cli, ["estimate", str(img), "--as", "swap", "--algo", "lz4", "--json"])
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)["input"]
    assert (j["pages"], j["zero_map_pages"], j["same_filled_pages"]) == (3, 2, 1)
    r = CliRunner().invoke(cli, ["estimate", str(img), "--algo", "lz4", "--json"])
    j = json.loads(r.output)["input"]
    assert (j["pages"], j["zero_map_pages"]) == (5, 0)
    assert j["zram_used_as"][0]["mode"] == "block"
    r = CliRunner().invoke(cli, ["estimate", str(img), "--as", "tape"])
    assert r.exit_code == 2 and "tape" in r.output


def as_nobody_with_child(probe: object) -> dict[str, object]:
    """Become nobody, fork CHILD's process (one's own: readable without root), and
    return ``probe(pid)``'s JSON answer."""
    import ctypes
    import json

    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the nobody user")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            to_child, _held_open = os.pipe()  # the child reads it till we kill it
            from_child, to_parent = os.pipe()
            grandchild = os.fork()
            if grandchild == 0:
                # Changing uid made the memory undumpable (root-owned /proc files).
                ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
                sys.stdin = os.fdopen(to_child)
                sys.stdout = os.fdopen(to_parent, "w")
                exec(CHILD, {"__name__": "__main__"})
                os._exit(0)
            os.close(to_child)
            with os.fdopen(from_child) as f:
                f.readline()
                answer = probe(grandchild)  # type: ignore[operator]
            os.kill(grandchild, 9)
            os.write(w, json.dumps(answer).encode())
            code = 0
        except BaseException as exc:
            os.write(w, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return json.loads(out)  # type: ignore[no-any-return]


def test_without_root_mappings_and_contents_decide() -> None:
    from zsmalloc.estimate.process import NO_PAGE_FLAGS

    def probe(pid: int) -> dict[str, object]:
        src = ProcessSource(pid, PAGE, rules=SwapRules("swap"))
        got = tags(read_all(src))
        return {
            "tags": {k.decode(errors="replace"): v for k, v in got.items()},
            "skipped": src.skipped,
            "zero_map": src.zero_map_pages,
            "thp": src.thp_pages,
            "shmem": src.shmem_pages,
            "notes": src.notes,
        }

    a = as_nobody_with_child(probe)
    assert "error" not in a, a
    got = a["tags"]
    assert isinstance(got, dict)
    assert (got.get("anonymous"), got.get("copied--!"), got.get("shmem-pg!")) == (8, 4, 4)
    assert "file-page" not in got and "mlocked!!" not in got
    skipped = a["skipped"]
    assert isinstance(skipped, dict)
    assert sum(v for k, v in skipped.items() if k.startswith("shared zero page")) >= 4
    assert skipped["mlocked pages (never swapped)"] >= 4
    assert isinstance(a["zero_map"], int) and a["zero_map"] >= 4
    notes = a["notes"]
    assert isinstance(notes, list) and notes[0] == NO_PAGE_FLAGS
    assert a["thp"] == 0 and all("kB of THPs here" in n for n in notes[1:])  # page by page
    assert a["shmem"] == 4  # known by its mapping: /dev/zero (deleted)


@given(
    batches=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from([int(k) for k in Page]),
                st.integers(0, 12),  # few frames: shared ones repeat
                st.booleans(),  # mapped exclusively
            ),
            max_size=40,
        ),
        max_size=4,
    )
)
def test_a_shared_frame_is_counted_at_its_first_mapping_only(
    batches: list[list[tuple[int, int, bool]]],
) -> None:
    """Over batches (of one process or several), the first mapping of a frame that is not
    mapped exclusively keeps its kind, every later one is SEEN; exclusive pages, pages of
    other kinds and pages whose frame is hidden (pfn 0, not root) are left alone."""
    from types import SimpleNamespace

    holder = SimpleNamespace(seen_pfns=set())
    seen: set[int] = set()
    for batch in batches:
        codes = np.array([c for c, _, _ in batch], dtype=np.uint8)
        entries = np.array(
            [pfn | PM_PRESENT | (PM_MMAP_EXCLUSIVE if excl else 0) for _, pfn, excl in batch],
            dtype=np.uint64,
        )
        want = codes.copy()
        for i, (code, pfn, excl) in enumerate(batch):
            if code in SWAPPED_KINDS and not excl and pfn:
                if pfn in seen:
                    want[i] = Page.SEEN
                seen.add(pfn)
        ProcessSource._mark_seen(holder, codes, entries)  # type: ignore[arg-type]
        assert codes.tolist() == want.tolist()
        assert holder.seen_pfns == seen
