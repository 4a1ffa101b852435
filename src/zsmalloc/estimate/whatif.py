"""What a class-table change does to one workload: the reference kernel against variants.

``zsmalloc whatif`` takes one workload and prices it under the reference profile (the
kernel and chain size the user names; by default what ``estimate`` models) and under
every combination of the ``--vary`` axes:

=======  =====================================================================
kernel   a profile row (6.1 chains at most 4 pages chosen by usage percent)
chain    CONFIG_ZSMALLOC_CHAIN_SIZE (4..16 as Kconfig; 1..3 as what-if tables)
delta    ZS_SIZE_CLASS_DELTA in bytes (the RFC proposes 16 on every page size)
rule     how pages per zspage are chosen: least-waste, waste-threshold, usedpc
=======  =====================================================================

For a page set (files, processes, the sample) the workload is ``estimate``'s: the pages
written once, in order, to a fresh zram device.  Its final state depends only on the
class table and the histogram of compressed lengths (:mod:`zsmalloc.estimate.fill`), so
every variant is one more :func:`~zsmalloc.estimate.fill.fill_state` on the same
histogram: the reference side is exactly ``estimate``'s figures, and a variant costs a
class table and a sum (:func:`price_fill`).  A zram size trace replays through the
step-by-step model instead, once per side (:func:`price_trace`): the reference checked
against the trace's mm_stat lines, each variant with them dropped.

Besides the mm_stat columns each side carries the copy cost its table implies: the
stored objects whose slot straddles two pages (``offset_in_page(size * obj_idx) + size
> PAGE_SIZE``, the test zs_obj_read_begin() makes in 6.18 and zs_map_object() before)
and the bytes one read of each of them copies through the per-CPU buffer (the whole
slot): in closed form for a fill, by walking the live objects after a replay
(:mod:`zsmalloc.zs.copy_cost`); and the memdesc what-if of :mod:`zsmalloc.mm.memdesc`
for its pages.  Per size class, sides are joined on the class size: a row for every size
some side has a class of, so a split or merged class shows as a size only one side has.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from zsmalloc.errors import InputError, ZsmallocError
from zsmalloc.estimate.fill import FillState, fill_state
from zsmalloc.mm.memdesc import MemdescCost, memdesc_cost
from zsmalloc.profile import (
    CHAIN_RULES,
    MIN_CHAIN_SIZE,
    KernelProfile,
    kernel_version,
)
from zsmalloc.zram.stats import MmStat
from zsmalloc.zs.size_class import ClassTable, class_table, objs_spanning
from zsmalloc.zs.state import ZS_OBJS_ALLOCATED, ZS_OBJS_INUSE

if TYPE_CHECKING:
    from zsmalloc.zram.replay import ReplayResult
    from zsmalloc.zs.replay import ZsReplayResult

AXES = ("kernel", "chain", "delta", "rule")


def parse_vary(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["chain=4,8,16", "rule=waste-threshold"]`` -> ``{"chain": ["4", "8", "16"], ...}``.

    An axis may be given once; its values are kept in the order given, without repeats.
    """
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, eq, values = spec.partition("=")
        name = name.strip()
        if not eq or name not in AXES:
            raise InputError(
                f"--vary {spec!r}: expected AXIS=V1,V2,... with AXIS one of {', '.join(AXES)}"
            )
        if name in out:
            raise InputError(f"--vary {name} given twice: list all its values in one")
        vals = [v.strip() for v in values.split(",")]
        if not all(vals):
            raise InputError(f"--vary {spec!r}: an empty value")
        out[name] = list(dict.fromkeys(vals))
    return out


def _apply(axis: str, value: str) -> dict[str, Any]:
    """The KernelProfile fields one axis value sets."""
    if axis == "kernel":
        return {"version": kernel_version(value)}
    if axis == "rule":
        if value not in CHAIN_RULES:
            raise InputError(f"--vary rule={value}: known rules: {', '.join(CHAIN_RULES)}")
        return {"chain_rule": value}
    if not value.isdigit():
        raise InputError(f"--vary {axis}={value}: expected a whole number")
    if axis == "chain":
        return {"chain_size": int(value), "variant_chain": int(value) < MIN_CHAIN_SIZE}
    return {"class_delta": int(value)}


def variant_profiles(base: KernelProfile, vary: dict[str, list[str]]) -> list[KernelProfile]:
    """Every combination of the axes' values applied to ``base``, in the order given.

    A profile that equals one before it (6.1 ignores the chain size; a delta equal to the
    kernel's is the kernel's) is listed once.  An impossible combination raises
    :class:`~zsmalloc.errors.InputError` naming it.
    """
    axes = [a for a in AXES if a in vary]
    out: list[KernelProfile] = []
    for combo in itertools.product(*(vary[a] for a in axes)):
        fields: dict[str, Any] = {}
        try:
            for axis, value in zip(axes, combo, strict=True):
                fields.update(_apply(axis, value))
            prof = replace(base, **fields)
        except ZsmallocError as exc:
            what = ", ".join(f"{a}={v}" for a, v in zip(axes, combo, strict=True))
            raise InputError(f"--vary {what}: {exc}") from None
        if prof not in out:
            out.append(prof)
    return out


@dataclass(frozen=True)
class Side:
    """One profile's figures for the workload; per-class arrays over the real classes."""

    profile: KernelProfile
    table: ClassTable
    mm_stat: MmStat
    index: np.ndarray  # the real classes, ascending
    obj_used: np.ndarray
    obj_allocated: np.ndarray
    span_objects: np.ndarray | None  # None where the slots are not known (a trace)
    compact_frees_pages: int | None = None  # a page set's closed form: always 0

    @property
    def label(self) -> str:
        return self.profile.describe()

    @property
    def size(self) -> np.ndarray:
        return self.table.size[self.index].astype(np.int64)

    @property
    def pages_per_zspage(self) -> np.ndarray:
        return self.table.pages_per_zspage[self.index].astype(np.int64)

    @property
    def objs_per_zspage(self) -> np.ndarray:
        return self.table.objs_per_zspage[self.index].astype(np.int64)

    @property
    def zspages(self) -> np.ndarray:
        return self.obj_allocated // self.objs_per_zspage

    @property
    def pages_used(self) -> np.ndarray:
        return self.zspages * self.pages_per_zspage

    @property
    def total_pages(self) -> int:
        return self.mm_stat.mem_used_total >> self.profile.PAGE_SHIFT

    @property
    def read_copy_bytes(self) -> np.ndarray | None:
        """Per class: one read of every spanning object copies its whole slot."""
        return None if self.span_objects is None else self.span_objects * self.size

    @property
    def memdesc(self) -> MemdescCost:
        return memdesc_cost(self.total_pages, self.profile.page_size)

    @property
    def lost_bytes(self) -> int:
        """mem_used_total - compr_data_size: what fragmentation costs."""
        return self.mm_stat.mem_used_total - self.mm_stat.compr_data_size

    def totals(self) -> dict[str, Any]:
        copies = self.read_copy_bytes
        return {
            "profile": self.label,
            "mm_stat": self.mm_stat._asdict(),
            "mm_stat_line": self.mm_stat.format().rstrip("\n"),
            "lost_to_fragmentation_bytes": self.lost_bytes,
            "zspages": int(self.zspages.sum()),
            "classes_used": int((self.obj_used > 0).sum()),
            "huge_class_size": self.table.huge_class_size,
            "compact_frees_pages": self.compact_frees_pages,
            "span_objects": None if self.span_objects is None else int(self.span_objects.sum()),
            "read_copy_bytes": None if copies is None else int(copies.sum()),
            "memdesc": self.memdesc.as_dict(),
        }


def span_objects(state: FillState) -> np.ndarray:
    """Per real class: the stored objects whose slot straddles two pages after the fill.

    The fill leaves ``obj_used // objs`` full zspages (``table.span`` each) and one
    partial zspage holding slots ``0 .. obj_used % objs - 1`` (zs_malloc takes a fresh
    zspage's free slots in order).
    """
    t = state.table
    out = np.zeros(len(state.index), np.int64)
    for k, idx in enumerate(state.index):
        used, objs = int(state.obj_used[k]), int(state.objs_per_zspage[k])
        if used == 0:
            continue
        rest = objs_spanning(int(state.size[k]), used % objs, t.page_size)
        out[k] = (used // objs) * int(t.span[idx]) + rest
    return out


def price_fill(len_hist: np.ndarray, same_pages: int, profile: KernelProfile) -> Side:
    """One side for a page set: ``estimate``'s fill under ``profile``'s class table."""
    st = fill_state(len_hist, same_pages, class_table(profile))
    return Side(
        profile, st.table, st.mm_stat(), st.index, st.obj_used, st.obj_allocated,
        span_objects(st), st.pages_compacted(),
    )


def price_trace(trace: str, profile: KernelProfile, *, check: bool) -> tuple[Side, ReplayResult]:
    """One side for a zram size trace: replayed step by step on a ``profile`` device.

    ``check`` compares the trace's ``m`` lines (the reference, replayed as recorded);
    a variant's are dropped, its numbers are meant to differ.
    """
    from zsmalloc.zram.replay import replay_pool  # the numba model: only for traces
    from zsmalloc.zram.table import slot_layout
    from zsmalloc.zs.copy_cost import span_by_class

    res, pool, zt = replay_pool(trace, profile, check=check)
    if res.final_mm_stat is None:
        raise InputError("the trace has no operations", path=trace)
    st = pool.state
    table = class_table(profile)
    real = table.real_indices
    lay = slot_layout(profile)
    # slots holding a zsmalloc object: not empty, not a same-filled word, not written back
    stored = (zt.handle != 0) & (zt.flags & (lay.ZRAM_SAME | lay.ZRAM_WB) == 0)
    span = np.zeros(table.nr_size_classes, np.int64)
    span_by_class(st, zt.handle[stored], span)
    return Side(
        profile, table, res.final_mm_stat, real,
        st.stats[real, ZS_OBJS_INUSE].astype(np.int64),
        st.stats[real, ZS_OBJS_ALLOCATED].astype(np.int64),
        span[real],
    ), res


def price_zs_trace(
    trace: str, profile: KernelProfile, *, check: bool
) -> tuple[Side, ZsReplayResult]:
    """One side for a zs trace (``zsmalloc record``'s): its pools replayed on ``profile``.

    The pools are summed.  A zs trace knows objects, not pages: its mm_stat counts each
    live object as one stored page (``orig_data_size`` = objects x PAGE_SIZE), an object
    of PAGE_SIZE bytes as huge, and has no same-filled pages and no limit;
    ``mem_used_max`` is the sum of the pools' peaks.  The recorded sizes are what
    zsmalloc was asked for, so a variant keeps them (a zram variant with another
    huge_class_size would have asked for other sizes: not in the trace).
    """
    from zsmalloc.zs.copy_cost import span_by_class
    from zsmalloc.zs.replay import C_BYTES, C_MAX, replay_zs

    res = replay_zs(trace, profile, check=check)
    table = class_table(profile)
    real = table.real_indices
    used = np.zeros(real.size, np.int64)
    allocated = np.zeros(real.size, np.int64)
    span = np.zeros(table.nr_size_classes, np.int64)
    objects = huge = nbytes = peak = compacted = 0
    for p in res.pools.values():
        st = p.pool.state
        used += st.stats[real, ZS_OBJS_INUSE].astype(np.int64)
        allocated += st.stats[real, ZS_OBJS_ALLOCATED].astype(np.int64)
        live = p.handles != 0
        span_by_class(st, p.handles[live], span)
        objects += int(live.sum())
        huge += int((p.sizes[live] == profile.page_size).sum())
        nbytes += int(p.counters[C_BYTES])
        peak += int(p.counters[C_MAX])
        compacted += p.summary()["pages_compacted"]  # type: ignore[operator]
    ps = profile.page_size
    mm = MmStat(objects * ps, nbytes, res.total_pages * ps, 0, peak * ps, 0, compacted,
                huge, huge)
    return Side(profile, table, mm, real, used, allocated, span[real]), res


def class_rows(ref: Side, var: Side) -> list[dict[str, Any]]:
    """Per class size, both sides' class (or None where a side has no class of that size)
    and the differences; only sizes where either side stores an object."""

    def by_size(s: Side) -> dict[int, int]:
        return {int(sz): k for k, sz in enumerate(s.size)}

    def cell(s: Side, k: int | None) -> dict[str, int | None] | None:
        if k is None:
            return None
        return {
            "pages_per_zspage": int(s.pages_per_zspage[k]),
            "objs_per_zspage": int(s.objs_per_zspage[k]),
            "obj_used": int(s.obj_used[k]),
            "obj_allocated": int(s.obj_allocated[k]),
            "pages_used": int(s.pages_used[k]),
            "span_objects": None if s.span_objects is None else int(s.span_objects[k]),
        }

    ra, va = by_size(ref), by_size(var)
    rows = []
    for size in sorted(ra.keys() | va.keys()):
        r, v = cell(ref, ra.get(size)), cell(var, va.get(size))
        if not ((r and r["obj_used"]) or (v and v["obj_used"])):
            continue
        rp = int(r["pages_used"] or 0) if r else 0
        vp = int(v["pages_used"] or 0) if v else 0
        rows.append({"size": size, "reference": r, "variant": v, "pages_used_delta": vp - rp})
    return rows


def delta(ref: Side, var: Side) -> dict[str, int]:
    """variant - reference for the mm_stat columns and the derived totals."""
    out = {k: int(b) - int(a) for k, a, b in zip(MmStat._fields, ref.mm_stat, var.mm_stat,
                                                 strict=True)}
    rt, vt = ref.totals(), var.totals()
    for k in ("lost_to_fragmentation_bytes", "zspages", "span_objects", "read_copy_bytes"):
        if rt[k] is not None and vt[k] is not None:
            out[k] = vt[k] - rt[k]
    out["memdesc_bytes"] = var.memdesc.memdesc_bytes - ref.memdesc.memdesc_bytes
    return out


def to_json(ref: Side, variants: Sequence[Side], workload: dict[str, Any]) -> dict[str, Any]:
    return {
        "workload": workload,
        "reference": ref.totals(),
        "variants": [
            {**v.totals(), "delta": delta(ref, v), "classes": class_rows(ref, v)}
            for v in variants
        ],
    }
