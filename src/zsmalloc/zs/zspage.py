"""zspages: the page chain, the in-page free list, fullness groups and their lists.

Mirrors, in mm/zsmalloc.c (6.18): the zspage bitfield accessors (``ZsHugePage``,
``get/set_freeobj``, ``get_zspage_inuse``/``mod_zspage_inuse``, ``zspage_class``),
``get_zspage``, ``get_first_zpdesc``/``get_next_zpdesc``, ``get_fullness_group``,
``insert_zspage``/``remove_zspage``/``fix_fullness_group``, ``class_stat_add/sub``,
``create_page_chain``, ``init_zspage``, ``alloc_zspage``, ``SetZsPageMovable``,
``trylock_zspage``, ``__free_zspage``/``free_zspage`` and ``zs_can_compact``.

A zspage is ``pages_per_zspage`` order-0 pages chained first -> last through
``zpdesc.next``; objects of ``class->size`` bytes are laid end to end across them and
may straddle two pages.  Free objects hold the free list in their first word
(``next_index << 1``, tag bit clear); allocated ones hold ``handle | 1`` there, except
in a huge zspage (one object filling one page) whose tagged handle sits in
``first_zpdesc->handle``.

Orderings that exactness depends on (validated against the live kernel, spec §0.2):
the per-zspage free list is LIFO; fullness lists insert at the head and a zspage
whose group does not change keeps its place; an empty zspage is freed at once.

Linux 6.1 differs in two functions, kept here as their own: four fullness groups
(:func:`~zsmalloc.zs.size_class.fullness_group_61`) and an insertion that puts a
zspage *second* when it holds fewer objects than the head
(:func:`insert_zspage_61`).  Which one runs is decided by the state's type at compile
time (:func:`~zsmalloc.zs.state.fullness_4_groups`), never per call.
"""

from __future__ import annotations

from errno import EBUSY

import numpy as np

from zsmalloc.mm.hotpath import as_i64, hot_njit
from zsmalloc.mm.page import EBUG, alloc_page, nr_free_pages
from zsmalloc.mm.zpdesc import (
    __zpdesc_set_movable,
    __zpdesc_set_zsmalloc,
    get_next_zpdesc_raw,
    get_zpdesc_zspage,
    is_first_zpdesc,
    kmap_local_zpdesc,
    reset_zpdesc,
    set_first_obj_offset,
    set_zpdesc_next,
    set_zpdesc_zspage,
    zpdesc_dec_zone_page_state,
    zpdesc_inc_zone_page_state,
    zpdesc_put,
    zpdesc_set_first,
    zpdesc_trylock,
    zpdesc_unlock,
)
from zsmalloc.profile import OBJ_TAG_BITS
from zsmalloc.zs.size_class import can_compact_pages, fullness_group, fullness_group_61
from zsmalloc.zs.state import (
    ZS_CLASS_MASK,
    ZS_CLASS_SHIFT,
    ZS_FULLNESS_MASK,
    ZS_FULLNESS_SHIFT,
    ZS_HUGE_SHIFT,
    ZS_MAGIC_MASK,
    ZS_MAGIC_SHIFT,
    ZS_OBJS_ALLOCATED,
    ZS_OBJS_INUSE,
    ZSPAGE_MAGIC,
    PoolState,
    fullness_4_groups,
)

FREE_LINK_END = -1 << OBJ_TAG_BITS  # -1UL << OBJ_TAG_BITS: the last link of init_zspage


# ---- class statistics (class->stats.objs[]) ----------------------------------------------
@hot_njit
def class_stat_add(st: PoolState, cls: int, stat: int, cnt: int) -> None:
    """Mirrors class_stat_add(): the only way up for a class counter."""
    st.stats[cls, stat] += cnt


@hot_njit
def class_stat_sub(st: PoolState, cls: int, stat: int, cnt: int) -> None:
    """Mirrors class_stat_sub(): the only way down for a class counter."""
    st.stats[cls, stat] -= cnt


@hot_njit
def class_stat_read(st: PoolState, cls: int, stat: int) -> int:
    """Mirrors class_stat_read()."""
    return st.stats[cls, stat]


# ---- zspage bitfields ----------------------------------------------------------------------
@hot_njit
def zspage_bits_get(st: PoolState, zspage: int, shift: int, mask: int) -> int:
    """One bitfield of ``struct zspage``."""
    return (as_i64(st.zs_bits[zspage]) >> shift) & mask


@hot_njit
def zspage_bits_set(st: PoolState, zspage: int, shift: int, mask: int, value: int) -> None:
    """Set one bitfield of ``struct zspage``."""
    word = as_i64(st.zs_bits[zspage])
    word = (word & ~(mask << shift)) | ((value & mask) << shift)
    st.zs_bits[zspage] = np.uint32(word)


@hot_njit
def ZsHugePage(st: PoolState, zspage: int) -> bool:
    """Is this a huge zspage (one object filling one page, handle in the zpdesc)?"""
    return zspage_bits_get(st, zspage, ZS_HUGE_SHIFT, 1) != 0


@hot_njit
def zspage_class(st: PoolState, zspage: int) -> int:
    """The zspage's (real) class index."""
    return zspage_bits_get(st, zspage, ZS_CLASS_SHIFT, ZS_CLASS_MASK)


@hot_njit
def zspage_fullness(st: PoolState, zspage: int) -> int:
    """The fullness group recorded in the zspage (the list it sits on)."""
    return zspage_bits_get(st, zspage, ZS_FULLNESS_SHIFT, ZS_FULLNESS_MASK)


@hot_njit
def zspage_magic_ok(st: PoolState, zspage: int) -> bool:
    """Does the zspage carry ZSPAGE_MAGIC (i.e. is it live)?"""
    return zspage_bits_get(st, zspage, ZS_MAGIC_SHIFT, ZS_MAGIC_MASK) == ZSPAGE_MAGIC


@hot_njit
def get_freeobj(st: PoolState, zspage: int) -> int:
    """Index of the first free object (unsigned int in the kernel)."""
    return as_i64(st.zs_freeobj[zspage])


@hot_njit
def set_freeobj(st: PoolState, zspage: int, obj: int) -> None:
    """Set the first free object index, truncated to 32 bits as the kernel's field is."""
    st.zs_freeobj[zspage] = np.uint32(obj & 0xFFFFFFFF)


@hot_njit
def get_zspage_inuse(st: PoolState, zspage: int) -> int:
    """Live objects in the zspage."""
    return as_i64(st.zs_inuse[zspage])


@hot_njit
def mod_zspage_inuse(st: PoolState, zspage: int, val: int) -> None:
    """inuse += val."""
    st.zs_inuse[zspage] += val


@hot_njit
def get_zspage(st: PoolState, zpdesc: int) -> int:
    """Mirrors get_zspage(): the zspage owning a page.

    0 if the page belongs to no zspage; -EBUG if it names one whose magic is wrong
    (the kernel's BUG_ON(zspage->magic != ZSPAGE_MAGIC)).
    """
    zspage = get_zpdesc_zspage(st.mm, zpdesc)
    if zspage <= 0 or zspage >= st.vars[0].zs_hwm:
        return 0
    if not zspage_magic_ok(st, zspage):
        return -EBUG
    return zspage


@hot_njit
def get_first_zpdesc(st: PoolState, zspage: int) -> int:
    """First page of the zspage."""
    return as_i64(st.zs_first[zspage])


@hot_njit
def get_next_zpdesc(st: PoolState, zspage: int, zpdesc: int) -> int:
    """Next page of the chain, 0 at the end; always 0 for a huge zspage (next = handle)."""
    if ZsHugePage(st, zspage):
        return 0
    return get_next_zpdesc_raw(st.mm, zpdesc)


@hot_njit
def nth_zpdesc(st: PoolState, zspage: int, n: int) -> int:
    """Walk ``n`` steps down the chain from the first page."""
    zpdesc = get_first_zpdesc(st, zspage)
    for _ in range(n):
        zpdesc = get_next_zpdesc(st, zspage, zpdesc)
    return zpdesc


# ---- fullness groups and lists ------------------------------------------------------------
@hot_njit
def get_fullness_group(st: PoolState, cls: int, zspage: int) -> int:
    """Mirrors get_fullness_group(): the group of the zspage's live-object ratio."""
    if fullness_4_groups(st):
        return fullness_group_61(get_zspage_inuse(st, zspage), st.class_objs[cls])
    return fullness_group(get_zspage_inuse(st, zspage), st.class_objs[cls])


@hot_njit
def list_add_head(st: PoolState, cls: int, zspage: int, fullness: int) -> None:
    """list_add(&zspage->list, &class->fullness_list[fullness]): at the head."""
    head = st.fullness_head[cls, fullness]
    st.zs_prev[zspage] = 0
    st.zs_next[zspage] = head
    if head != 0:
        st.zs_prev[head] = zspage
    st.fullness_head[cls, fullness] = zspage


@hot_njit
def insert_zspage(st: PoolState, cls: int, zspage: int, fullness: int) -> None:
    """Mirrors insert_zspage(): list_add at the *head* of the group's list."""
    if fullness_4_groups(st):
        insert_zspage_61(st, cls, zspage, fullness)
        return
    class_stat_add(st, cls, fullness, 1)
    list_add_head(st, cls, zspage, fullness)
    zspage_bits_set(st, zspage, ZS_FULLNESS_SHIFT, ZS_FULLNESS_MASK, fullness)


@hot_njit
def insert_zspage_61(st: PoolState, cls: int, zspage: int, fullness: int) -> None:
    """Mirrors insert_zspage() (6.1): at the head, or *second* if it is emptier than the head.

    "We want to see more ZS_FULL pages and less almost empty/full. Put pages with
    higher ->inuse first." A zspage holding fewer objects than the current head goes
    right after it (``list_add(&zspage->list, &head->list)``); so the head is never
    displaced by an emptier zspage, while the rest of the list stays a stack.
    (set_zspage_mapping() of the callers is folded in: the group is recorded here.)
    """
    class_stat_add(st, cls, fullness, 1)
    head = st.fullness_head[cls, fullness]
    if head != 0 and get_zspage_inuse(st, zspage) < get_zspage_inuse(st, head):
        nxt = st.zs_next[head]
        st.zs_prev[zspage] = head
        st.zs_next[zspage] = nxt
        if nxt != 0:
            st.zs_prev[nxt] = zspage
        st.zs_next[head] = zspage
    else:
        list_add_head(st, cls, zspage, fullness)
    zspage_bits_set(st, zspage, ZS_FULLNESS_SHIFT, ZS_FULLNESS_MASK, fullness)


@hot_njit
def remove_zspage(st: PoolState, cls: int, zspage: int) -> None:
    """Mirrors remove_zspage(): list_del from wherever it is; others keep their order."""
    fullness = zspage_fullness(st, zspage)
    prev = st.zs_prev[zspage]
    nxt = st.zs_next[zspage]
    if prev != 0:
        st.zs_next[prev] = nxt
    else:
        st.fullness_head[cls, fullness] = nxt
    if nxt != 0:
        st.zs_prev[nxt] = prev
    st.zs_prev[zspage] = 0
    st.zs_next[zspage] = 0
    class_stat_sub(st, cls, fullness, 1)


@hot_njit
def fix_fullness_group(st: PoolState, cls: int, zspage: int) -> int:
    """Mirrors fix_fullness_group(): move to the head of the new group only if it changed."""
    newfg = get_fullness_group(st, cls, zspage)
    if newfg == zspage_fullness(st, zspage):
        return newfg
    remove_zspage(st, cls, zspage)
    insert_zspage(st, cls, zspage, newfg)
    return newfg


@hot_njit
def zspage_full(st: PoolState, cls: int, zspage: int) -> bool:
    """Are all objects in use?"""
    return get_zspage_inuse(st, zspage) == st.class_objs[cls]


@hot_njit
def zspage_empty(st: PoolState, zspage: int) -> bool:
    """Is no object in use?"""
    return get_zspage_inuse(st, zspage) == 0


@hot_njit
def zs_can_compact(st: PoolState, cls: int) -> int:
    """Mirrors zs_can_compact(): whole zspages' worth of free slots, in pages."""
    return can_compact_pages(
        class_stat_read(st, cls, ZS_OBJS_ALLOCATED),
        class_stat_read(st, cls, ZS_OBJS_INUSE),
        st.class_objs[cls],
        st.class_ppz[cls],
    )


# ---- creation -----------------------------------------------------------------------------
@hot_njit
def cache_alloc_zspage(st: PoolState) -> int:
    """A zspage id from the zspage table (0 if full)."""
    v = st.vars[0]
    zspage = v.zs_free
    if zspage != 0:
        v.zs_free = st.zs_next[zspage]
    elif v.zs_hwm < v.zs_cap:
        zspage = v.zs_hwm
        v.zs_hwm += 1
    else:
        return 0
    st.zs_bits[zspage] = np.uint32(0)
    st.zs_inuse[zspage] = 0
    st.zs_freeobj[zspage] = np.uint32(0)
    st.zs_first[zspage] = 0
    st.zs_prev[zspage] = 0
    st.zs_next[zspage] = 0
    v.nr_zspages += 1
    return zspage


@hot_njit
def cache_free_zspage(st: PoolState, zspage: int) -> None:
    """Return a zspage id; clearing the magic makes stale lookups fail get_zspage()."""
    v = st.vars[0]
    st.zs_bits[zspage] = np.uint32(0)
    st.zs_first[zspage] = 0
    st.zs_prev[zspage] = 0
    st.zs_next[zspage] = v.zs_free
    v.zs_free = zspage
    v.nr_zspages -= 1


@hot_njit
def create_page_chain(
    st: PoolState, cls: int, zspage: int, zpdescs: np.ndarray, nr_zpdescs: int
) -> None:
    """Mirrors create_page_chain(): back-pointers, next links, PG_private, the huge flag."""
    mm = st.mm
    prev = 0
    for i in range(nr_zpdescs):
        zpdesc = zpdescs[i]
        set_zpdesc_zspage(mm, zpdesc, zspage)
        set_zpdesc_next(mm, zpdesc, 0)
        if i == 0:
            st.zs_first[zspage] = zpdesc
            zpdesc_set_first(mm, zpdesc)
            if st.class_objs[cls] == 1 and st.class_ppz[cls] == 1:
                zspage_bits_set(st, zspage, ZS_HUGE_SHIFT, 1, 1)
        else:
            set_zpdesc_next(mm, prev, zpdesc)
        prev = zpdesc


@hot_njit
def init_zspage(st: PoolState, cls: int, zspage: int) -> None:
    """Mirrors init_zspage(): first_obj_offset per page and the free list 0 -> 1 -> ... .

    Each slot starting in a page links to the next index; the last slot starting in a
    non-final page links to the first slot of the next page; the last slot of the final
    page (possibly the partial tail slot) gets the terminator.
    """
    mm = st.mm
    size = st.class_size[cls]
    page_size = mm.page_size
    freeobj = 1
    off = 0
    zpdesc = get_first_zpdesc(st, zspage)
    while zpdesc != 0:
        set_first_obj_offset(mm, zpdesc, off)
        base = kmap_local_zpdesc(mm, zpdesc)
        link = base + off
        off += size
        while off < page_size:
            mm.arena64[link >> 3] = freeobj << OBJ_TAG_BITS
            freeobj += 1
            link += size
            off += size
        next_zpdesc = get_next_zpdesc(st, zspage, zpdesc)
        if next_zpdesc != 0:
            mm.arena64[link >> 3] = freeobj << OBJ_TAG_BITS
            freeobj += 1
        else:
            mm.arena64[link >> 3] = FREE_LINK_END
        zpdesc = next_zpdesc
        off %= page_size
    set_freeobj(st, zspage, 0)


@hot_njit
def pages_available(st: PoolState) -> int:
    """Order-0 pages the arena can still hand out."""
    return nr_free_pages(st.mm)


@hot_njit
def can_alloc_zspage(st: PoolState, cls: int) -> bool:
    """Are there enough free page frames and a free zspage id for a new zspage?"""
    if pages_available(st) < st.class_ppz[cls]:
        return False
    return st.vars[0].zs_free != 0 or st.vars[0].zs_hwm < st.vars[0].zs_cap


@hot_njit
def alloc_zspage(st: PoolState, cls: int) -> int:
    """Mirrors alloc_zspage(): a zspage id, or 0 when pages or zspage ids run out.

    Checks the arena first, so a failure leaves everything as it was (the kernel
    allocates page by page and undoes on failure; the outcome is the same).
    """
    ppz = st.class_ppz[cls]
    if not can_alloc_zspage(st, cls):
        return 0
    zspage = cache_alloc_zspage(st)
    zspage_bits_set(st, zspage, ZS_MAGIC_SHIFT, ZS_MAGIC_MASK, ZSPAGE_MAGIC)
    zspage_bits_set(st, zspage, ZS_CLASS_SHIFT, ZS_CLASS_MASK, cls)
    mm = st.mm
    zpdescs = st.scratch
    for i in range(ppz):
        zpdesc = alloc_page(mm)
        __zpdesc_set_zsmalloc(mm, zpdesc)
        zpdesc_inc_zone_page_state(mm, zpdesc)
        zpdescs[i] = zpdesc
    create_page_chain(st, cls, zspage, zpdescs, ppz)
    init_zspage(st, cls, zspage)
    return zspage


@hot_njit
def SetZsPageMovable(st: PoolState, zspage: int) -> None:
    """Mirrors SetZsPageMovable(): PG_movable_ops on every page (under its page lock)."""
    mm = st.mm
    zpdesc = get_first_zpdesc(st, zspage)
    while zpdesc != 0:
        if zpdesc_trylock(mm, zpdesc):
            __zpdesc_set_movable(mm, zpdesc)
            zpdesc_unlock(mm, zpdesc)
        zpdesc = get_next_zpdesc(st, zspage, zpdesc)


# ---- teardown -----------------------------------------------------------------------------
@hot_njit
def trylock_zspage(st: PoolState, zspage: int) -> bool:
    """Mirrors trylock_zspage(): lock every page, or none."""
    mm = st.mm
    zpdesc = get_first_zpdesc(st, zspage)
    while zpdesc != 0:
        if not zpdesc_trylock(mm, zpdesc):
            cursor = get_first_zpdesc(st, zspage)
            while cursor != zpdesc:
                zpdesc_unlock(mm, cursor)
                cursor = get_next_zpdesc(st, zspage, cursor)
            return False
        zpdesc = get_next_zpdesc(st, zspage, zpdesc)
    return True


@hot_njit
def __free_zspage(st: PoolState, cls: int, zspage: int) -> int:
    """Mirrors __free_zspage(): reset, unlock and put every page; ALLOCATED -= objs.

    0, or -EBUG when a page failed the buddy allocator's free-time checks.
    """
    mm = st.mm
    err = 0
    zpdesc = get_first_zpdesc(st, zspage)
    while zpdesc != 0:
        nxt = get_next_zpdesc(st, zspage, zpdesc)  # before reset clears it
        reset_zpdesc(mm, zpdesc)
        zpdesc_unlock(mm, zpdesc)
        zpdesc_dec_zone_page_state(mm, zpdesc)
        err = min(err, zpdesc_put(mm, zpdesc))
        zpdesc = nxt
    cache_free_zspage(st, zspage)
    class_stat_sub(st, cls, ZS_OBJS_ALLOCATED, st.class_objs[cls])
    st.vars[0].pages_allocated -= st.class_ppz[cls]
    return err


@hot_njit
def free_zspage(st: PoolState, cls: int, zspage: int) -> int:
    """Mirrors free_zspage(): take it off its (group-0) list and free it; 0 or -errno.

    The kernel defers the free when a page lock is held by migration; migration here
    runs to completion inside one call, so the try-lock always succeeds (else -EBUSY).
    """
    if not trylock_zspage(st, zspage):
        return -EBUSY
    remove_zspage(st, cls, zspage)
    return __free_zspage(st, cls, zspage)


@hot_njit
def zspage_first_is_private(st: PoolState, zspage: int) -> bool:
    """Debug check: the first zpdesc carries PG_private (is_first_zpdesc)."""
    return is_first_zpdesc(st.mm, get_first_zpdesc(st, zspage))

