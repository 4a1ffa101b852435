"""``estimate_zswap`` per kernel and pool against the guests' store-only runs.

The estimate takes the pages (or their lengths) in one pass, never the model: this
checks its closed form (zsmalloc) and its in-order allocation (zbud, z3fold) against
what each Debian kernel measured on the same pages (tests/data/kernels/zswap*).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from recordings import PAGE_SETS, RECORDINGS, page_set_bytes, read_recording

from cli_helpers import run_cli
from zsmalloc.profile import KernelProfile, profile_for_release
from zsmalloc.zswap.compression import page_clens
from zsmalloc.zswap.estimate import estimate_zswap, estimate_zswap_pools
from zsmalloc.zswap.rules import zswap_rules

STORE_ONLY = [p for p in RECORDINGS if "-limit-" not in p.name]


@pytest.mark.parametrize("path", STORE_ONLY, ids=lambda p: p.name.split(".txt")[0])
def test_estimate_equals_the_guest(path: object) -> None:
    rec = read_recording(path)  # type: ignore[arg-type]
    pages = np.frombuffer(rec.pages(), np.uint8).reshape(-1, 4096)
    prof = profile_for_release(rec.release)
    e = estimate_zswap(pages, compressor=rec.compressor, profile=prof, zpool=rec.zpool or None)
    want = rec.snapshots["after"]
    assert e.pool_total_size == want["pool_total_size"]
    assert e.stored_pages == want["stored_pages"]
    assert e.reject_compress_poor == want["reject_compress_poor"]
    assert e.reject_compress_fail == want.get("reject_compress_fail", 0)
    assert e.same_filled_pages == want.get("same_filled_pages", 0)
    assert e.stored_incompressible_pages == want.get("stored_incompressible_pages", 0)
    assert not e.approximate


def test_every_pool_at_once_and_the_kernel_default() -> None:
    edge = gzip.decompress(PAGE_SETS["edge"].read_bytes())
    pages = np.frombuffer(edge, np.uint8).reshape(-1, 4096)
    p61 = KernelProfile("6.1")
    views = estimate_zswap_pools(pages, compressor="lzo", profile=p61)
    assert [v.zpool for v in views] == ["zbud", "z3fold", "zsmalloc"]
    assert estimate_zswap(pages, compressor="lzo", profile=p61) == views[0]  # Debian: zbud
    assert [v.zpool for v in estimate_zswap_pools(pages, profile=KernelProfile("6.18"))] == [
        "zsmalloc"
    ]
    clens = page_clens(pages, "lzo", same_filled=True)
    assert estimate_zswap(clens=clens, profile=p61, zpool="z3fold") == views[1]


def test_66_is_marked_approximate() -> None:
    e = estimate_zswap(clens=[1000] * 100, profile=KernelProfile("6.6"), zpool="zsmalloc")
    assert e.approximate and e.kernel == "6.6"


def test_zpool_the_kernel_lacks_is_refused() -> None:
    from zsmalloc.errors import UnknownAlgorithmError

    with pytest.raises(UnknownAlgorithmError):
        estimate_zswap(clens=[100], profile=KernelProfile("6.16"), zpool="zbud")
    with pytest.raises(UnknownAlgorithmError):
        estimate_zswap(clens=[100], profile=KernelProfile("6.18"), zpool="z3fold")


@pytest.mark.parametrize(
    ("version", "page_set"),
    [(v, "shared") for v in ("6.1", "6.12", "6.16", "6.17", "6.18")]
    + [("6.1", "shuffled"), ("6.12", "shuffled")],
)
def test_estimate_cli_shows_every_pool_as_the_guest_measured(
    version: str, page_set: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``zsmalloc estimate --zswap --kernel V`` on a page set: each pool's
    pool_total_size and stored_pages are the guest's for that kernel, pool and compressor
    (``shuffled``: the same pages in another order, which zbud and z3fold pack otherwise)."""
    guest = {}
    for p in STORE_ONLY:
        rec = read_recording(p)
        if rec.kind.startswith(f"{version}-{page_set}-"):
            want = rec.snapshots["after"]
            guest[(rec.zpool or "zsmalloc", rec.compressor)] = (
                want["pool_total_size"], want["stored_pages"])
    assert len(guest) == 2 * len(zswap_rules(version).pools())
    source = tmp_path / "pages.bin"
    source.write_bytes(page_set_bytes(page_set))
    code, out, err = run_cli(["estimate", str(source), "--algo", "lzo,lz4",
                              "--zswap", "--kernel", version, "--json"], capsys)
    assert code == 0, err
    algos = json.loads(out)["algorithms"]
    got = {(pool, algo): (v["pool_total_size"], v["stored_pages"])
           for algo in ("lzo", "lz4") for pool, v in algos[algo]["zswap_pools"].items()}
    assert got == guest
    default = zswap_rules(version).default_zpool
    assert algos["lzo"]["zswap"]["zpool"] == default


def test_estimate_cli_zbud_on_61_equals_the_guest(capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's example: ``estimate --zswap --kernel 6.1 --zpool zbud``."""
    rec = read_recording(next(p for p in STORE_ONLY if p.name == "shared-zbud-lzo.txt"))
    code, out, _ = run_cli(["estimate", str(PAGE_SETS["shared"]), "--algo", "lzo", "--zswap",
                            "--kernel", "6.1", "--zpool", "zbud", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["kernel"] == "Linux 6.1 zram + zsmalloc (model)"  # not 6.18's
    z = json.loads(out)["algorithms"]["lzo"]["zswap"]
    want = rec.snapshots["after"]
    assert (z["pool_total_size"], z["stored_pages"], z["same_filled_pages"]) == (
        want["pool_total_size"], want["stored_pages"], want["same_filled_pages"])
    code, out, _ = run_cli(["estimate", str(PAGE_SETS["shared"]), "--algo", "lzo", "--zswap",
                            "--kernel", "6.1", "--zpool", "zbud"], capsys)
    assert "zbud: pool_total_size" in out and "z3fold" not in out
    code, _, err = run_cli(["estimate", str(PAGE_SETS["shared"]), "--zswap", "--kernel", "6.16",
                            "--zpool", "zbud"], capsys)
    assert code == 2 and "not available in Linux 6.16" in err
    code, _, err = run_cli(["estimate", str(PAGE_SETS["shared"]), "--zpool", "zbud"], capsys)
    assert code == 2 and "--zswap" in err


def test_estimate_as_swap_follows_the_kernels_swap_layer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--as swap --kernel 6.1``: 6.1 has no swap zero map, so zero-filled pages reach
    zswap (kept as words) as they did in the 6.1 guest, which swapped these pages out."""
    rec = read_recording(next(p for p in STORE_ONLY if p.name == "shared-zbud-lzo.txt"))
    code, out, err = run_cli(["estimate", str(PAGE_SETS["shared"]), "--algo", "lzo", "--zswap",
                              "--kernel", "6.1", "--zpool", "zbud", "--as", "swap", "--json"],
                             capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["input"]["zero_map_pages"] == 0
    z, want = doc["algorithms"]["lzo"]["zswap"], rec.snapshots["after"]
    assert (z["pool_total_size"], z["stored_pages"], z["same_filled_pages"]) == (
        want["pool_total_size"], want["stored_pages"], want["same_filled_pages"])
