"""Test helpers for the allocator: pool snapshots."""

from __future__ import annotations

import numpy as np

from zsmalloc import Pool

_ZS_TABLE = ("zs_bits", "zs_inuse", "zs_freeobj", "zs_first", "zs_prev", "zs_next")


def snapshot(pool: Pool) -> dict[str, bytes]:
    """Every byte of a pool's state that an allocation can have touched.

    The arena and ``mem_map`` up to the high-water mark, the free-page stack up to its
    depth, the zspage and handle tables up to theirs, every per-class array and every
    counter.  Beyond the high-water marks the reserved arrays are untouched zeros (a
    pool grows by reserving more of them: :mod:`zsmalloc.zs.state`), so this is the
    whole state of a pool of any reservation, without reading gigabytes of zeros.
    """
    st = pool.state
    m, v = st.mm.vars[0], st.vars[0]
    hwm, page_size = int(m.hwm), st.mm.page_size
    out: dict[str, bytes] = {
        "arena": st.mm.arena[: hwm * page_size].tobytes(),
        "mem_map": pool.mem_map[:hwm].tobytes(),
        "mm_vars": st.mm.vars.tobytes(),
        "free_stack": st.mm.free_stack[: int(m.nr_free)].tobytes(),
        "handle_obj": st.handle_obj[: int(v.h_hwm)].tobytes(),
    }
    for name in _ZS_TABLE:
        out[name] = getattr(st, name)[: int(v.zs_hwm)].tobytes()
    for name, value in st._asdict().items():
        if isinstance(value, np.ndarray) and name not in out:
            out[name] = value.tobytes()
    return out
