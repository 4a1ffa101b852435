"""Run the RFC author's simulator over every configuration and write reference.tsv.

Usage: python make_reference.py PATH/TO/simulate_zsmalloc.c > reference.tsv

For PAGE_SIZE 4/16/64 KiB, CONFIG_ZSMALLOC_CHAIN_SIZE 1..16, the class delta of the
kernel (PAGE_SIZE >> 8) and 16 (the RFC's), and both chain rules, the simulator (with
driver.c) prints one line per physical class and four summary lines.  Each output row
here is one configuration: the sha256 of the class lines exactly as printed (newlines
included), their count, and the summary values as printed.  Needs a C compiler.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROW = re.compile(r"^ \d+ +\| ")


def run(sim: str, page: int, chain: int, delta: int, rule: int, tmp: Path) -> str:
    d = tmp / f"p{page}-c{chain}"
    exe = d / "sim"
    if not exe.exists():
        d.mkdir()
        src = sim.replace("#define PAGE_SIZE 4096\n", f"#define PAGE_SIZE {page}\n")
        chain_line = "#define CONFIG_ZSMALLOC_CHAIN_SIZE"
        src = src.replace(f"{chain_line} 8\n", f"{chain_line} {chain}\n")
        (d / "variant.c").write_text(src)
        subprocess.run(
            ["cc", "-O0", "-w", f"-I{d}", "-o", str(exe), str(HERE / "driver.c")], check=True
        )
    return subprocess.run(
        [str(exe), str(delta), str(rule)], check=True, capture_output=True, text=True
    ).stdout


def main() -> None:
    sim = Path(sys.argv[1]).read_text()
    print("page_size\tchain\tdelta\trule\trows_sha256\tnr_rows\tavg_waste\tlogical\tphysical\tspan")
    with tempfile.TemporaryDirectory() as t:
        for page in (4096, 16384, 65536):
            for chain in range(1, 17):
                for delta in sorted({max(page >> 8, 16), 16}):
                    for rule, name in ((0, "least-waste"), (1, "waste-threshold")):
                        out = run(sim, page, chain, delta, rule, Path(t))
                        rows = [ln + "\n" for ln in out.splitlines() if ROW.match(ln)]
                        summ = dict(
                            re.findall(r"^SUMMARY (.+?): (\S+)$", out, re.M)
                        )
                        digest = hashlib.sha256("".join(rows).encode()).hexdigest()
                        print(
                            f"{page}\t{chain}\t{delta}\t{name}\t{digest}\t{len(rows)}\t"
                            f"{summ['Avg Effective Waste (User Requests)']}\t"
                            f"{summ['Total Logical Classes']}\t{summ['Total Physical Classes']}\t"
                            f"{summ['Total Span (All Logicals)']}"
                        )


if __name__ == "__main__":
    main()
