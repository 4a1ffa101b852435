"""Little-endian unaligned loads shared by the kernel-exact compressors.

The compressors read 4- and 8-byte words at any byte offset, as the kernel's
``get_unaligned_le32()`` does.  Written as four byte loads, numba keeps a
negative-index check on each byte and LLVM cannot merge them, which made the
hot loops ~2x slower; so under numba ``read32``/``read64`` are one unaligned
load each (an ``@intrinsic``), while the plain-Python definitions below are
what runs without numba (``NUMBA_DISABLE_JIT=1``).  Callers guarantee
``0 <= p`` and ``p + 4`` (``p + 8``) ``<= len(buf)``.  ``read8`` is ``buf[p]``
without numba's negative-index test (a compare and a masked add on every load),
for hot loops whose indices are never negative.

Every array read in the plain-Python path is wrapped in ``int()`` so numpy's
small unsigned scalars cannot wrap (``np.uint8(1) << 8`` is 0 under NEP 50);
both paths compute on exact integers and give identical results.  ``read64``
is only ever compared for equality, so its sign (int64 under numba, a
non-negative int in Python) does not matter.
"""

from __future__ import annotations

import numpy as np

from zsmalloc._jit import HAVE_NUMBA, njit, on_numba_load
from zsmalloc.profile import DEFAULT_PROFILE

PAGE_SIZE = DEFAULT_PROFILE.page_size  # the page the kernel-exact compressors are checked on


def read8(buf: np.ndarray, p: int) -> int:
    """buf[p] with ``0 <= p`` guaranteed: compiled, no test for a negative index."""
    return int(buf[p])


def read32(buf: np.ndarray, p: int) -> int:
    """get_unaligned_le32(buf + p)."""
    return (
        int(buf[p])
        | (int(buf[p + 1]) << 8)
        | (int(buf[p + 2]) << 16)
        | (int(buf[p + 3]) << 24)
    )


def read64(buf: np.ndarray, p: int) -> int:
    """get_unaligned_le64(buf + p) (for equality tests only)."""
    return read32(buf, p) | (read32(buf, p + 4) << 32)


def equal_bytes8(buf: np.ndarray, p: int, q: int) -> int:
    """How many of the 8 bytes at ``p`` and at ``q`` are equal before the first difference.

    The kernel's ``__builtin_ctzll(v) >> 3`` on ``v = le64(p) ^ le64(q)`` (8 when equal).
    """
    k = 0
    while k < 8 and buf[p + k] == buf[q + k]:
        k += 1
    return k


@njit(inline="always")
def count_equal(buf: np.ndarray, p: int, q: int, limit: int) -> int:
    """Mirrors LZ4_count(): equal bytes at ``p`` and ``q``, with ``p`` stopping at ``limit``."""
    start = p
    while p + 8 <= limit:
        k = equal_bytes8(buf, p, q)
        p += k
        if k < 8:
            return p - start
        q += 8
    while p < limit and buf[p] == buf[q]:
        p += 1
        q += 1
    return p - start


def equal_bytes8_back(buf: np.ndarray, p: int, q: int) -> int:
    """How many of the 8 bytes before ``p`` and before ``q`` are equal, counted backwards
    from the last one: ``__builtin_clzll(v) >> 3`` on ``v = le64(p - 8) ^ le64(q - 8)``."""
    k = 0
    while k < 8 and buf[p - 1 - k] == buf[q - 1 - k]:
        k += 1
    return k


@njit(inline="always")
def count_equal_back(buf: np.ndarray, p: int, q: int, n: int) -> int:
    """Equal bytes going backwards from just before ``p`` and ``q``, at most ``n``.

    What LZ4HC's byte-at-a-time backward extension of a match counts (its caller caps
    ``n`` so that ``p - n`` and ``q - n`` stay in the buffer), 8 bytes at a time.
    """
    k = 0
    while k + 8 <= n:
        e = equal_bytes8_back(buf, p - k, q - k)
        k += e
        if e < 8:
            return k
    while k < n and buf[p - 1 - k] == buf[q - 1 - k]:
        k += 1
    return k


def copy_bytes(dst: np.ndarray, op: int, src: np.ndarray, start: int, n: int) -> None:
    """memcpy(dst + op, src + start, n) between two different arrays (in bounds)."""
    dst[op : op + n] = src[start : start + n]


def uncounted(arr: np.ndarray) -> np.ndarray:
    """The same array, without numba's reference count: for scratch a caller keeps alive.

    numba counts references on every array a compiled helper receives or copies (an
    atomic increment and decrement per call), and LLVM removes the pairs only in simple
    control flow: in deflate's per-symbol helpers they cost a fifth of the time.  Under
    numba this returns a view whose meminfo is NULL, so the counting is a no-op; the
    caller must hold the array itself for as long as the view is used (never return it).
    Plain Python: the array itself.
    """
    return arr


if HAVE_NUMBA:  # pragma: no branch - the compiled twins of read32/read64

    @on_numba_load
    def _define_overloads() -> None:
        from llvmlite import ir
        from numba.core import cgutils, types
        from numba.extending import intrinsic, overload

        def _unaligned_load(bits: int):  # type: ignore[no-untyped-def]
            @intrinsic
            def load(typingctx, arr, idx):  # type: ignore[no-untyped-def]
                def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
                    ary = context.make_array(signature.args[0])(context, builder, args[0])
                    ptr = builder.gep(ary.data, [args[1]])
                    wide = builder.bitcast(ptr, ir.IntType(bits).as_pointer())
                    value = builder.load(wide, align=1)
                    if bits < 64:
                        value = builder.zext(value, ir.IntType(64))
                    return value

                return types.int64(arr, types.intp), codegen

            return load

        _load32 = _unaligned_load(32)
        _load64 = _unaligned_load(64)

        def _bytewise32(buf, p):  # type: ignore[no-untyped-def]
            return (
                np.int64(buf[p])
                | (np.int64(buf[p + 1]) << 8)
                | (np.int64(buf[p + 2]) << 16)
                | (np.int64(buf[p + 3]) << 24)
            )

        _load8 = _unaligned_load(8)

        @overload(read8, inline="always")
        def _read8_jit(buf, p):  # type: ignore[no-untyped-def]
            if isinstance(buf, types.Array) and buf.layout == "C" and buf.dtype == types.uint8:
                return lambda buf, p: _load8(buf, p)
            return lambda buf, p: np.int64(buf[p])

        @overload(read32, inline="always")
        def _read32_jit(buf, p):  # type: ignore[no-untyped-def]
            if isinstance(buf, types.Array) and buf.layout == "C" and buf.dtype == types.uint8:
                return lambda buf, p: _load32(buf, p)
            return _bytewise32

        @overload(read64, inline="always")
        def _read64_jit(buf, p):  # type: ignore[no-untyped-def]
            if isinstance(buf, types.Array) and buf.layout == "C" and buf.dtype == types.uint8:
                return lambda buf, p: _load64(buf, p)
            return lambda buf, p: _bytewise32(buf, p) | (_bytewise32(buf, p + 4) << 32)

        def _equal_bytes8_loop(buf, p, q):  # type: ignore[no-untyped-def]
            k = 0
            while k < 8 and buf[p + k] == buf[q + k]:
                k += 1
            return k

        @intrinsic
        def _equal_bytes8(typingctx, arr, p, q):  # type: ignore[no-untyped-def]
            def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
                ary = context.make_array(signature.args[0])(context, builder, args[0])
                i64 = ir.IntType(64)
                pa = builder.bitcast(builder.gep(ary.data, [args[1]]), i64.as_pointer())
                pb = builder.bitcast(builder.gep(ary.data, [args[2]]), i64.as_pointer())
                a = builder.load(pa, align=1)
                b = builder.load(pb, align=1)
                # cttz(0) is 64 (flag false: defined), so equal words give 8.
                tz = builder.cttz(builder.xor(a, b), ir.Constant(ir.IntType(1), 0))
                return builder.lshr(tz, ir.Constant(i64, 3))

            return types.int64(arr, types.intp, types.intp), codegen

        @overload(equal_bytes8, inline="always")
        def _equal_bytes8_jit(buf, p, q):  # type: ignore[no-untyped-def]
            if isinstance(buf, types.Array) and buf.layout == "C" and buf.dtype == types.uint8:
                return lambda buf, p, q: _equal_bytes8(buf, p, q)
            return _equal_bytes8_loop

        def _equal_bytes8_back_loop(buf, p, q):  # type: ignore[no-untyped-def]
            k = 0
            while k < 8 and buf[p - 1 - k] == buf[q - 1 - k]:
                k += 1
            return k

        @intrinsic
        def _equal_bytes8_back(typingctx, arr, p, q):  # type: ignore[no-untyped-def]
            def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
                ary = context.make_array(signature.args[0])(context, builder, args[0])
                i64 = ir.IntType(64)
                eight = ir.Constant(i64, -8)
                pa = builder.gep(ary.data, [builder.add(args[1], eight)])
                pb = builder.gep(ary.data, [builder.add(args[2], eight)])
                a = builder.load(builder.bitcast(pa, i64.as_pointer()), align=1)
                b = builder.load(builder.bitcast(pb, i64.as_pointer()), align=1)
                # le64: the byte just before p is the top one; ctlz(0) is 64 (defined): 8.
                lz = builder.ctlz(builder.xor(a, b), ir.Constant(ir.IntType(1), 0))
                return builder.lshr(lz, ir.Constant(i64, 3))

            return types.int64(arr, types.intp, types.intp), codegen

        @overload(equal_bytes8_back, inline="always")
        def _equal_bytes8_back_jit(buf, p, q):  # type: ignore[no-untyped-def]
            if isinstance(buf, types.Array) and buf.layout == "C" and buf.dtype == types.uint8:
                return lambda buf, p, q: _equal_bytes8_back(buf, p, q)
            return _equal_bytes8_back_loop

        @intrinsic
        def _memcpy(typingctx, dst, op, src, start, n):  # type: ignore[no-untyped-def]
            def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
                d = context.make_array(signature.args[0])(context, builder, args[0])
                s = context.make_array(signature.args[2])(context, builder, args[2])
                dptr = builder.gep(d.data, [args[1]])
                sptr = builder.gep(s.data, [args[3]])
                cgutils.raw_memcpy(builder, dptr, sptr, args[4], 1)
                return context.get_dummy_value()

            return types.none(dst, types.intp, src, types.intp, types.intp), codegen

        @intrinsic
        def _uncounted(typingctx, arr):  # type: ignore[no-untyped-def]
            def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
                view = context.make_array(signature.args[0])(context, builder, value=args[0])
                view.meminfo = cgutils.get_null_value(view.meminfo.type)
                return view._getvalue()

            return arr(arr), codegen

        @overload(uncounted, inline="always")
        def _uncounted_jit(arr):  # type: ignore[no-untyped-def]
            if isinstance(arr, types.Array):
                return lambda arr: _uncounted(arr)
            return None

        def _copy_loop(dst, op, src, start, n):  # type: ignore[no-untyped-def]
            for k in range(n):
                dst[op + k] = src[start + k]

        @overload(copy_bytes, inline="always")
        def _copy_bytes_jit(dst, op, src, start, n):  # type: ignore[no-untyped-def]
            if all(
                isinstance(a, types.Array) and a.layout == "C" and a.dtype == types.uint8
                for a in (dst, src)
            ):
                return lambda dst, op, src, start, n: _memcpy(dst, op, src, start, n)
            return _copy_loop
