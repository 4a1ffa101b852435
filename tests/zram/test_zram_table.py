"""The slot table's layout and records, the profile it follows, and the module layering."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import zsmalloc.zram
from zsmalloc import Pool
from zsmalloc.errors import InputError, ZsmallocError
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile
from zsmalloc.zram.device import Zram
from zsmalloc.zram.replay import replay
from zsmalloc.zram.stats import MM_STAT_DTYPE, ZRAM_STATS_DTYPE, MmStat
from zsmalloc.zram.table import SLOT_LAYOUT_DTYPE, ZRAM_PAGEFLAGS, slot_layout
from zsmalloc.zram.trace import parse_trace
from zsmalloc.zs.size_class import class_table

ZRAM_DIR = Path(zsmalloc.zram.__file__).parent


def test_flag_bits_are_the_reference_kernels() -> None:
    """spec zram.md §0.2 (BTF of 6.18.44): ZRAM_SAME=13 ... ZRAM_COMP_PRIORITY_BIT1=20."""
    lay = slot_layout(DEFAULT_PROFILE)
    bits = {
        "ZRAM_SAME": 13,
        "ZRAM_ENTRY_LOCK": 14,
        "ZRAM_WB": 15,
        "ZRAM_PP_SLOT": 16,
        "ZRAM_HUGE": 17,
        "ZRAM_IDLE": 18,
        "ZRAM_INCOMPRESSIBLE": 19,
    }
    assert {name: getattr(lay, name).bit_length() - 1 for name in bits} == bits
    assert lay.ZRAM_FLAG_SHIFT == 13 and lay.ZRAM_SIZE_MASK == (1 << 13) - 1
    assert lay.ZRAM_COMP_PRIORITY_BIT1 == 20 and lay.ZRAM_COMP_PRIORITY_MASK == 3 << 20


@pytest.mark.parametrize("page_size", [16384, 65536])
def test_flag_bits_move_with_page_shift(page_size: int) -> None:
    """ZRAM_FLAG_SHIFT = PAGE_SHIFT + 1: a PAGE_SIZE object never reaches the flags."""
    lay = slot_layout(KernelProfile(page_size=page_size))
    assert page_size == lay.PAGE_SIZE <= lay.ZRAM_SIZE_MASK
    assert lay.ZRAM_SAME == 1 << lay.ZRAM_FLAG_SHIFT == 1 << (page_size.bit_length())
    flags = [getattr(lay, name) for name in ZRAM_PAGEFLAGS[:-2]] + [lay.ZRAM_COMP_PRIORITY_MASK]
    assert all(f & lay.ZRAM_SIZE_MASK == 0 for f in flags)
    assert len(set(flags)) == len(flags)  # one bit each, none shared
    # the record numba reads holds the same values
    assert lay.record()[0].item() == tuple(lay) and SLOT_LAYOUT_DTYPE.isalignedstruct


def test_stats_record_is_struct_zram_stats() -> None:
    """spec zram.md §0.2: the reference build's ten fields in BTF order; WRITEBACK adds
    bd_count, bd_reads, bd_writes after them.  limit_pages is not a statistic."""
    assert ZRAM_STATS_DTYPE.names == (
        "compr_data_size",
        "failed_reads",
        "failed_writes",
        "notify_free",
        "same_pages",
        "huge_pages",
        "huge_pages_since",
        "pages_stored",
        "max_used_pages",
        "miss_free",
        "bd_count",
        "bd_reads",
        "bd_writes",
    )
    # nine int64 columns at 0, 8, ... 64: a trace's (n, 9) rows view as records
    assert [MM_STAT_DTYPE.fields[n][1] for n in MmStat._fields] == list(range(0, 72, 8))


def test_huge_class_size_comes_from_the_profile() -> None:
    """3625 is 6.18's with chain 8 (spec §2.4); chain 16 moves it to 3833."""
    assert class_table(DEFAULT_PROFILE).huge_class_size == 3625 == Pool().huge_class_size
    chain16 = KernelProfile(chain_size=16)
    assert class_table(chain16).huge_class_size == 3833 == Pool(chain_size=16).huge_class_size
    with pytest.raises(InputError, match=r"1\.\.3624 bytes"):
        parse_trace(b"w 0 3700\n")
    assert parse_trace(b"w 0 3700\n", profile=chain16).b.tolist() == [3700]


def test_the_device_refuses_page_sizes_its_compressors_lack() -> None:
    with pytest.raises(ZsmallocError, match="4096-byte pages"):
        Zram(profile=KernelProfile(page_size=16384))
    z = Zram(profile=KernelProfile(chain_size=16))
    z.write_attr("disksize", "8K")
    assert z.huge_class_size == 3833


def test_replay_follows_the_profiles_page_size() -> None:
    """A 16 KiB-page trace: sizes and the huge page are counted in 16 KiB pages."""
    prof = KernelProfile(page_size=16384)
    huge = class_table(prof).huge_class_size
    trace = parse_trace(
        b"# zram size trace v1 disksize=65536\nw 0 16384\nw 1 100\ns 2\nw 3 5000\n", profile=prof
    )
    result = replay(trace, prof)
    pool = Pool(page_size=16384)  # the same objects, allocated directly
    for size in (16384, 100, 5000):
        pool.malloc(size)
    assert 5000 < huge < 16384
    assert result.final_mm_stat == MmStat(
        orig_data_size=4 * 16384,
        compr_data_size=16384 + 100 + 5000,
        mem_used_total=pool.total_pages() * 16384,
        mem_limit=0,
        mem_used_max=pool.total_pages() * 16384,
        same_pages=1,
        pages_compacted=0,
        huge_pages=1,
        huge_pages_since=1,
    )


def _imports(path: Path) -> set[str]:
    """Every zsmalloc.zram module ``path`` imports, at any level (TYPE_CHECKING included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {
            n
            for n in names
            if (ZRAM_DIR / f"{n.split('.')[-1]}.py").is_file() and n.startswith("zsmalloc.zram.")
        }
    return {n.removeprefix("zsmalloc.zram.") for n in out}


def test_zram_imports_run_one_way() -> None:
    """device -> writeback/recompress -> postprocess -> table -> stats: no cycle, and no
    post-processing module reaches back into the device."""
    graph = {p.stem: _imports(p) for p in ZRAM_DIR.glob("*.py") if p.stem != "__init__"}
    for low in ("table", "stats", "sysfs", "postprocess", "writeback", "recompress"):
        assert "device" not in graph[low], low
    assert graph["stats"] == set() and graph["table"] <= {"stats"}

    def reaches(a: str, b: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(n == b or (n not in seen and reaches(n, b, seen | {n})) for n in graph[a])

    assert [m for m in graph if reaches(m, m)] == []


def test_slot_table_is_the_only_writer_of_slots() -> None:
    """writeback and recompression store through the table: no allocator call of their
    own, and no private attribute of anything (the device's included)."""
    for name in ("writeback", "recompress"):
        tree = ast.parse((ZRAM_DIR / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "zsmalloc.zs.core", name
            if isinstance(node, ast.Attribute):
                assert not node.attr.startswith("_") or node.attr == "_replace", (name, node.attr)
