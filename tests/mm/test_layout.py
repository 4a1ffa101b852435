"""struct page / struct zpdesc layouts (spec §9.1) and the import-time alias checks."""

from __future__ import annotations

import dataclasses

import pytest

from zsmalloc.errors import LayoutError
from zsmalloc.layout import Field, Layout, check_struct
from zsmalloc.mm.page import PAGE_DTYPE, STRUCT_PAGE
from zsmalloc.mm.zpdesc import STRUCT_ZPDESC, ZPDESC_DTYPE, check_zpdesc_layout

# (offset, size) per spec §9.1, x86_64 6.18
SPEC_PAGE = {
    "flags": (0, 8),
    "lru": (8, 16),
    "mapping": (24, 8),
    "__folio_index": (32, 8),
    "private": (40, 8),
    "page_type": (48, 4),
    "_refcount": (52, 4),
    "memcg_data": (56, 8),
}
SPEC_ZPDESC = {
    "flags": (0, 8),
    "lru": (8, 16),
    "movable_ops": (24, 8),
    "next": (32, 8),
    "handle": (32, 8),
    "zspage": (40, 8),
    "first_obj_offset": (48, 4),
    "_refcount": (52, 4),
}


def test_struct_page_matches_spec() -> None:
    assert PAGE_DTYPE.itemsize == 64
    got = {name: (PAGE_DTYPE.fields[name][1], PAGE_DTYPE.fields[name][0].itemsize)
           for name in PAGE_DTYPE.names}
    assert got == SPEC_PAGE


def test_struct_zpdesc_matches_spec() -> None:
    assert STRUCT_ZPDESC.size == 56
    assert ZPDESC_DTYPE.itemsize == 64  # a view over the same 64-byte records
    got = {name: (ZPDESC_DTYPE.fields[name][1], ZPDESC_DTYPE.fields[name][0].itemsize)
           for name in ZPDESC_DTYPE.names}
    assert got == SPEC_ZPDESC
    assert STRUCT_ZPDESC.end() <= STRUCT_PAGE.field("memcg_data").offset


def _with_field(layout: Layout, name: str, **changes: object) -> Layout:
    fields = tuple(dataclasses.replace(f, **changes) if f.name == name else f
                   for f in layout.fields)
    return dataclasses.replace(layout, fields=fields)


def test_current_layout_passes() -> None:
    check_zpdesc_layout(STRUCT_ZPDESC)


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("handle", {"offset": 40}, "handle must match struct page.__folio_index"),
        ("zspage", {"nptype": "u4"}, "zspage must match struct page.private"),
        ("first_obj_offset", {"alias": "_refcount"}, "first_obj_offset must match"),
        ("next", {"alias": "index"}, "aliases unknown struct page.index"),
    ],
)
def test_broken_alias_raises(name: str, changes: dict[str, object], message: str) -> None:
    broken = _with_field(STRUCT_ZPDESC, name, **changes)
    with pytest.raises(LayoutError, match=message):
        check_zpdesc_layout(broken)


def test_zpdesc_growing_into_memcg_data_raises() -> None:
    grown = dataclasses.replace(
        STRUCT_ZPDESC,
        size=64,
        fields=(*STRUCT_ZPDESC.fields, Field("extra", "unsigned long", "u8", 56, "", None)),
    )
    with pytest.raises(LayoutError, match="memcg_data"):
        check_zpdesc_layout(grown)


def test_zpdesc_larger_than_page_raises() -> None:
    with pytest.raises(LayoutError, match="exceeds sizeof"):
        check_zpdesc_layout(dataclasses.replace(STRUCT_ZPDESC, size=72))


def test_member_outside_struct_raises() -> None:
    with pytest.raises(LayoutError, match="memcg_data"):
        check_struct(_with_field(STRUCT_PAGE, "memcg_data", offset=60))
