"""Argument checks shared by the Python API: integers and byte buffers, one rule each.

The numba layer trusts its arguments (a float reaching a compiled function is
truncated or crashes LLVM; a str has no buffer).  Every public entry point passes its
arguments through here first, so a wrong type is one :class:`~zsmalloc.errors.
InvalidTypeError` naming the argument, whatever the entry point:

* an integer argument (size, offset, handle, pfn) is an ``int`` or numpy integer;
  ``bool`` and ``float`` are refused, never truncated (``4096.0`` is not a size);
* data is any object with the buffer protocol, taken as its raw bytes in memory order
  (``np.full(4096, 300.7)`` is 32 KiB of float64 bytes, not 4096 values cast to
  bytes); ``str`` is refused, it has no bytes until it is encoded;
* a value for a sysfs-style attribute (``Zram.write_attr``, ``set_disksize``) is a
  ``str``, parsed as the kernel parses it, or an integer; a float is refused, never
  truncated by the parser (``1.5e9`` is not a size).
"""

from __future__ import annotations

import numpy as np

from zsmalloc.errors import InvalidTypeError


def as_int(value: object, what: str) -> int:
    """``value`` as a Python int, or InvalidTypeError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidTypeError(
            f"{what} must be an integer, found {value!r} ({type(value).__name__})"
        )
    return int(value)


def as_byte_array(data: object, what: str) -> np.ndarray:
    """The raw bytes of a buffer as a 1-D uint8 array (a view when it is contiguous)."""
    if isinstance(data, np.ndarray):
        if data.dtype.hasobject or data.dtype.kind == "U":
            raise InvalidTypeError(
                f"{what} must be bytes-like, found an array of {data.dtype} (objects or text)"
            )
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, str):
        raise InvalidTypeError(f"{what} must be bytes-like, found str (encode it first)")
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidTypeError(
            f"{what} must be bytes-like, found {type(data).__name__}"
        ) from None
    if not view.c_contiguous:
        return np.frombuffer(view.tobytes(), np.uint8)
    return np.frombuffer(view.cast("B"), np.uint8)


def as_sysfs_text(value: object, what: str) -> str:
    """A value written to a sysfs-style attribute: a ``str`` as it is, an integer in decimal.

    Anything else (a float, a bool, None, bytes) is refused rather than turned into
    text the kernel would then parse: ``str(1.5e9)`` would be read as 1500000000.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidTypeError(
            f"{what}: expected a string or an integer, found {value!r} ({type(value).__name__})"
        )
    return str(int(value))


def as_str(value: object, what: str) -> str:
    """``value`` if it is a ``str``, else InvalidTypeError naming ``what``."""
    if not isinstance(value, str):
        raise InvalidTypeError(f"{what} must be a string, found {value!r} ({type(value).__name__})")
    return value
