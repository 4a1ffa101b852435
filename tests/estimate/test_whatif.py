"""``zsmalloc whatif`` on page sets: the reference is estimate's, the variants are checked
against kernels and against hand-computed tables.

Ground truth:
- the reference side (6.18, chain 8) against tests/data/shared_pages.mm_stat (the 1024
  shared pages written to a 6.18 device) and against ``estimate``;
- the ``kernel=6.1`` variant against kernels/6.1-shared-lz4.trace.gz, the same pages
  written to Debian's 6.1 (its last ``m`` line);
- a class-delta and a chain-rule variant on 16 KiB pages, worked out by hand below from
  the kernel's rules and the rows the RFC's simulator printed (tests/zs/test_simulator.py).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import kernel_mm_stat, run_cli
from zsmalloc import Pool
from zsmalloc.errors import InputError
from zsmalloc.estimate.whatif import parse_vary, price_fill, variant_profiles
from zsmalloc.profile import KernelProfile
from zsmalloc.zram.stats import MmStat


def last_m_line(trace: Path) -> MmStat:
    with gzip.open(trace, "rt") as f:
        rows = [ln for ln in f if ln.startswith("m ")]
    return MmStat.parse(rows[-1][2:])


def test_page_set_reference_and_61_variant(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = str(testdata / "shared_pages.bin.gz")
    png = tmp_path / "whatif.png"
    code, out, err = run_cli(
        ["whatif", pages, "--algo", "lz4", "--vary", "kernel=6.1", "--json", "--plot", str(png)],
        capsys,
    )
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(out)
    ref = MmStat(**doc["reference"]["mm_stat"])
    assert ref == kernel_mm_stat(testdata)["lz4"][0]  # 6.18's device
    code, out, err = run_cli(["estimate", pages, "--algo", "lz4", "--json"], capsys)
    assert code == 0, err
    est = json.loads(out)["algorithms"]["lz4"]
    assert ref == MmStat(**est["mm_stat"])
    # memdesc in both: 849 pages; 64 bytes each today; after, 8 each and ceil(849 / 73)
    # 4 KiB slabs of 56-byte zpdescs (spec zsmalloc.md §9.1)
    assert ref.mem_used_total == 849 * 4096
    want = {"struct_page_bytes": 849 * 64, "memdesc_bytes": 849 * 8 + 12 * 4096}
    for got in (est["derived"]["memdesc_what_if"], doc["reference"]["memdesc"]):
        assert {k: got[k] for k in want} == want
    (v61,) = doc["variants"]
    assert MmStat(**v61["mm_stat"]) == last_m_line(testdata / "kernels/6.1-shared-lz4.trace.gz")
    assert v61["delta"]["mem_used_total"] == 2494464 - 3477504


def sizes_1090(n: int) -> np.ndarray:
    """``n`` pages compressing to 1090 bytes each (zs_malloc(1090 + 8 = 1098))."""
    h = np.zeros(16385, np.int64)
    h[1090] = n
    return h


def test_16k_class_delta_and_chain_rule_by_hand() -> None:
    """178 objects of 1098 bytes on 16 KiB pages, chain 8.

    Kernel (delta 16384 >> 8 = 64): classes 1056, 1120; 1098 goes to 1120.  Least waste
    over 1..8 pages: 8 * 16384 = 131072 = 117 * 1120 + 32 is the least tail, so 8 pages,
    117 objects (1184 holds only 110 in 8 pages: no merge).  178 = 117 + 61: 2 zspages,
    16 pages.  Spanning: a full zspage has 7 (the simulator's row "1120 | 8 | 117 | 32 |
    7"); the partial one's 61 slots end at 68320, past the boundaries 16384, 32768,
    49152 and 65536, none a multiple of 1120: 4 more.  11 in all.
    Delta 16, least-waste: class 1104 (simulator "1104 | 6 | 89 | 48 | 5"): 178 = 2 * 89,
    2 zspages, 12 pages; span 2 * 5 = 10.
    Delta 16, waste-threshold (simulator "1104 | 3 | 44 | 576 | 2"): 178 = 4 * 44 + 2,
    5 zspages, 15 pages; span 4 * 2 + 0 (two slots end at 2208, before the first page end).
    """
    base = KernelProfile(page_size=16384)
    ref = price_fill(sizes_1090(178), 0, base)
    d16 = price_fill(sizes_1090(178), 0, KernelProfile(page_size=16384, class_delta=16))
    wt = price_fill(
        sizes_1090(178), 0,
        KernelProfile(page_size=16384, class_delta=16, chain_rule="waste-threshold"),
    )
    for side, pages, span, size in ((ref, 16, 11, 1120), (d16, 12, 10, 1104), (wt, 15, 8, 1104)):
        m = side.mm_stat
        assert m.mem_used_total == m.mem_used_max == pages * 16384
        assert m.compr_data_size == 178 * 1090 and m.orig_data_size == 178 * 16384
        assert m.huge_pages == 0 and m.pages_compacted == 0
        tot = side.totals()
        assert tot["span_objects"] == span
        assert tot["read_copy_bytes"] == span * size
    # The allocator model under the same profiles: 178 zs_malloc(1090) (+8 = 1098).
    for side, pages in ((ref, 16), (d16, 12), (wt, 15)):
        pool = Pool(profile=side.profile)
        for _ in range(178):
            pool.malloc(1090)
        assert pool.total_pages() == pages
    # memdesc: 64 bytes of struct page each today; after, 8 bytes each and one 16 KiB slab
    # of 16384 // 56 = 292 zpdescs.
    md = ref.memdesc
    assert md.struct_page_bytes == 16 * 64
    assert md.memdesc_bytes == 16 * 8 + 16384


def test_vary_axes() -> None:
    vary = parse_vary(["chain=4,8,16", "kernel=6.1,6.18", "rule=waste-threshold"])
    profs = variant_profiles(KernelProfile(), vary)
    # 6.1 has no chain size: its three chain values are one profile
    assert [p.describe() for p in profs] == [
        "6.1, 4 KiB pages, chain 4, waste-threshold",
        "6.18, 4 KiB pages, chain 4, waste-threshold",
        "6.18, 4 KiB pages, chain 8, waste-threshold",
        "6.18, 4 KiB pages, chain 16, waste-threshold",
    ]
    assert variant_profiles(KernelProfile(), parse_vary(["chain=2"]))[0].chain_size == 2
    for bad, msg in (
        (["size=4"], "AXIS"),
        (["chain=4", "chain=8"], "twice"),
        (["chain=4,"], "empty"),
        (["chain=x"], "whole number"),
        (["chain=17"], "chain size"),
        (["delta=12"], "class delta"),
        (["rule=best"], "known rules"),
        (["kernel=5.4"], "kernel"),
    ):
        with pytest.raises(InputError, match=msg):
            variant_profiles(KernelProfile(), parse_vary(bad))


def test_cli_needs_a_vary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["whatif", "--vary", "chain=99"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("zsmalloc: error: --vary chain=99: chain size")
    code, out, err = run_cli(["whatif"], capsys)
    assert code == 2 and "--vary" in err


@pytest.mark.slow  # cold: numba compiles span_by_class for 6.12's and 6.1's state types
# (22 s in a full run on the loaded 2-core machine; 0.2 s once cached)
def test_trace_reference_and_61_variant(
    testdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shared pages as Debian's 6.12 stored them (a size trace), replayed as 6.1: the
    pages 6.12 stored at 3257..3624 bytes are huge under 6.1's threshold, and the result
    is what Debian's 6.1 recorded for the same pages."""
    kernels = testdata / "kernels"
    code, out, err = run_cli(
        ["whatif", "--trace", str(kernels / "6.12-shared-lz4.trace.gz"), "--vary",
         "kernel=6.1", "--json"], capsys,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["workload"]["m_lines_checked"] == 1024  # the reference matched every line
    assert MmStat(**doc["reference"]["mm_stat"]) == last_m_line(
        kernels / "6.12-shared-lz4.trace.gz"
    )
    (v61,) = doc["variants"]
    assert MmStat(**v61["mm_stat"]) == last_m_line(kernels / "6.1-shared-lz4.trace.gz")
    # The model's slots after the replay (walked object by object) span as the closed form
    # of the same pages as a page set says (checked by hand above): 286 under 6.12's table
    # (6.18's), 209 under 6.1's.
    assert (doc["reference"]["span_objects"], v61["span_objects"]) == (286, 209)
    code, out, err = run_cli(
        ["whatif", str(testdata / "shared_pages.bin.gz"), "--algo", "lz4", "--vary",
         "kernel=6.1", "--json"], capsys,
    )
    pages = json.loads(out)
    assert (pages["reference"]["span_objects"], pages["variants"][0]["span_objects"]) == (
        286, 209
    )
    code, out, err = run_cli(["whatif", "--trace", "-", "--vary", "chain=4"], capsys)
    assert code == 2 and "give a file" in err


def test_estimate_takes_the_variant(testdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`estimate --class-delta --chain-rule`: its closed form equals whatif's variant, and
    the Pool given the same objects (--compact) holds as many pages."""
    pages = str(testdata / "shared_pages.bin.gz")
    variant = ["--class-delta", "64", "--chain-rule", "waste-threshold"]
    code, out, err = run_cli(
        ["estimate", pages, "--algo", "lz4", "--compact", "--json", *variant], capsys
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["class_table_variant"] == "class delta 64, waste-threshold"
    est = doc["algorithms"]["lz4"]
    assert est["mm_stat_after_compact"]["mem_used_total"] == est["mm_stat"]["mem_used_total"]
    code, out, err = run_cli(
        ["whatif", pages, "--algo", "lz4", "--vary", "delta=64", "--vary",
         "rule=waste-threshold", "--json"], capsys,
    )
    assert code == 0, err
    (v,) = json.loads(out)["variants"]
    assert v["mm_stat"] == est["mm_stat"]
    code, out, err = run_cli(["estimate", pages, "--class-delta", "12"], capsys)
    assert code == 2 and err.startswith("zsmalloc: error: class delta must be")
