"""Record the kernel's compressed lengths for 16 and 64 KiB pages, from the kernel's
own code built in user space (build.sh): tests/data/kernels/userspace-*.

No Debian kernel runs lzo on 16 KiB pages or anything on 64 KiB pages, so these
lengths come from lib/lzo, lib/lz4 and lib/zlib_deflate of a kernel tree compiled
for x86-64 (their output does not depend on PAGE_SIZE beyond the input length; the
4 KiB and 16 KiB guest traces agree with this library page for page, which
record.py checks before writing anything).

    python tools/kernel-lib/record.py build/libkernel-lib.so tests/data

writes ``kernels/userspace-bigpages.bin.gz`` (synthetic 64 KiB pages: repeats beyond
16 KiB, lzo-rle's ambiguous 261..264-byte matches, long zero runs) and
``kernels/userspace-sizes.tsv.gz`` (one line per page and page set, one column per
compressor configuration: the compressed length, before zram's huge rule).
"""

from __future__ import annotations

import ctypes
import gzip
import sys
from pathlib import Path

import numpy as np

COLUMNS = {
    "lzo": ("lzo", 0),
    "lzo-rle": ("lzo", 1),
    "lz4": ("lz4", 1),
    "lz4-a3": ("lz4", 3),
    "lz4hc-l1": ("lz4hc", 1),
    "lz4hc-l9": ("lz4hc", 9),
    "lz4hc-l16": ("lz4hc", 16),
    "deflate-l0": ("deflate", (0, -11)),
    "deflate-l1": ("deflate", (1, -11)),
    "deflate-l6": ("deflate", (6, -11)),
    "deflate-l9": ("deflate", (9, -11)),
    "deflate-l6-wb-15": ("deflate", (6, -15)),
    "deflate-l6-wb15": ("deflate", (6, 15)),
}


def synthetic_pages(shared: np.ndarray) -> np.ndarray:
    """64 KiB pages that reach what 4 and 16 KiB pages cannot."""
    rng = np.random.default_rng(64)
    text = shared[:16].reshape(-1)  # the first recorded pages are text
    pages = []
    # 1. text repeating every 20000 bytes: lzo M4 matches (offsets > 16 KiB)
    pages.append(np.resize(text[:20000], 65536))
    # 2. text, then the same text 40000 bytes later, zeros between: M4 and zero runs
    p = np.zeros(65536, np.uint8)
    p[:9000] = text[:9000]
    p[40000:49000] = text[:9000]
    pages.append(p)
    # 3, 4. random bytes with a copy 0x803f back of 262 / 264 bytes: lzo-rle cuts such
    # an M4 to 260 (it would read as a zero run)
    for length in (262, 264):
        p = rng.integers(0, 256, 65536, dtype=np.uint8)
        p[1000 + 0x803F : 1000 + 0x803F + length] = p[1000 : 1000 + length]
        pages.append(p)
    # 5. text interleaved with zero runs of every length up to 3000
    p = np.zeros(65536, np.uint8)
    pos = 0
    while pos < 65536:
        n = int(rng.integers(1, 3000))
        pos += n
        k = int(rng.integers(4, 400))
        start = int(rng.integers(0, text.size - k))
        p[pos : pos + k] = text[start : start + k][: max(0, 65536 - pos)]
        pos += k
    pages.append(p)
    # 6. the recorded ELF and heap pages, 16 of them as one page
    pages.append(shared[200:216].reshape(-1))
    return np.stack(pages)


def main() -> None:
    lib = ctypes.CDLL(sys.argv[1])
    data = Path(sys.argv[2])
    buf = ctypes.create_string_buffer(1 << 18)

    def length(page: np.ndarray, what: str, arg: object) -> int:
        b = page.tobytes()
        if what == "lzo":
            n = lib.k_lzo(b, ctypes.c_size_t(len(b)), buf, arg)
        elif what == "lz4":
            n = lib.k_lz4(b, len(b), buf, arg)
        elif what == "lz4hc":
            n = lib.k_lz4hc(b, len(b), buf, arg)
        else:
            level, winbits = arg  # type: ignore[misc]
            n = lib.k_deflate(b, len(b), buf, level, winbits)
        if n <= 0:
            raise SystemExit(f"{what} {arg}: error {n}")
        return int(n)

    shared = np.frombuffer(gzip.decompress((data / "shared_pages.bin.gz").read_bytes()), np.uint8)
    shared4k = shared.reshape(-1, 4096)
    # the library must agree with the guest: arm64 16 KiB lz4 and deflate traces
    for name, col in (("lz4", "lz4"), ("deflate", "deflate-l6")):
        rows = gzip.decompress(
            (data / f"kernels/arm64-16k-6.12-shared16k-{name}.trace.gz").read_bytes()
        ).decode()
        stored = [int(x.split()[2]) for x in rows.splitlines() if x.startswith("w ")]
        mine = [length(p, *COLUMNS[col]) for p in shared.reshape(-1, 16384)]
        mine = [m for m in mine if m < 14553]
        assert sorted(s for s in stored if s < 16384) == sorted(mine), name
    big = synthetic_pages(shared4k)
    (data / "kernels/userspace-bigpages.bin.gz").write_bytes(
        gzip.compress(big.tobytes(), 9, mtime=0)
    )
    lines = [
        "# compressed lengths from the kernel's lib/ code built in user space "
        "(tools/kernel-lib); columns: compressor-level[-winbits]",
        "\t".join(["set", "page_size", "page", *COLUMNS]),
    ]
    sets = {
        "shared16k": shared.reshape(-1, 16384),
        "shared64k": shared.reshape(-1, 65536),
        "bigpages64k": big,
    }
    for name, pages in sets.items():
        for i, p in enumerate(pages):
            cells = [str(length(p, *COLUMNS[c])) for c in COLUMNS]
            lines.append("\t".join([name, str(p.size), str(i), *cells]))
    (data / "kernels/userspace-sizes.tsv.gz").write_bytes(
        gzip.compress(("\n".join(lines) + "\n").encode(), 9, mtime=0)
    )


if __name__ == "__main__":
    main()
