"""Many pages at once, on every core, and zram's storage rule.

Estimation compresses millions of pages, so the kernel-exact compressors are
also run in one numba ``prange`` loop over pages (``parallel=True``; each chunk
of pages has its own dictionary and scratch buffer, as each CPU has its own
zcomp stream in the kernel).  Entry points release the GIL (``nogil``), so a
caller's reader thread keeps filling buffers meanwhile.  The lengths-only path
walks exactly the same parse as the byte-emitting one, only without writing the
output.

zram's rule on top (``zram_write_page()`` in drivers/block/zram/zram_drv.c,
6.18; ../shared/spec/compressors.md §7):

============================  =============================================
page                          bytes added to ``mm_stat`` compr_data_size
============================  =============================================
same-filled (512 equal        0 (``page_same_filled()``: kept in the slot
little-endian u64 words)      table, never compressed)
``comp_len >= huge_class``    PAGE_SIZE (stored raw; zs_huge_class_size(),
                              3625 on the reference kernel)
otherwise                     ``comp_len``
============================  =============================================
"""

from __future__ import annotations

import numpy as np

from zsmalloc._jit import HAVE_NUMBA, njit, prange
from zsmalloc.compress._bytes import PAGE_SIZE, read64
from zsmalloc.compress.lz4 import LZ4_HASH_ENTRIES, lz4_compress_page
from zsmalloc.compress.lzo import D_SIZE, lzo_compress_page
from zsmalloc.errors import InvalidSizeError
from zsmalloc.profile import DEFAULT_PROFILE
from zsmalloc.zs.size_class import class_table

ALGO_LZO = 0
ALGO_LZO_RLE = 1
ALGO_LZ4 = 2
ALGO_CODES = {"lzo": ALGO_LZO, "lzo-rle": ALGO_LZO_RLE, "lz4": ALGO_LZ4}

COMPRESS_BOUND = 2 * PAGE_SIZE
"""zcomp's destination buffer: 2 pages, above every worst case (lz4 4128, lzo 4419)."""

BATCH_BOUND = 4480
"""Per-page room in batch output: above LZ4_COMPRESSBOUND(4096) = 4128 and lzo's 4419."""

SCRATCH_ENTRIES = max(LZ4_HASH_ENTRIES, D_SIZE)


def as_pages(data: object, what: str = "input") -> np.ndarray:
    """View ``data`` (bytes-like or uint8 array) as a C-contiguous (n, 4096) uint8 array.

    Raises InvalidSizeError naming the size when it is not a whole number of pages.
    """
    if isinstance(data, np.ndarray):
        arr = data
        if arr.dtype.hasobject:
            raise InvalidSizeError(f"{what}: expected raw page bytes, found a {arr.dtype} array")
        if arr.dtype != np.uint8:
            arr = arr.view(np.uint8) if arr.flags.c_contiguous else np.ascontiguousarray(arr)
            arr = arr.view(np.uint8)
    else:
        try:
            arr = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)  # type: ignore[arg-type]
        except TypeError:
            raise InvalidSizeError(
                f"{what}: expected bytes or a uint8 array of pages, found {type(data).__name__}"
            ) from None
    if arr.size % PAGE_SIZE != 0 or (arr.ndim == 2 and arr.shape[1] != PAGE_SIZE):
        raise InvalidSizeError(
            f"{what}: expected a multiple of {PAGE_SIZE} bytes (whole pages), "
            f"found {arr.size} bytes"
            + (f" in shape {arr.shape}" if arr.ndim > 1 else "")
        )
    # Always a read-only view: one numba signature for every caller (compile once).
    view = np.ascontiguousarray(arr).reshape(-1, PAGE_SIZE).view()
    view.flags.writeable = False
    return view


def _nchunks(n: int) -> int:
    """How many independent chunks to hand to prange (a few per thread, for balance)."""
    if not HAVE_NUMBA or n == 0:
        return 1
    import numba

    return max(1, min(n, 8 * numba.get_num_threads()))


@njit(nogil=True)
def compress_one(
    src: np.ndarray, dst: np.ndarray, emit: bool, algo: int, level: int, scratch: np.ndarray
) -> int:
    """Dispatch one page to the kernel-exact compressor ``algo`` (ALGO_*)."""
    if algo == ALGO_LZ4:
        return lz4_compress_page(src, dst, emit, level, scratch)
    return lzo_compress_page(src, dst, emit, algo == ALGO_LZO_RLE, scratch)


@njit(inline="always")
def page_same_filled(page: np.ndarray) -> bool:
    """Mirrors page_same_filled() in drivers/block/zram/zram_drv.c (6.18): 512 equal u64s."""
    first = read64(page, 0)
    for p in range(8, page.shape[0], 8):  # noqa: SIM110 - numba: no generators
        if read64(page, p) != first:
            return False
    return True


@njit(inline="always")
def zram_stored_len(comp_len: int, huge_class_size: int, page_size: int) -> int:
    """Mirrors the huge test of zram_write_page(): ``comp_len >= huge_class_size`` is kept
    raw, a PAGE_SIZE object; anything shorter is stored as compressed."""
    return page_size if comp_len >= huge_class_size else comp_len


@njit
def zram_stored_lens(lengths: np.ndarray, huge_class_size: int, page_size: int) -> np.ndarray:
    """:func:`zram_stored_len` for every page (int32[n])."""
    out = np.empty(lengths.shape[0], np.int32)
    for i in range(lengths.shape[0]):
        out[i] = zram_stored_len(lengths[i], huge_class_size, page_size)
    return out


@njit(parallel=True, nogil=True)
def _batch_lengths(
    pages: np.ndarray, algo: int, level: int, huge_class_size: int, nchunks: int
) -> np.ndarray:
    """Compressed length per page; with ``huge_class_size`` >= 0, zram's stored size."""
    n = pages.shape[0]
    out = np.empty(n, dtype=np.int32)
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        scratch = np.empty(SCRATCH_ENTRIES, dtype=np.uint16)
        dst = np.empty(1, dtype=np.uint8)  # never written: emit is False
        for i in range(lo, hi):
            page = pages[i]
            if huge_class_size >= 0 and page_same_filled(page):
                out[i] = 0
                continue
            length = compress_one(page, dst, False, algo, level, scratch)
            if huge_class_size >= 0:
                length = zram_stored_len(length, huge_class_size, page.shape[0])
            out[i] = length
    return out


@njit(parallel=True, nogil=True)
def _batch_compress(
    pages: np.ndarray, out: np.ndarray, lengths: np.ndarray, algo: int, level: int, nchunks: int
) -> None:
    """Compress every page into row i of ``out`` (the first lengths[i] bytes)."""
    n = pages.shape[0]
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        scratch = np.empty(SCRATCH_ENTRIES, dtype=np.uint16)
        for i in range(lo, hi):
            lengths[i] = compress_one(pages[i], out[i], True, algo, level, scratch)


@njit(parallel=True, nogil=True)
def _batch_same_filled(pages: np.ndarray, nchunks: int) -> np.ndarray:
    n = pages.shape[0]
    same = np.zeros(n, dtype=np.bool_)
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        for i in range(lo, hi):
            same[i] = page_same_filled(pages[i])
    return same


def is_same_filled(pages: object) -> tuple[np.ndarray, np.ndarray]:
    """Which pages are same-filled, and their fill word (0 where not): (bool[n], uint64[n])."""
    arr = as_pages(pages, "pages")
    same = _batch_same_filled(arr, _nchunks(arr.shape[0]))
    fill = np.zeros(arr.shape[0], dtype=np.uint64)
    fill[same] = arr[same, :8].copy().view("<u8")[:, 0]
    return same, fill


def stored_size(comp_len: int, same_filled: bool, huge_class_size: int | None = None) -> int:
    """zram's rule for one page: 0 if same-filled, PAGE_SIZE if huge, else ``comp_len``.

    ``huge_class_size`` defaults to the reference kernel's (3625).
    """
    if same_filled:
        return 0
    if huge_class_size is None:
        huge_class_size = class_table(DEFAULT_PROFILE).huge_class_size
    return int(zram_stored_len(comp_len, huge_class_size, PAGE_SIZE))
