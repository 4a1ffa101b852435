"""Zram's arguments: the same rules as Pool's, and sizes as u64 as the kernel has them.

* data is a buffer's raw bytes, for ``Zram.write`` as for ``Pool.write`` (one rule,
  :mod:`zsmalloc.args`): a float64 array is its 8-byte values, never values cast to
  bytes;
* offsets, lengths and slots are integers: a float is refused, not truncated;
* attribute values are text or integers (``str(1.5e9)`` would parse as 1500000000);
* ``mem_limit`` and ``disksize`` are u64: the kernel's PAGE_ALIGN wraps at 2**64, so
  the expected values here are computed with C's unsigned arithmetic, independently
  of the model.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zsmalloc import Pool
from zsmalloc.errors import InvalidTypeError, SysfsError, ZsmallocError
from zsmalloc.zram.device import Zram

PAGE = 4096
U64 = (1 << 64) - 1


def device(disksize: str = "256K") -> Zram:
    z = Zram()
    z.write_attr("disksize", disksize)
    return z


DTYPES = st.sampled_from(["u1", "i2", "<u4", ">u4", "f8", "c16", "?"])


def _arrays(dt: str) -> st.SearchStrategy[np.ndarray]:
    n = st.sampled_from([PAGE, 2 * PAGE]).map(lambda nbytes: nbytes // np.dtype(dt).itemsize)
    return hnp.arrays(dt, n)


@given(arr=DTYPES.flatmap(_arrays), transpose=st.booleans())
def test_write_takes_raw_bytes_as_pool_write_does(arr: np.ndarray, transpose: bool) -> None:
    if transpose and arr.size % 2 == 0:
        arr = arr.reshape(2, -1).T  # not C-contiguous: the bytes in C order of the view
    raw = np.ascontiguousarray(arr).tobytes()
    z = device()
    assert z.write(0, arr) == len(raw)
    assert z.read(0, len(raw)) == raw
    if len(raw) == PAGE:  # one object's worth: Pool.write stores the same bytes
        pool = Pool(max_pages=16)
        h = pool.malloc(PAGE)
        pool.write(h, arr)
        assert pool.read(h, PAGE) == raw


def test_a_float_array_is_its_bytes() -> None:
    z = device()
    values = np.full(4096, 300.7)
    assert z.write(0, values) == 8 * PAGE  # 32 KiB of float64, not 4096 bytes of 44
    assert z.read(0, 8 * PAGE) == values.tobytes()
    assert z.mm_stat().orig_data_size == 8 * PAGE


BAD_NUMBERS = [4096.0, 1.5, "4096", None, True, b"\x00", [4096], np.float64(0)]


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_offsets_lengths_and_slots_must_be_integers(bad: object) -> None:
    z = device()
    z.write(0, b"\x07" * PAGE)
    before = (z.mm_stat(), z.io_stat(), z.table.flags.tobytes(), z.table.handle.tobytes())
    calls = [
        lambda: z.write(bad, bytes(PAGE)),
        lambda: z.read(bad, PAGE),
        lambda: z.read(0, bad),
        lambda: z.discard(bad, PAGE),
        lambda: z.discard(0, bad),
        lambda: z.slot_free_notify(bad),
        lambda: z.slot(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidTypeError):
            call()
    assert before == (z.mm_stat(), z.io_stat(), z.table.flags.tobytes(), z.table.handle.tobytes())


@pytest.mark.parametrize("bad", ["x" * PAGE, 12, 3.5, None, [1, 2], {"a": 1}])
def test_data_must_be_a_buffer(bad: object) -> None:
    z = device()
    with pytest.raises(InvalidTypeError):
        z.write(0, bad)  # type: ignore[arg-type]
    assert z.mm_stat().orig_data_size == 0


@pytest.mark.parametrize("value", [1.5e9, 1.5, None, True, b"64M", ["64M"]])
def test_attribute_values_are_text_or_integers(value: object) -> None:
    z = Zram()
    for call in (
        lambda: z.write_attr("disksize", value),  # type: ignore[arg-type]
        lambda: z.set_disksize(value),  # type: ignore[arg-type]
        lambda: z.set_mem_limit(value),  # type: ignore[arg-type]
        lambda: z.write_attr("mem_limit", value),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidTypeError, match="string or an integer"):
            call()
    assert z.disksize == 0 and not z.initstate
    z.write_attr("disksize", 65536)  # an int is written in decimal
    assert z.disksize == 65536


def c_page_align(v: int) -> int:
    """PAGE_ALIGN(v) in u64, as C computes it: (v + 4095) & ~4095, wrapping at 2**64."""
    return ((v + PAGE - 1) & U64) & ~(PAGE - 1) & U64


@given(st.one_of(st.integers(0, U64), st.integers(U64 - 2 * PAGE, U64)))
def test_mem_limit_is_u64(limit: int) -> None:
    z = Zram()
    for text in (str(limit), hex(limit)):
        z.write_attr("mem_limit", text)
        mm = z.read_attr("mm_stat").split()
        assert int(mm[3]) == c_page_align(limit)  # printed %llu: never 2**64, never negative


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0xFFFFFFFFFFFFFFFF", U64),  # PAGE_ALIGN wraps to 0: no limit
        ("18446744073709551615", U64),
        ("16383P", 16383 << 50),  # above 2**63: printed unsigned
        ("16384P", 0),  # memparse's shift wraps: 0, no limit
        ("99999999999999999999999", 99999999999999999999999 & U64),  # simple_strtoull wraps
    ],
)
def test_mem_limit_edges(text: str, value: int) -> None:
    z = Zram()
    z.write_attr("mem_limit", text)
    assert int(z.read_attr("mm_stat").split()[3]) == c_page_align(value)


@pytest.mark.parametrize("text", ["0xFFFFFFFFFFFFFFFF", "0xFFFFFFFFFFFFF001"])
def test_a_disksize_that_wraps_to_zero_is_enomem(text: str) -> None:
    """PAGE_ALIGN wraps to 0 and vzalloc(0) fails: -ENOMEM; the device stays as it was."""
    z = Zram()
    with pytest.raises(SysfsError) as exc:
        z.write_attr("disksize", text)
    assert exc.value.errno == errno.ENOMEM
    assert not z.initstate and z.read_attr("disksize") == "0\n"


@pytest.mark.parametrize("text", ["99999999999999999999999", "16E", "1P", "4095E"])
def test_any_disksize_is_accepted_or_refused_in_the_kernels_terms(text: str) -> None:
    """Huge sizes: the slot table cannot be allocated (ENOMEM) or the device works; the
    message speaks of the disk, never of the model's internals."""
    z = Zram()
    try:
        z.write_attr("disksize", text)
    except ZsmallocError as exc:
        assert isinstance(exc, SysfsError) and exc.errno in (errno.ENOMEM, errno.EINVAL)
        for internal in ("max_pages", "frames", "h_cap", "2**31"):
            assert internal not in str(exc)
        assert not z.initstate
        return
    end = z.disksize - PAGE
    z.write(end, b"\x11" * 100 + bytes(PAGE - 100))  # the last slot works
    assert z.read(end, PAGE)[:100] == b"\x11" * 100
