"""numba is loaded only when compiled code first runs (zsmalloc/_jit.py's Deferred).

Each check runs in a fresh interpreter: in this one numba is long loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zsmalloc import _jit

pytestmark = pytest.mark.skipif(not _jit.HAVE_NUMBA, reason="numba is not used here")


def run(code: str) -> object:
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys\n" + code], capture_output=True, text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_does_not_load_numba() -> None:
    # Every module of the package, the allocator and the CLI included.
    assert run(
        "import pkgutil, importlib, zsmalloc\n"
        "for m in pkgutil.walk_packages(zsmalloc.__path__, 'zsmalloc.'):\n"
        "    if '.testing' not in m.name: importlib.import_module(m.name)\n"
        "print(json.dumps('numba' in sys.modules))"
    ) is False


def test_first_call_loads_numba_and_swaps_the_globals() -> None:
    got = run(
        "from zsmalloc import _jit\n"
        "import zsmalloc.zs.size_class as sc, zsmalloc.estimate.fill as fill\n"
        "before = [type(sc.size_class_index).__name__, 'numba' in sys.modules]\n"
        "value = sc.size_class_index(100, 32, 16, 255)\n"  # a compiled call
        "after = [type(sc.size_class_index).__name__, type(sc.fullness_groups).__name__,\n"
        "         type(getattr(fill, 'fullness_groups', sc.fullness_groups)).__name__,\n"
        "         _jit.prange is __import__('numba').prange]\n"
        "print(json.dumps([before, value, after]))"
    )
    before, value, after = got  # type: ignore[misc]
    assert before == ["Deferred", False]
    assert value == (100 - 32 + 15) // 16  # get_size_class_index()
    assert after == ["CPUDispatcher", "CPUDispatcher", "CPUDispatcher", True]


def test_cold_python_runs_without_numba() -> None:
    # The estimate's report: the class table's elementwise forms and mm_stat_show.
    got = run(
        "from zsmalloc.profile import DEFAULT_PROFILE\n"
        "from zsmalloc.zs.size_class import class_table\n"
        "from zsmalloc.zram.stats import build_mm_stat, new_stats\n"
        "t = class_table(DEFAULT_PROFILE)\n"
        "cls = t.malloc_classes()\n"
        "s = new_stats(); s[0]['pages_stored'] = 3; s[0]['compr_data_size'] = 5000\n"
        "m = build_mm_stat(s, 0, 2, 1, 12)\n"
        "cold = 'numba' in sys.modules\n"
        "from zsmalloc.profile import ZS_HANDLE_SIZE\n"
        "from zsmalloc.zs.size_class import size_class_index\n"  # compiled, as zs_malloc runs it
        "compiled = int(t.index[size_class_index(100 + ZS_HANDLE_SIZE, t.min_alloc_size,\n"
        "                                        t.size_class_delta, t.nr_size_classes)])\n"
        "cold = [cold, t.class_index_for_malloc(100), 'numba' in sys.modules]\n"
        "print(json.dumps([int(cls[100]), compiled, m.orig_data_size,\n"
        "                  m.mem_used_total, m.pages_compacted, cold]))"
    )
    assert got[0] == got[1]  # type: ignore[index]
    assert got[2:5] == [3 << 12, 2 << 12, 1]  # type: ignore[index]
    assert got[5] == [False, got[0], True]  # type: ignore[index]
