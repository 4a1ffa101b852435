"""The exception tree: user errors are ZsmallocErrors and the builtin they resemble."""

import errno

import pytest

from zsmalloc import errors


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.InvalidSizeError, ValueError),
        (errors.BadHandleError, KeyError),
        (errors.UnknownAlgorithmError, ValueError),
        (errors.UnknownVariantError, ValueError),
        (errors.SysfsError, OSError),
        (errors.InputError, ValueError),
        (errors.OutOfMemoryError, MemoryError),
    ],
)
def test_user_errors_are_zsmalloc_errors(cls: type, builtin: type) -> None:
    assert issubclass(cls, errors.ZsmallocError)
    assert issubclass(cls, builtin)


def test_messages_are_plain() -> None:
    assert str(errors.BadHandleError("handle 0x10 was freed")) == "handle 0x10 was freed"
    e = errors.InputError("bad op 'x'", path="t.trace", line=7)
    assert str(e) == "t.trace:7: bad op 'x'"
    assert errors.SysfsError("busy", errno=errno.EBUSY).errno == errno.EBUSY


def test_bugs_are_not_user_errors() -> None:
    assert not issubclass(errors.LayoutError, errors.ZsmallocError)
    assert not issubclass(errors.InvariantError, errors.ZsmallocError)
