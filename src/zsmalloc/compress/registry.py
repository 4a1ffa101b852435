"""The compressor registry: zram's backend names -> backend objects.

Mirrors ``backends[]`` in drivers/block/zram/zcomp.c (6.18), which names the
algorithms ``lzo-rle``, ``lzo``, ``lz4``, ``lz4hc``, ``842``, ``deflate`` and
``zstd``, and the per-backend ``setup_params()`` that turns zram's
``algorithm_params level=N`` into the library's level.

Two kinds of backend:

* kernel-exact (``lzo``, ``lzo-rle``, ``lz4``): written here (numba, with the
  same code running as plain Python without it); the bytes and lengths are the
  kernel's, which is what zram's numbers depend on.  The reference kernel
  enables exactly these three.
* library-backed (``lz4hc``, ``zstd``, ``deflate``): the same format and the
  kernel's parameters, through the lz4, zstandard and zlib packages.  Their
  output decodes the same, but their lengths are not guaranteed to be the
  kernel's (other library versions).  ``842`` is not supported.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numpy as np

from zsmalloc.compress._bytes import PAGE_SIZE
from zsmalloc.compress.batch import (
    ALGO_CODES,
    BATCH_BOUND,
    COMPRESS_BOUND,
    SCRATCH_ENTRIES,
    _batch_compress,
    _batch_lengths,
    _nchunks,
    as_pages,
    compress_one,
    is_same_filled,
    zram_stored_lens,
)
from zsmalloc.compress.lz4 import LZ4_ACCELERATION_DEFAULT, lz4_decompress_page
from zsmalloc.compress.lzo import lzo_decompress_page
from zsmalloc.errors import (
    CompressionError,
    InputError,
    InvalidSizeError,
    UnknownAlgorithmError,
)
from zsmalloc.profile import DEFAULT_PROFILE
from zsmalloc.zs.size_class import class_table

KERNEL_EXACT = ("lzo", "lzo-rle", "lz4")
LIBRARY = ("lz4hc", "zstd", "deflate")
ALGORITHMS = KERNEL_EXACT + LIBRARY
UNSUPPORTED = {"842": "the 842 compressor (lib/842) has no implementation here"}

BATCH_BLOCK = 1024
"""Pages per batch compress call: a 4.4 MiB output buffer, reused block after block."""

LZ4HC_DEFAULT_CLEVEL = 9
ZSTD_DEFAULT_CLEVEL = 3
ZSTD_MIN_CLEVEL = -(1 << 17)  # ZSTD_minCLevel(): -ZSTD_TARGETLENGTH_MAX
Z_DEFAULT_COMPRESSION = -1
DEFLATE_DEF_WINBITS = 11  # backend_deflate.c: "the same value as crypto API"
DEFLATE_DEF_MEMLEVEL = 8  # MAX_MEM_LEVEL in the kernel's include/linux/zconf.h


def _page_array(page: object) -> np.ndarray:
    """One page as a read-only uint8 array of PAGE_SIZE bytes (InvalidSizeError otherwise)."""
    # Fast paths for the common one-page calls (zswap stores, zram writes).
    if type(page) is bytes and len(page) == PAGE_SIZE:
        return np.frombuffer(page, dtype=np.uint8)  # read-only already
    if (
        type(page) is np.ndarray
        and page.dtype == np.uint8
        and page.shape == (PAGE_SIZE,)
        and page.flags.c_contiguous
        and not page.flags.writeable
    ):
        return page
    arr = as_pages(page, "page")
    if arr.shape[0] != 1:
        raise InvalidSizeError(
            f"page: expected exactly {PAGE_SIZE} bytes, found {arr.size} bytes"
        )
    return arr[0]


def _check_level(name: str, level: object) -> int | None:
    if level is None:
        return None
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise InputError(f"{name}: level must be an integer, found {level!r}")
    level = int(level)
    if not -(2**31) <= level < 2**31:
        raise InputError(f"{name}: level must fit zram's s32 level, found {level}")
    return level


def _check_huge_class_size(huge_class_size: int | None) -> int:
    if huge_class_size is None:
        return class_table(DEFAULT_PROFILE).huge_class_size
    if isinstance(huge_class_size, bool) or not isinstance(huge_class_size, (int, np.integer)):
        raise InputError(f"huge_class_size must be an integer, found {huge_class_size!r}")
    if not 0 <= huge_class_size <= PAGE_SIZE:
        raise InputError(f"huge_class_size must be 0 .. {PAGE_SIZE}, found {huge_class_size}")
    return int(huge_class_size)


class Backend:
    """A zram compression backend: one page in, its compressed bytes out.

    ``compress_lengths`` / ``stored_sizes`` take many pages at once.
    """

    name: str
    level: int | None
    kernel_exact: ClassVar[bool] = False

    def compress(self, page: bytes | np.ndarray) -> bytes:
        raise NotImplementedError

    def decompress(self, data: bytes, out_len: int = PAGE_SIZE) -> bytes:
        raise NotImplementedError

    def compressed_len(self, page: bytes | np.ndarray) -> int:
        return len(self.compress(page))

    def compress_lengths(self, pages: object) -> np.ndarray:
        """Compressed length of every page (int32[n]), on every core."""
        arr = as_pages(pages, "pages")
        lengths = np.empty(arr.shape[0], dtype=np.int32)
        with ThreadPoolExecutor() as pool:  # the libraries release the GIL
            for i, n in enumerate(pool.map(self.compressed_len, arr, chunksize=64)):
                lengths[i] = n
        return lengths

    def compress_pages(self, pages: object) -> list[bytes]:
        """The compressed bytes of every page."""
        arr = as_pages(pages, "pages")
        with ThreadPoolExecutor() as pool:
            return list(pool.map(self.compress, arr, chunksize=64))

    def stored_sizes(self, pages: object, huge_class_size: int | None = None) -> np.ndarray:
        """zram's stored bytes per page: 0 same-filled, PAGE_SIZE huge, else the length."""
        arr = as_pages(pages, "pages")
        huge_class_size = _check_huge_class_size(huge_class_size)
        same, _ = is_same_filled(arr)
        sizes = np.zeros(arr.shape[0], dtype=np.int32)
        todo = ~same
        if todo.any():
            lengths = self.compress_lengths(arr[todo])
            sizes[todo] = zram_stored_lens(lengths, huge_class_size, PAGE_SIZE)
        return sizes

    def _check_out_len(self, out_len: int) -> int:
        if isinstance(out_len, bool) or not isinstance(out_len, (int, np.integer)):
            raise InputError(f"{self.name}: out_len must be an integer, found {out_len!r}")
        if not 0 < out_len <= 1 << 20:
            raise InputError(f"{self.name}: out_len must be 1 .. 1 MiB, found {out_len}")
        return int(out_len)

    def _corrupt(self, data: bytes, why: str) -> CompressionError:
        return CompressionError(
            f"{self.name}: corrupt compressed stream ({len(data)} bytes): {why}"
        )

    def __repr__(self) -> str:
        return f"zsmalloc.compress.get({self.name!r}, level={self.level!r})"


_LZO_ERRORS = {
    -1: "bad instruction or end marker",
    -4: "input overrun (truncated stream)",
    -5: "output overrun (decodes to more than out_len bytes)",
    -6: "back-reference before the start of the output",
    -8: "bytes left after the end marker",
}
_LZ4_ERRORS = {
    -1: "input overrun (truncated stream)",
    -2: "output overrun (decodes to more than out_len bytes)",
    -3: "offset 0 or before the start of the output",
}


class KernelBackend(Backend):
    """``lzo``, ``lzo-rle`` or ``lz4`` exactly as the 6.18 kernel compresses a page."""

    kernel_exact: ClassVar[bool] = True
    _local = threading.local()

    def __init__(self, name: str, level: int | None = None) -> None:
        self.name = name
        self.algo = ALGO_CODES[name]
        self.level = level
        # lz4_setup_params(): no level -> LZ4_ACCELERATION_DEFAULT; lzo ignores it.
        self._accel = LZ4_ACCELERATION_DEFAULT if level is None else level

    @classmethod
    def _scratch(cls) -> tuple[np.ndarray, np.ndarray]:
        s = getattr(cls._local, "scratch", None)
        if s is None:
            s = (np.empty(SCRATCH_ENTRIES, np.uint16), np.empty(COMPRESS_BOUND, np.uint8))
            cls._local.scratch = s
        return s

    def compress(self, page: bytes | np.ndarray) -> bytes:
        src = _page_array(page)
        scratch, dst = self._scratch()
        n = compress_one(src, dst, True, self.algo, self._accel, scratch)
        return dst[:n].tobytes()

    def compressed_len(self, page: bytes | np.ndarray) -> int:
        src = _page_array(page)
        scratch, dst = self._scratch()
        return int(compress_one(src, dst, False, self.algo, self._accel, scratch))

    def decompress(self, data: bytes, out_len: int = PAGE_SIZE) -> bytes:
        out_len = self._check_out_len(out_len)
        try:
            src = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8).view()
            src.flags.writeable = False  # one numba signature, whatever the caller passed
        except TypeError:
            raise InputError(
                f"{self.name}: expected bytes to decompress, found {type(data).__name__}"
            ) from None
        dst = np.empty(out_len, dtype=np.uint8)
        if self.algo == ALGO_CODES["lz4"]:
            n, errors = lz4_decompress_page(src, dst), _LZ4_ERRORS
        else:
            n, errors = lzo_decompress_page(src, dst), _LZO_ERRORS
        if n < 0:
            raise self._corrupt(data, errors.get(int(n), f"error {n}"))
        if n != out_len:
            raise self._corrupt(data, f"decodes to {n} bytes, expected {out_len}")
        return dst.tobytes()

    def compress_lengths(self, pages: object) -> np.ndarray:
        arr = as_pages(pages, "pages")
        return _batch_lengths(arr, self.algo, self._accel, -1, _nchunks(arr.shape[0]))

    def stored_sizes(self, pages: object, huge_class_size: int | None = None) -> np.ndarray:
        arr = as_pages(pages, "pages")
        huge_class_size = _check_huge_class_size(huge_class_size)
        return _batch_lengths(arr, self.algo, self._accel, huge_class_size, _nchunks(arr.shape[0]))

    def compress_pages(self, pages: object) -> list[bytes]:
        arr = as_pages(pages, "pages")
        block = min(BATCH_BLOCK, arr.shape[0])  # one buffer, reused (no fresh page faults)
        out = np.empty((block, BATCH_BOUND), dtype=np.uint8)
        lengths = np.empty(block, dtype=np.int32)
        result: list[bytes] = []
        for lo in range(0, arr.shape[0], block):
            chunk = arr[lo : lo + block]
            k = chunk.shape[0]
            _batch_compress(chunk, out[:k], lengths[:k], self.algo, self._accel, _nchunks(k))
            result += [out[i, : lengths[i]].tobytes() for i in range(k)]
        return result


class LibraryBackend(Backend):
    """A format-compatible backend through a well-kept library (lengths not kernel-exact)."""

    def __init__(
        self,
        name: str,
        level: int | None,
        compress: Callable[[bytes], bytes],
        decompress: Callable[[bytes, int], bytes],
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self.name = name
        self.level = level
        self._compress = compress
        self._decompress = decompress
        self._errors = errors

    def compress(self, page: bytes | np.ndarray) -> bytes:
        return self._compress(_page_array(page).tobytes())

    def decompress(self, data: bytes, out_len: int = PAGE_SIZE) -> bytes:
        out_len = self._check_out_len(out_len)
        try:
            out = self._decompress(bytes(data), out_len)
        except self._errors as exc:
            raise self._corrupt(data, str(exc) or type(exc).__name__) from None
        if len(out) != out_len:
            raise self._corrupt(data, f"decodes to {len(out)} bytes, expected {out_len}")
        return out


def _lz4hc(level: int | None) -> LibraryBackend:
    import lz4.block

    # lz4hc_setup_params(): no level -> LZ4HC_DEFAULT_CLEVEL.
    clevel = LZ4HC_DEFAULT_CLEVEL if level is None else level
    return LibraryBackend(
        "lz4hc",
        level,
        lambda b: lz4.block.compress(
            b, mode="high_compression", compression=clevel, store_size=False
        ),
        lambda b, n: lz4.block.decompress(b, uncompressed_size=n),
        (lz4.block.LZ4BlockError, ValueError),
    )


def _zstd(level: int | None) -> LibraryBackend:
    import zstandard

    # zstd_setup_params(): no level -> zstd_default_clevel(); a frame with the
    # content size and no checksum, as zstd_get_params() makes it.  ZSTD_getCParams()
    # clamps the level to ZSTD_minCLevel()..ZSTD_maxCLevel(), so any s32 level works
    # in the kernel (99 compresses as 22); the library refuses what it would clamp.
    zlevel = ZSTD_DEFAULT_CLEVEL if level is None else level
    zlevel = max(ZSTD_MIN_CLEVEL, min(zstandard.MAX_COMPRESSION_LEVEL, zlevel))
    cctx = zstandard.ZstdCompressor(
        level=zlevel,
        write_content_size=True,
        write_checksum=False,
    )
    dctx = zstandard.ZstdDecompressor()
    lock = threading.Lock()  # a ZstdCompressor is not safe to share between threads

    def compress(b: bytes) -> bytes:
        with lock:
            return cctx.compress(b)

    def decompress(b: bytes, n: int) -> bytes:
        # One frame, nothing after it (zstd_decompress_dctx() takes the whole buffer).
        out = dctx.decompress(b, max_output_size=n)
        d = dctx.decompressobj()
        d.decompress(b)
        if not d.eof or d.unused_data:
            raise zstandard.ZstdError("truncated frame, or bytes after the frame")
        return out

    return LibraryBackend("zstd", level, compress, decompress, (zstandard.ZstdError,))


def _deflate(level: int | None, winbits: int | None = None) -> LibraryBackend:
    # deflate_setup_params(): no level -> Z_DEFAULT_COMPRESSION; raw deflate,
    # window 2^11, memLevel 8, one Z_FINISH call.  algorithm_params deflate.winbits
    # replaces the window bits (negative: raw deflate; positive: a zlib stream).
    zlevel = Z_DEFAULT_COMPRESSION if level is None else level
    if not -1 <= zlevel <= 9:
        raise InputError(f"deflate: level must be -1 .. 9, found {zlevel}")
    wbits = -DEFLATE_DEF_WINBITS if winbits is None else winbits
    if not (-15 <= wbits <= -9 or 9 <= wbits <= 15):
        raise InputError(f"deflate: winbits must be -15 .. -9 or 9 .. 15, found {wbits}")

    def compress(b: bytes) -> bytes:
        c = zlib.compressobj(
            zlevel, zlib.DEFLATED, wbits, DEFLATE_DEF_MEMLEVEL, zlib.Z_DEFAULT_STRATEGY,
        )
        return c.compress(b) + c.flush(zlib.Z_FINISH)

    def decompress(b: bytes, n: int) -> bytes:
        d = zlib.decompressobj(wbits)
        out = d.decompress(b, n)
        if not d.eof:
            raise zlib.error("stream ends before the final block")
        if d.unconsumed_tail or d.unused_data:
            raise zlib.error("decodes to more than out_len bytes, or bytes after the end")
        return out

    return LibraryBackend("deflate", level, compress, decompress, (zlib.error,))


_LIBRARY_FACTORIES: dict[str, Callable[[int | None], LibraryBackend]] = {
    "lz4hc": _lz4hc,
    "zstd": _zstd,
    "deflate": _deflate,
}


def get(name: str, level: int | None = None, *, winbits: int | None = None) -> Backend:
    """The backend zram calls ``name``, configured with ``algorithm_params level``.

    ``winbits`` is ``deflate.winbits``, read by deflate only (InputError for another
    backend: the model does not take a parameter it would ignore).  Raises
    UnknownAlgorithmError naming ``name`` and listing the known ones.
    """
    if not isinstance(name, str):
        raise UnknownAlgorithmError(f"expected an algorithm name, found {name!r}")
    level = _check_level(name, level)
    if winbits is not None:
        winbits = _check_level(f"{name} winbits", winbits)
        if name != "deflate":
            raise InputError(f"{name}: winbits is a deflate parameter")
        return _deflate(level, winbits)
    if name in KERNEL_EXACT:
        return KernelBackend(name, level)
    if name in _LIBRARY_FACTORIES:
        return _LIBRARY_FACTORIES[name](level)
    known = ", ".join(ALGORITHMS)
    if name in UNSUPPORTED:
        raise UnknownAlgorithmError(f"{name}: not supported ({UNSUPPORTED[name]}); known: {known}")
    raise UnknownAlgorithmError(f"unknown compression algorithm {name!r}; known: {known}")
