"""Speed of ``zsmalloc whatif --trace``: one 1M-operation zram size trace under 12 variants.

Usage::

    python bench/whatif.py [--ops 1000000] [--slots 262144] [--seed 1]

The trace is bench/zram_replay.py's (writes, same-filled pages, discards, a compaction
every 50,000 operations; no ``m`` lines).  The variants are the issue's grid:
``--vary chain=4,8,16 --vary delta=16,64 --vary rule=least-waste,waste-threshold`` (12
class tables; delta 16 is 4 KiB pages' own, so 6 of them differ only in the rule) on
top of the reference (6.18, chain 8).  Each side reads the trace from the gzip file
and replays it in full on a fresh device model, as the command does.

Printed: wall-clock seconds for the reference and the 12 variants together (after a
warm-up that compiles or loads the replay loop), ops/s over all of them, and the table
``whatif`` prints.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

from zram_replay import make_trace  # bench/ is the script's directory
from zsmalloc.cli.whatif import render_totals
from zsmalloc.estimate.whatif import parse_vary, price_trace, variant_profiles
from zsmalloc.profile import KernelProfile

VARY = ["chain=4,8,16", "delta=16,64", "rule=least-waste,waste-threshold"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--slots", type=int, default=262_144)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    ref_profile = KernelProfile()
    profiles = variant_profiles(ref_profile, parse_vary(VARY))
    assert len(profiles) == 12
    with tempfile.TemporaryDirectory() as d:
        warm = Path(d) / "warm.trace"
        warm.write_bytes(make_trace(2000, 512, 0))
        for p in [ref_profile, *profiles]:  # compile or load every specialisation
            price_trace(str(warm), p, check=False)
        path = Path(d) / "bench.trace.gz"
        path.write_bytes(gzip.compress(make_trace(args.ops, args.slots, args.seed), 1))
        t0 = time.perf_counter()
        ref, _ = price_trace(str(path), ref_profile, check=True)
        variants = [price_trace(str(path), p, check=False)[0] for p in profiles]
        seconds = time.perf_counter() - t0
    sides = 1 + len(variants)
    print(
        f"{args.ops:,} operations x {sides} sides (reference + {len(variants)} variants): "
        f"{seconds:.1f} s, {args.ops * sides / seconds:,.0f} ops/s"
    )
    print("\n".join(render_totals(ref, variants)))


if __name__ == "__main__":
    main()
