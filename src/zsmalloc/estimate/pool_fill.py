"""The estimate's objects in a real allocator: fill a ``Pool``, then ``zs_compact`` it.

The closed form of :mod:`zsmalloc.estimate.fill` says what a fresh fill leaves
behind.  Compaction is run on the allocator model itself, as zram's ``compact``
would run it, under the rules of the table's kernel (6.1's four lists and old
compaction for a 6.1 table): a :class:`~zsmalloc.Pool` receives one ``zs_malloc`` per stored
object (class by class, in one numba loop: the final state of a fresh fill does
not depend on the order of the objects), then ``zs_compact``.  The pool also
renders the debugfs ``classes`` table.  Its page count before compaction must
equal the closed form's, which makes every estimate a cross-check of the two.

Memory: the pool's arena holds the zspage pages it allocates (the estimate's
``mem_used_total``), for one algorithm at a time.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.errors import InvariantError
from zsmalloc.estimate.fill import FillState
from zsmalloc.profile import ZS_HANDLE_SIZE
from zsmalloc.zs.core import zs_malloc
from zsmalloc.zs.state import PoolState


@njit(nogil=True)
def _malloc_counts(st: PoolState, sizes: np.ndarray, counts: np.ndarray) -> int:
    """zs_malloc(sizes[k]) counts[k] times for each k; 0, or the first failure (< 0).

    ``counts`` is decremented as objects are allocated, so after a failure the call
    resumes where it stopped (the pool grows on -ENOMEM, :meth:`Pool.grow`).
    """
    for k in range(sizes.shape[0]):
        while counts[k] > 0:
            h = zs_malloc(st, sizes[k])
            if h < 0:
                return h
            counts[k] -= 1
    return 0


@dataclass(frozen=True)
class PoolResult:
    """What the allocator model says about the fill."""

    total_pages: int  # zs_get_total_pages() after the fill
    pages_compacted: int  # zs_compact()'s return: pages freed
    total_pages_after_compact: int
    classes_text: str  # debugfs ``classes`` after the fill (before compaction)


def fill_pool(state: FillState) -> PoolResult:
    """Give a fresh Pool the fill's objects, compact it, and check it against ``state``."""
    from zsmalloc import Pool

    table = state.table
    used = np.flatnonzero(state.obj_used)
    # Any request that lands in class k will do: its size minus the handle header.
    sizes = np.minimum(state.size[used] - ZS_HANDLE_SIZE, table.page_size).astype(np.int64)
    counts = state.obj_used[used].astype(np.int64)
    # the table's kernel: its allocation rules too (6.1's lists and compaction)
    pool = Pool(profile=table.profile, max_pages=state.total_pages + 2)
    with pool.lock:
        err = _malloc_counts(pool.state, sizes, counts)
        while err == -errno.ENOMEM and pool.grow():
            err = _malloc_counts(pool.state, sizes, counts)
    if err < 0 or pool.total_pages() != state.total_pages:
        raise InvariantError(
            f"estimate: the allocator model holds {pool.total_pages()} pages "
            f"(zs_malloc status {err}), the closed form {state.total_pages}"
        )
    text = pool.classes_text()
    freed = pool.compact()
    return PoolResult(state.total_pages, freed, pool.total_pages(), text)
