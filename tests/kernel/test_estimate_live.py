"""``estimate`` against the running kernel: the same pages, our own zram device, every column.

The image is built in memory from this machine's real data (files under /usr,
resident process memory, the built-in sample; see ``machine_mix``), written in
order with O_DIRECT to a hot-added zram device per algorithm (and lz4 with
``algorithm_params level=8``, i.e. acceleration 8), and the device's
``mm_stat`` before and after ``compact`` must equal the estimate's.

Size: ``ZSMALLOC_LIVE_IMAGE_MIB`` (default 16 MiB, to keep the suite fast; the
issue's acceptance run uses 64).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable

import numpy as np
import pytest

from zsmalloc.estimate.driver import run_estimate
from zsmalloc.estimate.report import build_report
from zsmalloc.estimate.sample import machine_mix
from zsmalloc.estimate.sources import ArraySource
from zsmalloc.zram.stats import MmStat

PAGE = 4096
IMAGE_MIB = int(os.environ.get("ZSMALLOC_LIVE_IMAGE_MIB", "16"))
WRITE_CHUNK = 256  # pages per O_DIRECT write (1 MiB): zram handles a bio page by page, in order


def write_image(path: str, image: np.ndarray) -> None:
    """Sequential O_DIRECT writes of the whole image, from a page-aligned buffer."""
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, WRITE_CHUNK * PAGE)
    view = np.frombuffer(buf, dtype=np.uint8).reshape(WRITE_CHUNK, PAGE)
    try:
        for lo in range(0, len(image), WRITE_CHUNK):
            n = min(WRITE_CHUNK, len(image) - lo)
            view[:n] = image[lo : lo + n]
            assert os.pwritev(fd, [memoryview(buf)[: n * PAGE]], lo * PAGE) == n * PAGE
    finally:
        del view
        buf.close()
        os.close(fd)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return machine_mix(IMAGE_MIB * 256)


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("algo", "level"), [("lzo", None), ("lzo-rle", None), ("lz4", None), ("lz4", 8)]
)
def test_estimate_equals_live_zram(
    live_zram: Callable[..., object], image: np.ndarray, algo: str, level: int | None
) -> None:
    report = build_report(run_estimate([ArraySource(image, PAGE)], [algo], level=level))
    est = report.algos[algo]

    params = None if level is None else f"algo={algo} level={level}"
    dev = live_zram(algorithm=algo, disksize=len(image) * PAGE, algorithm_params=params)
    write_image(dev.path, image)  # type: ignore[attr-defined]
    before = MmStat(*dev.mm_stat())  # type: ignore[attr-defined]
    dev.compact()  # type: ignore[attr-defined]
    after = MmStat(*dev.mm_stat())  # type: ignore[attr-defined]

    assert before == est.mm_stat, f"{algo}: kernel {before} vs estimate {est.mm_stat}"
    assert after == est.mm_stat_after_compact
    # The image is a real mix: compressed, huge and same-filled pages all occur.
    assert before.same_pages > 0 and before.huge_pages > 0
    assert 0 < before.compr_data_size < before.orig_data_size
