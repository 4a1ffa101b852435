"""``zsmalloc record``: zsmalloc's calls on this machine, through tracefs kprobe events.

:func:`record_unavailable_reason` says in one line why a machine cannot record (not
root; a kernel without kprobe events, CONFIG_KPROBES/CONFIG_KPROBE_EVENTS unset, as on
this project's development host; tracefs not mounted; zsmalloc not loaded).

:class:`Recorder` defines the events of :mod:`zsmalloc.zs.record` in ``kprobe_events``
and enables them in a tracefs instance of its own (``instances/zsmalloc_rec``: its own
ring buffer, so whatever else traces on the machine is left alone), with the global
trace clock (so events of different CPUs merge in time order) and a large buffer
that does not overwrite (a full buffer drops events and counts them).  It reads the
instance's ``trace_pipe`` and writes a zs trace as the events come (bounded memory:
the live objects' IDs and nothing else).  At the end it drains the buffer, reads
``kprobe_profile`` (kretprobe misses) and each CPU's buffer stats (overruns, dropped
events) and writes the trace's ``# incomplete``/``# end`` lines; then it disables and
removes everything it made.

Events of different CPUs are merged by ``trace_pipe`` as they are read: calls on one
pool from several CPUs at the same moment may come out of the order they took the
pool's locks (counted as ``overlaps`` in the ``# end`` line; see
:mod:`zsmalloc.zs.record`).  Verified in QEMU guests only (``zsmalloc verify --guest PKG
--record``, :mod:`zsmalloc.guest.record`), which share the event definitions and the
converter but read the ring buffer once at the end.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import re
import select
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from zsmalloc.errors import KernelUnavailableError, ZsmallocError
from zsmalloc.zs.record import (
    GROUP,
    OPTIONAL_EVENTS,
    KprobeConverter,
    RecordCounts,
    chain_size_from_config,
    event_definitions,
    event_name,
    lost_events,
    trace_header,
)
from zsmalloc.zs.trace import ZsTraceWriter

TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
INSTANCE = GROUP
BUFFER_KB_TOTAL = 256 << 10
"""Ring buffers of all CPUs together (KiB) while recording, by default: a burst this
large waits to be read.  Split between the CPUs, 4..64 MiB each."""


def default_buffer_kb() -> int:
    """The ring buffer per CPU (KiB): :data:`BUFFER_KB_TOTAL` split between the CPUs."""
    cpus = os.cpu_count() or 1
    return max(4096, min(65536, BUFFER_KB_TOTAL // cpus))


def kernel_config() -> str:
    """This kernel's ``.config`` (/proc/config.gz or /boot/config-RELEASE), "" if neither."""
    with contextlib.suppress(OSError, EOFError):
        return gzip.decompress(Path("/proc/config.gz").read_bytes()).decode("utf-8", "replace")
    with contextlib.suppress(OSError):
        return Path(f"/boot/config-{os.uname().release}").read_text("utf-8", "replace")
    return ""


def find_tracefs() -> Path | None:
    """A mounted tracefs with kprobe events, or None."""
    for d in TRACEFS_DIRS:
        if Path(d, "kprobe_events").exists():
            return Path(d)
    return None


def record_unavailable_reason(tracefs: Path | None = None) -> str | None:
    """Why this machine cannot record zsmalloc's calls (one line), or None.

    ``tracefs``: record through this directory instead of the machine's tracefs (it
    must hold ``kprobe_events``; nothing else about the machine is asked then).
    """
    if tracefs is not None:
        if not (tracefs / "kprobe_events").exists():
            return f"{tracefs} has no kprobe_events: not a tracefs with kprobe events"
        return None
    release = os.uname().release
    config = kernel_config()
    for option in ("CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS"):
        if re.search(rf"^# {option} is not set$", config, re.MULTILINE):
            return (f"this kernel ({release}) has no kprobe events ({option} is not set): "
                    "record on a kernel that has them (Debian's do), or check the "
                    "recorder in a guest: zsmalloc verify --guest PKG --record")
    if os.geteuid() != 0:
        return "zsmalloc record needs root (it writes tracefs kprobe_events)"
    root = find_tracefs()
    if root is None:
        if not any(Path(d).is_dir() for d in TRACEFS_DIRS):
            return f"this kernel ({release}) has no tracefs (CONFIG_TRACING is not set)"
        return ("tracefs is not mounted, or this kernel has no kprobe events: no "
                "kprobe_events under /sys/kernel/tracing (mount -t tracefs nodev "
                "/sys/kernel/tracing)")
    syms = ""
    with contextlib.suppress(OSError):
        syms = Path("/proc/kallsyms").read_text("utf-8", "replace")
    if not re.search(r" zs_malloc(\s|$)", syms, re.MULTILINE):
        return ("zsmalloc is not loaded: no zs_malloc in /proc/kallsyms (set up a zram "
                "device or zswap first)")
    return None


class Recorder:
    """One recording: tracefs set up on :meth:`start`, torn down on :meth:`stop`."""

    def __init__(
        self,
        out: IO[str],
        pool: str | None = None,
        buffer_kb: int | None = None,
        tracefs: Path | None = None,
    ) -> None:
        reason = record_unavailable_reason(tracefs)
        if reason:
            raise KernelUnavailableError(reason)
        root = tracefs or find_tracefs()
        assert root is not None  # record_unavailable_reason() found it
        self.root: Path = root
        self.inst = self.root / "instances" / INSTANCE
        self.buffer_kb = buffer_kb or default_buffer_kb()
        release = os.uname().release
        header = trace_header(release, os.sysconf("SC_PAGE_SIZE"),
                              chain_size_from_config(kernel_config()), "kprobe")
        self.writer = ZsTraceWriter(out, header)
        self.conv = KprobeConverter(self.writer, pool_filter=pool)
        self.defined: list[str] = []
        self.skipped: list[str] = []  # optional definitions this kernel refused
        self._carry = ""

    def _write(self, path: Path, text: str, append: bool = False) -> None:
        try:
            with open(path, "a" if append else "w") as f:
                f.write(text)
        except OSError as exc:
            raise ZsmallocError(f"tracefs: cannot write {text.strip()!r} to {path}: "
                                f"{exc.strerror}", errno=exc.errno or errno.EIO) from None

    def start(self) -> None:
        """Define the events, make the instance, enable, start tracing."""
        self._remove_events()  # a previous run's, killed before it cleaned up
        for d in event_definitions():
            try:
                self._write(self.root / "kprobe_events", d + "\n", append=True)
            except ZsmallocError:
                if event_name(d) in OPTIONAL_EVENTS:  # inlined in this kernel: not needed
                    self.skipped.append(d)
                    continue
                raise
            self.defined.append(d.split()[0].split(":", 1)[1])
        with contextlib.suppress(FileExistsError):
            self.inst.mkdir()
        self._write(self.inst / "tracing_on", "0")
        self._write(self.inst / "buffer_size_kb", str(self.buffer_kb))
        self._write(self.inst / "trace_clock", "global")
        self._write(self.inst / "options" / "overwrite", "0")
        self._write(self.inst / "trace", "")  # empty the buffer
        self._write(self.inst / "events" / GROUP / "enable", "1")
        self._write(self.inst / "tracing_on", "1")

    def pump(self, fd: int, wait: float) -> int:
        """Read what trace_pipe has (waiting up to ``wait`` seconds); lines converted."""
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            return 0
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            return 0
        text = self._carry + data.decode("utf-8", "replace")
        lines = text.split("\n")
        self._carry = lines.pop()
        self.conv.feed(lines)
        return len(lines)

    def run(self, duration: float | None, stop: Callable[[], bool] = lambda: False) -> None:
        """Record until ``duration`` seconds have passed or ``stop()`` says so."""
        fd = os.open(self.inst / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        try:
            t_end = None if duration is None else time.monotonic() + duration
            while not stop() and (t_end is None or time.monotonic() < t_end):
                self.pump(fd, 0.2)
                self.writer.flush()
            self._write(self.inst / "tracing_on", "0")
            while self.pump(fd, 0.0):  # drain
                pass
        finally:
            os.close(fd)
        if self._carry:
            self.conv.feed([self._carry])

    def stop(self) -> RecordCounts:
        """Check for lost events, finish the trace, remove the instance and events."""
        profile = (self.root / "kprobe_profile").read_text("utf-8", "replace")
        stats = []
        per_cpu = self.inst / "per_cpu"
        for cpu in sorted(per_cpu.glob("cpu*"), key=lambda p: int(p.name[3:] or 0)):
            with contextlib.suppress(OSError):
                stats.append((cpu / "stats").read_text("utf-8", "replace"))
        self.conv.finish(lost_events(profile, stats))
        self.teardown()
        return self.conv.counts

    def teardown(self) -> None:
        with contextlib.suppress(ZsmallocError, OSError):
            self._write(self.inst / "events" / GROUP / "enable", "0")
        with contextlib.suppress(OSError):
            self.inst.rmdir()
        self._remove_events()

    def _remove_events(self) -> None:
        for d in event_definitions():
            name = d.split()[0].split(":", 1)[1]
            with contextlib.suppress(ZsmallocError):
                self._write(self.root / "kprobe_events", f"-:{name}\n", append=True)
