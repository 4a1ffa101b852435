"""zram's ``lz4hc``: the kernel's LZ4 HC compressor, byte for byte.

Mirrors ``LZ4_compress_HC()`` in lib/lz4/lz4hc_compress.c as ``backend_lz4hc.c`` (6.12
and later) and ``crypto/lz4hc.c`` (6.1, 6.6) call it for one page: the whole page into a
buffer of two pages, so the ``noLimit`` path.  lib/lz4 is LZ4 **1.7.3**, and its HC
compressor is the plain hash-chain parser of that release at every level: from 1.7.4 on
upstream levels 10 and up use an optimal parser and from 1.8.2 every level parses
differently, so no released library gives the kernel's output
(../shared/spec/compressors.md §15).

=================  =========================================================
hash table         2^15 u32 indices (LZ4HC_HASH_LOG 15) of
                   ``(le32(p) * 2654435761 mod 2^32) >> 17``, zeroed per call
chain table        2^16 u16 distances to the previous position of the same
                   hash, capped at MAX_DISTANCE (65535)
indices            position + 64 KiB (the context's ``base`` is 64 KiB before
                   the page), so a zero entry is never a candidate
attempts           ``1 << (level - 1)`` candidates per search; level > 16 is
                   16 and level < 1 is the default 9
parser             a greedy match, then up to two overlapping wider matches
                   (``_Search2``/``_Search3``) that may shorten or drop it;
                   OPTIMAL_ML 18 caps how far a match is kept when the next
                   one starts inside it
=================  =========================================================

``lz4hc_compress_page`` writes the real LZ4 block (the format of :mod:`.lz4`, which
decodes it) or, with ``emit=False``, walks the same parse and only counts bytes.

Speed (issue 11: at least one core of python-lz4's HC 9 per core): the searches are
inlined into the parser; a candidate inside the run of one byte value through the
searched position has its match length known without comparing (zero-filled stretches,
where LZ4 1.7.3 compares the run again for each of 256 candidates), and a search stops
once no candidate can match longer; matches are extended backwards 8 bytes at a time.
Each shortcut returns what the kernel's loop returns (argued at each); the guest traces
in tests/compress check the output byte for byte.
"""

from __future__ import annotations

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.compress._bytes import count_equal, count_equal_back, read8, read32
from zsmalloc.compress.lz4 import (
    LASTLITERALS,
    MFLIMIT,
    MINMATCH,
    ML_MASK,
    _put_length,
    _put_literals,
)

LZ4HC_HASH_LOG = 15
LZ4HC_HASH_ENTRIES = 1 << LZ4HC_HASH_LOG
LZ4HC_CHAIN_ENTRIES = 1 << 16  # LZ4HC_MAXD: u16 deltas indexed by (u16) index
MAX_DISTANCE = 65535
WINDOW = 1 << 16  # LZ4HC_init(): base = start - 64 KiB, so index = position + 64 KiB
OPTIMAL_ML = ML_MASK - 1 + MINMATCH  # 18
LZ4HC_DEFAULT_CLEVEL = 9
LZ4HC_MAX_CLEVEL = 16


@njit(inline="always")
def lz4hc_hash(v: int) -> int:
    """HASH_FUNCTION(): the top 15 bits of le32 * 2654435761 (mod 2^32)."""
    return ((v * -1640531535) & 0xFFFFFFFF) >> (32 - LZ4HC_HASH_LOG)


@njit(inline="always")
def _insert(
    src: np.ndarray, hash_table: np.ndarray, chain: np.ndarray, next_idx: int, target: int
) -> int:
    """LZ4HC_Insert(): chain every index from ``next_idx`` up to ``target`` (excluded).

    Returns the new ``nextToUpdate``, which is ``target`` even when that is behind
    ``next_idx`` (the kernel then re-inserts those positions later: kept as it is).
    """
    idx = next_idx
    while idx < target:
        h = lz4hc_hash(read32(src, idx - WINDOW))
        delta = (idx - int(hash_table[h])) & 0xFFFFFFFF  # U32 arithmetic
        if delta > MAX_DISTANCE:
            delta = MAX_DISTANCE
        chain[idx & 0xFFFF] = delta
        hash_table[h] = idx
        idx += 1
    return target


@njit(inline="always")
def _low_limit(ip: int) -> int:
    """The oldest index a search at position ``ip`` may use (64 KiB back at most)."""
    idx = ip + WINDOW
    return WINDOW if idx < WINDOW + WINDOW else idx - (WINDOW - 1)


@njit(inline="always")
def _byte_run(src: np.ndarray, ip: int, limit: int) -> tuple[int, int]:
    """The run of one byte value through ``ip``, as (start, end) with ``end`` capped at
    ``limit``, when the four bytes at ``ip`` are that value; else (ip, ip).

    Not in the kernel: it lets the searches below know what LZ4_count() returns for a
    candidate inside the same run without comparing (see :func:`_find_best_match`).
    """
    if read32(src, ip) != read8(src, ip) * 0x01010101:
        return ip, ip
    end = ip + MINMATCH + count_equal(src, ip + MINMATCH, ip + MINMATCH - 1, limit)
    return ip - count_equal_back(src, ip, ip + 1, ip), end


@njit(inline="always")
def _find_best_match(
    src: np.ndarray,
    hash_table: np.ndarray,
    chain: np.ndarray,
    next_idx: int,
    ip: int,
    ilimit: int,
    attempts: int,
) -> tuple[int, int, int]:
    """LZ4HC_InsertAndFindBestMatch(): (length or 0, match position, nextToUpdate).

    Two shortcuts give the kernel's result with less work.  A candidate ``m`` inside
    the run of one byte that holds ``ip`` (``run_start <= m < ip``) matches exactly up
    to the run's end: every byte from ``ip`` to there equals the one ``ip - m``
    before it, and the byte at the end differs from that one, still in the run (or
    the end is ``ilimit``).  LZ4 1.7.3 compares the whole run for each of up to 256
    such candidates (a zero-filled stretch of a page).  And no candidate can match
    more than ``ilimit - ip``: once that is found, the rest can only tie, and a tie
    keeps the first, so the walk stops.
    """
    next_idx = _insert(src, hash_table, chain, next_idx, ip + WINDOW)
    low = _low_limit(ip)
    run_start, run_end = _byte_run(src, ip, ilimit)
    m_idx = int(hash_table[lz4hc_hash(read32(src, ip))])
    ml = 0
    ref = 0
    while m_idx >= low and attempts > 0:
        attempts -= 1
        m = m_idx - WINDOW
        if read8(src, m + ml) == read8(src, ip + ml) and read32(src, m) == read32(src, ip):
            if run_start <= m < ip:
                mlt = run_end - ip
            else:
                mlt = MINMATCH + count_equal(src, ip + MINMATCH, m + MINMATCH, ilimit)
            if mlt > ml:
                ml = mlt
                ref = m
                if ml >= ilimit - ip:
                    attempts = 0
        m_idx -= int(chain[m_idx & 0xFFFF])
    return ml, ref, next_idx


@njit(inline="always")
def _find_wider_match(
    src: np.ndarray,
    hash_table: np.ndarray,
    chain: np.ndarray,
    next_idx: int,
    ip: int,
    ilow: int,
    ihigh: int,
    longest: int,
    attempts: int,
) -> tuple[int, int, int, int]:
    """LZ4HC_InsertAndGetWiderMatch(): a match at ``ip`` longer than ``longest`` once
    extended backwards (not before ``ilow``); (length, match position, start,
    nextToUpdate), the length being ``longest`` and the positions -1 when none.

    The shortcuts of :func:`_find_best_match`: inside the run of one byte through
    ``ip``, a candidate ``m`` matches forwards to the run's end and backwards to
    ``m``'s distance from the run's start (the byte before the run differs from the
    one ``ip - m`` after it, still in the run), or to ``ilow``; and no match can be
    wider than ``ihigh - ilow``.
    """
    next_idx = _insert(src, hash_table, chain, next_idx, ip + WINDOW)
    low = _low_limit(ip)
    run_start, run_end = _byte_run(src, ip, ihigh)
    delta = ip - ilow
    m_idx = int(hash_table[lz4hc_hash(read32(src, ip))])
    matchpos = -1
    startpos = -1
    while m_idx >= low and attempts > 0:
        attempts -= 1
        m = m_idx - WINDOW
        if (
            read8(src, ilow + longest) == read8(src, m - delta + longest)
            and read32(src, m) == read32(src, ip)
        ):
            if run_start <= m < ip:
                mlt = run_end - ip
                back = -min(m - run_start, delta)
            else:
                mlt = MINMATCH + count_equal(src, ip + MINMATCH, m + MINMATCH, ihigh)
                # the kernel steps back one byte at a time while ip + back > ilow and
                # m + back > 0: at most ip - ilow and m bytes
                back = -count_equal_back(src, ip, m, min(delta, m))
            mlt -= back
            if mlt > longest:
                longest = mlt
                matchpos = m + back
                startpos = ip + back
                if longest >= ihigh - ilow:
                    attempts = 0
        m_idx -= int(chain[m_idx & 0xFFFF])
    return longest, matchpos, startpos, next_idx


@njit(inline="always")
def _encode_sequence(
    dst: np.ndarray, op: int, src: np.ndarray, anchor: int, ip: int, ml: int, ref: int,
    emit: bool,
) -> int:
    """LZ4HC_encodeSequence(): literals since ``anchor``, then a match of ``ml`` at ``ref``."""
    token = op
    op = _put_literals(dst, op, src, anchor, ip - anchor, emit)
    off = ip - ref
    if emit:
        dst[op] = off & 0xFF
        dst[op + 1] = off >> 8
    op += 2
    length = ml - MINMATCH
    if length >= ML_MASK:
        if emit:
            dst[token] += ML_MASK
        op = _put_length(dst, op, length - ML_MASK, emit)
    elif emit:
        dst[token] += length
    return op


_SEARCH2 = 0
_SEARCH3 = 1


# _nrt=False: compiled without numba's reference counting, which this function does not
# need (it allocates nothing).  With it, each inlined helper taking an array adds an
# atomic incref/decref pair, which numba's pruning pass removes only while the function
# stays small enough for it: past that, 2 to 5 times slower.
@njit(_nrt=False)
def lz4hc_compress_page(
    src: np.ndarray,
    dst: np.ndarray,
    emit: bool,
    level: int,
    hash_table: np.ndarray,
    chain: np.ndarray,
) -> int:
    """Compress ``src`` as LZ4_compress_HC() does; return the compressed length.

    Mirrors LZ4HC_compress_generic() (noLimit) after LZ4HC_init(): its ``goto
    _Search2`` / ``goto _Search3`` loop is the ``state`` loop below.  With ``emit``
    False nothing is written to ``dst``.  ``hash_table`` is LZ4HC_HASH_ENTRIES int32
    and ``chain`` LZ4HC_CHAIN_ENTRIES u16 of scratch (the hash table is zeroed here;
    the chain table needs no reset: every index a search can reach was inserted).
    """
    n = src.shape[0]
    if level > LZ4HC_MAX_CLEVEL:
        level = LZ4HC_MAX_CLEVEL
    if level < 1:
        level = LZ4HC_DEFAULT_CLEVEL
    attempts = 1 << (level - 1)
    hash_table[:] = 0
    next_idx = WINDOW
    mflimit = n - MFLIMIT
    matchlimit = n - LASTLITERALS
    op = 0
    anchor = 0
    ip = 1
    ref = ref0 = ref2 = ref3 = 0
    start0 = start2 = start3 = 0
    ml0 = ml2 = ml3 = 0
    while ip < mflimit:
        ml, ref, next_idx = _find_best_match(
            src, hash_table, chain, next_idx, ip, matchlimit, attempts
        )
        if ml == 0:
            ip += 1
            continue
        start0 = ip  # saved, in case we would skip too much
        ref0 = ref
        ml0 = ml
        state = _SEARCH2
        while True:
            if state == _SEARCH2:
                if ip + ml < mflimit:
                    ml2, r, s, next_idx = _find_wider_match(
                        src, hash_table, chain, next_idx, ip + ml - 2, ip, matchlimit, ml,
                        attempts,
                    )
                    if ml2 > ml:
                        ref2 = r
                        start2 = s
                else:
                    ml2 = ml
                if ml2 == ml:  # no better match
                    op = _encode_sequence(dst, op, src, anchor, ip, ml, ref, emit)
                    ip += ml
                    anchor = ip
                    break
                if start0 < ip and start2 < ip + ml0:  # empirical
                    ip = start0
                    ref = ref0
                    ml = ml0
                if start2 - ip < 3:  # first match too small: removed
                    ml = ml2
                    ip = start2
                    ref = ref2
                    continue
                state = _SEARCH3
            # _Search3: ml2 > ml and ip + 3 <= start2 (usually < ip + ml)
            if start2 - ip < OPTIMAL_ML:
                new_ml = min(ml, OPTIMAL_ML)
                if ip + new_ml > start2 + ml2 - MINMATCH:
                    new_ml = start2 - ip + ml2 - MINMATCH
                correction = new_ml - (start2 - ip)
                if correction > 0:
                    start2 += correction
                    ref2 += correction
                    ml2 -= correction
            if start2 + ml2 < mflimit:
                ml3, r, s, next_idx = _find_wider_match(
                    src, hash_table, chain, next_idx, start2 + ml2 - 3, start2, matchlimit,
                    ml2, attempts,
                )
                if ml3 > ml2:
                    ref3 = r
                    start3 = s
            else:
                ml3 = ml2
            if ml3 == ml2:  # no better match: two sequences
                if start2 < ip + ml:
                    ml = start2 - ip
                op = _encode_sequence(dst, op, src, anchor, ip, ml, ref, emit)
                anchor = ip + ml
                ip = start2
                op = _encode_sequence(dst, op, src, anchor, ip, ml2, ref2, emit)
                ip += ml2
                anchor = ip
                break
            if start3 < ip + ml + 3:  # not enough room for match 2: remove it
                if start3 >= ip + ml:  # write seq 1 now; seq 3 becomes seq 1
                    if start2 < ip + ml:
                        correction = ip + ml - start2
                        start2 += correction
                        ref2 += correction
                        ml2 -= correction
                        if ml2 < MINMATCH:
                            start2 = start3
                            ref2 = ref3
                            ml2 = ml3
                    op = _encode_sequence(dst, op, src, anchor, ip, ml, ref, emit)
                    anchor = ip + ml
                    ip = start3
                    ref = ref3
                    ml = ml3
                    start0 = start2
                    ref0 = ref2
                    ml0 = ml2
                    state = _SEARCH2
                    continue
                start2 = start3
                ref2 = ref3
                ml2 = ml3
                continue  # _Search3 again
            # three ascending matches: write at least the first one
            if start2 < ip + ml:
                if start2 - ip < ML_MASK:
                    if ml > OPTIMAL_ML:
                        ml = OPTIMAL_ML
                    if ip + ml > start2 + ml2 - MINMATCH:
                        ml = start2 - ip + ml2 - MINMATCH
                    correction = ml - (start2 - ip)
                    if correction > 0:
                        start2 += correction
                        ref2 += correction
                        ml2 -= correction
                else:
                    ml = start2 - ip
            op = _encode_sequence(dst, op, src, anchor, ip, ml, ref, emit)
            anchor = ip + ml
            ip = start2
            ref = ref2
            ml = ml2
            start2 = start3
            ref2 = ref3
            ml2 = ml3
    # the last literals
    return _put_literals(dst, op, src, anchor, n - anchor, emit)
