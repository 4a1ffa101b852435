"""``zsmalloc sizes``: per-page stored bytes, as zram would count them.

Reads a file of raw pages (PAGE_SIZE each, ``--page-size``; ``-`` for standard
input; compressed with gzip, zstd, xz or bzip2 if its magic bytes say so) and prints,
for every page and every algorithm, the bytes zram adds to ``mm_stat``
compr_data_size when that page is written alone: 0 same-filled, PAGE_SIZE huge, else
the exact compressed length, on the kernel ``--kernel`` names with
``algorithm_params`` ``--level``/``--deflate-winbits``.  The layout is the one of
``tests/data/shared_pages.tsv`` (``#`` comment lines, a header line, then
``page<TAB>size...``), so the two files can be compared line for line; an algorithm
whose lengths are only approximate here (zstd without the kernel's version) says so
in a comment line, with the command that makes it exact.

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
from zsmalloc.cli.options import kernel_option
from zsmalloc.errors import InputError
from zsmalloc.estimate.driver import CompressorSetup, check_algorithms
from zsmalloc.profile import PAGE_SIZES, KernelProfile
from zsmalloc.streams import STDIN, CheckedStream, open_input, read_exact_into
from zsmalloc.zs.size_class import class_table

CHUNK_BYTES = 16 << 20  # of pages per batch call


def _not_whole(path: str, nbytes: int, page_size: int) -> InputError:
    return InputError(
        f"expected a multiple of {page_size} bytes (whole pages), found {nbytes} bytes",
        path=path,
    )


def _check_size_up_front(path: str, stream: CheckedStream, page_size: int) -> None:
    """A regular uncompressed file of partial pages is refused before any output."""
    if path == STDIN or stream.compression is not None:
        return
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_size % page_size:
        raise _not_whole(path, st.st_size, page_size)


@click.command("sizes")
@click.argument(
    "pages_file", metavar="PAGES.bin[.gz]", type=click.Path(dir_okay=False, allow_dash=True)
)
@click.option(
    "--algo",
    default="lzo,lzo-rle,lz4",
    show_default=True,
    help="Comma-separated zram algorithm names: lzo, lzo-rle, lz4, lz4hc, zstd, deflate.",
)
@kernel_option(help="The kernel whose zram is modelled: its compressors and huge threshold.")
@click.option(
    "--page-size",
    type=click.Choice([str(p) for p in PAGE_SIZES]),
    default="4096",
    show_default=True,
    help="PAGE_SIZE: the file is read as pages of this size.",
)
@click.option(
    "--huge-class-size",
    type=click.IntRange(0, max(PAGE_SIZES)),
    default=None,
    help="zram's huge threshold: lengths at or above it are stored as PAGE_SIZE "
    "(default: the kernel's, 3625 for 6.18 with 4 KiB pages).",
)
@click.option("--level", type=int, default=None, help="zram algorithm_params level.")
@click.option(
    "--deflate-winbits", "winbits", type=int, default=None,
    help="zram algorithm_params deflate.winbits (deflate only).",
)
def sizes(
    pages_file: str,
    algo: str,
    kernel: str,
    page_size: str,
    huge_class_size: int | None,
    level: int | None,
    winbits: int | None,
) -> None:
    """Per-page stored bytes (TSV: page, then one column per algorithm)."""
    ps = int(page_size)
    setup = CompressorSetup(kernel, ps, level, winbits)
    algos = check_algorithms(algo.split(","), setup=setup)  # before the file is read
    backends = [setup.backend(a) for a in algos]
    if huge_class_size is None:
        huge_class_size = class_table(KernelProfile(setup.kernel, ps)).huge_class_size
    elif huge_class_size > ps:
        raise InputError(f"--huge-class-size {huge_class_size}: above PAGE_SIZE {ps}")
    chunk_pages = CHUNK_BYTES // ps
    with open_input(pages_file, what="pages") as stream:
        _check_size_up_front(pages_file, stream, ps)
        with compile_notice("the compressors"):
            probe = np.zeros((1, ps), dtype=np.uint8)
            probe[0, ::7] = 1  # not same-filled: the compressor itself runs
            for b in backends:
                b.stored_sizes(probe, huge_class_size)
        sys.stdout.write(
            "# stored bytes per page as counted by zram mm_stat compr_data_size; "
            f"zsmalloc model of Linux {setup.kernel}, PAGE_SIZE {ps}, "
            f"huge_class_size {huge_class_size}\n"
        )
        for b in backends:
            if not b.kernel_exact:
                sys.stdout.write(f"# APPROXIMATE {b.name}: {b.approximate}\n")
                if b.exact_command:
                    sys.stdout.write(f"#   exact after: {b.exact_command}\n")
        sys.stdout.write("\t".join(["page", *algos]) + "\n")
        buf = np.empty((chunk_pages, ps), dtype=np.uint8)
        first = 0
        while True:
            got = read_exact_into(stream, memoryview(buf.data).cast("B"))
            if got % ps:
                raise _not_whole(stream.label, first * ps + got, ps)
            n = got // ps
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
            if n < chunk_pages:
                break
