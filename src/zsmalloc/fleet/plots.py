"""The fleet report's plots, as SVG ``data:`` URIs the page carries inline.

A report must open anywhere, offline, from one file: each figure is drawn by
matplotlib (Agg, no display) into SVG and embedded as a ``data:image/svg+xml``
URI, so nothing is fetched and no two figures share an id namespace (inline
``<svg>`` elements would: matplotlib names its clip paths per figure).  Text
stays text (``svg.fonttype = none``): smaller, and the browser's own font.
Figures are deterministic (fixed hash salt, no date) so a report can be diffed.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from zsmalloc.fleet.summary import Fleet

MIB = 1 << 20
HIST_BIN = 64  # bytes per bin of the compressed-length distribution
MAX_RESULTS_PLOTTED = 40  # the per-result figure shows the largest ones
COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"]


@contextmanager
def _figure(*args: Any, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "zsmalloc"}):
        fig, axes = plt.subplots(*args, **kwargs)
        try:
            yield fig, axes
        finally:
            plt.close(fig)


def _data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def ram_per_algorithm(fleet: Fleet) -> str:
    """The fleet's RAM per algorithm: compressed data plus allocator overhead, against
    the uncompressed data."""
    algos = fleet.algos
    t = [fleet.totals[a] for a in algos]
    with _figure(figsize=(7.5, 0.55 * len(algos) + 1.6)) as (fig, ax):
        y = np.arange(len(algos))
        compr = np.array([x.compr_bytes for x in t]) / MIB
        over = np.array([x.mem_used - x.compr_bytes for x in t]) / MIB
        ax.barh(y, compr, color="#4c72b0", label="compressed data (compr_data_size)")
        ax.barh(y, over, left=compr, color="#dd8452", label="zsmalloc overhead")
        orig = t[0].orig_bytes / MIB
        ax.axvline(orig, color="#333", ls="--", lw=1, label="uncompressed (orig_data_size)")
        for i, x in enumerate(t):
            ax.text(
                (x.mem_used / MIB) + orig * 0.01,
                i,
                f"{x.effective_ratio:.2f}x",
                va="center",
                fontsize=9,
            )
        ax.set_yticks(y, algos)
        ax.invert_yaxis()
        ax.set_xlabel("MiB of RAM, all results (mem_used_total)")
        ax.set_title("RAM per algorithm over the fleet (label: effective ratio)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=8)
        return _data_uri(fig)


def ratio_distribution(fleet: Fleet) -> str:
    """Effective and compression ratios across results: one point per result, boxes."""
    algos = fleet.algos
    rng = np.random.default_rng(0)  # fixed offsets: the same report draws the same
    with _figure(1, 2, figsize=(10, 3.6), sharey=False) as (fig, axes):
        for ax, what in zip(axes, ("effective_ratio", "compression_ratio"), strict=True):
            data = [[min(getattr(r.algos[a], what), 1e6) for r in fleet.results] for a in algos]
            ax.boxplot(data, showfliers=False, widths=0.5)
            ax.set_xticks(range(1, len(algos) + 1), algos)
            for i, vals in enumerate(data):
                x = i + 1 + rng.uniform(-0.15, 0.15, len(vals))
                ax.scatter(x, vals, s=12, color=_colour(i), alpha=0.8, zorder=3)
            label = "effective (orig / RAM)" if what == "effective_ratio" else "orig / compr"
            ax.set_ylabel(label)
            ax.set_title(f"{what.replace('_', ' ')} across {len(fleet.results)} results")
            ax.grid(axis="y", alpha=0.3)
        return _data_uri(fig)


def ram_per_result(fleet: Fleet) -> str:
    """RAM per result and algorithm (the largest results when there are many)."""
    results = sorted(fleet.results, key=lambda r: -r.pages)[:MAX_RESULTS_PLOTTED]
    algos = fleet.algos
    h = 0.8 / len(algos)
    with _figure(figsize=(8, 0.32 * len(results) * max(1, len(algos) / 2) + 1.5)) as (fig, ax):
        y = np.arange(len(results))
        for i, a in enumerate(algos):
            ram = [r.algos[a].mem_used / MIB for r in results]
            ax.barh(y + i * h, ram, height=h, color=_colour(i), label=a)
        orig = [r.algos[algos[0]].orig_bytes / MIB for r in results]
        ax.scatter(orig, y + 0.4 - h / 2, marker="|", s=120, color="#333", label="uncompressed")
        ax.set_yticks(y + 0.4 - h / 2, [r.name for r in results])
        ax.invert_yaxis()
        ax.set_xlabel("MiB (mem_used_total)")
        shown = f"the {len(results)} largest of {len(fleet.results)}"
        title = "RAM per result" + (f" ({shown})" if len(results) < len(fleet.results) else "")
        ax.set_title(title)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize=8)
        return _data_uri(fig)


def length_distribution(fleet: Fleet) -> str:
    """How the fleet's pages compress: pages by compressed length, per algorithm, with
    zram's huge threshold (stored raw at or above it)."""
    r0 = fleet.results[0]
    top = r0.page_size
    edges = np.arange(0, top + HIST_BIN, HIST_BIN)
    with _figure(figsize=(9, 3.4)) as (fig, ax):
        for i, a in enumerate(fleet.algos):
            counts = np.zeros(len(edges) - 1, dtype=np.int64)
            for r in fleet.results:
                for length, pages in r.algos[a].histogram.items():
                    counts[min(length, top - 1) // HIST_BIN] += pages
            ax.stairs(counts, edges, label=a, color=_colour(i), lw=1.5)
        huge = sorted({r.huge_class_size for r in fleet.results})
        for hc in huge:
            ax.axvline(hc, color="#c44e52", ls=":", lw=1)
        ax.text(
            huge[0],
            ax.get_ylim()[1] * 0.95,
            "huge: stored raw ",
            color="#c44e52",
            va="top",
            ha="right",
        )
        ax.set_xlabel(f"compressed length, bytes (bins of {HIST_BIN}; same-filled pages apart)")
        ax.set_ylabel("pages")
        ax.set_title("compressed lengths over the fleet")
        ax.legend(fontsize=8)
        return _data_uri(fig)


def all_plots(fleet: Fleet) -> dict[str, tuple[str, str]]:
    """Every figure: id -> (caption, data URI)."""
    return {
        "ram": ("RAM per algorithm, all results together", ram_per_algorithm(fleet)),
        "ratios": ("How the ratios spread across results", ratio_distribution(fleet)),
        "per-result": ("RAM per result", ram_per_result(fleet)),
        "lengths": ("Compressed lengths of every page", length_distribution(fleet)),
    }
