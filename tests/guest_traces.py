"""The guest fill traces of tests/data/kernels: what each recorded, in test-friendly form.

A fill trace writes every page of a known page file once, slot by slot, into a fresh
zram device of a Debian kernel booted in QEMU, and records what the kernel stored for
each page and its mm_stat after each write.  Its comment lines name the kernel
release, the algorithm and the ``algorithm_params`` line that configured it.

Also what the tests and tools/guest_match.py both do with them: the estimate of a
trace's fill, and the compressor configuration of a column of
kernels/userspace-sizes.tsv.gz (the kernel's lib/ code built in user space).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsmalloc.estimate.driver import Tally, run_estimate
from zsmalloc.estimate.report import Report, build_report
from zsmalloc.estimate.sources import ArraySource

# workload -> (pages file under tests/data, PAGE_SIZE the pages are read as)
WORKLOAD_PAGES = {
    "fill-shared": ("shared_pages.bin.gz", 4096),
    "fill-shared16k": ("shared_pages.bin.gz", 16384),
    "ramp16k": ("kernels/ramp16k_pages.bin.gz", 16384),
}


@dataclass(frozen=True)
class FillTrace:
    name: str
    release: str  # the guest's uname -r
    algo: str
    level: int | None  # algorithm_params level=, None when not set
    winbits: int | None  # algorithm_params deflate.winbits=
    pages_file: str
    page_size: int
    stored: np.ndarray  # bytes the kernel stored per slot: 0 same-filled, PAGE_SIZE huge
    final_mm_stat: list[int]


def fill_trace_paths(testdata: Path) -> list[Path]:
    """Every fill trace of a known page file (other workloads are skipped)."""
    out = []
    for path in sorted((testdata / "kernels").glob("*.trace.gz")):
        with gzip.open(path, "rt") as f:
            first = f.readline()
        m = re.search(r"workload=(\S+)", first)
        if m and m.group(1) in WORKLOAD_PAGES:
            out.append(path)
    return out


def read_fill_trace(path: Path) -> FillTrace:
    text = gzip.decompress(path.read_bytes()).decode()
    header: dict[str, str] = {}
    params: dict[str, str] = {}
    sizes: dict[int, int] = {}
    final: list[int] = []
    for line in text.splitlines():
        if line.startswith("# zram size trace"):
            header = dict(w.split("=", 1) for w in line[1:].split() if "=" in w)
        elif line.startswith("#") and "param:" in line:
            params = dict(w.split("=", 1) for w in line.split("param:", 1)[1].split())
        elif line.startswith("w "):
            _, slot, size = line.split()
            sizes[int(slot)] = int(size)
        elif line.startswith("s "):
            sizes[int(line.split()[1])] = 0
        elif line.startswith("m "):
            final = [int(x) for x in line.split()[1:]]
    pages_file, page_size = WORKLOAD_PAGES[header["workload"]]
    return FillTrace(
        name=path.name.removesuffix(".trace.gz"),
        release=header["kernel"],
        algo=header["algo"],
        level=int(params["level"]) if "level" in params else None,
        winbits=int(params["deflate.winbits"]) if "deflate.winbits" in params else None,
        pages_file=pages_file,
        page_size=page_size,
        stored=np.array([sizes[i] for i in range(len(sizes))]),
        final_mm_stat=final,
    )


def load_pages(testdata: Path, trace: FillTrace) -> np.ndarray:
    raw = gzip.decompress((testdata / trace.pages_file).read_bytes())
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, trace.page_size)


def estimate_fill(trace: FillTrace, pages: np.ndarray) -> tuple[Tally, Report, np.ndarray]:
    """The estimate of the trace's fill as its guest ran it: the tally (lengths kept), its
    report at chain size 8, and each page's stored size as zram keeps it (PAGE_SIZE once
    huge), to compare with ``trace.stored``."""
    tally = run_estimate(
        [ArraySource(pages, trace.page_size, trace.name)],
        [trace.algo],
        page_size=trace.page_size,
        level=trace.level,
        kernel=trace.release,
        winbits=trace.winbits,
        keep_lengths=True,
    )
    report = build_report(tally, 8)
    lengths = tally.page_lengths(trace.algo).astype(np.int64)
    return tally, report, np.where(lengths >= report.huge_class_size, trace.page_size, lengths)


def userspace_config(column: str) -> tuple[str, int | None, int | None]:
    """A column of kernels/userspace-sizes.tsv.gz as (algorithm, level, deflate winbits):
    ``lz4hc-l9`` -> ("lz4hc", 9, None); ``deflate-l6-wb-15`` -> ("deflate", 6, -15)."""
    if column.startswith("lzo"):
        return column, None, None
    if column.startswith("lz4-a"):
        return "lz4", int(column[5:]), None
    if column == "lz4":
        return "lz4", None, None
    name, rest = column.split("-l", 1)
    level, _, winbits = rest.partition("-wb")
    return name, int(level), int(winbits) if winbits else None
