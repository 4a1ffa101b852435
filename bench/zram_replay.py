"""Speed of zram trace replay: parse and replay a large synthetic zram size trace.

Usage::

    python bench/zram_replay.py [--ops 1000000] [--slots 262144] [--seed 1]

The trace is in the tests/data format: writes over ``--slots`` slots with
sizes drawn like real pages (8 % same-filled, 12 % huge, the rest 1..3624
bytes), 20 % discards and a compaction every 50,000 operations; no ``m``
lines (exactness is checked by the kernel traces in tests/data).

Printed: parse rate (lines/s), replay rate (ops/s of the compiled loop after
a warm-up on a small trace, one core), and the final mm_stat.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import numpy as np

from zsmalloc.zram.replay import replay
from zsmalloc.zram.trace import parse_trace


def make_trace(n_ops: int, slots: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    kind = rng.random(n_ops)
    slot = rng.integers(0, slots, n_ops)
    size = rng.integers(1, 3625, n_ops)
    size[rng.random(n_ops) < 0.12] = 4096
    lines = [f"# zram size trace v1 algo=synthetic disksize={slots * 4096} workload=bench"]
    for i in range(n_ops):
        if i % 50_000 == 49_999:
            lines.append("c")
        elif kind[i] < 0.20:
            lines.append(f"d {slot[i]}")
        elif kind[i] < 0.28:
            lines.append(f"s {slot[i]}")
        else:
            lines.append(f"w {slot[i]} {size[i]}")
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--slots", type=int, default=262_144)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    replay(parse_trace(make_trace(2000, 512, 0), "warm-up"))  # compile / load the cache
    raw = make_trace(args.ops, args.slots, args.seed)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.trace.gz"
        path.write_bytes(gzip.compress(raw, 1))
        t0 = time.perf_counter()
        trace = parse_trace(gzip.decompress(path.read_bytes()), str(path))
        t_parse = time.perf_counter() - t0
    result = replay(trace)
    print(f"trace: {len(trace):,} ops over {args.slots:,} slots ({len(raw) / 2**20:.1f} MiB text)")
    print(f"parse (gunzip + numba parser): {t_parse:.3f} s = {len(trace) / t_parse:,.0f} lines/s")
    print(
        f"replay (compiled loop, one core): {result.seconds:.3f} s = "
        f"{result.ops_per_second:,.0f} ops/s"
    )
    print(f"final mm_stat: {' '.join(map(str, result.final_mm_stat))}")


if __name__ == "__main__":
    main()
