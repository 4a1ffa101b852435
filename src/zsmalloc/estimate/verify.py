"""``--verify``: replay the pages through the full zram + zsmalloc model and compare.

The estimate's figures come from the closed form in
:mod:`zsmalloc.estimate.fill`.  This module checks them on the user's own
data with the independent, step-by-step model: it turns the per-page lengths
into a zram size trace (``w SLOT SIZE`` or ``s SLOT`` per page, in order, then
``m``, ``c``, ``m``), whose expected ``m`` rows are the closed form's
``mm_stat`` before and after compaction, and replays it with
:func:`zsmalloc.zram.replay.replay`: one zs_malloc per stored page on a
fresh pool (the numba allocator of :mod:`zsmalloc.zs`), zram's counters,
then ``zs_compact``.  Any differing column is a bug in one of the two.
"""

from __future__ import annotations

import numpy as np

from zsmalloc.errors import InvariantError
from zsmalloc.estimate.fill import FillState
from zsmalloc.profile import KernelProfile


def replay_check(lengths: np.ndarray, state: FillState) -> dict[str, object]:
    """Replay ``lengths`` (0 = same-filled, in write order) and compare with ``state``.

    Returns the replay's summary; raises InvariantError when a column differs.
    """
    from zsmalloc.zram.replay import replay
    from zsmalloc.zram.trace import OP_COMPACT, OP_MM_STAT, OP_SAME, OP_WRITE, Trace

    table = state.table
    n = len(lengths)
    lengths = lengths.astype(np.int64)
    op = np.empty(n + 3, dtype=np.int8)
    op[:n] = np.where(lengths == 0, OP_SAME, OP_WRITE)
    op[n:] = (OP_MM_STAT, OP_COMPACT, OP_MM_STAT)
    a = np.zeros(n + 3, dtype=np.int64)
    a[:n] = np.arange(n)
    a[n + 2] = 1  # second expected row
    b = np.zeros(n + 3, dtype=np.int64)
    b[:n] = np.where(lengths >= table.huge_class_size, table.page_size, lengths)
    mrows = np.array([state.mm_stat(), state.mm_stat(compacted=True)], dtype=np.int64)
    trace = Trace(
        path="<estimate>",
        header={"disksize": str(n * table.page_size)},
        op=op,
        a=a,
        b=b,
        line_of=np.arange(1, n + 4, dtype=np.int64),
        mrows=mrows,
    )
    result = replay(trace, KernelProfile(table.version, table.page_size, table.chain_size))
    if not result.ok:
        raise InvariantError(
            f"estimate: the closed form and the step-by-step model disagree on "
            f"{', '.join(result.differing_columns)}: model {result.model_row}, "
            f"closed form {result.kernel_row}"
        )
    return {"replayed_pages": n, "m_checked": result.m_checked, "seconds": result.seconds}
