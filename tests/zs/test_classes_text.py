"""The debugfs ``classes`` file (spec §8.1), checked against the spec's format rules.

Expected rows are built with the kernel's own printf formats (%5u, %9lu ...), an oracle
independent of the f-strings in the code under test.
"""
# ruff: noqa: UP031

from __future__ import annotations

from zsmalloc import Pool

HEADER = (
    " class  size       10%       20%       30%       40%       50%       60%       70%"
    "       80%       90%       99%      100% obj_allocated   obj_used pages_used"
    " pages_per_zspage freeable"
)


def test_classes_text_after_worked_example_frees() -> None:
    pool = Pool(max_pages=64)
    h = [pool.malloc(3000) for _ in range(9)]
    for i in (0, 1, 5, 8, 2):  # spec §11: lists end as 3:[A], 8:[B]
        pool.free(h[i])
    lines = pool.classes_text().split("\n")
    assert lines[0] == HEADER
    assert len(lines) == 1 + 119 + 1 + 1 + 1  # header, real classes, blank, Total, final ""
    # class 190 (3072 B): one zspage in group 3 (30%), one in group 8 (80%);
    # obj_allocated 8, obj_used 4, pages_used 8 // 4 * 3 = 6, ppz 3, freeable 3.
    groups = [0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0]
    row = " %5d %5d " % (190, 3072) + "".join("%9d " % g for g in groups)
    row += "%13d %10d %10d %16d %8d" % (8, 4, 6, 3, 3)
    assert row in lines
    total = " %5s %5s " % ("Total", "") + "".join("%9d " % g for g in groups)
    total += "%13d %10d %10d %16s %8d" % (8, 4, 6, "", 3)
    assert lines[-3:] == ["", total, ""]
    # an empty real class still prints, all zeros but its pages_per_zspage
    empty = " %5d %5d " % (0, 32) + "%9d " % 0 * 11 + "%13d %10d %10d %16d %8d" % (0, 0, 0, 1, 0)
    assert lines[1] == empty
    # merged aliases (e.g. 48, which points to 49) are not printed
    assert not any(line.startswith("    48 ") for line in lines)
