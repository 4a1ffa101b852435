"""What each kernel's zram compresses with: one row per kernel version.

The compressors' code in lib/lzo, lib/lz4 (LZ4 1.7.3 with its HC) and lib/zlib_deflate
has not changed from 6.1 to 7.3 in any way that changes the output (checked by diffing
the Debian source packages linux-source-6.1, -6.12, -7.2 and -7.3).  What does change
from kernel to kernel:

* the **zstd** copy in lib/zstd, whose output depends on its version
  (``ZSTD_VERSION_*`` in include/linux/zstd_lib.h);
* how zram reaches the compressors: through the crypto API up to 6.11 (``crypto/*.c``:
  fixed parameters, no ``algorithm_params``; zstd then runs level 3 with the parameters
  for an *unknown* input size, shrunk by ZSTD_compress2 to the page), or through zram's
  own backends from 6.12 (``drivers/block/zram/backend_*.c``: ``algorithm_params
  level=``; zstd with ``ZSTD_getParams(level, PAGE_SIZE)``);
* ``algorithm_params deflate.winbits=`` (about 6.16 on);
* whether a backend refuses a level out of range at ``disksize`` (7.3) or clamps it.

======  ===========  ==========  ========  ==============================================
kernel  zstd         zram path   winbits   where the zstd version was read
======  ===========  ==========  ========  ==============================================
6.1     1.4.10       crypto API  no        Debian linux-source-6.1 (6.1.176), zstd_lib.h
6.6     1.5.2        crypto API  no        lib/zstd was 1.5.2 from 6.2 to 6.14 (6.12 has it)
6.12    1.5.2        backends    no        Debian linux-source-6.12 (6.12.117), zstd_lib.h
6.15    1.5.7        backends    no        upstream's import of zstd 1.5.7 (6.15-rc1)
6.18    1.5.7        backends    yes       this host's 6.18.44: /proc/kallsyms has
                                           ZSTD_splitBlock, ZSTD_get1BlockSummary,
                                           ZSTD_compressSequencesAndLiterals (new in 1.5.7)
7.2     1.5.7        backends    yes       Debian linux-source-7.2 (7.2.13), zstd_lib.h
7.3     1.5.7        backends    yes       Debian linux-source-7.3 (7.3.4); levels checked
======  ===========  ==========  ========  ==============================================

A kernel version with no row of its own (6.8, 6.17) uses the newest row not newer than
it.  Measured in guests (tests/data/kernels): 6.1, 6.12 and 7.2 (4 KiB pages) and 6.12
arm64 with 16 KiB pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from zsmalloc.errors import InputError as UnknownKernelError  # issue 16 adds its own class
from zsmalloc.profile import DEFAULT_VERSION, VERSIONS, KernelProfile

ZstdVersion = tuple[int, int, int]

CRYPTO = "crypto"  # zram through the crypto API (crypto/lzo.c, crypto/zstd.c, ...)
BACKENDS = "backends"  # zram's own backends (drivers/block/zram/backend_*.c), 6.12 on


@dataclass(frozen=True)
class KernelCompressors:
    """One kernel's compression side of zram (the table in the module docstring)."""

    version: str
    zstd: ZstdVersion
    zram_path: str  # CRYPTO or BACKENDS
    deflate_winbits: bool  # algorithm_params deflate.winbits= exists
    checks_levels: bool  # a level out of range fails disksize instead of being clamped
    # zstd libraries that give this kernel's output (the kernel's own version first);
    # 1.4.8 stands in for 6.1's 1.4.10 (no zstandard release bundles 1.4.10; 1.4.8
    # reproduced the 6.1 trace page for page)
    zstd_equivalents: tuple[ZstdVersion, ...] = ()

    @property
    def has_algorithm_params(self) -> bool:
        """Whether zram takes ``algorithm_params`` (levels): the backends do, 6.12 on."""
        return self.zram_path == BACKENDS

    @property
    def zstd_versions(self) -> tuple[ZstdVersion, ...]:
        """Library versions whose output is this kernel's (its own version first)."""
        return (self.zstd, *self.zstd_equivalents)


ROWS: Final = (
    KernelCompressors("6.1", (1, 4, 10), CRYPTO, False, False, ((1, 4, 8),)),
    KernelCompressors("6.6", (1, 5, 2), CRYPTO, False, False),
    KernelCompressors("6.12", (1, 5, 2), BACKENDS, False, False),
    KernelCompressors("6.15", (1, 5, 7), BACKENDS, False, False),
    KernelCompressors("6.18", (1, 5, 7), BACKENDS, True, False),
    KernelCompressors("7.2", (1, 5, 7), BACKENDS, True, False),
    KernelCompressors("7.3", (1, 5, 7), BACKENDS, True, True),
)
_BY_VERSION: Final = {r.version: r for r in ROWS}

# crypto/zstd.c: zstd_get_params(ZSTD_DEF_LEVEL = 3, 0): level 3 for an unknown size,
# the same row in zstd 1.4.x and 1.5.x: windowLog, chainLog, hashLog, searchLog,
# minMatch, targetLength, strategy (2 = ZSTD_dfast)
CRYPTO_ZSTD_LEVEL: Final = 3
CRYPTO_ZSTD_PARAMS: Final = (21, 16, 17, 1, 5, 0, 2)


def version_key(version: str) -> tuple[int, int]:
    """(major, minor) of "6.12", "6.12.118" or "6.12.118+deb13-amd64"."""
    m = re.match(r"\s*(\d+)\.(\d+)(?![0-9])", version)
    if not m:
        raise UnknownKernelError(
            f"expected a kernel version such as 6.1 or 6.12.118, found {version!r}"
        )
    return int(m.group(1)), int(m.group(2))


def compressors_for(kernel: str | None = None) -> KernelCompressors:
    """The row for ``kernel`` (a version or a release; None: the reference kernel).

    A version between two rows takes the older one; older than 6.1 is refused with
    UnknownKernelError.
    """
    if kernel is None:
        kernel = DEFAULT_VERSION
    if not isinstance(kernel, str):
        raise UnknownKernelError(f"expected a kernel version string, found {kernel!r}")
    row = _BY_VERSION.get(kernel.strip())
    if row is not None:
        return row
    want = version_key(kernel)
    older = [r for r in ROWS if version_key(r.version) <= want]
    if not older:
        raise UnknownKernelError(
            f"kernel {kernel!r} is older than every known one "
            f"({', '.join(r.version for r in ROWS)})"
        )
    return max(older, key=lambda r: version_key(r.version))


def profile_version(kernel: str | None = None) -> str:
    """The :mod:`zsmalloc.profile` row whose zsmalloc rules ``kernel`` runs.

    The allocator and zram rules of a kernel with no profile row of its own are those
    of the newest row not newer than it (7.2's zram and zsmalloc are 6.18's: the 7.2
    traces replay exactly on the 6.18 model).
    """
    row = compressors_for(kernel)
    if row.version in VERSIONS:
        return row.version
    want = version_key(row.version)
    return max(
        (v for v in VERSIONS if version_key(v) <= want), key=version_key, default=VERSIONS[0]
    )


def kernel_profile(
    kernel: str | None = None, page_size: int = 4096, chain_size: int | None = None
) -> KernelProfile:
    """The :class:`~zsmalloc.profile.KernelProfile` for ``kernel`` at ``page_size``."""
    version = profile_version(kernel)
    if chain_size is None:
        return KernelProfile(version, page_size)
    return KernelProfile(version, page_size, chain_size)
