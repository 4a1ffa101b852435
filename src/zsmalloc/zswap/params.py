"""zswap's module parameters, parsed and checked as the kernel's setters do.

Mirrors the ``module_param_cb`` block at the top of mm/zswap.c (6.18) and the
parameter table of spec §2: ``enabled``, ``compressor``, ``max_pool_percent``,
``accept_threshold_percent``, ``shrinker_enabled``.  There is no ``zpool``
parameter in 6.18 (zswap calls zsmalloc directly).

Values are given as the strings one would write to
``/sys/module/zswap/parameters/NAME``; a value the kernel refuses raises
:class:`~zsmalloc.errors.SysfsError` with the kernel's errno and changes
nothing.  Booleans follow ``kstrtobool`` (``Y/y/1/on`` and ``N/n/0/off``);
``max_pool_percent`` is any unsigned int (``param_set_uint``);
``accept_threshold_percent`` is 0..100 (``param_set_uint_minmax``).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, fields, replace

from zsmalloc.errors import SysfsError, UnknownAlgorithmError

# crypto acomp names zswap accepts here; the kernel would also take driver names.
KNOWN_COMPRESSORS = ("lzo", "lzo-rle", "lz4", "lz4hc", "zstd", "deflate", "842")
UINT_MAX = 2**32 - 1


def parse_bool(name: str, value: str) -> bool:
    """Mirrors kstrtobool() as used by param_set_bool(): the first one or two characters."""
    v = value.strip()
    if v[:1] in ("y", "Y", "1"):
        return True
    if v[:1] in ("n", "N", "0"):
        return False
    if v[:1] in ("o", "O") and v[1:2] in ("n", "N"):
        return True
    if v[:1] in ("o", "O") and v[1:2] in ("f", "F"):
        return False
    raise SysfsError(
        f"zswap parameter {name}: expected Y/N/1/0/on/off, found {value!r}", errno=errno.EINVAL
    )


def parse_uint(name: str, value: str, lo: int = 0, hi: int = UINT_MAX) -> int:
    """Mirrors param_set_uint()/param_set_uint_minmax(): a decimal in [lo, hi]."""
    v = value.strip()
    try:
        n = int(v, 0)
    except ValueError:
        raise SysfsError(
            f"zswap parameter {name}: expected an unsigned integer, found {value!r}",
            errno=errno.EINVAL,
        ) from None
    if not lo <= n <= hi:
        raise SysfsError(
            f"zswap parameter {name}: expected {lo}..{hi}, found {n}", errno=errno.EINVAL
        )
    return n


def check_compressor(name: str) -> str:
    """The acomp name zswap would accept; unknown names are the kernel's -ENOENT."""
    v = name.strip()
    if v not in KNOWN_COMPRESSORS:
        raise UnknownAlgorithmError(
            f"zswap compressor {v!r} is not available; known: {', '.join(KNOWN_COMPRESSORS)}",
            errno=errno.ENOENT,
        )
    return v


@dataclass(frozen=True)
class ZswapParams:
    """The five 6.18 parameters with the kernel's defaults (spec §2, §0.2)."""

    enabled: bool = False
    compressor: str = "lzo"
    max_pool_percent: int = 20
    accept_threshold_percent: int = 90
    shrinker_enabled: bool = False

    def with_value(self, name: str, value: str | int | bool) -> ZswapParams:
        """A copy with parameter ``name`` set from a sysfs-style value (validated first)."""
        text = ("Y" if value else "N") if isinstance(value, bool) else str(value)
        if name in ("enabled", "shrinker_enabled"):
            return replace(self, **{name: parse_bool(name, text)})
        if name == "compressor":
            return replace(self, compressor=check_compressor(text))
        if name == "max_pool_percent":
            return replace(self, max_pool_percent=parse_uint(name, text))
        if name == "accept_threshold_percent":
            return replace(self, accept_threshold_percent=parse_uint(name, text, 0, 100))
        known = ", ".join(f.name for f in fields(self))
        raise SysfsError(
            f"zswap has no parameter {name!r} in 6.18; known: {known}", errno=errno.ENOENT
        )

    def as_sysfs(self) -> dict[str, str]:
        """The values as ``/sys/module/zswap/parameters`` prints them."""
        return {
            "accept_threshold_percent": str(self.accept_threshold_percent),
            "compressor": self.compressor,
            "enabled": "Y" if self.enabled else "N",
            "max_pool_percent": str(self.max_pool_percent),
            "shrinker_enabled": "Y" if self.shrinker_enabled else "N",
        }
