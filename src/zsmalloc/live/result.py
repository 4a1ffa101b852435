"""What a check against the kernel found: counters side by side, and where they first differ.

Every live check -- zram's random workload (:mod:`.verify_zram`), zswap's
store-and-churn run (:mod:`.verify_zswap`), the estimate's image
(:mod:`.verify_estimate`) -- returns one :class:`VerifyResult`, and every
disagreement, there and in a trace replay, is one :class:`Divergence`: the
kernel's row and the model's row of named integer columns (mm_stat's nine,
io_stat's four, a few debugfs counters), or, for a stat file compared as
text, where the bytes first differ.  These are data; ``zsmalloc.cli`` renders
them (``cli/live.py``) and ``to_dict()`` gives the JSON.

A ``Divergence`` has a ``kind`` saying whom to blame:

============ =============================================================
``model``    the model computed something else: a bug here
``shrinker`` the kernel's zsmalloc shrinker compacted the pool on its own and
             the rows still differ after the model followed it
``harness``  the harness could not do what the check needs (pages that
             MADV_PAGEOUT left resident): the numbers cannot be compared
============ =============================================================

Long runs report progress through a :data:`Progress` callback the caller
passes in (the CLI draws a bar with it); nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from zsmalloc.zram.stats import MM_STAT_COLUMNS, IoStat

IO_STAT_COLUMNS = IoStat._fields
EXACT = "exact"  # kernel == model
AT_LEAST = ">= model"  # kernel >= model: machine-wide counters others may add to
NEAR = "within 0.1 %"  # |kernel - model| <= 0.1 % of the model: a swap-out left pages behind
NEAR_FRACTION = 0.001

Progress = Callable[[str, int, int | None], None]
"""``progress(what, done, total)``: ``done`` of ``total`` steps of ``what`` (None: unknown)."""


@dataclass(frozen=True)
class Divergence:
    """The first place where kernel and model disagree."""

    where: str  # "line 12", "op 345 (write slot 7 (zeros))", "after the stores"
    what: str  # "mm_stat", "io_stat", "read-back", "debugfs", "debug_stat text", ...
    kernel: tuple[int, ...]
    model: tuple[int, ...]
    columns: tuple[str, ...] = MM_STAT_COLUMNS
    kind: str = "model"  # "model", "shrinker" or "harness" (see the module docstring)
    detail: str = ""  # for text files: where the bytes first differ

    @property
    def differing(self) -> list[str]:
        """The names of the columns whose values differ (or that one side lacks)."""
        return [
            self.columns[i] if i < len(self.columns) else str(i)
            for i in range(max(len(self.kernel), len(self.model)))
            if i >= len(self.kernel) or i >= len(self.model) or self.kernel[i] != self.model[i]
        ]

    def to_dict(self) -> dict[str, object]:
        return {
            "where": self.where,
            "what": self.what,
            "kind": self.kind,
            "columns": list(self.columns),
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
    """None when identical, else where the two texts first differ (for stat files)."""
    if kernel == model:
        return None
    n = next(
        (i for i, (a, b) in enumerate(zip(kernel, model, strict=False)) if a != b),
        min(len(kernel), len(model)),
    )
    return f"byte {n}: kernel {kernel[n : n + 20]!r} vs model {model[n : n + 20]!r}"


def compare_texts(where: str, name: str, kernel: str, model: str) -> Divergence | None:
    """None when the two files read identical, else a Divergence saying where."""
    detail = first_text_difference(kernel, model)
    if detail is None:
        return None
    return Divergence(where, f"{name} text", (), (), (), detail=detail)


@dataclass(frozen=True)
class Comparison:
    """One counter, read from the kernel and from the model at the same point of a run."""

    name: str
    kernel: int
    model: int
    rule: str = EXACT  # EXACT, AT_LEAST or NEAR
    phase: str = ""  # when: "stores", "churn", "written", "compacted", "end"

    @property
    def ok(self) -> bool:
        if self.rule == NEAR:
            return abs(self.kernel - self.model) <= NEAR_FRACTION * abs(self.model)
        return self.kernel == self.model if self.rule == EXACT else self.kernel >= self.model

    @property
    def off(self) -> float | None:
        """(kernel - model) / model, or None when the model says 0."""
        return (self.kernel - self.model) / self.model if self.model else None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "phase": self.phase,
            "kernel": self.kernel,
            "model": self.model,
            "rule": self.rule,
            "off": self.off,
            "ok": self.ok,
        }


def first_divergence(comparisons: Sequence[Comparison], what: str) -> Divergence | None:
    """The failing comparisons of the first phase that has any, as one Divergence."""
    for phase in dict.fromkeys(c.phase for c in comparisons):
        bad = [c for c in comparisons if c.phase == phase and not c.ok]
        if bad:
            return Divergence(
                f"after the {phase}" if phase else "at the end",
                what,
                tuple(c.kernel for c in bad),
                tuple(c.model for c in bad),
                tuple(c.name for c in bad),
            )
    return None


@dataclass
class VerifyResult:
    """What one live check did and found (zram, zswap or estimate)."""

    check: str  # "zram", "zswap" or "estimate"
    algorithm: str
    nr_pages: int  # device slots (zram), pages swapped out (zswap), image pages (estimate)
    seed: int | None = None
    ops_planned: int = 0
    ops_done: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # operations done, by kind
    events: dict[str, int] = field(default_factory=dict)  # refused stores, reads checked, ...
    comparisons: list[Comparison] = field(default_factory=list)  # the counters, side by side
    divergence: Divergence | None = None  # the first disagreement; None: all agreed
    notes: tuple[str, ...] = ()  # what was compared and by which rule
    restore_errors: list[str] = field(default_factory=list)  # machine state not given back
    device: str = ""  # the kernel device used (removed again at the end)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.divergence is None

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "check": self.check,
            "algorithm": self.algorithm,
            "pages": self.nr_pages,
            "seed": self.seed,
            "ops_planned": self.ops_planned,
            "ops_done": self.ops_done,
            "counts": dict(self.counts),
            "events": dict(self.events),
            "comparisons": [c.to_dict() for c in self.comparisons],
            "divergence": self.divergence.to_dict() if self.divergence else None,
            "restore_errors": list(self.restore_errors),
            "device": self.device,
            "seconds": round(self.seconds, 3),
        }
