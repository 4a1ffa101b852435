"""The machine-wide lock that keeps two borrowers of swap/zswap apart."""

from __future__ import annotations

import subprocess
import sys

import pytest

from zsmalloc.errors import KernelUnavailableError
from zsmalloc.live.lock import lock_path, machine_lock


def test_second_holder_waits_then_gives_up() -> None:
    name = "test-lock"
    with machine_lock(name):
        # Another process cannot take it while we hold it ...
        code = subprocess.run(
            [sys.executable, "-c",
             "from zsmalloc.live.lock import machine_lock\n"
             f"with machine_lock({name!r}, wait=0.3): pass"],
            capture_output=True, text=True, check=False,
        )
        assert code.returncode != 0 and "another zsmalloc process" in code.stderr
        # ... nor can this one (flock locks are per open file).
        with (
            pytest.raises(KernelUnavailableError, match=str(lock_path(name))),
            machine_lock(name, wait=0.3),
        ):
            pass
    with machine_lock(name, wait=0.3):  # released: free again
        pass
