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

Slots change only through :mod:`zsmalloc.zram.table`; what this module needs of
the device is the :class:`RecompressDevice` protocol (the device imports this
module, never the other way round).
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from zsmalloc.errors import SysfsError
from zsmalloc.kparse import kstrtouint, kstrtoull, next_args
from zsmalloc.profile import KernelProfile
from zsmalloc.zram.postprocess import PpCtl
from zsmalloc.zram.sysfs import fail
from zsmalloc.zram.table import (
    ZramTable,
    slot_layout,
    slot_store_obj,
    zram_allocated,
    zram_get_obj_size,
    zram_get_priority,
)
from zsmalloc.zs.size_class import class_table

if TYPE_CHECKING:
    from zsmalloc.zs.pool import Pool

RECOMPRESS_IDLE = 1 << 0
RECOMPRESS_HUGE = 1 << 1
_MODES = {
    "idle": RECOMPRESS_IDLE,
    "huge": RECOMPRESS_HUGE,
    "huge_idle": RECOMPRESS_IDLE | RECOMPRESS_HUGE,
}
_U64_MAX = (1 << 64) - 1


@dataclass
class RecompBudget:
    """``num_recomp_pages``: max_pages, which recompress_slot() lowers through a pointer."""

    num_recomp_pages: int = _U64_MAX


class RecompressDevice(Protocol):
    """What recompression reads of the device (:class:`zsmalloc.zram.device.Zram`)."""

    @property
    def name(self) -> str: ...
    @property
    def profile(self) -> KernelProfile: ...
    @property
    def initstate(self) -> bool: ...
    @property
    def nr_pages(self) -> int: ...
    @property
    def table(self) -> ZramTable: ...
    @property
    def pool(self) -> Pool: ...
    @property
    def zram_max_comps(self) -> int: ...
    @property
    def num_active_comps(self) -> int: ...
    @property
    def comp_algs(self) -> Sequence[str | None]: ...
    @property
    def comps(self) -> Sequence[Any]: ...
    def read_from_zspool(self, index: int) -> bytes: ...


def scan_slots_for_recompress(ctl: PpCtl, mode: int, prio_max: int) -> None:
    """Mirrors scan_slots_for_recompress()."""
    lay, flags = ctl.lay, ctl.zt.flags
    for index in range(flags.size):
        f = int(flags[index])
        if not zram_allocated(lay, f):
            continue
        if mode & RECOMPRESS_IDLE and not f & lay.ZRAM_IDLE:
            continue
        if mode & RECOMPRESS_HUGE and not f & lay.ZRAM_HUGE:
            continue
        if f & (lay.ZRAM_WB | lay.ZRAM_SAME | lay.ZRAM_INCOMPRESSIBLE):
            continue
        if zram_get_priority(lay, f) + 1 >= prio_max:
            continue  # already compressed with the same or a higher priority
        ctl.place_pp_slot(index)


def recompress_slot(
    dev: RecompressDevice,
    index: int,
    budget: RecompBudget,
    threshold: int,
    prio: int,
    prio_max: int,
) -> int:
    """Mirrors recompress_slot() (6.18): 0 or -errno; every slot tried spends ``budget``."""
    zt, lay = dev.table, slot_layout(dev.profile)
    flags = zt.flags
    if zt.handle[index] == 0:
        return -errno.EINVAL
    comp_len_old = zram_get_obj_size(lay, flags[index])
    if comp_len_old < threshold:
        return 0  # already small enough
    page = dev.read_from_zspool(index)
    flags[index] &= ~lay.ZRAM_IDLE
    lookup = dev.pool.table.lookup_class_index
    class_index_old = lookup(comp_len_old)
    prio = max(prio, zram_get_priority(lay, flags[index]) + 1)
    if prio >= prio_max:
        return 0
    accepted: bytes | None = None
    while prio < prio_max:
        comp = dev.comps[prio]
        if comp is None:
            prio += 1
            continue
        out = bytes(comp.compress(page))
        if lookup(len(out)) >= class_index_old or (threshold and len(out) >= threshold):
            prio += 1
            continue
        accepted = out
        break
    if budget.num_recomp_pages:
        budget.num_recomp_pages -= 1
    if accepted is None:
        if prio >= dev.num_active_comps:
            flags[index] |= lay.ZRAM_INCOMPRESSIBLE
        return 0
    data = np.frombuffer(accepted, dtype=np.uint8).copy()
    prio_flags = prio << lay.ZRAM_COMP_PRIORITY_BIT1
    pool = dev.pool
    while True:
        err = int(slot_store_obj(pool.state, zt, index, len(accepted), data, prio_flags, False))
        if err != -errno.ENOMEM or not pool.grow():  # -ENOMEM below the limit: reserve more
            return err


def recompress_store(dev: RecompressDevice, text: str) -> None:
    """Mirrors recompress_store() (6.18): parse, pick the priority range, scan, recompress."""
    mode = 0
    budget = RecompBudget()
    threshold = 0
    alg: str | None = None
    prio, prio_max = 1, dev.zram_max_comps
    for key, val in next_args(text):
        if not val:
            raise fail("recompress", text, errno.EINVAL, f"{key} needs a value")
        if key == "type":
            mode = _MODES.get(val, 0)
            if not mode:
                raise fail("recompress", text, errno.EINVAL, f"unknown type {val!r}")
        elif key == "max_pages":
            budget.num_recomp_pages = kstrtoull(val, 10, attr="recompress")
        elif key == "threshold":
            threshold = kstrtouint(val, 10, attr="recompress")
        elif key == "algo":
            alg = val
        elif key == "priority":
            prio = kstrtouint(val, 10, attr="recompress") or 1
            prio_max = prio + 1
    # the driver's huge_class_size; before any pool exists, the one the profile gives
    huge_class_size = int(dev.table.dev[0]["huge_class_size"])
    if not huge_class_size:
        huge_class_size = class_table(dev.profile).huge_class_size
    if threshold >= huge_class_size:
        raise fail("recompress", text, errno.EINVAL, "threshold must be below huge_class_size")
    if not dev.initstate:
        raise fail("recompress", text, errno.EINVAL, f"{dev.name} is not initialised")
    if alg is not None:
        found = next((p for p in range(prio, dev.zram_max_comps) if dev.comp_algs[p] == alg), None)
        if found is None:
            raise fail("recompress", text, errno.EINVAL, f"no secondary algorithm {alg!r}")
        prio, prio_max = found, found + 1
    prio_max = min(prio_max, dev.num_active_comps)
    if prio >= prio_max:
        raise fail(
            "recompress", text, errno.EINVAL, "no secondary algorithm in that priority range"
        )
    zt = dev.table
    ctl = PpCtl(zt, slot_layout(dev.profile))
    scan_slots_for_recompress(ctl, mode, prio_max)
    err = 0
    while (sel := ctl.select_pp_slot()) is not None:
        if not budget.num_recomp_pages:
            break
        bid, index = sel
        if zt.flags[index] & ctl.lay.ZRAM_PP_SLOT:
            err = recompress_slot(dev, index, budget, threshold, prio, prio_max)
        ctl.release_pp_slot(bid)
        if err:
            break
    ctl.drain()
    if err:
        raise SysfsError(
            f"recompress <- {text.strip()!r}: {errno.errorcode.get(-err, err)}", errno=-err
        )
