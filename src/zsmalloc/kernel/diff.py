"""Comparing the model with the kernel: the first differing row, shown column by column.

Both trace replay (recorded kernel rows) and the live differential check
(``zsmalloc verify``) end in the same question: at which step did the model's
counters first differ from the kernel's, and in which columns?  This module
answers it once, for any named row of integers (mm_stat's nine columns,
io_stat's four), and renders the answer as the two rows one above the other
with the differing columns named, so a report reads like::

    line 1234: mm_stat differs in mem_used_total, mem_used_max
      kernel    4096     2581    28672 ...
      model     4096     2581    32768 ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zsmalloc.zram.stats import MM_STAT_COLUMNS, IoStat

IO_STAT_COLUMNS: tuple[str, ...] = IoStat._fields


@dataclass(frozen=True)
class Divergence:
    """The first place where kernel and model disagree."""

    where: str  # "line 12" or "op 345 (write slot 7)"
    what: str  # "mm_stat", "io_stat", "read-back", ...
    kernel: tuple[int, ...]
    model: tuple[int, ...]
    columns: tuple[str, ...] = MM_STAT_COLUMNS
    kind: str = "model"  # "model": a model bug; "shrinker": the kernel compacted on its own
    detail: str = ""  # for text files: where the bytes first differ

    @property
    def differing(self) -> list[str]:
        return [
            self.columns[i] if i < len(self.columns) else str(i)
            for i in range(max(len(self.kernel), len(self.model)))
            if i >= len(self.kernel) or i >= len(self.model) or self.kernel[i] != self.model[i]
        ]

    def render(self) -> str:
        """Two aligned rows and the names of the columns that differ."""
        if self.detail:
            return f"{self.where}: {self.what} differs at {self.detail}"
        head = f"{self.where}: {self.what} differs in {', '.join(self.differing)}"
        if self.kind == "shrinker":
            head += " (the kernel's zsmalloc shrinker compacted the pool on its own)"
        k = " ".join(f"{v:8d}" for v in self.kernel)
        m = " ".join(f"{v:8d}" for v in self.model)
        return f"{head}\n  kernel {k}\n  model  {m}"

    def to_dict(self) -> dict[str, object]:
        return {
            "where": self.where,
            "what": self.what,
            "kind": self.kind,
            "kernel": list(self.kernel),
            "model": list(self.model),
            "differing_columns": self.differing,
            "detail": self.detail or None,
        }


def compare_rows(
    where: str,
    what: str,
    kernel: Sequence[int],
    model: Sequence[int],
    columns: tuple[str, ...] = MM_STAT_COLUMNS,
) -> Divergence | None:
    """None when the rows are equal, else the Divergence describing them."""
    k, m = tuple(int(v) for v in kernel), tuple(int(v) for v in model)
    if k == m:
        return None
    return Divergence(where, what, k, m, columns)


def first_text_difference(kernel: str, model: str) -> str | None:
    """None when byte-identical, else where the two texts first differ (for stat files)."""
    if kernel == model:
        return None
    n = next(
        (i for i, (a, b) in enumerate(zip(kernel, model, strict=False)) if a != b),
        min(len(kernel), len(model)),
    )
    return f"byte {n}: kernel {kernel[n : n + 20]!r} vs model {model[n : n + 20]!r}"


def compare_texts(where: str, name: str, kernel: str, model: str) -> Divergence | None:
    """None when the two files read byte-identical, else a Divergence saying where."""
    detail = first_text_difference(kernel, model)
    if detail is None:
        return None
    return Divergence(where, f"{name} text", (), (), (), detail=detail)
