"""``zsmalloc sizes``: per-page stored bytes, as zram would count them.

Reads a file of raw 4 KiB pages (``-`` for standard input; compressed with gzip,
zstd, xz or bzip2 if its magic bytes say so) and prints, for every page and every
algorithm, the bytes zram adds to ``mm_stat`` compr_data_size when that page is
written alone: 0 same-filled, 4096 huge, else the exact compressed length.  The
layout is the one of ``tests/data/shared_pages.tsv`` (a ``#`` comment line, a
header line, then ``page<TAB>size...``), so the two files can be compared line
for line.

The input is read :data:`CHUNK_PAGES` pages at a time and each chunk's lines are
written before the next is read: any size of input, bounded memory.  A file that
is not a whole number of pages is refused before any line when its size is known
(a regular uncompressed file), else when its end is reached.
"""

from __future__ import annotations

import os
import stat
import sys

import click
import numpy as np

from zsmalloc.cli.notice import compile_notice
from zsmalloc.compress import get
from zsmalloc.errors import InputError
from zsmalloc.estimate.driver import check_algorithms
from zsmalloc.profile import DEFAULT_PROFILE
from zsmalloc.streams import STDIN, CheckedStream, open_input, read_exact_into
from zsmalloc.zs.size_class import class_table

PAGE_SIZE = DEFAULT_PROFILE.page_size  # the compressors take 4 KiB pages
CHUNK_PAGES = 1 << 12  # 16 MiB of pages per batch call


def _not_whole(path: str, nbytes: int) -> InputError:
    return InputError(
        f"expected a multiple of {PAGE_SIZE} bytes (whole pages), found {nbytes} bytes",
        path=path,
    )


def _check_size_up_front(path: str, stream: CheckedStream) -> None:
    """A regular uncompressed file of partial pages is refused before any output."""
    if path == STDIN or stream.compression is not None:
        return
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_size % PAGE_SIZE:
        raise _not_whole(path, st.st_size)


@click.command("sizes")
@click.argument(
    "pages_file", metavar="PAGES.bin[.gz]", type=click.Path(dir_okay=False, allow_dash=True)
)
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
    algos = check_algorithms(algo.split(","), level)  # before the file is read
    backends = [get(a, level) for a in algos]
    with open_input(pages_file, what="pages") as stream:
        _check_size_up_front(pages_file, stream)
        with compile_notice("the compressors"):
            probe = np.zeros((1, PAGE_SIZE), dtype=np.uint8)
            probe[0, ::7] = 1  # not same-filled: the compressor itself runs
            for b in backends:
                b.stored_sizes(probe, huge_class_size)
        sys.stdout.write(
            "# stored bytes per page as counted by zram mm_stat compr_data_size; "
            f"zsmalloc model of Linux {DEFAULT_PROFILE.version}, huge_class_size "
            f"{huge_class_size}\n"
        )
        sys.stdout.write("\t".join(["page", *algos]) + "\n")
        buf = np.empty((CHUNK_PAGES, PAGE_SIZE), dtype=np.uint8)
        first = 0
        while True:
            got = read_exact_into(stream, memoryview(buf.data).cast("B"))
            if got % PAGE_SIZE:
                raise _not_whole(stream.label, first * PAGE_SIZE + got)
            n = got // PAGE_SIZE
            if n == 0:
                break
            cols = [b.stored_sizes(buf[:n], huge_class_size).tolist() for b in backends]
            sys.stdout.write(
                "".join(
                    "\t".join([str(first + i), *(str(c[i]) for c in cols)]) + "\n"
                    for i in range(n)
                )
            )
            first += n
            if n < CHUNK_PAGES:
                break
