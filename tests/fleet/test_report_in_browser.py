"""The fleet report in a real browser: headless Chromium renders it with no error.

Skips where Chromium is not installed (CI installs Debian's ``chromium``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report import MIB, doc, write_results

from browser import find_chromium, render
from zsmalloc.fleet.html import write_html
from zsmalloc.fleet.results import load_results
from zsmalloc.fleet.summary import build_fleet

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")

FIRST_RESULT = "document.querySelector('#results tbody tr td').textContent"


def test_report_renders_in_chromium_without_errors(tmp_path: Path) -> None:
    """Every figure decodes, the script runs (sorting works), nothing errs on the console,
    and the page fetches nothing beyond itself and its data: URIs."""
    docs = {
        f"host-{i:02d}": doc(
            {
                "lzo-rle": ((i + 1) * 64 * MIB, (i + 1) * 20 * MIB, (i + 1) * 30 * MIB),
                "lz4": ((i + 1) * 64 * MIB, (i + 1) * 22 * MIB, (i + 1) * 31 * MIB),
            },
            pages=(i + 1) * 64 * 256,
            host=f"host-{i:02d}",
        )
        for i in range(6)
    }
    fleet = build_fleet(load_results(write_results(tmp_path, docs)))
    page = tmp_path / "report.html"
    write_html(fleet, str(page))
    click = "document.querySelectorAll('#results th')[2].click()"  # "pages"
    got = render(
        page,
        [
            "document.title",
            "document.body.dataset.ready",
            "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)",
            "document.querySelector('b.algo').textContent",
            "document.querySelector('#sysfs').textContent",
            FIRST_RESULT,
            click,
            FIRST_RESULT,
            click,
            FIRST_RESULT,
            "document.querySelector('#results tbody tr:last-child').className",
        ],
        executable=str(CHROMIUM),
    )
    assert got.errors == []
    outside = [u for u in got.requests if not u.startswith(("file:", "data:"))]
    assert outside == []
    (title, ready, images, best, sysfs, first0, _, first1, _, first2, last) = got.values
    assert title == "zram fleet report"
    assert ready == "1"  # the script ran to its end
    assert images == [True] * 4
    assert best == fleet.best == "lzo-rle"
    assert sysfs == "\n".join(fleet.recommendation.sysfs_lines())
    # Sorted by pages: ascending after one click, descending after two; totals stay last.
    assert (first0, first1, first2) == ("host-00", "host-00", "host-05")
    assert last == "total"


def test_a_stray_external_reference_would_be_caught(tmp_path: Path) -> None:
    """The check bites: a page that tries to fetch a script shows an error and a request
    (blocked by the report's Content-Security-Policy, so nothing leaves the machine)."""
    from zsmalloc.fleet.html import CSP

    page = tmp_path / "bad.html"
    page.write_text(
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        f'content="{CSP}"><title>x</title></head><body>'
        '<script src="https://cdn.example.invalid/lib.js"></script>'
        "<script>console.error('boom')</script></body></html>"
    )
    got = render(page, ["document.title"], executable=str(CHROMIUM))
    assert any("boom" in e for e in got.errors)
    assert any("Content Security Policy" in e or "cdn.example.invalid" in e for e in got.errors)
