"""``zsmalloc report``: many ``estimate --json`` results read as one fleet.

Reads the results (files, or directories of ``*.json``), merges them
(:mod:`zsmalloc.fleet.summary`) and prints the text view, the JSON (``--json``)
or writes the self-contained HTML page (``--html FILE``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.console import Console

from zsmalloc.errors import InputError
from zsmalloc.estimate.driver import parse_algorithm_list
from zsmalloc.fleet.results import load_results
from zsmalloc.fleet.summary import DEFAULT_HEADROOM, build_fleet


@click.command(
    "report",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("results", nargs=-1, required=True, metavar="RESULTS.json...")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the report as one self-contained HTML page (inline styles and "
    "figures, nothing fetched): opens offline in any browser.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the merged figures as JSON.")
@click.option(
    "--algo",
    default=None,
    metavar="A[,B...]",
    help="Compare only these algorithms (each result must have measured them). "
    "Default: every algorithm all results measured.",
)
@click.option(
    "--headroom",
    type=click.FloatRange(0, 1000),
    default=DEFAULT_HEADROOM * 100,
    show_default=True,
    metavar="PCT",
    help="Room to grow in the recommended disksize, in percent above the largest input.",
)
@click.option("--title", default="zram fleet report", show_default=True, help="The page's title.")
def report_cmd(
    results: tuple[str, ...],
    html_path: str | None,
    as_json: bool,
    algo: str | None,
    headroom: float,
    title: str,
) -> None:
    """Merge `zsmalloc estimate --json` results from many machines or sources.

    Each RESULTS.json is the output of `zsmalloc estimate --json` (a directory
    stands for every *.json in it). The report shows the RAM per algorithm for
    each result and in total, how the ratios spread across results, the
    algorithm taking the least RAM, and one zram disksize and mem_limit for
    every machine, with the reasoning.
    """
    if html_path:
        parent = Path(html_path).resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise InputError("cannot write the page: no writable directory there", path=html_path)
    wanted = parse_algorithm_list(algo) if algo is not None else None
    fleet = build_fleet(load_results(results), headroom=headroom / 100, algos=wanted)
    if as_json:
        click.echo(json.dumps(fleet.to_json(), indent=1))
    else:
        from zsmalloc.fleet.render import render

        render(fleet, Console())
    if html_path:
        from zsmalloc.fleet.html import write_html

        write_html(fleet, html_path, title=title)
        click.echo(f"report written to {html_path}", err=as_json)
