"""The exception tree.

Every failure a user can cause derives from :class:`ZsmallocError` and carries a
message that says what was expected, what was found and where (construct's
style), plus ``errno`` where the kernel reports one.  Operations validate before
they mutate, so an error leaves every structure as it was.  The CLI prints a
``ZsmallocError`` as one line and exits 2; anything else escaping is a bug.

``LayoutError`` and ``InvariantError`` are not user errors: they mean this
package is wrong (a struct layout edit broke an alias, a validator found a
corrupt list) and must never be caught to carry on.
"""

from __future__ import annotations

import errno as _errno


class ZsmallocError(Exception):
    """Root of every user-facing failure."""

    errno: int | None = None

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        if errno is not None:
            self.errno = errno


class InvalidSizeError(ZsmallocError, ValueError):
    """zs_malloc size 0 (EINVAL) or above ZS_MAX_ALLOC_SIZE (ENOSPC), or a bad length."""

    errno = _errno.EINVAL


class OutOfMemoryError(ZsmallocError, MemoryError):
    """mem_limit, the zswap pool limit or the arena is exhausted (ENOMEM)."""

    errno = _errno.ENOMEM


class InvalidTypeError(ZsmallocError, TypeError):
    """An argument of the wrong type: a float or str where an integer is expected, a str
    where bytes are."""

    errno = _errno.EINVAL


class BadHandleError(ZsmallocError, KeyError):
    """A freed, foreign or never-allocated handle."""

    errno = _errno.EINVAL

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownAlgorithmError(ZsmallocError, ValueError):
    """A compressor name this kernel (or this package) does not know."""

    errno = _errno.EINVAL


class UnknownKernelError(ZsmallocError, ValueError):
    """A kernel version with no profile (older than 6.1, or not a version at all)."""

    errno = _errno.EINVAL


class UnknownVariantError(ZsmallocError, ValueError):
    """A class-table variant the model does not know (a chain rule, a --vary name)."""

    errno = _errno.EINVAL


class CompressionError(ZsmallocError, ValueError):
    """A corrupt compressed stream, or data the compressor cannot take."""

    errno = _errno.EINVAL


class SysfsError(ZsmallocError, OSError):
    """An attribute write the kernel would refuse, with its errno."""

    def __str__(self) -> str:  # OSError would prepend "[Errno n]" oddly
        return str(self.args[0]) if self.args else ""


class InputError(ZsmallocError, ValueError):
    """Unreadable file or pid, corrupt trace line: carries path and line."""

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.detail = message  # the message without "path:line: "


class KernelUnavailableError(ZsmallocError):
    """Live checks: no root, no zram, no debugfs (tests skip on it)."""


class ClusterError(ZsmallocError):
    """A Dask cluster that cannot be reached, or work it failed even after retries."""


class LayoutError(ImportError):
    """A struct offset declared here disagrees with the kernel's: a bug."""


class InvariantError(AssertionError):
    """A debug validator found a broken invariant: a bug."""
