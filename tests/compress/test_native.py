"""The native lengths loop (compress/native.py) is numba's loop, and estimate starts without numba.

The kernel's side of these lengths is checked where every backend is (the guest
recordings go through ``stored_sizes``, which now takes the native loop); here the
native loop is compared with numba's own ``_batch_lengths`` page for page, and the
promise it exists for is held: once built, ``zsmalloc estimate`` never imports numba.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zsmalloc import _jit
from zsmalloc.compress import native
from zsmalloc.compress.batch import ALGO_CODES, _batch_lengths

pytestmark = pytest.mark.skipif(not _jit.HAVE_NUMBA, reason="the native loop is numba's code")


@pytest.fixture(scope="module")
def pages(testdata: Path) -> np.ndarray:
    raw = np.frombuffer(gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes()), np.uint8)
    arr = raw[: raw.size // 4096 * 4096].reshape(-1, 4096)
    rng = np.random.default_rng(5)
    extra = np.zeros((4, 4096), np.uint8)  # same-filled, incompressible, nearly so
    extra[1] = 0x5A
    extra[2] = rng.integers(0, 256, 4096, dtype=np.uint8)
    extra[3, :3000] = rng.integers(0, 256, 3000, dtype=np.uint8)
    return np.ascontiguousarray(np.concatenate([arr, extra]))


@pytest.fixture(scope="module")
def loop() -> native.NativeLengths:
    lengths = native.native_lengths()
    assert lengths is not None, native.unavailable_reason()
    return lengths


@pytest.mark.parametrize("algo", sorted(native.NATIVE_ALGOS))
@pytest.mark.parametrize("page_size", [4096, 16384, 65536])
def test_native_equals_numba(
    loop: native.NativeLengths, pages: np.ndarray, algo: str, page_size: int
) -> None:
    big = np.ascontiguousarray(pages[: pages.shape[0] // 16 * 16].reshape(-1, page_size))
    big.flags.writeable = False
    levels = [1, 3] if algo == "lz4" else [0]
    for level in levels:
        for huge in (-1, page_size * 7 // 8):
            want = _batch_lengths(big, ALGO_CODES[algo], level, 0, huge, 8)
            got = loop.lengths(big, algo, level, huge)
            assert np.array_equal(got, want), (algo, page_size, level, huge)


@pytest.mark.parametrize("n", [1, 31, 33, 255, 257, 300, 1025])
def test_every_page_of_any_batch_size(
    loop: native.NativeLengths, pages: np.ndarray, n: int
) -> None:
    """The threads take shrinking blocks toward the end of a batch: none is left out."""
    batch = np.ascontiguousarray(np.resize(pages, (n, pages.shape[1])))
    want = _batch_lengths(batch, ALGO_CODES["lzo"], 0, 0, 3625, 8)
    assert np.array_equal(loop.lengths(batch, "lzo", 0, 3625), want)


def test_native_in_forked_child(loop: native.NativeLengths, pages: np.ndarray) -> None:
    want = loop.lengths(pages[:600], "lz4", 1, 3625)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child inherits the pool object without its threads
        try:
            got = loop.lengths(pages[:600], "lz4", 1, 3625)
            os.write(w, b"1" if np.array_equal(got, want) else b"0")
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(r)


def _copy_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    """The built files copied into a cache directory of the test's own."""
    native.native_lengths()  # built (it is kept beside numba's cache)
    paths = native._paths()
    monkeypatch.setattr(_jit, "CACHE_DIR", str(tmp_path))
    new = native._paths()
    for old_path, new_path in zip(paths, new, strict=True):
        if os.path.exists(old_path):
            Path(new_path).write_bytes(Path(old_path).read_bytes())
    return new


def _damage(path: str) -> None:
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))


def test_damaged_object_is_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    obj, so, _meta = _copy_build(tmp_path, monkeypatch)
    Path(so).unlink(missing_ok=True)  # the object is what MCJIT links
    _damage(obj)
    with pytest.raises(native.NativeUnavailable, match="does not match"):
        native.NativeLengths()


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler to link a shared library")
def test_damaged_library_is_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _obj, so, _meta = _copy_build(tmp_path, monkeypatch)
    _damage(so)
    with pytest.raises(native.NativeUnavailable, match="does not match"):
        native.NativeLengths()


def test_object_alone_is_loaded_by_mcjit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pages: np.ndarray
) -> None:
    """Where no library was linked (no C compiler), llvmlite's MCJIT runs the object."""
    _obj, so, _meta = _copy_build(tmp_path, monkeypatch)
    Path(so).unlink(missing_ok=True)
    mcjit = native.NativeLengths()
    assert getattr(mcjit, "_library", None) is None
    want = _batch_lengths(pages, ALGO_CODES["lzo-rle"], 0, 0, 3625, 8)
    assert np.array_equal(mcjit.lengths(pages, "lzo-rle", 0, 3625), want)


def test_no_compiler_links_no_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert native._link_shared(None, []) is None  # build() then keeps the object alone


def test_estimate_does_not_import_numba(tmp_path: Path, testdata: Path) -> None:
    native.native_lengths()  # built (it is kept beside numba's cache)
    img = tmp_path / "img"
    raw = gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())
    img.write_bytes(raw[: len(raw) // 4096 * 4096])
    script = (
        "import sys\n"
        "from zsmalloc.cli.main import main\n"
        f"sys.argv = ['zsmalloc', 'estimate', {str(img)!r}, '--algo', 'lzo,lz4', '--json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(['numba' in sys.modules, 'llvmlite' in sys.modules]))\n".replace(
            "print(", "import json; print("
        )
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    report, _, loaded = out.rstrip().rpartition("\n")
    numba_loaded, llvmlite_loaded = json.loads(loaded)
    assert numba_loaded is False
    if os.path.exists(native._paths()[1]):  # a linked library: no LLVM at all
        assert llvmlite_loaded is False
    assert json.loads(report)["input"]["pages"] == len(raw) // 4096
