"""``verify --guest`` end to end: boot Debian kernel packages in QEMU and check the model.

Skips without ``qemu-system-x86_64``, a C compiler with a static libc, or kernel packages.
The packages are the ``linux-image-*.deb`` files named in ``$ZSMALLOC_GUEST_DEBS``
(space-separated), else those in ``~/.cache/guest-oracle/debs`` (where the guest-oracle
tools and ``apt-get download`` leave them; the parts of split packages beside them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from zsmalloc.errors import InputError
from zsmalloc.guest.deb import companion_packages
from zsmalloc.guest.qemu import qemu_unavailable_reason
from zsmalloc.guest.verify import verify_guest

DEFAULT_DIR = Path.home() / ".cache" / "guest-oracle" / "debs"


def _packages() -> list[Path]:
    if os.environ.get("ZSMALLOC_GUEST_DEBS"):
        return [Path(p) for p in os.environ["ZSMALLOC_GUEST_DEBS"].split()]
    found = sorted(DEFAULT_DIR.glob("linux-image-*-amd64_*.deb")) if DEFAULT_DIR.is_dir() else []
    usable = []
    for deb in found:  # a split package whose parts were not downloaded cannot boot
        try:
            companion_packages(deb)
        except InputError:
            continue
        usable.append(deb)
    return usable


PACKAGES = _packages()


def _skip_reason() -> str | None:
    if not PACKAGES:
        return f"no kernel packages ($ZSMALLOC_GUEST_DEBS, {DEFAULT_DIR})"
    if not (shutil.which("cc") or shutil.which("gcc")):
        return "no C compiler for the guest's /init"
    return qemu_unavailable_reason()


@pytest.mark.guest
@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name.split("_")[0])
def test_guest_matches_the_model(package: Path, tmp_path: Path) -> None:
    trace = tmp_path / "guest.trace"
    result = verify_guest([package], n_ops=300, seed=5, nr_pages=64, files=[], save=trace)
    assert result.ok, result.divergence
    assert result.ops_done == 300 and result.events["failed_stores"] > 0

    from zsmalloc.zram.replay import replay
    from zsmalloc.zram.trace import read_trace

    assert replay(read_trace(trace)).ok  # the saved run replays under its header's kernel
