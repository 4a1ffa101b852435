"""The parts of the live check that run anywhere: workload, churn, swap header, report."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from zsmalloc.zswap.live import make_swap_file
from zsmalloc.zswap.verify import Comparison, VerifyResult, churn_ops, workload


def test_workload_is_deterministic_and_mixed() -> None:
    a = workload(600, 5, None)
    assert a == workload(600, 5, None) and a != workload(600, 6, None)
    pages = np.frombuffer(a, np.uint8).reshape(-1, 4096)
    zero = ~pages.any(axis=1)
    words = pages.view(np.uint64)
    same = (words == words[:, :1]).all(axis=1) & ~zero
    assert 10 < zero.sum() < 80  # ~6 %: these must bypass zswap
    assert 10 < same.sum() < 80  # same-filled, not zero: zswap compresses them


def test_churn_ops_are_distinct_pages() -> None:
    ops = churn_ops(100, 60, 1)
    assert len(ops) == 60 and len({i for _, i in ops}) == 60
    assert {op for op, _ in ops} == {"d", "t"}
    assert len(churn_ops(10, 60, 1)) == 10


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
    r = VerifyResult("lzo", 10, 1, 2, 0, notes=("rules: ...",))
    r.rows = [
        Comparison("stored_pages", 8, 8, "exact"),
        Comparison("zswpout (vmstat)", 9, 8, ">= model"),
    ]
    assert r.ok and "result: MATCH" in r.render() and "rules: ..." in r.render()
    r.rows.append(Comparison("pool_total_size", 4096, 8192, "exact", "churn"))
    assert not r.ok and "MISMATCH" in r.render()
    assert r.as_dict()["counters"]["churn:pool_total_size"]["ok"] is False
