"""Fullness groups (spec §1.1): the spec's own examples, through get_fullness_group()."""

from __future__ import annotations

import numpy as np
import pytest

from zsmalloc import Pool
from zsmalloc.zs.zspage import get_fullness_group

# (inuse, objs) -> group, every example listed in zsmalloc.md §1.1
SPEC_EXAMPLES = [
    ((1, 128), 1),
    ((10, 100), 2),  # the source comment "10 % means <= 10 %" is wrong at the edge
    ((1, 4), 3), ((2, 4), 6), ((3, 4), 8),
    ((1, 5), 3), ((2, 5), 5), ((3, 5), 7), ((4, 5), 9),
    ((1, 2), 6),
    ((1, 11), 1), ((1, 10), 2), ((1, 6), 2), ((1, 3), 4),
    ((1, 1), 11),  # a huge zspage goes straight to the full group
    ((0, 7), 0), ((7, 7), 11), ((99, 100), 10),
]


@pytest.mark.parametrize(("case", "group"), SPEC_EXAMPLES)
def test_spec_examples(case: tuple[int, int], group: int) -> None:
    inuse, objs = case
    st = Pool(max_pages=2).state._replace(
        class_objs=np.array([objs], np.int64), zs_inuse=np.array([0, inuse], np.int32)
    )
    assert get_fullness_group(st, 0, 1) == group
