"""Parsing sysfs attribute writes exactly as zram (6.18) and lib/ does.

Mirrors ``memparse()`` (lib/cmdline.c), ``kstrtoull``/``kstrtou16``/
``kstrtoint`` (lib/kstrtox.c), ``sysfs_streq()`` and ``next_arg()``, and the
argument checks at the top of each ``*_store`` handler in
drivers/block/zram/zram_drv.c.  Parsing happens before any state is touched,
so a refused write leaves the device as it was; each refusal is a
:class:`~zsmalloc.errors.SysfsError` carrying the kernel's errno.

Observed on the reference 6.18.44 kernel (hot-added device): ``mem_limit``
accepts ``0x10`` (16 bytes, one page) and ``010k`` (octal: 8 KiB), since
memparse parses with base 0; ``reset`` with ``70000`` gives ERANGE, with ``0``
or ``abc`` EINVAL; a 130-byte algorithm name gives E2BIG.
"""

from __future__ import annotations

import errno
import re

from zsmalloc.errors import SysfsError

_U64_MAX = (1 << 64) - 1
_NUM = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
_SUFFIX_SHIFT = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}


def fail(attr: str, value: str, err: int, why: str) -> SysfsError:
    """A SysfsError saying which attribute refused which value, and why."""
    return SysfsError(f"{attr} <- {value.strip()!r}: {why} ({errno.errorcode[err]})", errno=err)


def memparse(text: str) -> tuple[int, int]:
    """Mirrors memparse(): (value, characters consumed); base 0, then one K..E suffix.

    ``simple_strtoull`` with base 0 reads ``0x`` hex, a leading ``0`` as
    octal, decimal otherwise; it skips no leading blanks and wraps at 64 bits.
    """
    m = _NUM.match(text)
    if m is None:
        return 0, 0
    tok = m.group(0)
    if tok[:2] in ("0x", "0X"):
        value = int(tok, 16)
    elif tok.startswith("0"):
        value = int(tok, 8)
    else:
        value = int(tok)
    end = m.end()
    if end < len(text) and text[end].lower() in _SUFFIX_SHIFT:
        value <<= _SUFFIX_SHIFT[text[end].lower()]
        end += 1
    return value & _U64_MAX, end


def _strip_newline(text: str) -> str:
    """kstrto*() accept exactly one trailing newline."""
    return text[:-1] if text.endswith("\n") else text


def kstrtoull(attr: str, text: str, base: int = 10, limit: int = _U64_MAX) -> int:
    """Mirrors kstrtoull()/kstrtou16(): digits only (a leading '+' allowed), one newline.

    A parse error is EINVAL, a value above ``limit`` ERANGE.
    """
    s = _strip_newline(text)
    if s.startswith("+"):
        s = s[1:]
    if base == 0:
        m = _NUM.fullmatch(s)
        ok = m is not None
        value = memparse(s)[0] if ok else 0
    else:
        ok = s.isascii() and s.isdigit()
        value = int(s) if ok else 0
    if not ok:
        raise fail(attr, text, errno.EINVAL, "not a number")
    if value > limit:
        raise fail(attr, text, errno.ERANGE, f"above {limit}")
    return value


def kstrtoint(attr: str, text: str) -> int:
    """Mirrors kstrtoint(text, 10): optional sign, decimal, int range."""
    s = _strip_newline(text)
    neg = s.startswith("-")
    value = kstrtoull(attr, s[1:] if neg else s, limit=1 << 31)
    if (not neg and value > (1 << 31) - 1) or (neg and value > 1 << 31):
        raise fail(attr, text, errno.ERANGE, "outside int range")
    return -value if neg else value


def sysfs_streq(text: str, word: str) -> bool:
    """Mirrors sysfs_streq(): equal, ignoring one trailing newline on either side."""
    return _strip_newline(text) == _strip_newline(word)


def next_args(text: str) -> list[tuple[str, str | None]]:
    """Mirrors a next_arg() loop: ``key=value`` or bare ``key`` tokens, blanks between.

    Double quotes around a value (or a whole token) are removed, as next_arg does.
    """
    out: list[tuple[str, str | None]] = []
    for tok in re.findall(r'(?:[^\s"]+|"[^"]*")+', text):
        key, eq, val = tok.partition("=")
        out.append((key.replace('"', ""), val.replace('"', "") if eq else None))
    return out
