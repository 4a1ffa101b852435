"""``hot_njit``: the decorator for allocator code that runs on every operation.

The allocator's state is a named tuple of about thirty numpy arrays.  numba keeps a
reference count per array (NRT), and a call that is not inlined increments and
decrements every array of a tuple argument: some sixty atomic operations, several
hundred nanoseconds per call, which dominated zs_malloc.  The allocator's functions
never allocate arrays (scratch space lives in the state), so they are compiled without
NRT (numba's ``_nrt=False``): no reference counting at all, and LLVM inlines the small
helpers freely.  Callers compiled with NRT (zram, zswap) call them as usual.

Without numba (or with NUMBA_DISABLE_JIT=1) this is the identity, like ``njit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from zsmalloc._jit import HAVE_NUMBA, njit

F = TypeVar("F", bound=Callable[..., Any])


def hot_njit(func: F) -> F:
    """``njit(cache=True)`` without NRT reference counting (see the module docstring)."""
    if not HAVE_NUMBA:
        return func
    return njit(_nrt=False)(func)  # type: ignore[no-any-return]
