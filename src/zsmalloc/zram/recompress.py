"""Recompression with secondary algorithms (CONFIG_ZRAM_MULTI_COMP, 6.18).

Mirrors ``recompress_store()``, ``scan_slots_for_recompress()`` and
``recompress_slot()`` in drivers/block/zram/zram_drv.c (6.18; spec zram.md
§2.14).  The reference kernel was built without it.

Rules that decide the numbers:

* priorities tried are ``prio .. prio_max-1`` where ``prio_max`` is capped at
  ``num_active_comps``; ``priority=P`` and ``algo=NAME`` narrow it;
* candidates are bucketed by size, largest first (as writeback);
* a result is accepted only if its zsmalloc *class index* is strictly smaller
  than the old object's, and (with a threshold) below the threshold;
* ``max_pages`` is spent on every slot tried, accepted or not;
* when the highest priority was tried without success the slot becomes
  INCOMPRESSIBLE;
* an accepted result is a new object (``zs_malloc``), the old one is freed;
  ``mem_used_max`` is not updated and a huge slot loses HUGE.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import numpy as np

from zsmalloc.errors import SysfsError
from zsmalloc.kparse import kstrtouint, kstrtoull, next_args
from zsmalloc.zram.postprocess import PpCtl
from zsmalloc.zram.stats import COMPR_DATA_SIZE, PAGES_STORED
from zsmalloc.zram.sysfs import fail
from zsmalloc.zram.table import (
    ZRAM_COMP_PRIORITY_BIT1,
    ZRAM_HUGE,
    ZRAM_IDLE,
    ZRAM_INCOMPRESSIBLE,
    ZRAM_PP_SLOT,
    ZRAM_SAME,
    ZRAM_SIZE_MASK,
    ZRAM_WB,
    zram_allocated,
    zram_free_page,
    zram_get_priority,
)

if TYPE_CHECKING:
    from zsmalloc.zram.device import Zram

RECOMPRESS_IDLE = 1 << 0
RECOMPRESS_HUGE = 1 << 1
_MODES = {
    "idle": RECOMPRESS_IDLE,
    "huge": RECOMPRESS_HUGE,
    "huge_idle": RECOMPRESS_IDLE | RECOMPRESS_HUGE,
}
_U64_MAX = (1 << 64) - 1


def scan_slots_for_recompress(zram: Zram, mode: int, prio_max: int, ctl: PpCtl) -> None:
    """Mirrors scan_slots_for_recompress()."""
    flags = zram.flags
    for index in range(zram.nr_pages):
        f = int(flags[index])
        if not zram_allocated(zram.handle, flags, index):
            continue
        if mode & RECOMPRESS_IDLE and not f & ZRAM_IDLE:
            continue
        if mode & RECOMPRESS_HUGE and not f & ZRAM_HUGE:
            continue
        if f & (ZRAM_WB | ZRAM_SAME | ZRAM_INCOMPRESSIBLE):
            continue
        if zram_get_priority(flags, index) + 1 >= prio_max:
            continue  # already compressed with the same or a higher priority
        ctl.place_pp_slot(flags, index)


def recompress_slot(
    zram: Zram, index: int, budget: list[int], threshold: int, prio: int, prio_max: int
) -> int:
    """Mirrors recompress_slot() (6.18): 0 or -errno; ``budget[0]`` is num_recomp_pages."""
    from zsmalloc.zs.core import zs_malloc, zs_obj_write

    flags, handle = zram.flags, zram.handle
    if handle[index] == 0:
        return -errno.EINVAL
    comp_len_old = int(flags[index] & ZRAM_SIZE_MASK)
    if comp_len_old < threshold:
        return 0  # already small enough
    page = zram.read_from_zspool(index)
    flags[index] &= ~ZRAM_IDLE
    lookup = zram.pool.table.lookup_class_index
    class_index_old = lookup(comp_len_old)
    prio = max(prio, int(zram_get_priority(flags, index)) + 1)
    if prio >= prio_max:
        return 0
    accepted: bytes | None = None
    while prio < prio_max:
        comp = zram.comps[prio]
        if comp is None:
            prio += 1
            continue
        out = bytes(comp.compress(page))
        if lookup(len(out)) >= class_index_old or (threshold and len(out) >= threshold):
            prio += 1
            continue
        accepted = out
        break
    if budget[0]:
        budget[0] -= 1
    if accepted is None:
        if prio >= zram.num_active_comps:
            flags[index] |= ZRAM_INCOMPRESSIBLE
        return 0
    st = zram.pool.state
    h = int(zs_malloc(st, len(accepted)))
    if h <= 0:
        return h if h < 0 else -errno.ENOMEM
    zs_obj_write(st, h, np.frombuffer(accepted, dtype=np.uint8).copy(), len(accepted))
    zram_free_page(st, handle, flags, zram.stats, zram.bd_map, index)
    zram._forget_actime(index, 1)
    handle[index] = h
    flags[index] = (
        (flags[index] & ~ZRAM_SIZE_MASK) | len(accepted) | (prio << ZRAM_COMP_PRIORITY_BIT1)
    )
    zram.stats[COMPR_DATA_SIZE] += len(accepted)
    zram.stats[PAGES_STORED] += 1
    return 0


def recompress_store(zram: Zram, text: str) -> None:
    """Mirrors recompress_store() (6.18): parse, pick the priority range, scan, recompress."""
    mode = 0
    budget = [_U64_MAX]
    threshold = 0
    alg: str | None = None
    prio, prio_max = 1, zram.zram_max_comps
    for key, val in next_args(text):
        if not val:
            raise fail("recompress", text, errno.EINVAL, f"{key} needs a value")
        if key == "type":
            mode = _MODES.get(val, 0)
            if not mode:
                raise fail("recompress", text, errno.EINVAL, f"unknown type {val!r}")
        elif key == "max_pages":
            budget[0] = kstrtoull(val, 10, attr="recompress")
        elif key == "threshold":
            threshold = kstrtouint(val, 10, attr="recompress")
        elif key == "algo":
            alg = val
        elif key == "priority":
            prio = kstrtouint(val, 10, attr="recompress") or 1
            prio_max = prio + 1
    if threshold >= (zram.huge_class_size or 3625):
        raise fail("recompress", text, errno.EINVAL, "threshold must be below huge_class_size")
    if not zram.initstate:
        raise fail("recompress", text, errno.EINVAL, f"{zram.name} is not initialised")
    if alg is not None:
        found = next(
            (p for p in range(prio, zram.zram_max_comps) if zram.comp_algs[p] == alg), None
        )
        if found is None:
            raise fail("recompress", text, errno.EINVAL, f"no secondary algorithm {alg!r}")
        prio, prio_max = found, found + 1
    prio_max = min(prio_max, zram.num_active_comps)
    if prio >= prio_max:
        raise fail(
            "recompress", text, errno.EINVAL, "no secondary algorithm in that priority range"
        )
    ctl = PpCtl()
    scan_slots_for_recompress(zram, mode, prio_max, ctl)
    err = 0
    while (sel := ctl.select_pp_slot()) is not None:
        if not budget[0]:
            break
        bid, index = sel
        if zram.flags[index] & ZRAM_PP_SLOT:
            err = recompress_slot(zram, index, budget, threshold, prio, prio_max)
        ctl.release_pp_slot(zram.flags, bid)
        if err:
            break
    ctl.drain(zram.flags)
    if err:
        raise SysfsError(
            f"recompress <- {text.strip()!r}: {errno.errorcode.get(-err, err)}", errno=-err
        )
