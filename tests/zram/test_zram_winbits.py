"""``algorithm_params deflate.winbits`` is honoured, never ignored: the 7.2 kernel's sizes.

The model parsed ``deflate.winbits`` but built its deflate backend with the default
window, so the parameter changed nothing.  tests/data/kernels holds what Debian's
7.2 kernel stored for the shared pages with ``deflate.winbits=15`` and ``-15``; the
model's slots must hold the same sizes (deflate is exact on 4 KiB pages through
zlib, shared/spec/compressors.md).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from zsmalloc.errors import SysfsError
from zsmalloc.zram.device import ALL_BACKENDS, Zram
from zsmalloc.zram.trace import OP_SAME, OP_WRITE, read_trace

PAGE = 4096


@pytest.mark.parametrize("winbits", [15, -15])
def test_winbits_gives_the_kernels_sizes(testdata: Path, winbits: int) -> None:
    name = f"7.2-shared-deflate-l6-deflate_winbits_{winbits}.trace.gz"
    trace = read_trace(testdata / "kernels" / name)
    pages = np.frombuffer(
        gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes()), np.uint8
    ).reshape(-1, PAGE)
    z = Zram(backends=tuple(b for b in ALL_BACKENDS if b != "842"))
    z.write_attr("comp_algorithm", "deflate")
    z.write_attr("algorithm_params", f"algo=deflate level=6 deflate.winbits={winbits}")
    z.write_attr("disksize", str(len(pages) * PAGE))
    z.write(0, pages)
    expected = {}
    for op, slot, size in zip(trace.op, trace.a, trace.b, strict=True):
        if op == OP_WRITE:
            expected[int(slot)] = int(size)
        elif op == OP_SAME:
            expected[int(slot)] = 0
    assert len(expected) == len(pages)
    got = {i: z.slot(i)["size"] for i in range(len(pages))}
    assert got == expected
    # and the default window gives other sizes: the parameter is not ignored
    d = Zram(backends=tuple(b for b in ALL_BACKENDS if b != "842"))
    d.write_attr("comp_algorithm", "deflate")
    d.write_attr("disksize", str(len(pages) * PAGE))
    d.write(0, pages)
    assert {i: d.slot(i)["size"] for i in range(len(pages))} != expected


def test_a_bad_winbits_fails_disksize() -> None:
    z = Zram(backends=("lzo-rle", "deflate"))
    z.write_attr("comp_algorithm", "deflate")
    z.write_attr("algorithm_params", "algo=deflate deflate.winbits=99")
    with pytest.raises(SysfsError, match="winbits") as exc:
        z.write_attr("disksize", "64K")
    assert exc.value.errno == 22 and not z.initstate
