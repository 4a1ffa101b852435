"""The estimate's live check against a stand-in device (no root needed).

The stand-in is a model :class:`~zsmalloc.zram.device.Zram` behind
LiveZram's interface: the check must pass on it (the estimate's closed form
equals the step-by-step model) and must report the first differing column
when the device is made to disagree.
"""

from __future__ import annotations

from types import TracebackType

import numpy as np
import pytest

import zsmalloc.live.verify_estimate as verify
from zsmalloc.estimate.sample import machine_mix
from zsmalloc.live.zram import PAGE_SIZE
from zsmalloc.zram.device import Zram
from zsmalloc.zram.stats import MmStat


class FakeZram:
    """LiveZram's interface over a model device."""

    extra_pages_compacted = 0

    def __init__(self, algorithm: str, disksize: int, algorithm_params: str | None) -> None:
        self.z = Zram()
        self.z.write_attr("comp_algorithm", algorithm)
        if algorithm_params:
            self.z.write_attr("algorithm_params", algorithm_params)
        self.z.write_attr("disksize", str(disksize))
        self.name = "zram99"
        self.path = "/dev/zram99"
        self.compacted = False

    def __enter__(self) -> FakeZram:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def write_pages(self, pages: np.ndarray) -> None:
        for i, page in enumerate(pages):
            self.z.write(i * PAGE_SIZE, page.tobytes())

    def compact(self) -> None:
        self.z.compact()
        self.compacted = True

    def mm_stat(self) -> MmStat:
        mm = MmStat(*self.z.mm_stat())
        if self.compacted:
            mm = mm._replace(pages_compacted=mm.pages_compacted + self.extra_pages_compacted)
        return mm


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeZram]:
    class Fake(FakeZram):
        pass

    monkeypatch.setattr(verify, "LiveZram", Fake)
    return Fake


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return machine_mix(256)


@pytest.mark.parametrize(("algo", "level"), [("lzo-rle", None), ("lz4", 8)])
def test_estimate_equals_the_model_device(
    fake: type[FakeZram], image: np.ndarray, algo: str, level: int | None
) -> None:
    seen: list[tuple[str, int, int | None]] = []
    result = verify.verify_estimate(image, algo, level, progress=lambda *a: seen.append(a))
    assert result.ok and result.check == "estimate" and result.device == "zram99"
    assert [c.phase for c in result.comparisons] == ["writes"] * 9 + ["compaction"] * 9
    assert all(c.ok for c in result.comparisons) and seen


def test_a_differing_column_is_reported(fake: type[FakeZram], image: np.ndarray) -> None:
    fake.extra_pages_compacted = 1
    result = verify.verify_estimate(image, "lzo")
    div = result.divergence
    assert div is not None and div.where == "after the compaction"
    assert div.differing == ["pages_compacted"]
    assert div.kernel[6] == div.model[6] + 1
