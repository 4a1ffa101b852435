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
import os
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_numba: Any  # the numba module, or None where it is not installed
try:
    import numba as _numba

    HAVE_NUMBA = os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0")
except ImportError:  # pragma: no cover - exercised where numba is absent
    _numba = None
    HAVE_NUMBA = False

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


def source_digest(package_dir: str = PACKAGE_DIR) -> str:
    """Hex digest of numba's version and the source of :func:`compiled_sources`."""
    sources = _read_package(package_dir)
    h = hashlib.sha256(f"numba {_numba.__version__ if _numba else None}\0".encode())
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


def njit(*args: Any, **kwargs: Any) -> Any:
    """``numba.njit(cache=True, ...)`` cached in :data:`CACHE_DIR`, or the identity.

    Code outside the package that calls package functions (bench/) must use this one:
    numba's own ``cache=True`` would stamp it with its own file only, and go stale.
    """
    if _numba is None:
        if args and callable(args[0]):
            return args[0]
        return lambda f: f
    if not HAVE_NUMBA:
        return _numba.njit(*args, **kwargs)  # numba's own NUMBA_DISABLE_JIT handling
    # Never numba's own cache: without CACHE_DIR, nothing is cached.
    kwargs["cache"] = kwargs.get("cache", True) and CACHE_DIR is not None
    if not kwargs["cache"]:
        return _numba.njit(*args, **kwargs)
    if args and callable(args[0]):  # @njit or njit(func, ...)
        return _decorate(_numba.njit(*args[1:], **kwargs), args[0])
    decorator = _numba.njit(*args, **kwargs)  # @njit(signature, ...) or @njit(option=...)
    return lambda func: _decorate(decorator, func)


prange: Callable[..., Any] = _numba.prange if _numba is not None else range


def dynamic_prange() -> AbstractContextManager[object]:
    """While active, ``prange`` loops hand their iterations to the threads one at a time.

    numba's default splits a ``prange`` into one equal block per thread up front: a
    thread that gets the harder pages, or loses its core to another process, leaves the
    others idle at the end of every call.  Handed out one by one (numba's
    ``parallel_chunksize(1)``), the iterations keep every thread busy to the end.
    """
    if not HAVE_NUMBA:
        return nullcontext()
    return _numba.parallel_chunksize(1)
