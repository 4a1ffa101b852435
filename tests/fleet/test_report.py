"""``zsmalloc report``: many estimates merged into one fleet, its figures and its setting."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import kernel_mm_stat, run_cli
from zsmalloc.errors import InputError
from zsmalloc.fleet.html import CSP, render_html
from zsmalloc.fleet.results import load_results, parse_result
from zsmalloc.fleet.summary import build_fleet, sysfs_size

MIB = 1 << 20


@pytest.fixture(scope="module")
def kernel_result(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``estimate --json`` of the kernel's 1024 pages (its mm_stat is the kernel's)."""
    from zsmalloc.cli.main import main

    out = tmp_path_factory.mktemp("res") / "kernel.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(
            [
                "estimate",
                str(testdata / "shared_pages.bin.gz"),
                "--algo",
                "lzo,lzo-rle,lz4",
                "--zswap",
                "--json",
            ]
        )
    out.write_text(buf.getvalue())
    return out


def doc(algos: dict[str, tuple[int, int, int]], pages: int = 0, host: str = "h") -> dict[str, Any]:
    """A minimal estimate result: per algorithm (orig, compr, mem_used_total) bytes."""
    return {
        "page_size": 4096,
        "chain_size": 8,
        "level": None,
        "huge_class_size": 3625,
        "input": {"pages": pages, "host": host, "sources": [{"label": "x"}]},
        "algorithms": {
            a: {
                "kernel_exact": a != "zstd",
                "mm_stat": {
                    "orig_data_size": o,
                    "compr_data_size": c,
                    "mem_used_total": m,
                    "huge_pages": 0,
                    "same_pages": 0,
                },
                "mm_stat_after_compact": {"mem_used_total": m},
                "derived": {},
                "compressed_length_histogram": {"length": [1000], "pages": [o // 4096]},
            }
            for a, (o, c, m) in algos.items()
        },
    }


def write_results(tmp_path: Path, docs: dict[str, dict[str, Any]]) -> list[str]:
    paths = []
    for name, d in docs.items():
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(d))
        paths.append(str(p))
    return paths


def test_fleet_totals_are_the_kernels_mm_stat_summed(
    kernel_result: Path, testdata: Path, tmp_path: Path
) -> None:
    """Three machines that measured the kernel's pages: each device's RAM is the kernel's
    mem_used_total, the fleet's is three times it, and the best algorithm is the one the
    kernel's mm_stat gives the least RAM (lzo-rle on these pages)."""
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.json").write_text(kernel_result.read_text())
    fleet = build_fleet(load_results([str(tmp_path)]))
    kernel = {a: before for a, (before, _) in kernel_mm_stat(testdata).items()}
    assert [r.name for r in fleet.results] == ["a", "b", "c"]
    for algo, mm in kernel.items():
        t = fleet.totals[algo]
        assert t.mem_used == 3 * mm.mem_used_total
        assert t.compr_bytes == 3 * mm.compr_data_size
        assert t.orig_bytes == 3 * mm.orig_data_size
        assert t.huge_pages == 3 * mm.huge_pages
        assert t.effective[50] == pytest.approx(mm.orig_data_size / mm.mem_used_total)
        assert t.zswap_pool_bytes is not None
    assert fleet.best == min(kernel, key=lambda a: kernel[a].mem_used_total) == "lzo-rle"
    assert fleet.totals["lzo-rle"].wins == 3


def test_the_setting_follows_its_stated_rule(tmp_path: Path) -> None:
    """disksize: the largest input plus headroom, whole MiB; mem_limit: disksize at the
    RAM per byte of the least compressible result; the best algorithm by total RAM."""
    docs = {
        "small": doc({"lz4": (100 * MIB, 40 * MIB, 50 * MIB), "zstd": (100 * MIB, 30, 45 * MIB)}),
        "large": doc({"lz4": (800 * MIB, 300 * MIB, 400 * MIB), "zstd": (800 * MIB, 1, 300 * MIB)}),
        "dense": doc({"lz4": (200 * MIB, 150 * MIB, 180 * MIB), "zstd": (200 * MIB, 1, 170 * MIB)}),
    }
    fleet = build_fleet(load_results(write_results(tmp_path, docs)), headroom=0.3)
    assert fleet.best == "zstd"  # 515 MiB against lz4's 630 MiB
    rec = fleet.recommendation
    assert rec.algo == "zstd"
    assert rec.disksize == math.ceil(800 * 1.3) * MIB  # 1040 MiB
    # The least compressible result with zstd is "dense": 170 MiB of RAM per 200 MiB.
    assert rec.mem_limit == math.ceil(1040 * 170 / 200) * MIB  # 884 MiB
    assert rec.sysfs_lines() == [
        "echo zstd > /sys/block/zram0/comp_algorithm",
        "echo 1040M > /sys/block/zram0/disksize",
        "echo 884M > /sys/block/zram0/mem_limit",
    ]
    assert any("dense" in r for r in rec.reasons) and any("large" in r for r in rec.reasons)
    assert any("approximate for zstd" in n for n in fleet.notes)
    assert sysfs_size(2 << 30) == "2G" and sysfs_size(MIB + 1) == "2M"


def test_ratios_spread_across_results(tmp_path: Path) -> None:
    """Percentiles across results (linear interpolation): ratios 1, 2, 3, 4, 5."""
    docs = {f"m{k}": doc({"lz4": (k * 10 * MIB, MIB, 10 * MIB)}) for k in range(1, 6)}
    t = build_fleet(load_results(write_results(tmp_path, docs))).totals["lz4"]
    assert t.effective == pytest.approx({0: 1.0, 10: 1.4, 50: 3.0, 90: 4.6, 100: 5.0})
    assert t.effective_ratio == pytest.approx(150 / 50)


def test_only_algorithms_every_result_measured_are_compared(tmp_path: Path) -> None:
    docs = {
        "a": doc({"lz4": (MIB, MIB, MIB), "zstd": (MIB, MIB, MIB)}),
        "b": doc({"lz4": (MIB, MIB, MIB)}),
    }
    paths = write_results(tmp_path, docs)
    fleet = build_fleet(load_results(paths))
    assert fleet.algos == ["lz4"] and "zstd" in fleet.notes[0]
    with pytest.raises(InputError, match="--algo zstd: not measured by b"):
        build_fleet(load_results(paths), algos=["zstd"])
    with pytest.raises(InputError, match="no algorithm was measured by every result"):
        build_fleet(
            [parse_result(doc({"lz4": (1, 1, 1)}), "x"), parse_result(doc({"lzo": (1, 1, 1)}), "y")]
        )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected the JSON of `zsmalloc estimate --json`"),
        ('{"algorithms": {"lz4": {}}}', "not a complete `zsmalloc estimate --json` result"),
    ],
)
def test_bad_results_are_one_line(
    tmp_path: Path, content: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    code, out, err = run_cli(["report", str(p)], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"zsmalloc: error: {p}: ") and needle in err and err.count("\n") == 1


def test_missing_and_empty_inputs_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["report", str(tmp_path / "nope.json")], capsys)
    assert code == 2 and "nope.json: no such file or directory" in err
    code, _, err = run_cli(["report", str(tmp_path)], capsys)
    assert code == 2 and "no *.json result in this directory" in err
    ok = write_results(tmp_path, {"a": doc({"lz4": (MIB, MIB, MIB)})})
    code, _, err = run_cli(["report", *ok, "--html", "/nonexistent/r.html"], capsys)
    assert code == 2 and "cannot write the page" in err


def test_cli_text_json_and_html(
    kernel_result: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "fleet.html"
    code, out, err = run_cli(["report", str(kernel_result), "--json", "--html", str(page)], capsys)
    assert code == 0
    rep = json.loads(out)
    assert rep["best"] == "lzo-rle" and rep["results"][0]["name"] == "kernel"
    assert rep["recommendation"]["disksize"] == 5 * MIB  # 4 MiB + 25 %
    assert f"report written to {page}" in err
    code, out, _ = run_cli(["report", str(kernel_result), "--algo", "lz4,lzo"], capsys)
    assert code == 0
    assert "best: lz4" in out  # 3477504 < 3481600 bytes (the kernel's mem_used_total)
    assert "echo lz4 > /sys/block/zram0/comp_algorithm" in out
    html = page.read_text()
    assert CSP in html
    # Self-contained: nothing outside data: URIs is referenced.
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html)
    assert "url(" not in html and "@import" not in html


def test_page_escapes_what_it_shows(tmp_path: Path) -> None:
    nasty = doc({"lz4": (MIB, MIB, MIB)}, host="<script>alert(1)</script>")
    fleet = build_fleet([parse_result(nasty, "<b>x</b>.json")])
    html = render_html(fleet, now="then")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>x</b>" not in html


def test_json_stays_json_when_nothing_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """All pages same-filled: nothing compressed, ratios undefined: null, not Infinity."""
    paths = write_results(tmp_path, {"zeros": doc({"lz4": (MIB, 0, 0)})})
    code, out, _ = run_cli(["report", *paths, "--json"], capsys)
    assert code == 0

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    rep = json.loads(out, parse_constant=refuse)
    assert rep["totals"]["lz4"]["effective_ratio"] is None
    assert rep["results"][0]["algorithms"]["lz4"]["compression_ratio"] is None


def _guest_pool_total(testdata: Path, pset: str, zpool: str, algo: str) -> int:
    """pool_total_size after the pageout in a 6.1 zswap guest recording (tests/data/kernels)."""
    import gzip

    if pset == "shared":
        text = (testdata / "kernels" / "zswap-6.1" / f"shared-{zpool}-{algo}.txt").read_text()
    else:
        path = testdata / "kernels" / "zswap" / f"6.1-{pset}-{zpool}-{algo}.txt.gz"
        text = gzip.decompress(path.read_bytes()).decode()
    return int(re.search(r"^pool_total_size (\d+)$", text.split("# after", 1)[1], re.M)[1])


def test_zswap_on_each_results_kernel_and_pool_is_what_the_guests_measured(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two machines on 6.1, one with zswap on zbud, one on z3fold (its pages in another
    order): the fleet's zswap pool is the sum of what the 6.1 guests measured, and each
    result says which kernel and pool it is for."""
    import gzip

    data = gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())
    order = gzip.decompress((testdata / "kernels" / "zswap" / "shuffled_order.gz").read_bytes())
    shuffled = b"".join(data[int(i) * 4096 : (int(i) + 1) * 4096] for i in order.split())
    (tmp_path / "shuffled.bin").write_bytes(shuffled)
    runs = {"a": ("shared_pages.bin.gz", "zbud", "shared"), "b": ("", "z3fold", "shuffled")}
    paths = []
    for name, (src, zpool, _) in runs.items():
        source = str(testdata / src) if src else str(tmp_path / "shuffled.bin")
        code, out, err = run_cli(["estimate", source, "--algo", "lzo,lz4", "--zswap", "--kernel",
                                  "6.1", "--zpool", zpool, "--json"], capsys)
        assert code == 0, err
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(out)
    code, out, _ = run_cli(["report", *map(str, paths), "--json"], capsys)
    assert code == 0
    rep = json.loads(out)
    for algo in ("lzo", "lz4"):
        want = [_guest_pool_total(testdata, pset, zpool, algo) for _, zpool, pset in runs.values()]
        assert rep["totals"][algo]["zswap_pool_total_size"] == sum(want)
        got = [r["algorithms"][algo] for r in rep["results"]]
        assert [g["zswap_pool_total_size"] for g in got] == want
        assert [g["zswap_pool"] for g in got] == ["6.1 zbud", "6.1 z3fold"]
    code, out, _ = run_cli(["report", *map(str, paths)], capsys)
    assert "zswap instead" in out and "6.1 z3fold" in out
