"""zram's ``zstd``: the kernel's zstd version, through a zstd library of that version.

zstd's output depends on its version (each release retunes match finders, block
splitting, entropy decisions), and every kernel carries its own copy in lib/zstd
(:attr:`zsmalloc.profile.KernelProfile.zstd_version`: 1.4.10 in 6.1, 1.5.2 in 6.6 and
6.12, 1.5.7 from 6.15).  zstd is far too large to re-implement, so the kernel's output
comes from the `zstandard` package built with the same zstd release: that matched every
page of every guest trace at every level (6.12 with 1.5.2, 7.2 with 1.5.7, 6.1 with
1.4.8 standing in for 1.4.10), while 1.5.7 in place of 1.5.2 misses up to 71 % of
pages, by up to 265 bytes (docs/compress.md).

Several versions can be used side by side: the installed ``zstandard`` (0.25: zstd
1.5.7, the reference kernel's) and any number of others installed with
``pip install --target`` under :func:`library_dir` (``$ZSMALLOC_ZSTD_DIR``, default
``$XDG_DATA_HOME/zsmalloc/zstd``, i.e. ``~/.local/share/zsmalloc/zstd``), one directory
per version; their C extension is loaded under a private module name, so they do not
clash with the installed one::

    pip install --target ~/.local/share/zsmalloc/zstd/1.5.2 zstandard==0.19.0

How the kernel calls it (the parameters matter as much as the version):

* 6.12 and later (backend_zstd.c): ``ZSTD_getParams(level, PAGE_SIZE, 0)`` set
  explicitly, pledged size PAGE_SIZE, ``ZSTD_compress2``; no level means 3.  The same
  as a level-``level`` compression of a PAGE_SIZE input of known size.
* 6.1 and 6.6 (crypto/zstd.c): ``ZSTD_getParams(3, 0, 0)``, level 3 for an *unknown*
  size (windowLog 21, chainLog 16, hashLog 17, searchLog 1, minMatch 5, dfast), set
  explicitly and shrunk by ``ZSTD_compress2`` for the pledged page size.
* Both: a frame with the content size, no checksum.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from zsmalloc.profile import KernelProfile

ZstdVersion = tuple[int, int, int]

ZSTD_CLEVEL_DEFAULT: Final = 3
# crypto/zstd.c: zstd_get_params(ZSTD_DEF_LEVEL = 3, 0): level 3 for an unknown size,
# the same row in zstd 1.4.x and 1.5.x: windowLog, chainLog, hashLog, searchLog,
# minMatch, targetLength, strategy (2 = ZSTD_dfast)
CRYPTO_ZSTD_PARAMS: Final = (21, 16, 17, 1, 5, 0, 2)
# Library versions whose output is a kernel's where no zstandard release bundles the
# kernel's own: 1.4.8 reproduced the 6.1 trace (1.4.10) page for page.
ZSTD_EQUIVALENTS: Final[dict[ZstdVersion, tuple[ZstdVersion, ...]]] = {(1, 4, 10): ((1, 4, 8),)}
ZSTD_DIR_ENV: Final = "ZSMALLOC_ZSTD_DIR"

# zstandard releases by the zstd they bundle: what `pip install` line gets a version.
ZSTANDARD_RELEASES: Final[dict[ZstdVersion, str]] = {
    (1, 4, 8): "0.15.2",
    (1, 5, 2): "0.19.0",
    (1, 5, 7): "0.25.0",
}

_lock = threading.Lock()
_libraries: dict[ZstdVersion, ModuleType] | None = None


def version_str(v: ZstdVersion) -> str:
    return ".".join(map(str, v))


def library_dir() -> Path:
    """Where extra zstd versions live: ``$ZSMALLOC_ZSTD_DIR`` or the XDG data dir."""
    env = os.environ.get(ZSTD_DIR_ENV)
    if env:
        return Path(env)
    home = os.path.expanduser("~")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return Path(data) / "zsmalloc" / "zstd"


def install_command(version: ZstdVersion) -> str | None:
    """The command that makes zstd ``version`` available here, or None if no zstandard
    release bundles it."""
    release = ZSTANDARD_RELEASES.get(version)
    if release is None:
        return None
    target = library_dir() / version_str(version)
    home = os.path.expanduser("~")
    shown = str(target)
    if shown.startswith(home + os.sep):
        shown = "~" + shown[len(home) :]
    return f"pip install --target {shown} zstandard=={release}"


def _load_extension(path: Path, tag: str) -> ModuleType:
    """zstandard's C extension from ``path``, under a name of its own (no clash with the
    installed zstandard: the init function is found by the last name component)."""
    name = f"_zsmalloc_zstd_{tag}.backend_c"
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
    if spec is None:  # pragma: no cover - only for a path importlib cannot name
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _scan() -> dict[ZstdVersion, ModuleType]:
    found: dict[ZstdVersion, ModuleType] = {}
    try:
        import zstandard

        found[tuple(zstandard.ZSTD_VERSION)] = zstandard  # type: ignore[index]
    except ImportError:  # pragma: no cover - zstandard is a dependency
        pass
    root = library_dir()
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    try:
        candidates = sorted(root.glob("*/zstandard/backend_c*"))
    except OSError:
        candidates = []
    for i, path in enumerate(candidates):
        if not path.name.endswith(suffixes):
            continue
        try:
            module = _load_extension(path, f"{i}")
            version = tuple(module.ZSTD_VERSION)
        except Exception as exc:  # a broken or foreign build: say so, keep going
            print(f"zsmalloc: ignoring {path}: {exc}", file=sys.stderr)
            continue
        found.setdefault(version, module)
    return found


def libraries() -> dict[ZstdVersion, ModuleType]:
    """Every zstd library version found (scanned once per process)."""
    global _libraries
    with _lock:
        if _libraries is None:
            _libraries = _scan()
        return _libraries


def rescan() -> None:
    """Forget what was found (after installing a version, or changing the directory)."""
    global _libraries
    with _lock:
        _libraries = None


def kernel_versions(profile: KernelProfile) -> tuple[ZstdVersion, ...]:
    """Library versions whose output is ``profile``'s kernel's (its own version first)."""
    return (profile.zstd_version, *ZSTD_EQUIVALENTS.get(profile.zstd_version, ()))


def library_for(profile: KernelProfile) -> tuple[ModuleType, bool]:
    """The library to use for ``profile``'s zstd and whether its output is the kernel's.

    An exact version (or a known equivalent) when there is one; otherwise the
    installed zstandard (the newest found), whose output is then only approximate.
    """
    libs = libraries()
    for v in kernel_versions(profile):
        if v in libs:
            return libs[v], True
    if not libs:  # pragma: no cover - zstandard is a dependency
        raise ImportError("no zstd library: pip install zstandard")
    return libs[max(libs)], False


def approximate_reason(profile: KernelProfile) -> tuple[str, str | None]:
    """Why ``profile``'s zstd is only approximate here, and the command that fixes it."""
    found = ", ".join(version_str(v) for v in sorted(libraries())) or "none"
    want = version_str(profile.zstd_version)
    command = None
    for v in kernel_versions(profile):
        command = install_command(v)
        if command is not None:
            break
    why = (
        f"Linux {profile.version} carries zstd {want}; this machine has zstd {found} "
        f"(lengths differ on some pages, by up to a few hundred bytes)"
    )
    return why, command


ZSTD_MAX_CLEVEL: Final = 22
ZSTD_MIN_CLEVEL: Final = -(1 << 17)  # -ZSTD_TARGETLENGTH_MAX


def clamp_level(level: int) -> int:
    """What ZSTD_getParams() makes of a level: 0 is the default, the rest clamped."""
    if level == 0:
        return ZSTD_CLEVEL_DEFAULT
    return max(ZSTD_MIN_CLEVEL, min(level, ZSTD_MAX_CLEVEL))


def make_compressor(lib: ModuleType, profile: KernelProfile, level: int | None) -> Any:
    """A ``ZstdCompressor`` configured as ``profile``'s kernel configures zstd (``level``:
    zram's algorithm_params level, None for the default; 6.1/6.6 have none)."""
    if profile.zram_compressors == "crypto":
        wlog, clog, hlog, slog, mml, tlen, strategy = CRYPTO_ZSTD_PARAMS
        params = lib.ZstdCompressionParameters(
            window_log=wlog,
            chain_log=clog,
            hash_log=hlog,
            search_log=slog,
            min_match=mml,
            target_length=tlen,
            strategy=strategy,
            write_content_size=True,
            write_checksum=False,
        )
        return lib.ZstdCompressor(compression_params=params)
    return lib.ZstdCompressor(
        level=ZSTD_CLEVEL_DEFAULT if level is None else clamp_level(level),
        write_content_size=True,
        write_checksum=False,
    )
