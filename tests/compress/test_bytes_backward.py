"""compress._bytes' backward count and unchecked byte load equal the byte loops they replace.

LZ4HC_InsertAndGetWiderMatch() extends a match backwards one byte at a time while
``ip + back > ilow`` and ``match + back > 0``; lz4hc.py counts the same bytes 8 at a
time with ``count_equal_back`` (an unaligned 64-bit load and a count of leading zero
bits under numba).  Here both the compiled and the plain-Python forms are checked
against that loop, on buffers of few distinct bytes so long equal stretches occur.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from zsmalloc._jit import njit
from zsmalloc.compress._bytes import count_equal_back, equal_bytes8_back, read8


def kernel_back(buf: np.ndarray, p: int, q: int, n: int) -> int:
    """The kernel's loop: step back while under ``n`` bytes and the bytes are equal."""
    k = 0
    while k < n and buf[p - 1 - k] == buf[q - 1 - k]:
        k += 1
    return k


@njit
def _compiled(buf: np.ndarray, p: int, q: int, n: int) -> tuple[int, int, int]:
    eight = equal_bytes8_back(buf, p, q) if min(p, q) >= 8 else -1
    return count_equal_back(buf, p, q, n), eight, read8(buf, p - 1)


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, int, int, int]:
    size = draw(st.integers(1, 96))
    alphabet = draw(st.integers(1, 3))
    buf = np.array(draw(st.lists(st.integers(0, alphabet - 1), min_size=size, max_size=size)),
                   dtype=np.uint8)
    p = draw(st.integers(1, size))
    q = draw(st.integers(1, size))
    n = draw(st.integers(0, min(p, q)))
    return buf, p, q, n


@settings(max_examples=300, deadline=None)
@given(cases())
def test_count_equal_back_is_the_kernel_loop(case: tuple[np.ndarray, int, int, int]) -> None:
    buf, p, q, n = case
    want = kernel_back(buf, p, q, n)
    got, eight, byte = _compiled(buf, p, q, n)
    assert got == want
    plain = getattr(count_equal_back, "py_func", count_equal_back)  # NUMBA_DISABLE_JIT's form
    assert plain(buf, p, q, n) == want
    if min(p, q) >= 8:
        assert eight == kernel_back(buf, p, q, 8)
    assert byte == buf[p - 1]


def test_long_equal_stretch() -> None:
    """A zero run longer than several 8-byte steps, ending in a difference on one side."""
    buf = np.zeros(80, np.uint8)
    buf[10] = 1
    assert _compiled(buf, 70, 75, 70)[0] == kernel_back(buf, 70, 75, 70) == 59
    assert _compiled(buf, 70, 75, 40)[0] == 40
