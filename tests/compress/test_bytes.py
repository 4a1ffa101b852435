"""compress._bytes.uncounted(): a view of the same memory, whose use frees nothing.

deflate hands uncounted views of its scratch to every helper; the byte-exact tests
(test_kernel_compressors, test_big_pages, test_guest_traces) check its output.  Here: a
write through the view reaches the array, a helper given the view many times leaves
the array intact (a view that dropped a reference on each call would free it), and the
array's own count is untouched (numba would crash or leak otherwise).
"""

from __future__ import annotations

import sys

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.compress._bytes import uncounted


@njit
def _bump(view: np.ndarray, i: int) -> None:
    view[i] += 1


@njit
def _through_view(arr: np.ndarray, calls: int) -> int:
    view = uncounted(arr)
    for k in range(calls):
        _bump(view, k % view.shape[0])
    return int(view.sum())


def test_uncounted_view_writes_through_and_frees_nothing() -> None:
    arr = np.zeros(64, np.int64)
    before = sys.getrefcount(arr)
    assert _through_view(arr, 10_000) == 10_000
    assert arr.sum() == 10_000 and arr[0] == 157 and arr[63] == 156
    assert sys.getrefcount(arr) == before
    local = np.arange(8, dtype=np.int64)  # a fresh array, still alive after the calls
    assert _through_view(local, 8) == 28 + 8
    assert local.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
