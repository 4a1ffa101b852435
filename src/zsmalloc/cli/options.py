"""Options several commands share: which kernel the model follows, and class-table variants.

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
from zsmalloc.profile import CHAIN_RULES, VERSIONS, kernel_version


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


def class_delta_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--class-delta N``: ZS_SIZE_CLASS_DELTA of a class-table variant (default: the kernel's)."""
    return click.option(
        "--class-delta", "class_delta", type=int, default=None,
        help="Step between class sizes in bytes, a multiple of 8 (default: the kernel's, "
        "PAGE_SIZE >> 8; the RFC proposes 16 on every page size).",
    )


def chain_rule_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--chain-rule RULE``: how pages per zspage are chosen (default: the kernel's)."""
    return click.option(
        "--chain-rule", "chain_rule", type=click.Choice(CHAIN_RULES), default=None,
        help="least-waste (the kernel's since 6.3), waste-threshold (the RFC's: a longer "
        "chain only for a large saving) or usedpc (6.1's); default: the kernel's.",
    )


def variant_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Both class-table variant options (:func:`class_delta_option`, :func:`chain_rule_option`)."""
    return class_delta_option()(chain_rule_option()(f))
