"""Stored sizes against the kernel's recorded answers (tests/data).

``shared_pages.tsv`` holds, for 1024 pages, what zram 6.18.44 added to
compr_data_size when each page was written alone with lzo, lzo-rle and lz4.
Every page must match, through the API and through ``zsmalloc sizes``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from zsmalloc import compress
from zsmalloc.cli.sizes import sizes

ALGOS = ["lzo", "lzo-rle", "lz4"]


@pytest.fixture(scope="module")
def shared_pages(testdata: Path) -> np.ndarray:
    raw = gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 4096)


@pytest.fixture(scope="module")
def kernel_tsv(testdata: Path) -> list[str]:
    return (testdata / "shared_pages.tsv").read_text().splitlines()


def kernel_column(lines: list[str], algo: str) -> np.ndarray:
    header = lines[1].split("\t")
    col = header.index(algo)
    return np.array([int(line.split("\t")[col]) for line in lines[2:]])


@pytest.mark.parametrize("algo", ALGOS)
def test_stored_sizes_equal_the_kernel_on_every_page(
    shared_pages: np.ndarray, kernel_tsv: list[str], algo: str
) -> None:
    kernel = kernel_column(kernel_tsv, algo)
    ours = compress.stored_sizes(shared_pages, algo)
    bad = np.nonzero(ours != kernel)[0]
    assert bad.size == 0, f"{bad.size} pages differ, first {bad[:10].tolist()}"


@pytest.mark.parametrize("algo", ALGOS)
def test_per_page_lengths_agree_with_the_batch(shared_pages: np.ndarray, algo: str) -> None:
    """compressed_len, len(compress()) and compress_lengths walk the same parse."""
    b = compress.get(algo)
    sample = shared_pages[::7]
    batch = compress.compress_lengths(sample, algo).tolist()
    assert [b.compressed_len(p) for p in sample] == batch
    assert [len(b.compress(p.tobytes())) for p in sample] == batch
    assert [len(x) for x in compress.compress_pages(sample, algo)] == batch


def test_sizes_command_prints_the_kernel_tsv(testdata: Path, kernel_tsv: list[str]) -> None:
    result = CliRunner().invoke(
        sizes, [str(testdata / "shared_pages.bin.gz"), "--algo", "lzo,lzo-rle,lz4"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("# ")
    assert lines[1:] == kernel_tsv[1:]


def test_sizes_command_reads_uncompressed_pages_and_picks_columns(
    tmp_path: Path, shared_pages: np.ndarray, kernel_tsv: list[str]
) -> None:
    f = tmp_path / "pages.bin"
    f.write_bytes(shared_pages[:50].tobytes())
    result = CliRunner().invoke(sizes, [str(f), "--algo", "lz4"])
    assert result.exit_code == 0, result.output
    expected = ["page\tlz4"] + [
        f"{i}\t{v}" for i, v in enumerate(kernel_column(kernel_tsv, "lz4")[:50])
    ]
    assert result.output.splitlines()[1:] == expected


def test_same_filled_pages_and_fill_words(shared_pages: np.ndarray, kernel_tsv: list[str]) -> None:
    """Exactly the pages the kernel stored as 0 bytes are same-filled."""
    same, fill = compress.is_same_filled(shared_pages)
    assert same.tolist() == (kernel_column(kernel_tsv, "lzo") == 0).tolist()
    words = shared_pages[same].copy().view("<u8")
    assert (words == fill[same][:, None]).all()
    assert (fill[~same] == 0).all()


def test_huge_class_size_is_a_parameter(shared_pages: np.ndarray) -> None:
    pages = shared_pages[::4]
    lengths = compress.compress_lengths(pages, "lz4")
    same, _ = compress.is_same_filled(pages)
    for huge in (3625, 2000, 4096):
        expected = np.where(same, 0, np.where(lengths >= huge, 4096, lengths))
        assert compress.stored_sizes(pages, "lz4", huge_class_size=huge).tolist() == (
            expected.tolist()
        )
        assert [
            compress.stored_size(int(n), bool(s), huge) for n, s in zip(lengths, same, strict=True)
        ] == expected.tolist()
