"""The zram device model: kernel-recorded mm_stat, data integrity, counter invariants."""

from __future__ import annotations

import errno
import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from zsmalloc.errors import OutOfMemoryError, SysfsError, ZsmallocError
from zsmalloc.zram.device import Zram
from zsmalloc.zram.stats import MmStat

PAGE = 4096


def same_except(before: MmStat, after: MmStat, *moved: str) -> bool:
    """Every mm_stat column but ``moved`` equal."""
    keep = {name: 0 for name in moved}
    return before._replace(**keep) == after._replace(**keep)


def shared_pages(testdata: Path) -> bytes:
    return gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())


def kernel_rows(testdata: Path) -> dict[str, MmStat]:
    """shared_pages.mm_stat: 'shared ALGO [after-compact] C1..C9' -> the nine columns."""
    rows = {}
    for line in (testdata / "shared_pages.mm_stat").read_text().splitlines():
        words = line.split()
        key = " ".join(w for w in words[1:] if not w.isdigit())
        rows[key] = MmStat(*(int(w) for w in words if w.isdigit()))
    return rows


@pytest.mark.parametrize("algo", ["lzo", "lzo-rle", "lz4"])
def test_shared_pages_mm_stat_matches_the_kernel(testdata: Path, algo: str) -> None:
    data = shared_pages(testdata)
    rows = kernel_rows(testdata)
    z = Zram()
    z.write_attr("comp_algorithm", algo)
    z.write_attr("disksize", str(len(data)))
    z.write(0, data)  # one sequential write, in page order, as recorded
    assert z.mm_stat() == rows[algo]
    z.write_attr("compact", "1")
    assert z.mm_stat() == rows[f"{algo} after-compact"]
    # and the data is still there, page for page
    assert z.read(0, len(data)) == data


def test_shared_pages_per_page_sizes_match_the_kernel(testdata: Path) -> None:
    """compr_data_size after writing one page alone (shared_pages.tsv), on one device."""
    data = shared_pages(testdata)
    lines = (testdata / "shared_pages.tsv").read_text().splitlines()
    header = next(line for line in lines if line.startswith("page")).split("\t")
    table = [line.split("\t") for line in lines if line[:1].isdigit()]
    for col, algo in enumerate(header[1:], 1):
        z = Zram()
        z.write_attr("comp_algorithm", algo)
        z.write_attr("disksize", "4K")
        for row in table[::7]:
            i = int(row[0])
            z.write(0, data[i * PAGE : (i + 1) * PAGE])
            assert z.mm_stat().compr_data_size == int(row[col]), (algo, i)


def page_of(kind: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if kind == "zero":
        return bytes(PAGE)
    if kind == "same":
        return int(rng.integers(1, 1 << 62)).to_bytes(8, "little") * (PAGE // 8)
    if kind == "random":  # incompressible: stored huge
        return rng.bytes(PAGE)
    if kind == "text":  # word soup: zstd beats lzo and lz4 by whole classes
        words = [b"zram ", b"slot ", b"page ", b"the ", rng.bytes(3), rng.bytes(5)]
        return b"".join(words[int(i)] for i in rng.integers(0, 6, 1200))[:PAGE].ljust(PAGE)
    n = int(rng.integers(1, PAGE))  # random prefix: any compressed length
    return rng.bytes(n) + bytes(PAGE - n)


NR_SLOTS = 24


class ZramMachine(RuleBasedStateMachine):
    """Model test: the device against a dict of slot -> last written page.

    Invariants recount the counters from the slot table, as zram defines them.
    """

    recompresses = False

    @initialize(algo=st.sampled_from(["lzo", "lzo-rle", "lz4"]))
    def setup(self, algo: str) -> None:
        self.z = Zram()
        self.z.write_attr("comp_algorithm", algo)
        self.z.write_attr("disksize", str(NR_SLOTS * PAGE))
        self.data: dict[int, bytes] = {}
        self.failed = 0

    @rule(
        slot=st.integers(0, NR_SLOTS - 1),
        kind=st.sampled_from(["zero", "same", "random", "prefix", "prefix", "text"]),
        seed=st.integers(0, 2**32 - 1),
    )
    def write(self, slot: int, kind: str, seed: int) -> None:
        page = page_of(kind, seed)
        before = self.z.mm_stat()
        try:
            self.z.write(slot * PAGE, page)
        except OutOfMemoryError:
            self.failed += 1
            after = self.z.mm_stat()
            # refused: the old content stays, nothing but max/total moved
            assert same_except(before, after, "mem_used_total", "mem_used_max")
            return
        self.data[slot] = page

    @rule(first=st.integers(0, NR_SLOTS - 1), n=st.integers(1, 4))
    def discard(self, first: int, n: int) -> None:
        n = min(n, NR_SLOTS - first)
        notify = self.z.io_stat().notify_free
        self.z.discard(first * PAGE, n * PAGE)
        assert self.z.io_stat().notify_free == notify + n  # counted per slot, even empty ones
        for s in range(first, first + n):
            self.data.pop(s, None)

    @rule()
    def compact(self) -> None:
        before = self.z.mm_stat()
        freed = self.z.compact()
        after = self.z.mm_stat()
        assert after.mem_used_total == before.mem_used_total - freed * PAGE
        assert after.pages_compacted == before.pages_compacted + freed
        assert same_except(before, after, "mem_used_total", "pages_compacted")

    @rule(start=st.integers(1, 64))
    def migrate(self, start: int) -> None:
        pool = self.z.pool
        for pfn in range(start, start + 64):
            try:
                pool.migrate(pfn)
                return
            except ZsmallocError:
                continue

    @rule(extra_pages=st.integers(0, 3))
    def limit(self, extra_pages: int) -> None:
        self.z.write_attr("mem_limit", str(self.z.mm_stat().mem_used_total + extra_pages * PAGE))

    @rule()
    def unlimit(self) -> None:
        self.z.write_attr("mem_limit", "0")

    @rule()
    def reset_max(self) -> None:
        self.z.write_attr("mem_used_max", "0")
        mm = self.z.mm_stat()
        assert mm.mem_used_max == mm.mem_used_total

    @rule()
    def idle(self) -> None:
        self.z.write_attr("idle", "all")
        f, lay = self.z.flags, self.z.layout
        stored = ((f & lay.ZRAM_SIZE_MASK) != 0) & ((f & (lay.ZRAM_SAME | lay.ZRAM_WB)) == 0)
        assert ((f & lay.ZRAM_IDLE) != 0).tolist() == stored.tolist()

    @rule(slot=st.integers(0, NR_SLOTS - 1))
    def read_clears_idle(self, slot: int) -> None:
        self.z.read(slot * PAGE, PAGE)
        assert not self.z.flags[slot] & self.z.layout.ZRAM_IDLE

    @invariant()
    def data_reads_back(self) -> None:
        if not hasattr(self, "z"):
            return
        for slot in range(NR_SLOTS):  # from the pool, or the backing file for WB slots
            assert self.z.zram_read_page(slot) == self.data.get(slot, bytes(PAGE)), slot

    @invariant()
    def counters_match_the_table(self) -> None:
        if not hasattr(self, "z"):
            return
        f, lay = self.z.flags, self.z.layout
        size = f & lay.ZRAM_SIZE_MASK
        same = (f & lay.ZRAM_SAME) != 0
        wb = (f & lay.ZRAM_WB) != 0
        huge = (f & lay.ZRAM_HUGE) != 0
        mm = self.z.mm_stat()
        stored = int(((size != 0) | same | wb).sum())
        assert mm.orig_data_size == PAGE * stored == PAGE * len(self.data)
        assert mm.compr_data_size == int(size.sum()) and (size[wb] == 0).all()
        assert mm.same_pages == int(same.sum()) and mm.huge_pages == int(huge.sum())
        assert (size[huge] == PAGE).all()
        bd = [int(v) for v in self.z.read_attr("bd_stat").split()]
        assert bd[0] == int(wb.sum()) == int(self.z.bd_map[1:].sum())
        assert sorted(int(h) for h in self.z.handle[wb]) == sorted(np.flatnonzero(self.z.bd_map))
        assert self.z.io_stat().failed_writes == self.failed
        if not self.recompresses:  # recompression allocates without sampling the max
            assert (size[~huge] < self.z.huge_class_size).all()
            assert mm.mem_used_max >= mm.mem_used_total  # sampled after every allocation


TestZramMachine = ZramMachine.TestCase
TestZramMachine.settings = settings(max_examples=25, stateful_step_count=40, deadline=None)


def test_overwrite_allocates_before_freeing() -> None:
    """mem_used_max holds old and new object at once (spec §2.5): two huge pages for one slot."""
    z = Zram()
    z.write_attr("disksize", "8K")
    rng = np.random.default_rng(1)
    z.write(0, rng.bytes(PAGE))
    z.write(0, rng.bytes(PAGE))  # huge over huge: 2 pages held during the store
    mm = z.mm_stat()
    assert mm.mem_used_total == PAGE and mm.mem_used_max == 2 * PAGE
    assert mm.huge_pages == 1 and mm.huge_pages_since == 2  # since: counts both stores


def test_limit_refusal_keeps_old_data_and_counts_failed_write() -> None:
    z = Zram()
    z.write_attr("disksize", "8K")
    rng = np.random.default_rng(2)
    old = rng.bytes(PAGE)
    z.write(0, old)
    z.write_attr("mem_limit", "4096")
    with pytest.raises(OutOfMemoryError) as exc:
        z.write(0, rng.bytes(PAGE))
    assert exc.value.errno == errno.ENOMEM
    assert z.read(0, PAGE) == old
    mm = z.mm_stat()
    assert mm.mem_used_total == PAGE and mm.mem_limit == PAGE
    assert mm.mem_used_max == 2 * PAGE  # max raised before the check
    assert z.read_attr("io_stat") == "       0        1 0        0\n"


def test_multi_page_write_stops_at_the_first_failure() -> None:
    z = Zram()
    z.write_attr("disksize", "16K")
    rng = np.random.default_rng(3)
    z.write_attr("mem_limit", "8K")
    pages = [rng.bytes(PAGE) for _ in range(4)]
    with pytest.raises(OutOfMemoryError, match="slot 2"):
        z.write(0, b"".join(pages))
    assert z.read(0, 2 * PAGE) == pages[0] + pages[1]
    assert z.read(2 * PAGE, 2 * PAGE) == bytes(2 * PAGE)  # not processed
    assert z.io_stat().failed_writes == 1  # one failed page per bio


def test_same_filled_pages_store_their_word() -> None:
    z = Zram()
    z.write_attr("disksize", "16K")
    word = (0x0123456789ABCDEF).to_bytes(8, "little")
    z.write(0, word * 512)
    z.write(PAGE, b"\xab\xcd" * 2048)  # a 2-byte period is same-filled too
    z.write(2 * PAGE, bytes(range(16)) * 256)  # 16-byte period with unequal halves is not
    assert z.slot(0)["kind"] == "same" and z.slot(1)["kind"] == "same"
    assert z.slot(2)["kind"] == "compressed"
    assert z.read(0, 3 * PAGE) == word * 512 + b"\xab\xcd" * 2048 + bytes(range(16)) * 256
    mm = z.mm_stat()
    assert mm.same_pages == 2 and mm.orig_data_size == 3 * PAGE


def test_discard_counts_every_covered_slot() -> None:
    """zram_bio_discard: each whole slot freed, notify_free per slot even when empty."""
    z = Zram()
    z.write_attr("disksize", "16K")
    for s in range(4):
        if s != 1:
            z.write(s * PAGE, bytes([s + 1]) * 7 + bytes(PAGE - 7))
    z.discard(PAGE, 2 * PAGE)
    assert [z.slot(s)["kind"] for s in range(4)] == ["compressed", "empty", "empty", "compressed"]
    assert z.io_stat().notify_free == 2 and z.mm_stat().orig_data_size == 2 * PAGE
    z.discard(0, 4 * PAGE)
    mm = z.mm_stat()
    assert z.io_stat().notify_free == 6 and mm.orig_data_size == mm.compr_data_size == 0


def test_swap_slot_free_notify() -> None:
    """zram_slot_free_notify: notify_free counted, slot freed (no lock miss in the model)."""
    z = Zram()
    z.write_attr("disksize", "8K")
    z.write(0, b"\x05" * 9 + bytes(PAGE - 9))
    z.slot_free_notify(0)
    z.slot_free_notify(1)  # empty: still counted
    assert z.io_stat() == (0, 0, 0, 2)
    assert z.read_attr("debug_stat") == "version: 1\n0        0\n"
    mm = z.mm_stat()
    assert mm.orig_data_size == mm.compr_data_size == 0


class PostProcessMachine(ZramMachine):
    """The model test again, with writeback to a backing file and recompression (zstd).

    Written-back slots still count in pages_stored and read back from the file;
    recompressed slots read back through their own algorithm.
    """

    recompresses = True

    @initialize(algo=st.sampled_from(["lzo", "lz4"]))
    def setup(self, algo: str) -> None:
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        backing = Path(self.tmp.name) / "bd.img"
        backing.write_bytes(bytes(8 * PAGE))  # 7 usable blocks: ENOSPC happens
        self.z = Zram(backends=("lzo-rle", "lzo", "lz4", "zstd"))
        self.z.write_attr("comp_algorithm", algo)
        self.z.write_attr("recomp_algorithm", "algo=zstd")
        self.z.write_attr("backing_dev", str(backing))
        self.z.write_attr("disksize", str(NR_SLOTS * PAGE))
        self.data = {}
        self.failed = 0

    def teardown(self) -> None:
        if hasattr(self, "tmp"):
            self.tmp.cleanup()

    @rule(
        spec=st.sampled_from(
            ["huge", "idle", "huge_idle", "incompressible", "page_index=3", "page_indexes=0-23"]
        )
    )
    def writeback(self, spec: str) -> None:
        before = self.z.mm_stat()
        try:
            self.z.write_attr("writeback", spec)
        except SysfsError as exc:
            assert exc.errno == errno.ENOSPC
        after = self.z.mm_stat()
        for col in ("orig_data_size", "same_pages", "huge_pages_since"):
            assert getattr(after, col) == getattr(before, col), col

    @rule(spec=st.sampled_from(["", "type=huge", "type=idle", "max_pages=2", "threshold=1000"]))
    def recompress(self, spec: str) -> None:
        before = self.z.mm_stat()
        self.z.write_attr("recompress", spec)
        after = self.z.mm_stat()
        for col in ("orig_data_size", "mem_used_max", "huge_pages_since"):
            assert getattr(after, col) == getattr(before, col), col


TestPostProcessMachine = PostProcessMachine.TestCase
TestPostProcessMachine.settings = settings(max_examples=20, stateful_step_count=40, deadline=None)


@pytest.mark.parametrize("algo", ["lzo", "lz4"])
def test_long_mixed_sequence_keeps_data_and_counters(algo: str) -> None:
    """800 seeded steps of every operation, writeback and recompression included;
    the machine's invariants checked every 20 steps (hypothesis runs are short)."""
    rng = np.random.default_rng(7)
    m = PostProcessMachine()
    m.setup(algo)
    kinds = ["zero", "same", "random", "prefix", "text", "text"]
    steps = [
        lambda: m.write(
            int(rng.integers(NR_SLOTS)), kinds[int(rng.integers(6))], int(rng.integers(2**32))
        ),
        lambda: m.write(int(rng.integers(NR_SLOTS)), "text", int(rng.integers(2**32))),
        lambda: m.discard(int(rng.integers(NR_SLOTS)), 1),
        lambda: m.compact(),
        lambda: m.migrate(int(rng.integers(1, 64))),
        lambda: m.idle(),
        lambda: m.writeback(["huge", "idle", "page_indexes=0-23"][int(rng.integers(3))]),
        lambda: m.recompress(["", "type=idle", "max_pages=3"][int(rng.integers(3))]),
        lambda: m.read_clears_idle(int(rng.integers(NR_SLOTS))),
    ]
    try:
        for i in range(800):
            steps[int(rng.integers(len(steps)))]()
            if i % 20 == 19:
                m.data_reads_back()
                m.counters_match_the_table()
        bd = [int(v) for v in m.z.read_attr("bd_stat").split()]
        lay = m.z.layout
        prios = (m.z.flags & lay.ZRAM_COMP_PRIORITY_MASK) >> lay.ZRAM_COMP_PRIORITY_BIT1
        assert lay.ZRAM_COMP_PRIORITY_BIT1 == 20  # the 6.18 BTF bit with 4 KiB pages
        assert bd[2] >= 7 and (prios > 0).sum() > 0  # both jobs really ran
    finally:
        m.teardown()


def test_huge_threshold_is_inclusive() -> None:
    """Spec §2.4: comp_len 3624 is stored as a 3624-byte object, 3625 raw as 4096 (huge)."""
    from zsmalloc.compress import get

    pages = {n: np.random.default_rng(n).bytes(n) + bytes(PAGE - n) for n in (3587, 3588)}
    assert [len(get("lz4").compress(p)) for p in pages.values()] == [3624, 3625]
    z = Zram()
    z.write_attr("comp_algorithm", "lz4")
    z.write_attr("disksize", "8K")
    z.write(0, pages[3587] + pages[3588])
    assert z.slot(0) == {"kind": "compressed", "size": 3624, "flags": [], "priority": 0}
    assert z.slot(1) == {"kind": "huge", "size": PAGE, "flags": ["huge"], "priority": 0}
    mm = z.mm_stat()
    assert mm.compr_data_size == 3624 + PAGE and mm.huge_pages == mm.huge_pages_since == 1
    assert z.read(0, 2 * PAGE) == pages[3587] + pages[3588]


def test_idle_by_age_with_access_time_tracking() -> None:
    """CONFIG_ZRAM_TRACK_ENTRY_ACTIME (spec §2.12): IDLE set iff ac_time < now - N,
    cleared otherwise; writes and reads stamp the time, frees zero it."""
    now = [100.0]
    z = Zram(track_actime=True, clock=lambda: now[0])
    z.write_attr("disksize", "32K")
    page = b"\x01\x02" * 10 + bytes(PAGE - 20)
    z.write(0, page)  # t=100
    now[0] = 110.0
    z.write(PAGE, page)  # t=110
    z.write(2 * PAGE, b"\x09" * PAGE)  # same-filled: never idle
    now[0] = 120.0
    z.read(0, PAGE)  # slot 0 accessed at t=120
    now[0] = 125.0
    z.write_attr("idle", "10")  # cutoff 115: slot 1 (110) idle, slot 0 (120) not
    assert [("idle" in z.slot(s)["flags"]) for s in range(3)] == [False, True, False]
    z.write_attr("idle", "5")  # cutoff 120 is not strictly after slot 0's 120
    assert [("idle" in z.slot(s)["flags"]) for s in range(3)] == [False, True, False]
    z.write_attr("idle", "0x4")  # base 0, cutoff 121: both idle now
    assert [("idle" in z.slot(s)["flags"]) for s in range(3)] == [True, True, False]
    z.write_attr("idle", "1000")  # cutoff before everything: IDLE is cleared again
    assert [("idle" in z.slot(s)["flags"]) for s in range(3)] == [False, False, False]
    z.discard(PAGE, PAGE)
    assert z.ac_time is not None and z.ac_time[1] == 0.0
    for bad in ("-1", "ten", ""):
        with pytest.raises(SysfsError) as exc:
            z.write_attr("idle", bad)
        assert exc.value.errno == errno.EINVAL
    plain = Zram()
    plain.write_attr("disksize", "8K")
    with pytest.raises(SysfsError) as exc:
        plain.write_attr("idle", "10")  # the reference kernel's build
    assert exc.value.errno == errno.EINVAL
