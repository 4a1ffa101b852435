"""``zsmalloc verify --guest PACKAGE.deb``: the model against a distribution kernel, in QEMU.

The same random zram workload as ``verify --kernel`` (:func:`~zsmalloc.live.workload.zram_ops`:
writes of real and synthetic pages, overwrites, discards, compactions, reads,
``mem_limit`` episodes, ``mem_used_max`` resets) runs first inside a guest booting the
package's kernel (:mod:`.deb`, :mod:`.initramfs`, :mod:`.qemu`), which reports mm_stat
and io_stat after every operation (:mod:`.program`).  The recorded run then stands in
for the live device in the very loop of ``verify --kernel``
(:func:`~zsmalloc.live.verify_zram.check_zram`), against a model device built as that
kernel is: the profile of its release (:func:`~zsmalloc.profile.profile_for_release`)
and the options of its ``.config`` (:meth:`~zsmalloc.zram.device.Zram.from_kernel_config`).
The first operation after which any counter differs is the divergence; after the last
one the stat files are compared as text.  Before the workload, the device's attribute
files are compared with the ones the model has for that kernel.

The compressed lengths come from the model's own compressors, so the algorithm must be
one the model compresses as that kernel does: lz4 (the default: every Debian kernel has
it), or lzo/lzo-rle where the kernel builds them (6.1).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterable
from pathlib import Path

from zsmalloc.errors import InputError, KernelUnavailableError, ZsmallocError
from zsmalloc.guest.deb import GuestKernel, cached_kernel
from zsmalloc.guest.initramfs import build_init, build_initramfs, cache_dir
from zsmalloc.guest.program import GUEST_PAGE, GuestReport, GuestStep, guest_program, parse_report
from zsmalloc.guest.qemu import boot
from zsmalloc.live.defaults import GUEST
from zsmalloc.live.result import Divergence, Progress, VerifyResult
from zsmalloc.live.verify_zram import check_zram
from zsmalloc.live.workload import Op, zram_ops
from zsmalloc.profile import profile_for_release
from zsmalloc.zram.device import Zram
from zsmalloc.zram.stats import MmStat

# The block layer's own files in /sys/block/zram0 (genhd, queue, power, ...): not zram's.
GENDISK_ATTRS = frozenset(
    (
        "alignment_offset", "bdi", "capability", "dev", "discard_alignment", "diskseq",
        "events", "events_async", "events_poll_msecs", "ext_range", "hidden", "holders",
        "inflight", "integrity", "partscan", "power", "queue", "range", "removable", "ro",
        "size", "slaves", "stat", "subsystem", "trace", "uevent",
    )
)  # fmt: skip
MISMATCH = b"\xa5" * GUEST_PAGE  # GuestZram.read_page's answer when the guest's read differed


class GuestZram:
    """A guest's recorded run behind the interface of :class:`~zsmalloc.live.zram.LiveZram`.

    Each call consumes the next recorded step and checks it is the operation asked
    for; ``mm_stat()`` and ``io_stat()`` return the rows recorded after it.
    """

    def __init__(self, report: GuestReport, name: str = "zram0") -> None:
        self.report = report
        self.name = name
        self.pos = 0
        self.step: GuestStep | None = None
        self.held: dict[int, bytes] = {}  # what the guest holds per slot (for read-back)

    def _next(self, line: str) -> GuestStep:
        steps = self.report.steps
        if self.pos >= len(steps):
            raise InputError(f"guest report: it ends before {line!r}")
        step = steps[self.pos]
        if step.line.split()[: len(line.split())] != line.split():
            raise InputError(f"guest report: step {self.pos + 1} is {step.line!r}, not {line!r}")
        self.pos += 1
        self.step = step
        return step

    def write_page(self, slot: int, data: bytes) -> None:
        step = self._next(f"w {slot}")
        if step.errno:
            raise OSError(step.errno, f"guest: write to slot {slot} refused")
        self.held[slot] = data

    def read_page(self, slot: int) -> bytes:
        step = self._next(f"r {slot}")
        if step.read_ok:
            return self.held.get(slot, bytes(GUEST_PAGE))
        return MISMATCH

    def discard(self, slot: int) -> None:
        self._next(f"d {slot}")
        self.held.pop(slot, None)

    def compact(self) -> None:
        self._next("c")

    def set_attr(self, name: str, value: str | int) -> None:
        if name == "mem_limit":
            step = self._next("l")
            if step.limit != int(value):
                raise InputError(f"guest report: mem_limit {step.limit}, the host says {value}")
        elif name == "mem_used_max":
            self._next("x")
        else:
            raise InputError(f"a guest run cannot write {name}")

    def attr(self, name: str) -> str:
        if name not in self.report.texts:
            raise InputError(f"guest report: no text of {name}")
        return self.report.texts[name]

    def mm_stat(self) -> MmStat:
        return MmStat(*(self.step.mm_stat if self.step else self.report.initial))

    def io_stat(self) -> tuple[int, ...]:
        return self.step.io_stat if self.step else (0, 0, 0, 0)


def run_guest(
    kernel: GuestKernel,
    ops: list[Op],
    algorithm: str,
    disksize: int,
    timeout: float = 1800,
    accel: str = "auto",
    kprobes: Iterable[str] = (),
    cpus: int = 1,
) -> tuple[GuestReport, float]:
    """Boot ``kernel`` with the workload; its parsed report and the seconds it took.

    A guest that cannot set the device up (an algorithm the kernel lacks) raises
    ZsmallocError; one that stops without finishing raises KernelUnavailableError with
    the console's tail.
    """
    ops_txt, pages, _ = guest_program(ops, disksize, algorithm, kprobes=kprobes)
    initrd = build_initramfs(
        build_init(), kernel.modules, [("ops.txt", ops_txt.encode()), ("pages.bin", pages)]
    )
    run = boot(kernel.vmlinuz, initrd, timeout=timeout, accel=accel, cpus=cpus)
    report = parse_report(run.report)
    if report.error:
        why = report.error
        if "comp_algorithm" in why:
            listing = report.facts.get("comp_algorithm_default", "?").strip()
            raise ZsmallocError(
                f"{kernel.release} has no {algorithm!r} compressor for zram (it offers: "
                f"{listing})",
                errno=errno.EINVAL,
            )
        raise KernelUnavailableError(f"the guest {kernel.release} failed: {why}")
    if report.status is None:
        raise KernelUnavailableError(
            f"the guest {kernel.release} stopped before the end of the workload; console:\n"
            f"{run.console[-2000:]}"
        )
    return report, run.seconds


def attribute_divergence(report: GuestReport, model: Zram) -> Divergence | None:
    """The zram attribute files of the guest's device against the model's, by name."""
    kernel = sorted(set(report.attrs) - GENDISK_ATTRS)
    mine = sorted(model.attributes())
    if kernel == mine:
        return None
    only_k = sorted(set(kernel) - set(mine))
    only_m = sorted(set(mine) - set(kernel))
    return Divergence(
        "before the workload",
        "zram attributes",
        (),
        (),
        (),
        detail=f"only the kernel has {only_k or 'none'}; only the model has {only_m or 'none'}",
    )


def verify_guest(
    packages: Iterable[str | Path],
    algorithm: str = GUEST["algorithm"],
    n_ops: int = GUEST["n_ops"],
    seed: int = GUEST["seed"],
    nr_pages: int = GUEST["nr_pages"],
    save: str | Path | None = None,
    progress: Progress | None = None,
    timeout: float = 1800,
    accel: str = "auto",
    files: list[Path] | None = None,
) -> VerifyResult:
    """Boot the package's kernel, run the workload there, replay it against the model.

    ``files`` are where file pages come from (default: files under /usr, as
    ``verify --kernel``; ``[]``: synthetic pages only, the same on every machine).
    Raises KernelUnavailableError without QEMU or a C compiler, InputError for a file
    that is not a kernel package (or lacks the parts of a split one).
    """
    t0 = time.perf_counter()
    if progress is not None:
        progress("reading the kernel package", 0, None)
    kernel = cached_kernel(packages, cache_dir())
    ops = list(zram_ops(n_ops, seed, nr_pages, files))
    if progress is not None:
        progress(f"booting {kernel.release} (QEMU)", 0, None)
    report, seconds = run_guest(kernel, ops, algorithm, nr_pages * GUEST_PAGE, timeout, accel)
    result = check_report(report, kernel.config, ops, algorithm, nr_pages, seed, save, progress)
    result.device = f"{kernel.release} in QEMU ({seconds:.1f} s)"
    result.seconds = time.perf_counter() - t0
    return result


def check_report(
    report: GuestReport,
    config: str,
    ops: list[Op],
    algorithm: str,
    nr_pages: int,
    seed: int,
    save: str | Path | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """Replay a guest's report of ``ops`` against the model of its kernel.

    ``config`` is the kernel's ``.config`` text (the model's build options); the profile
    comes from the release the guest reported.
    """
    profile = profile_for_release(report.release)
    model = (
        Zram.from_kernel_config(config, profile, name="model")
        if config
        else Zram(name="model", profile=profile)
    )
    model.set_comp_algorithm(algorithm)
    model.set_disksize(nr_pages * GUEST_PAGE)
    result = VerifyResult("guest", algorithm, nr_pages, seed=seed, ops_planned=len(ops))
    result.device = report.release
    result.notes = (f"model: Linux {profile.describe()}",)
    result.divergence = attribute_divergence(report, model)
    if result.divergence is None:
        check_zram(GuestZram(report), model, ops, result, report.release, save, progress)
    return result
