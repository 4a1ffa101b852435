"""Pool statistics and the debugfs ``classes`` file.

Mirrors zs_stats_size_show() in mm/zsmalloc.c (6.18; same columns since 6.6; 6.1's
two-column form for a 6.1 pool).  The kernel has the file only with
CONFIG_ZSMALLOC_STAT; we always can render it.  Every
value is read from the per-class counters ``stats[class, 14]`` (fullness groups 0..11,
ZS_OBJS_ALLOCATED, ZS_OBJS_INUSE); derived columns (``pages_used``, ``freeable``) are
computed when read, never stored, as the kernel does.
"""

from __future__ import annotations

from zsmalloc.errors import InvariantError
from zsmalloc.profile import ZS_HANDLE_SIZE
from zsmalloc.zs.size_class import (
    NR_FULLNESS_GROUPS,
    ZS_ALMOST_EMPTY,
    ZS_ALMOST_FULL,
    ZS_INUSE_RATIO_10,
    can_compact_pages,
)
from zsmalloc.zs.state import (
    ZS_OBJS_ALLOCATED,
    ZS_OBJS_INUSE,
    PoolState,
    fullness_4_groups,
)

GROUP_HEADERS = ("10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%", "99%", "100%")


def classes_text(st: PoolState) -> str:
    """The ``/sys/kernel/debug/zsmalloc/<pool>/classes`` text, byte for byte (spec §8.1).

    The kernel's format strings: header `` %5s %5s`` + 11 x `` %9s`` + `` %13s %10s %10s
    %16s %8s``; rows `` %5u %5u `` + 11 x ``%9lu `` + ``%13lu %10lu %10lu %16d %8lu``;
    a blank line, then the Total row in the same shape with empty size and
    pages_per_zspage fields.
    """
    if fullness_4_groups(st):
        return classes_text_61(st)
    groups = range(ZS_INUSE_RATIO_10, NR_FULLNESS_GROUPS)
    header = f" {'class':>5} {'size':>5} " + " ".join(f"{h:>9}" for h in GROUP_HEADERS)
    header += f" {'obj_allocated':>13} {'obj_used':>10} {'pages_used':>10}"
    header += f" {'pages_per_zspage':>16} {'freeable':>8}\n"
    lines = [header]
    group_totals = [0] * NR_FULLNESS_GROUPS
    total_objs = total_used = total_pages = total_freeable = 0
    for i in range(len(st.class_size)):
        if int(st.class_index[i]) != i:  # merged alias
            continue
        row = st.stats[i]
        objs, ppz = int(st.class_objs[i]), int(st.class_ppz[i])
        text = f" {i:5d} {int(st.class_size[i]):5d} "
        for fg in groups:
            group_totals[fg] += int(row[fg])
            text += f"{int(row[fg]):9d} "
        obj_allocated, obj_used = int(row[ZS_OBJS_ALLOCATED]), int(row[ZS_OBJS_INUSE])
        freeable = int(can_compact_pages(obj_allocated, obj_used, objs, ppz))
        pages_used = obj_allocated // objs * ppz
        text += f"{obj_allocated:13d} {obj_used:10d} {pages_used:10d} {ppz:16d} {freeable:8d}\n"
        lines.append(text)
        total_objs += obj_allocated
        total_used += obj_used
        total_pages += pages_used
        total_freeable += freeable
    lines.append("\n")
    total = f" {'Total':>5} {'':>5} " + "".join(f"{group_totals[fg]:9d} " for fg in groups)
    total += f"{total_objs:13d} {total_used:10d} {total_pages:10d} {'':>16} {total_freeable:8d}\n"
    lines.append(total)
    return "".join(lines)


def classes_text_61(st: PoolState) -> str:
    """The ``classes`` file of 6.1 (zsmalloc.md §8.2): almost_full and almost_empty only.

    Format strings of 6.1's zs_stats_size_show(): `` %5s %5s %11s %12s %13s %10s %10s
    %16s %8s`` for the header, `` %5u %5u %11lu %12lu %13lu %10lu %10lu %16d %8lu`` per
    real class, a blank line and the Total row with empty size and pages_per_zspage.
    """
    lines = [
        f" {'class':>5} {'size':>5} {'almost_full':>11} {'almost_empty':>12} "
        f"{'obj_allocated':>13} {'obj_used':>10} {'pages_used':>10} "
        f"{'pages_per_zspage':>16} {'freeable':>8}\n"
    ]
    totals = [0] * 6  # almost_full, almost_empty, objs, used, pages, freeable
    for i in range(len(st.class_size)):
        if int(st.class_index[i]) != i:
            continue
        row = st.stats[i]
        objs, ppz = int(st.class_objs[i]), int(st.class_ppz[i])
        obj_allocated, obj_used = int(row[ZS_OBJS_ALLOCATED]), int(row[ZS_OBJS_INUSE])
        vals = (
            int(row[ZS_ALMOST_FULL]),
            int(row[ZS_ALMOST_EMPTY]),
            obj_allocated,
            obj_used,
            obj_allocated // objs * ppz,
            int(can_compact_pages(obj_allocated, obj_used, objs, ppz)),
        )
        lines.append(
            f" {i:5d} {int(st.class_size[i]):5d} {vals[0]:11d} {vals[1]:12d} {vals[2]:13d} "
            f"{vals[3]:10d} {vals[4]:10d} {ppz:16d} {vals[5]:8d}\n"
        )
        totals = [t + v for t, v in zip(totals, vals, strict=True)]
    lines.append("\n")
    lines.append(
        f" {'Total':>5} {'':>5} {totals[0]:11d} {totals[1]:12d} {totals[2]:13d} "
        f"{totals[3]:10d} {totals[4]:10d} {'':>16} {totals[5]:8d}\n"
    )
    return "".join(lines)


def bytes_report(st: PoolState) -> dict[str, int]:
    """Account for every byte of the pages zspages hold (obmalloc's habit).

    ``objects``: capacity of live objects (slot size less the 8-byte handle header;
    a whole page for huge ones); ``handle_headers``: those headers; ``free_slots``:
    slots on free lists; ``tail_waste``: the unused end of each zspage.  The four sum
    to ``zs_get_total_pages() * PAGE_SIZE``, which is asserted.  (The allocator does not
    know the requested sizes, so slack inside a slot counts as object capacity.)
    """
    page_size = st.mm.page_size
    pages_allocated = int(st.vars[0].pages_allocated)
    out = {"objects": 0, "handle_headers": 0, "free_slots": 0, "tail_waste": 0}
    total = 0
    for i in range(len(st.class_size)):
        if int(st.class_index[i]) != i:
            continue
        size, objs, ppz = int(st.class_size[i]), int(st.class_objs[i]), int(st.class_ppz[i])
        allocated = int(st.stats[i, ZS_OBJS_ALLOCATED])
        used = int(st.stats[i, ZS_OBJS_INUSE])
        zspages = allocated // objs
        header = 0 if (objs == 1 and ppz == 1) else ZS_HANDLE_SIZE  # huge: no header
        out["objects"] += used * (size - header)
        out["handle_headers"] += used * header
        out["free_slots"] += (allocated - used) * size
        out["tail_waste"] += zspages * (ppz * page_size - objs * size)
        total += zspages * ppz * page_size
    if sum(out.values()) != total or total != pages_allocated * page_size:
        raise InvariantError(
            f"bytes report sums to {sum(out.values())}, zspages hold {total}, "
            f"pages_allocated says {pages_allocated * page_size}"
        )
    return out
