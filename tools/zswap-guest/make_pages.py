"""Make the page set that puts zswap's size and same-filled rules on their edges.

    python tools/zswap-guest/make_pages.py tests/data/kernels/zswap/edge_pages.bin.gz

Pages whose lzo or lz4 output is exactly 3895..3897 and 3904/3905 bytes (z3fold's
largest buddy is 3904 bytes; with 6.1's 8-byte header 3896), 3959..3961 and
3968/3969 (zbud's largest object, 3968; with the header 3960), 4088/4089 (with the
header: a whole page), 4095..4097 (a page exactly, one byte over).  Each is a random
prefix, zeros, and a random tail, the two lengths searched for with the package's
kernel-exact compressors (a search, not a claim: the guests say what the kernel makes
of them).  Then same-filled pages: zeros, 0x01 bytes, one 8-byte word, a 4-byte pattern
(same-filled as 8-byte words too), a 16-byte pattern (not), and a page equal but its
last word (not).  Deterministic: a fixed seed.
"""

from __future__ import annotations

import gzip
import random
import struct
import sys

from zsmalloc import compress

PAGE = 4096
TARGETS = (3895, 3896, 3897, 3904, 3905, 3959, 3960, 3961, 3968, 3969, 4088, 4089, 4095,
           4096, 4097)


def size_pages(seed: int = 2017) -> list[bytes]:
    base = random.Random(seed).randbytes(PAGE)
    comps = {"lzo": compress.get("lzo"), "lz4": compress.get("lz4")}
    found: dict[tuple[str, int], bytes] = {}
    for n in range(3400, PAGE + 1, 3):
        for m in range(0, 400):
            if n + m > PAGE:
                break
            page = base[:n] + bytes(PAGE - n - m) + base[PAGE - m :]
            for name, c in comps.items():
                size = c.compressed_len(page)
                if size in TARGETS and (name, size) not in found:
                    found[(name, size)] = page
        if len(found) == 2 * len(TARGETS):
            break
    missing = [k for k in ((c, t) for c in comps for t in TARGETS) if k not in found]
    if missing:
        raise SystemExit(f"no page found for {missing}")
    return [found[(c, t)] for c in comps for t in TARGETS]


def same_pages() -> list[bytes]:
    word = struct.pack("<Q", 0x0123456789ABCDEF)
    last = bytearray(word * (PAGE // 8))
    last[-8:] = b"\xff" * 8
    return [
        bytes(PAGE),
        b"\x01" * PAGE,
        word * (PAGE // 8),
        b"\xde\xad\xbe\xef" * (PAGE // 4),
        bytes(range(16)) * (PAGE // 16),
        bytes(last),
    ]


def main() -> None:
    pages = size_pages() + same_pages()
    with open(sys.argv[1], "wb") as f:
        f.write(gzip.compress(b"".join(pages), mtime=0))
    print(f"{len(pages)} pages")


if __name__ == "__main__":
    main()
