"""Helpers shared by the command-line tests: run ``zsmalloc``, read the kernel's mm_stat."""

from __future__ import annotations

from pathlib import Path

import pytest

from zsmalloc.cli.main import main
from zsmalloc.zram.stats import MmStat


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``zsmalloc ARGS`` in this process: (exit status, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def kernel_mm_stat(testdata: Path) -> dict[str, tuple[MmStat, MmStat]]:
    """tests/data/shared_pages.mm_stat: per algorithm, mm_stat before and after compact."""
    rows: dict[str, dict[bool, MmStat]] = {}
    for line in (testdata / "shared_pages.mm_stat").read_text().splitlines():
        parts = line.split()
        after = parts[2] == "after-compact"
        rows.setdefault(parts[1], {})[after] = MmStat.parse(" ".join(parts[3 if after else 2 :]))
    return {a: (r[False], r[True]) for a, r in rows.items()}
