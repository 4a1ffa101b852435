"""The plain-Python path (``NUMBA_DISABLE_JIT=1``) gives the compiled path's results.

The same source runs both ways (zsmalloc._jit); under plain Python the loads
are the byte-wise ``read32``/``read64`` rather than numba's one-load
intrinsics, and numpy scalars could wrap where numba's int64 does not.  A
subprocess with the JIT disabled compresses a small sample (plain Python is
~1000x slower; lz4hc and deflate, slower still, get every fourth page), and its
lengths, bytes and decoded pages must equal ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from zram_page_kinds import edge_sweep_pages, make_pages

from zsmalloc import compress

HERE = Path(__file__).parent

CHILD = r"""
import hashlib, json, sys
import numpy as np
from zsmalloc import compress
from zsmalloc._jit import HAVE_NUMBA
assert not HAVE_NUMBA
pages = np.frombuffer(sys.stdin.buffer.read(), dtype=np.uint8).reshape(-1, 4096)
out = {}
for algo in compress.KERNEL_EXACT:
    b = compress.get(algo)
    some = pages[::4] if algo in ("lz4hc", "deflate") else pages
    data = [b.compress(p) for p in some]
    assert all(b.decompress(d) == p.tobytes() for d, p in zip(data, some))
    out[algo] = {
        "stored": compress.stored_sizes(some, algo).tolist(),
        "sha": [hashlib.sha256(d).hexdigest() for d in data],
    }
out["lz4 level 5"] = compress.compress_lengths(pages[:4], "lz4", level=5).tolist()
out["same"] = compress.is_same_filled(pages)[0].tolist()
print(json.dumps(out))
"""


def sample_pages() -> np.ndarray:
    pages, _ = make_pages(26, seed=11)  # two pages of every kind
    sweep, kinds = edge_sweep_pages(seed=11)
    firsts = [kinds.index(k) for k in dict.fromkeys(kinds)]
    pick = firsts + [i + 37 for i in firsts]  # two pages of each sweep
    return np.concatenate([pages, sweep[pick]])


def test_plain_python_matches_numba() -> None:
    import hashlib

    pages = sample_pages()
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=pages.tobytes(),
        capture_output=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    child = json.loads(proc.stdout)
    for algo in compress.KERNEL_EXACT:
        b = compress.get(algo)
        some = pages[::4] if algo in ("lz4hc", "deflate") else pages
        assert child[algo]["stored"] == compress.stored_sizes(some, algo).tolist(), algo
        ours = [hashlib.sha256(b.compress(p)).hexdigest() for p in some]
        assert child[algo]["sha"] == ours, algo
    assert child["lz4 level 5"] == compress.compress_lengths(pages[:4], "lz4", level=5).tolist()
    assert child["same"] == compress.is_same_filled(pages)[0].tolist()
