"""zram's ``lzo`` and ``lzo-rle``: the kernel's LZO1X-1, byte for byte.

Mirrors ``lzo1x_1_compress()`` / ``lzorle1x_1_compress()`` (the shared
``lzogeneric1x_1_compress()`` and ``lzo1x_1_do_compress()``) in
lib/lzo/lzo1x_compress.c, and ``lzo1x_decompress_safe()`` in
lib/lzo/lzo1x_decompress_safe.c (Linux 6.18), for one page of 4, 16 or 64 KiB.  The kernel's
dictionary is 2^13 u16 entries (lzodefs.h ``D_BITS 13``) where liblzo2 and
python-lzo use 2^14, and on x86-64 it measures matches 8 bytes at a time and
stops at the first step that reaches ``ip_end``; both change the output, so
the kernel's lengths need this code (../shared/spec/compressors.md §5-6).

=================  ========================================================
dictionary         8192 u16 positions, zeroed per block (blocks of 48 KiB:
                   one for 4 and 16 KiB pages, two for 64 KiB)
hash               ``(le32(p) * 0x1824429d mod 2^32) >> 19``
parse              start at 4; a miss skips ``1 + (ip - ii) >> 5``;
                   stop at ``ip_end = n - 20``
lzo-rle            header ``17, 1``; a probed zero word starts a zero run of
                   up to 2051 bytes, one 4-byte M4 instruction (distance
                   0xbfff), and leaves the dictionary alone
=================  ========================================================

Instructions (the LZO1X bitstream):

=========  ===================================  ================================
M2         ``(len-1)<<5 | ((off-1)&7)<<2``,     len 3..8, off <= 0x800
           ``(off-1)>>3``
M3         ``32 | (len-2)`` or ``32`` + 0-run   off <= 0x4000
           + rest, then LE16 ``(off-1)<<2``
M4         ``16 | (off>>11 & 8) | (len-2)``...   off > 0x4000 (64 KiB pages only)
literals   ``t-3`` (4..18) or ``0`` + 0-run +   1..3 literals ride in the low two
           ``t-18``; first: ``17+t``            bits of the previous instruction
end        ``17, 0, 0``
=========  ===================================  ================================
"""

from __future__ import annotations

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.compress._bytes import copy_bytes, equal_bytes8, read32, read64

D_BITS = 13
D_SIZE = 1 << D_BITS
M2_MAX_LEN = 8
M3_MAX_LEN = 33
M4_MAX_LEN = 9
M2_MAX_OFFSET = 0x0800
M3_MAX_OFFSET = 0x4000
M3_MARKER = 32
M4_MARKER = 16
M4_MAX_OFFSET_V0 = 0xBFFF  # lzo: blocks of 48 KiB
M4_MAX_OFFSET_V1 = 0xBFFE  # lzo-rle: 0xbfff is its zero-run distance
MIN_ZERO_RUN_LENGTH = 4
MAX_ZERO_RUN_LENGTH = 2047 + MIN_ZERO_RUN_LENGTH
LZO_RLE_VERSION = 1

# lzo1x_decompress_safe() results (include/linux/lzo.h), plus our own for trailing bytes.
LZO_E_ERROR = -1
LZO_E_INPUT_OVERRUN = -4
LZO_E_OUTPUT_OVERRUN = -5
LZO_E_LOOKBEHIND_OVERRUN = -6
LZO_E_INPUT_NOT_CONSUMED = -8


@njit(inline="always")
def lzo_hash(dv: int) -> int:
    """The dictionary index of a 4-byte word (0x1824429d < 2^31: no int64 overflow)."""
    return ((dv * 0x1824429D) & 0xFFFFFFFF) >> (32 - D_BITS)


@njit(inline="always")
def _put_zero_run(dst: np.ndarray, op: int, count: int, emit: bool) -> int:
    """A length of ``count`` beyond an instruction's field: 0-bytes per 255, then the rest."""
    while count > 255:
        if emit:
            dst[op] = 0
        op += 1
        count -= 255
    if emit:
        dst[op] = count
    return op + 1


@njit(inline="always")
def _put_literals(
    dst: np.ndarray, op: int, src: np.ndarray, ii: int, t: int, state_offset: int, emit: bool
) -> int:
    """A literal run of ``t`` >= 1 bytes from ``ii`` after some instruction."""
    if t <= 3:
        # Rides in the low two bits of the previous instruction's state byte.
        if emit:
            dst[op + state_offset] |= t
    elif t <= 18:
        if emit:
            dst[op] = t - 3
        op += 1
    else:
        if emit:
            dst[op] = 0
        op = _put_zero_run(dst, op + 1, t - 18, emit)
    if emit:
        copy_bytes(dst, op, src, ii, t)
    return op + t


@njit(inline="always")
def _put_match(
    dst: np.ndarray, op: int, m_len: int, m_off: int, emit: bool
) -> int:
    """One M2, M3 or M4 instruction (lzo1x_1_do_compress()'s match encoder)."""
    if m_len <= M2_MAX_LEN and m_off <= M2_MAX_OFFSET:
        m_off -= 1
        if emit:
            dst[op] = ((m_len - 1) << 5) | ((m_off & 7) << 2)
            dst[op + 1] = m_off >> 3
        return op + 2
    if m_off <= M3_MAX_OFFSET:
        m_off -= 1
        if m_len <= M3_MAX_LEN:
            if emit:
                dst[op] = M3_MARKER | (m_len - 2)
            op += 1
        else:
            if emit:
                dst[op] = M3_MARKER
            op = _put_zero_run(dst, op + 1, m_len - M3_MAX_LEN, emit)
    else:
        # M4: offsets above 16 KiB, only in pages larger than 16 KiB.
        m_off -= 0x4000
        if m_len <= M4_MAX_LEN:
            if emit:
                dst[op] = M4_MARKER | ((m_off >> 11) & 8) | (m_len - 2)
            op += 1
        else:
            if emit:
                dst[op] = M4_MARKER | ((m_off >> 11) & 8)
            op = _put_zero_run(dst, op + 1, m_len - M4_MAX_LEN, emit)
    if emit:
        dst[op] = (m_off << 2) & 0xFF
        dst[op + 1] = (m_off >> 6) & 0xFF
    return op + 2


@njit
def _do_compress(
    src: np.ndarray,
    start: int,
    in_len: int,
    dst: np.ndarray,
    op: int,
    ti: int,
    state_offset: int,
    emit: bool,
    rle: bool,
    dictionary: np.ndarray,
) -> tuple[int, int, int]:
    """One block of at most M4_MAX_OFFSET + 1 bytes from ``start``: lzo1x_1_do_compress().

    ``ti`` literals before ``start`` are still pending from the previous block (they
    join the first literal run).  Returns (op, literals left pending, state_offset).
    The dictionary holds positions relative to ``start`` and is zeroed by the caller.
    """
    in_end = start + in_len
    ip_end = in_end - 20
    ii = start
    ip = start + (4 - ti if ti < 4 else 0)
    advance = True
    while True:
        if advance:
            ip += 1 + ((ip - ii) >> 5)
            advance = False
        if ip >= ip_end:
            break
        dv = read32(src, ip)
        run = 0
        cand = 0
        if rle and dv == 0:
            limit = min(ip_end, ip + MAX_ZERO_RUN_LENGTH + 1)
            e = ip + 4
            while e + 8 <= limit and read64(src, e) == 0:
                e += 8
            while e < limit and src[e] == 0:
                e += 1
            run = min(e - ip, MAX_ZERO_RUN_LENGTH)
        else:
            h = lzo_hash(dv)
            cand = start + int(dictionary[h])
            dictionary[h] = ip - start
            if read32(src, cand) != dv:
                advance = True
                continue
        ii -= ti
        ti = 0
        if ip > ii:
            op = _put_literals(dst, op, src, ii, ip - ii, state_offset, emit)
        if run > 0:
            ip += run
            r = run - MIN_ZERO_RUN_LENGTH
            if emit:
                # M4 with distance 0xbfff: (r << 21) | 0xfffc18 | (r & 7), LE32.
                dst[op] = 0x18 | (r & 7)
                dst[op + 1] = 0xFC
                dst[op + 2] = 0xFF
                dst[op + 3] = r >> 3
            op += 4
            state_offset = -3
            ii = ip
            continue
        # Match length, 8 bytes at a time; a step reaching ip_end ends it there.
        m_len = 4
        while True:
            k = equal_bytes8(src, ip + m_len, cand + m_len)
            if k < 8:
                m_len += k
                break
            m_len += 8
            if ip + m_len >= ip_end:
                break
        m_off = ip - cand
        ip += m_len
        if (
            rle
            and m_off > M3_MAX_OFFSET
            and m_len > M4_MAX_LEN
            and ((m_off - 0x4000) & 0x403F) == 0x403F
            and 261 <= m_len <= 264
        ):
            # lzo-rle: such an M4 would read as a zero run; the kernel cuts it to 260.
            ip -= m_len - 260
            m_len = 260
        op = _put_match(dst, op, m_len, m_off, emit)
        state_offset = -2
        ii = ip
    return op, in_end - (ii - ti), state_offset


@njit
def lzo_compress_page(
    src: np.ndarray, dst: np.ndarray, emit: bool, rle: bool, dictionary: np.ndarray
) -> int:
    """Compress ``src`` as lzo1x_1_compress() (or lzorle1x_1_compress() with ``rle``).

    Mirrors lzogeneric1x_1_compress() in lib/lzo/lzo1x_compress.c (6.18), x86-64
    flavour (CTZ64 match length): blocks of at most 48 KiB (one for 4 and 16 KiB
    pages, two for 64 KiB), a fresh dictionary each, the literals still pending at a
    block's end carried into the next.  Returns the compressed length; with ``emit``
    False nothing is written.  ``dictionary`` is D_SIZE u16 of scratch.
    """
    n = src.shape[0]
    op = 0
    if rle:
        if emit:
            dst[0] = 17
            dst[1] = LZO_RLE_VERSION
        op = 2
    data_start = op
    block_max = (M4_MAX_OFFSET_V1 if rle else M4_MAX_OFFSET_V0) + 1
    state_offset = -2
    t = 0
    pos = 0
    left = n
    while left > 20:
        ll = min(left, block_max)
        dictionary[:] = 0
        op, t, state_offset = _do_compress(
            src, pos, ll, dst, op, t, state_offset, emit, rle, dictionary
        )
        pos += ll
        left -= ll
    t += left
    # Trailing literals (lzogeneric1x_1_compress()).
    if t > 0:
        ii = n - t
        if op == data_start and t <= 238:
            if emit:
                dst[op] = 17 + t
                copy_bytes(dst, op + 1, src, ii, t)
            op += 1 + t
        else:
            op = _put_literals(dst, op, src, ii, t, state_offset, emit)
    if emit:
        dst[op] = M4_MARKER | 1
        dst[op + 1] = 0
        dst[op + 2] = 0
    return op + 3


@njit(inline="always")
def _count_zero_run(src: np.ndarray, ip: int, n_in: int, base: int) -> tuple[int, int]:
    """An extended length: ``base`` + 255 per 0-byte + the first non-zero byte."""
    zeros = 0
    while ip < n_in and src[ip] == 0:
        ip += 1
        zeros += 1
    if ip >= n_in:
        return -1, ip
    t = zeros * 255 + base + int(src[ip])
    return t, ip + 1


@njit
def _copy_literals(
    src: np.ndarray, dst: np.ndarray, ip: int, op: int, t: int
) -> tuple[int, int, int]:
    """Copy ``t`` literals: (0, ip, op) after, or (LZO_E_*, ...) if out of bounds.

    The input must still hold the 3-byte end marker after them (NEED_IP(t + 3)).
    """
    if op + t > dst.shape[0]:
        return LZO_E_OUTPUT_OVERRUN, ip, op
    if ip + t + 3 > src.shape[0]:
        return LZO_E_INPUT_OVERRUN, ip, op
    copy_bytes(dst, op, src, ip, t)
    return 0, ip + t, op + t


@njit(nogil=True)
def lzo_decompress_page(src: np.ndarray, dst: np.ndarray) -> int:
    """Decode an LZO1X stream (with lzo-rle's header and zero runs) into ``dst``.

    Mirrors lzo1x_decompress_safe() in lib/lzo/lzo1x_decompress_safe.c (6.18):
    returns the decoded length, or a negative LZO_E_* code where the kernel
    would fail (every read, write and back-reference is bounds-checked).  As
    the kernel does, a header ``17, v`` is taken as a bitstream version when
    the stream is at least 5 bytes long.
    """
    n_in = src.shape[0]
    n_out = dst.shape[0]
    ip = 0
    op = 0
    version = 0
    if n_in < 3:
        return LZO_E_INPUT_OVERRUN
    if n_in >= 5 and src[0] == 17:
        version = int(src[1])
        ip = 2
    state = 0
    nxt = 0
    t = 0
    m_pos = 0
    skip_to_match_next = False
    first = int(src[ip]) & 0xFF
    if first > 17:
        ip += 1
        t = first - 17
        if t < 4:
            nxt = t
            skip_to_match_next = True
        else:
            err, ip, op = _copy_literals(src, dst, ip, op, t)
            if err:
                return err
            state = 4
    while True:
        if not skip_to_match_next:
            if ip >= n_in:
                return LZO_E_INPUT_OVERRUN
            t = int(src[ip]) & 0xFF  # int64 under numba, like every t below
            ip += 1
            if t < 16:
                if state == 0:
                    # A literal run.
                    if t == 0:
                        t, ip = _count_zero_run(src, ip, n_in, 15 + 3)
                        if t < 0:
                            return LZO_E_INPUT_OVERRUN
                    else:
                        t += 3
                    err, ip, op = _copy_literals(src, dst, ip, op, t)
                    if err:
                        return err
                    state = 4
                    continue
                if ip >= n_in:
                    return LZO_E_INPUT_OVERRUN
                nxt = t & 3
                if state != 4:
                    # A 2-byte match right after 1..3 literals.
                    m_pos = op - 1 - (t >> 2) - (int(src[ip]) << 2)
                    ip += 1
                    t = 2
                else:
                    # A 3-byte match 2049..3072 back, after a literal run >= 4.
                    m_pos = op - (1 + M2_MAX_OFFSET) - (t >> 2) - (int(src[ip]) << 2)
                    ip += 1
                    t = 3
            elif t >= 64:
                # M2.
                if ip >= n_in:
                    return LZO_E_INPUT_OVERRUN
                nxt = t & 3
                m_pos = op - 1 - ((t >> 2) & 7) - (int(src[ip]) << 3)
                ip += 1
                t = (t >> 5) + 1
            elif t >= 32:
                # M3.
                t = (t & 31) + 2
                if t == 2:
                    t, ip = _count_zero_run(src, ip, n_in, 31 + 2)
                if t < 0 or ip + 2 > n_in:
                    return LZO_E_INPUT_OVERRUN
                word = int(src[ip]) | (int(src[ip + 1]) << 8)
                ip += 2
                m_pos = op - 1 - (word >> 2)
                nxt = word & 3
            else:
                # M4, lzo-rle's zero run, or the end marker.
                if ip + 2 > n_in:
                    return LZO_E_INPUT_OVERRUN
                word = int(src[ip]) | (int(src[ip + 1]) << 8)
                if (word & 0xFFFC) == 0xFFFC and (t & 0xF8) == 0x18 and version != 0:
                    if ip + 3 > n_in:
                        return LZO_E_INPUT_OVERRUN
                    run = ((t & 7) | (int(src[ip + 2]) << 3)) + MIN_ZERO_RUN_LENGTH
                    if op + run > n_out:
                        return LZO_E_OUTPUT_OVERRUN
                    dst[op : op + run] = 0
                    op += run
                    nxt = word & 3
                    ip += 3
                    skip_to_match_next = True
                else:
                    m_pos = op - ((t & 8) << 11)
                    t = (t & 7) + 2
                    if t == 2:
                        t, ip = _count_zero_run(src, ip, n_in, 7 + 2)
                        if t < 0 or ip + 2 > n_in:
                            return LZO_E_INPUT_OVERRUN
                        word = int(src[ip]) | (int(src[ip + 1]) << 8)
                    ip += 2
                    m_pos -= word >> 2
                    nxt = word & 3
                    if m_pos == op:
                        # End of stream: exactly 3 bytes (17, 0, 0), and nothing after.
                        if t != 3:
                            return LZO_E_ERROR
                        if ip < n_in:
                            return LZO_E_INPUT_NOT_CONSUMED
                        return op
                    m_pos -= 0x4000
            if not skip_to_match_next:
                if m_pos < 0:
                    return LZO_E_LOOKBEHIND_OVERRUN
                if op + t > n_out:
                    return LZO_E_OUTPUT_OVERRUN
                for k in range(t):  # byte by byte: the copy may overlap itself
                    dst[op + k] = dst[m_pos + k]
                op += t
        skip_to_match_next = False
        # match_next: 0..3 literals carried in the instruction's state bits.
        state = nxt
        err, ip, op = _copy_literals(src, dst, ip, op, nxt)
        if err:
            return err
