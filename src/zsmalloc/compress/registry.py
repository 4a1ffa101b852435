"""The compressor registry: zram's backend names -> backend objects, per kernel.

Mirrors ``backends[]`` in drivers/block/zram/zcomp.c (6.18), which names the
algorithms ``lzo-rle``, ``lzo``, ``lz4``, ``lz4hc``, ``842``, ``deflate`` and
``zstd``, and the per-backend ``setup_params()`` that turns zram's
``algorithm_params level=N`` (and ``deflate.winbits=W``) into the library's parameters;
before 6.12 zram went through the crypto API, whose compressors take no parameters.

Two kinds of backend, both giving the kernel's bytes and lengths:

* :class:`KernelBackend` (``lzo``, ``lzo-rle``, ``lz4``, ``lz4hc``, ``deflate``): the
  kernel's own compressors re-implemented here (numba, the same code running as plain
  Python without it), on pages of 4, 16 or 64 KiB; every kernel from 6.1 to 7.3 runs
  the same code (:attr:`zsmalloc.profile.KernelProfile.zstd_version` says why zstd is
  the exception).
* :class:`ZstdBackend` (``zstd``): the zstandard library of the kernel's zstd version
  (:mod:`zsmalloc.compress.zstd`).  Where that version is not installed the nearest one
  is used and the backend says so: ``kernel_exact`` False, ``approximate`` the reason,
  ``exact_command`` the command that installs the right one.

``842`` is not supported (no Debian kernel enables it).
"""

from __future__ import annotations

import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from zsmalloc._jit import thread_count
from zsmalloc.compress._bytes import PAGE_SIZE
from zsmalloc.compress.batch import (
    ALGO_CODES,
    ALGO_DEFLATE,
    ALGO_LZ4,
    ALGO_LZ4HC,
    PAGE_SIZES,
    _batch_compress,
    _batch_lengths,
    _nchunks,
    as_pages,
    batch_bound,
    compress_bound,
    compress_one,
    huge_class_size_of,
    is_same_filled,
    new_scratch,
    zram_stored_lens,
)
from zsmalloc.compress.lz4 import LZ4_ACCELERATION_DEFAULT, lz4_decompress_page
from zsmalloc.compress.lz4hc import LZ4HC_DEFAULT_CLEVEL, LZ4HC_MAX_CLEVEL
from zsmalloc.compress.lzo import lzo_decompress_page
from zsmalloc.compress.native import NATIVE_ALGOS, native_lengths
from zsmalloc.compress.zstd import (
    ZSTD_MAX_CLEVEL,
    ZSTD_MIN_CLEVEL,
    approximate_reason,
    library_for,
    make_compressor,
    version_str,
)
from zsmalloc.errors import (
    CompressionError,
    InputError,
    InvalidSizeError,
    UnknownAlgorithmError,
    UnknownKernelError,
)
from zsmalloc.profile import DEFAULT_VERSION, KernelProfile, kernel_version

KERNEL_EXACT = ("lzo", "lzo-rle", "lz4", "lz4hc", "deflate")
"""Re-implemented here: the kernel's output on every kernel and page size."""
LIBRARY = ("zstd",)
"""Through a library: the kernel's output when the kernel's version is installed."""
ALGORITHMS = ("lzo", "lzo-rle", "lz4", "lz4hc", "zstd", "deflate")
UNSUPPORTED = {"842": "the 842 compressor (lib/842) has no implementation here"}

BATCH_BLOCK = 1024
"""Pages per batch compress call: one output buffer, reused block after block."""

Z_DEFAULT_COMPRESSION = -1
DEFLATE_DEF_WINBITS = -11  # backend_deflate.c: raw deflate, "the same value as crypto API"


def _page_array(page: object, page_size: int) -> np.ndarray:
    """One page as a read-only uint8 array of page_size bytes (InvalidSizeError otherwise)."""
    # Fast paths for the common one-page calls (zswap stores, zram writes).
    if type(page) is bytes and len(page) == page_size:
        return np.frombuffer(page, dtype=np.uint8)  # read-only already
    if (
        type(page) is np.ndarray
        and page.dtype == np.uint8
        and page.shape == (page_size,)
        and page.flags.c_contiguous
        and not page.flags.writeable
    ):
        return page
    arr = as_pages(page, "page", page_size)
    if arr.shape[0] != 1:
        raise InvalidSizeError(
            f"page: expected exactly {page_size} bytes, found {arr.size} bytes"
        )
    return arr[0]


def _check_int(name: str, what: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: {what} must be an integer, found {value!r}")
    value = int(value)
    if not -(2**31) <= value < 2**31:
        raise InputError(f"{name}: {what} must fit zram's s32, found {value}")
    return value


def _check_page_size(page_size: object) -> int:
    if isinstance(page_size, bool) or page_size not in PAGE_SIZES:
        raise InvalidSizeError(
            f"page size must be one of {', '.join(map(str, PAGE_SIZES))}, found {page_size!r}"
        )
    return int(page_size)


class Backend:
    """A zram compression backend: one page in, its compressed bytes out.

    ``compress_lengths`` / ``stored_sizes`` take many pages at once.  ``profile`` is the
    kernel (and PAGE_SIZE) whose zram this models; ``kernel`` its profile row.
    """

    name: str
    level: int | None
    profile: KernelProfile
    page_size: int
    kernel_exact: bool = True
    approximate: str | None = None  # why the lengths are not the kernel's, if they are not
    exact_command: str | None = None  # what makes them the kernel's, where something does

    @property
    def kernel(self) -> str:
        return self.profile.version

    def compress(self, page: bytes | np.ndarray) -> bytes:
        raise NotImplementedError

    def decompress(self, data: bytes, out_len: int | None = None) -> bytes:
        raise NotImplementedError

    def compressed_len(self, page: bytes | np.ndarray) -> int:
        return len(self.compress(page))

    def compress_lengths(self, pages: object) -> np.ndarray:
        """Compressed length of every page (int32[n]), on every core."""
        arr = as_pages(pages, "pages", self.page_size)
        lengths = np.empty(arr.shape[0], dtype=np.int32)
        with ThreadPoolExecutor() as pool:  # the libraries release the GIL
            for i, n in enumerate(pool.map(self.compressed_len, arr, chunksize=64)):
                lengths[i] = n
        return lengths

    def compress_pages(self, pages: object) -> list[bytes]:
        """The compressed bytes of every page."""
        arr = as_pages(pages, "pages", self.page_size)
        with ThreadPoolExecutor() as pool:
            return list(pool.map(self.compress, arr, chunksize=64))

    def huge_class_size(self) -> int:
        """zram's huge threshold on this kernel and page size (chain size 8)."""
        return huge_class_size_of(self.profile)

    def _check_huge_class_size(self, huge_class_size: int | None) -> int:
        if huge_class_size is None:
            return self.huge_class_size()
        if isinstance(huge_class_size, bool) or not isinstance(
            huge_class_size, (int, np.integer)
        ):
            raise InputError(f"huge_class_size must be an integer, found {huge_class_size!r}")
        if not 0 <= huge_class_size <= self.page_size:
            raise InputError(
                f"huge_class_size must be 0 .. {self.page_size}, found {huge_class_size}"
            )
        return int(huge_class_size)

    def stored_sizes(self, pages: object, huge_class_size: int | None = None) -> np.ndarray:
        """zram's stored bytes per page: 0 same-filled, PAGE_SIZE huge, else the length."""
        arr = as_pages(pages, "pages", self.page_size)
        huge_class_size = self._check_huge_class_size(huge_class_size)
        same, _ = is_same_filled(arr, self.page_size)
        sizes = np.zeros(arr.shape[0], dtype=np.int32)
        todo = ~same
        if todo.any():
            lengths = self.compress_lengths(arr[todo])
            sizes[todo] = zram_stored_lens(lengths, huge_class_size, self.page_size)
        return sizes

    def _check_out_len(self, out_len: int | None) -> int:
        if out_len is None:
            return self.page_size
        if isinstance(out_len, bool) or not isinstance(out_len, (int, np.integer)):
            raise InputError(f"{self.name}: out_len must be an integer, found {out_len!r}")
        if not 0 < out_len <= 1 << 20:
            raise InputError(f"{self.name}: out_len must be 1 .. 1 MiB, found {out_len}")
        return int(out_len)

    def _corrupt(self, data: bytes, why: str) -> CompressionError:
        return CompressionError(
            f"{self.name}: corrupt compressed stream ({len(data)} bytes): {why}"
        )

    def describe(self) -> dict[str, Any]:
        """What this backend is, for reports: name, level, kernel, exactness and why."""
        return {
            "algorithm": self.name,
            "level": self.level,
            "kernel": self.kernel,
            "page_size": self.page_size,
            "kernel_exact": self.kernel_exact,
            "approximate": self.approximate,
            "exact_command": self.exact_command,
        }

    def __repr__(self) -> str:
        return (
            f"zsmalloc.compress.get({self.name!r}, level={self.level!r}, "
            f"kernel={self.kernel!r}, page_size={self.page_size})"
        )


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


def _input_bytes(name: str, data: object) -> np.ndarray:
    try:
        src = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8).view()  # type: ignore[arg-type]
    except TypeError:
        raise InputError(
            f"{name}: expected bytes to decompress, found {type(data).__name__}"
        ) from None
    src.flags.writeable = False  # one numba signature, whatever the caller passed
    return src


class KernelBackend(Backend):
    """``lzo``, ``lzo-rle``, ``lz4``, ``lz4hc`` or ``deflate`` exactly as the kernel runs it.

    ``level`` is the backend's setup_params() input (None: not set); ``winbits``
    deflate's window bits (None: -11).  Both are checked as the kernel checks them.
    """

    _local = threading.local()

    def __init__(
        self,
        name: str,
        level: int | None,
        profile: KernelProfile,
        winbits: int | None = None,
    ) -> None:
        self.name = name
        self.algo = ALGO_CODES[name]
        self.level = level
        self.profile = profile
        self.page_size = profile.page_size
        self.winbits = winbits
        self._level, self._param = self._setup_params(level, winbits)

    def _setup_params(self, level: int | None, winbits: int | None) -> tuple[int, int]:
        """Mirrors each backend's setup_params() (and zlib_deflateInit2()'s checks)."""
        name, prof = self.name, self.profile
        if winbits is not None and name != "deflate":
            raise InputError(f"{name}: deflate.winbits is a deflate parameter")
        if self.algo == ALGO_LZ4:
            # lz4_setup_params(): no level -> LZ4_ACCELERATION_DEFAULT; < 1 means 1.
            return (LZ4_ACCELERATION_DEFAULT if level is None else level), 0
        if self.algo == ALGO_LZ4HC:
            if level is None:
                return LZ4HC_DEFAULT_CLEVEL, 0
            if prof.zram_checks_levels and not 1 <= level <= LZ4HC_MAX_CLEVEL:
                raise InputError(
                    f"lz4hc: Linux {prof.version} refuses level {level} (1 .. {LZ4HC_MAX_CLEVEL})"
                )
            return level, 0  # LZ4HC_compress_generic(): > 16 is 16, < 1 is 9
        if self.algo == ALGO_DEFLATE:
            zlevel = Z_DEFAULT_COMPRESSION if level is None else level
            if not -1 <= zlevel <= 9:
                raise InputError(f"deflate: level must be -1 .. 9, found {zlevel}")
            if winbits is None:
                winbits = DEFLATE_DEF_WINBITS
            elif not prof.zram_deflate_winbits:
                raise InputError(
                    f"deflate: Linux {prof.version} has no algorithm_params deflate.winbits"
                )
            elif not (-15 <= winbits <= -9 or 9 <= winbits <= 15):
                raise InputError(
                    f"deflate: winbits must be -15 .. -9 (raw) or 9 .. 15 (zlib), "
                    f"found {winbits}"
                )
            return zlevel, winbits
        return 0, 0  # lzo and lzo-rle have no parameters

    @classmethod
    def _scratch(cls, page_size: int) -> tuple[np.ndarray, ...]:
        s = getattr(cls._local, "scratch", None)
        if s is None:
            s = new_scratch()
            cls._local.scratch = s
        dst = getattr(cls._local, "dst", None)
        if dst is None or dst.shape[0] < compress_bound(page_size):
            dst = np.empty(compress_bound(page_size), np.uint8)
            cls._local.dst = dst
        return (*s, dst)

    def compress(self, page: bytes | np.ndarray) -> bytes:
        src = _page_array(page, self.page_size)
        s8, s16, s32, dst = self._scratch(self.page_size)
        n = compress_one(src, dst, True, self.algo, self._level, self._param, s8, s16, s32)
        return dst[:n].tobytes()

    def compressed_len(self, page: bytes | np.ndarray) -> int:
        src = _page_array(page, self.page_size)
        s8, s16, s32, dst = self._scratch(self.page_size)
        return int(
            compress_one(src, dst, False, self.algo, self._level, self._param, s8, s16, s32)
        )

    def decompress(self, data: bytes, out_len: int | None = None) -> bytes:
        out_len = self._check_out_len(out_len)
        if self.algo == ALGO_DEFLATE:
            return self._inflate(data, out_len)
        src = _input_bytes(self.name, data)
        dst = np.empty(out_len, dtype=np.uint8)
        if self.algo in (ALGO_LZ4, ALGO_LZ4HC):
            n, errors = lz4_decompress_page(src, dst), _LZ4_ERRORS
        else:
            n, errors = lzo_decompress_page(src, dst), _LZO_ERRORS
        if n < 0:
            raise self._corrupt(data, errors.get(int(n), f"error {n}"))
        if n != out_len:
            raise self._corrupt(data, f"decodes to {n} bytes, expected {out_len}")
        return dst.tobytes()

    def _inflate(self, data: bytes, out_len: int) -> bytes:
        """zlib_inflate() of one page (any inflater decodes the kernel's stream)."""
        raw = _input_bytes(self.name, data).tobytes()
        try:
            d = zlib.decompressobj(self._param)
            out = d.decompress(raw, out_len)
            if not d.eof:
                raise zlib.error("stream ends before the final block")
            if d.unconsumed_tail or d.unused_data:
                raise zlib.error("decodes to more than out_len bytes, or bytes after the end")
        except zlib.error as exc:
            raise self._corrupt(data, str(exc)) from None
        if len(out) != out_len:
            raise self._corrupt(data, f"decodes to {len(out)} bytes, expected {out_len}")
        return out

    def compress_lengths(self, pages: object) -> np.ndarray:
        arr = as_pages(pages, "pages", self.page_size)
        return self._lengths(arr, -1)

    def stored_sizes(self, pages: object, huge_class_size: int | None = None) -> np.ndarray:
        arr = as_pages(pages, "pages", self.page_size)
        huge_class_size = self._check_huge_class_size(huge_class_size)
        return self._lengths(arr, huge_class_size)

    def _lengths(self, arr: np.ndarray, huge_class_size: int) -> np.ndarray:
        """Every page's length: the native loop where it runs this algorithm, else numba's."""
        if self.name in NATIVE_ALGOS:
            native = native_lengths()
            if native is not None:
                return native.lengths(arr, self.name, self._level, huge_class_size)
        return _batch_lengths(
            arr, self.algo, self._level, self._param, huge_class_size, _nchunks(arr.shape[0])
        )

    def compress_pages(self, pages: object) -> list[bytes]:
        arr = as_pages(pages, "pages", self.page_size)
        block = min(BATCH_BLOCK, arr.shape[0])  # one buffer, reused (no fresh page faults)
        out = np.empty((block, batch_bound(self.page_size)), dtype=np.uint8)
        lengths = np.empty(block, dtype=np.int32)
        result: list[bytes] = []
        for lo in range(0, arr.shape[0], block):
            chunk = arr[lo : lo + block]
            k = chunk.shape[0]
            _batch_compress(
                chunk, out[:k], lengths[:k], self.algo, self._level, self._param, _nchunks(k)
            )
            result += [out[i, : lengths[i]].tobytes() for i in range(k)]
        return result


class ZstdBackend(Backend):
    """``zstd`` through the zstandard library of the kernel's zstd version, if installed."""

    def __init__(self, level: int | None, profile: KernelProfile) -> None:
        self.name = "zstd"
        self.level = level
        self.profile = profile
        self.page_size = profile.page_size
        if level is not None and profile.zram_checks_levels and not (
            ZSTD_MIN_CLEVEL <= level <= ZSTD_MAX_CLEVEL
        ):
            raise InputError(
                f"zstd: Linux {profile.version} refuses level {level} "
                f"({ZSTD_MIN_CLEVEL} .. {ZSTD_MAX_CLEVEL})"
            )
        self._lib, self.kernel_exact = library_for(profile)
        self.library_version = tuple(self._lib.ZSTD_VERSION)
        if not self.kernel_exact:
            self.approximate, self.exact_command = approximate_reason(profile)
        self._local = threading.local()
        self._multi: Any = None
        self._multi_lock = threading.Lock()

    def _cctx(self) -> Any:
        c = getattr(self._local, "cctx", None)  # a ZstdCompressor is not thread-safe
        if c is None:
            c = make_compressor(self._lib, self.profile, self.level)
            self._local.cctx = c
        return c

    def compress(self, page: bytes | np.ndarray) -> bytes:
        return bytes(self._cctx().compress(_page_array(page, self.page_size).tobytes()))

    def _compress_many(self, pages: object) -> Any:
        """zstandard's multi_compress_to_buffer(): every page, in C, on as many threads
        as numba would use (the same frames as one compress() each); None where the
        build lacks it."""
        arr = as_pages(pages, "pages", self.page_size)
        n = arr.shape[0]
        if n == 0:
            return None
        lib = self._lib
        if not hasattr(lib, "BufferWithSegments"):
            return None
        segments = np.empty((n, 2), dtype=np.uint64)
        segments[:, 0] = np.arange(n, dtype=np.uint64) * self.page_size
        segments[:, 1] = self.page_size
        data = lib.BufferWithSegments(arr, segments.tobytes())
        with self._multi_lock:  # one call at a time per compressor object
            if self._multi is None:
                self._multi = make_compressor(lib, self.profile, self.level)
            return self._multi.multi_compress_to_buffer(data, threads=thread_count())

    def compress_lengths(self, pages: object) -> np.ndarray:
        out = self._compress_many(pages)
        if out is None:
            return super().compress_lengths(pages)
        return np.array([len(out[i]) for i in range(len(out))], dtype=np.int32)

    def compress_pages(self, pages: object) -> list[bytes]:
        out = self._compress_many(pages)
        if out is None:
            return super().compress_pages(pages)
        return [out[i].tobytes() for i in range(len(out))]

    def decompress(self, data: bytes, out_len: int | None = None) -> bytes:
        out_len = self._check_out_len(out_len)
        raw = _input_bytes(self.name, data).tobytes()
        lib = self._lib
        try:
            # One frame, nothing after it (zstd_decompress_dctx() takes the whole buffer).
            d = lib.ZstdDecompressor().decompressobj()
            out = d.decompress(raw)
            if not d.eof or d.unused_data:
                raise lib.ZstdError("truncated frame, or bytes after the frame")
        except lib.ZstdError as exc:
            raise self._corrupt(data, str(exc) or type(exc).__name__) from None
        if len(out) != out_len:
            raise self._corrupt(data, f"decodes to {len(out)} bytes, expected {out_len}")
        return bytes(out)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["zstd_version"] = version_str(self.profile.zstd_version)
        out["zstd_library"] = version_str(self.library_version)
        return out


def get(
    name: str,
    level: int | None = None,
    *,
    kernel: str | None = None,
    page_size: int = PAGE_SIZE,
    winbits: int | None = None,
) -> Backend:
    """The backend zram calls ``name`` on ``kernel`` (a version such as "6.12" or a release;
    default: the reference kernel) with PAGE_SIZE ``page_size``, configured with
    ``algorithm_params level=`` (and ``deflate.winbits=``).

    Raises UnknownAlgorithmError naming ``name`` and listing the known ones, InputError
    for a parameter the kernel would refuse (a level on a kernel without
    algorithm_params, a level out of range where the kernel checks it).
    """
    if not isinstance(name, str):
        raise UnknownAlgorithmError(f"expected an algorithm name, found {name!r}")
    known = ", ".join(ALGORITHMS)
    if name in UNSUPPORTED:
        raise UnknownAlgorithmError(f"{name}: not supported ({UNSUPPORTED[name]}); known: {known}")
    if name not in ALGORITHMS:
        raise UnknownAlgorithmError(f"unknown compression algorithm {name!r}; known: {known}")
    level = _check_int(name, "level", level)
    winbits = _check_int(name, "deflate.winbits", winbits)
    page_size = _check_page_size(page_size)
    if kernel is None:
        kernel = DEFAULT_VERSION
    elif not isinstance(kernel, str):
        raise UnknownKernelError(f"expected a kernel version string, found {kernel!r}")
    profile = KernelProfile(kernel_version(kernel), page_size)
    if profile.zram_compressors == "crypto" and (level is not None or winbits is not None):
        raise InputError(
            f"{name}: Linux {profile.version} zram has no algorithm_params (its compressors "
            "run with fixed parameters through the crypto API); drop the level"
        )
    if name == "zstd":
        return ZstdBackend(level, profile)
    return KernelBackend(name, level, profile, winbits)
