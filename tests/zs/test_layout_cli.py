"""``zsmalloc layout``: both structs with the spec's offsets (§9.1), text and JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from zsmalloc.cli.layout import layout


def test_layout_text() -> None:
    result = CliRunner().invoke(layout, [])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["/*", "offset", "size", "*/", "struct", "page", "{",
                                "struct", "zpdesc", "{"]
    expected = {  # offset: (size, page member, zpdesc member(s)) from spec §9.1
        0: (8, "flags;", "flags;"),
        8: (16, "lru;", "lru;"),
        24: (8, "*mapping;", "movable_ops;"),
        32: (8, "__folio_index;", "*next;"),
        40: (8, "private;", "*zspage;"),
        48: (4, "page_type;", "first_obj_offset;"),
        52: (4, "_refcount;", "_refcount;"),
        56: (8, "memcg_data;", "overlaid"),
    }
    rows = lines[1:9]
    for row, (offset, (size, page_name, zp_name)) in zip(rows, expected.items(), strict=True):
        words = row.split()
        assert words[1:3] == [str(offset), str(size)]
        assert page_name in words and zp_name in words
    assert "handle;" in rows[3]  # the union with next
    assert "size: 64" in lines[9] and "size: 56" in lines[9]


def test_layout_json() -> None:
    result = CliRunner().invoke(layout, ["--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    page = {f["name"]: (f["offset"], f["size"]) for f in data["struct page"]["fields"]}
    zp = {f["name"]: (f["offset"], f["size"], f["aliases"])
          for f in data["struct zpdesc"]["fields"]}
    assert data["struct page"]["size"] == 64 and data["struct zpdesc"]["size"] == 56
    assert page["memcg_data"] == (56, 8)
    assert zp["next"] == zp["handle"] == (32, 8, "__folio_index")
    assert zp["first_obj_offset"] == (48, 4, "page_type")
    assert zp["zspage"] == (40, 8, "private")


def test_layout_through_the_main_command() -> None:
    from zsmalloc.cli.main import cli

    result = CliRunner().invoke(cli, ["layout"])
    assert result.exit_code == 0
    assert "struct zpdesc {" in result.output and "memcg_data" in result.output
