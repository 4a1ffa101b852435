"""The sysfs parsers against the kernel's rules (lib/kstrtox.c, lib/cmdline.c, lib/string.c).

Three kinds of evidence: the cases of the kernel's own lib/test-kstrtox.c;
values written to the live 6.18.44 kernel (tests/kernel/ re-checks them
there); and, for random strings, a reference written here straight from the
rules in the C source -- regular expressions on bytes, a different shape from
the byte loop of :mod:`zsmalloc.kparse` -- that must give the same value or
the same errno.
"""

from __future__ import annotations

import errno
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from zsmalloc.errors import SysfsError
from zsmalloc.kparse import (
    kstrtobool,
    kstrtoint,
    kstrtoll,
    kstrtou8,
    kstrtou16,
    kstrtouint,
    kstrtoull,
    memparse,
    next_args,
    param_set_bool,
    param_set_uint,
    strstrip,
    sysfs_streq,
)

U64_MAX = (1 << 64) - 1


# -- the reference: the rules of lib/kstrtox.c, written as plainly as possible ---------------
def c_bytes(text: str) -> bytes:
    """What the kernel reads: UTF-8 up to the first NUL."""
    return text.encode("utf-8", "surrogateescape").split(b"\0")[0]


DIGITS = {8: rb"[0-7]", 10: rb"[0-9]", 16: rb"[0-9a-fA-F]"}


def ref_unsigned(s: bytes, base: int) -> int:
    """Value, or -errno: radix detection, a digit run, one optional newline, the end."""
    if base == 0:
        if re.match(rb"0[xX][0-9a-fA-F]", s):
            base, s = 16, s[2:]
        else:
            base = 8 if s.startswith(b"0") else 10
    elif base == 16 and re.match(rb"0[xX]", s):
        s = s[2:]
    run = re.match(DIGITS[base] + rb"*", s).group(0)  # type: ignore[union-attr]
    if run and int(run, base) > U64_MAX:  # overflow is seen before the tail
        return -errno.ERANGE
    if not run or s[len(run) :] not in (b"", b"\n"):
        return -errno.EINVAL
    return int(run, base)


def ref_kstrtoull(text: str, base: int) -> int:
    s = c_bytes(text)
    return ref_unsigned(s[1:] if s.startswith(b"+") else s, base)


def outcome(fn, *args, **kwargs) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    try:
        return "ok", fn(*args, **kwargs)
    except SysfsError as exc:
        return "err", exc.errno


def ref_outcome_unsigned(text: str, base: int, hi: int) -> tuple[str, object]:
    v = ref_kstrtoull(text, base)
    if v < 0:
        return "err", -v
    return ("ok", v) if v <= hi else ("err", errno.ERANGE)


def ref_outcome_signed(text: str, base: int, lo: int, hi: int) -> tuple[str, object]:
    s = c_bytes(text)
    if s.startswith(b"-"):
        v = ref_unsigned(s[1:], base)
        if v < 0:
            return "err", -v
        if v > 1 << 63:
            return "err", errno.ERANGE
        v = -v
    else:
        v = ref_unsigned(s[1:] if s.startswith(b"+") else s, base)
        if v < 0:
            return "err", -v
        if v > (1 << 63) - 1:
            return "err", errno.ERANGE
    return ("ok", v) if lo <= v <= hi else ("err", errno.ERANGE)


# Strings that stay near the edges: digits of every base, prefixes, signs,
# blanks, newlines, NULs, '_' separators and non-ASCII digits.
ALPHABET = "0123456789abcdefABCDEFxXgG+-_ \n\t\0٣²"
near = st.text(alphabet=ALPHABET, max_size=24)
numbers = st.integers(0, (1 << 70)).flatmap(
    lambda n: st.sampled_from([str(n), f"0x{n:x}", f"0{n:o}", f"0X{n:X}", f"+{n}", f"-{n}"])
)
texts = st.one_of(near, numbers, numbers.map(lambda s: s + "\n"), st.text(max_size=12))
bases = st.sampled_from([0, 8, 10, 16])


@given(text=texts, base=bases)
@example(text="99999999999999999999999x", base=0)  # ERANGE, measured live
@example(text="0x", base=16)
def test_kstrtoull_follows_the_rules(text: str, base: int) -> None:
    assert outcome(kstrtoull, text, base) == ref_outcome_unsigned(text, base, U64_MAX)


@given(text=texts, base=bases)
def test_narrow_unsigned_types(text: str, base: int) -> None:
    for fn, hi in ((kstrtouint, (1 << 32) - 1), (kstrtou16, 0xFFFF), (kstrtou8, 0xFF)):
        assert outcome(fn, text, base) == ref_outcome_unsigned(text, base, hi), fn.__name__


@given(text=texts, base=bases)
@example(text="-9223372036854775808", base=10)
@example(text="-9223372036854775809", base=10)
def test_signed_types(text: str, base: int) -> None:
    assert outcome(kstrtoll, text, base) == ref_outcome_signed(
        text, base, -(1 << 63), (1 << 63) - 1
    )
    assert outcome(kstrtoint, text, base) == ref_outcome_signed(
        text, base, -(1 << 31), (1 << 31) - 1
    )


def ref_kstrtobool(text: str) -> bool | None:
    s = c_bytes(text)
    if s[:1] in (b"y", b"Y", b"1") or s[:2].lower() == b"on":
        return True
    if s[:1] in (b"n", b"N", b"0") or s[:2].lower() == b"of":
        return False
    return None


@given(text=st.one_of(texts, st.text(alphabet="yYnN01oOfF \n", max_size=4)))
def test_kstrtobool_reads_one_or_two_bytes(text: str) -> None:
    want = ref_kstrtobool(text)
    assert outcome(kstrtobool, text) == (("ok", want) if want is not None else ("err", 22))


def ref_memparse(text: str) -> tuple[int, int]:
    s = c_bytes(text)
    m = re.match(rb"0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*)", s)
    value, end = 0, 0
    if m is not None:
        hexa, octal, dec = m.groups()
        value = int(hexa, 16) if hexa else int(octal, 8) if octal else int(dec)
        end = m.end()
    # The suffix is read even after no digit at all: "K" is 0, one byte consumed.
    shifts = dict(zip(b"kmgtpe", (10, 20, 30, 40, 50, 60), strict=True))
    if end < len(s) and s[end] | 0x20 in shifts:
        value <<= shifts[s[end] | 0x20]
        end += 1
    return value & U64_MAX, end


@given(
    text=st.one_of(
        texts,
        (numbers | near).flatmap(
            lambda s: st.sampled_from([s + "k", s + "M", s + "E\n", s + "g5"])
        ),
    )
)
def test_memparse_follows_the_rules(text: str) -> None:
    assert memparse(text) == ref_memparse(text)


@given(a=st.text(alphabet="al \n\0", max_size=6), b=st.text(alphabet="al \n\0", max_size=6))
def test_sysfs_streq(a: str, b: str) -> None:
    x, y = c_bytes(a), c_bytes(b)
    assert sysfs_streq(a, b) == (x == y or x == y + b"\n" or y == x + b"\n")


# -- lib/test-kstrtox.c ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "base", "value"),
    [
        ("0", 10, 0),
        ("18446744073709551615", 10, U64_MAX),
        ("0177", 8, 0o177),
        ("01777777777777777777777", 8, U64_MAX),
        ("0x7f", 16, 0x7F),
        ("0xffffffffffffffff", 16, U64_MAX),
        ("0\n", 0, 0),
        ("010", 0, 8),  # base 0: a leading 0 is octal
        ("1\n", 0, 1),
        ("+12", 10, 12),
    ],
)
def test_kstrtoull_ok_cases(text: str, base: int, value: int) -> None:
    assert kstrtoull(text, base) == value


@pytest.mark.parametrize(
    ("text", "base"),
    [
        ("", 0), ("\n", 10), ("\n0", 8), ("+", 0), ("-", 16), ("0x", 0), ("0X", 16),
        ("0 ", 0), ("1+", 0), ("1-", 0), (" 2", 0), ("0x0z", 0), ("0z", 0), ("a", 0),
        ("2", 2), ("8", 8), ("a", 10), ("A", 10), ("g", 16), ("G", 16),
        ("2000000000000000000000", 8), ("18446744073709551616", 10),
        ("569202370375329612767", 10), ("10000000000000000", 16),
        ("-0", 0), ("-1", 10), ("-+1", 16), ("0\n0", 0), ("0\n+", 8), ("0\n-", 10),
        ("0\n ", 16),
        # and the cases Python's int() would accept
        ("1_0", 0), (" 1", 0), ("1\n\n", 0), ("١", 10), ("1 ", 10),
    ],
)  # fmt: skip
def test_kstrtoull_fail_cases(text: str, base: int) -> None:
    with pytest.raises(SysfsError) as exc:
        kstrtoull(text, base, attr="reset")
    assert exc.value.errno in (errno.EINVAL, errno.ERANGE)
    assert str(exc.value).startswith("reset <- ")


def test_kstrtoll_cases() -> None:
    assert kstrtoll("-9223372036854775808", 10) == -(1 << 63)
    assert kstrtoll("-0", 10) == 0
    for bad in ("9223372036854775808", "-9223372036854775809", "-18446744073709551615", "-+1"):
        with pytest.raises(SysfsError):
            kstrtoll(bad, 10)
    assert kstrtoint("-2147483648", 10) == -(1 << 31)
    with pytest.raises(SysfsError) as exc:
        kstrtoint("2147483648", 10)
    assert exc.value.errno == errno.ERANGE


def test_overflow_is_range_even_with_garbage_after() -> None:
    with pytest.raises(SysfsError) as exc:
        kstrtoull("99999999999999999999999x", 0)
    assert exc.value.errno == errno.ERANGE


def test_param_setters() -> None:
    assert param_set_uint("010") == 8 and param_set_uint("0x10") == 16
    assert param_set_uint("4294967295\n") == (1 << 32) - 1
    with pytest.raises(SysfsError) as exc:
        param_set_uint("4294967296")
    assert exc.value.errno == errno.ERANGE
    for text, want in [("Y", True), ("yes", True), ("on\n", True), ("0x5", False), ("Of", False)]:
        assert param_set_bool(text) is want
    for bad in ("o", "", " y", "x", None):
        with pytest.raises(SysfsError) as exc:
            param_set_bool(bad)  # type: ignore[arg-type]
        assert exc.value.errno == errno.EINVAL


def test_memparse_reads_a_suffix_without_digits() -> None:
    """Measured on 6.18.44: mem_limit takes "K" and "0xk" (limit 0), refuses "x"."""
    assert memparse("K") == (0, 1)
    assert memparse("0xk") == (0, 1)  # "0" in octal; "x" is no suffix: endptr stays there
    assert memparse("x") == (0, 0)


def test_c_strings_end_at_nul() -> None:
    assert kstrtoull("5\0abc", 0) == 5
    with pytest.raises(SysfsError):
        kstrtoull("\x007", 0)
    assert memparse("4k\0g") == (4096, 2)


def test_next_args_mirrors_next_arg() -> None:
    assert next_args("  algo=lz4 level=3\n") == [("algo", "lz4"), ("level", "3")]
    assert next_args("priority") == [("priority", None)]
    assert next_args("level=") == [("level", "")]
    assert next_args('dict="/a b/c" x') == [("dict", "/a b/c"), ("x", None)]
    assert next_args('"a=b c"') == [("a", "b c")]
    assert next_args("=5 a=b=c") == [("=5", None), ("a", "b=c")]  # equals == 0: no value
    assert next_args("=a=b") == [("=a", "b")]
    assert next_args('k="v') == [("k", "v")]  # an opening quote only: dropped
    # lib/ctype.c counts byte 0xA0 as a blank (so U+00A0, C2 A0 in UTF-8, splits after C2)
    assert next_args(b"a\tb\xa0c") == [("a", None), ("b", None), ("c", None)]
    assert next_args("b\u00a0c") == [("b\udcc2", None), ("c", None)]


def test_strstrip() -> None:
    assert strstrip("  lz4 \n") == "lz4"
    assert strstrip("lz 4") == "lz 4"
    assert strstrip("\n") == ""
