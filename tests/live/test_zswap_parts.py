"""The parts of the live zswap check that run anywhere: workload, churn, swap header, report."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from zsmalloc.cli.live import render_result
from zsmalloc.live.result import AT_LEAST, EXACT, Comparison, VerifyResult, first_divergence
from zsmalloc.live.workload import zswap_churn, zswap_pages
from zsmalloc.live.zswap import make_swap_file


def test_workload_is_deterministic_and_mixed() -> None:
    a = zswap_pages(600, 5, None)
    assert a == zswap_pages(600, 5, None) and a != zswap_pages(600, 6, None)
    pages = np.frombuffer(a, np.uint8).reshape(-1, 4096)
    zero = ~pages.any(axis=1)
    words = pages.view(np.uint64)
    same = (words == words[:, :1]).all(axis=1) & ~zero
    assert 10 < zero.sum() < 80  # ~6 %: these must bypass zswap
    assert 10 < same.sum() < 80  # same-filled, not zero: zswap compresses them


def test_churn_ops_are_distinct_pages() -> None:
    ops = zswap_churn(100, 60, 1)
    assert len(ops) == 60 and len({i for _, i in ops}) == 60
    assert {op for op, _ in ops} == {"d", "t"}
    assert len(zswap_churn(10, 60, 1)) == 10


def test_swap_header(tmp_path: Path) -> None:
    p = tmp_path / "s.swap"
    make_swap_file(p, 64 * 4096)
    data = p.read_bytes()
    assert len(data) == 64 * 4096
    version, last_page, nr_badpages = struct.unpack_from("<III", data, 1024)
    assert (version, last_page, nr_badpages) == (1, 63, 0)
    assert data[4096 - 10 : 4096] == b"SWAPSPACE2"
    assert not any(data[4096:])


def test_report_states_rules_and_verdict() -> None:
    r = VerifyResult("zswap", "lzo", 10, seed=1, events={"zero_pages": 2}, notes=("rules: ...",))
    r.comparisons = [
        Comparison("stored_pages", 8, 8, EXACT, "stores"),
        Comparison("zswpout (vmstat)", 9, 8, AT_LEAST, "stores"),  # others swapped too: fine
    ]
    r.divergence = first_divergence(r.comparisons, "debugfs")
    text = render_result(r)
    assert r.ok and "result: MATCH" in text and "rules: ..." in text
    assert "2 all-zero -> swap zero map" in text
    r.comparisons.append(Comparison("pool_total_size", 4096, 8192, EXACT, "churn"))
    r.comparisons.append(Comparison("zswpin (vmstat)", 3, 4, AT_LEAST, "churn"))
    r.divergence = first_divergence(r.comparisons, "debugfs")
    assert not r.ok and "MISMATCH" in render_result(r)
    d = r.divergence
    assert d is not None and d.where == "after the churn"
    assert d.columns == ("pool_total_size", "zswpin (vmstat)")
    assert (d.kernel, d.model) == ((4096, 3), (8192, 4))
    rows = {(c["phase"], c["name"]): c for c in r.to_dict()["comparisons"]}  # type: ignore[union-attr]
    assert rows["churn", "pool_total_size"]["ok"] is False
    assert rows["stores", "zswpout (vmstat)"]["ok"] is True
