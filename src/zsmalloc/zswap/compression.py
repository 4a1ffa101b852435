"""What ``zswap_compress()`` makes of a page: a stored length, or a reject counter.

Mirrors zswap_compress() in mm/zswap.c (6.18), spec §5.  The crypto acomp call
has a one-page (PAGE_SIZE, here 4096-byte) output buffer, so for a page whose compressed form
would take ``clen`` bytes with unlimited room:

================================  =========================  ========================
outcome                           writeback allowed          writeback disabled
================================  =========================  ========================
``0 < clen < 4096``               stored, ``length = clen``  same
``clen == 4096`` (fits exactly)   stored as-is, 4096         ``reject_compress_fail``
``clen > 4096`` (does not fit)    stored as-is, 4096         by error code (below)
================================  =========================  ========================

The error code for output that does not fit depends on the crypto wrapper:
lzo, lzo-rle, lz4, lz4hc and zstd give -EINVAL (``reject_compress_fail``),
deflate and 842 give -ENOSPC (``reject_compress_poor``).  zswap has no huge
threshold: any ``clen <= 4095`` is stored compressed.

Before 6.18 (``ZswapRules.store_incompressible`` false) nothing is stored as-is: a
page whose output does not fit the one page ``dlen`` allows fails, counted in
``reject_compress_fail`` (or ``_poor`` for the -ENOSPC wrappers of that kernel,
``ZswapRules.overflow_enospc``) since 6.12 and in no counter at all in 6.1 and 6.6;
one that fits exactly (``clen == 4096``) is stored compressed, 4096 bytes long.

Lengths come from the kernel-exact compressors in :mod:`zsmalloc.compress`
(crypto defaults: lz4 acceleration 1, lz4hc level 9, zstd's default level).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from zsmalloc.zswap.rules import ZswapRules

# acomp wrappers whose "output does not fit" error is -ENOSPC rather than -EINVAL.
_ENOSPC_ON_OVERFLOW = frozenset({"deflate", "842"})


class CompressOutcome(NamedTuple):
    """``length`` to zs_malloc (None = rejected) and the debugfs counter a reject bumps."""

    length: int | None
    reject_counter: str | None


def zswap_compress_outcome(
    algorithm: str, clen: int, writeback: bool, page_size: int, rules: ZswapRules | None = None
) -> CompressOutcome:
    """Mirrors the decisions of zswap_compress() for a page compressing to ``clen`` bytes.

    ``rules`` is the kernel's (:func:`zsmalloc.zswap.rules.zswap_rules`); None is 6.18's.
    """
    if 0 < clen < page_size:
        return CompressOutcome(clen, None)
    if rules is not None and not rules.store_incompressible:
        if clen == page_size:  # fits the one-page dlen exactly: stored, compressed
            return CompressOutcome(clen, None)
        if not rules.compress_fail_counted:
            return CompressOutcome(None, None)  # 6.1, 6.6: -EINVAL, no counter
        if algorithm in rules.overflow_enospc:
            return CompressOutcome(None, "reject_compress_poor")
        return CompressOutcome(None, "reject_compress_fail")
    if writeback:
        return CompressOutcome(page_size, None)  # stored as-is
    if clen > page_size and algorithm in _ENOSPC_ON_OVERFLOW:
        return CompressOutcome(None, "reject_compress_poor")
    return CompressOutcome(None, "reject_compress_fail")


def length_function(algorithm: str) -> Callable[[bytes], int]:
    """``page -> clen``: the compressed length with unlimited room, from zsmalloc.compress.

    Imported lazily so the rule logic (and trace replays given sizes) runs
    without the compressors.
    """
    from zsmalloc import compress

    return compress.get(algorithm).compressed_len


def page_clens(pages: object, algorithm: str, same_filled: bool = False) -> list[int]:
    """``clen`` of every page (batch, all cores), with 0 for all-zero pages.

    ``same_filled`` (6.1, 6.6: ``ZswapRules.same_filled``): 0 for every page that
    zswap_is_page_same_filled() takes, any repeated word, not only zeros.
    """
    import numpy as np

    from zsmalloc import compress

    arr = compress.as_pages(pages)
    lens = compress.compress_lengths(arr, algorithm)
    skip = compress.is_same_filled(arr)[0] if same_filled else ~arr.any(axis=1)
    return np.where(skip, 0, lens).astype(int).tolist()


def is_same_filled(page: bytes) -> bool:
    """Mirrors zswap_is_page_same_filled() (6.1, 6.6): every unsigned long equal."""
    words = memoryview(bytes(page)).cast("Q")
    first = words[0]
    return all(w == first for w in words)


def is_zero_filled(page: bytes) -> bool:
    """Mirrors is_folio_zero_filled(): such pages go to the swap zero map, never to zswap."""
    return bytes(page).count(0) == len(page)
