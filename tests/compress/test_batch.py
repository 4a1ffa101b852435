"""The batch API agrees with one call per page, and zram's rule with its definition.

Invariants (hypothesis where the input space matters):

1. ``is_same_filled`` is true exactly when all 512 little-endian u64 words of a
   page are equal, and then gives that word.
2. ``stored_sizes(pages, algo, h)`` is 0 for same-filled pages, 4096 when the
   compressed length is >= h, else the length, for every threshold h.
3. ``compress_lengths`` and ``compress_pages`` equal per-page ``compressed_len``
   and ``compress`` in every position, across internal block boundaries and
   from several Python threads at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from zram_page_kinds import make_pages

from zsmalloc import compress
from zsmalloc.compress import registry

PAGE = 4096


@st.composite
def same_or_almost_pages(draw: st.DrawFn) -> np.ndarray:
    """Same-filled pages, and ones that differ from it in one byte anywhere."""
    word = np.frombuffer(draw(st.binary(min_size=8, max_size=8)), dtype=np.uint8)
    page = np.tile(word, PAGE // 8)
    if draw(st.booleans()):
        i = draw(st.integers(0, PAGE - 1))
        page[i] ^= draw(st.integers(1, 255))
    return page


@given(st.lists(same_or_almost_pages(), min_size=1, max_size=8))
def test_same_filled_is_all_words_equal(pages_list: list[np.ndarray]) -> None:
    pages = np.stack(pages_list)
    words = pages.view("<u8")
    expected = (words == words[:, :1]).all(axis=1)
    same, fill = compress.is_same_filled(pages)
    assert same.tolist() == expected.tolist()
    assert fill.tolist() == np.where(expected, words[:, 0], 0).tolist()


@given(
    seed=st.integers(0, 2**32 - 1),
    huge=st.integers(0, PAGE),
    algo=st.sampled_from(compress.KERNEL_EXACT),
)
def test_stored_sizes_follow_zram_rule(seed: int, huge: int, algo: str) -> None:
    pages, _ = make_pages(26, seed=seed % 1000)
    b = compress.get(algo)
    same, _ = compress.is_same_filled(pages)
    expected = [
        0 if s else (PAGE if b.compressed_len(p) >= huge else b.compressed_len(p))
        for p, s in zip(pages, same, strict=True)
    ]
    assert compress.stored_sizes(pages, algo, huge_class_size=huge).tolist() == expected


def test_batches_equal_single_calls_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "BATCH_BLOCK", 64)  # blocks of 64: 3 whole, 1 partial
    pages, _ = make_pages(3 * 64 + 17, seed=5)
    for algo in compress.KERNEL_EXACT:
        b = compress.get(algo)
        single = [b.compress(p) for p in pages]
        assert compress.compress_pages(pages, algo) == single, algo
        assert compress.compress_lengths(pages, algo).tolist() == [len(x) for x in single]


def test_single_calls_from_many_threads() -> None:
    pages, _ = make_pages(260, seed=6)
    for algo in compress.KERNEL_EXACT:
        b = compress.get(algo)
        expected = [b.compress(p) for p in pages]
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(b.compress, pages)) == expected, algo


def test_library_backends_batch_like_single_calls() -> None:
    pages, _ = make_pages(52, seed=7)
    for algo in ("lz4hc", "zstd", "deflate"):
        b = compress.get(algo)
        assert compress.compress_lengths(pages, algo).tolist() == [
            b.compressed_len(p) for p in pages
        ]
        same, _ = compress.is_same_filled(pages)
        sizes = compress.stored_sizes(pages, algo)
        assert (sizes[same] == 0).all()
