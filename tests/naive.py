"""Slow, obvious oracles (stumpy's tests/naive.py habit).

``NaiveZsmalloc`` re-states zsmalloc.md §4–§5 (6.18) with Python lists and no
memory at all: per zspage a LIFO stack of free indices, per class twelve lists
whose element 0 is the head.  It only knows page counts, fullness and object
positions, which is all that the kernel's mm_stat shows.  It shares nothing with
the package but the class table (itself checked against the spec's Appendix A),
so agreement between the two is evidence, not tautology.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from zsmalloc.zs.size_class import ClassTable, class_table

NR_FULLNESS_GROUPS = 12


def fullness_group(inuse: int, objs: int) -> int:
    """zsmalloc.md §1.1: 0 empty, 11 full, else floor(100*inuse/objs)//10 + 1."""
    if inuse == 0:
        return 0
    if inuse == objs:
        return 11
    return (100 * inuse // objs) // 10 + 1


@dataclass(eq=False)
class NaiveZspage:
    cls: int
    objs: int
    free: list[int]  # stack: free[-1] is the free-list head
    inuse: int = 0
    group: int = -1  # -1: isolated (on no list)
    live: dict[int, int] = field(default_factory=dict)  # obj index -> handle


class NaiveZsmalloc:
    """Page-count model of one pool; handles are small ints."""

    def __init__(self, table: ClassTable | None = None) -> None:
        self.t = table or class_table()
        self.lists: dict[int, list[list[NaiveZspage]]] = {
            int(i): [[] for _ in range(NR_FULLNESS_GROUPS)] for i in self.t.real_indices
        }
        self.where: dict[int, tuple[NaiveZspage, int]] = {}
        self.pages = 0
        self.pages_compacted = 0
        self.next_handle = 1

    # -- lists ------------------------------------------------------------------
    def _insert(self, zp: NaiveZspage) -> None:
        zp.group = fullness_group(zp.inuse, zp.objs)
        self.lists[zp.cls][zp.group].insert(0, zp)  # always at the head

    def _remove(self, zp: NaiveZspage) -> None:
        self.lists[zp.cls][zp.group].remove(zp)
        zp.group = -1

    def _fix(self, zp: NaiveZspage) -> int:
        g = fullness_group(zp.inuse, zp.objs)
        if g != zp.group:
            self._remove(zp)
            self._insert(zp)
        return g

    def _free_zspage(self, zp: NaiveZspage) -> None:
        self._remove(zp)
        self.pages -= int(self.t.pages_per_zspage[zp.cls])

    # -- objects ----------------------------------------------------------------
    def _obj_malloc(self, zp: NaiveZspage, handle: int) -> None:
        idx = zp.free.pop()
        zp.inuse += 1
        zp.live[idx] = handle
        self.where[handle] = (zp, idx)

    def _obj_free(self, zp: NaiveZspage, idx: int) -> None:
        del zp.live[idx]
        zp.free.append(idx)
        zp.inuse -= 1

    def malloc(self, size: int) -> int:
        cls = self.t.class_index_for_malloc(size)
        handle, self.next_handle = self.next_handle, self.next_handle + 1
        lists = self.lists[cls]
        for g in range(10, -1, -1):  # fullest non-full first; group 11 never
            if lists[g]:
                zp = lists[g][0]
                self._obj_malloc(zp, handle)
                self._fix(zp)
                return handle
        objs = int(self.t.objs_per_zspage[cls])
        zp = NaiveZspage(cls, objs, list(range(objs - 1, -1, -1)))
        self._obj_malloc(zp, handle)
        self._insert(zp)
        self.pages += int(self.t.pages_per_zspage[cls])
        return handle

    def free(self, handle: int) -> None:
        zp, idx = self.where.pop(handle)
        self._obj_free(zp, idx)
        if self._fix(zp) == 0:
            self._free_zspage(zp)

    # -- compaction -------------------------------------------------------------
    def can_compact(self, cls: int) -> int:
        allocated = inuse = 0
        for group in self.lists[cls]:
            for zp in group:
                allocated += zp.objs
                inuse += zp.inuse
        return 0 if allocated <= inuse else (
            (allocated - inuse) // int(self.t.objs_per_zspage[cls])
        ) * int(self.t.pages_per_zspage[cls])

    def _isolate(self, cls: int, groups: range) -> NaiveZspage | None:
        for g in groups:
            if self.lists[cls][g]:
                zp = self.lists[cls][g][0]
                self._remove(zp)
                return zp
        return None

    def _compact_class(self, cls: int) -> int:
        freed = 0
        dst: NaiveZspage | None = None
        # can_compact is computed over listed zspages; an isolated dst must count too.
        while self._can_compact_with(cls, dst) > 0:
            if dst is None:
                dst = self._isolate(cls, range(10, 0, -1))
                if dst is None:
                    break
            src = self._isolate(cls, range(1, 11))
            if src is None:
                break
            for idx in sorted(src.live):
                handle = src.live[idx]
                self._obj_malloc(dst, handle)
                self._obj_free(src, idx)
                if dst.inuse == dst.objs or src.inuse == 0:
                    break
            self._insert(src)
            if src.group == 0:
                self._free_zspage(src)
                freed += int(self.t.pages_per_zspage[cls])
            if dst.inuse == dst.objs:
                self._insert(dst)
                dst = None
        if dst is not None:
            self._insert(dst)
        return freed

    def _can_compact_with(self, cls: int, extra: NaiveZspage | None) -> int:
        if extra is None:
            return self.can_compact(cls)
        # Stats count every zspage of the class, listed or isolated.
        allocated = extra.objs
        inuse = extra.inuse
        for group in self.lists[cls]:
            for zp in group:
                allocated += zp.objs
                inuse += zp.inuse
        if allocated <= inuse:
            return 0
        return ((allocated - inuse) // extra.objs) * int(self.t.pages_per_zspage[cls])

    def compact(self) -> int:
        freed = 0
        for cls in sorted(self.lists, reverse=True):
            freed += self._compact_class(cls)
        self.pages_compacted += freed
        return freed


# ---- Linux 6.1 ------------------------------------------------------------------------
ZS_EMPTY, ZS_ALMOST_EMPTY, ZS_ALMOST_FULL, ZS_FULL = range(4)


def fullness_group_61(inuse: int, objs: int) -> int:
    """zsmalloc.md §10 (6.1): empty, almost empty (inuse <= 3*objs//4), almost full, full."""
    if inuse == 0:
        return ZS_EMPTY
    if inuse == objs:
        return ZS_FULL
    return ZS_ALMOST_EMPTY if inuse <= 3 * objs // 4 else ZS_ALMOST_FULL


class NaiveZsmalloc61(NaiveZsmalloc):
    """6.1's rules over the same lists (zsmalloc.md §10 and §10.1), restated plainly.

    Four groups instead of twelve; a zspage goes in at the head of its list unless it
    holds fewer objects than the head, then second; malloc takes the head of ALMOST_FULL,
    then ALMOST_EMPTY, then EMPTY; compaction takes the source first (ALMOST_EMPTY, then
    ALMOST_FULL), checks zs_can_compact only then, and fills one destination after another
    (ALMOST_FULL, then ALMOST_EMPTY) from it, resuming at the source object it reached.
    """

    def _insert(self, zp: NaiveZspage) -> None:
        zp.group = fullness_group_61(zp.inuse, zp.objs)
        lst = self.lists[zp.cls][zp.group]
        lst.insert(1 if lst and zp.inuse < lst[0].inuse else 0, zp)

    def _fix(self, zp: NaiveZspage) -> int:
        g = fullness_group_61(zp.inuse, zp.objs)
        if g != zp.group:
            self._remove(zp)
            self._insert(zp)
        return g

    def malloc(self, size: int) -> int:
        cls = self.t.class_index_for_malloc(size)
        handle, self.next_handle = self.next_handle, self.next_handle + 1
        for g in (ZS_ALMOST_FULL, ZS_ALMOST_EMPTY, ZS_EMPTY):
            if self.lists[cls][g]:
                zp = self.lists[cls][g][0]
                self._obj_malloc(zp, handle)
                self._fix(zp)
                return handle
        objs = int(self.t.objs_per_zspage[cls])
        zp = NaiveZspage(cls, objs, list(range(objs - 1, -1, -1)))
        self._obj_malloc(zp, handle)
        self._insert(zp)
        self.pages += int(self.t.pages_per_zspage[cls])
        return handle

    def _compact_class(self, cls: int) -> int:
        freed = 0
        while True:
            src = self._isolate(cls, [ZS_ALMOST_EMPTY, ZS_ALMOST_FULL])  # type: ignore[arg-type]
            if src is None:
                return freed
            # the stats still count the isolated source
            if self._can_compact_with(cls, src) == 0:
                self._insert(src)
                return freed
            todo = sorted(src.live)
            dst = None
            while todo:
                dst = self._isolate(cls, [ZS_ALMOST_FULL, ZS_ALMOST_EMPTY])  # type: ignore[arg-type]
                if dst is None:
                    self._insert(src)
                    return freed
                while todo and dst.inuse < dst.objs:
                    idx = todo.pop(0)
                    self._obj_malloc(dst, src.live[idx])
                    self._obj_free(src, idx)
                if todo:  # dst is full: back it goes, and the next one
                    self._insert(dst)
                    dst = None
            if dst is not None:
                self._insert(dst)
            self._insert(src)
            if src.group == ZS_EMPTY:
                self._free_zspage(src)
                freed += int(self.t.pages_per_zspage[cls])


# ---- zbud (mm/zbud.c, 6.1) ------------------------------------------------------------------
@dataclass(eq=False)
class NaiveZbudPage:
    first: int = 0  # chunks of the first buddy, 0 = free
    last: int = 0


class NaiveZbud:
    """zbud re-stated with Python lists: ``unbuddied[i][0]`` and ``lru[0]`` are list heads.

    From the comments of mm/zbud.c alone: 64 chunks a page, the first for the header;
    an allocation takes the first page of the lowest unbuddied list with room, else a
    new page; a page goes back at the head of its list; the LRU has the most recently
    allocated-into page first; reclaim takes the last LRU page, evicts first then last,
    and puts a page it could not empty back at the LRU head.  Handles are (page, buddy).
    """

    NCHUNKS = 63
    CHUNK = 64

    def __init__(self, lru: bool = True) -> None:
        self.unbuddied: list[list[NaiveZbudPage]] = [[] for _ in range(self.NCHUNKS)]
        self.buddied: list[NaiveZbudPage] = []
        self.lru: list[NaiveZbudPage] = []
        self.has_lru = lru
        self.pages = 0

    def _place(self, pg: NaiveZbudPage) -> None:
        if pg.first and pg.last:
            self.buddied.insert(0, pg)
        else:
            self.unbuddied[self.NCHUNKS - pg.first - pg.last].insert(0, pg)

    def _unlist(self, pg: NaiveZbudPage) -> None:
        for lst in (*self.unbuddied, self.buddied):
            if pg in lst:
                lst.remove(pg)

    def malloc(self, size: int) -> tuple[NaiveZbudPage, str]:
        assert 0 < size <= 4096 - 2 * self.CHUNK
        chunks = -(-size // self.CHUNK)
        for i in range(chunks, self.NCHUNKS):
            if self.unbuddied[i]:
                pg = self.unbuddied[i].pop(0)
                bud = "first" if pg.first == 0 else "last"
                break
        else:
            pg, bud = NaiveZbudPage(), "first"
            self.pages += 1
        setattr(pg, bud, chunks)
        self._place(pg)
        if self.has_lru:
            if pg in self.lru:
                self.lru.remove(pg)
            self.lru.insert(0, pg)
        return pg, bud

    def free(self, handle: tuple[NaiveZbudPage, str], reclaiming: bool = False) -> None:
        pg, bud = handle
        setattr(pg, bud, 0)
        if reclaiming:
            return
        self._unlist(pg)
        if pg.first == 0 and pg.last == 0:
            if pg in self.lru:
                self.lru.remove(pg)
            self.pages -= 1
        else:
            self._place(pg)

    def reclaim(self, evict_ok: Iterator[bool]) -> tuple[NaiveZbudPage | None, bool]:
        """One round: the page taken and whether it was freed; ``evict_ok`` answers each
        eviction attempt in turn (a buddy that is free is not attempted)."""
        if not self.lru:
            return None, False
        pg = self.lru.pop()
        self._unlist(pg)
        for bud in ("first", "last"):
            if getattr(pg, bud):
                if not next(evict_ok):
                    break
                setattr(pg, bud, 0)
        if pg.first == 0 and pg.last == 0:
            self.pages -= 1
            return pg, True
        self._place(pg)
        self.lru.insert(0, pg)
        return pg, False
