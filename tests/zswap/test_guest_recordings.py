"""zswap of every kernel Debian ships, against what its kernel recorded in a QEMU guest.

Each recording (tests/data/kernels/zswap*/, made with guest-oracle's run-zswap.py and
tools/zswap-guest/record.py; tests/data/kernels/README.md) pages a known page set out
through one kernel's zswap with one zpool and compressor, and holds the debugfs files
after every step, the parameters and MemTotal.  The model of that kernel, given the
same pages, parameters and RAM, must show the same debugfs files with the same values
after every step.  The page sets: ``shared`` (1024 pages of a real mix) and ``edge``
(sizes on zbud's, z3fold's and a page's limits, and same-filled pages of every kind);
``limit`` runs fill a 1 % pool in a 160 MiB guest, so 6.1's allocators evict.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from recordings import RECORDINGS, Recording, read_recording

from zsmalloc.profile import profile_for_release
from zsmalloc.zswap.rules import zswap_rules
from zsmalloc.zswap.zswap import Zswap

UNSET_RAM_PAGES = 1 << 19  # older recordings lack MemTotal: 2 GiB guests, far from the limit

# Where the kernel's concurrency and the model's choice part (docs/zswap.md): 6.1's shrink
# work on a zsmalloc pool fails every time it runs (zsmalloc has no shrink in 6.1), and
# a store while the work is still queued queues nothing, so the kernel counts at most one
# reject_reclaim_fail per store that hit the limit; the model runs the work after each.
AT_MOST_MODEL = {("6.1-limit-zsmalloc", "reject_reclaim_fail")}


def pages_of(rec: Recording) -> list[bytes]:
    data = rec.pages()
    return [data[i : i + 4096] for i in range(0, len(data), 4096)]


def model_for(rec: Recording) -> Zswap:
    z = Zswap(
        (rec.memtotal_kb // 4) if rec.memtotal_kb else UNSET_RAM_PAGES,
        profile=profile_for_release(rec.release),
        worker="sync",
    )
    z.set_param("compressor", rec.compressor)
    if rec.zpool:
        z.set_param("zpool", rec.zpool)
    for name, value in rec.params.items():
        if name not in ("enabled", "compressor", "zpool"):
            z.set_param(name, value)
    z.set_param("enabled", "Y")
    return z


def model_view(z: Zswap) -> dict[str, int]:
    d = z.debugfs()
    return d | {
        "meminfo Zswap": d["pool_total_size"] // 1024,
        "meminfo Zswapped": d["stored_pages"] * z.page_size // 1024,
    }


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name.split(".txt")[0])
def test_model_matches_guest(path: Path) -> None:
    rec = read_recording(path)
    z = model_for(rec)
    steps = {int(t.split()[1]): t for t in rec.snapshots if t.startswith("step")}
    pages = pages_of(rec)
    checked = 0
    for off, page in enumerate(pages):
        z.store(off, page)
        tag = steps.get(off + 1) or ("after" if off + 1 == len(pages) else None)
        if tag is None:
            continue
        want, got = rec.snapshots[tag], model_view(z)
        for name, value in want.items():
            if name in ("meminfo SwapFree", "meminfo MemTotal"):
                continue  # the swap device's and the guest's, not zswap's
            if (rec.kind, name) in AT_MOST_MODEL:
                assert value <= got[name], f"{tag}: {name} kernel {value} > model {got[name]}"
            else:
                assert got[name] == value, f"{tag}: {name} kernel {value}, model {got[name]}"
            checked += 1
    assert checked >= len(zswap_rules(z.profile).debugfs)


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name.split(".txt")[0])
def test_debugfs_and_parameters_are_the_kernels(path: Path) -> None:
    """Each kernel's debugfs files and module parameters are the rules' lists."""
    rec = read_recording(path)
    rules = zswap_rules(profile_for_release(rec.release))
    files = {k for k in rec.snapshots["after"] if not k.startswith("meminfo")}
    assert files == set(rules.debugfs)
    if rec.params:  # record.py lists them
        assert sorted(rec.params) == sorted(rules.params)
        model = model_for(rec)
        assert model.params.as_sysfs(rules.params) == rec.params


def test_recordings_cover_every_zpool_debian_ships() -> None:
    """Store-only recordings for each (kernel, zpool) Debian offers, lzo and lz4."""
    have = set()
    for p in RECORDINGS:
        rec = read_recording(p)
        if "-limit" not in rec.kind:
            row = profile_for_release(rec.release).version
            have.add((row, rec.zpool or "zsmalloc", rec.compressor))
    for version in ("6.1", "6.12", "6.16", "6.17", "6.18"):
        for zpool in zswap_rules(version).pools():
            for comp in ("lzo", "lz4"):
                assert (version, zpool, comp) in have
