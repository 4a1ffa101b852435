"""What the kernel makes of a string written to sysfs: one parser for zram and zswap.

Every number, flag or key=value list written to ``/sys/block/zramN/*`` or
``/sys/module/zswap/parameters/*`` is parsed by a handful of lib/ helpers.
This module mirrors them (Linux 6.18), so that the model accepts exactly what
the kernel accepts, with the same value and the same errno:

==========================  =======================  ==================================
function                    kernel source            used by
==========================  =======================  ==================================
``kstrtoull`` & co.         lib/kstrtox.c            zram ``reset``, ``idle``, limits
``kstrtobool``              lib/kstrtox.c            ``param_set_bool``
``memparse``                lib/cmdline.c            zram ``disksize``, ``mem_limit``
``next_arg``/``next_args``  lib/cmdline.c            zram ``algorithm_params`` & co.
``sysfs_streq``             lib/string.c             zram ``idle``
``strstrip``                lib/string.c             zswap ``compressor``
``param_set_uint``/``bool`` kernel/params.c          zswap's module parameters
==========================  =======================  ==================================

The kernel sees bytes, not text: a write is ``count`` bytes followed by a NUL
the sysfs layer adds (``sysfs_kf_write``), and every helper stops at the first
NUL.  So each function here encodes its argument as UTF-8, cuts it at the first
``\\0`` and works on the bytes, with the kernel's ``ctype``: only ASCII
``0-9``, ``a-f`` and ``A-F`` are digits (Python's ``int()`` would also take
``_`` separators, blanks and non-ASCII digits, which the kernel refuses), and
``isspace`` is ``\\t \\n \\v \\f \\r``, space and byte 0xA0 (lib/ctype.c).

The rules of lib/kstrtox.c, checked by tests/test_kparse.py against a
reference written from the C source and against lib/test-kstrtox.c's cases:

1. An optional ``+`` (``kstrtou*``) or ``+``/``-`` (``kstrto[s]*``) comes
   first; nothing else precedes the digits (``" 1"`` is EINVAL).
2. Base 0 detects the radix (``_parse_integer_fixup_radix``): ``0x`` followed
   by a hex digit is hexadecimal, another leading ``0`` octal (``"010"`` is
   8), otherwise decimal.  Base 16 skips a ``0x`` prefix.
3. At least one digit, then at most one ``\\n`` and the end (``"1\\n"`` is 1,
   ``"1\\n\\n"`` and ``"1_0"`` are EINVAL).
4. A value past the type's range is ERANGE; so is one past 2**64 - 1 even
   when garbage follows (the overflow is seen before the tail is checked).

A refusal raises :class:`~zsmalloc.errors.SysfsError` whose ``errno`` is the
kernel's and whose message names the attribute (``attr=``) and the value.
"""

from __future__ import annotations

import errno

from zsmalloc.errors import SysfsError

U64_MAX = (1 << 64) - 1
S64_MAX = (1 << 63) - 1
U32_MAX = (1 << 32) - 1
S32_MAX = (1 << 31) - 1
U16_MAX = (1 << 16) - 1
U8_MAX = (1 << 8) - 1

# lib/ctype.c: _S (space) is set for \t \n \v \f \r, ' ' and 0xA0 (Latin-1 NBSP).
_SPACE = frozenset(b"\t\n\v\f\r \xa0")
_MEMPARSE_SHIFT = {ord(c): s for cs, s in (("kK", 10), ("mM", 20), ("gG", 30)) for c in cs}
_MEMPARSE_SHIFT.update({ord(c): s for cs, s in (("tT", 40), ("pP", 50), ("eE", 60)) for c in cs})


# -- strings as the kernel sees them ----------------------------------------------------
def cstring(text: str | bytes) -> bytes:
    """The bytes a kernel helper reads: UTF-8, up to the first NUL (a C string)."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    nul = raw.find(b"\0")
    return raw if nul < 0 else raw[:nul]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def isspace(c: int) -> bool:
    """Mirrors isspace() of include/linux/ctype.h on one byte."""
    return c in _SPACE


def _refused(attr: str, text: str | bytes, err: int, why: str) -> SysfsError:
    shown = _text(cstring(text)).strip()
    return SysfsError(f"{attr} <- {shown!r}: {why} ({errno.errorcode[err]})", errno=err)


# -- lib/kstrtox.c -------------------------------------------------------------------------
def _parse_integer_fixup_radix(s: bytes, base: int) -> tuple[int, int]:
    """Mirrors _parse_integer_fixup_radix(): (the base, where the digits start)."""
    if base == 0:
        if s[:1] == b"0":
            # _tolower(c) is c | 0x20; isxdigit() is ASCII hex only.
            if s[1:2] and s[1] | 0x20 == ord("x") and s[2:3] and _digit(s[2]) < 16:
                base = 16
            else:
                base = 8
        else:
            base = 10
    if base == 16 and s[:1] == b"0" and s[1:2] and s[1] | 0x20 == ord("x"):
        return base, 2
    return base, 0


def _digit(c: int) -> int:
    """The value of an ASCII hex digit, 99 for anything else (as _parse_integer sees it)."""
    if 0x30 <= c <= 0x39:
        return c - 0x30
    lc = c | 0x20  # "don't tolower() this line": only A-F map onto a-f here
    if 0x61 <= lc <= 0x66:
        return lc - 0x61 + 10
    return 99


def _parse_integer(s: bytes, start: int, base: int) -> tuple[int, int, bool]:
    """Mirrors _parse_integer(): (value mod 2**64, digits consumed, overflowed).

    The kernel multiplies in u64 and sets KSTRTOX_OVERFLOW the first time a
    step would pass ULLONG_MAX; the value only grows, so that is "the exact
    value of the digits exceeds 2**64 - 1", and the wrapped result is the
    exact value mod 2**64.
    """
    value = 0
    n = 0
    for c in s[start:]:
        d = _digit(c)
        if d >= base:
            break
        value = value * base + d
        n += 1
    return value & U64_MAX, n, value > U64_MAX


def _kstrtoull(s: bytes, base: int) -> tuple[int, int]:
    """Mirrors static _kstrtoull(): (0, value) or (-errno, 0)."""
    base, start = _parse_integer_fixup_radix(s, base)
    value, n, overflow = _parse_integer(s, start, base)
    if overflow:
        return -errno.ERANGE, 0
    if n == 0:
        return -errno.EINVAL, 0
    end = start + n
    if s[end : end + 1] == b"\n":
        end += 1
    if end != len(s):
        return -errno.EINVAL, 0
    return 0, value


def _kstrtoull_signed_ok(s: bytes, base: int) -> tuple[int, int]:
    """Mirrors kstrtoull(): a leading '+' is skipped."""
    return _kstrtoull(s[1:] if s[:1] == b"+" else s, base)


def _kstrtoll(s: bytes, base: int) -> tuple[int, int]:
    """Mirrors kstrtoll(): '-' then digits (down to -2**63), or kstrtoull up to 2**63 - 1."""
    if s[:1] == b"-":
        rv, tmp = _kstrtoull(s[1:], base)
        if rv:
            return rv, 0
        if tmp > 1 << 63:  # (long long)-tmp > 0
            return -errno.ERANGE, 0
        return 0, -tmp
    rv, tmp = _kstrtoull_signed_ok(s, base)
    if rv:
        return rv, 0
    if tmp > S64_MAX:  # (long long)tmp < 0
        return -errno.ERANGE, 0
    return 0, tmp


def _check(attr: str, text: str | bytes, rv: int, value: int) -> int:
    if rv == -errno.ERANGE:
        raise _refused(attr, text, errno.ERANGE, "out of range")
    if rv:
        raise _refused(attr, text, -rv, "not a number")
    return value


def _unsigned(text: str | bytes, base: int, hi: int, attr: str) -> int:
    value = _check(attr, text, *_kstrtoull_signed_ok(cstring(text), base))
    if value > hi:
        raise _refused(attr, text, errno.ERANGE, f"above {hi}")
    return value


def _signed(text: str | bytes, base: int, lo: int, hi: int, attr: str) -> int:
    value = _check(attr, text, *_kstrtoll(cstring(text), base))
    if not lo <= value <= hi:
        raise _refused(attr, text, errno.ERANGE, f"outside {lo}..{hi}")
    return value


def kstrtoull(text: str | bytes, base: int, *, attr: str = "value") -> int:
    """Mirrors kstrtoull(): an unsigned 64-bit number; EINVAL or ERANGE otherwise."""
    return _unsigned(text, base, U64_MAX, attr)


def kstrtouint(text: str | bytes, base: int, *, attr: str = "value") -> int:
    """Mirrors kstrtouint(): as kstrtoull, ERANGE above 2**32 - 1."""
    return _unsigned(text, base, U32_MAX, attr)


def kstrtou16(text: str | bytes, base: int, *, attr: str = "value") -> int:
    """Mirrors kstrtou16(): as kstrtoull, ERANGE above 65535."""
    return _unsigned(text, base, U16_MAX, attr)


def kstrtou8(text: str | bytes, base: int, *, attr: str = "value") -> int:
    """Mirrors kstrtou8(): as kstrtoull, ERANGE above 255."""
    return _unsigned(text, base, U8_MAX, attr)


def kstrtoll(text: str | bytes, base: int, *, attr: str = "value") -> int:
    """Mirrors kstrtoll(): a signed 64-bit number (one leading '+' or '-')."""
    return _signed(text, base, -(1 << 63), S64_MAX, attr)


def kstrtoint(text: str | bytes, base: int, *, attr: str = "value") -> int:
    """Mirrors kstrtoint(): as kstrtoll, ERANGE outside the int range."""
    return _signed(text, base, -(1 << 31), S32_MAX, attr)


def kstrtobool(text: str | bytes | None, *, attr: str = "value") -> bool:
    """Mirrors kstrtobool(): only the first one or two characters count.

    ``y Y 1`` are true, ``n N 0`` false, ``o``/``O`` then ``n``/``N`` true
    (on) and ``f``/``F`` false (off); anything else, an empty string and a
    NULL pointer (None) are EINVAL.  So ``"yes"`` and ``"0x5"`` parse.
    """
    if text is None:
        raise SysfsError(f"{attr}: expected Y/N/1/0/on/off, found None", errno=errno.EINVAL)
    s = cstring(text)
    first, second = s[:1], s[1:2]
    if first in (b"y", b"Y", b"1"):
        return True
    if first in (b"n", b"N", b"0"):
        return False
    if first in (b"o", b"O"):
        if second in (b"n", b"N"):
            return True
        if second in (b"f", b"F"):
            return False
    raise _refused(attr, text, errno.EINVAL, "expected Y/N/1/0/on/off")


# -- lib/vsprintf.c and lib/cmdline.c ---------------------------------------------------------
def simple_strtoull(text: str | bytes, base: int = 0) -> tuple[int, int]:
    """Mirrors simple_strtoull(): (value mod 2**64, bytes consumed); never fails.

    No sign and no leading blanks; the digits stop at the first byte that is
    not one; nothing parsed gives (0, 0) (base 0 skips ``0x`` only when a hex
    digit follows, so it never consumes a bare prefix).
    """
    s = cstring(text)
    base, start = _parse_integer_fixup_radix(s, base)
    value, n, _ = _parse_integer(s, start, base)
    return value, start + n


def memparse(text: str | bytes) -> tuple[int, int]:
    """Mirrors memparse(): (value, bytes consumed); base 0, then one K/M/G/T/P/E suffix.

    The suffix shifts by 10 per step in u64 (the high bits are lost, as in C).
    Callers decide what an unparsed tail means: zram's ``mem_limit`` refuses
    only a write that consumed nothing, ``disksize`` only a zero size.
    """
    s = cstring(text)
    value, end = simple_strtoull(s, 0)
    if end < len(s) and s[end] in _MEMPARSE_SHIFT:
        value = (value << _MEMPARSE_SHIFT[s[end]]) & U64_MAX
        end += 1
    return value, end


def skip_spaces(s: bytes) -> bytes:
    """Mirrors skip_spaces(): without its leading isspace() bytes."""
    i = 0
    while i < len(s) and s[i] in _SPACE:
        i += 1
    return s[i:]


def next_arg(args: bytes) -> tuple[bytes, bytes | None, bytes]:
    """Mirrors next_arg(): (param, value or None, the rest after blanks).

    A token ends at a blank outside double quotes.  Its first ``=`` splits
    param from value -- unless it is the token's first byte (the kernel tests
    ``equals == 0``), then the whole token is the param.  One pair of quotes
    around the whole token, or around the value, is removed.
    """
    quoted = args[:1] == b'"'
    if quoted:
        args = args[1:]
    in_quote = quoted
    equals = 0
    i = 0
    while i < len(args):
        c = args[i]
        if c in _SPACE and not in_quote:
            break
        if equals == 0 and c == ord("="):
            equals = i
        if c == ord('"'):
            in_quote = not in_quote
        i += 1
    end = i  # where the kernel writes the NUL ending the param or value
    value_quoted = equals > 0 and args[equals + 1 : equals + 2] == b'"'
    if i > 0 and args[i - 1] == ord('"') and (quoted or value_quoted):
        end = i - 1
    if equals:
        start = equals + 2 if value_quoted else equals + 1
        param: bytes = args[:equals]
        value: bytes | None = args[start:end]
    else:
        param, value = args[:end], None
    rest = args[i + 1 :] if i < len(args) else b""
    return param, value, skip_spaces(rest)


def next_args(text: str | bytes) -> list[tuple[str, str | None]]:
    """The (param, value) pairs of ``args = skip_spaces(buf); while (*args) next_arg(...)``.

    The loop every zram key=value handler runs (``algorithm_params``,
    ``recomp_algorithm``, ``recompress``, ``writeback``); a value is None
    when the token had no ``=`` (or only one at its start).
    """
    args = skip_spaces(cstring(text))
    out: list[tuple[str, str | None]] = []
    while args:
        param, value, args = next_arg(args)
        out.append((_text(param), None if value is None else _text(value)))
    return out


# -- lib/string.c ---------------------------------------------------------------------------
def sysfs_streq(s1: str | bytes, s2: str | bytes) -> bool:
    """Mirrors sysfs_streq(): equal, or equal but for one ``\\n`` ending one of them.

    Exactly the C loop: after the common prefix, either both strings end, or
    one ends and the other has just a ``\\n`` left (so ``"all\\n\\n"`` equals
    ``"all\\n"``, whose common prefix already takes one newline).
    """
    a, b = cstring(s1), cstring(s2)
    i = 0
    while i < len(a) and i < len(b) and a[i] == b[i]:
        i += 1
    ta, tb = a[i:], b[i:]
    return (ta, tb) in ((b"", b""), (b"", b"\n"), (b"\n", b""))


def strstrip(text: str | bytes) -> str:
    """Mirrors strstrip()/strim(): without leading and trailing isspace() bytes."""
    s = cstring(text)
    end = len(s)
    while end > 0 and s[end - 1] in _SPACE:
        end -= 1
    return _text(skip_spaces(s[:end]))


# -- kernel/params.c --------------------------------------------------------------------------
def param_set_uint(text: str | bytes, *, attr: str = "value") -> int:
    """Mirrors param_set_uint() (``module_param(..., uint, ...)``): kstrtouint base 0."""
    return kstrtouint(text, 0, attr=attr)


def param_set_bool(text: str | bytes, *, attr: str = "value") -> bool:
    """Mirrors param_set_bool(): kstrtobool.

    The kernel turns a NULL value into "1" ("no equals means set"); that
    only happens for a bare ``zswap.enabled`` on the kernel command line.  A
    sysfs write always has a value, so None here is EINVAL (kstrtobool's NULL).
    """
    return kstrtobool(text, attr=attr)


def param_get_bool(value: bool) -> str:
    """Mirrors param_get_bool(): ``Y`` or ``N`` (the file adds a newline)."""
    return "Y" if value else "N"
