"""Refusing sysfs attribute writes exactly as zram (6.18) does.

The argument checks at the top of each ``*_store`` handler in
drivers/block/zram/zram_drv.c run before any state is touched, so a refused
write leaves the device as it was; each refusal is a
:class:`~zsmalloc.errors.SysfsError` carrying the kernel's errno.  The lib/
parsers those handlers call (``memparse``, ``kstrtoull``/``kstrtou16``/
``kstrtoint``, ``sysfs_streq``, ``next_arg``) live in :mod:`zsmalloc.kparse`,
shared with zswap's module parameters.

Observed on the reference 6.18.44 kernel (hot-added device): ``mem_limit``
accepts ``0x10`` (16 bytes, one page) and ``010k`` (octal: 8 KiB), since
memparse parses with base 0; ``reset`` with ``70000`` gives ERANGE, with ``0``
or ``abc`` EINVAL; a 130-byte algorithm name gives E2BIG.
"""

from __future__ import annotations

import errno

from zsmalloc.errors import SysfsError


def fail(attr: str, value: str, err: int, why: str) -> SysfsError:
    """A SysfsError saying which attribute refused which value, and why."""
    return SysfsError(f"{attr} <- {value.strip()!r}: {why} ({errno.errorcode[err]})", errno=err)
