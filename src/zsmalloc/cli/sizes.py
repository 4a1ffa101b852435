"""``zsmalloc sizes``: per-page stored bytes, as zram would count them.

Reads a file of raw 4 KiB pages (gzip-compressed if it starts with gzip's
magic) and prints, for every page and every algorithm, the bytes zram adds to
``mm_stat`` compr_data_size when that page is written alone: 0 same-filled,
4096 huge, else the exact compressed length.  The layout is the one of
``tests/data/shared_pages.tsv`` (a ``#`` comment line, a header line,
then ``page<TAB>size...``), so the two files can be compared line for line.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import click

from zsmalloc.compress import as_pages, get
from zsmalloc.errors import InputError
from zsmalloc.profile import DEFAULT_PROFILE
from zsmalloc.zs.size_class import class_table

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_PAGES = 1 << 16  # 256 MiB of pages per batch call


def read_pages_file(path: str) -> bytes:
    """The raw bytes of a pages file, gunzipped when it is gzip; InputError when unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == GZIP_MAGIC:
                with gzip.GzipFile(fileobj=f) as g:
                    return g.read()
            return f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(str(getattr(exc, "strerror", None) or exc), path=path) from None


def sizes_lines(
    data: bytes, algos: list[str], huge_class_size: int, level: int | None, where: str
) -> list[str]:
    """The TSV lines for ``data`` (header first, no comment line)."""
    pages = as_pages(data, where)
    backends = [get(a, level) for a in algos]
    lines = ["\t".join(["page", *algos])]
    for lo in range(0, pages.shape[0], CHUNK_PAGES):
        chunk = pages[lo : lo + CHUNK_PAGES]
        cols = [b.stored_sizes(chunk, huge_class_size).tolist() for b in backends]
        lines += [
            "\t".join([str(lo + i), *(str(c[i]) for c in cols)]) for i in range(chunk.shape[0])
        ]
    return lines


@click.command("sizes")
@click.argument("pages_file", metavar="PAGES.bin[.gz]", type=click.Path(dir_okay=False))
@click.option(
    "--algo",
    default="lzo,lzo-rle,lz4",
    show_default=True,
    help="Comma-separated zram algorithm names (lzo, lzo-rle, lz4 are kernel-exact).",
)
@click.option(
    "--huge-class-size",
    type=click.IntRange(0, DEFAULT_PROFILE.page_size),
    default=class_table(DEFAULT_PROFILE).huge_class_size,
    show_default=True,
    help="zram's huge threshold: lengths at or above it are stored as PAGE_SIZE.",
)
@click.option("--level", type=int, default=None, help="zram algorithm_params level.")
def sizes(pages_file: str, algo: str, huge_class_size: int, level: int | None) -> None:
    """Per-page stored bytes (TSV: page, then one column per algorithm)."""
    algos = [a.strip() for a in algo.split(",") if a.strip()]
    for a in algos:
        get(a, level)  # an unknown name fails before the file is read
    data = read_pages_file(pages_file)
    lines = sizes_lines(data, algos, huge_class_size, level, str(Path(pages_file)))
    sys.stdout.write(
        "# stored bytes per page as counted by zram mm_stat compr_data_size; "
        f"zsmalloc model of Linux {DEFAULT_PROFILE.version}, huge_class_size {huge_class_size}\n"
    )
    sys.stdout.write("\n".join(lines) + "\n")
