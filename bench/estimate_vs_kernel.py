"""``zsmalloc estimate`` against the kernel writing the same image into zram.

Builds an image of mixed real data (files under /usr, resident process memory,
the built-in sample; :func:`zsmalloc.estimate.sample.machine_mix`) in a private
tmpfs file (mode 0600, removed at exit), then, per algorithm and alternating in
the same run:

* kernel: ``dd if=IMAGE of=/dev/zramN bs=1M oflag=direct`` into a hot-added
  zram device (:class:`~zsmalloc.live.zram.LiveZram`), timed;
* estimate: ``zsmalloc estimate IMAGE --algo A --json`` as a subprocess, timed
  wall-clock (interpreter start included; numba is warmed up once, untimed,
  and the package's bytecode compiled, as an installed package would have
  them), with its peak RSS (its own VmHWM).

Prints the throughput ratio estimate/kernel (target >= 1.0), the CPU seconds
each side used (dd's include the kernel's compression; the estimate's all its
threads: a measure that does not depend on the load), the peak RSS
against ``mem_used_total + 64 B/page + 300 MiB``, and whether every mm_stat
column agreed.  Needs root and zram.  The load average is printed because the
machine may be shared.

    sudo .venv/bin/python bench/estimate_vs_kernel.py [--mib 1024] [--repeat 3] [--algo lz4,...]
    sudo .venv/bin/python bench/estimate_vs_kernel.py --image IMG   # e.g. the issue's image:
    python3 ../shared/tools/mkimage.py /dev/shm/mk1g.img 262144      # 1 GiB, as judged
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from zsmalloc.cli.live import render_divergence
from zsmalloc.estimate.sample import machine_mix
from zsmalloc.live.result import Divergence, compare_rows
from zsmalloc.live.zram import LiveZram, zram_unavailable_reason
from zsmalloc.zram.stats import MmStat

PAGE = 4096


def timed(cmd: list[str], stdout: Any = None) -> tuple[float, float]:
    """Run ``cmd``: (wall seconds, CPU seconds, user + system, kernel work included)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{cmd[0]} failed with status {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime


def run_kernel(image: Path, algo: str, nr_pages: int) -> tuple[float, float, MmStat]:
    """dd of the image into a fresh device: wall and CPU seconds; the device's mm_stat."""
    with LiveZram(algorithm=algo, disksize=nr_pages * PAGE) as z:
        z.close()  # dd opens the device itself
        wall, cpu = timed(
            ["dd", f"if={image}", f"of={z.path}", "bs=1M", "oflag=direct", "status=none"]
        )
        return wall, cpu, z.mm_stat()


def run_estimate(image: Path, algo: str) -> tuple[float, float, int, dict[str, Any]]:
    """``zsmalloc estimate``: wall and CPU seconds, peak RSS (its own VmHWM), JSON report."""
    exe = Path(sys.executable).with_name("zsmalloc")
    with tempfile.TemporaryFile() as out:
        wall, cpu = timed([str(exe), "estimate", str(image), "--algo", algo, "--json"], out)
        out.seek(0)
        report = json.loads(out.read())
    # Not ru_maxrss: a vfork-spawned child inherits this process's peak (the image).
    return wall, cpu, int(report["input"]["peak_rss_bytes"]), report


def compile_bytecode() -> None:
    """Write the package's .pyc files, as ``pip install`` does for a wheel.

    Under PYTHONDONTWRITEBYTECODE (or a read-only checkout) an editable install never
    gets them, and every ``zsmalloc estimate`` would compile some thirty modules from
    source first: about 0.05 s that an installed package does not spend.
    """
    import compileall

    import zsmalloc

    compileall.compile_dir(Path(zsmalloc.__file__).parent, quiet=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=1024, help="image size (MiB), default 1024")
    ap.add_argument("--image", type=Path, help="an existing image instead of a built one")
    ap.add_argument("--repeat", type=int, default=3, help="alternating rounds per algorithm")
    ap.add_argument("--algo", default="lzo,lzo-rle,lz4")
    args = ap.parse_args()
    reason = zram_unavailable_reason()
    if reason:
        raise SystemExit(f"needs a live zram device: {reason}")
    t0 = time.perf_counter()
    compile_bytecode()
    given = args.image is not None
    if given:
        image = args.image
        nr_pages = image.stat().st_size // PAGE
        args.mib = nr_pages // 256
        with open(image, "rb") as src:
            head = src.read(256 * PAGE)
    else:
        nr_pages = args.mib * 256
        image_pages = machine_mix(nr_pages)
        fd, name = tempfile.mkstemp(prefix="zsmalloc-bench-", suffix=".img", dir="/dev/shm")
        image = Path(name)
        with os.fdopen(fd, "wb") as f:  # mkstemp: mode 0600
            f.write(image_pages.data)
        head = image_pages[:256].tobytes()
        del image_pages
    warm = image
    try:
        fd, wname = tempfile.mkstemp(prefix="zsmalloc-bench-warm-", suffix=".img", dir="/dev/shm")
        warm = Path(wname)
        with os.fdopen(fd, "wb") as f:
            f.write(head)
        print(
            f"image: {image if given else 'mixed real data'}, {args.mib} MiB ({nr_pages} pages)"
            f", ready in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()}; "
            f"{os.cpu_count()} CPUs"
        )
        print(
            f"{'algo':8} {'kernel MB/s':>12} {'estimate MB/s':>14} {'ratio':>6} "
            f"{'CPU s k/e':>11} {'est. RSS':>10} {'RSS budget':>11} {'mm_stat':>8}"
        )
        for algo in args.algo.split(","):
            run_estimate(warm, algo)  # numba compiles (or loads its cache) once, untimed
            kt, et, kc, ec, rss = [], [], [], [], []
            div: Divergence | None = None
            for _ in range(args.repeat):
                wall, cpu, mm = run_kernel(image, algo, nr_pages)
                kt.append(wall)
                kc.append(cpu)
                wall, cpu, peak, rep = run_estimate(image, algo)
                et.append(wall)
                ec.append(cpu)
                rss.append(peak)
                got = MmStat(**rep["algorithms"][algo]["mm_stat"])
                div = div or compare_rows(f"{algo}, {args.mib} MiB", "mm_stat", mm, got)
            mb = nr_pages * PAGE / 1e6
            k, e = statistics.median(kt), statistics.median(et)
            budget = mm.mem_used_total + 64 * nr_pages + (300 << 20)
            cpu_s = f"{statistics.median(kc):.1f}/{statistics.median(ec):.1f}"
            print(
                f"{algo:8} {mb / k:12.0f} {mb / e:14.0f} {k / e:6.2f} {cpu_s:>11} "
                f"{max(rss) / 2**20:6.0f} MiB {budget / 2**20:7.0f} MiB "
                f"{'equal' if div is None else 'DIFFER':>8}"
            )
            if div is not None:
                print("  " + render_divergence(div))
        print(f"load average after: {os.getloadavg()}")
    finally:
        if not given:
            image.unlink(missing_ok=True)
        if warm != image:
            warm.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
