"""``zsmalloc verify`` and its alias ``zsmalloc zswap verify``, without the kernel.

The checks themselves are replaced by recorders, so these tests see exactly
what each command asks for and how it prints what comes back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import zsmalloc.live.verify_zram as verify_zram
import zsmalloc.live.verify_zswap as verify_zswap
from zsmalloc.cli.live import render_divergence, render_result
from zsmalloc.cli.main import main
from zsmalloc.live.defaults import ZRAM, ZSWAP
from zsmalloc.live.result import EXACT, Comparison, Divergence, VerifyResult


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Record each driver call (but its progress callback); answer with a result."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def fake_zswap(nr_pages: int, **kw: Any) -> VerifyResult:
        assert callable(kw.pop("progress"))
        seen.append(("zswap", {"nr_pages": nr_pages, **kw}))
        r = VerifyResult("zswap", kw["compressor"], nr_pages, seed=kw["seed"])
        r.comparisons = [Comparison("stored_pages", 5, 5, EXACT, "stores")]
        return r

    def fake_zram(**kw: Any) -> VerifyResult:
        assert callable(kw.pop("progress"))
        seen.append(("zram", kw))
        r = VerifyResult("zram", kw["algorithm"], kw["nr_pages"], seed=kw["seed"])
        r.divergence = Divergence("op 7 (compact)", "mm_stat", (1, 2), (1, 3), ("a", "b"))
        return r

    monkeypatch.setattr(verify_zswap, "verify_zswap", fake_zswap)
    monkeypatch.setattr(verify_zram, "verify_zram", fake_zram)
    return seen


def test_verify_zswap_and_zswap_verify_are_one_command(
    calls: list[tuple[str, dict[str, Any]]], capsys: pytest.CaptureFixture
) -> None:
    a = run(["verify", "--zswap"], capsys)
    b = run(["zswap", "verify"], capsys)
    assert a == b and a[0] == 0 and "result: MATCH" in a[1]
    (mode_a, args_a), (mode_b, args_b) = calls
    assert mode_a == mode_b == "zswap" and args_a == args_b
    # the defaults run a real workload: stores, then frees and swap-ins
    assert args_a["nr_pages"] == ZSWAP["nr_pages"] > 0
    assert args_a["churn"] == ZSWAP["n_ops"] > 0
    assert (args_a["seed"], args_a["compressor"]) == (ZSWAP["seed"], ZSWAP["algorithm"])
    calls.clear()
    opts = ["--pages", "300", "--ops", "7", "--seed", "9", "--algo", "lzo-rle", "--limit"]
    run(["verify", "--zswap", *opts], capsys)
    run(["zswap", "verify", *opts], capsys)
    assert calls[0] == calls[1] and calls[0][1]["limit"] is True and calls[0][1]["churn"] == 7


def test_verify_kernel_defaults_and_divergence_exit_1(
    calls: list[tuple[str, dict[str, Any]]], capsys: pytest.CaptureFixture
) -> None:
    code, out, _ = run(["verify", "--kernel"], capsys)
    assert code == 1
    assert calls == [
        (
            "zram",
            {
                "algorithm": ZRAM["algorithm"],
                "n_ops": ZRAM["n_ops"],
                "seed": ZRAM["seed"],
                "nr_pages": ZRAM["nr_pages"],
                "save": None,
            },
        )
    ]
    assert "DIVERGENCE at op 7 (compact): mm_stat differs in b\n" in out
    code, out, _ = run(["verify", "--kernel", "--json"], capsys)
    d = json.loads(out)
    assert code == 1 and d["ok"] is False and d["divergence"]["differing_columns"] == ["b"]


def test_limit_belongs_to_zswap(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(["verify", "--kernel", "--limit"], capsys)
    assert code == 2 and "--limit is for --zswap" in err


def test_no_live_zswap_exits_2_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(verify_zswap, "zswap_unavailable_reason", lambda: "not root: test")
    for argv in (["verify", "--zswap"], ["zswap", "verify"]):
        code, out, err = run([*argv, "--pages", "10"], capsys)
        assert code == 2 and "no kernel device can be used: not root: test" in err
        assert "Traceback" not in err and out == ""


def test_divergence_rendering() -> None:
    div = Divergence("line 3", "mm_stat", (4096, 10), (4096, 11), ("orig", "compr"))
    assert render_divergence(div) == (
        "line 3: mm_stat differs in compr\n  kernel     4096       10\n  model      4096       11"
    )
    shrunk = Divergence("op 2", "mm_stat", (1,), (2,), ("x",), kind="shrinker")
    assert "compacted the pool on its own" in render_divergence(shrunk)
    text = Divergence("after the last op", "io_stat text", (), (), (), detail="byte 3: ...")
    assert render_divergence(text) == "after the last op: io_stat text differs at byte 3: ..."


def test_estimate_result_rendering() -> None:
    r = VerifyResult("estimate", "lz4", 16, device="zram5")
    r.comparisons = [Comparison("orig_data_size", 65536, 65536, EXACT, "writes")]
    assert render_result(r).splitlines() == [
        "estimate vs zram5: lz4, 16 pages",
        "  after the writes:",
        "    kernel      65536",
        "    estimate    65536",
        "  every mm_stat column equal",
    ]
