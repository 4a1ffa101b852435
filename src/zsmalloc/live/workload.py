"""The workloads of the live checks: reproducible from one seed, the same for kernel and model.

zram (``zsmalloc verify --kernel``, :func:`zram_ops`): a list of operations
on a small device -- writes of varied real pages (4 KiB pieces of files under
/usr: ELF code, text, data) and synthetic ones (zeros, same-filled words,
short periods, sparse pages, random bytes that end up huge, random-prefix-
then-zeros pages that land on every size class), overwrites, discards,
compactions, reads, ``mem_limit`` set just above the current use so stores
start failing (and lifted again), and ``mem_used_max`` resets.

zswap (``zsmalloc verify --zswap``, :func:`zswap_pages`, :func:`zswap_churn`):
a set of pages to swap out -- pages of the shared testdata (recorded on the
reference kernel), random bytes followed by zeros (every zsmalloc class),
random pages (stored as-is), same-filled non-zero pages (compressed: 6.18 has
no same-filled path) and all-zero pages (the swap zero map, never zswap) --
then distinct pages to drop (slot freed) or touch (swap-in).

Everything derives from one seed (numpy's PCG64), so a divergence can be
reproduced with the same ``--seed``.  The set of files under /usr differs
between machines, so the same seed gives the same zram workload on one machine.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsmalloc.profile import DEFAULT_PROFILE

PAGE = DEFAULT_PROFILE.page_size  # the zswap workloads: pages of the model's size

FILE_ROOTS = ("/usr/lib", "/usr/bin", "/usr/share", "/usr/include")


@dataclass(frozen=True)
class Op:
    """One workload step: kind in write/discard/compact/read/limit/reset_max."""

    kind: str
    slot: int = 0
    page: bytes = b""
    value: int = 0
    origin: str = ""

    def describe(self) -> str:
        if self.kind == "write":
            return f"write slot {self.slot} ({self.origin})"
        if self.kind in ("discard", "read"):
            return f"{self.kind} slot {self.slot}"
        if self.kind == "limit":
            return f"mem_limit {self.value}"
        return self.kind


def list_files(
    roots: tuple[str, ...] = FILE_ROOTS,
    per_root: int = 1000,
    page_size: int = DEFAULT_PROFILE.page_size,
) -> list[Path]:
    """Up to ``per_root`` readable files of at least one page under each root, in walk order."""
    out: list[Path] = []
    for root in roots:
        found = 0
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath, name)
                try:
                    if p.is_symlink() or not p.is_file() or p.stat().st_size < page_size:
                        continue
                except OSError:
                    continue
                out.append(p)
                found += 1
                if found >= per_root:
                    break
            if found >= per_root:
                break
    return out


class PageSource:
    """Real and synthetic pages of ``page_size`` bytes, drawn reproducibly from one generator."""

    def __init__(
        self,
        rng: np.random.Generator,
        files: list[Path] | None = None,
        page_size: int = DEFAULT_PROFILE.page_size,
    ) -> None:
        self.rng = rng
        self.page_size = page_size
        self.files = list_files(page_size=page_size) if files is None else files

    def file_page(self) -> tuple[bytes, str]:
        page_size = self.page_size
        for _ in range(8):
            if not self.files:
                break
            path = self.files[int(self.rng.integers(len(self.files)))]
            try:
                size = path.stat().st_size
                with open(path, "rb") as f:
                    f.seek(int(self.rng.integers(size // page_size)) * page_size)
                    data = f.read(page_size)
            except OSError:
                continue
            if len(data) == page_size:
                return data, f"file {path.name}"
        return self.synthetic_page()

    def synthetic_page(self) -> tuple[bytes, str]:
        rng, page_size = self.rng, self.page_size
        kind = int(rng.integers(8))
        if kind == 0:
            return bytes(page_size), "zeros"
        if kind == 1:
            word = int(rng.integers(1, 1 << 63))
            return word.to_bytes(8, "little") * (page_size // 8), "same-filled"
        if kind == 2:
            return rng.bytes(page_size), "random"
        if kind == 3:  # random prefix then zeros: any compressed length
            n = int(rng.integers(1, page_size))
            return rng.bytes(n) + bytes(page_size - n), f"random prefix {n}"
        if kind == 4:  # short period
            period = int(rng.integers(3, 200))
            unit = rng.bytes(period)
            return (unit * (page_size // period + 1))[:page_size], f"period {period}"
        if kind == 5:  # small integers
            return rng.integers(0, 1000, page_size // 4, dtype=np.uint32).tobytes(), "ints"
        if kind == 6:  # sparse
            page = bytearray(page_size)
            for pos in rng.integers(0, page_size, int(rng.integers(1, 300))):
                page[int(pos)] = int(rng.integers(1, 256))
            return bytes(page), "sparse"
        text = b"".join(
            rng.choice([b"the ", b"zram ", b"page ", b"slot ", b"kernel ", b"\n", b"0x1f, "])
            for _ in range(1200)
        )
        return text[:page_size].ljust(page_size, b" "), "text"

    def page(self) -> tuple[bytes, str]:
        return self.file_page() if self.rng.random() < 0.5 else self.synthetic_page()


def zram_ops(
    n_ops: int,
    seed: int,
    nr_pages: int,
    files: list[Path] | None = None,
    page_size: int = DEFAULT_PROFILE.page_size,
) -> Iterator[Op]:
    """Yield ``n_ops`` operations on a device of ``nr_pages`` slots.

    Mix: 70 % writes (over the whole device, so overwrites are common once it
    fills), 15 % discards, 6 % reads, 4 % compactions, and limit episodes:
    ``limit`` ops with value -1 mean "just above the current use" and are
    resolved by the driver against the device's mem_used_total; 0 lifts it.
    """
    rng = np.random.default_rng(seed)
    source = PageSource(rng, files, page_size)
    limited = False
    for _ in range(n_ops):
        r = rng.random()
        slot = int(rng.integers(nr_pages))
        if r < 0.70:
            page, origin = source.page()
            yield Op("write", slot, page, origin=origin)
        elif r < 0.85:
            yield Op("discard", slot)
        elif r < 0.91:
            yield Op("read", slot)
        elif r < 0.95:
            yield Op("compact")
        elif r < 0.98:
            limited = not limited
            yield Op("limit", value=-1 if limited else 0)
        else:
            yield Op("reset_max")


def zswap_pages(nr_pages: int, seed: int, testdata: bytes | None) -> bytes:
    """``nr_pages`` pages of known content, deterministic in ``seed``.

    Mix: 40 % testdata pages (random prefix then zeros without testdata),
    40 % random prefix then zeros, 8 % random, 6 % same-filled, 6 % all-zero.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((nr_pages, PAGE), np.uint8)
    shared = np.frombuffer(testdata, np.uint8).reshape(-1, PAGE) if testdata else None
    kinds = rng.choice(5, size=nr_pages, p=[0.40, 0.40, 0.08, 0.06, 0.06])
    for i, kind in enumerate(kinds):
        if kind == 0 and shared is not None:
            out[i] = shared[rng.integers(len(shared))]
        elif kind in (0, 1):  # random prefix, then zeros: clen spans every class
            n = int(rng.integers(1, PAGE + 1))
            out[i, :n] = rng.integers(0, 256, n, dtype=np.uint8)
        elif kind == 2:  # incompressible
            out[i] = rng.integers(0, 256, PAGE, dtype=np.uint8)
        elif kind == 3:  # same-filled, not zero: zswap compresses it (6.10+)
            out[i] = np.frombuffer(
                np.full(PAGE // 8, rng.integers(1, 2**63), np.uint64).tobytes(), np.uint8
            )
        # kind 4: all zeros
    return out.tobytes()


def incompressible_pages(nr_pages: int, seed: int) -> bytes:
    """Random pages: each is stored as-is, one zsmalloc page (the pool-limit run)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, nr_pages * PAGE, dtype=np.uint8).tobytes()


def testdata_pages() -> bytes | None:
    """The 1024 pages of tests/data/shared_pages.bin.gz, or None outside a checkout."""
    from zsmalloc.testing.shared import testdata_dir

    d = testdata_dir()
    if d is None or not (d / "shared_pages.bin.gz").exists():
        return None
    return gzip.open(d / "shared_pages.bin.gz").read()


def zswap_churn(nr_pages: int, churn: int, seed: int) -> list[tuple[str, int]]:
    """``churn`` (at most ``nr_pages``) distinct random pages, each dropped or touched.

    ``("d", i)``: MADV_DONTNEED on page i (its swap slot is freed: zswap_invalidate);
    ``("t", i)``: read page i (a swap-in through the swap cache: exclusive zswap_load).
    """
    rng = np.random.default_rng(seed + 1)
    chosen = rng.permutation(nr_pages)[: min(churn, nr_pages)]
    return [("d" if rng.random() < 0.5 else "t", int(i)) for i in chosen]
