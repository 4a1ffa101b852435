"""zram's ``deflate``: the kernel's zlib deflate, byte for byte, on pages of any size.

Mirrors ``zlib_deflateInit2()`` / ``zlib_deflate(Z_FINISH)`` of lib/zlib_deflate
(deflate.c, deftree.c; the same in 6.1 ... 7.2) as ``backend_deflate.c`` and
``crypto/deflate.c`` call them for one page: ``deflateReset``, the whole page as input,
one ``Z_FINISH`` call, the size is ``total_out``.  The kernel's zlib is zlib **1.1.3**
with the old ``TRUNCATE_BLOCK`` test always compiled in: every 4096th symbol of a block
(levels above 2) it may end the block early when matches are rare and the block already
compresses well.  No 4 KiB page has 4096 symbols in a block, so there any zlib gives the
kernel's length; on 16 and 64 KiB pages stock zlib (which dropped the test) does not
(../shared/spec/compressors.md §15), hence this code.

=================  =========================================================
call               level -1 (= 6) .. 9, method DEFLATED, window bits
                   ``deflate.winbits`` (default -11: raw deflate, 2 KiB
                   window; 9..15 adds the zlib header and Adler-32),
                   memLevel 8 (MAX_MEM_LEVEL), Z_DEFAULT_STRATEGY
window             2 * wsize bytes; the page is read into it and slid by
                   wsize (head/prev rebased, positions below wsize become
                   NIL) once strstart >= wsize + MAX_DIST
hash               15 bits rolling, ``h = (h << 5 ^ c) & 0x7fff`` per byte;
                   head[2^15], prev[wsize] u16 chains
levels             1..3 ``deflate_fast``, 4..9 ``deflate_slow`` (lazy
                   matching), 0 ``deflate_stored``; the configuration table
                   of good/lazy/nice/chain lengths
blocks             ended when 16383 symbols are tallied (lit_bufsize - 1),
                   at TRUNCATE_BLOCK, or at the end; each sent stored,
                   with the static trees or with dynamic trees, whichever
                   ``opt_len``/``static_len`` say is shortest (stored only
                   while its start is still in the window)
=================  =========================================================

``deflate_compress_page`` writes the real stream (Python's ``zlib`` decodes it) or, with
``emit=False``, runs the same parse and block decisions and only counts the bits
(``opt_len`` and ``static_len`` are zlib's own exact bit counts of a block).
"""

from __future__ import annotations

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.compress._bytes import equal_bytes8, read32, uncounted

# ---- zlib constants (zlib.h, defutil.h, deftree.c) ------------------------------------
Z_DEFAULT_COMPRESSION = -1
DEFAULT_LEVEL = 6  # what Z_DEFAULT_COMPRESSION means
DEF_WINBITS = -11  # DEFLATE_DEF_WINBITS, negative: raw deflate (no zlib header)
MAX_WBITS = 15
MEM_LEVEL = 8  # DEFLATE_DEF_MEMLEVEL = MAX_MEM_LEVEL
Z_DEFLATED = 8

MIN_MATCH = 3
MAX_MATCH = 258
MIN_LOOKAHEAD = MAX_MATCH + MIN_MATCH + 1
TOO_FAR = 4096
NIL = 0
HASH_BITS = MEM_LEVEL + 7
HASH_SIZE = 1 << HASH_BITS
HASH_MASK = HASH_SIZE - 1
HASH_SHIFT = (HASH_BITS + MIN_MATCH - 1) // MIN_MATCH
LIT_BUFSIZE = 1 << (MEM_LEVEL + 6)  # 16384 symbols per block at most (minus one)
PENDING_BUF_SIZE = LIT_BUFSIZE * 4
MAX_BLOCK_SIZE = min(0xFFFF, PENDING_BUF_SIZE - 5)  # deflate_stored's block limit

LENGTH_CODES = 29
LITERALS = 256
END_BLOCK = 256
L_CODES = LITERALS + 1 + LENGTH_CODES  # 286
D_CODES = 30
BL_CODES = 19
HEAP_SIZE = 2 * L_CODES + 1
MAX_BITS = 15
MAX_BL_BITS = 7
REP_3_6 = 16
REPZ_3_10 = 17
REPZ_11_138 = 18
STORED_BLOCK = 0
STATIC_TREES = 1
DYN_TREES = 2

# configuration_table: good_length, max_lazy, nice_length, max_chain; levels 0..9.
# Levels 1..3 run deflate_fast (max_lazy is then max_insert_length), 4..9 deflate_slow.
CONFIG = np.array(
    [
        [0, 0, 0, 0],
        [4, 4, 8, 4],
        [4, 5, 16, 8],
        [4, 6, 32, 32],
        [4, 4, 16, 16],
        [8, 16, 32, 32],
        [8, 16, 128, 128],
        [8, 32, 128, 256],
        [32, 128, 258, 1024],
        [32, 258, 258, 4096],
    ],
    dtype=np.int64,
)

EXTRA_LBITS = np.array(
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0],
    dtype=np.int64,
)
EXTRA_DBITS = np.array(
    [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
     12, 13, 13],
    dtype=np.int64,
)
EXTRA_BLBITS = np.array([0] * 16 + [2, 3, 7], dtype=np.int64)
BL_ORDER = np.array(
    [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15], dtype=np.int64
)


def _bit_reverse(code: int, length: int) -> int:
    out = 0
    for _ in range(length):
        out = (out << 1) | (code & 1)
        code >>= 1
    return out


def _static_tables() -> tuple[np.ndarray, ...]:
    """tr_static_init(): length/distance code maps, their bases, the static trees."""
    length_code = np.zeros(MAX_MATCH - MIN_MATCH + 1, np.int64)
    base_length = np.zeros(LENGTH_CODES, np.int64)
    length = 0
    for code in range(LENGTH_CODES - 1):
        base_length[code] = length
        for _ in range(1 << EXTRA_LBITS[code]):
            length_code[length] = code
            length += 1
    # match length 258 (index 255) has its own code, 28, overwriting 27's last slot
    length_code[length - 1] = LENGTH_CODES - 1
    dist_code = np.zeros(512, np.int64)
    base_dist = np.zeros(D_CODES, np.int64)
    dist = 0
    for code in range(16):
        base_dist[code] = dist
        for _ in range(1 << EXTRA_DBITS[code]):
            dist_code[dist] = code
            dist += 1
    dist >>= 7  # from now on, distances are divided by 128
    for code in range(16, D_CODES):
        base_dist[code] = dist << 7
        for _ in range(1 << (EXTRA_DBITS[code] - 7)):
            dist_code[256 + dist] = code
            dist += 1
    # the static literal tree: 8, 9, 7, 8 bits (codes 286 and 287 take part in the codes)
    sl_len = np.zeros(L_CODES + 2, np.int64)
    sl_len[0:144] = 8
    sl_len[144:256] = 9
    sl_len[256:280] = 7
    sl_len[280:288] = 8
    sl_code = np.zeros(L_CODES + 2, np.int64)
    bl_count = np.bincount(sl_len, minlength=MAX_BITS + 1)
    next_code = np.zeros(MAX_BITS + 1, np.int64)
    code = 0
    for bits in range(1, MAX_BITS + 1):
        code = (code + int(bl_count[bits - 1])) << 1
        next_code[bits] = code
    for n in range(L_CODES + 2):
        ln = int(sl_len[n])
        sl_code[n] = _bit_reverse(int(next_code[ln]), ln)
        next_code[ln] += 1
    sd_len = np.full(D_CODES, 5, np.int64)
    sd_code = np.array([_bit_reverse(n, 5) for n in range(D_CODES)], np.int64)
    return length_code, base_length, dist_code, base_dist, sl_len, sl_code, sd_len, sd_code


(
    LENGTH_CODE,
    BASE_LENGTH,
    DIST_CODE,
    BASE_DIST,
    STATIC_LTREE_LEN,
    STATIC_LTREE_CODE,
    STATIC_DTREE_LEN,
    STATIC_DTREE_CODE,
) = _static_tables()

# ---- scratch layout --------------------------------------------------------------------
# One uint8, one uint16 and one int32 array per thread (see compress.batch), carved here.
WINDOW_BYTES = 2 * (1 << MAX_WBITS) + 2 * MAX_MATCH  # window + room for reads past it
S8_SIZE = WINDOW_BYTES + LIT_BUFSIZE  # window, l_buf
S16_SIZE = HASH_SIZE + (1 << MAX_WBITS) + LIT_BUFSIZE  # head, prev, d_buf
# per tree node: freq, len, dad, code; trees: literal (HEAP_SIZE), distance
# (2 * D_CODES + 1), bit length (2 * BL_CODES + 1); then heap, depth (as a heap key), bl_count
_LT = HEAP_SIZE
_DT = 2 * D_CODES + 1
_BT = 2 * BL_CODES + 1
_TREE_NODES = _LT + _DT + _BT
S32_SIZE = 4 * _TREE_NODES + 2 * HEAP_SIZE + (MAX_BITS + 1)

# the state words of one compression (an int64 array, named slots)
_STRSTART = 0
_BLOCK_START = 1
_LOOKAHEAD = 2
_INS_H = 3
_MATCH_START = 4
_MATCH_LENGTH = 5
_PREV_LENGTH = 6
_PREV_MATCH = 7
_MATCH_AVAILABLE = 8
_IN_POS = 9  # bytes of the page read into the window so far
_LAST_LIT = 10
_MATCHES = 11
_OPT_LEN = 12
_STATIC_LEN = 13
_BITS = 14  # bits written so far (the stream's length)
_BIBUF = 15  # pending bits (emit only)
_BIVALID = 16
_OP = 17  # bytes written to dst (emit only)
_L_MAX_CODE = 18
_D_MAX_CODE = 19
_BL_MAX_CODE = 20
_W_BITS = 21
_LEVEL = 22
_NSTATE = 23


@njit(inline="always")
def _tree(s32: np.ndarray, which: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(freq, len, dad, code) of tree ``which`` (0 literal/length, 1 distance, 2 bit length)."""
    if which == 0:
        base, size = 0, _LT
    elif which == 1:
        base, size = _LT, _DT
    else:
        base, size = _LT + _DT, _BT
    freq = s32[base : base + size]
    ln = s32[_TREE_NODES + base : _TREE_NODES + base + size]
    dad = s32[2 * _TREE_NODES + base : 2 * _TREE_NODES + base + size]
    code = s32[3 * _TREE_NODES + base : 3 * _TREE_NODES + base + size]
    return freq, ln, dad, code


# ---- bit output (send_bits, bi_windup, put_byte) ---------------------------------------
@njit(inline="always")
def _send_bits(st: np.ndarray, dst: np.ndarray, value: int, length: int, emit: bool) -> None:
    st[_BITS] += length
    if emit:
        st[_BIBUF] |= value << st[_BIVALID]
        st[_BIVALID] += length
        while st[_BIVALID] >= 8:
            dst[st[_OP]] = st[_BIBUF] & 0xFF
            st[_OP] += 1
            st[_BIBUF] >>= 8
            st[_BIVALID] -= 8


@njit(inline="always")
def _bi_windup(st: np.ndarray, dst: np.ndarray, emit: bool) -> None:
    """Pad to a byte boundary with zero bits."""
    st[_BITS] = (st[_BITS] + 7) & ~7
    if emit and st[_BIVALID] > 0:
        dst[st[_OP]] = st[_BIBUF] & 0xFF
        st[_OP] += 1
    st[_BIBUF] = 0
    st[_BIVALID] = 0


@njit(inline="always")
def _put_byte(st: np.ndarray, dst: np.ndarray, b: int, emit: bool) -> None:
    """A whole byte, on a byte boundary (headers, stored data)."""
    st[_BITS] += 8
    if emit:
        dst[st[_OP]] = b & 0xFF
        st[_OP] += 1


# ---- Huffman trees (deftree.c) ---------------------------------------------------------
@njit
def _pqdownheap(heap: np.ndarray, key: np.ndarray, heap_len: int, k: int) -> None:
    """Restore the heap property from node ``k`` down.

    zlib's smaller(tree, n, m, depth) -- frequency first, then depth -- is
    ``key[n] <= key[m]`` with ``key = freq << 16 | depth`` (see _build_tree): one load
    and one integer compare per node, which LLVM turns into a conditional move.
    """
    v = heap[k]
    v_key = key[v]
    j = k << 1
    while j <= heap_len:
        if j < heap_len and key[heap[j + 1]] <= key[heap[j]]:
            j += 1  # the smaller of the two sons
        if v_key <= key[heap[j]]:
            break
        heap[k] = heap[j]
        k = j
        j <<= 1
    heap[k] = v


@njit
def _build_tree(
    st: np.ndarray,
    s32: np.ndarray,
    which: int,
    elems: int,
    extra: np.ndarray,
    extra_base: int,
    max_length: int,
    use_static: bool,
    stree_len: np.ndarray,
    emit: bool,
) -> int:
    """build_tree() + gen_bitlen() (+ gen_codes() when emitting): code lengths of tree
    ``which``, their bits added to opt_len (and static_len); returns max_code."""
    freq, ln, dad, code = _tree(s32, which)
    heap = s32[4 * _TREE_NODES : 4 * _TREE_NODES + HEAP_SIZE]
    # zlib's depth[], with each node's frequency above it: key = freq << 16 | depth (a
    # block's frequencies sum to under 2^15, depths stay under 2^16: it fits an int32)
    key = s32[4 * _TREE_NODES + HEAP_SIZE : 4 * _TREE_NODES + 2 * HEAP_SIZE]
    bl_count = s32[4 * _TREE_NODES + 2 * HEAP_SIZE :]
    heap_len = 0
    heap_max = HEAP_SIZE
    max_code = -1
    for n in range(elems):
        if freq[n] != 0:
            heap_len += 1
            heap[heap_len] = n
            max_code = n
            key[n] = freq[n] << 16  # depth 0
        else:
            ln[n] = 0
    # pkzip needs two codes at least: force codes 0 and 1 (or whichever are missing)
    while heap_len < 2:
        if max_code < 2:
            max_code += 1
            node = max_code
        else:
            node = 0
        heap_len += 1
        heap[heap_len] = node
        freq[node] = 1
        key[node] = 1 << 16
        st[_OPT_LEN] -= 1
        if use_static:
            st[_STATIC_LEN] -= stree_len[node]
    for n in range(heap_len // 2, 0, -1):
        _pqdownheap(heap, key, heap_len, n)
    node = elems
    while True:
        n = heap[1]  # pqremove
        heap[1] = heap[heap_len]
        heap_len -= 1
        _pqdownheap(heap, key, heap_len, 1)
        m = heap[1]
        heap_max -= 1
        heap[heap_max] = n
        heap_max -= 1
        heap[heap_max] = m
        freq[node] = freq[n] + freq[m]
        key[node] = (freq[node] << 16) | (max(key[n] & 0xFFFF, key[m] & 0xFFFF) + 1)
        dad[n] = node
        dad[m] = node
        heap[1] = node
        node += 1
        _pqdownheap(heap, key, heap_len, 1)
        if heap_len < 2:
            break
    heap_max -= 1
    heap[heap_max] = heap[1]
    # gen_bitlen(): optimal lengths, then the overflow fix-up at max_length
    for bits in range(MAX_BITS + 1):
        bl_count[bits] = 0
    ln[heap[heap_max]] = 0  # the root
    overflow = 0
    h = heap_max + 1
    while h < HEAP_SIZE:
        n = heap[h]
        bits = ln[dad[n]] + 1
        if bits > max_length:
            bits = max_length
            overflow += 1
        ln[n] = bits
        h += 1
        if n > max_code:
            continue  # not a leaf
        bl_count[bits] += 1
        xbits = 0
        if n >= extra_base:
            xbits = extra[n - extra_base]
        f = freq[n]
        st[_OPT_LEN] += f * (bits + xbits)
        if use_static:
            st[_STATIC_LEN] += f * (stree_len[n] + xbits)
    if overflow > 0:
        while overflow > 0:
            bits = max_length - 1
            while bl_count[bits] == 0:
                bits -= 1
            bl_count[bits] -= 1  # move one leaf down the tree
            bl_count[bits + 1] += 2  # and one overflow item as its brother
            bl_count[max_length] -= 1
            overflow -= 2
        h = HEAP_SIZE
        for bits in range(max_length, 0, -1):
            n = bl_count[bits]
            while n != 0:
                h -= 1
                m = heap[h]
                if m > max_code:
                    continue
                if ln[m] != bits:
                    st[_OPT_LEN] += (bits - ln[m]) * freq[m]
                    ln[m] = bits
                n -= 1
    if emit:  # gen_codes(): canonical codes, bit-reversed for LSB-first output
        next_code = np.zeros(MAX_BITS + 1, np.int64)
        c = 0
        for bits in range(1, MAX_BITS + 1):
            c = (c + bl_count[bits - 1]) << 1
            next_code[bits] = c
        for n in range(max_code + 1):
            length = ln[n]
            if length == 0:
                continue
            v = next_code[length]
            next_code[length] += 1
            r = 0
            for _ in range(length):
                r = (r << 1) | (v & 1)
                v >>= 1
            code[n] = r
    return max_code


@njit
def _scan_tree(s32: np.ndarray, which: int, max_code: int) -> None:
    """scan_tree(): count the bit-length codes that will describe tree ``which``."""
    _, ln, _, _ = _tree(s32, which)
    bl_freq, _, _, _ = _tree(s32, 2)
    prevlen = -1
    nextlen = ln[0]
    count = 0
    max_count = 7
    min_count = 4
    if nextlen == 0:
        max_count = 138
        min_count = 3
    ln[max_code + 1] = 0xFFFF  # guard
    for n in range(max_code + 1):
        curlen = nextlen
        nextlen = ln[n + 1]
        count += 1
        if count < max_count and curlen == nextlen:
            continue
        if count < min_count:
            bl_freq[curlen] += count
        elif curlen != 0:
            if curlen != prevlen:
                bl_freq[curlen] += 1
            bl_freq[REP_3_6] += 1
        elif count <= 10:
            bl_freq[REPZ_3_10] += 1
        else:
            bl_freq[REPZ_11_138] += 1
        count = 0
        prevlen = curlen
        if nextlen == 0:
            max_count = 138
            min_count = 3
        elif curlen == nextlen:
            max_count = 6
            min_count = 3
        else:
            max_count = 7
            min_count = 4


@njit
def _send_tree(st: np.ndarray, dst: np.ndarray, s32: np.ndarray, which: int, max_code: int) -> None:
    """send_tree(): tree ``which``'s code lengths in the bit-length code (emit only)."""
    _, ln, _, _ = _tree(s32, which)
    _, bl_len, _, bl_code = _tree(s32, 2)
    prevlen = -1
    nextlen = ln[0]
    count = 0
    max_count = 7
    min_count = 4
    if nextlen == 0:
        max_count = 138
        min_count = 3
    for n in range(max_code + 1):
        curlen = nextlen
        nextlen = ln[n + 1]
        count += 1
        if count < max_count and curlen == nextlen:
            continue
        if count < min_count:
            while count != 0:
                _send_bits(st, dst, bl_code[curlen], bl_len[curlen], True)
                count -= 1
        elif curlen != 0:
            if curlen != prevlen:
                _send_bits(st, dst, bl_code[curlen], bl_len[curlen], True)
                count -= 1
            _send_bits(st, dst, bl_code[REP_3_6], bl_len[REP_3_6], True)
            _send_bits(st, dst, count - 3, 2, True)
        elif count <= 10:
            _send_bits(st, dst, bl_code[REPZ_3_10], bl_len[REPZ_3_10], True)
            _send_bits(st, dst, count - 3, 3, True)
        else:
            _send_bits(st, dst, bl_code[REPZ_11_138], bl_len[REPZ_11_138], True)
            _send_bits(st, dst, count - 11, 7, True)
        count = 0
        prevlen = curlen
        if nextlen == 0:
            max_count = 138
            min_count = 3
        elif curlen == nextlen:
            max_count = 6
            min_count = 3
        else:
            max_count = 7
            min_count = 4


@njit(inline="always")
def _d_code(dist: int) -> int:
    return DIST_CODE[dist] if dist < 256 else DIST_CODE[256 + (dist >> 7)]


@njit
def _compress_block(
    st: np.ndarray,
    dst: np.ndarray,
    s8: np.ndarray,
    s16: np.ndarray,
    ltree_len: np.ndarray,
    ltree_code: np.ndarray,
    dtree_len: np.ndarray,
    dtree_code: np.ndarray,
) -> None:
    """compress_block(): the block's symbols in these trees, then END_BLOCK (emit only)."""
    l_buf = s8[WINDOW_BYTES:]
    d_buf = s16[HASH_SIZE + (1 << MAX_WBITS) :]
    for lx in range(st[_LAST_LIT]):
        dist = int(d_buf[lx])
        lc = int(l_buf[lx])
        if dist == 0:
            _send_bits(st, dst, ltree_code[lc], ltree_len[lc], True)
        else:
            code = LENGTH_CODE[lc]
            sym = code + LITERALS + 1
            _send_bits(st, dst, ltree_code[sym], ltree_len[sym], True)
            extra = EXTRA_LBITS[code]
            if extra != 0:
                _send_bits(st, dst, lc - BASE_LENGTH[code], extra, True)
            dist -= 1
            code = _d_code(dist)
            _send_bits(st, dst, dtree_code[code], dtree_len[code], True)
            extra = EXTRA_DBITS[code]
            if extra != 0:
                _send_bits(st, dst, dist - BASE_DIST[code], extra, True)
    _send_bits(st, dst, ltree_code[END_BLOCK], ltree_len[END_BLOCK], True)


@njit
def _init_block(st: np.ndarray, s32: np.ndarray) -> None:
    lfreq, _, _, _ = _tree(s32, 0)
    dfreq, _, _, _ = _tree(s32, 1)
    bfreq, _, _, _ = _tree(s32, 2)
    lfreq[:L_CODES] = 0
    dfreq[:D_CODES] = 0
    bfreq[:BL_CODES] = 0
    lfreq[END_BLOCK] = 1
    st[_OPT_LEN] = 0
    st[_STATIC_LEN] = 0
    st[_LAST_LIT] = 0
    st[_MATCHES] = 0


@njit
def _stored_block(
    st: np.ndarray, dst: np.ndarray, s8: np.ndarray, start: int, stored_len: int, eof: int,
    emit: bool,
) -> None:
    """zlib_tr_stored_block(): type bits, byte alignment, LEN, NLEN, the bytes."""
    _send_bits(st, dst, (STORED_BLOCK << 1) + eof, 3, emit)
    _bi_windup(st, dst, emit)
    _put_byte(st, dst, stored_len & 0xFF, emit)
    _put_byte(st, dst, (stored_len >> 8) & 0xFF, emit)
    _put_byte(st, dst, ~stored_len & 0xFF, emit)
    _put_byte(st, dst, (~stored_len >> 8) & 0xFF, emit)
    st[_BITS] += 8 * stored_len
    if emit:
        op = st[_OP]
        for k in range(stored_len):
            dst[op + k] = s8[start + k]
        st[_OP] = op + stored_len


@njit
def _flush_block(
    st: np.ndarray, dst: np.ndarray, s8: np.ndarray, s16: np.ndarray, s32: np.ndarray, eof: int,
    emit: bool,
) -> None:
    """FLUSH_BLOCK_ONLY + zlib_tr_flush_block(): end the block at strstart."""
    block_start = st[_BLOCK_START]
    stored_len = st[_STRSTART] - block_start
    have_buf = block_start >= 0  # else the block's start has slid out of the window
    max_blindex = 0
    if st[_LEVEL] > 0:
        st[_L_MAX_CODE] = _build_tree(
            st, s32, 0, L_CODES, EXTRA_LBITS, LITERALS + 1, MAX_BITS, True, STATIC_LTREE_LEN,
            emit,
        )
        st[_D_MAX_CODE] = _build_tree(
            st, s32, 1, D_CODES, EXTRA_DBITS, 0, MAX_BITS, True, STATIC_DTREE_LEN, emit
        )
        # build_bl_tree()
        _scan_tree(s32, 0, st[_L_MAX_CODE])
        _scan_tree(s32, 1, st[_D_MAX_CODE])
        st[_BL_MAX_CODE] = _build_tree(
            st, s32, 2, BL_CODES, EXTRA_BLBITS, 0, MAX_BL_BITS, False, STATIC_DTREE_LEN, emit
        )
        _, bl_len, _, _ = _tree(s32, 2)
        max_blindex = BL_CODES - 1
        while max_blindex >= 3:
            if bl_len[BL_ORDER[max_blindex]] != 0:
                break
            max_blindex -= 1
        st[_OPT_LEN] += 3 * (max_blindex + 1) + 5 + 5 + 4
        opt_lenb = (st[_OPT_LEN] + 3 + 7) >> 3
        static_lenb = (st[_STATIC_LEN] + 3 + 7) >> 3
        if static_lenb <= opt_lenb:
            opt_lenb = static_lenb
    else:
        opt_lenb = static_lenb = stored_len + 5  # level 0: a stored block
    if stored_len + 4 <= opt_lenb and have_buf:
        _stored_block(st, dst, s8, block_start, stored_len, eof, emit)
    elif static_lenb == opt_lenb:
        _send_bits(st, dst, (STATIC_TREES << 1) + eof, 3, emit)
        if emit:
            _compress_block(
                st, dst, s8, s16, STATIC_LTREE_LEN, STATIC_LTREE_CODE,
                STATIC_DTREE_LEN, STATIC_DTREE_CODE,
            )
        else:
            st[_BITS] += st[_STATIC_LEN]
    else:
        _send_bits(st, dst, (DYN_TREES << 1) + eof, 3, emit)
        if emit:
            lcodes = st[_L_MAX_CODE] + 1
            dcodes = st[_D_MAX_CODE] + 1
            _send_bits(st, dst, lcodes - 257, 5, True)
            _send_bits(st, dst, dcodes - 1, 5, True)
            _send_bits(st, dst, max_blindex + 1 - 4, 4, True)
            _, bl_len, _, _ = _tree(s32, 2)
            for rank in range(max_blindex + 1):
                _send_bits(st, dst, bl_len[BL_ORDER[rank]], 3, True)
            _send_tree(st, dst, s32, 0, lcodes - 1)
            _send_tree(st, dst, s32, 1, dcodes - 1)
            _, l_len, _, l_code = _tree(s32, 0)
            _, d_len, _, d_code = _tree(s32, 1)
            _compress_block(st, dst, s8, s16, l_len, l_code, d_len, d_code)
        else:
            st[_BITS] += st[_OPT_LEN]
    _init_block(st, s32)
    if eof:
        _bi_windup(st, dst, emit)
    st[_BLOCK_START] = st[_STRSTART]


# ---- LZ77 (deflate.c) ------------------------------------------------------------------
@njit(inline="always")
def _tally(
    st: np.ndarray, s8: np.ndarray, s16: np.ndarray, s32: np.ndarray, dist: int, lc: int,
    emit: bool,
) -> bool:
    """zlib_tr_tally(): count one literal (dist 0) or match; True when the block must end.

    The block ends when the symbol buffer is full (16383) or, with TRUNCATE_BLOCK, at
    every 4096th symbol (levels 3..9) if under half the symbols were matches and the
    block's rough output estimate is under half its input.
    """
    # s32[0:_LT] is the literal/length tree's freq, s32[_LT:_LT + _DT] the distance tree's
    last_lit = st[_LAST_LIT]
    if emit:
        s8[WINDOW_BYTES + last_lit] = lc
        s16[HASH_SIZE + (1 << MAX_WBITS) + last_lit] = dist
    last_lit += 1
    st[_LAST_LIT] = last_lit
    if dist == 0:
        s32[lc] += 1
    else:
        st[_MATCHES] += 1
        dist -= 1
        s32[LENGTH_CODE[lc] + LITERALS + 1] += 1
        s32[_LT + _d_code(dist)] += 1
    bflush = last_lit == LIT_BUFSIZE - 1
    if (last_lit & 0xFFF) == 0 and st[_LEVEL] > 2:
        out_length = last_lit * 8
        in_length = st[_STRSTART] - st[_BLOCK_START]
        for dcode in range(D_CODES):
            out_length += s32[_LT + dcode] * (5 + EXTRA_DBITS[dcode])
        out_length >>= 3
        if st[_MATCHES] < last_lit // 2 and out_length < in_length // 2:
            bflush = True
    return bflush


@njit
def _fill_window(st: np.ndarray, src: np.ndarray, s8: np.ndarray, s16: np.ndarray) -> None:
    """fill_window(): slide the window when strstart is far enough, then read the page."""
    wsize = 1 << st[_W_BITS]
    window_size = 2 * wsize
    max_dist = wsize - MIN_LOOKAHEAD
    n_in = src.shape[0]
    while True:
        more = window_size - st[_LOOKAHEAD] - st[_STRSTART]
        if more == 0 and st[_STRSTART] == 0 and st[_LOOKAHEAD] == 0:
            more = wsize
        elif st[_STRSTART] >= wsize + max_dist:
            s8[0:wsize] = s8[wsize : 2 * wsize]
            st[_MATCH_START] -= wsize
            st[_STRSTART] -= wsize
            st[_BLOCK_START] -= wsize
            head = s16[:HASH_SIZE]
            for i in range(HASH_SIZE):
                m = int(head[i])
                head[i] = m - wsize if m >= wsize else NIL
            prev = s16[HASH_SIZE : HASH_SIZE + wsize]
            for i in range(wsize):
                m = int(prev[i])
                prev[i] = m - wsize if m >= wsize else NIL
            more += wsize
        in_pos = st[_IN_POS]
        if in_pos == n_in:
            return
        n = min(more, n_in - in_pos)
        dest = st[_STRSTART] + st[_LOOKAHEAD]
        s8[dest : dest + n] = src[in_pos : in_pos + n]
        st[_IN_POS] = in_pos + n
        st[_LOOKAHEAD] += n
        if st[_LOOKAHEAD] >= MIN_MATCH:
            strstart = st[_STRSTART]
            st[_INS_H] = ((int(s8[strstart]) << HASH_SHIFT) ^ int(s8[strstart + 1])) & HASH_MASK
        if not (st[_LOOKAHEAD] < MIN_LOOKAHEAD and st[_IN_POS] != n_in):
            return


@njit
def _insert_string(
    s8: np.ndarray, s16: np.ndarray, wmask: int, ins_h: int, pos: int
) -> tuple[int, int]:
    """INSERT_STRING(): hash window[pos .. pos+2] in; (previous chain head, new ins_h)."""
    h = ((ins_h << HASH_SHIFT) ^ int(s8[pos + MIN_MATCH - 1])) & HASH_MASK
    hash_head = int(s16[h])
    s16[HASH_SIZE + (pos & wmask)] = hash_head
    s16[h] = pos
    return hash_head, h


@njit
def _longest_match(
    s8: np.ndarray,
    s16: np.ndarray,
    wmask: int,
    max_dist: int,
    strstart: int,
    lookahead: int,
    prev_length: int,
    match_start: int,
    cur_match: int,
    max_chain: int,
    good_match: int,
    nice_match: int,
) -> tuple[int, int]:
    """longest_match(): the longest match at strstart along the hash chain of ``cur_match``;
    (length, match_start).

    Candidates must beat ``prev_length``; the chain is cut to a quarter once
    prev_length reaches good_match, and the search stops at nice_match (never more than
    the lookahead).  Bytes 2 are not compared: equal hashes make them equal.  Reads go
    up to 265 bytes past strstart, inside the scratch (S8_SIZE leaves room).
    """
    chain_length = max_chain
    scan = strstart
    best_len = prev_length
    limit = scan - max_dist if scan > max_dist else NIL
    # zlib's UNALIGNED_OK variant: bytes 0-1 and bytes best_len-1..best_len compared as
    # one 16-bit word each (the same test as its four byte compares)
    scan_start = read32(s8, scan) & 0xFFFF
    scan_end = read32(s8, scan + best_len - 1) & 0xFFFF
    if prev_length >= good_match:
        chain_length >>= 2
    if nice_match > lookahead:
        nice_match = lookahead
    while True:
        match = cur_match
        if (
            read32(s8, match + best_len - 1) & 0xFFFF == scan_end
            and read32(s8, match) & 0xFFFF == scan_start
        ):
            # the match length up to MAX_MATCH, 8 bytes per compare (the first
            # difference is the lowest set byte of the XOR, as lz4's LZ4_count)
            k = 3
            while True:
                equal = equal_bytes8(s8, scan + k, match + k)
                k += equal
                if equal < 8 or k >= MAX_MATCH:
                    break
            if k > MAX_MATCH:
                k = MAX_MATCH
            if k > best_len:
                match_start = cur_match
                best_len = k
                if k >= nice_match:
                    break
                scan_end = read32(s8, scan + best_len - 1) & 0xFFFF
        cur_match = int(s16[HASH_SIZE + (cur_match & wmask)])
        if cur_match <= limit:
            break
        chain_length -= 1
        if chain_length == 0:
            break
    return (best_len if best_len <= lookahead else lookahead), match_start


@njit
def _deflate_stored(
    st: np.ndarray, src: np.ndarray, dst: np.ndarray, s8: np.ndarray, s16: np.ndarray,
    s32: np.ndarray, emit: bool,
) -> None:
    """deflate_stored() (level 0): the page copied in stored blocks."""
    max_dist = (1 << st[_W_BITS]) - MIN_LOOKAHEAD
    while True:
        if st[_LOOKAHEAD] <= 1:
            _fill_window(st, src, s8, s16)
            if st[_LOOKAHEAD] == 0:
                break
        st[_STRSTART] += st[_LOOKAHEAD]
        st[_LOOKAHEAD] = 0
        max_start = st[_BLOCK_START] + MAX_BLOCK_SIZE
        if st[_STRSTART] == 0 or st[_STRSTART] >= max_start:
            st[_LOOKAHEAD] = st[_STRSTART] - max_start
            st[_STRSTART] = max_start
            _flush_block(st, dst, s8, s16, s32, 0, emit)
        if st[_STRSTART] - st[_BLOCK_START] >= max_dist:
            _flush_block(st, dst, s8, s16, s32, 0, emit)
    _flush_block(st, dst, s8, s16, s32, 1, emit)


@njit
def _deflate_fast(
    st: np.ndarray, src: np.ndarray, dst: np.ndarray, s8: np.ndarray, s16: np.ndarray,
    s32: np.ndarray, emit: bool,
) -> None:
    """deflate_fast() (levels 1..3): greedy matching, short matches inserted whole.

    The state lives in locals; ``st`` is brought up to date before every helper that
    reads or moves it (fill_window slides strstart and match_start, the tally and the
    block flush read strstart).
    """
    wmask = (1 << st[_W_BITS]) - 1
    max_dist = (1 << st[_W_BITS]) - MIN_LOOKAHEAD
    level = st[_LEVEL]
    good_match = CONFIG[level, 0]
    max_insert_length = CONFIG[level, 1]
    nice_length = CONFIG[level, 2]
    max_chain = CONFIG[level, 3]
    hash_head = NIL
    strstart = st[_STRSTART]
    lookahead = st[_LOOKAHEAD]
    ins_h = st[_INS_H]
    match_start = st[_MATCH_START]
    match_length = st[_MATCH_LENGTH]
    while True:
        if lookahead < MIN_LOOKAHEAD:
            st[_STRSTART] = strstart
            st[_LOOKAHEAD] = lookahead
            st[_INS_H] = ins_h
            st[_MATCH_START] = match_start
            _fill_window(st, src, s8, s16)
            strstart = st[_STRSTART]
            lookahead = st[_LOOKAHEAD]
            ins_h = st[_INS_H]
            match_start = st[_MATCH_START]
            if lookahead == 0:
                break
        if lookahead >= MIN_MATCH:
            hash_head, ins_h = _insert_string(s8, s16, wmask, ins_h, strstart)
        if hash_head != NIL and strstart - hash_head <= max_dist:
            # prev_length stays MIN_MATCH - 1 at these levels
            match_length, match_start = _longest_match(
                s8, s16, wmask, max_dist, strstart, lookahead, MIN_MATCH - 1, match_start,
                hash_head, max_chain, good_match, nice_length,
            )
        st[_STRSTART] = strstart
        if match_length >= MIN_MATCH:
            bflush = _tally(
                st, s8, s16, s32, strstart - match_start, match_length - MIN_MATCH, emit
            )
            lookahead -= match_length
            if match_length <= max_insert_length and lookahead >= MIN_MATCH:
                match_length -= 1  # the string at strstart is in the table already
                while True:
                    strstart += 1
                    hash_head, ins_h = _insert_string(s8, s16, wmask, ins_h, strstart)
                    match_length -= 1
                    if match_length == 0:
                        break
                strstart += 1
            else:
                strstart += match_length
                match_length = 0
                ins_h = ((int(s8[strstart]) << HASH_SHIFT) ^ int(s8[strstart + 1])) & HASH_MASK
        else:
            bflush = _tally(st, s8, s16, s32, 0, int(s8[strstart]), emit)
            lookahead -= 1
            strstart += 1
        if bflush:
            st[_STRSTART] = strstart
            _flush_block(st, dst, s8, s16, s32, 0, emit)
    st[_STRSTART] = strstart
    _flush_block(st, dst, s8, s16, s32, 1, emit)


@njit
def _deflate_slow(
    st: np.ndarray, src: np.ndarray, dst: np.ndarray, s8: np.ndarray, s16: np.ndarray,
    s32: np.ndarray, emit: bool,
) -> None:
    """deflate_slow() (levels 4..9): lazy matching, a match kept only if the next
    position does not start a longer one.  State in locals, as in _deflate_fast."""
    wmask = (1 << st[_W_BITS]) - 1
    max_dist = (1 << st[_W_BITS]) - MIN_LOOKAHEAD
    level = st[_LEVEL]
    good_match = CONFIG[level, 0]
    max_lazy = CONFIG[level, 1]
    nice_length = CONFIG[level, 2]
    max_chain = CONFIG[level, 3]
    hash_head = NIL
    strstart = st[_STRSTART]
    lookahead = st[_LOOKAHEAD]
    ins_h = st[_INS_H]
    match_start = st[_MATCH_START]
    match_length = st[_MATCH_LENGTH]
    prev_match = st[_PREV_MATCH]
    match_available = st[_MATCH_AVAILABLE]
    while True:
        if lookahead < MIN_LOOKAHEAD:
            st[_STRSTART] = strstart
            st[_LOOKAHEAD] = lookahead
            st[_INS_H] = ins_h
            st[_MATCH_START] = match_start
            _fill_window(st, src, s8, s16)
            strstart = st[_STRSTART]
            lookahead = st[_LOOKAHEAD]
            ins_h = st[_INS_H]
            match_start = st[_MATCH_START]
            if lookahead == 0:
                break
        if lookahead >= MIN_MATCH:
            hash_head, ins_h = _insert_string(s8, s16, wmask, ins_h, strstart)
        prev_length = match_length
        prev_match = match_start
        match_length = MIN_MATCH - 1
        if hash_head != NIL and prev_length < max_lazy and strstart - hash_head <= max_dist:
            match_length, match_start = _longest_match(
                s8, s16, wmask, max_dist, strstart, lookahead, prev_length, match_start,
                hash_head, max_chain, good_match, nice_length,
            )
            if match_length == MIN_MATCH and strstart - match_start > TOO_FAR:
                match_length = MIN_MATCH - 1
        st[_STRSTART] = strstart
        if prev_length >= MIN_MATCH and match_length <= prev_length:
            max_insert = strstart + lookahead - MIN_MATCH
            bflush = _tally(
                st, s8, s16, s32, strstart - 1 - prev_match, prev_length - MIN_MATCH, emit
            )
            lookahead -= prev_length - 1
            prev_length -= 2
            while True:
                strstart += 1
                if strstart <= max_insert:
                    hash_head, ins_h = _insert_string(s8, s16, wmask, ins_h, strstart)
                prev_length -= 1
                if prev_length == 0:
                    break
            match_available = 0
            match_length = MIN_MATCH - 1
            strstart += 1
            if bflush:
                st[_STRSTART] = strstart
                _flush_block(st, dst, s8, s16, s32, 0, emit)
        elif match_available:
            if _tally(st, s8, s16, s32, 0, int(s8[strstart - 1]), emit):
                _flush_block(st, dst, s8, s16, s32, 0, emit)
            strstart += 1
            lookahead -= 1
        else:
            match_available = 1
            strstart += 1
            lookahead -= 1
    st[_STRSTART] = strstart
    if match_available:
        _tally(st, s8, s16, s32, 0, int(s8[strstart - 1]), emit)
    _flush_block(st, dst, s8, s16, s32, 1, emit)


@njit
def _adler32(src: np.ndarray) -> int:
    a = 1
    b = 0
    for i in range(src.shape[0]):
        a = (a + int(src[i])) % 65521
        b = (b + a) % 65521
    return (b << 16) | a


@njit
def deflate_compress_page(
    src: np.ndarray,
    dst: np.ndarray,
    emit: bool,
    level: int,
    winbits: int,
    s8: np.ndarray,
    s16: np.ndarray,
    s32: np.ndarray,
) -> int:
    """Compress ``src`` as zlib_deflateInit2(level, DEFLATED, winbits, 8, DEFAULT) +
    zlib_deflate(Z_FINISH) do; return ``total_out``, or -1 where deflateInit2 refuses
    the parameters (the backend then fails with -EINVAL).

    ``s8``, ``s16``, ``s32`` are S8_SIZE u8, S16_SIZE u16 and S32_SIZE int32 of scratch.
    With ``emit`` False nothing is written to ``dst``.
    """
    if level == Z_DEFAULT_COMPRESSION:
        level = DEFAULT_LEVEL
    noheader = winbits < 0
    w_bits = -winbits if noheader else winbits
    if w_bits < 9 or w_bits > MAX_WBITS or level < 0 or level > 9:
        return -1
    wsize = 1 << w_bits
    state = np.zeros(_NSTATE, np.int64)
    # Every helper below receives these arrays; uncounted views spare the atomic reference
    # counting on each call (the arrays themselves are held until the return).
    st = uncounted(state)
    src = uncounted(src)
    dst = uncounted(dst)
    s8 = uncounted(s8)
    s16 = uncounted(s16)
    s32 = uncounted(s32)
    st[_W_BITS] = w_bits
    st[_LEVEL] = level
    st[_MATCH_LENGTH] = MIN_MATCH - 1
    st[_PREV_LENGTH] = MIN_MATCH - 1
    s16[:HASH_SIZE] = 0  # CLEAR_HASH
    s16[HASH_SIZE : HASH_SIZE + wsize] = 0  # never read before written; zeroed anyway
    s8[2 * wsize : 2 * wsize + 2 * MAX_MATCH] = 0  # bytes read past the window
    _init_block(st, s32)
    if not noheader:  # the zlib header: CMF, FLG
        header = (Z_DEFLATED + ((w_bits - 8) << 4)) << 8
        level_flags = min((level - 1) >> 1, 3) if level > 0 else 3
        header |= level_flags << 6
        header += 31 - (header % 31)
        _put_byte(st, dst, header >> 8, emit)
        _put_byte(st, dst, header & 0xFF, emit)
    if level == 0:
        _deflate_stored(st, src, dst, s8, s16, s32, emit)
    elif level <= 3:
        _deflate_fast(st, src, dst, s8, s16, s32, emit)
    else:
        _deflate_slow(st, src, dst, s8, s16, s32, emit)
    if not noheader:  # the Adler-32 trailer, most significant byte first
        adler = _adler32(src) if emit else 0
        for shift in (24, 16, 8, 0):
            _put_byte(st, dst, (adler >> shift) & 0xFF, emit)
    return state[_BITS] >> 3
