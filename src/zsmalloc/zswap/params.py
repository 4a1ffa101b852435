"""zswap's module parameters, parsed and checked as the kernel's setters do.

Mirrors the parameter block at the top of mm/zswap.c (6.18) and the table of
spec §2, and the parameters older kernels had (which ones a kernel has is
``ZswapRules.params``, :mod:`zsmalloc.zswap.rules`).  Each parameter's
``kernel_param_ops``:

============================  ======================================  ======================
parameter                     declared as                             setter parses with
============================  ======================================  ======================
``enabled``                   ``module_param_cb``, own ops            ``param_set_bool``
``compressor``                ``module_param_cb``, own ops            ``strstrip``, then the
                                                                      crypto API's name
``max_pool_percent``          ``module_param_named(..., uint, ...)``  ``param_set_uint``
``accept_threshold_percent``  ``module_param_named(..., uint, ...)``  ``param_set_uint``
``shrinker_enabled``          ``module_param_named(..., bool, ...)``  ``param_set_bool``
``zpool`` (to 6.17)           ``module_param_cb``, own ops            ``strstrip``, then
                                                                      ``zpool_has_pool``
``same_filled_pages_enabled``,  ``module_param_named(..., bool, ...)``  ``param_set_bool``
``non_same_filled_pages_enabled``, ``exclusive_loads`` (6.1, 6.6)
============================  ======================================  ======================

So the numbers are ``kstrtouint(val, 0)``: ``010`` is 8, ``0x10`` 16, any
value up to 2**32 - 1 (``accept_threshold_percent`` 101 included: no range
check, as the live 6.18.44 kernel confirmed; above 100 there is simply no
hysteresis, spec §6), ``" 1"`` and ``1_0`` EINVAL.  Booleans are
``kstrtobool``: ``Y/y/1/on`` and ``N/n/0/off``, on the first one or two
characters.  The parsing is :mod:`zsmalloc.kparse`, shared with zram.  There
is no ``zpool`` parameter in 6.18 (zswap calls zsmalloc directly); before, an
allocator the kernel does not have is -ENOENT.

Values are the strings one would write to ``/sys/module/zswap/parameters/NAME``;
a value the kernel refuses raises :class:`~zsmalloc.errors.SysfsError` with the
kernel's errno and changes nothing.  A zero-byte write reaches no setter
(``sysfs_kf_write`` returns early) and changes nothing either.
"""

from __future__ import annotations

import errno
import numbers
from dataclasses import dataclass, replace
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


BOOL_PARAMS = (
    "enabled",
    "shrinker_enabled",
    "same_filled_pages_enabled",
    "non_same_filled_pages_enabled",
    "exclusive_loads",
)
STRING_PARAMS = ("compressor", "zpool")
DEFAULT_KNOWN = (
    "enabled",
    "compressor",
    "max_pool_percent",
    "accept_threshold_percent",
    "shrinker_enabled",
)
"""The parameters of 6.18, which :class:`ZswapParams` checks names against by default."""


@dataclass(frozen=True)
class ZswapParams:
    """zswap's parameters with the kernel's defaults (spec §2, §0.2).

    The first five are 6.18's; ``zpool`` (None: the kernel's CONFIG_ZSWAP_ZPOOL_DEFAULT)
    and the last three belong to older kernels, which the model reads only where the
    kernel has them.
    """

    enabled: bool = False
    compressor: str = "lzo"
    max_pool_percent: int = 20
    accept_threshold_percent: int = 90
    shrinker_enabled: bool = False
    zpool: str | None = None
    same_filled_pages_enabled: bool = True
    non_same_filled_pages_enabled: bool = True
    exclusive_loads: bool = False

    def with_value(
        self,
        name: str,
        value: str | int | bool,
        known: tuple[str, ...] = DEFAULT_KNOWN,
        version: str = "6.18",
        zpools: tuple[str, ...] = (),
    ) -> ZswapParams:
        """A copy with parameter ``name`` set from a sysfs-style value (validated first).

        ``True``/``False`` are written as ``Y``/``N`` and integers in decimal.
        ``known`` are the parameters the kernel ``version`` has, ``zpools`` the
        allocators its ``zpool`` parameter takes.
        """
        if name not in known:  # no such file: open() fails before any write
            raise SysfsError(
                f"zswap has no parameter {name!r} in {version}; known: {', '.join(known)}",
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
        if name in BOOL_PARAMS:
            value_ = param_set_bool(text, attr=attr)
        elif name == "compressor":
            value_ = check_compressor(text)
        elif name == "zpool":
            value_ = strstrip(text)
            if value_ not in zpools:  # zpool_has_pool() failed
                raise UnknownAlgorithmError(
                    f"zpool {value_!r} is not available in {version}; "
                    f"known: {', '.join(zpools)}",
                    errno=errno.ENOENT,
                )
        else:
            value_ = param_set_uint(text, attr=attr)
        return replace(self, **{name: value_})

    def as_sysfs(self, known: tuple[str, ...] = DEFAULT_KNOWN) -> dict[str, str]:
        """The values as ``/sys/module/zswap/parameters`` prints them (``known`` ones),
        sorted by name as a directory listing is."""
        out = {}
        for name in sorted(known):
            value = getattr(self, name)
            if isinstance(value, bool):
                out[name] = param_get_bool(value)
            else:
                out[name] = "" if value is None else str(value)
        return out
