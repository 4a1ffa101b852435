"""The built-in sample: a reproducible mix of page kinds, for machines with nothing to read.

``zsmalloc estimate`` with no SOURCE reads this machine's processes; where none
is readable (a bare container, an unprivileged sandbox) it falls back to this
sample so the quick start still shows a full report.  The mix imitates what
zram typically receives, in fixed proportions, generated from a fixed seed so
every run gives the same figures:

=====================  ======  ================================================
kind                   share   what it looks like
=====================  ======  ================================================
text                    20 %   this package's own source files, page by page
small integers          15 %   int32 counters and indices below 1000
pointers                15 %   64-bit user-space addresses, 8-byte aligned
floats                  10 %   float64 samples of a smooth signal
sparse                  10 %   zero pages with a few scattered non-zero words
zero                    15 %   all-zero pages (same-filled: nothing stored)
pattern                  5 %   one repeated 8-byte word (same-filled)
random                  10 %   incompressible bytes (stored whole: huge)
=====================  ======  ================================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zsmalloc.estimate.sources import PageSource
from zsmalloc.profile import DEFAULT_PROFILE

SAMPLE_PAGES = 8192  # 32 MiB of 4 KiB pages: a few seconds at most
SEED = 0x5A5A_2024

KINDS = ("text", "ints", "pointers", "floats", "sparse", "zero", "pattern", "random")
SHARES = (20, 15, 15, 10, 10, 15, 5, 10)


def _package_text() -> bytes:
    """This package's source text; what cannot be read (an installation other users
    may not read, a zip) is left out, and the caller falls back to a fixed line."""
    root = Path(__file__).resolve().parent.parent
    out = []
    try:
        paths = sorted(root.rglob("*.py"))
    except OSError:
        return b""
    for p in paths:
        try:
            out.append(p.read_bytes())
        except OSError:
            continue
    return b"".join(out)


class SampleSource(PageSource):
    """The built-in sample as a page source (see the module docstring)."""

    kind = "built-in sample"
    label = "built-in sample (synthetic mix; no readable process memory here)"

    def __init__(self, page_size: int, nr_pages: int = SAMPLE_PAGES) -> None:
        super().__init__(self.label, page_size)
        self.nr_pages = nr_pages
        rng = np.random.default_rng(SEED)
        # Which kind each page is: fixed shares, interleaved in a fixed random order.
        counts = [nr_pages * s // 100 for s in SHARES]
        counts[0] += nr_pages - sum(counts)
        self._kinds = rng.permutation(np.repeat(np.arange(len(KINDS)), counts))
        self._text = np.frombuffer(_package_text() or b"zsmalloc\n", dtype=np.uint8)

    def total_pages(self) -> int | None:
        return self.nr_pages

    def _page(self, i: int, out: np.ndarray) -> None:
        ps = self.page_size
        kind = KINDS[self._kinds[i]]
        rng = np.random.default_rng((SEED, i))
        if kind == "text":
            start = (i * ps) % max(1, len(self._text) - ps)
            chunk = self._text[start : start + ps]
            out[: len(chunk)] = chunk
            out[len(chunk) :] = 0
        elif kind == "ints":
            out.view(np.int32)[:] = rng.integers(0, 1000, ps // 4, dtype=np.int32)
        elif kind == "pointers":
            base = 0x7F00_0000_0000 + int(rng.integers(0, 1 << 24)) * 4096
            out.view(np.uint64)[:] = base + rng.integers(0, 1 << 16, ps // 8, dtype=np.uint64) * 8
        elif kind == "floats":
            t = np.arange(ps // 8) * 0.01 + i
            out.view(np.float64)[:] = np.sin(t) * 100.0
        elif kind == "sparse":
            out[:] = 0
            words = out.view(np.uint64)
            idx = rng.integers(0, len(words), 12)
            words[idx] = rng.integers(1, 1 << 40, len(idx), dtype=np.uint64)
        elif kind == "zero":
            out[:] = 0
        elif kind == "pattern":
            out.view(np.uint64)[:] = np.uint64(0x0101_0101_0101_0101 * int(rng.integers(1, 255)))
        else:
            out[:] = rng.integers(0, 256, ps, dtype=np.uint8)

    def read_pages(self, out: np.ndarray) -> int:
        n = min(len(out), self.nr_pages - self.pages)
        for k in range(n):
            self._page(self.pages + k, out[k])
        self.pages += n
        return n


# -- a mix of this machine's real data, for checks against the live kernel -------------

MIX_ROOTS = ("/usr/bin", "/usr/lib", "/usr/share")
MIX_BLOCK = 64  # pages per run from one source, runs interleaved in a fixed random order


def machine_mix(
    nr_pages: int, page_size: int = DEFAULT_PROFILE.page_size, seed: int = SEED
) -> np.ndarray:
    """``nr_pages`` pages of real data from this machine, in memory (never written out).

    Half files under /usr (binaries, libraries, text), a quarter resident
    anonymous memory of the readable processes, a quarter the built-in sample;
    interleaved in runs of 64 pages.  Where processes or files run short the
    other sources fill in.  Used by the live tests and the benchmark to check
    ``estimate`` against a real zram device on the same pages.
    """
    from zsmalloc.estimate.process import AllProcessesSource
    from zsmalloc.estimate.sources import DirectorySource

    out = np.empty((nr_pages, page_size), dtype=np.uint8)
    nblocks = -(-nr_pages // MIX_BLOCK)
    rng = np.random.default_rng(seed)
    kinds = rng.choice(3, size=nblocks, p=[0.5, 0.25, 0.25])  # files, processes, sample
    files: list[PageSource] = [DirectorySource(r, page_size) for r in MIX_ROOTS if Path(r).is_dir()]
    procs: list[PageSource] = []
    if page_size == 4096:
        procs = [AllProcessesSource(page_size)]
    sample: list[PageSource] = [SampleSource(page_size, nr_pages)]
    pools = {0: files, 1: procs, 2: sample}
    for b in range(nblocks):
        lo, hi = b * MIX_BLOCK, min(nr_pages, (b + 1) * MIX_BLOCK)
        n = lo
        # The block's own kind first; then files, then the sample.
        order = [int(kinds[b])] + [k for k in (0, 2, 1) if k != kinds[b]]
        for kind in order:
            pool = pools[kind]
            while n < hi and pool:
                src = pool[b % len(pool)]
                got = src.read_pages(out[n:hi])
                n += got
                if n < hi:  # exhausted
                    src.close()
                    pool.remove(src)
            if n == hi:
                break
        if n < hi:  # cannot happen: the sample alone has nr_pages pages
            raise RuntimeError("machine_mix: ran out of pages")
    for pool in pools.values():
        for src in pool:
            src.close()
    return out
