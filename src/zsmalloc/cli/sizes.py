"""``zsmalloc sizes``: per-page stored bytes, as zram would count them.

Reads a file of raw pages (PAGE_SIZE each, gzip-compressed if it starts with gzip's
magic) and prints, for every page and every algorithm, the bytes zram adds to
``mm_stat`` compr_data_size when that page is written alone: 0 same-filled,
PAGE_SIZE huge, else the exact compressed length, on the kernel ``--kernel`` names
with ``algorithm_params`` ``--level``/``--deflate-winbits``.  The layout is the one of
``tests/data/shared_pages.tsv`` (``#`` comment lines, a header line, then
``page<TAB>size...``), so the two files can be compared line for line; an
algorithm whose lengths are only approximate here (zstd without the kernel's
version) says so in a comment line, with the command that makes it exact.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import click

from zsmalloc.compress import Backend, as_pages, get
from zsmalloc.compress.kernels import compressors_for, kernel_profile
from zsmalloc.errors import InputError
from zsmalloc.profile import PAGE_SIZES
from zsmalloc.zs.size_class import class_table

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 256 << 20  # of pages per batch call


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
    data: bytes,
    algos: list[str],
    huge_class_size: int,
    level: int | None,
    where: str,
    backends: list[Backend] | None = None,
) -> list[str]:
    """The TSV lines for ``data`` (header first, no comment line)."""
    if backends is None:
        backends = [get(a, level) for a in algos]
    page_size = backends[0].page_size if backends else 4096
    pages = as_pages(data, where, page_size)
    chunk_pages = max(1, CHUNK_BYTES // page_size)
    lines = ["\t".join(["page", *algos])]
    for lo in range(0, pages.shape[0], chunk_pages):
        chunk = pages[lo : lo + chunk_pages]
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
    help="Comma-separated zram algorithm names: lzo, lzo-rle, lz4, lz4hc, zstd, deflate.",
)
@click.option(
    "--kernel",
    default=None,
    metavar="VERSION",
    help="The kernel whose zram is modelled (6.1 ... 7.3 or a release; default 6.18): "
    "its zstd version, zram path and huge threshold.",
)
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
    kernel: str | None,
    page_size: str,
    huge_class_size: int | None,
    level: int | None,
    winbits: int | None,
) -> None:
    """Per-page stored bytes (TSV: page, then one column per algorithm)."""
    ps = int(page_size)
    algos = [a.strip() for a in algo.split(",") if a.strip()]
    # every name and parameter is checked before the file is read
    backends = [
        get(a, level, kernel=kernel, page_size=ps, winbits=winbits if a == "deflate" else None)
        for a in algos
    ]
    row = compressors_for(kernel)
    if huge_class_size is None:
        huge_class_size = class_table(kernel_profile(kernel, ps)).huge_class_size
    elif huge_class_size > ps:
        raise InputError(f"--huge-class-size {huge_class_size}: above PAGE_SIZE {ps}")
    data = read_pages_file(pages_file)
    lines = sizes_lines(data, algos, huge_class_size, level, str(Path(pages_file)), backends)
    sys.stdout.write(
        "# stored bytes per page as counted by zram mm_stat compr_data_size; "
        f"zsmalloc model of Linux {row.version}, PAGE_SIZE {ps}, "
        f"huge_class_size {huge_class_size}\n"
    )
    for b in backends:
        if not b.kernel_exact:
            sys.stdout.write(f"# APPROXIMATE {b.name}: {b.approximate}\n")
            if b.exact_command:
                sys.stdout.write(f"#   exact after: {b.exact_command}\n")
    sys.stdout.write("\n".join(lines) + "\n")
