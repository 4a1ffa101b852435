"""Every guest fill trace (tests/data/kernels): the kernel's sizes page by page, and its
final mm_stat from ``estimate``.

Each trace wrote the same pages into a fresh zram of a Debian kernel (6.1, 6.12, 7.2 on
amd64; 6.12 arm64 with 16 KiB pages) with one compressor configuration: zstd at every
level, lz4hc 1..16, deflate 1..9 and deflate.winbits, lz4, and lzo and lzo-rle on 6.1.
For each kernel's default configuration the estimate driver (the batch compressors
configured for that kernel and page size) must give the stored size of every page as the
kernel counted it, and the report the kernel's last mm_stat line, all nine columns; for
the level and winbits sweeps the backend must give every 8th page's size (the whole
sweep, every page and mm_stat: ``python tools/guest_match.py``, a few minutes).

zstd is exact only with the kernel's zstd version installed (compress.zstd); without
it the backend must say so, naming the version and the command that installs it, and
the comparison is skipped with that command as the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from guest_traces import FillTrace, estimate_fill, fill_trace_paths, load_pages, read_fill_trace
from zsmalloc.estimate.driver import CompressorSetup
from zsmalloc.testing import shared

_DATA = shared.testdata_dir()
TRACES = fill_trace_paths(_DATA) if _DATA is not None else []


def test_every_recorded_configuration_is_here() -> None:
    """The page set the issue promises: zstd -5, 1..22 on 6.12 and 7.2, lz4hc and deflate
    on every kernel, lzo and lzo-rle on 6.1 (the only Debian kernel that builds them), the
    16 KiB ones."""
    names = {p.name.removesuffix(".trace.gz") for p in TRACES}
    assert len(names) >= 94
    for k in ("6.12", "7.2"):
        assert {f"{k}-shared-zstd-l{n}" for n in [-5, *range(1, 23)] if n != 3} <= names
    on_61 = ("lzo", "lzo-rle", "lz4", "lz4hc", "zstd", "deflate")
    assert {f"6.1-shared-{a}" for a in on_61} <= names
    assert {f"arm64-16k-6.12-shared16k-{a}" for a in ("lz4", "lz4hc", "zstd", "deflate")} <= names


def _is_default(t: FillTrace) -> bool:
    """No algorithm_params: the configuration a kernel runs unless told otherwise."""
    return t.level is None and t.winbits is None


# Level and winbits sweeps compare every SUBSET-th page (their full comparison, every page
# and the final mm_stat, is `python tools/guest_match.py`); each kernel's default
# configuration is compared whole, mm_stat included.
SUBSET = 8


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name.removesuffix(".trace.gz"))
def test_trace_sizes_and_final_mm_stat(path: Path, testdata: Path) -> None:
    t = read_fill_trace(path)
    setup = CompressorSetup(t.release, t.page_size, t.level, t.winbits)
    backend = setup.backend(t.algo)
    if not backend.kernel_exact:
        assert t.algo == "zstd", backend.approximate
        assert backend.profile.zstd_version != backend.library_version
        want = ".".join(map(str, backend.profile.zstd_version))
        assert f"zstd {want}" in (backend.approximate or "")
        assert (backend.exact_command or "").startswith("pip install --target ")
        pytest.skip(f"the kernel's zstd is not installed: {backend.exact_command}")
    pages = load_pages(testdata, t)
    if not _is_default(t):
        ours = backend.stored_sizes(pages[::SUBSET])
        bad = np.flatnonzero(ours != t.stored[::SUBSET]) * SUBSET
        assert bad.size == 0, f"pages {bad[:5].tolist()} differ"
        return
    _, rep, ours = estimate_fill(t, pages)
    r = rep.algos[t.algo]
    assert r.kernel_exact
    bad = np.flatnonzero(ours != t.stored)
    assert bad.size == 0, (
        f"{bad.size} of {t.stored.size} pages differ, first {bad[:5].tolist()}: "
        f"ours {ours[bad[:5]].tolist()}, kernel {t.stored[bad[:5]].tolist()}"
    )
    assert list(r.mm_stat) == t.final_mm_stat


CLI_SAMPLE = [
    "6.1-shared-lz4hc",
    "6.12-shared-zstd-l-5",
    "7.2-shared-lz4hc-l12",
    "7.2-shared-deflate-l6-deflate_winbits_15",
    "arm64-16k-6.12-shared16k-deflate",
    "arm64-16k-6.12-ramp16k-lz4",
]


def _cli_args(t: object) -> list[str]:
    args = ["--kernel", t.release, "--algo", t.algo, "--page-size", str(t.page_size)]  # type: ignore[attr-defined]
    if t.level is not None:  # type: ignore[attr-defined]
        args += ["--level", str(t.level)]  # type: ignore[attr-defined]
    if t.winbits is not None:  # type: ignore[attr-defined]
        args += ["--deflate-winbits", str(t.winbits)]  # type: ignore[attr-defined]
    return args


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    from zsmalloc.cli.main import main

    try:
        main(args)
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    return capsys.readouterr().out


@pytest.mark.parametrize("name", CLI_SAMPLE)
def test_sizes_command_agrees_page_by_page(
    name: str, testdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = read_fill_trace(testdata / "kernels" / f"{name}.trace.gz")
    out = _run(["sizes", str(testdata / t.pages_file), *_cli_args(t)], capsys)
    rows = [line.split("\t") for line in out.splitlines() if not line.startswith("#")]
    assert rows[0] == ["page", t.algo]
    if "APPROXIMATE" in out:
        pytest.skip("the kernel's zstd is not installed")
    assert [int(r[1]) for r in rows[1:]] == t.stored.tolist()


@pytest.mark.parametrize("name", CLI_SAMPLE)
def test_estimate_json_is_the_final_mm_stat(
    name: str, testdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    t = read_fill_trace(testdata / "kernels" / f"{name}.trace.gz")
    out = _run(["estimate", str(testdata / t.pages_file), *_cli_args(t), "--json"], capsys)
    doc = json.loads(out)
    algo = doc["algorithms"][t.algo]
    assert doc["page_size"] == t.page_size and doc["level"] == t.level
    if not algo["kernel_exact"]:
        assert algo["approximate"] and algo["exact_command"]
        pytest.skip("the kernel's zstd is not installed")
    assert list(algo["mm_stat"].values()) == t.final_mm_stat
