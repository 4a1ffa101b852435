"""Which live objects straddle two pages: what a read copies through the per-CPU buffer.

A zspage chains order-0 pages, so a slot can straddle two of them, and such an object
cannot be reached through one kmap: zs_obj_read_begin() (6.18) copies the whole slot,
``class->size`` bytes, into the caller's local buffer, as zs_map_object() copied it into
the per-CPU vm_buf before; both decide by the slot, ``offset_in_page(class->size *
obj_idx) + class->size > PAGE_SIZE``.  The RFC "zsmalloc: size-classes chain-length
tunings" trades these copies against tail waste.  :func:`span_by_class` counts them for
the objects a pool holds (a huge object fills its one page from offset 0: never spans).
"""

from __future__ import annotations

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.zs.handle import handle_to_obj, obj_to_obj_idx, obj_to_pfn
from zsmalloc.zs.state import PoolState
from zsmalloc.zs.zspage import get_zspage, zspage_class


@njit
def span_by_class(st: PoolState, handles: np.ndarray, out: np.ndarray) -> None:
    """``out[class] +=`` the objects of ``handles`` (live zsmalloc handles) whose slot
    straddles a page boundary."""
    mask = st.mm.page_size - 1
    for i in range(handles.shape[0]):
        obj = handle_to_obj(st, handles[i])
        cls = zspage_class(st, get_zspage(st, obj_to_pfn(st, obj)))
        size = st.class_size[cls]
        if ((size * obj_to_obj_idx(st, obj)) & mask) + size > st.mm.page_size:
            out[cls] += 1
