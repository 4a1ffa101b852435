"""Debug validators and introspection: recount everything from scratch.

Like mimalloc's ``_mi_page_is_valid`` and the kernel's ``VM_BUG_ON``s, these walk the
whole pool with slow, obvious Python and compare what they find with what the
allocator's counters claim.  They are not used on any hot path: tests call
:func:`check_pool` after every step of the model test, and ``ZSMALLOC_DEBUG=1``
callers may too.  A failure raises :class:`~zsmalloc.errors.InvariantError`.

Invariants checked (each restates a rule of mm/zsmalloc.c, 6.18):

1. Each zspage: ``inuse`` + length of its free list == ``objs_per_zspage``; free-list
   indices are distinct and below ``objs``; the slots on it have the tag bit clear and
   every other slot below ``objs`` is allocated (tag set, or zpdesc.handle if huge).
2. Each zspage sits on the list of the fullness group its ``inuse`` implies (6.1: one
   of four), and on no other; the list links are consistent both ways; no zspage has a
   page isolated for migration (that never outlives a call here).
3. Class stats: per-group counts equal list lengths; ALLOCATED == zspages x objs;
   INUSE == sum of inuse.
4. ``pages_allocated`` == sum of pages_per_zspage over live zspages; every page of a
   chain is PGTY_zsmalloc, points back to its zspage, has refcount 1, PG_private only
   on the first page, first_obj_offset as the geometry says, and is unlocked.
5. Every live handle round-trips: handle -> obj -> (pfn, idx) -> slot header ==
   handle | 1 (huge: zpdesc.handle), and the obj names the page the slot starts in
   (7.3: and its zspage's class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsmalloc.errors import InvariantError
from zsmalloc.mm.page import (
    PAGE_TYPE_SHIFT,
    PG_locked,
    PG_private,
    PGTY_zsmalloc,
)
from zsmalloc.zs.size_class import NR_FULLNESS_GROUPS, fullness_group_61
from zsmalloc.zs.state import (
    HANDLE_SHIFT,
    ZS_CLASS_MASK,
    ZS_CLASS_SHIFT,
    ZS_FULLNESS_MASK,
    ZS_FULLNESS_SHIFT,
    ZS_ISOLATED_MASK,
    ZS_ISOLATED_SHIFT,
    ZS_MAGIC_MASK,
    ZS_MAGIC_SHIFT,
    ZS_OBJS_ALLOCATED,
    ZS_OBJS_INUSE,
    ZSPAGE_MAGIC,
    PoolState,
    fullness_4_groups,
)


@dataclass(frozen=True)
class ZspageInfo:
    """One zspage, as found by walking it."""

    id: int
    cls: int
    fullness: int
    huge: bool
    inuse: int
    pages: tuple[int, ...]  # pfns in chain order
    free_list: tuple[int, ...]  # object indices, head first


def _fail(msg: str) -> None:
    raise InvariantError(msg)


def live_zspages(st: PoolState) -> list[int]:
    """Ids of zspages with the magic set."""
    hwm = int(st.vars[0].zs_hwm)
    bits = st.zs_bits[1:hwm].astype(np.int64)
    magic = (bits >> ZS_MAGIC_SHIFT) & ZS_MAGIC_MASK
    return [int(i) + 1 for i in np.flatnonzero(magic == ZSPAGE_MAGIC)]


def zspage_info(st: PoolState, zspage: int) -> ZspageInfo:
    """Walk one zspage: its chain and its free list."""
    bits = int(st.zs_bits[zspage])
    cls = (bits >> ZS_CLASS_SHIFT) & ZS_CLASS_MASK
    huge = bool(bits & 1)
    mm = st.mm
    pages = [int(st.zs_first[zspage])]
    if not huge:
        while int(mm.zp_next[pages[-1]]) != 0:
            pages.append(int(mm.zp_next[pages[-1]]))
            if len(pages) > int(st.class_ppz[cls]):
                _fail(f"zspage {zspage}: chain longer than pages_per_zspage")
    objs = int(st.class_objs[cls])
    size = int(st.class_size[cls])
    inuse = int(st.zs_inuse[zspage])
    free: list[int] = []
    idx = int(st.zs_freeobj[zspage])
    for _ in range(objs - inuse):
        if not 0 <= idx < objs:
            _fail(f"zspage {zspage}: free list reaches index {idx}, objs is {objs}")
        free.append(idx)
        if huge:
            break
        off = idx * size
        pfn = pages[off // mm.page_size]
        word = int(mm.arena64[(pfn * mm.page_size + off % mm.page_size) >> 3])
        idx = (word >> 1) & 0xFFFFFFFF
    return ZspageInfo(
        id=zspage,
        cls=cls,
        fullness=(bits >> ZS_FULLNESS_SHIFT) & ZS_FULLNESS_MASK,
        huge=huge,
        inuse=inuse,
        pages=tuple(pages),
        free_list=tuple(free),
    )


def fullness_lists(st: PoolState, cls: int) -> dict[int, list[int]]:
    """The non-empty fullness lists of class ``cls``: group -> zspage ids, head first."""
    out: dict[int, list[int]] = {}
    for fg in range(NR_FULLNESS_GROUPS):
        z = int(st.fullness_head[cls, fg])
        seq: list[int] = []
        prev = 0
        while z != 0:
            if int(st.zs_prev[z]) != prev:
                _fail(f"class {cls} group {fg}: zspage {z} prev link is {st.zs_prev[z]}")
            seq.append(z)
            if len(seq) > len(st.zs_bits):
                _fail(f"class {cls} group {fg}: list does not end")
            prev, z = z, int(st.zs_next[z])
        if seq:
            out[fg] = seq
    return out


def expected_group(inuse: int, objs: int, four_groups: bool = False) -> int:
    """The fullness group, written out plainly (spec §1.1; 6.1: §10's four groups)."""
    if four_groups:
        return int(fullness_group_61(inuse, objs))
    if inuse == 0:
        return 0
    if inuse == objs:
        return 11
    return (100 * inuse // objs) // 10 + 1


def check_pool(st: PoolState) -> None:
    """Recount everything and raise InvariantError at the first disagreement."""
    mm = st.mm
    ps = mm.page_size
    bits = int(st.vars[0].obj_index_bits)
    tag_shift = int(st.vars[0].obj_tag_shift)
    nr = len(st.class_size)
    zspages = {z: zspage_info(st, z) for z in live_zspages(st)}
    if len(zspages) != int(st.vars[0].nr_zspages):
        _fail(f"{len(zspages)} live zspages found, counter says {st.vars[0].nr_zspages}")
    on_list: dict[int, tuple[int, int]] = {}
    for cls in range(nr):
        lists = fullness_lists(st, cls)
        if int(st.class_index[cls]) != cls and lists:
            _fail(f"merged alias {cls} has fullness lists")
        for fg in range(NR_FULLNESS_GROUPS):
            seq = lists.get(fg, [])
            if len(seq) != int(st.stats[cls, fg]):
                _fail(f"class {cls} group {fg}: {len(seq)} on list, stats say {st.stats[cls, fg]}")
            for z in seq:
                if z in on_list:
                    _fail(f"zspage {z} is on two lists")
                on_list[z] = (cls, fg)
    allocated = np.zeros(nr, np.int64)
    inuse = np.zeros(nr, np.int64)
    pages_total = 0
    seen_pages: set[int] = set()
    slot_owner: dict[tuple[int, int], int] = {}
    slot_class: dict[tuple[int, int], int] = {}
    for z, info in zspages.items():
        cls, objs, size = info.cls, int(st.class_objs[info.cls]), int(st.class_size[info.cls])
        ppz = int(st.class_ppz[cls])
        if on_list.get(z) != (cls, info.fullness):
            _fail(f"zspage {z} records class {cls} group {info.fullness}, found {on_list.get(z)}")
        if info.fullness != expected_group(info.inuse, objs, fullness_4_groups(st)):
            _fail(f"zspage {z}: inuse {info.inuse}/{objs} but group {info.fullness}")
        if (int(st.zs_bits[z]) >> ZS_ISOLATED_SHIFT) & ZS_ISOLATED_MASK:
            _fail(f"zspage {z}: pages still counted as isolated for migration")
        if info.inuse + len(info.free_list) != objs or len(set(info.free_list)) != len(
            info.free_list
        ):
            _fail(f"zspage {z}: inuse {info.inuse} + free {len(info.free_list)} != objs {objs}")
        if len(info.pages) != ppz:
            _fail(f"zspage {z}: {len(info.pages)} pages, class has {ppz}")
        allocated[cls] += objs
        inuse[cls] += info.inuse
        pages_total += ppz
        for i, pfn in enumerate(info.pages):
            if pfn in seen_pages:
                _fail(f"page {pfn} belongs to two zspages")
            seen_pages.add(pfn)
            pt = int(mm.page_type[pfn])
            foo = (-(-(i * ps) // size) * size - i * ps) if not info.huge else 0
            flags = int(mm.flags[pfn])
            if pt >> PAGE_TYPE_SHIFT != PGTY_zsmalloc or pt & 0xFFFFFF != foo:
                _fail(f"page {pfn}: page_type {pt:#x}, expected zsmalloc offset {foo}")
            if int(mm.zp_zspage[pfn]) != z or int(mm.refcount[pfn]) != 1:
                _fail(f"page {pfn}: zspage {mm.zp_zspage[pfn]} refcount {mm.refcount[pfn]}")
            if bool(flags >> PG_private & 1) != (i == 0) or flags >> PG_locked & 1:
                _fail(f"page {pfn}: flags {flags:#x} (PG_private only on the first, unlocked)")
        free = set(info.free_list)
        for idx in range(objs):
            off = idx * size
            pfn = info.pages[off // ps]
            addr = pfn * ps + off % ps
            word = int(mm.zp_handle[pfn]) if info.huge else int(mm.arena64[addr >> 3])
            if (idx in free) == bool(word & 1):
                _fail(f"zspage {z} slot {idx}: tag {word & 1} but free={idx in free}")
            if word & 1:
                slot_owner[(pfn, idx)] = word & ~1
                slot_class[(pfn, idx)] = cls
    pages_allocated = int(st.vars[0].pages_allocated)
    if pages_total != pages_allocated:
        _fail(f"sum of pages_per_zspage {pages_total} != pages_allocated {pages_allocated}")
    if not np.array_equal(allocated, st.stats[:, ZS_OBJS_ALLOCATED]):
        _fail("ZS_OBJS_ALLOCATED disagrees with the zspages found")
    if not np.array_equal(inuse, st.stats[:, ZS_OBJS_INUSE]):
        _fail("ZS_OBJS_INUSE disagrees with the zspages found")
    # Handles: every live one names an allocated slot holding it, and vice versa.
    h_hwm = int(st.vars[0].h_hwm)
    live = np.flatnonzero(st.handle_obj[:h_hwm] > 0)
    if len(live) != int(st.vars[0].h_live) or len(live) != len(slot_owner):
        _fail(f"{len(live)} live handles, {len(slot_owner)} allocated slots, "
              f"counter {st.vars[0].h_live}")
    pfn_shift = int(st.vars[0].obj_pfn_shift)
    for hid in live:
        handle = int(hid) << HANDLE_SHIFT
        obj = int(st.handle_obj[hid]) >> tag_shift
        pfn, idx = obj >> pfn_shift, obj & ((1 << bits) - 1)
        if slot_owner.get((pfn, idx)) != handle:
            _fail(f"handle {handle:#x} -> obj (pfn {pfn}, idx {idx}) does not hold it")
        cls_bits = (obj >> bits) & ((1 << (pfn_shift - bits)) - 1)
        if pfn_shift > bits and cls_bits != slot_class[(pfn, idx)]:
            _fail(f"handle {handle:#x}: obj names class {cls_bits}, its zspage is class "
                  f"{slot_class[(pfn, idx)]}")
    if len(seen_pages) + 1 > int(mm.vars[0].hwm):
        _fail("more zspage pages than frames ever allocated")
