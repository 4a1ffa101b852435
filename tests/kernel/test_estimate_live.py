"""``estimate`` against the running kernel: the same pages, our own zram device, every column.

The image is built in memory from this machine's real data (files under /usr,
resident process memory, the built-in sample; see ``machine_mix``) and given to
:func:`~zsmalloc.live.verify_estimate.verify_estimate` per algorithm (and lz4
with ``algorithm_params level=8``, i.e. acceleration 8): written in order with
O_DIRECT to a hot-added zram device, whose ``mm_stat`` before and after
``compact`` must equal the estimate's.

Size: ``ZSMALLOC_LIVE_IMAGE_MIB`` (default 16 MiB, to keep the suite fast; the
issue's acceptance run uses 64).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from zsmalloc.cli.live import render_result
from zsmalloc.estimate.sample import machine_mix
from zsmalloc.live.verify_estimate import verify_estimate
from zsmalloc.live.zram import zram_unavailable_reason

IMAGE_MIB = int(os.environ.get("ZSMALLOC_LIVE_IMAGE_MIB", "16"))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    reason = zram_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return machine_mix(IMAGE_MIB * 256)


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("algo", "level"), [("lzo", None), ("lzo-rle", None), ("lz4", None), ("lz4", 8)]
)
def test_estimate_equals_live_zram(image: np.ndarray, algo: str, level: int | None) -> None:
    result = verify_estimate(image, algo, level=level)
    assert result.ok, render_result(result)
    assert result.device.startswith("zram") and result.device != "zram0"
    assert not (Path("/sys/block") / result.device).exists()  # always removes its device
    written = {c.name: c.kernel for c in result.comparisons if c.phase == "writes"}
    assert len(result.comparisons) == 18 and len(written) == 9
    # The image is a real mix: compressed, huge and same-filled pages all occur.
    assert written["same_pages"] > 0 and written["huge_pages"] > 0
    assert 0 < written["compr_data_size"] < written["orig_data_size"]
