"""``zsmalloc layout``: ``struct page`` and ``struct zpdesc`` side by side, pahole style.

The rows come from the same :class:`~zsmalloc.layout.Layout` declarations the arena's
numpy dtypes are built from (and checked against at import), so what this prints is
what the allocator uses.
"""

from __future__ import annotations

import json

import click

from zsmalloc.layout import Layout
from zsmalloc.mm.page import STRUCT_PAGE
from zsmalloc.mm.zpdesc import STRUCT_ZPDESC


def layout_dict(layout: Layout) -> dict[str, object]:
    """A layout as JSON-ready data."""
    return {
        "name": layout.name,
        "size": layout.size,
        "fields": [
            {
                "name": f.name,
                "ctype": f.ctype,
                "offset": f.offset,
                "size": f.size,
                **({"aliases": f.alias} if f.alias else {}),
                "doc": f.doc,
            }
            for f in layout.fields
        ],
    }


def _decl(ctype: str, name: str) -> str:
    sep = "" if ctype.endswith("*") else " "
    return f"{ctype}{sep}{name};"


def layout_text(page: Layout = STRUCT_PAGE, zpdesc: Layout = STRUCT_ZPDESC) -> str:
    """Both structs, one row per offset, pahole's ``/* offset size */`` comments."""
    width = 40
    out = [f"{'/* offset  size */':<19}{page.name + ' {':<{width}}{zpdesc.name + ' {'}"]
    for pf in page.fields:
        overlays = [f for f in zpdesc.fields if f.alias == pf.name]
        left = "\t" + _decl(pf.ctype, pf.name)
        if not overlays:
            right = "/* not overlaid */"
        elif len(overlays) == 1:
            right = _decl(overlays[0].ctype, overlays[0].name)
        else:
            right = "union { " + " ".join(_decl(f.ctype, f.name) for f in overlays) + " };"
        out.append(f"/* {pf.offset:6d} {pf.size:5d} */ {left.expandtabs(4):<{width}}{right}")
    page_size = f"/* size: {page.size}, members: {len(page.fields)} */"
    out.append(
        f"{'':19}{page_size:<{width}}/* size: {zpdesc.size}, members: {len(zpdesc.fields)} */"
    )
    out.append(f"{'':19}{'};':<{width}}}};")
    return "\n".join(out) + "\n"


@click.command("layout")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def layout(as_json: bool) -> None:
    """struct page and struct zpdesc side by side, pahole style."""
    if as_json:
        data = {
            "struct page": layout_dict(STRUCT_PAGE),
            "struct zpdesc": layout_dict(STRUCT_ZPDESC),
        }
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(layout_text(), nl=False)
