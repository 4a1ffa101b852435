"""The class table against the spec's appendices, which were checked against the kernel.

Appendix A (6.18, chain 8) and Appendix B (6.1) of shared/spec/zsmalloc.md list every
real class; the expected values are parsed from there, never produced by this code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zsmalloc.errors import InvalidSizeError
from zsmalloc.profile import MAX_CHAIN_SIZE, MIN_CHAIN_SIZE, KernelProfile
from zsmalloc.testing.shared import testdata_dir as find_testdata
from zsmalloc.zs.size_class import chain_size_for, class_table

ROW = re.compile(
    r"^\| (\d+) \| (\d+) \| (\d+)(?:-(\d+))? \| (\d+)-(\d+) \| (\d+) \| (\d+) \| (\d+) \|$"
)


def appendix_rows(title: str) -> list[tuple[int, ...]]:
    d = find_testdata() or Path(__file__).parents[1] / "data"  # installed package: ours
    assert d.is_dir(), "tests/data is part of the repository"
    text = (d / "spec" / "zsmalloc.md").read_text()
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        m = ROW.match(line.strip())
        if m:
            g = [int(x) if x is not None else None for x in m.groups()]
            idx, size, lo, hi, ulo, uhi, ppz, objs, waste = g
            rows.append((idx, size, lo, hi if hi is not None else lo, ulo, uhi, ppz, objs, waste))
    return rows


@pytest.mark.parametrize(
    ("title", "version", "nr_real", "huge"),
    [("Appendix A", "6.18", 119, 3625), ("Appendix B", "6.1", 69, 3257)],
)
def test_table_matches_spec_appendix(title: str, version: str, nr_real: int, huge: int) -> None:
    rows = appendix_rows(title)
    assert len(rows) == nr_real
    t = class_table(KernelProfile(version=version, page_size=4096, chain_size=8))
    assert t.nr_size_classes == 255
    assert t.huge_class_size == huge
    assert list(t.real_indices) == [r[0] for r in rows]
    for idx, size, lo, hi, ulo, uhi, ppz, objs, waste in rows:
        assert t.size[idx] == size
        assert t.merged_range(idx) == (lo, hi)
        assert t.user_size_range(idx) == (ulo, uhi)
        assert (t.pages_per_zspage[idx], t.objs_per_zspage[idx]) == (ppz, objs)
        assert t.waste(idx) == waste


@pytest.mark.parametrize(
    ("chain", "nr_real", "largest_normal"),
    # Spec §2.2: 119 classes at chain 8 and 192 at chain 16; watermarks 3632 and 3840.
    [(8, 119, 3632), (16, 192, 3840)],
)
def test_other_chain_sizes(chain: int, nr_real: int, largest_normal: int) -> None:
    t = class_table(KernelProfile(page_size=4096, chain_size=chain))
    assert len(t.real_indices) == nr_real
    assert t.huge_class_size == largest_normal - 7


def test_chain_4_matches_spec_huge_threshold() -> None:
    # zram.md §2.4: with 4-page zspages the threshold is 3264 - 7.
    assert class_table(KernelProfile(page_size=4096, chain_size=4)).huge_class_size == 3257


def test_208_differs_between_rules() -> None:
    # zsmalloc.md §2.1: size 208 takes 2 pages under 6.1's usedpc rule, 3 at chain 4 min-waste.
    assert chain_size_for(208, 4096, 4) == 3
    t61 = class_table(KernelProfile(version="6.1"))
    assert t61.pages_per_zspage[t61.get_size_class_index(208)] == 2


def test_request_to_class() -> None:
    t = class_table()
    # Spec §2.3: 1..24 -> class 0, 25..40 -> 1, 3625..4096 -> 254 (huge).
    assert [t.class_index_for_malloc(s) for s in (1, 24, 25, 40, 41)] == [0, 0, 1, 1, 2]
    assert t.class_index_for_malloc(3624) == 225
    assert t.class_index_for_malloc(3625) == 254
    assert t.class_index_for_malloc(4096) == 254
    # Worked example §11: 3000 -> merged class 190.
    assert t.class_index_for_malloc(3000) == 190
    # zs_lookup_class_index adds no header.
    assert t.lookup_class_index(3624) == 225 and t.lookup_class_index(3633) == 254


def test_bad_sizes() -> None:
    t = class_table()
    with pytest.raises(InvalidSizeError, match="at least 1"):
        t.class_index_for_malloc(0)
    with pytest.raises(InvalidSizeError, match="4096") as e:
        t.class_index_for_malloc(4097)
    assert e.value.errno == 28  # ENOSPC since 6.12
    with pytest.raises(InvalidSizeError, match="chain size"):
        class_table(KernelProfile(chain_size=17))
    for below in (0, 1, 3):  # mm/Kconfig: ZSMALLOC_CHAIN_SIZE "range 4 16"
        with pytest.raises(InvalidSizeError, match=r"chain size must be 4\.\.16 pages"):
            KernelProfile(chain_size=below)
    with pytest.raises(InvalidSizeError, match="page size"):
        class_table(KernelProfile(page_size=8192, chain_size=8))


@pytest.mark.parametrize("page_size", [4096, 16384, 65536])
@given(chain=st.integers(MIN_CHAIN_SIZE, MAX_CHAIN_SIZE))
def test_invariants(page_size: int, chain: int) -> None:
    t = class_table(KernelProfile(page_size=page_size, chain_size=chain))
    real = t.real_indices
    # Classes are 8-aligned, strictly increasing, and merged runs point upward.
    assert all(t.size[i] % 8 == 0 for i in real)
    assert list(t.size[real]) == sorted(set(t.size[real]))
    assert all(t.index[i] >= i and t.index[t.index[i]] == t.index[i] for i in range(len(t.size)))
    # Every slot size fits; chains never exceed the configured length.
    assert (t.pages_per_zspage <= chain).all()
    assert (t.objs_per_zspage * t.size <= t.pages_per_zspage * page_size).all()
    # Only the top class is huge, and everything >= huge_class_size lands there.
    assert t.huge[-1] and t.index[-1] == len(t.size) - 1
    assert t.class_index_for_malloc(t.huge_class_size) == len(t.size) - 1
    assert not t.huge[t.class_index_for_malloc(t.huge_class_size - 1)]


@pytest.mark.parametrize(
    ("args", "title", "nr_real", "huge"),
    [
        ([], "Appendix A", 119, 3625),
        (["--kernel", "6.1"], "Appendix B", 69, 3257),
        (["--kernel", "6.1.0-57-amd64", "--chain", "16"], "Appendix B", 69, 3257),  # 6.1: no chain
    ],
)
def test_cli_json_matches_appendix(args: list[str], title: str, nr_real: int, huge: int) -> None:
    import json

    from click.testing import CliRunner

    from zsmalloc.cli.classes import classes

    out = CliRunner().invoke(classes, ["--json", *args])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["nr_classes"] == nr_real and doc["huge_class_size"] == huge
    got = [
        (c["index"], c["size"], *c["merged"], *c["user_sizes"], c["pages_per_zspage"],
         c["objs_per_zspage"], c["waste"])
        for c in doc["classes"]
    ]
    assert got == appendix_rows(title)
    assert [c["index"] for c in doc["classes"] if c["huge"]] == [254]


def test_cli_table_text() -> None:
    from click.testing import CliRunner

    from zsmalloc.cli.classes import classes

    out = CliRunner().invoke(classes, ["--chain", "16"], terminal_width=120)
    assert out.exit_code == 0
    assert out.output.rstrip().endswith("huge_class_size 3833")
    assert "192 classes" in out.output
