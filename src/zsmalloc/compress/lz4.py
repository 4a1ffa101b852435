"""zram's ``lz4``: the kernel's LZ4 block compressor, byte for byte.

Mirrors ``LZ4_compress_fast()`` in lib/lz4/lz4_compress.c (Linux 6.18) as
``backend_lz4.c`` calls it for one page: ``src_len = 4096`` into an 8 KiB buffer,
so the ``noLimit`` path with the ``byU16`` table is taken.  lib/lz4 is a port of
LZ4 v1.7.3 and, for 4 KiB inputs, behaves like upstream 1.7.3 ... 1.8.1;
upstream 1.8.2 and later (and the lz4 package's ``lz4.block``, which uses the
streaming API) parse differently, so the kernel's lengths need this code
(../shared/spec/compressors.md §4).

Kernel configuration of the call:

=================  ========================================================
table              8192 u16 positions (LZ4_MEMORY_USAGE 14, byU16: +1 bit),
                   zeroed per call; 0 means "position 0"
hash               ``(le32(p) * 2654435761 mod 2^32) >> 19``
constants          MINMATCH 4, MFLIMIT 12, LASTLITERALS 5, skip trigger 6
acceleration       zram's ``algorithm_params level``; < 1 means 1
=================  ========================================================

``lz4_compress_page`` emits the real block (token, literal run, LE16 offset,
match length) or, with ``emit=False``, walks the very same parse and only counts
bytes: the lengths-only fast path for estimation.  ``lz4_decompress_page`` is a
bounds-checked block decoder (any valid LZ4 block, not only ours).
"""

from __future__ import annotations

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.compress._bytes import copy_bytes, count_equal, read32

LZ4_HASH_ENTRIES = 1 << 13  # byU16 table: LZ4_HASHLOG (12) + 1 bits
MINMATCH = 4
MFLIMIT = 12
LASTLITERALS = 5
LZ4_MIN_LENGTH = MFLIMIT + 1
SKIP_TRIGGER = 6
RUN_MASK = 15
ML_MASK = 15
LZ4_ACCELERATION_DEFAULT = 1

# Decoder status codes (negative = corrupt stream).
LZ4_E_INPUT_OVERRUN = -1
LZ4_E_OUTPUT_OVERRUN = -2
LZ4_E_LOOKBEHIND = -3


@njit(inline="always")
def lz4_hash(v: int) -> int:
    """LZ4_hash4() for byU16: 13 bits of le32 * 2654435761 (mod 2^32).

    2654435761 - 2^32 keeps the product inside int64; the low 32 bits agree.
    """
    return ((v * -1640531535) & 0xFFFFFFFF) >> 19


@njit(inline="always")
def _put_length(dst: np.ndarray, op: int, extra: int, emit: bool) -> int:
    """The 255-run length bytes after a token whose 4-bit field is 15."""
    while extra >= 255:
        if emit:
            dst[op] = 255
        op += 1
        extra -= 255
    if emit:
        dst[op] = extra
    return op + 1


@njit(inline="always")
def _put_literals(
    dst: np.ndarray, op: int, src: np.ndarray, anchor: int, lit: int, emit: bool
) -> int:
    """A token at ``op`` (match length 0 for now), the literal length, the literals."""
    token = op
    op += 1
    if lit >= RUN_MASK:
        if emit:
            dst[token] = RUN_MASK << 4
        op = _put_length(dst, op, lit - RUN_MASK, emit)
    elif emit:
        dst[token] = lit << 4
    if emit:
        copy_bytes(dst, op, src, anchor, lit)
    return op + lit


@njit
def lz4_compress_page(
    src: np.ndarray, dst: np.ndarray, emit: bool, acceleration: int, table: np.ndarray
) -> int:
    """Compress ``src`` as LZ4_compress_fast() does; return the compressed length.

    Mirrors LZ4_compress_generic() in lib/lz4/lz4_compress.c (6.18) with
    noLimit, byU16, noDict.  With ``emit`` False nothing is written to ``dst``.
    ``table`` is scratch space of LZ4_HASH_ENTRIES u16 (zeroed here).
    """
    n = src.shape[0]
    if acceleration < 1:
        acceleration = LZ4_ACCELERATION_DEFAULT
    table[:] = 0
    op = 0
    anchor = 0
    if n >= LZ4_MIN_LENGTH:
        mflimit = n - MFLIMIT
        matchlimit = n - LASTLITERALS
        table[lz4_hash(read32(src, 0))] = 0
        ip = 1
        forward_h = lz4_hash(read32(src, ip))
        done = False
        while not done:
            # Find a match, skipping faster the longer the search fails.
            forward_ip = ip
            step = 1
            search_nb = (acceleration << SKIP_TRIGGER) & 0xFFFFFFFF
            cand = 0
            while True:
                h = forward_h
                ip = forward_ip
                forward_ip += step
                step = search_nb >> SKIP_TRIGGER
                search_nb = (search_nb + 1) & 0xFFFFFFFF
                if forward_ip > mflimit:
                    done = True
                    break
                cand = int(table[h])
                forward_h = lz4_hash(read32(src, forward_ip))
                table[h] = ip
                if read32(src, cand) == read32(src, ip):
                    break
            if done:
                break
            # Catch up: extend the match backwards over pending literals.
            while ip > anchor and cand > 0 and src[ip - 1] == src[cand - 1]:
                ip -= 1
                cand -= 1
            token = op
            op = _put_literals(dst, op, src, anchor, ip - anchor, emit)
            while True:
                # _next_match: offset, then the match length.
                off = ip - cand
                if emit:
                    dst[op] = off & 0xFF
                    dst[op + 1] = off >> 8
                op += 2
                ml = count_equal(src, ip + MINMATCH, cand + MINMATCH, matchlimit)
                p = ip + MINMATCH + ml
                if ml >= ML_MASK:
                    if emit:
                        dst[token] += ML_MASK
                    op = _put_length(dst, op, ml - ML_MASK, emit)
                elif emit:
                    dst[token] += ml
                ip = p
                anchor = ip
                if ip > mflimit:
                    done = True
                    break
                table[lz4_hash(read32(src, ip - 2))] = ip - 2
                h = lz4_hash(read32(src, ip))
                cand = int(table[h])
                table[h] = ip
                if read32(src, cand) != read32(src, ip):
                    ip += 1
                    forward_h = lz4_hash(read32(src, ip))
                    break
                # Immediate next match: a sequence with no literals.
                token = op
                if emit:
                    dst[token] = 0
                op += 1
    # _last_literals: a final sequence of literals only.
    return _put_literals(dst, op, src, anchor, n - anchor, emit)


@njit
def _read_length(src: np.ndarray, ip: int, length: int) -> tuple[int, int]:
    """Add the 255-run length bytes at ``ip``; (-1, ip) when the stream ends first."""
    while ip < src.shape[0]:
        b = int(src[ip])
        ip += 1
        length += b
        if b != 255:
            return length, ip
    return -1, ip


@njit(nogil=True)
def lz4_decompress_page(src: np.ndarray, dst: np.ndarray) -> int:
    """Decode one LZ4 block into ``dst``; return its length or a negative LZ4_E_*.

    Every read is checked against ``src`` and every write and back-reference
    against ``dst``, so a corrupt stream cannot fault or loop: each step
    consumes at least one input byte.
    """
    n_in = src.shape[0]
    n_out = dst.shape[0]
    ip = 0
    op = 0
    while True:
        if ip >= n_in:
            return LZ4_E_INPUT_OVERRUN
        token = int(src[ip]) & 0xFF  # int64 under numba (int(uint8) >> 4 is uint64)
        ip += 1
        lit = token >> 4
        if lit == RUN_MASK:
            lit, ip = _read_length(src, ip, lit)
        if lit < 0 or ip + lit > n_in:
            return LZ4_E_INPUT_OVERRUN
        if op + lit > n_out:
            return LZ4_E_OUTPUT_OVERRUN
        copy_bytes(dst, op, src, ip, lit)
        ip += lit
        op += lit
        if ip == n_in:
            return op  # the last sequence has literals only
        if ip + 2 > n_in:
            return LZ4_E_INPUT_OVERRUN
        off = int(src[ip]) | (int(src[ip + 1]) << 8)
        ip += 2
        if off == 0 or off > op:
            return LZ4_E_LOOKBEHIND
        ml = token & ML_MASK
        if ml == ML_MASK:
            ml, ip = _read_length(src, ip, ml)
            if ml < 0:
                return LZ4_E_INPUT_OVERRUN
        ml += MINMATCH
        if op + ml > n_out:
            return LZ4_E_OUTPUT_OVERRUN
        m = op - off
        for k in range(ml):  # byte by byte: the copy may overlap itself
            dst[op + k] = dst[m + k]
        op += ml
