"""The lengths loop as machine code that runs without numba: estimate's fast start.

``zsmalloc estimate`` spends its time in one loop: the exact compressed length of
every page (:func:`~zsmalloc.compress.batch._batch_lengths`).  Under numba that loop
costs about half a second before the first page, importing numba and preparing its
typing tables, even when the machine code comes from numba's cache; that is longer than
compressing a gigabyte on two cores takes.  So the loop is also kept as a native
object file:

* **build** (numba loaded, once per source digest and CPU): the same compressors
  (:func:`lzo_compress_page`, :func:`lz4_compress_page`, the same
  :func:`page_same_filled` and :func:`zram_stored_len`) compiled by numba as one C
  callable (``@cfunc``), whose object code numba already produces for its own cache
  (the JIT's code model, this CPU's features) is written next to numba's cache, in
  :data:`zsmalloc._jit.CACHE_DIR`, named after the CPU and llvmlite;
* **load** (no numba): llvmlite's MCJIT links that object into this process and the
  loop is called through ctypes, which releases the GIL, so one thread per CPU each
  take blocks of pages from a shared counter (a block at a time, as
  :func:`~zsmalloc._jit.dynamic_prange` does for numba).

The code is the numba code, not a second implementation: the same source digest
names both caches, and tests compare the two on the recorded pages.  The object's
undefined symbols are checked when it is built: the C API and libc, plus numba's
helpers that only code raising an exception calls (the compressors index within
bounds and allocate nothing, so never); those are pointed at ``abort`` unless this
process already has them (numba loaded), and an object that needs anything else
(an allocation in the loop) is refused, leaving the numba path.

lz4hc and deflate allocate and stay on numba; so do lengths under NUMBA_DISABLE_JIT.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from zsmalloc import _jit

NATIVE_ALGOS = {"lzo": 0, "lzo-rle": 1, "lz4": 2}
"""Algorithms the native loop runs (its own codes, not batch.ALGO_*)."""

BLOCK_PAGES = 256
"""Pages a thread takes at a time: about a millisecond of work, so the threads end
together even when one loses its core, for a Python-level step per block."""

_SYMBOL_PREFIXES = ("Py", "_Py", "mem")  # the C API and libc: resolved in this process
_ABORT_OK = {  # numba's helpers, reached only when compiled code raises (see module doc)
    "numba_gil_ensure",
    "numba_gil_release",
    "numba_do_raise",
    "numba_unpickle",
    "numba_runtime_build_excinfo_struct",
    "numba_fatal_error",
    "NRT_Free",
    "NRT_MemInfo_call_dtor",
    "NRT_decref",
    "NRT_incref",
}

_FN = ctypes.CFUNCTYPE(
    None,
    ctypes.c_void_p,  # pages (n rows of page_size bytes, C-contiguous)
    ctypes.c_int64,  # n
    ctypes.c_int64,  # page_size
    ctypes.c_void_p,  # out: int32[n]
    ctypes.c_int64,  # algo (NATIVE_ALGOS)
    ctypes.c_int64,  # level (lz4's acceleration)
    ctypes.c_int64,  # huge_class_size, or -1 for bare compressed lengths
    ctypes.c_void_p,  # scratch: uint16[scratch16]
)


class NativeUnavailable(Exception):
    """No native loop here (not built, built elsewhere, or refused): use numba."""


def _tag() -> str:
    """What the object code depends on besides the source: CPU, its features, llvmlite."""
    import llvmlite
    import llvmlite.binding as ll

    key = f"{ll.get_host_cpu_name()}\0{ll.get_host_cpu_features().flatten()}\0"
    key += f"{llvmlite.__version__}\0{ll.get_default_triple()}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _paths() -> tuple[str, str]:
    if _jit.CACHE_DIR is None:
        raise NativeUnavailable("numba's cache directory is not writable")
    base = os.path.join(_jit.CACHE_DIR, f"native-lengths-{_tag()}")
    return base + ".o", base + ".json"


def build() -> None:
    """Compile the loop with numba and write its object code (numba gets loaded)."""
    numba = _jit.load_numba()
    from numba import carray, cfunc, types

    from zsmalloc.compress.batch import SCRATCH16, page_same_filled, zram_stored_len
    from zsmalloc.compress.lz4 import LZ4_HASH_ENTRIES, lz4_compress_page
    from zsmalloc.compress.lzo import D_SIZE, lzo_compress_page

    u8p, u16p, i32p = (types.CPointer(t) for t in (types.uint8, types.uint16, types.int32))
    i64 = types.int64
    sig = types.void(u8p, i64, i64, i32p, i64, i64, i64, u16p)

    def page_lengths(pages_p, n, page_size, out_p, algo, level, huge, s16_p):  # type: ignore[no-untyped-def]
        pages = carray(pages_p, (n, page_size))
        out = carray(out_p, (n,))
        s16 = carray(s16_p, (SCRATCH16,))
        dst = carray(pages_p, (1,))  # never written: lengths only
        for i in range(n):
            page = pages[i]
            if huge >= 0 and page_same_filled(page):
                out[i] = 0
                continue
            if algo == 2:
                length = lz4_compress_page(page, dst, False, level, s16[:LZ4_HASH_ENTRIES])
            else:
                length = lzo_compress_page(page, dst, False, algo == 1, s16[:D_SIZE])
            if huge >= 0:
                length = zram_stored_len(length, huge, page_size)
            out[i] = length

    compiled: Any = cfunc(sig, nopython=True)(page_lengths)  # type: ignore[call-arg]
    _, kind, (obj, _bitcode) = compiled._library.serialize_using_object_code()
    assert kind == "object"
    undefined = _object_undefined(obj)
    bad = [s for s in undefined if not s.startswith(_SYMBOL_PREFIXES) and s not in _ABORT_OK]
    if bad:
        raise NativeUnavailable(f"the compiled loop needs {', '.join(bad)}")
    obj_path, meta_path = _paths()
    meta = {
        "sha256": hashlib.sha256(obj).hexdigest(),
        "symbol": compiled.native_name,
        "scratch16": int(SCRATCH16),
        "undefined": undefined,
        "numba": numba.__version__,
    }
    for path, data in ((obj_path, obj), (meta_path, json.dumps(meta).encode())):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # readers see the whole file or none


def _object_undefined(obj: bytes) -> list[str]:
    """Names of an ELF64 little-endian object's undefined symbols (``nm -u``)."""
    import struct

    if obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        raise NativeUnavailable("the compiled loop is not an ELF64 little-endian object")
    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + k * shentsize) for k in range(shnum)]
    names = set()
    for _name, sh_type, _f, _a, offset, size, link, _i, _al, entsize in sections:
        if sh_type != 2:  # SHT_SYMTAB
            continue
        strtab = sections[link]
        str_off = strtab[4]
        for pos in range(offset + entsize, offset + size, entsize):  # entry 0 is null
            st_name, _info, _other, st_shndx = struct.unpack_from("<IBBH", obj, pos)
            if st_shndx == 0 and st_name:  # SHN_UNDEF
                end = obj.index(b"\0", str_off + st_name)
                names.add(obj[str_off + st_name : end].decode())
    return sorted(names)


class NativeLengths:
    """The loaded loop, and the threads that run it."""

    def __init__(self) -> None:
        obj_path, meta_path = _paths()
        try:
            with open(meta_path) as f:
                meta = json.load(f)
            with open(obj_path, "rb") as f:
                obj = f.read()
        except (OSError, ValueError) as exc:
            raise NativeUnavailable(f"not built ({exc})") from None
        # Never hand the linker a damaged object (a full disk, an edit by hand).
        if not isinstance(meta, dict) or meta.get("sha256") != hashlib.sha256(obj).hexdigest():
            raise NativeUnavailable(f"{obj_path} does not match its record")
        import llvmlite.binding as ll

        ll.initialize_native_target()
        ll.initialize_native_asmprinter()
        process = ctypes.CDLL(None)
        abort = ctypes.cast(process.abort, ctypes.c_void_p).value
        for name in meta["undefined"]:
            if ll.address_of_symbol(name):
                continue  # this process has it (numba's helpers once numba is loaded)
            addr = None
            if name.startswith(_SYMBOL_PREFIXES):
                fn = getattr(process, name, None)
                addr = ctypes.cast(fn, ctypes.c_void_p).value if fn is not None else None
            elif name in _ABORT_OK:
                addr = abort
            if not addr:
                raise NativeUnavailable(f"symbol {name} is not in this process")
            ll.add_symbol(name, addr)
        target = ll.Target.from_default_triple()
        tm = target.create_target_machine(
            cpu=ll.get_host_cpu_name(),
            features=ll.get_host_cpu_features().flatten(),
            opt=0,
            reloc="static" if target.name.startswith("x86") else "default",
            codemodel="jitdefault",
        )
        self._engine = ll.create_mcjit_compiler(ll.parse_assembly(""), tm)
        self._engine.add_object_file(ll.ObjectFileRef.from_data(obj))
        self._engine.finalize_object()
        addr = self._engine.get_function_address(meta["symbol"])
        if not addr:
            raise NativeUnavailable(f"{meta['symbol']} is not in {obj_path}")
        self._fn = _FN(addr)
        self._scratch16 = int(meta["scratch16"])
        self._local = threading.local()
        self.threads = _thread_count()
        self._pool_pid = -1
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        # A forked child inherits the pool without its threads: it gets its own.
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="zsmalloc-lengths")
            self._pool_pid = os.getpid()
        return self._pool

    def _run(self, pages: np.ndarray, out: np.ndarray, algo: int, level: int, huge: int,
             counter: list[int], lock: threading.Lock) -> None:
        s16 = getattr(self._local, "s16", None)
        if s16 is None:
            s16 = self._local.s16 = np.empty(self._scratch16, np.uint16)
        n, page_size = pages.shape
        base, obase, sbase = pages.ctypes.data, out.ctypes.data, s16.ctypes.data
        while True:
            with lock:
                lo = counter[0]
                counter[0] = lo + BLOCK_PAGES
            if lo >= n:
                return
            k = min(BLOCK_PAGES, n - lo)
            self._fn(base + lo * page_size, k, page_size, obase + 4 * lo, algo, level, huge, sbase)

    def lengths(self, pages: np.ndarray, algo: str, level: int, huge: int) -> np.ndarray:
        """int32 length per page of the C-contiguous uint8 ``pages`` (n, page_size)."""
        if pages.dtype != np.uint8 or pages.ndim != 2 or not pages.flags.c_contiguous:
            raise ValueError("pages must be a C-contiguous uint8 array (n, page_size)")
        n = pages.shape[0]
        out = np.empty(n, np.int32)
        if n == 0:
            return out
        code = NATIVE_ALGOS[algo]
        counter, lock = [0], threading.Lock()
        workers = min(self.threads, -(-n // BLOCK_PAGES))
        with _POOL_LOCK:
            pool = self._executor()
        futures = [
            pool.submit(self._run, pages, out, code, level, huge, counter, lock)
            for _ in range(workers)
        ]
        try:
            for f in futures:
                f.result()
        except BaseException:  # Ctrl-C: no more blocks; the caller may reuse ``pages``
            with lock:
                counter[0] = n
            for f in futures:
                f.exception()
            raise
        return out


_POOL_LOCK = threading.Lock()


def _thread_count() -> int:
    """numba's thread count rule: NUMBA_NUM_THREADS, else the CPUs this process may use."""
    env = os.environ.get("NUMBA_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_loaded: NativeLengths | None = None
_failed: str | None = None
_load_lock = threading.Lock()


def native_lengths(build_if_missing: bool = True) -> NativeLengths | None:
    """The process's loaded loop, built first if missing; None where there is none."""
    global _loaded, _failed
    if not _jit.HAVE_NUMBA or os.environ.get("ZSMALLOC_NATIVE", "1") == "0":
        return None
    with _load_lock:
        if _loaded is not None or _failed is not None:
            return _loaded
        try:
            try:
                _loaded = NativeLengths()
            except NativeUnavailable:
                if not build_if_missing:
                    raise
                build()
                _loaded = NativeLengths()
        except Exception as exc:  # broad on purpose: the build leans on numba's and
            _failed = f"{type(exc).__name__}: {exc}"  # llvmlite's internals; numba's loop remains
        return _loaded


def unavailable_reason() -> str | None:
    """Why :func:`native_lengths` gave None (None: it did not, or was not asked yet)."""
    return _failed
