"""``estimate --scheduler local``: 1 worker against 2, and both against one process.

Builds a corpus of real data (:func:`zsmalloc.estimate.sample.machine_mix`:
files under /usr, resident process memory, the built-in sample) as ``--files``
files in a private directory on tmpfs (mode 0700, removed at exit), then runs,
as subprocesses and alternating over ``--repeat`` rounds:

* ``zsmalloc estimate DIR --algo A --json`` (one process, numba on every core);
* ``... --scheduler local --workers 1`` and ``--workers 2`` (a LocalCluster of
  single-threaded worker processes, one numba thread each).

For each it prints the wall time of the whole command (interpreter, cluster
start-up and shutdown included) and of the pass itself (the report's
``elapsed_s``: planning, reading, compressing, merging; the compressors are
loaded before it on either side), the pages/s of the pass, the speed-up of 2
workers over 1, the overhead of each against the single process, and the CPU
seconds of the whole command with every process it started (less dependent on
the machine's load than wall time).  Every report must be the single process's (mm_stat of every
algorithm compared).  numba is warmed up once, untimed, in each mode.  The load
average is printed because the machine may be shared.

    .venv/bin/python bench/cluster.py [--mib 256] [--files 16] [--repeat 2] [--algo lz4,...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from zsmalloc.estimate.sample import machine_mix

PAGE = 4096
MODES: dict[str, list[str]] = {
    "1 process": [],
    "1 worker": ["--scheduler", "local", "--workers", "1"],
    "2 workers": ["--scheduler", "local", "--workers", "2"],
}


def build_corpus(root: Path, mib: int, nfiles: int) -> int:
    """``mib`` MiB of mixed real pages cut into ``nfiles`` files; returns the pages."""
    nr_pages = mib * 256
    pages = machine_mix(nr_pages, PAGE)
    per = -(-nr_pages // nfiles)
    for i in range(nfiles):
        (root / f"part{i:03d}.img").write_bytes(pages[i * per : (i + 1) * per].tobytes())
    return nr_pages


def run(root: Path, algo: str, extra: list[str]) -> tuple[float, float, dict[str, Any]]:
    """One ``zsmalloc estimate``: wall seconds, CPU seconds (user + system, of the
    command and every process it waited for: the workers too) and its JSON report."""
    exe = Path(sys.executable).with_name("zsmalloc")
    cmd = [str(exe), "estimate", str(root), "--algo", algo, "--json", *extra]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.read()!r}")
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, json.loads(out.read())


def mm_stats(report: dict[str, Any]) -> dict[str, Any]:
    return {a: r["mm_stat"] for a, r in report["algorithms"].items()}


def in_process_overhead(root: Path, algos: list[str], task_pages: int, repeat: int) -> None:
    """The cluster's own cost, apart from starting processes: the pass in this process
    on one compressor thread, against the same pass as tasks of a 1-worker cluster of
    threads in this process; CPU seconds of this process (less sensitive to load)."""
    import numba
    from distributed import Client, LocalCluster

    from zsmalloc.estimate.cluster import run_estimate_on_cluster
    from zsmalloc.estimate.driver import run_estimate, warm_up
    from zsmalloc.estimate.sources import open_path

    numba.set_num_threads(1)
    warm_up(algos)
    single, tasks = [], []
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as lc,
        Client(lc) as client,
    ):
        for _ in range(repeat):
            c0 = time.process_time()
            ref = run_estimate([open_path(root, PAGE)], algos)
            single.append(time.process_time() - c0)
            c0 = time.process_time()
            got = run_estimate_on_cluster(client, [str(root)], algos, task_pages=task_pages)
            tasks.append(time.process_time() - c0)
            if any((got.len_hist[a] != ref.len_hist[a]).any() for a in algos):
                raise SystemExit("in-process cluster: the tally differs from the single pass's")
    s, t = statistics.median(single), statistics.median(tasks)
    n = got.cluster["tasks"] if got.cluster else 0
    print(
        f"in-process, one compressor thread: the pass {s:.2f} CPU s, as {n} Dask tasks "
        f"{t:.2f} CPU s: overhead {100 * (t - s) / s:+.1f} % ({1000 * (t - s) / max(n, 1):.1f} "
        "ms a task)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=256, help="corpus size (MiB), default 256")
    ap.add_argument("--files", type=int, default=16, help="files it is cut into, default 16")
    ap.add_argument("--repeat", type=int, default=2, help="rounds, default 2 (median kept)")
    ap.add_argument("--algo", default="lzo-rle,lz4", help="algorithms, default lzo-rle,lz4")
    ap.add_argument(
        "--task-pages", type=int, default=4096, help="pages per task, default 4096 (16 MiB)"
    )
    args = ap.parse_args()
    for mode, extra in MODES.items():
        if extra:
            MODES[mode] = [*extra, "--task-pages", str(args.task_pages)]

    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = Path(tempfile.mkdtemp(prefix="zsmalloc-bench-", dir=base))
    try:
        os.chmod(root, 0o700)
        nr_pages = build_corpus(root, args.mib, args.files)
        print(
            f"corpus: {nr_pages} pages ({args.mib} MiB) in {args.files} files on "
            f"{base or 'the default temporary directory'}; algorithms {args.algo}; tasks of "
            f"{args.task_pages} pages; "
            f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}"
        )
        for extra in MODES.values():  # warm numba's cache in every mode, untimed
            run(root, args.algo, extra)
        walls: dict[str, list[float]] = {m: [] for m in MODES}
        passes: dict[str, list[float]] = {m: [] for m in MODES}
        cpus: dict[str, list[float]] = {m: [] for m in MODES}
        reference: dict[str, Any] | None = None
        for _ in range(args.repeat):
            for mode, extra in MODES.items():
                wall, cpu, rep = run(root, args.algo, extra)
                walls[mode].append(wall)
                cpus[mode].append(cpu)
                passes[mode].append(float(rep["input"]["elapsed_s"]))
                if reference is None:
                    reference = mm_stats(rep)
                elif mm_stats(rep) != reference:
                    raise SystemExit(f"{mode}: the report differs from the single process's")
        wall = {m: statistics.median(v) for m, v in walls.items()}
        pas = {m: statistics.median(v) for m, v in passes.items()}
        cpu = {m: statistics.median(v) for m, v in cpus.items()}
        print(
            f"{'mode':<10} {'command s':>10} {'pass s':>8} {'pages/s':>10} "
            f"{'pass vs 1 process':>18} {'CPU s':>7}"
        )
        for m in MODES:
            rate = nr_pages / pas[m] if pas[m] else float("inf")
            over = pas[m] / pas["1 process"]
            print(
                f"{m:<10} {wall[m]:>10.2f} {pas[m]:>8.2f} {rate:>10,.0f} {over:>17.2f}x "
                f"{cpu[m]:>7.1f}"
            )
        startup = (wall["2 workers"] - pas["2 workers"]) - (wall["1 process"] - pas["1 process"])
        print(
            f"2 workers over 1: {pas['1 worker'] / pas['2 workers']:.2f}x the pass, "
            f"{wall['1 worker'] / wall['2 workers']:.2f}x the command; cluster start-up and "
            f"shutdown: about {startup:.1f} s more than one process's start; "
            "every mm_stat equal: yes"
        )
        in_process_overhead(root, args.algo.split(","), args.task_pages, args.repeat)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
