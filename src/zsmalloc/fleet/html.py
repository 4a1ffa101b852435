"""The fleet report as one self-contained HTML page.

The page must open from a file anywhere (a laptop, an air-gapped host, an
attachment): styles and the one small script are inline, figures are
``data:`` URIs (:mod:`zsmalloc.fleet.plots`), and a Content-Security-Policy
forbids every fetch, so a stray external reference would show up as a
console error rather than a silent network request.  The script only sorts
tables when a header is clicked; the page reads the same without it.

Order of the page: the verdict first (best algorithm, the setting to apply and
why), then the totals per algorithm, the spread across results, each result,
and how the pages compress; notes and the inputs close it.  Every number
comes from :class:`~zsmalloc.fleet.summary.Fleet`, as in ``report --json``.
"""

from __future__ import annotations

import datetime as _dt
import math
from html import escape

from zsmalloc.fleet.plots import all_plots
from zsmalloc.fleet.summary import PERCENTILES, Fleet, human, sysfs_size

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem;
       padding: 1rem 1.5rem 3rem; color: #1d1d1f; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin-top: 0; }
.verdict { background: #f3f7fc; border-left: 4px solid #4c72b0; padding: .6rem 1rem; }
.verdict b.algo { font-size: 1.15rem; }
pre { background: #272822; color: #f8f8f2; padding: .7rem 1rem; overflow-x: auto; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .6rem 0; font-variant-numeric: tabular-nums;
        font-size: .9rem; }
th, td { padding: .25rem .55rem; border-bottom: 1px solid #e5e5e5; text-align: right; }
td { white-space: nowrap; }
th { background: #fafafa; cursor: pointer; user-select: none; }
th:first-child, td:first-child { text-align: left; }
td.best { background: #e3f1e3; font-weight: 600; }
tr.total td { font-weight: 600; border-top: 2px solid #999; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .9rem; }
.notes li { color: #8a5a00; }
.small { font-size: .85rem; color: #555; }
"""

# Click a header to sort by it (numbers by their data-v, text otherwise); click again
# to reverse.  Rows marked "total" stay last.
SCRIPT = """
(function () {
  function key(td) {
    var v = td.getAttribute('data-v');
    return v === null ? td.textContent.trim().toLowerCase() : parseFloat(v);
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('th').forEach(function (th, col) {
      th.title = 'sort by this column';
      th.addEventListener('click', function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).filter(function (r) {
          return !r.classList.contains('total');
        });
        var dir = th.getAttribute('data-dir') === 'asc' ? -1 : 1;
        th.setAttribute('data-dir', dir === 1 ? 'asc' : 'desc');
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          return (x < y ? -1 : x > y ? 1 : 0) * dir;
        });
        var totals = body.querySelectorAll('tr.total');
        rows.forEach(function (r) { body.appendChild(r); });
        totals.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.body.setAttribute('data-ready', '1');
})();
"""


def _num(v: float, text: str) -> str:
    """A table cell sorting by ``v``, showing ``text``."""
    data = "" if math.isnan(v) else f' data-v="{v if math.isfinite(v) else 1e300:.6g}"'
    return f"<td{data}>{escape(text)}</td>"


def _ratio(x: float) -> str:
    return f"{x:.2f}x" if math.isfinite(x) else "∞"


def _verdict(fleet: Fleet) -> str:
    rec = fleet.recommendation
    t = fleet.totals
    best = t[fleet.best]
    others = sorted((a for a in fleet.algos if a != fleet.best), key=lambda a: t[a].mem_used)
    versus = ""
    if others:
        o = t[others[0]]
        versus = (
            f" The next best, {escape(o.algo)}, would take {human(o.mem_used)}: "
            f"{human(o.mem_used - best.mem_used)} more."
        )
    reasons = "".join(f"<li>{escape(r)}</li>" for r in rec.reasons)
    lines = escape("\n".join(rec.sysfs_lines()))
    return f"""
<div class="verdict">
<p>Best algorithm: <b class="algo">{escape(fleet.best)}</b>. The fleet's
{human(best.orig_bytes)} of pages would take <b>{human(best.mem_used)}</b> of RAM
(effective ratio {_ratio(best.effective_ratio)}); it takes the least RAM on
{best.wins} of {len(fleet.results)} results.{versus}</p>
<p>One setting for every machine: <b>disksize {sysfs_size(rec.disksize)}</b>,
<b>mem_limit {sysfs_size(rec.mem_limit)}</b>, algorithm {escape(rec.algo)}.</p>
<pre id="sysfs">{lines}</pre>
<p>Why:</p>
<ul id="reasons">{reasons}</ul>
</div>"""


def _totals_table(fleet: Fleet) -> str:
    zswap = all(t.zswap_pool_bytes is not None for t in fleet.totals.values())
    head = [
        "algorithm",
        "uncompressed",
        "compressed",
        "RAM (mem_used_total)",
        "effective ratio",
        "compression ratio",
        "huge pages",
        "same-filled",
        "metadata (approx.)",
        "best for",
    ]
    if zswap:
        head.append("zswap pool")
    rows = []
    best_ram = fleet.totals[fleet.best].mem_used
    for a in fleet.algos:
        t = fleet.totals[a]
        cls = ' class="best"' if t.mem_used == best_ram else ""
        cells = [
            f"<td>{escape(a)}{'' if t.kernel_exact else ' (approx.)'}</td>",
            _num(t.orig_bytes, human(t.orig_bytes)),
            _num(t.compr_bytes, human(t.compr_bytes)),
            f'<td{cls} data-v="{t.mem_used}">{human(t.mem_used)}</td>',
            _num(t.effective_ratio, _ratio(t.effective_ratio)),
            _num(t.compression_ratio, _ratio(t.compression_ratio)),
            _num(t.huge_pages, f"{t.huge_pages:,}"),
            _num(t.same_pages, f"{t.same_pages:,}"),
            _num(t.metadata_bytes, human(t.metadata_bytes)),
            _num(t.wins, f"{t.wins} of {len(fleet.results)}"),
        ]
        if zswap:
            z = t.zswap_pool_bytes or 0
            cells.append(_num(z, human(z)))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _table("totals", head, rows)


def _spread_table(fleet: Fleet) -> str:
    head = ["algorithm", "ratio"] + [
        {0: "min", 50: "median", 100: "max"}.get(p, f"p{p}") for p in PERCENTILES
    ]
    rows = []
    for a in fleet.algos:
        t = fleet.totals[a]
        for what, vals in (("effective", t.effective), ("compression", t.compression)):
            cells = [f"<td>{escape(a)}</td>", f"<td>{what}</td>"]
            cells += [_num(vals[p], _ratio(vals[p])) for p in PERCENTILES]
            rows.append("<tr>" + "".join(cells) + "</tr>")
    return _table("spread", head, rows)


def _results_table(fleet: Fleet) -> str:
    head = ["result", "host", "pages", "uncompressed"]
    for a in fleet.algos:
        head += [f"{a} RAM", f"{a} ratio"]
    head.append("best")
    rows = []
    for r in fleet.results:
        best = fleet.best_of(r)
        orig = r.algos[fleet.algos[0]].orig_bytes
        cells = [
            f'<td title="{escape(r.path)}">{escape(r.name)}</td>',
            f"<td>{escape(r.host or '')}</td>",
            _num(r.pages, f"{r.pages:,}"),
            _num(orig, human(orig)),
        ]
        for a in fleet.algos:
            x = r.algos[a]
            cls = ' class="best"' if a == best else ""
            cells.append(f'<td{cls} data-v="{x.mem_used}">{human(x.mem_used)}</td>')
            cells.append(_num(x.effective_ratio, _ratio(x.effective_ratio)))
        cells.append(f"<td>{escape(best)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    total = [
        "<td>all results</td>",
        "<td></td>",
        _num(fleet.pages, f"{fleet.pages:,}"),
        _num(
            fleet.totals[fleet.algos[0]].orig_bytes, human(fleet.totals[fleet.algos[0]].orig_bytes)
        ),
    ]
    for a in fleet.algos:
        t = fleet.totals[a]
        cls = ' class="best"' if a == fleet.best else ""
        total.append(f'<td{cls} data-v="{t.mem_used}">{human(t.mem_used)}</td>')
        total.append(_num(t.effective_ratio, _ratio(t.effective_ratio)))
    total.append(f"<td>{escape(fleet.best)}</td>")
    rows.append('<tr class="total">' + "".join(total) + "</tr>")
    return _table("results", head, rows)


def _table(ident: str, head: list[str], rows: list[str]) -> str:
    ths = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (
        f'<div class="scroll"><table id="{ident}" class="sortable"><thead><tr>{ths}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _inputs(fleet: Fleet) -> str:
    items = []
    for r in fleet.results:
        srcs = ", ".join(r.sources) or "?"
        items.append(
            f"<li><b>{escape(r.name)}</b>: {escape(r.path)} — {r.pages:,} pages of "
            f"{r.page_size} B, chain size {r.chain_size}; sources: {escape(srcs)}</li>"
        )
    return "<ul class='small'>" + "".join(items) + "</ul>"


def render_html(fleet: Fleet, *, title: str = "zram fleet report", now: str | None = None) -> str:
    """The whole page as a string (UTF-8 when written)."""
    from zsmalloc import __version__

    when = now or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    plots = all_plots(fleet)

    def figure(k: str) -> str:
        cap, uri = plots[k]
        return (
            f'<figure id="fig-{k}"><img alt="{escape(cap)}" src="{uri}">'
            f"<figcaption>{escape(cap)}</figcaption></figure>"
        )

    notes = ""
    if fleet.notes:
        notes = (
            "<h2>Notes</h2><ul class='notes'>"
            + "".join(f"<li>{escape(n)}</li>" for n in fleet.notes)
            + "</ul>"
        )
    n = len(fleet.results)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="sub">{n} result{"s" if n != 1 else ""}, {fleet.pages:,} pages
({human(fleet.totals[fleet.best].orig_bytes)}), algorithms {escape(", ".join(fleet.algos))};
Linux 6.18 zram + zsmalloc model; made {escape(when)} by zsmalloc {escape(__version__)}.</p>
{_verdict(fleet)}
<h2>Totals per algorithm</h2>
<p class="small">Each result is one zram device: the fleet's RAM is the sum of theirs.
Click a header to sort.</p>
{_totals_table(fleet)}
{figure("ram")}
<h2>Spread across results</h2>
{_spread_table(fleet)}
{figure("ratios")}
<h2>Each result</h2>
{_results_table(fleet)}
{figure("per-result")}
{figure("lengths")}
{notes}
<h2>Inputs</h2>
{_inputs(fleet)}
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_html(fleet: Fleet, path: str, **kwargs: str) -> None:
    """Write the page to ``path``."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_html(fleet, **kwargs))
