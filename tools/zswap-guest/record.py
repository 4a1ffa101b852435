"""Record zswap in a guest: page a known page set out through a Debian kernel's zswap.

    python tools/zswap-guest/record.py --kernel 6.1 --pages PAGES.bin[.gz] \\
        --zpool zbud --compressor lzo [--param max_pool_percent=1] [--mem 256] \\
        [--step 64] [--module z3fold.ko] --out OUT.txt

The guest (a kernel prepared by guest-oracle's build.sh under
``$KVM_ORACLE_DIR/kernels``, default ``~/.cache/guest-oracle``) swaps onto its zram0,
sets zswap's compressor, zpool (where the kernel has the parameter) and any ``--param``,
enables zswap, fills the pages into anonymous memory and pages them all out in address
order with MADV_PAGEOUT (``--step K``: K pages a call, the counters after each call).
OUT.txt holds zswap's debugfs files before and after (and after each step), the Zswap,
SwapFree and MemTotal lines of /proc/meminfo, every zswap parameter, and zram0's
mm_stat (the pages zswap did not take go there).  Runs under TCG are deterministic.

Modules the base initramfs lacks (z3fold.ko on Debian 6.1) come from ``--module``:
unpack the linux-image deb with ``dpkg-deb -x``.  ``zswaprun`` is built here once
(``cc -static -O2``).  This is guest-oracle's ``run-zswap.py`` with parameters, guest
memory, steps and MemTotal added; its output format is a superset of that tool's.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

from zsmalloc.guest.initramfs import Cpio  # noqa: E402  (the package's newc writer)

BASE = Path(os.environ.get("KVM_ORACLE_DIR", Path.home() / ".cache" / "guest-oracle"))


def find_kernel(version: str) -> Path:
    kdir = BASE / "kernels"
    names = sorted(p.name for p in kdir.iterdir()) if kdir.is_dir() else []
    hits = [n for n in names if n == version or re.match(re.escape(version) + r"($|[^0-9])", n)]
    if len(hits) != 1:
        sys.exit(f"record.py: want one kernel matching {version!r} in {kdir}, found {hits}")
    return kdir / hits[0]


def build_zswaprun() -> bytes:
    binary = BASE / "bin" / "zswaprun-tools"
    src = HERE / "zswaprun.c"
    if not binary.exists() or binary.stat().st_mtime < src.stat().st_mtime:
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cc", "-static", "-O2", "-o", str(binary), str(src)], check=True)
    return binary.read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--pages", required=True)
    ap.add_argument("--zpool", default="")
    ap.add_argument("--compressor", required=True)
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--mem", type=int, default=2048, help="guest RAM in MiB")
    ap.add_argument("--step", type=int, default=0)
    ap.add_argument("--module", action="append", default=[])
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=int, default=900)
    a = ap.parse_args()
    kdir = find_kernel(a.kernel)
    raw = Path(a.pages).read_bytes()
    data = gzip.decompress(raw) if a.pages.endswith(".gz") else raw
    params = "".join(f"{p.split('=', 1)[0]} {p.split('=', 1)[1]}\n" for p in a.param)
    cpio = Cpio()
    cpio.add("init", (HERE / "init.sh").read_bytes(), 0o755)
    cpio.add("bin/zswaprun", build_zswaprun(), 0o755)
    for name, blob in (
        ("pages.bin", data),
        ("zpool", a.zpool.encode()),
        ("comp", a.compressor.encode()),
        ("n", str(len(data) // 4096).encode()),
        ("step", str(a.step).encode() if a.step else b""),
        ("params", params.encode()),
    ):
        cpio.add(f"data/{name}", blob)
    for m in a.module:
        cpio.add(f"lib/modules/{os.path.basename(m)}", Path(m).read_bytes())
    out = Path(a.out)
    initrd, console = out.with_suffix(".initrd"), out.with_suffix(".console")
    # The base archive first, ours after it: our /init wins.
    initrd.write_bytes((kdir / "initramfs.cpio.gz").read_bytes() + gzip.compress(cpio.finish()))
    for p in (console, out):
        p.unlink(missing_ok=True)
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-smp", "1", "-m", f"{a.mem}M", "-nographic",
           "-no-reboot", "-monitor", "none", "-serial", f"file:{console}", "-serial",
           f"file:{out}", "-kernel", str(kdir / "vmlinuz"), "-initrd", str(initrd),
           "-append", "console=ttyS0 panic=-1 loglevel=4 rdinit=/init mitigations=off"]
    subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=a.timeout)
    initrd.unlink()
    text = out.read_text(errors="replace").replace("\r", "") if out.exists() else ""
    out.write_text(text)
    if "# end" not in text:
        sys.exit(f"record.py: guest run failed; see {console}")
    print(text.rsplit("# after", 1)[1].split("# end", 1)[0].strip())


if __name__ == "__main__":
    main()
