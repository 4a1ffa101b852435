"""numba, or plain Python where numba is missing or disabled, and numba's disk cache.

Hot loops are written once, in the subset of Python that numba compiles, and
decorated with :func:`njit` from here.  Without numba (or with
``NUMBA_DISABLE_JIT=1``) the same functions run as ordinary Python and give
identical results, only slower; CI (.ci/run) runs the allocator, zram, zswap and
fill tests both ways.

``prange`` is ``range`` without numba.  ``HAVE_NUMBA`` says whether code is
actually compiled.

Compiled code is cached on disk, in :data:`CACHE_DIR`.  numba stamps each cached
function with its own file only, yet a compiled caller contains its callees from other
files (and the constants it reads from other modules): after an edit of ``zs/core.py``
numba would go on loading ``zram/replay.py``'s machine code with the old
``zs_get_total_pages`` inlined.  So the cache directory is named after a digest of the
source of every module compiled code can reach (:func:`compiled_sources`): any edit of
one of them starts an empty directory, and no stale code can be loaded.  The digest is
taken once, when this module is imported, before anything is decorated.

The directory is ``<base>/<digest>``, the base being the first writable of
``$NUMBA_CACHE_DIR/zsmalloc``, ``<package>/__pycache__/numba`` and
``$XDG_CACHE_HOME/zsmalloc/numba`` (``~/.cache/...``).  Functions compiled elsewhere
with this :func:`njit` (bench/) are cached there too, since they contain package code.
Digests unused for :data:`STALE_SECONDS` are removed; a base outside the package may be
shared by several checkouts, so there the :data:`KEEP_SHARED` most recently used stay.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_numba: Any = None  # the numba module once loaded (at once when the JIT is disabled)
_NUMBA_SPEC = importlib.util.find_spec("numba")
HAVE_NUMBA = _NUMBA_SPEC is not None and os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0")
if _NUMBA_SPEC is not None and not HAVE_NUMBA:  # numba's own NUMBA_DISABLE_JIT handling
    import numba as _numba

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
STALE_SECONDS = 600
"""A digest directory unused this long is removed (a process started before an edit
may still be compiling into its old one)."""
KEEP_SHARED = 4
"""Digest directories kept in a base shared with other checkouts, most recent first."""

_DIGEST_LEN = 16
_DIGEST_NAME = re.compile(rf"[0-9a-f]{{{_DIGEST_LEN}}}")
# "zsmalloc.a.b", optionally followed by " import x, y" or " import (x, y)": the modules
# a file may import (also matches in comments and docstrings: harmless extra modules).
_IMPORT = re.compile(rb"zsmalloc((?:\.\w+)*)(?:[ \t]+import[ \t]+(\([^)]*\)|[^\n]*))?")
_COMMENT = re.compile(rb"#[^\n]*")
# "from .x import y" (the package imports absolutely, but a relative import must count).
_RELATIVE = re.compile(rb"from[ \t]+(\.+)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)")


def _read_package(package_dir: str) -> dict[str, tuple[str, bytes]]:
    """Every module's file (relative) and source, by name (``zsmalloc.zs.core``)."""
    sources = {}
    package_dir = os.path.abspath(package_dir)
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and d[0] != ".")
        rel = dirpath[len(package_dir) + 1 :]
        prefix = "zsmalloc." + rel.replace(os.sep, ".") if rel else "zsmalloc"
        for name in filenames:
            if name.endswith(".py"):
                module = prefix if name == "__init__.py" else f"{prefix}.{name[:-3]}"
                with open(os.path.join(dirpath, name), "rb") as f:
                    sources[module] = (os.path.join(rel, name), f.read())
    return sources


def _compiled_modules(sources: dict[str, tuple[str, bytes]]) -> list[str]:
    """Modules with compiled code and every package module they import, recursively.

    Compiled code can only reach what its module's globals hold, which come from the
    module itself and what it imports: modules nothing compiled imports (the CLI, the
    live-kernel drivers) cannot change compiled code, and editing them keeps the cache.
    """
    names = {m.encode(): m for m in sources}
    todo = [m for m, (_, src) in sources.items() if b"jit" in src or b"numba" in src]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        file, src = sources[module]
        imports = [(b"zsmalloc" + dotted, listed) for dotted, listed in _IMPORT.findall(src)]
        if b"from ." in src:
            is_package = os.path.basename(file) == "__init__.py"
            package = module if is_package else module.rpartition(".")[0]
            for dots, rest, listed in _RELATIVE.findall(src):
                base = package.rsplit(".", len(dots) - 1)[0].encode()
                imports.append((base + b"." + rest if rest else base, listed))
        for dotted, listed in imports:
            # the module and every package on the way (their __init__ runs too) ...
            parts = dotted.split(b".")
            found = [names.get(b".".join(parts[:i])) for i in range(1, len(parts) + 1)]
            if listed:  # ... and in "from zsmalloc.x import a, b", a and b may be modules
                for part in _COMMENT.sub(b"", listed).strip(b"() \t\r\n").split(b","):
                    words = part.split()
                    if words:
                        found.append(names.get(dotted + b"." + words[0]))
            todo.extend(m for m in found if m is not None and m not in seen)
    return sorted(seen)


def compiled_sources(package_dir: str = PACKAGE_DIR) -> list[str]:
    """The files (relative to the package) whose source the cache digest covers."""
    sources = _read_package(package_dir)
    return [sources[module][0] for module in _compiled_modules(sources)]


def _numba_version_stamp() -> bytes:
    """numba's version, without importing it: its ``_version.py`` (versioneer's record)."""
    if _NUMBA_SPEC is None or _NUMBA_SPEC.origin is None:
        return b"numba None\0"
    try:
        with open(os.path.join(os.path.dirname(_NUMBA_SPEC.origin), "_version.py"), "rb") as f:
            return b"numba " + f.read() + b"\0"
    except OSError:
        return b"numba ?\0"


def source_digest(package_dir: str = PACKAGE_DIR) -> str:
    """Hex digest of numba's version and the source of :func:`compiled_sources`."""
    sources = _read_package(package_dir)
    h = hashlib.sha256(_numba_version_stamp())
    for module in _compiled_modules(sources):
        file, src = sources[module]
        h.update(f"{file}\0{len(src)}\0".encode())
        h.update(src)
    return h.hexdigest()[:_DIGEST_LEN]


def _bases() -> list[tuple[str, int]]:
    """Candidate cache bases, best first, with how many digests each keeps."""
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    bases = [
        (os.path.join(PACKAGE_DIR, "__pycache__", "numba"), 1),
        (os.path.join(xdg, "zsmalloc", "numba"), KEEP_SHARED),
    ]
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user:
        bases.insert(0, (os.path.join(user, "zsmalloc"), KEEP_SHARED))
    return bases


def _prune(base: str, current: str, keep: int) -> None:
    """Remove digest directories of ``base`` other than ``current`` (see module doc)."""
    others = []
    try:
        for e in os.scandir(base):
            if e.name != current and _DIGEST_NAME.fullmatch(e.name) and e.is_dir():
                others.append((e.stat().st_mtime, e.path))
    except OSError:  # another process pruning at the same time: leave it to that one
        return
    others.sort(reverse=True)
    stale_before = time.time() - STALE_SECONDS
    for rank, (mtime, path) in enumerate(others, start=1):  # the current one is rank 0
        if rank >= keep and mtime < stale_before:
            import shutil

            shutil.rmtree(path, ignore_errors=True)


def _cache_dir() -> str | None:
    """Create (and mark as just used) this source's cache directory; None if nowhere."""
    digest = source_digest()
    for base, keep in _bases():
        path = os.path.join(base, digest)
        try:
            os.makedirs(path, exist_ok=True)
            os.utime(path)  # "last used", for _prune
        except OSError:
            continue
        if os.access(path, os.W_OK):
            _prune(base, digest, keep)
            return path
    return None


CACHE_DIR: str | None = _cache_dir() if HAVE_NUMBA else None
"""Where compiled code is cached (None: nothing compiled, or no writable place)."""


def _decorate(decorator: Callable[[F], F], func: F) -> F:
    """Apply numba's decorator with its cache pointed at :data:`CACHE_DIR`.

    numba reads ``config.CACHE_DIR`` when a function is decorated (its cache locator
    keeps the path), so it is set only meanwhile: other numba users in the process keep
    their own caches.  Only the locator for that directory is allowed, so that numba
    never falls back on its per-file ``__pycache__`` cache, the one that goes stale.
    """
    config = _numba.core.config
    saved_dir = config.CACHE_DIR
    saved_locators = getattr(config, "CACHE_LOCATOR_CLASSES", None)
    config.CACHE_DIR = CACHE_DIR
    if saved_locators is not None:
        config.CACHE_LOCATOR_CLASSES = "UserProvidedCacheLocator"
    try:
        return decorator(func)
    finally:
        config.CACHE_DIR = saved_dir
        if saved_locators is not None:
            config.CACHE_LOCATOR_CLASSES = saved_locators


class Deferred:
    """A function decorated with :func:`njit` before numba was loaded.

    Importing numba and preparing its typing tables costs about half a second, more
    than an estimate of a gigabyte takes to compress; most commands never run compiled
    code (or run it through :mod:`zsmalloc.compress.native` without numba).  So until
    something calls compiled code, ``njit`` only records the function.  The first call
    (or attribute access) loads numba with :func:`load_numba`, which decorates every
    recorded function and puts the dispatchers in place of these records in every
    module's globals, where numba will look for them when it compiles the callers.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        cold_python: bool = False,
    ) -> None:
        self.py_func = func
        self.cold_python = cold_python
        self.args = args
        self.kwargs = kwargs
        self.dispatcher: Any = None
        self.__name__ = func.__name__
        self.__qualname__ = func.__qualname__
        self.__doc__ = func.__doc__
        self.__module__ = func.__module__
        self.__wrapped__ = func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.dispatcher is None and (self.cold_python or _cold_depth() > 0):
            _cold.depth = _cold_depth() + 1
            try:
                return self.py_func(*args, **kwargs)
            finally:
                _cold.depth -= 1
        return self.materialize()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.materialize(), name)

    def __repr__(self) -> str:
        return f"<deferred njit {self.__module__}.{self.__qualname__}>"

    def materialize(self) -> Any:
        """The numba dispatcher (numba is loaded first if it is not yet)."""
        if self.dispatcher is None:
            load_numba()
        return self.dispatcher


class _Prange:
    """``prange`` before numba is loaded: :func:`load_numba` puts ``numba.prange`` in its
    place in every module's globals (numba recognises the loop by that very object)."""

    def __call__(self, *args: int) -> range:
        return range(*args)


_cold = threading.local()  # depth of cold_python calls running as Python in this thread


def _cold_depth() -> int:
    depth: int = getattr(_cold, "depth", 0)
    return depth

_DEFERRED: list[Deferred] = []
_ON_LOAD: list[Callable[[], None]] = []
_LOAD_LOCK = threading.RLock()
prange: Callable[..., Any] = _numba.prange if _numba is not None else _Prange()


def cold_call(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)``, as Python while numba is not loaded (see ``cold_python``): for a
    compiled scalar function that Python code calls once or a few thousand times."""
    if isinstance(func, Deferred) and func.dispatcher is None:
        _cold.depth = _cold_depth() + 1
        try:
            return func.py_func(*args)
        finally:
            _cold.depth -= 1
    return func(*args)


def on_numba_load(hook: Callable[[], None]) -> Callable[[], None]:
    """Run ``hook`` when numba is loaded, before anything is compiled (at once if it is).

    For what must exist before compiled code is typed: ``@overload`` and ``@intrinsic``
    definitions.  Hooks run in the order they were registered.
    """
    if not HAVE_NUMBA:
        return hook
    with _LOAD_LOCK:
        if _numba is not None:
            hook()
        else:
            _ON_LOAD.append(hook)
    return hook


def numba_loaded() -> bool:
    """Has this process loaded numba (so compiled code costs nothing more to start)?"""
    return _numba is not None


def load_numba() -> Any:
    """Import numba, run the :func:`on_numba_load` hooks, decorate every :class:`Deferred`.

    Then every module global that holds a :class:`Deferred` (or the ``prange``
    placeholder) is replaced by numba's object, so that compiled callers find
    dispatchers, and Python callers skip the indirection.  Returns numba.
    """
    global _numba, prange
    with _LOAD_LOCK:
        if _numba is not None:
            return _numba
        if not HAVE_NUMBA:
            raise RuntimeError("numba is not installed or its JIT is disabled")
        import numba
        from numba.core import types as nb_types
        from numba.extending import typeof_impl

        @typeof_impl.register(Deferred)
        def _typeof_deferred(val: Deferred, c: Any) -> Any:
            # A record held where the globals pass does not reach (a container).
            return nb_types.Dispatcher(val.materialize())

        for hook in _ON_LOAD:
            hook()
        _ON_LOAD.clear()
        _numba = numba  # from here on njit decorates at once
        if getattr(_dynamic, "depth", 0):  # loaded inside dynamic_prange()
            numba.set_parallel_chunksize(1)
        for d in _DEFERRED:
            d.dispatcher = _decorate_now(d.py_func, d.args, d.kwargs)
        swap = {id(d): d.dispatcher for d in _DEFERRED}
        placeholder = prange
        prange = numba.prange
        swap[id(placeholder)] = numba.prange
        _DEFERRED.clear()
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for name, value in list(namespace.items()):
                new = swap.get(id(value))
                if new is not None and (value is placeholder or isinstance(value, Deferred)):
                    namespace[name] = new
        return numba


def _decorate_now(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """numba's njit on ``func`` with ``args``/``kwargs`` (numba loaded), cached in CACHE_DIR."""
    kwargs = dict(kwargs)
    # Never numba's own cache: without CACHE_DIR, nothing is cached.
    kwargs["cache"] = kwargs.get("cache", True) and CACHE_DIR is not None
    if not kwargs["cache"]:
        return _numba.njit(*args, **kwargs)(func)
    return _decorate(_numba.njit(*args, **kwargs), func)


def njit(*args: Any, **kwargs: Any) -> Any:
    """``numba.njit(cache=True, ...)`` cached in :data:`CACHE_DIR`, or the identity.

    Before numba is loaded this records the function (:class:`Deferred`); a signature
    as first argument is kept for then.  ``cold_python=True`` is for small functions
    called from Python (a few thousand operations, such as a class table's elementwise
    forms): while numba is not loaded they run as Python, their callees too, rather than
    load numba for them.  Code outside the package that calls package
    functions (bench/) must use this one: numba's own ``cache=True`` would stamp it with
    its own file only, and go stale.
    """
    if not HAVE_NUMBA:
        kwargs.pop("cold_python", None)
        if _numba is not None:
            return _numba.njit(*args, **kwargs)  # numba's own NUMBA_DISABLE_JIT handling
        if args and callable(args[0]):
            return args[0]
        return lambda f: f
    if args and callable(args[0]) and not isinstance(args[0], str):  # @njit, njit(func, ...)
        return _njit_one(args[0], args[1:], kwargs)
    return lambda func: _njit_one(func, args, kwargs)  # @njit(signature, ...), @njit(option=)


def _njit_one(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    kwargs = dict(kwargs)
    cold_python = kwargs.pop("cold_python", False)
    with _LOAD_LOCK:
        if _numba is not None:
            return _decorate_now(func, args, kwargs)
        d = Deferred(func, args, kwargs, cold_python)
        _DEFERRED.append(d)
        return d


def thread_count() -> int:
    """numba's thread count rule, for every pool of compressing threads (numba's, the
    native loop's, zstd's): ``NUMBA_NUM_THREADS``, else the CPUs this process may use."""
    env = os.environ.get("NUMBA_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def dynamic_prange() -> AbstractContextManager[object]:
    """While active, ``prange`` loops hand their iterations to the threads one at a time.

    numba's default splits a ``prange`` into one equal block per thread up front: a
    thread that gets the harder pages, or loses its core to another process, leaves the
    others idle at the end of every call.  Handed out one by one (numba's
    ``parallel_chunksize(1)``), the iterations keep every thread busy to the end.
    """
    if not HAVE_NUMBA:
        return nullcontext()
    return _DynamicPrange()


_dynamic = threading.local()  # depth of dynamic_prange() blocks in this thread


class _DynamicPrange:
    """numba's ``parallel_chunksize(1)``, also when numba gets loaded inside the block."""

    def __enter__(self) -> None:
        _dynamic.depth = getattr(_dynamic, "depth", 0) + 1
        self.old = _numba.set_parallel_chunksize(1) if _numba is not None else None

    def __exit__(self, *exc: object) -> None:
        _dynamic.depth -= 1
        if self.old is not None:
            _numba.set_parallel_chunksize(self.old)
        elif _numba is not None:  # loaded in the block, while the chunk size was the default
            _numba.set_parallel_chunksize(0)
