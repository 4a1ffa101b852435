"""zswap's module parameters, parsed and checked as the kernel's setters do.

Mirrors the parameter block at the top of mm/zswap.c (6.18) and the table of
spec §2.  Each parameter's ``kernel_param_ops``:

============================  ======================================  ======================
parameter                     declared as                             setter parses with
============================  ======================================  ======================
``enabled``                   ``module_param_cb``, own ops            ``param_set_bool``
``compressor``                ``module_param_cb``, own ops            ``strstrip``, then the
                                                                      crypto API's name
``max_pool_percent``          ``module_param_named(..., uint, ...)``  ``param_set_uint``
``accept_threshold_percent``  ``module_param_named(..., uint, ...)``  ``param_set_uint``
``shrinker_enabled``          ``module_param_named(..., bool, ...)``  ``param_set_bool``
============================  ======================================  ======================

So the numbers are ``kstrtouint(val, 0)``: ``010`` is 8, ``0x10`` 16, any
value up to 2**32 - 1 (``accept_threshold_percent`` 101 included: no range
check, as the live 6.18.44 kernel confirmed; above 100 there is simply no
hysteresis, spec §6), ``" 1"`` and ``1_0`` EINVAL.  Booleans are
``kstrtobool``: ``Y/y/1/on`` and ``N/n/0/off``, on the first one or two
characters.  The parsing is :mod:`zsmalloc.kparse`, shared with zram.  There
is no ``zpool`` parameter in 6.18 (zswap calls zsmalloc directly).

Values are the strings one would write to ``/sys/module/zswap/parameters/NAME``;
a value the kernel refuses raises :class:`~zsmalloc.errors.SysfsError` with the
kernel's errno and changes nothing.  A zero-byte write reaches no setter
(``sysfs_kf_write`` returns early) and changes nothing either.
"""

from __future__ import annotations

import errno
import numbers
from dataclasses import dataclass, fields, replace
from typing import Any

from zsmalloc.errors import SysfsError, UnknownAlgorithmError
from zsmalloc.kparse import param_get_bool, param_set_bool, param_set_uint, strstrip

# crypto acomp names zswap accepts here; the kernel would also take driver names.
KNOWN_COMPRESSORS = ("lzo", "lzo-rle", "lz4", "lz4hc", "zstd", "deflate", "842")


def check_compressor(name: str) -> str:
    """The acomp name zswap would accept (blanks stripped); unknown names are -ENOENT."""
    v = strstrip(name)
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
        """A copy with parameter ``name`` set from a sysfs-style value (validated first).

        ``True``/``False`` are written as ``Y``/``N`` and integers in decimal.
        """
        known = [f.name for f in fields(self)]
        if name not in known:  # no such file: open() fails before any write
            raise SysfsError(
                f"zswap has no parameter {name!r} in 6.18; known: {', '.join(known)}",
                errno=errno.ENOENT,
            )
        if isinstance(value, bool):
            text = param_get_bool(value)
        elif isinstance(value, str):
            text = value
        elif isinstance(value, numbers.Integral):
            text = str(int(value))
        else:
            raise SysfsError(
                f"zswap parameter {name}: expected a string, int or bool, "
                f"found {type(value).__name__}",
                errno=errno.EINVAL,
            )
        if text == "":  # sysfs_kf_write(): "if (!count) return 0;"
            return self
        attr = f"zswap parameter {name}"
        value_: Any  # the field named by ``name``
        if name in ("enabled", "shrinker_enabled"):
            value_ = param_set_bool(text, attr=attr)
        elif name == "compressor":
            value_ = check_compressor(text)
        else:
            value_ = param_set_uint(text, attr=attr)
        return replace(self, **{name: value_})

    def as_sysfs(self) -> dict[str, str]:
        """The values as ``/sys/module/zswap/parameters`` prints them."""
        return {
            "accept_threshold_percent": str(self.accept_threshold_percent),
            "compressor": self.compressor,
            "enabled": param_get_bool(self.enabled),
            "max_pool_percent": str(self.max_pool_percent),
            "shrinker_enabled": param_get_bool(self.shrinker_enabled),
        }
