"""Options several commands share: which kernel the model follows.

``--kernel VERSION`` takes a profile row (``6.1``, ``6.6``, ``6.12``, ``6.18``, ``7.2``,
``7.3``) or any release naming one (``6.1.0-57-amd64``, ``uname -r`` of a machine); a
release without a row of its own takes the newest older row
(:func:`zsmalloc.profile.kernel_version`).  The value given to the command is the row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from zsmalloc.errors import UnknownKernelError
from zsmalloc.profile import VERSIONS, kernel_version


class KernelVersion(click.ParamType):
    """A kernel version or release, converted to its profile row."""

    name = "VERSION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return kernel_version(str(value))
        except UnknownKernelError as exc:
            self.fail(f"{exc} (rows: {', '.join(VERSIONS)})", param, ctx)


KERNEL = KernelVersion()


def kernel_option(
    default: str | None = "6.18", help: str = "Kernel whose rules the model follows."
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--kernel VERSION`` (a row or a release; see the module docstring)."""
    extra = f" Rows: {', '.join(VERSIONS)}; a release such as 6.1.0-57-amd64 works too."
    return click.option(
        "--kernel", "kernel", type=KERNEL, default=default, show_default=default is not None,
        help=help + extra,
    )
