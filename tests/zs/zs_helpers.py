"""Test helpers for the allocator: pool snapshots."""

from __future__ import annotations

import numpy as np

from zsmalloc import Pool


def snapshot(pool: Pool) -> dict[str, bytes]:
    """Every byte of a pool's state: arena, mem_map, tables, counters."""
    st = pool.state
    out: dict[str, bytes] = {
        "arena": st.mm.arena.tobytes(),
        "mem_map": pool.mem_map.tobytes(),
        "mm_vars": st.mm.vars.tobytes(),
        "free_stack": st.mm.free_stack.tobytes(),
    }
    for name, value in st._asdict().items():
        if isinstance(value, np.ndarray):
            out[name] = value.tobytes()
    return out
