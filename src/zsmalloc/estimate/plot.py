"""``--plot FILE``: one PNG, one row per algorithm.

Left: per size class (x = class size in bytes), the compressed bytes stored
there and, stacked on top, the bytes lost to fragmentation (handle headers,
rounding up to the class size, zspage tails, free slots).  Right: the
histogram of compressed lengths with zram's huge threshold marked; pages at
or beyond it are stored raw, one page each.  Same-filled pages are not stored
at all and are only counted in the title.

matplotlib runs with the Agg backend (no display needed) and is imported only
when a plot is asked for, keeping the command quick to start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from zsmalloc.errors import InputError
from zsmalloc.estimate.render import human
from zsmalloc.estimate.report import Report

if TYPE_CHECKING:
    from zsmalloc.estimate.whatif import Side

HIST_BIN = 64  # bytes per histogram bar


def write_plot(rep: Report, path: str) -> None:
    """Draw the report's per-class memory and length histograms into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rep.algos)
    fig, axes = plt.subplots(n, 2, figsize=(15, 4.2 * n), squeeze=False)
    mib = 2**20
    for row, (algo, r) in enumerate(rep.algos.items()):
        st = r.state
        d = r.derived()
        ps = rep.page_size
        used = st.obj_used > 0
        # Each bar spans the sizes its class serves: (previous real class size, size].
        lower = np.concatenate(([0], st.size[:-1]))[used]
        size = st.size[used]
        width = size - lower
        stored = st.stored_bytes[used] / mib
        lost = {k: v[used] / mib for k, v in st.lost_bytes().items()}
        ax = axes[row][0]
        ax.bar(lower, stored, width=width, align="edge", label="compressed data", color="#4c72b0")
        bottom = stored.copy()
        colours = {
            "header": "#dd8452",
            "rounding": "#c44e52",
            "tail": "#8172b3",
            "free_slots": "#937860",
        }
        labels = {
            "header": "lost: 8-byte handles",
            "rounding": "lost: rounding to class size",
            "tail": "lost: zspage tails",
            "free_slots": "lost: free slots",
        }
        for cause, vals in lost.items():
            ax.bar(
                lower,
                vals,
                width=width,
                bottom=bottom,
                align="edge",
                color=colours[cause],
                label=labels[cause],
            )
            bottom = bottom + vals
        # The huge class (one page per object) can dwarf the rest: clip it, label it.
        huge = st.table.huge[st.index][used]
        if huge.any() and (~huge).any():
            rest = float(bottom[~huge].max())
            top = float(bottom[huge].max())
            if top > 1.5 * rest > 0:
                ax.set_ylim(0, 1.25 * rest)
                ax.text(
                    ps - 16,
                    1.2 * rest,
                    f"huge:\n{human(top * mib)}\n(clipped)",
                    fontsize=8,
                    va="top",
                    ha="right",
                    color="white",
                    fontweight="bold",
                )
        ax.set_xlim(0, ps)
        ax.set_xlabel("size class (bar: the object sizes it serves, bytes)")
        ax.set_ylabel("MiB")
        ax.set_title(
            f"{algo}: {human(st.total_pages * ps)} of RAM for {human(st.pages_stored * ps)}; "
            f"lost to fragmentation {human(d['lost_to_fragmentation_bytes'])} "
            f"({d['lost_to_fragmentation_pct_of_mem_used']:.1f}%)",
            fontsize=10,
        )
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(axis="y", alpha=0.3)

        ax = axes[row][1]
        h = r.len_hist
        nbins = -(-len(h) // HIST_BIN)
        padded = np.zeros(nbins * HIST_BIN, dtype=np.int64)
        padded[: len(h)] = h
        counts = padded.reshape(nbins, HIST_BIN).sum(axis=1)
        last = int(np.flatnonzero(counts).max()) + 1 if counts.any() else 1
        edges = np.arange(last) * HIST_BIN
        hcs = st.table.huge_class_size
        colour = np.where(edges + HIST_BIN <= hcs, "#55a868", "#c44e52")
        ax.bar(edges, counts[:last], width=HIST_BIN, align="edge", color=colour)
        ax.axvline(hcs, color="black", linestyle="--", linewidth=1)
        ax.text(
            hcs - 24,
            ax.get_ylim()[1] * 0.95,
            f"huge_class_size {hcs}:\nfrom here on stored raw",
            fontsize=8,
            va="top",
            ha="right",
        )
        ax.set_xlabel(f"compressed length (bytes, {HIST_BIN}-byte bins)")
        ax.set_ylabel("pages")
        ax.set_title(
            f"{algo}: compressed sizes; {d['same_pages']} same-filled pages not shown "
            f"(stored as 0 B), {d['huge_pages']} huge",
            fontsize=10,
        )
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        f"zram estimate: {rep.tally.pages} pages of {rep.page_size} B, Linux 6.18 model, "
        f"chain size {rep.chain_size}",
        fontsize=12,
    )
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=90, format="png")
    except OSError as exc:
        raise InputError(f"cannot write the plot: {exc.strerror}", path=path) from None
    finally:
        plt.close(fig)


def write_whatif_plot(ref: Side, variants: Sequence[Side], path: str) -> None:
    """``whatif --plot``: each side's memory (compressed data and what is lost around it)
    and, per class size, the pages each side uses (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides = [ref, *variants]
    labels = [s.label + (" (reference)" if s is ref else "") for s in sides]
    mib = 2**20
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 1.2 + 0.45 * len(sides) + 3))
    y = np.arange(len(sides))[::-1]
    data = np.array([s.mm_stat.compr_data_size for s in sides]) / mib
    lost = np.array([s.lost_bytes for s in sides]) / mib
    left.barh(y, data, label="compressed data", color="#4c72b0")
    left.barh(y, lost, left=data, label="lost to fragmentation", color="#c44e52")
    left.set_yticks(y, labels, fontsize=8)
    left.set_xlabel("mem_used_total (MiB)")
    left.legend(loc="lower right", fontsize=8)
    for s in sides:
        used = s.obj_used > 0
        right.step(s.size[used], s.pages_used[used], where="mid", label=s.label, linewidth=1)
    right.set_xlabel("class size (bytes)")
    right.set_ylabel("pages used")
    right.legend(fontsize=7)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise InputError(f"cannot write the plot: {exc.strerror}", path=path) from None
    finally:
        plt.close(fig)
