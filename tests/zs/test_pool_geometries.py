"""Other chain sizes and page sizes: random workloads agree with the naive model.

Each example picks a configuration (chain 4..16, Kconfig's range; 4, 16 or 64 KiB pages;
6.18's rules or 6.1's, against the matching naive model), runs random
mallocs (sizes from a small palette so zspages fill), frees, writes and compactions on a
Pool and on ``NaiveZsmalloc`` built from the same class table, and checks page totals,
pages_compacted, object indices, contents and the validators.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from naive import NaiveZsmalloc, NaiveZsmalloc61
from zsmalloc import Pool
from zsmalloc.profile import MAX_CHAIN_SIZE, MIN_CHAIN_SIZE
from zsmalloc.zs.check import check_pool

configs = st.tuples(
    st.integers(MIN_CHAIN_SIZE, MAX_CHAIN_SIZE),
    st.sampled_from([4096, 16384, 65536]),
    st.sampled_from(["6.1", "6.18"]),
)


@settings(max_examples=15, deadline=None)
@given(configs, st.data())
def test_random_workload_any_geometry(
    config: tuple[int, int, str], data: st.DataObject
) -> None:
    chain, page_size, version = config  # 6.1 ignores the chain size: always 4 pages
    pool = Pool(chain_size=chain, page_size=page_size, max_pages=4096, version=version)
    naive = (NaiveZsmalloc61 if version == "6.1" else NaiveZsmalloc)(pool.table)
    palette = data.draw(st.lists(st.integers(1, page_size), min_size=1, max_size=3))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    live: dict[int, tuple[int, bytes]] = {}
    bits = int(pool.state.vars[0].obj_index_bits)
    shift = int(pool.state.vars[0].obj_tag_shift)
    for _ in range(data.draw(st.integers(1, 300))):
        r = rng.random()
        if r < 0.55 or not live:
            size = int(palette[rng.integers(len(palette))])
            h = pool.malloc(size)
            payload = rng.integers(0, 256, min(size, 64), dtype=np.uint8).tobytes()
            pool.write(h, payload)
            live[h] = (naive.malloc(size), payload)
        elif r < 0.98:
            h = list(live)[rng.integers(len(live))]
            pool.free(h)
            naive.free(live.pop(h)[0])
        else:
            assert pool.compact() == naive.compact()
        assert pool.total_pages() == naive.pages
    check_pool(pool.state)
    assert pool.pages_compacted == naive.pages_compacted
    for h, (nh, payload) in live.items():
        assert pool.read(h, len(payload)) == payload
        assert int(pool.state.handle_obj[h >> 3]) >> shift & ((1 << bits) - 1) == naive.where[nh][1]
    for h in list(live):
        pool.free(h)
    assert pool.total_pages() == 0
