"""The zswap guest recordings of tests/data/kernels/zswap*: which there are, and a reader.

Shared by the tests that replay them through the model (test_guest_recordings.py) and
through the estimate (test_estimate_kernels.py); the format is tools/zswap-guest's.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
RECORDINGS = sorted((DATA / "kernels" / "zswap").glob("*.txt.gz")) + sorted(
    (DATA / "kernels" / "zswap-6.1").glob("*.txt")
)
PAGE_SETS = {
    "shared": DATA / "shared_pages.bin.gz",
    "edge": DATA / "kernels" / "zswap" / "edge_pages.bin.gz",
    "limit": DATA / "shared_pages.bin.gz",
    "shuffled": DATA / "shared_pages.bin.gz",  # in SHUFFLED_ORDER
}
# The ``shuffled`` set: the shared pages in another order (a permutation, one page index a
# line), so zbud and z3fold pair other pages: the order they pack in is checked too.
SHUFFLED_ORDER = DATA / "kernels" / "zswap" / "shuffled_order.gz"


def page_set_bytes(name: str) -> bytes:
    """The raw pages of a page set, in the order its recordings swapped them out."""
    data = gzip.decompress(PAGE_SETS[name].read_bytes())
    if name != "shuffled":
        return data
    order = [int(x) for x in gzip.decompress(SHUFFLED_ORDER.read_bytes()).split()]
    assert sorted(order) == list(range(len(data) // 4096))
    return b"".join(data[i * 4096 : (i + 1) * 4096] for i in order)


@dataclass
class Recording:
    path: Path
    release: str
    zpool: str
    compressor: str
    params: dict[str, str]
    memtotal_kb: int | None
    snapshots: dict[str, dict[str, int]] = field(default_factory=dict)  # "step N"/"after"

    @property
    def stem(self) -> str:
        return self.path.name.split(".txt")[0]

    @property
    def kind(self) -> str:
        """``VERSION-SET-ZPOOL`` (zswap-6.1/ names its files without the version)."""
        parts = self.stem.split("-")
        if parts[0] in PAGE_SETS:
            parts.insert(0, self.path.parent.name.removeprefix("zswap-"))
        return "-".join(parts[:3])

    @property
    def page_set(self) -> str:
        return self.kind.split("-")[1]

    def pages(self) -> bytes:
        return page_set_bytes(self.page_set)


def read_recording(path: Path) -> Recording:
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode()
    head = re.search(r"^# guest (\S+) zpool=(\S*) compressor=(\S+)", text, re.M)
    assert head, f"{path.name}: no '# guest' line"
    mem = re.search(r"MemTotal:\s+(\d+) kB", text)
    rec = Recording(
        path,
        head.group(1),
        head.group(2),
        head.group(3),
        dict(re.findall(r"^# param (\S+) (.*)$", text, re.M)),
        int(mem.group(1)) if mem else None,
    )
    parts = re.split(r"^# (before|after|step \d+)\n", text, flags=re.M)
    for tag, body in zip(parts[1::2], parts[2::2], strict=True):
        values = {k: int(v) for k, v in re.findall(r"^(\w+) (\d+)$", body, re.M)}
        meminfo = re.findall(r"^meminfo (\w+):\s+(\d+)", body, re.M)
        values |= {f"meminfo {k}": int(v) for k, v in meminfo}
        rec.snapshots[tag] = values
    return rec
