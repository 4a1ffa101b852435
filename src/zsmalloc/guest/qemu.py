"""Boot a kernel with an initramfs in QEMU and collect what /init printed.

``qemu-system-x86_64`` runs the guest with one CPU and 2 GiB, no display, no disk:
the first serial port is the console (kept for error reports), the second carries the
program's report (:mod:`zsmalloc.guest.program`).  /init powers the machine off when
done, and ``-no-reboot`` turns a panic's reboot into an exit too.

KVM is used when ``/dev/kvm`` can run a stock kernel; a host whose ``/dev/kvm`` comes
from kvm-pvm (nested, page-table based) only runs PVM-aware guests, and Debian's
kernels hang there right after the real-mode setup, so such hosts (and hosts without
``/dev/kvm``) use TCG, QEMU's emulator: a few seconds per thousand operations.  Results
do not depend on the accelerator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from zsmalloc.errors import KernelUnavailableError

QEMU = "qemu-system-x86_64"
APPEND = "console=ttyS0 panic=-1 loglevel=4 rdinit=/init mitigations=off"


@dataclass
class GuestRun:
    """The output of one boot."""

    report: str  # what /init wrote on the second serial port
    console: str  # the kernel's console (first serial port)
    seconds: float
    accel: str


def qemu_unavailable_reason() -> str | None:
    """Why no guest can be booted here, or None."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found (apt-get install qemu-system-x86)"
    return None


def pick_accel(choice: str = "auto") -> str:
    """"kvm" where /dev/kvm can run stock kernels, else "tcg" (see the module docstring)."""
    if choice != "auto":
        return choice
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or os.path.isdir("/sys/module/kvm_pvm"):
        return "tcg"
    return "kvm"


def boot(
    vmlinuz: bytes, initrd: bytes, timeout: float = 1800, accel: str = "auto", cpus: int = 1
) -> GuestRun:
    """Boot, wait for the power-off, return both serial outputs.

    Raises KernelUnavailableError without QEMU, and when the guest does not finish in
    ``timeout`` seconds (with the console's tail).
    """
    reason = qemu_unavailable_reason()
    if reason:
        raise KernelUnavailableError(reason)
    accel = pick_accel(accel)
    with tempfile.TemporaryDirectory(prefix="zsmalloc-guest-") as tmp:
        d = Path(tmp)
        (d / "vmlinuz").write_bytes(vmlinuz)
        (d / "initrd").write_bytes(initrd)
        console, report = d / "console.log", d / "report.txt"
        cmd = [QEMU, *(["-enable-kvm"] if accel == "kvm" else ["-accel", "tcg"])]
        cmd += ["-smp", str(cpus), "-m", "2G", "-nographic", "-no-reboot", "-monitor", "none"]
        cmd += ["-serial", f"file:{console}", "-serial", f"file:{report}"]
        cmd += ["-kernel", str(d / "vmlinuz"), "-initrd", str(d / "initrd"), "-append", APPEND]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            tail = _read(console)[-2000:]
            raise KernelUnavailableError(
                f"the guest did not finish in {timeout:.0f} s; console:\n{tail}"
            ) from None
        seconds = time.perf_counter() - t0
        out = GuestRun(_read(report), _read(console), seconds, accel)
        if proc.returncode != 0 and not out.report:
            raise KernelUnavailableError(
                f"{QEMU} exited with {proc.returncode}: "
                f"{proc.stderr.decode(errors='replace').strip()[-1000:]}"
            )
        return out


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace").replace("\r", "")
    except OSError:
        return ""
