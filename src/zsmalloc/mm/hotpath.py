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

import numpy as np

from zsmalloc._jit import HAVE_NUMBA, njit, on_numba_load

F = TypeVar("F", bound=Callable[..., Any])


def _byte_loop(dst: Any, dst_off: int, src: Any, src_off: int, n: int) -> None:
    for k in range(n):
        dst[dst_off + k] = src[src_off + k]


_llvm_memcpy: Any = None  # the intrinsic, defined when numba is loaded

if HAVE_NUMBA:

    @on_numba_load
    def _define_intrinsics() -> None:
        global _llvm_memcpy
        from numba import types
        from numba.core import cgutils
        from numba.extending import intrinsic

        @intrinsic
        def llvm_memcpy(
            typingctx: Any, dst: Any, dst_off: Any, src: Any, src_off: Any, n: Any
        ) -> Any:
            """llvm.memcpy between two byte arrays' data pointers (cacheable, no NRT)."""
            sig = types.void(dst, dst_off, src, src_off, n)

            def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
                d, doff, s, soff, count = args
                dptr = context.make_array(signature.args[0])(context, builder, d).data
                sptr = context.make_array(signature.args[2])(context, builder, s).data
                cgutils.raw_memcpy(
                    builder, builder.gep(dptr, [doff]), builder.gep(sptr, [soff]), count, 1
                )

            return sig, codegen

        _llvm_memcpy = llvm_memcpy

    @njit(_nrt=False)
    def bytes_copy(dst: Any, dst_off: int, src: Any, src_off: int, n: int) -> None:
        """Copy n bytes between uint8 arrays: llvm.memcpy when both are unit-stride."""
        if n <= 0:
            return
        if dst.strides[0] == 1 and src.strides[0] == 1:
            _llvm_memcpy(dst, dst_off, src, src_off, n)
        else:
            for k in range(n):
                dst[dst_off + k] = src[src_off + k]

else:
    bytes_copy = _byte_loop


def hot_njit(func: F) -> F:
    """``njit(cache=True)`` without NRT reference counting (see the module docstring)."""
    if not HAVE_NUMBA:
        return func
    decorated: F = njit(_nrt=False)(func)
    return decorated


def hot_inline(func: F) -> F:
    """``func`` (a :func:`hot_njit` function) inlined into its callers at numba-IR level.

    A call that is not inlined passes the pool state by value: its thirty-odd array
    structs, some 1.7 KB pushed on the stack per call, a third of a zs_malloc.  Inlined,
    the callee's code becomes the caller's and the state is never copied.  Only callers
    that are compiled without NRT themselves (:func:`hot_njit`) should use it: inlined
    into NRT code, every array taken from the state is reference-counted again.  Called
    from Python it compiles to the same code as ``func`` (inlining changes callers only),
    so sharing ``func``'s cache entries is harmless.
    """
    if not HAVE_NUMBA:
        return func
    py_func = getattr(func, "py_func", func)
    inlined: F = njit(_nrt=False, inline="always")(py_func)
    return inlined


@hot_njit
def as_i64(x: Any) -> int:
    """A narrow unsigned or signed array element as int64.

    numba keeps ``int(uint32)`` a uint32, and mixing it with int64 arithmetic turns
    into float64; every load of a 32-bit descriptor field therefore goes through here.
    """
    return np.int64(x)  # type: ignore[return-value]  # an int64 is what numba sees
