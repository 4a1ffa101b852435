"""Model-based test: random malloc / write / free / overwrite / compact / migrate.

Each step is applied to a :class:`~zsmalloc.Pool` and to two models:

* a ``dict`` handle -> bytes written (every live object must read back identical);
* ``NaiveZsmalloc`` (tests/naive.py), a list-based restatement of spec §4-§5: the page
  total, ``pages_compacted`` and every object's index in its zspage must agree.

The same machine runs a 6.1 pool against ``NaiveZsmalloc61`` (§10, §10.1), an oracle that
first replays the 6.1 kernel's recorded traces (tests/test_naive_oracle.py).

After every step :func:`~zsmalloc.zs.check.check_pool` recounts the pool from scratch
(free lists, fullness groups, stats, pages, handle round trips).  Sizes lean to class
edges; data is zero, same-filled or random.
"""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from naive import NaiveZsmalloc, NaiveZsmalloc61
from zsmalloc import Pool
from zsmalloc.profile import KernelProfile
from zsmalloc.zs.check import check_pool, live_zspages, zspage_info
from zsmalloc.zs.size_class import class_table

TABLES = (class_table(), class_table(KernelProfile("6.1")))


def _edge_sizes() -> list[int]:
    edges = {1, 4096}
    for table in TABLES:
        edges |= {table.huge_class_size - 1, table.huge_class_size}
        for idx in table.real_indices:
            lo, hi = table.user_size_range(int(idx))
            edges |= {lo, hi, max(1, lo - 1), min(4096, hi + 1)}
    return sorted(edges)


EDGES = _edge_sizes()
sizes = st.one_of(st.sampled_from(EDGES), st.integers(1, 4096))
fills = st.one_of(st.just("zero"), st.integers(0, 255), st.integers(0, 2**32 - 1).map(str))


def payload(size: int, fill: int | str) -> bytes:
    """Zero, same-filled (an int byte) or random (a str seed) data of ``size`` bytes."""
    if fill == "zero":
        return bytes(size)
    if isinstance(fill, int):
        return bytes([fill]) * size
    return np.random.default_rng(int(fill)).integers(0, 256, size, dtype=np.uint8).tobytes()


class PoolMachine(RuleBasedStateMachine):
    handles = Bundle("handles")
    version = "6.18"
    naive_class: type[NaiveZsmalloc] = NaiveZsmalloc

    def __init__(self) -> None:
        super().__init__()
        self.pool = Pool(max_pages=1024, version=self.version)
        self.naive = self.naive_class(self.pool.table)
        self.data: dict[int, bytes] = {}
        self.naive_handle: dict[int, int] = {}
        self.palette: list[int] = [64]

    @initialize(palette=st.lists(sizes, min_size=1, max_size=3))
    def choose_palette(self, palette: list[int]) -> None:
        self.palette = palette  # a few sizes, so classes fill and compaction has work

    def _malloc(self, size: int, fill: int | str) -> int:
        h = self.pool.malloc(size)
        data = payload(size, fill)
        self.pool.write(h, data)
        self.data[h] = data
        self.naive_handle[h] = self.naive.malloc(size)
        return h

    def _free(self, h: int) -> None:
        self.pool.free(h)
        del self.data[h]
        self.naive.free(self.naive_handle.pop(h))

    @rule(target=handles, size=sizes, fill=fills)
    def malloc(self, size: int, fill: int | str) -> int:
        return self._malloc(size, fill)

    @rule(target=handles, pick=st.integers(0, 2), n=st.integers(1, 40), fill=fills)
    def malloc_many(self, pick: int, n: int, fill: int | str) -> object:
        size = self.palette[pick % len(self.palette)]
        return multiple(*[self._malloc(size, fill) for _ in range(n)])

    @rule(h=consumes(handles))
    def free(self, h: int) -> None:
        self._free(h)

    @rule(target=handles, h=consumes(handles), size=sizes, fill=fills)
    def overwrite(self, h: int, size: int, fill: int | str) -> int:
        new = self._malloc(size, fill)  # zram order: the new object first, then the old freed
        self._free(h)
        return new

    @rule()
    def compact(self) -> None:
        can = sum(self.naive.can_compact(c) for c in self.naive.lists)
        assert self.pool.can_compact() == can
        expected = self.naive.compact()
        if self.version != "6.1":  # 6.1's loop may stop before every freeable page is freed
            assert expected == can
        assert self.pool.compact() == expected

    @precondition(lambda self: self.pool.total_pages() > 0)
    @rule(data=st.data())
    def migrate(self, data: st.DataObject) -> None:
        st_ = self.pool.state
        pages = [p for z in live_zspages(st_) for p in zspage_info(st_, z).pages]
        pfn = data.draw(st.sampled_from(pages))
        new = self.pool.migrate(pfn)
        assert new != pfn

    @invariant()
    def agrees_with_models(self) -> None:
        check_pool(self.pool.state)
        assert self.pool.total_pages() == self.naive.pages
        assert self.pool.pages_compacted == self.naive.pages_compacted
        bits = int(self.pool.state.vars[0].obj_index_bits)  # the index: the low bits
        shift = int(self.pool.state.vars[0].obj_tag_shift)
        for h, data in self.data.items():
            assert self.pool.read(h, len(data)) == data
            obj_idx = int(self.pool.state.handle_obj[h >> 3]) >> shift & ((1 << bits) - 1)
            assert obj_idx == self.naive.where[self.naive_handle[h]][1]

    def teardown(self) -> None:
        for h in list(self.data):
            self._free(h)
        assert self.pool.total_pages() == 0 == self.naive.pages
        check_pool(self.pool.state)


class PoolMachine61(PoolMachine):
    version = "6.1"
    naive_class = NaiveZsmalloc61


class PoolMachine73(PoolMachine):
    version = "7.3"  # 6.18's rules; the obj also holds the class


PoolMachine.TestCase.settings = settings(stateful_step_count=25, deadline=None)
TestPoolModel = PoolMachine.TestCase
PoolMachine61.TestCase.settings = settings(stateful_step_count=25, deadline=None)
TestPoolModel61 = PoolMachine61.TestCase
PoolMachine73.TestCase.settings = settings(stateful_step_count=25, deadline=None)
TestPoolModel73 = PoolMachine73.TestCase
