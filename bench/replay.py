"""Replay a synthetic zs_malloc/zs_free size trace through the numba API; report speed and memory.

Usage::

    python bench/replay.py [--ops 1000000] [--live 200000] [--seed 1] [--write]

The trace: a fill phase to ``--live`` objects, then churn (malloc and free of a random
live object, equally likely) to ``--ops`` operations in total, with a zs_compact every
50,000 operations.  Sizes cover every class: 10 % are 4096 (stored huge), the rest
uniform over 1..4096 (about 11 % of those land in the huge class too).  ``--write``
also copies a payload of the object's size into each new object with zs_obj_write.

Printed: operations per second of the replay loop (compiled code only, after a warm-up
run; one core; the fastest of ``--repeat`` runs, and their median), and host bytes of
metadata per live object beyond the arena, counted from the touched part of every
table (mem_map, zspage table, handle table, free-page stack, class arrays), next to
what the kernel spends for the same pool state: 64 B ``struct page`` per page, a
``struct zspage`` slab object per zspage (56 B, rounded as the slab does to 64 B) and
an 8 B ``zs_handle`` slab object per object.
"""

from __future__ import annotations

import argparse
import errno
import time

import numpy as np

from zsmalloc import Pool
from zsmalloc._jit import HAVE_NUMBA
from zsmalloc.mm.hotpath import hot_njit
from zsmalloc.zs import core

OP_MALLOC, OP_FREE, OP_COMPACT = 0, 1, 2
KERNEL_ZSPAGE_BYTES = 64  # kmem_cache "zspage": 56-byte struct, 64-byte slab objects
KERNEL_HANDLE_BYTES = 8
STRUCT_PAGE_BYTES = 64


def make_trace(n_ops: int, live: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(op, size, pick): ops, malloc sizes, and a uniform [0,1) used to pick a victim."""
    rng = np.random.default_rng(seed)
    op = np.empty(n_ops, np.int8)
    fill = min(live, n_ops)
    op[:fill] = OP_MALLOC
    op[fill:] = rng.integers(0, 2, n_ops - fill).astype(np.int8)
    op[49_999::50_000] = OP_COMPACT
    size = rng.integers(1, 4097, n_ops)
    size[rng.random(n_ops) < 0.10] = 4096
    return op, size.astype(np.int64), rng.random(n_ops)


@hot_njit  # no NRT: the loop allocates nothing, and zs_*_inline need an NRT-free caller
def replay(st, op, size, pick, live, payload, write, start, n_live):  # type: ignore[no-untyped-def]
    """Run the trace from op ``start``; returns (0 or -errno, the op it stopped at, live).

    -ENOMEM with the pool short of reserved memory means: grow it and resume at that op
    (the pool's own methods do this; a loop calling the numba layer does it itself).
    """
    for i in range(start, op.shape[0]):
        o = op[i]
        if o == OP_MALLOC or (o == OP_FREE and n_live == 0):
            h = core.zs_malloc_inline(st, size[i])
            if h < 0:
                return h, i, n_live
            if write:
                core.zs_obj_write(st, h, payload, min(size[i], core.zs_obj_capacity(st, h)))
            live[n_live] = h
            n_live += 1
        elif o == OP_FREE:
            j = int(pick[i] * n_live)
            core.zs_free_inline(st, live[j])
            n_live -= 1
            live[j] = live[n_live]
        else:
            core.zs_compact(st)
    return 0, op.shape[0], n_live


def run(n_ops: int, live_target: int, seed: int, write: bool) -> dict[str, float]:
    op, size, pick = make_trace(n_ops, live_target, seed)
    pool = Pool()
    live = np.zeros(n_ops, np.int64)
    payload = np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8)
    t0, c0 = time.perf_counter(), time.process_time()
    err, i, n_live = replay(pool.state, op, size, pick, live, payload, write, 0, 0)
    while err == -errno.ENOMEM and pool.grow():  # reserve more host memory, resume
        err, i, n_live = replay(pool.state, op, size, pick, live, payload, write, i, n_live)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if err < 0:
        raise SystemExit(f"replay failed with errno {-err}")
    host = pool.host_bytes()
    pages = pool.total_pages()
    kernel = (
        STRUCT_PAGE_BYTES * pages
        + KERNEL_ZSPAGE_BYTES * pool.nr_zspages
        + KERNEL_HANDLE_BYTES * n_live
    )
    return {
        "ops": n_ops,
        "seconds": elapsed,
        "ops_per_s": n_ops / elapsed,
        "cpu_seconds": cpu,
        "ops_per_cpu_s": n_ops / cpu,
        "live": n_live,
        "pages": pages,
        "zspages": pool.nr_zspages,
        "host_bytes": sum(host.values()),
        "host_per_obj": sum(host.values()) / max(1, n_live),
        "kernel_per_obj": kernel / max(1, n_live),
        **{f"host_{k}": v for k, v in host.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--live", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="also zs_obj_write each new object")
    ap.add_argument("--repeat", type=int, default=5, help="runs; the fastest is reported")
    args = ap.parse_args()
    run(20_000, 5_000, args.seed + 1, args.write)  # warm-up: compile (or load the cache)
    runs = [run(args.ops, args.live, args.seed, args.write) for _ in range(max(1, args.repeat))]
    r = min(runs, key=lambda x: x["seconds"])
    median = sorted(x["ops_per_s"] for x in runs)[len(runs) // 2]
    print(f"{len(runs)} runs: best {r['ops_per_s']:,.0f} ops/s, median {median:,.0f} ops/s")
    kind = "malloc+write" if args.write else "size only"
    print(
        f"numba: {HAVE_NUMBA}; {r['ops']:,} ops ({kind}) in {r['seconds']:.3f} s wall = "
        f"{r['ops_per_s']:,.0f} ops/s; {r['cpu_seconds']:.3f} s CPU = "
        f"{r['ops_per_cpu_s']:,.0f} ops per CPU-second (target >= 300,000 on one core)"
    )
    print(f"end state: {r['live']:,} live objects, {r['pages']:,} pages, {r['zspages']:,} zspages")
    detail = ", ".join(
        f"{k[5:]} {v:,}"
        for k, v in r.items()
        if k.startswith("host_") and k not in ("host_bytes", "host_per_obj")
    )
    print(f"host metadata beyond the arena: {r['host_bytes']:,} B ({detail})")
    print(
        f"  = {r['host_per_obj']:.1f} B per live object (target <= 64); kernel for the same "
        f"state: {r['kernel_per_obj']:.1f} B per object; ratio "
        f"{r['host_per_obj'] / r['kernel_per_obj']:.2f}"
    )


if __name__ == "__main__":
    main()
