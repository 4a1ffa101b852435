"""Bad input: a clear ZsmallocError naming the problem, never a crash or a hang.

- sizes that are not whole pages (InvalidSizeError, with the size);
- algorithm names zram does not have, and 842 (UnknownAlgorithmError, listing
  the known names);
- corrupt streams to every decompressor: every truncation, garbage, extra
  bytes, a stream that decodes to more or fewer than ``out_len`` bytes
  (CompressionError).  The kernel-exact decoders bounds-check every read,
  write and back-reference, and every step consumes input, so they end.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from zsmalloc import compress
from zsmalloc.cli.main import main
from zsmalloc.errors import (
    CompressionError,
    InputError,
    InvalidSizeError,
    UnknownAlgorithmError,
    ZsmallocError,
)

PAGE = 4096
ALL = ["lzo", "lzo-rle", "lz4", "lz4hc", "zstd", "deflate"]


@pytest.fixture(scope="module")
def some_pages(testdata: Path) -> np.ndarray:
    raw = gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 4096)[::97]


@pytest.mark.parametrize("size", [0, 1, 4095, 4097, 8191])
@pytest.mark.parametrize("algo", ALL)
def test_compress_wants_exactly_one_page(algo: str, size: int) -> None:
    with pytest.raises(InvalidSizeError, match=f"found {size} bytes"):
        compress.get(algo).compress(bytes(size))


@pytest.mark.parametrize("size", [1, 4095, 4097, 3 * 4096 + 5])
def test_batch_wants_whole_pages(size: int) -> None:
    for call in (compress.compress_lengths, compress.stored_sizes, compress.compress_pages):
        with pytest.raises(InvalidSizeError, match=f"multiple of 4096 bytes.*found {size}"):
            call(bytes(size), "lzo")
    with pytest.raises(InvalidSizeError, match="multiple of 4096"):
        compress.is_same_filled(bytes(size))


def test_batch_rejects_rows_that_are_not_pages() -> None:
    with pytest.raises(InvalidSizeError, match=r"shape \(2, 4095\)"):
        compress.compress_lengths(np.zeros((2, 4095), np.uint8), "lz4")
    with pytest.raises(InvalidSizeError, match="found str"):
        compress.compress_lengths("not bytes", "lz4")
    with pytest.raises(InvalidSizeError, match="object array"):
        compress.compress_lengths(np.array([b"x"] * 4096, dtype=object), "lz4")


def test_other_dtypes_are_their_raw_bytes() -> None:
    words = np.arange(1024, dtype="<u8")  # 2 pages of u64
    assert compress.compress_lengths(words, "lzo").tolist() == compress.compress_lengths(
        words.tobytes(), "lzo"
    ).tolist()


@pytest.mark.parametrize("algo", ["lz4", "zstd"])
@pytest.mark.parametrize("huge", [-1, 4097, 3625.0])
def test_bad_huge_class_size(algo: str, huge: object) -> None:
    with pytest.raises(InputError, match="huge_class_size"):
        compress.stored_sizes(bytes(PAGE), algo, huge_class_size=huge)  # type: ignore[arg-type]


def test_empty_batch_is_empty() -> None:
    assert compress.stored_sizes(b"", "lz4").tolist() == []


@pytest.mark.parametrize("name", ["lzo_rle", "LZ4", "zstd2", "", "lz4 "])
def test_unknown_algorithm_names_it_and_lists_the_known(name: str) -> None:
    with pytest.raises(UnknownAlgorithmError) as info:
        compress.get(name)
    msg = str(info.value)
    assert repr(name) in msg
    for known in ALL:
        assert known in msg


def test_842_is_refused_clearly() -> None:
    with pytest.raises(UnknownAlgorithmError, match="842: not supported"):
        compress.get("842")
    with pytest.raises(UnknownAlgorithmError, match="842"):
        compress.stored_sizes(bytes(PAGE), "842")


@pytest.mark.parametrize("level", ["3", 2.5, True, 2**31])
def test_bad_level(level: object) -> None:
    with pytest.raises(InputError, match="level"):
        compress.get("lz4", level=level)  # type: ignore[arg-type]


@pytest.mark.parametrize("algo", ALL)
def test_every_truncation_is_a_compression_error(some_pages: np.ndarray, algo: str) -> None:
    b = compress.get(algo)
    for page in some_pages[:4]:
        data = b.compress(page)
        for cut in range(len(data)):
            with pytest.raises(CompressionError, match=algo):
                b.decompress(data[:cut])


@pytest.mark.parametrize("algo", ALL)
def test_extra_bytes_and_wrong_out_len_are_errors(some_pages: np.ndarray, algo: str) -> None:
    b = compress.get(algo)
    for page in some_pages:
        data = b.compress(page)
        for extra in (b"\x00", b"\x11\x00\x00", b"\xff" * 7):
            with pytest.raises(CompressionError):
                b.decompress(data + extra)
        with pytest.raises(CompressionError):
            b.decompress(data, out_len=PAGE - 1)
        with pytest.raises(CompressionError):
            b.decompress(data, out_len=PAGE + 1)
    with pytest.raises(InputError, match="out_len"):
        b.decompress(b"", out_len=0)


@given(garbage=st.binary(max_size=300), algo=st.sampled_from(ALL))
def test_garbage_never_crashes(garbage: bytes, algo: str) -> None:
    try:
        out = compress.get(algo).decompress(garbage)
    except CompressionError:
        return
    assert len(out) == PAGE  # the only other outcome: a valid stream of one page


@given(data=st.data(), algo=st.sampled_from(compress.KERNEL_EXACT))
def test_corrupted_streams_never_crash(data: st.DataObject, algo: str) -> None:
    """Flip bytes in a real stream: either CompressionError or exactly one page out."""
    b = compress.get(algo)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    page = rng.integers(0, 4, PAGE, dtype=np.uint8).tobytes()  # compressible: many instructions
    stream = bytearray(b.compress(page))
    for _ in range(data.draw(st.integers(1, 4))):
        stream[data.draw(st.integers(0, len(stream) - 1))] = data.draw(st.integers(0, 255))
    try:
        out = b.decompress(bytes(stream))
    except CompressionError:
        return
    assert len(out) == PAGE


def test_hostile_lengths_are_bounded() -> None:
    """Length fields claiming megabytes, offsets before the start: errors, fast."""
    lz4 = compress.get("lz4")
    with pytest.raises(CompressionError, match="overrun"):
        lz4.decompress(b"\xf0" + b"\xff" * 5000 + b"\x00")
    with pytest.raises(CompressionError, match="offset"):
        lz4.decompress(b"\x10A\x05\x00" + bytes(20))
    lzo = compress.get("lzo")
    with pytest.raises(CompressionError, match="before the start"):
        lzo.decompress(bytes([17 + 4]) + b"ABCD" + bytes([0x60, 0xFF]) + b"\x11\x00\x00")
    with pytest.raises(CompressionError):
        lzo.decompress(b"\x00" * 10000)
    with pytest.raises(CompressionError):
        compress.get("lzo-rle").decompress(bytes([17, 1, 0x1F, 0xFC, 0xFF, 0xFF, 0x11, 0, 0]))


def test_cli_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "short.bin"
    bad.write_bytes(bytes(100))
    runner = CliRunner()
    for args, text in [
        (["sizes", str(bad)], "multiple of 4096"),
        (["sizes", str(tmp_path / "missing.bin")], "missing.bin"),
        (["sizes", "--algo", "lzo,zstd2", str(bad)], "zstd2"),
    ]:
        result = runner.invoke(_main_command(), args, catch_exceptions=True)
        assert result.exit_code == 2, result.output
        assert text in result.output
        assert "Traceback" not in result.output


def _main_command():  # type: ignore[no-untyped-def]
    """``main`` wrapped as a click command so CliRunner sees exit codes and stderr."""
    import click

    @click.command(context_settings={"ignore_unknown_options": True})
    @click.argument("argv", nargs=-1, type=click.UNPROCESSED)
    def run(argv: tuple[str, ...]) -> None:
        main(list(argv))

    return run


def test_errors_are_zsmalloc_errors() -> None:
    for exc in (InvalidSizeError, UnknownAlgorithmError, CompressionError, InputError):
        assert issubclass(exc, ZsmallocError)
