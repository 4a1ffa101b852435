"""How many pages each compressor gets exactly right, against every recording of them.

    python tools/guest_match.py [--json]

Three kinds of ground truth, all in tests/data:

* the guest fill traces (tests/data/kernels/*-shared*.trace.gz, arm64-16k-*): a Debian
  kernel in QEMU stored each page of a known page file once; the size it stored per
  page and its last mm_stat line;
* shared_pages.tsv: the stored size of every page under lzo, lzo-rle and lz4 on this
  host's 6.18 kernel;
* kernels/userspace-sizes.tsv.gz: the lengths the kernel's own lib/ code (lzo, lz4,
  lz4hc, zlib_deflate of Debian's linux-source-7.2, built in user space by
  tools/kernel-lib) gives for 16 and 64 KiB pages where no guest recorded them.

For each: the pages whose stored size (or length) equals the recorded one, the pages
compared, and for traces whether the estimate's mm_stat equals the kernel's last line.
zstd is compared only where its kernel's zstd version is installed (see
zsmalloc.compress.zstd); otherwise the row says which library ran instead and is not
counted as a match.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from guest_traces import (  # noqa: E402
    estimate_fill,
    fill_trace_paths,
    load_pages,
    read_fill_trace,
    userspace_config,
)
from zsmalloc import compress  # noqa: E402

DATA = ROOT / "tests" / "data"


def trace_rows() -> list[dict[str, object]]:
    rows = []
    for path in fill_trace_paths(DATA):
        t = read_fill_trace(path)
        pages = load_pages(DATA, t)
        tally, rep, ours = estimate_fill(t, pages)
        r = rep.algos[t.algo]
        backend = tally.backend(t.algo).describe()
        rows.append(
            {
                "source": "guest trace",
                "name": t.name,
                "kernel": t.release,
                "page_size": t.page_size,
                "algo": t.algo,
                "level": t.level,
                "winbits": t.winbits,
                "pages": int(t.stored.size),
                "equal": int((ours == t.stored).sum()),
                "mm_stat_equal": list(r.mm_stat) == t.final_mm_stat,
                "kernel_exact": r.kernel_exact,
                "library": backend.get("zstd_library"),
            }
        )
    return rows


def tsv_rows() -> list[dict[str, object]]:
    rows = []
    lines = (DATA / "shared_pages.tsv").read_text().splitlines()
    body = [ln.split("\t") for ln in lines if not ln.startswith("#")]
    head, data = body[0], np.array(body[1:], dtype=np.int64)
    raw = gzip.decompress((DATA / "shared_pages.bin.gz").read_bytes())
    pages = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 4096)
    for col, algo in enumerate(head[1:], start=1):
        got = compress.get(algo, kernel="6.18").stored_sizes(pages)
        rows.append(
            {
                "source": "shared_pages.tsv (host 6.18)",
                "name": algo,
                "kernel": "6.18.44",
                "page_size": 4096,
                "algo": algo,
                "level": None,
                "winbits": None,
                "pages": int(data.shape[0]),
                "equal": int((got == data[:, col]).sum()),
                "mm_stat_equal": None,
                "kernel_exact": True,
                "library": None,
            }
        )
    return rows


def userspace_rows() -> list[dict[str, object]]:
    rows = []
    text = gzip.decompress((DATA / "kernels/userspace-sizes.tsv.gz").read_bytes()).decode()
    lines = text.splitlines()
    columns = lines[1].split("\t")[3:]
    recs = [ln.split("\t") for ln in lines[2:]]
    shared_raw = gzip.decompress((DATA / "shared_pages.bin.gz").read_bytes())
    big = gzip.decompress((DATA / "kernels/userspace-bigpages.bin.gz").read_bytes())
    for name in dict.fromkeys(r[0] for r in recs):
        mine = [r for r in recs if r[0] == name]
        ps = int(mine[0][1])
        raw = big if name == "bigpages64k" else shared_raw
        pages = np.frombuffer(raw, np.uint8).reshape(-1, ps)
        for k, col in enumerate(columns):
            algo, level, winbits = userspace_config(col)
            b = compress.get(algo, level, kernel="7.2", page_size=ps, winbits=winbits)
            want = np.array([int(r[3 + k]) for r in mine])
            got = b.compress_lengths(pages)
            rows.append(
                {
                    "source": "kernel lib/ in user space",
                    "name": f"{name} {col}",
                    "kernel": "7.2 lib/",
                    "page_size": ps,
                    "algo": algo,
                    "level": level,
                    "winbits": winbits,
                    "pages": int(want.size),
                    "equal": int((got == want).sum()),
                    "mm_stat_equal": None,
                    "kernel_exact": True,
                    "library": None,
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = tsv_rows() + userspace_rows() + trace_rows()
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        return
    print("| source | recording | kernel | page | algo | level | winbits | equal/pages | mm_stat |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        eq = f"{r['equal']}/{r['pages']}"
        if not r["kernel_exact"]:
            eq += f" (zstd {r['library']}: approximate)"
        mm = {None: "", True: "equal", False: "DIFFERS"}[r["mm_stat_equal"]]  # type: ignore[index]
        print(
            f"| {r['source']} | {r['name']} | {r['kernel']} | {r['page_size']} | {r['algo']} "
            f"| {'' if r['level'] is None else r['level']} "
            f"| {'' if r['winbits'] is None else r['winbits']} | {eq} | {mm} |"
        )


if __name__ == "__main__":
    main()
