"""A real process swapped out into zram (and zswap), next to ``zsmalloc estimate --pid``.

Usage::

    python bench/swap_out.py [--mib 512] [--algo lzo,lzo-rle,lz4] [--zswap lzo] [--seed 1]

For each algorithm, :func:`zsmalloc.live.verify_swap.verify_swap` builds a
Python process with ``--mib`` MiB of mixed data (dicts, strings, floats, numpy
arrays with THPs, zero-filled, shared, mlocked and library memory) in a memory
cgroup, estimates it as ``zsmalloc estimate --pid`` does, swaps it out into a
hot-added zram device used as swap (``--zswap``: through zswap before a swap
file) and prints, as Markdown tables, every counter: estimate, kernel,
difference.  It also prints how long the estimate took next to the kernel's
swap-out.  Root, zram and a memory cgroup controller are needed; the machine is
left as it was found.  Exit status 1 if any counter disagrees.
"""

from __future__ import annotations

import argparse
import sys

from zsmalloc.errors import KernelUnavailableError, ZsmallocError
from zsmalloc.live.result import VerifyResult
from zsmalloc.live.verify_swap import verify_swap


def table(r: VerifyResult) -> list[str]:
    e = r.events
    into = "zswap (swap file)" if r.check == "swap-zswap" else "zram swap"
    head = (
        f"### {r.algorithm}, {into}: a process built with {e['process_mib']} MiB "
        f"({e['process_resident_kb'] // 1024} MiB resident, seed {r.seed})"
    )
    lines = [
        head,
        "",
        f"estimate: {r.counts['to_device']} pages to the device, {r.counts['zero_map']} to the "
        f"swap zero map ({e['zero_thp_pages']} in all-zero THPs); kernel: "
        f"{e['left_resident']} pages left resident, thp_swpout {e['thp_swpout']}, "
        f"thp_swpout_fallback {e['thp_swpout_fallback']}; estimate {e['estimate_ms']} ms, "
        f"swap-out {e['swap_out_ms']} ms",
        "",
        "| counter | estimate | kernel | difference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for c in r.comparisons:
        diff = "0"
        if c.kernel != c.model:
            diff = f"{c.kernel - c.model:+d}" + (
                "" if c.off is None else f" ({100 * c.off:+.3f} %)"
            )
        lines.append(f"| {c.name} | {c.model} | {c.kernel} | {diff} |")
    lines.append("")
    lines.append("result: " + ("MATCH" if r.ok else "MISMATCH") + f" ({r.seconds:.1f} s)")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--algo", default="lzo,lzo-rle,lz4")
    ap.add_argument("--zswap", default="", metavar="A[,B]", help="zswap compressors too")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    runs = [(a, False) for a in args.algo.split(",") if a]
    runs += [(a, True) for a in args.zswap.split(",") if a]
    ok = True
    for algo, zswap in runs:
        try:
            r = verify_swap(args.mib, algo, seed=args.seed, zswap=zswap)
        except KernelUnavailableError as exc:
            print(f"{algo}: cannot run here: {exc}")
            return 2
        except ZsmallocError as exc:  # e.g. a compressor this kernel lacks
            print(f"{algo}{' (zswap)' if zswap else ''}: skipped: {exc}\n")
            continue
        print("\n".join(table(r)) + "\n", flush=True)
        ok &= r.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
