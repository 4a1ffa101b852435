"""numba's disk cache never hands out code compiled from an older source.

numba stamps a cached function with its own file only, but a compiled caller inlines
its callees from other files: before zsmalloc keyed its cache directory on the whole
package's source, editing a callee left every caller in another file running the old
callee.  These tests edit a callee in a copy of the package and watch the caller.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import zsmalloc
from zsmalloc import _jit

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba not installed"),
    pytest.mark.skipif(
        os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
        reason="NUMBA_DISABLE_JIT is set: nothing is compiled or cached",
    ),
]

PACKAGE_DIR = Path(zsmalloc.__file__).parent

# A callee and its caller in two files, as zs/core.py and zram/replay.py are; the
# callee's constant comes from a third module without any compiled code (as the
# profile's constants do).
CONSTS = "STEP = 1\n"
CALLEE = """\
from zsmalloc._jit import njit
from zsmalloc._probe_consts import STEP


@njit
def callee(x):
    return x + STEP
"""
CALLER = """\
from zsmalloc._jit import njit
from zsmalloc._probe_callee import callee


@njit
def caller(x):
    return 2 * callee(x)
"""
RUN = """\
import json
from zsmalloc import _jit
from zsmalloc._probe_caller import caller

value = caller(20)
print(json.dumps({
    "value": value,
    "hits": sum(caller.stats.cache_hits.values()),
    "cache_dir": getattr(_jit, "CACHE_DIR", None),
}))
"""


def copy_package(tmp_path: Path) -> Path:
    """A copy of the package source with the probe modules; returns its PYTHONPATH."""
    root = tmp_path / "src"
    pkg = root / "zsmalloc"
    shutil.copytree(PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "_probe_consts.py").write_text(CONSTS)
    (pkg / "_probe_callee.py").write_text(CALLEE)
    (pkg / "_probe_caller.py").write_text(CALLER)
    return root


def run_caller(root: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(root)
    run = [sys.executable, "-c", RUN]
    out = subprocess.run(run, env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_editing_a_callee_recompiles_its_callers_in_other_files(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    pkg = root / "zsmalloc"

    first = run_caller(root)
    assert first["value"] == 2 * (20 + 1)
    assert first["hits"] == 0
    assert list(root.rglob("*caller*.nbi")), "the first run wrote no cache"

    second = run_caller(root)
    assert second == {**first, "hits": 1}, "the second run did not load the cached caller"

    callee = pkg / "_probe_callee.py"
    callee.write_text(callee.read_text().replace("x + STEP", "x + STEP + 1000"))
    third = run_caller(root)
    assert third["value"] == 2 * (20 + 1 + 1000), "the caller still runs the old callee"
    assert third["hits"] == 0

    # The cache lives beside the package, in a directory named after the digest.  A stale
    # digest directory unused for long is pruned, a recent one is kept (another process
    # may still be running on it), and anything not named like a digest is left alone.
    assert isinstance(first["cache_dir"], str) and first["cache_dir"].startswith(str(pkg))
    assert third["cache_dir"] != first["cache_dir"]
    base = Path(first["cache_dir"]).parent
    old, recent, other = base / ("0" * 16), base / ("1" * 16), base / "keep-me"
    for d in (old, recent, other):
        d.mkdir()
    os.utime(old, (0, 0))
    os.utime(other, (0, 0))

    consts = pkg / "_probe_consts.py"
    consts.write_text("STEP = 30\n")  # a constant frozen into the compiled callee
    fourth = run_caller(root)
    assert fourth["value"] == 2 * (20 + 30 + 1000), "the caller still has the old constant"

    assert not old.exists()
    assert recent.exists() and other.exists()
    assert Path(first["cache_dir"]).exists()  # used seconds ago: kept for now


def test_digest_covers_what_compiled_code_can_reach(tmp_path: Path) -> None:
    pkg = copy_package(tmp_path) / "zsmalloc"
    (pkg / "_probe_other.py").write_text("UNRELATED = 1\n")  # imported by nothing compiled
    (pkg / "mm" / "_probe_rel.py").write_text("from .._probe_relconst import K\n")
    (pkg / "_probe_relconst.py").write_text("K = 1\n")
    (pkg / "_probe_caller.py").write_text(CALLER + "from .mm import _probe_rel\n")
    sources = _jit.compiled_sources(str(pkg))
    for name in ("_jit.py", "_probe_callee.py", "_probe_caller.py", "_probe_consts.py"):
        assert name in sources
    assert os.path.join("mm", "_probe_rel.py") in sources  # relative imports count too
    assert "_probe_relconst.py" in sources
    assert "_probe_other.py" not in sources

    digest = _jit.source_digest(str(pkg))
    (pkg / "_probe_other.py").write_text("UNRELATED = 2\n")
    assert _jit.source_digest(str(pkg)) == digest
    (pkg / "_probe_consts.py").write_text("STEP = 3\n")
    assert _jit.source_digest(str(pkg)) != digest


def test_every_compiled_function_is_cached_under_the_digest() -> None:
    """No jitted function of the package escapes the digest (or numba's per-file cache)."""
    sources = set(_jit.compiled_sources(str(PACKAGE_DIR)))
    assert _jit.CACHE_DIR is not None
    seen = 0
    for info in pkgutil.walk_packages(zsmalloc.__path__, "zsmalloc."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            py_func = getattr(obj, "py_func", None)
            cache = getattr(obj, "_cache", None)
            if py_func is None or py_func.__module__ != info.name:
                continue
            seen += 1
            rel = os.path.relpath(py_func.__code__.co_filename, PACKAGE_DIR)
            assert rel in sources, f"{info.name}.{py_func.__name__} is outside the digest"
            assert cache.cache_path.startswith(_jit.CACHE_DIR + os.sep), info.name
    assert seen > 50


def test_shared_base_keeps_the_most_recent_digests(tmp_path: Path) -> None:
    """In a base other checkouts may share, the KEEP_SHARED most recently used stay."""
    names = [f"{i:016x}" for i in range(8)]
    for age, name in enumerate(names):  # names[0] is the most recent
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (0, 10_000 - age))
    current = names[-1]  # the oldest, but in use now
    _jit._prune(str(tmp_path), current, _jit.KEEP_SHARED)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == sorted([current, *names[: _jit.KEEP_SHARED - 1]])
