"""One ``zsmalloc estimate --json`` result, read back: what one machine or source measured.

A fleet report reads many of these, written on many machines (or for many
core dumps, VM images, ...), and keeps from each only what it compares: per
algorithm the ``mm_stat`` figures that decide RAM (``orig_data_size``,
``compr_data_size``, ``mem_used_total``), the huge and same-filled pages, the
metadata zram spends outside ``mem_used_total``, zswap's pool where it was
measured, and the histogram of compressed lengths (to draw the fleet's
distribution).  Each result is one zram device: the fleet's RAM is the sum of
the devices', never the figure of one device holding everything.

Anything that is not such a result (not JSON, or JSON of another shape) is an
:class:`~zsmalloc.errors.InputError` naming the file and what was expected.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsmalloc.errors import InputError


@dataclass
class AlgoResult:
    """One algorithm's figures in one result."""

    orig_bytes: int  # mm_stat orig_data_size: every page written, same-filled ones too
    compr_bytes: int  # compr_data_size
    mem_used: int  # mem_used_total: the RAM the device takes
    mem_used_after_compact: int
    huge_pages: int
    same_pages: int
    kernel_exact: bool  # lzo, lzo-rle, lz4: the kernel's lengths; others approximate
    metadata_bytes: int  # slot table, handles, zspage structs (outside mem_used_total)
    zswap_pool_bytes: int | None  # zswap's pool for the same pages, when --zswap was given
    zswap_pool: str | None = None  # ... on which kernel and allocator ("6.1 zbud"), if said
    histogram: dict[int, int] = field(default_factory=dict)  # compressed length -> pages

    @property
    def effective_ratio(self) -> float:
        """orig / RAM: what the RAM really holds, allocator overhead included."""
        return self.orig_bytes / self.mem_used if self.mem_used else float("inf")

    @property
    def compression_ratio(self) -> float:
        """orig / compressed data (zramctl's DATA/COMPR)."""
        return self.orig_bytes / self.compr_bytes if self.compr_bytes else float("inf")


@dataclass
class Result:
    """One ``estimate --json`` file."""

    name: str  # how the report calls it: the file name without .json
    path: str
    host: str | None
    sources: list[str]  # the SOURCE labels it measured
    pages: int
    page_size: int
    chain_size: int
    level: int | None
    huge_class_size: int
    interrupted: bool
    algos: dict[str, AlgoResult]


def _algo(name: str, a: dict[str, Any]) -> AlgoResult:
    mm, after, derived = a["mm_stat"], a["mm_stat_after_compact"], a["derived"]
    hist = a.get("compressed_length_histogram") or {"length": [], "pages": []}
    zswap = a.get("zswap")
    return AlgoResult(
        orig_bytes=int(mm["orig_data_size"]),
        compr_bytes=int(mm["compr_data_size"]),
        mem_used=int(mm["mem_used_total"]),
        mem_used_after_compact=int(after["mem_used_total"]),
        huge_pages=int(mm["huge_pages"]),
        same_pages=int(mm["same_pages"]),
        kernel_exact=bool(a.get("kernel_exact", False)),
        metadata_bytes=int(derived.get("metadata_bytes_approx", {}).get("total", 0)),
        zswap_pool_bytes=int(zswap["pool_total_size"]) if zswap else None,
        zswap_pool=_zswap_pool(zswap),
        histogram={int(n): int(p) for n, p in zip(hist["length"], hist["pages"], strict=True) if p},
    )


def _zswap_pool(zswap: dict[str, Any] | None) -> str | None:
    """"KERNEL ZPOOL" of an estimate's zswap view (results before --kernel say neither)."""
    if not zswap or "kernel" not in zswap:
        return None
    return f"{zswap['kernel']} {zswap.get('zpool') or 'zsmalloc'}"


def parse_result(doc: Any, path: str, name: str | None = None) -> Result:
    """A :class:`Result` from the parsed JSON of ``estimate --json``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("algorithms"), dict):
        raise InputError(
            "expected the JSON of `zsmalloc estimate --json` (an object with "
            "'algorithms'), found something else",
            path=path,
        )
    try:
        inp = doc["input"]
        algos = {a: _algo(a, v) for a, v in doc["algorithms"].items()}
        result = Result(
            name=name or Path(path).name.removesuffix(".json"),
            path=path,
            host=inp.get("host"),
            sources=[str(s["label"]) for s in inp.get("sources", [])],
            pages=int(inp["pages"]),
            page_size=int(doc["page_size"]),
            chain_size=int(doc["chain_size"]),
            level=doc.get("level"),
            huge_class_size=int(doc["huge_class_size"]),
            interrupted=bool(inp.get("interrupted", False)),
            algos=algos,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"not a complete `zsmalloc estimate --json` result: bad or missing {exc}", path=path
        ) from None
    if not algos:
        raise InputError("the result has no algorithm", path=path)
    return result


def load_result(path: str | os.PathLike[str]) -> Result:
    """Read one result file; an unreadable or malformed one raises InputError."""
    p = str(path)
    try:
        with open(p, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise InputError("no such file or directory", path=p) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=p) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON ({exc})", path=p) from None
    return parse_result(doc, p)


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The result files: each path, or every ``*.json`` in a directory (sorted)."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(str(q) for q in Path(p).glob("*.json") if q.is_file())
            if not found:
                raise InputError("no *.json result in this directory", path=str(p))
            out += found
        else:
            out.append(str(p))
    return out


def load_results(paths: Iterable[str | os.PathLike[str]]) -> list[Result]:
    """Every result, named after its file; names made unique with the directory."""
    results = [load_result(p) for p in expand_paths(paths)]
    seen: dict[str, int] = {}
    for r in results:
        seen[r.name] = seen.get(r.name, 0) + 1
    for r in results:
        if seen[r.name] > 1:
            r.name = r.path.removesuffix(".json")
    if not results:
        raise InputError("no result to report on")
    return results
