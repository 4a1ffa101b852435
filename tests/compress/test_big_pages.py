"""16 and 64 KiB pages where no guest kernel can be recorded: the kernel's own code.

No Debian kernel runs lzo on 16 KiB pages, and none has 64 KiB pages at all, so
``tests/data/kernels/userspace-sizes.tsv.gz`` holds the lengths that the kernel's
lib/lzo, lib/lz4 and lib/zlib_deflate (Debian's linux-source-7.2) give when built as a
user-space library (tools/kernel-lib; its recorder first checks that library against
the arm64 16 KiB guest traces).  Our compressors must give every one of them: the
shared pages read as 16 and 64 KiB pages, and synthetic 64 KiB pages that reach what
smaller pages cannot (lzo's M4 matches beyond 16 KiB and its second 48 KiB block,
lzo-rle's cut of ambiguous 261..264-byte matches, zero runs, deflate blocks cut by
TRUNCATE_BLOCK and by the 16383-symbol buffer).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from guest_traces import userspace_config
from zsmalloc import compress
from zsmalloc.testing import shared

_DATA = shared.testdata_dir()
COLUMNS = (
    gzip.decompress((_DATA / "kernels/userspace-sizes.tsv.gz").read_bytes())
    .decode()
    .splitlines()[1]
    .split("\t")[3:]
    if _DATA is not None
    else []
)


@pytest.fixture(scope="module")
def recorded(testdata: Path) -> dict[str, dict[str, np.ndarray]]:
    """{page set: {"pages": (n, page_size) uint8, column: lengths}}."""
    lines = gzip.decompress((testdata / "kernels/userspace-sizes.tsv.gz").read_bytes())
    rows = [line.split("\t") for line in lines.decode().splitlines()[2:]]
    shared_raw = gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())
    big = gzip.decompress((testdata / "kernels/userspace-bigpages.bin.gz").read_bytes())
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == name]
        ps = int(mine[0][1])
        raw = big if name == "bigpages64k" else shared_raw
        entry = {"pages": np.frombuffer(raw, np.uint8).reshape(-1, ps)}
        for k, col in enumerate(COLUMNS):
            entry[col] = np.array([int(r[3 + k]) for r in mine])
        out[name] = entry
    return out


@pytest.mark.parametrize("column", COLUMNS)
def test_lengths_equal_the_kernels_code(
    recorded: dict[str, dict[str, np.ndarray]], column: str
) -> None:
    name, level, winbits = userspace_config(column)
    for page_set, entry in recorded.items():
        pages = entry["pages"]
        b = compress.get(name, level, page_size=pages.shape[1], winbits=winbits)
        ours = b.compress_lengths(pages)
        bad = np.flatnonzero(ours != entry[column])
        assert bad.size == 0, f"{page_set}: pages {bad.tolist()} differ"


@pytest.mark.parametrize("algo", ["lzo", "lzo-rle", "lz4", "lz4hc", "deflate"])
def test_64k_bytes_decode_and_match_their_lengths(
    recorded: dict[str, dict[str, np.ndarray]], algo: str
) -> None:
    """The bytes path walks the lengths path's parse, and decodes to the page."""
    pages = recorded["bigpages64k"]["pages"]
    b = compress.get(algo, page_size=65536)
    blobs = b.compress_pages(pages)
    assert [len(x) for x in blobs] == b.compress_lengths(pages).tolist()
    for page, blob in zip(pages, blobs, strict=True):
        assert b.decompress(blob) == page.tobytes()
