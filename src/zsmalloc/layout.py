"""C struct layouts as data: one declaration gives the numpy dtype and the offset checks.

The kernel overlays ``struct zpdesc`` on ``struct page`` and keeps the overlay honest
with ``static_assert``s (the ZPDESC_MATCH macro in mm/zpdesc.h).  We do the same in
data: a :class:`Layout` is an ordered table of (name, C type, numpy type, offset,
meaning).  From it we derive a numpy structured dtype with *explicit* offsets and
itemsize (never automatic ones, so padding and unions are exactly as declared), and an
overlay is a second :class:`Layout` whose fields name the field of the base layout they
alias.  :func:`check_overlay` compares every alias offset and size and raises
:class:`~zsmalloc.errors.LayoutError`; modules call it at import, which is our
``static_assert``: a layout edit that breaks an alias stops the package from loading.

Fields may overlap (a C union): ``next`` and ``handle`` of ``struct zpdesc`` both sit at
offset 32.  numpy allows overlapping fields in a dtype built from the dict form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zsmalloc.errors import LayoutError


@dataclass(frozen=True)
class Field:
    """One member of a C struct: where it is, how wide, and what it means here."""

    name: str
    ctype: str  # the C declaration's type, for pahole-style output
    nptype: str  # numpy type string, fixes the size ("u8", "i4", "V16" ...)
    offset: int
    doc: str = ""
    alias: str | None = None  # overlays only: the base layout's field this one aliases

    @property
    def size(self) -> int:
        """Bytes occupied by the member."""
        return np.dtype(self.nptype).itemsize


@dataclass(frozen=True)
class Layout:
    """A C struct declared as data; ``dtype`` is derived, with explicit offsets."""

    name: str
    size: int  # sizeof(struct ...)
    fields: tuple[Field, ...]
    base: Layout | None = None  # for an overlay: the struct it is laid over
    doc: str = ""
    _dtype: np.dtype = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        itemsize = self.base.size if self.base is not None else self.size
        for f in self.fields:
            if f.offset < 0 or f.offset + f.size > itemsize:
                raise LayoutError(
                    f"{self.name}.{f.name}: expected inside 0..{itemsize}, "
                    f"found bytes {f.offset}..{f.offset + f.size}"
                )
        dt = np.dtype(
            {
                "names": [f.name for f in self.fields],
                "formats": [f.nptype for f in self.fields],
                "offsets": [f.offset for f in self.fields],
                "itemsize": itemsize,
            }
        )
        object.__setattr__(self, "_dtype", dt)

    @property
    def dtype(self) -> np.dtype:
        """The numpy structured dtype: records of the base struct's size, fields as declared."""
        return self._dtype

    def field(self, name: str) -> Field:
        """The declared member ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no member {name!r}")

    def end(self) -> int:
        """One past the last byte any member covers (the overlay's effective sizeof)."""
        return max(f.offset + f.size for f in self.fields)


def check_struct(layout: Layout) -> None:
    """Check a layout against its own declaration and its derived dtype.

    Every member must lie inside ``sizeof``; ``dtype.fields`` must report the declared
    offset and size (catching a dtype built with automatic offsets).
    """
    for f in layout.fields:
        if f.offset < 0 or f.offset + f.size > layout.size:
            raise LayoutError(
                f"{layout.name}.{f.name}: expected inside 0..{layout.size}, "
                f"found bytes {f.offset}..{f.offset + f.size}"
            )
        fields: Mapping[str, tuple[Any, ...]] = layout.dtype.fields or {}
        if f.name not in fields:
            raise LayoutError(f"{layout.name}.{f.name}: missing from the dtype")
        dt, off = fields[f.name][:2]
        if off != f.offset or dt.itemsize != f.size:
            raise LayoutError(
                f"{layout.name}.{f.name}: expected offset {f.offset} size {f.size}, "
                f"dtype has offset {off} size {dt.itemsize}"
            )


def check_overlay(overlay: Layout, forbidden: tuple[str, ...] = ()) -> None:
    """ZPDESC_MATCH for every aliased member, then ``sizeof(overlay) <= sizeof(base)``.

    ``forbidden`` names base members the overlay must never reach into (zpdesc must not
    grow into ``memcg_data``).  Raises LayoutError naming the first broken alias.
    """
    base = overlay.base
    if base is None:
        raise LayoutError(f"{overlay.name} is not an overlay")
    check_struct(base)
    check_struct(overlay)
    for f in overlay.fields:
        if f.alias is None:
            continue
        try:
            b = base.field(f.alias)
        except KeyError as exc:
            raise LayoutError(
                f"{overlay.name}.{f.name} aliases unknown {base.name}.{f.alias}"
            ) from exc
        if (f.offset, f.size) != (b.offset, b.size):
            raise LayoutError(
                f"{overlay.name}.{f.name} must match {base.name}.{b.name}: expected offset "
                f"{b.offset} size {b.size}, found offset {f.offset} size {f.size}"
            )
    if overlay.size > base.size:
        raise LayoutError(
            f"sizeof({overlay.name}) = {overlay.size} exceeds sizeof({base.name}) = {base.size}"
        )
    if overlay.end() > overlay.size:
        raise LayoutError(
            f"{overlay.name} members reach byte {overlay.end()}, beyond its sizeof {overlay.size}"
        )
    for name in forbidden:
        b = base.field(name)
        if overlay.end() > b.offset:
            raise LayoutError(
                f"{overlay.name} must end before {base.name}.{name} at offset {b.offset}, "
                f"found members up to byte {overlay.end()}"
            )
