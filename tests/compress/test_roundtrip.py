"""Round trips, and our bytes read by independent decoders.

- decompress(compress(page)) == page for every backend, on every recorded
  page and on hypothesis-built pages made of the segments that stress LZ
  parsers (zero runs, constant runs, random bytes, self-copies, text).
- Our ``lzo`` stream is accepted by liblzo2 (python-lzo) and our ``lz4``
  block by the lz4 package: the format is the real one, not only the length.
- ``lzo-rle`` starts with the version bytes ``17, 1`` and uses the zero-run
  instruction (M4 distance 0xbfff) where the kernel's does.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from zram_page_kinds import edge_sweep_pages

from zsmalloc import compress

PAGE = 4096
ALL = ["lzo", "lzo-rle", "lz4", "lz4hc", "zstd", "deflate"]


@pytest.fixture(scope="module")
def shared_pages(testdata: Path) -> np.ndarray:
    raw = gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 4096)


SEGMENT = st.tuples(
    st.sampled_from(["zero", "const", "random", "copy", "text", "word", "flip"]),
    st.integers(1, 2600),
    st.integers(0, 2**32 - 1),
)


@st.composite
def pages(draw: st.DrawFn) -> bytes:
    """Up to 10 segments, then the rest of the page zero: shrinks to the zero page.

    Segment content comes from a drawn seed, so a failing page shrinks in a few
    choices, not in 4096 drawn bytes.
    """
    out = bytearray()
    for kind, n, seed in draw(st.lists(SEGMENT, max_size=10)):
        rng = np.random.default_rng(seed)
        if kind == "zero":
            out += bytes(n)
        elif kind == "const":
            out += bytes([seed & 0xFF]) * n
        elif kind == "random":
            out += rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        elif kind == "copy" and out:
            start = seed % len(out)
            for _ in range(min(n, PAGE - len(out))):  # may overlap itself, like LZ77
                out.append(out[start])
                start += 1
        elif kind == "text":
            out += (b"static int zs_malloc(struct zs_pool *pool, size_t size);\n" * 80)[:n]
        elif kind == "word":
            out += rng.integers(0, 256, 8, dtype=np.uint8).tobytes() * (n // 8 + 1)
        elif kind == "flip" and out:
            out[seed % len(out)] ^= 0xFF
    return bytes(out[:PAGE]) + bytes(max(0, PAGE - len(out)))


@pytest.mark.parametrize("algo", ALL)
def test_round_trip_every_recorded_page(shared_pages: np.ndarray, algo: str) -> None:
    b = compress.get(algo)
    for i, data in enumerate(compress.compress_pages(shared_pages, algo)):
        assert b.decompress(data) == shared_pages[i].tobytes(), f"page {i}"


@pytest.mark.parametrize("algo", compress.KERNEL_EXACT)
def test_round_trip_boundary_sweeps(algo: str) -> None:
    sweep, kinds = edge_sweep_pages(seed=3)
    b = compress.get(algo)
    for i, data in enumerate(compress.compress_pages(sweep, algo)):
        assert b.decompress(data) == sweep[i].tobytes(), (i, kinds[i])


@given(page=pages())
def test_round_trip_generated_pages(page: bytes) -> None:
    for algo in ALL:
        b = compress.get(algo)
        data = b.compress(page)
        assert b.decompress(data) == page, algo
        if b.kernel_exact:
            assert b.compressed_len(page) == len(data)


@given(page=pages(), level=st.integers(-3, 70))
def test_lz4_every_acceleration_round_trips(page: bytes, level: int) -> None:
    b = compress.get("lz4", level=level)
    data = b.compress(page)
    assert b.decompress(data) == page
    assert compress.compress_lengths(page, "lz4", level=level).tolist() == [len(data)]


@given(page=pages())
def test_lzo_output_is_accepted_by_liblzo2(page: bytes) -> None:
    lzo = pytest.importorskip("lzo")
    assert lzo.decompress(compress.get("lzo").compress(page), False, PAGE) == page


@given(page=pages())
def test_lz4_output_is_accepted_by_the_lz4_package(page: bytes) -> None:
    lz4_block = pytest.importorskip("lz4.block")
    data = compress.get("lz4").compress(page)
    assert lz4_block.decompress(data, uncompressed_size=PAGE) == page


def test_external_decoders_accept_every_recorded_page(shared_pages: np.ndarray) -> None:
    lzo = pytest.importorskip("lzo")
    lz4_block = pytest.importorskip("lz4.block")
    for i, data in enumerate(compress.compress_pages(shared_pages, "lzo")):
        assert lzo.decompress(data, False, PAGE) == shared_pages[i].tobytes(), i
    for i, data in enumerate(compress.compress_pages(shared_pages, "lz4")):
        assert lz4_block.decompress(data, uncompressed_size=PAGE) == shared_pages[i].tobytes()


def test_lzo_rle_header_and_zero_run_instruction() -> None:
    """lzorle1x_1_compress(): header 17, 1; a zero run is one 4-byte M4 (distance 0xbfff).

    The first probe is at 5 (ip = 4, then 1 + (4 >> 5)), so 5 literals go
    first (``5 - 3``), then the run of 2051 zero bytes (the cap; r = 2047)
    as ``(r << 21) | 0xfffc18 | (r & 7)`` little-endian.
    """
    rng = np.random.default_rng(7)
    tail = rng.integers(1, 256, PAGE - 5 - 2051, dtype=np.uint8).tobytes()
    page = b"ABCDE" + bytes(2051) + tail
    data = compress.get("lzo-rle").compress(page)
    assert data[:12] == bytes([17, 1, 2, *b"ABCDE", 0x1F, 0xFC, 0xFF, 0xFF])
    # A longer run is cut at 2051; the rest starts the next instruction.
    data2 = compress.get("lzo-rle").compress(b"ABCDE" + bytes(2100) + tail[:-49])
    assert data2[:12] == data[:12]


def test_lzo_rle_equals_lzo_plus_header_without_zero_words() -> None:
    """Pages with no 4-zero-byte word probed: lzo-rle = header + the lzo stream."""
    rng = np.random.default_rng(8)
    page = rng.integers(1, 256, PAGE, dtype=np.uint8).tobytes()
    assert compress.get("lzo-rle").compress(page) == bytes([17, 1]) + compress.get(
        "lzo"
    ).compress(page)
