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
* **shared object**: where a C compiler is found (``$CC``, else ``cc``), the same
  optimised module is also emitted position-independent and linked into a shared
  library (``native-lengths-<tag>.so``), beside a few lines of C that stand for
  numba's helpers (see below);
* **load** (no numba, no llvmlite): ``ctypes.CDLL`` maps that library, a millisecond;
  without one, llvmlite's MCJIT links the object into this process (importing
  llvmlite and starting LLVM cost a tenth of a second or two, which is why the
  library comes first).  The loop is called through ctypes, which releases the GIL,
  so one thread per CPU each take blocks of pages from a shared counter (a block at
  a time, as :func:`~zsmalloc._jit.dynamic_prange` does for numba).

The code is the numba code, not a second implementation: the same source digest
names both caches, and tests compare the two on the recorded pages.  The object's
undefined symbols are checked when it is built: the C API and libc, plus numba's
helpers that only code raising an exception calls (the compressors index within
bounds and allocate nothing, so never); those are pointed at ``abort`` (in the shared
library: defined there as calls to ``abort``; under MCJIT: unless this process already
has them, numba loaded), and an object that needs anything else (an allocation in the
loop) is refused, leaving the numba path.  The file names carry a tag of the CPU (its
``/proc/cpuinfo`` identity and flags) and of the llvmlite build, read without
importing llvmlite.

lz4hc and deflate allocate and stay on numba; so do lengths under NUMBA_DISABLE_JIT.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from zsmalloc import _jit

NATIVE_ALGOS = {"lzo": 0, "lzo-rle": 1, "lz4": 2}
"""Algorithms the native loop runs (its own codes, not batch.ALGO_*)."""

BLOCK_PAGES = 256
"""Most pages a thread takes at a time: about a millisecond of work, for a Python-level
step per block.  Toward the end of a batch the blocks shrink (half of each thread's share
of what is left, at least :data:`MIN_BLOCK_PAGES`: guided self-scheduling), so the
threads end together, even when one loses its core, and none waits out a whole block
at every chunk the estimate hands over."""

MIN_BLOCK_PAGES = 32

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


# /proc/cpuinfo fields naming the CPU and what it can do (x86 and arm64), not its state
_CPU_KEYS = frozenset(
    ("vendor_id", "cpu family", "model", "model name", "stepping", "flags", "Features",
     "CPU implementer", "CPU architecture", "CPU variant", "CPU part", "CPU revision")
)


def _cpu_identity() -> str:
    """This CPU as code generation sees it: the first processor's identity and flags."""
    try:
        with open("/proc/cpuinfo") as f:
            block = f.read().split("\n\n", 1)[0]
    except OSError:  # not Linux: ask LLVM (imports llvmlite)
        import llvmlite.binding as ll

        return f"{ll.get_host_cpu_name()}\0{ll.get_host_cpu_features().flatten()}"
    fields = (line.partition(":") for line in block.splitlines())
    named = (f"{k.strip()}={v.strip()}" for k, _, v in fields if k.strip() in _CPU_KEYS)
    return "\0".join(sorted(named))


def _llvmlite_identity() -> str:
    """The llvmlite build (its library's size and mtime), found without importing it."""
    spec = importlib.util.find_spec("llvmlite")
    for where in (spec.submodule_search_locations or []) if spec else []:
        for name in ("libllvmlite.so", "libllvmlite.dylib", "llvmlite.dll"):
            try:
                st = os.stat(os.path.join(where, "binding", name))
            except OSError:
                continue
            return f"{where}\0{st.st_size}\0{st.st_mtime_ns}"
    raise NativeUnavailable("llvmlite's library was not found")


def _tag() -> str:
    """What the machine code depends on besides the source: the CPU and llvmlite."""
    key = f"{_cpu_identity()}\0{_llvmlite_identity()}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _paths() -> tuple[str, str, str]:
    """The object (MCJIT), the shared library and their record."""
    if _jit.CACHE_DIR is None:
        raise NativeUnavailable("numba's cache directory is not writable")
    base = os.path.join(_jit.CACHE_DIR, f"native-lengths-{_tag()}")
    return base + ".o", base + ".so", base + ".json"


def _write(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # readers see the whole file or none


def _link_shared(module: Any, undefined: list[str]) -> bytes | None:
    """``module`` (numba's optimised LLVM module) as a shared library, or None without a
    C compiler.  numba's helpers become functions calling ``abort`` (never reached: see
    the module doc); the C API and libc are left to the process."""
    cc = shutil.which(os.environ.get("CC") or "cc")
    if cc is None:
        return None
    import llvmlite.binding as ll

    mod = module.clone()  # code generation may rewrite the IR; numba keeps its own
    target = ll.Target.from_triple(mod.triple)
    tm = target.create_target_machine(
        cpu=ll.get_host_cpu_name(),
        features=ll.get_host_cpu_features().flatten(),
        opt=3,
        reloc="pic",
        codemodel="default",
    )
    obj = tm.emit_object(mod)
    needs = _object_undefined(obj)
    stubs = [name for name in needs if name in _ABORT_OK]
    if set(needs) - set(undefined) - set(stubs):
        raise NativeUnavailable("the position-independent loop needs other symbols")
    c = "#include <stdlib.h>\n" + "".join(f"void {n}(void) {{ abort(); }}\n" for n in stubs)
    with tempfile.TemporaryDirectory(prefix="zsmalloc-native-") as d:
        for name, data in (("loop.o", obj), ("helpers.c", c.encode())):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        out = os.path.join(d, "loop.so")
        done = subprocess.run(
            [cc, "-shared", "-fPIC", "-O2", "-o", out, "helpers.c", "loop.o"],
            cwd=d, capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            raise NativeUnavailable(f"{cc} could not link the loop: {done.stderr.strip()[:200]}")
        with open(out, "rb") as f:
            return f.read()


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
    shared = None
    try:
        shared = _link_shared(compiled._library._final_module, undefined)
    except Exception:  # broad on purpose (numba's and LLVM's internals): MCJIT remains
        shared = None
    obj_path, so_path, meta_path = _paths()
    meta = {
        "sha256": hashlib.sha256(obj).hexdigest(),
        "shared_sha256": hashlib.sha256(shared).hexdigest() if shared else None,
        "symbol": compiled.native_name,
        "scratch16": int(SCRATCH16),
        "undefined": undefined,
        "numba": numba.__version__,
    }
    _write(obj_path, obj)
    if shared:
        _write(so_path, shared)
    _write(meta_path, json.dumps(meta).encode())


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
        obj_path, so_path, meta_path = _paths()
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError) as exc:
            raise NativeUnavailable(f"not built ({exc})") from None
        if not isinstance(meta, dict):
            raise NativeUnavailable(f"{meta_path} is not a record")
        addr = self._load_shared(so_path, meta) or self._load_object(obj_path, meta)
        self._fn = _FN(addr)
        self._scratch16 = int(meta["scratch16"])
        self._local = threading.local()
        self.threads = _jit.thread_count()
        self._pool_pid = -1
        self._pool: ThreadPoolExecutor | None = None

    def _load_shared(self, so_path: str, meta: dict[str, Any]) -> int | None:
        """The loop's address in the shared library, or None where there is none (no C
        compiler at build time, a file system mounted noexec...)."""
        if not meta.get("shared_sha256"):
            return None
        try:
            with open(so_path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        # Never map a damaged library (a full disk, an edit by hand).
        if meta["shared_sha256"] != hashlib.sha256(data).hexdigest():
            raise NativeUnavailable(f"{so_path} does not match its record")
        # Map the bytes just checked, not the path (which may change meanwhile).
        try:
            fd = os.memfd_create("zsmalloc-native-lengths", 0)
        except (AttributeError, OSError):  # not Linux
            return None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            self._library = ctypes.CDLL(f"/proc/self/fd/{fd}")
            fn = self._library[meta["symbol"]]
        except (OSError, AttributeError):  # no /proc, memfd mapped noexec
            return None
        finally:
            os.close(fd)  # the mapping stays
        return ctypes.cast(fn, ctypes.c_void_p).value

    def _load_object(self, obj_path: str, meta: dict[str, Any]) -> int:
        """The loop's address after llvmlite's MCJIT has linked the object in."""
        try:
            with open(obj_path, "rb") as f:
                obj = f.read()
        except OSError as exc:
            raise NativeUnavailable(f"not built ({exc})") from None
        if meta.get("sha256") != hashlib.sha256(obj).hexdigest():
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
        return int(addr)

    def _executor(self) -> ThreadPoolExecutor:
        # A forked child inherits the pool without its threads: it gets its own.
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="zsmalloc-lengths")
            self._pool_pid = os.getpid()
        return self._pool

    def _run(
        self,
        pages: np.ndarray,
        out: np.ndarray,
        algo: int,
        level: int,
        huge: int,
        counter: list[int],
        lock: threading.Lock,
        workers: int,
    ) -> None:
        s16 = getattr(self._local, "s16", None)
        if s16 is None:
            s16 = self._local.s16 = np.empty(self._scratch16, np.uint16)
        n, page_size = pages.shape
        base, obase, sbase = pages.ctypes.data, out.ctypes.data, s16.ctypes.data
        share = 2 * workers
        while True:
            with lock:
                lo = counter[0]
                k = min(BLOCK_PAGES, max(MIN_BLOCK_PAGES, -(-(n - lo) // share)), n - lo)
                counter[0] = lo + k
            if k <= 0:
                return
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
            pool.submit(self._run, pages, out, code, level, huge, counter, lock, workers)
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
