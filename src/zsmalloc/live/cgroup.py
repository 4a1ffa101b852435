"""A memory cgroup of our own: processes started in it, its memory pushed out to swap.

Reclaim is how real memory reaches swap; a memory cgroup is how a check makes
it happen to its own process only, without pressing on the machine.  Both
hierarchies are handled, since a machine has one or the other:

======================  ======================================  =========================
                        cgroup v2 (``/sys/fs/cgroup``)          cgroup v1 (``.../memory``)
======================  ======================================  =========================
usage                   ``memory.current``                      ``memory.usage_in_bytes``
limit                   ``memory.max``                          ``memory.limit_in_bytes``
reclaim everything      ``memory.reclaim`` (repeated)           ``memory.force_empty``
======================  ======================================  =========================

:meth:`MemoryCgroup.swap_out` lowers the limit step by step (v1; on v2 a
``memory.max`` below what can be reclaimed would call the OOM killer, so v2
reclaims the same steps through ``memory.reclaim`` with the limit held at the
usage), then sweeps what is left: ``memory.force_empty`` on v1 (reclaim until
the usage is zero or 16 passes free nothing: mem_cgroup_force_empty() in
mm/memcontrol-v1.c), ``memory.reclaim`` until it refuses on v2.  A sweep
activates the pages referenced since reclaim last saw them and frees nothing
of them (shrink_folio_list(): a second chance), so sweeps repeat until two in
a row free nothing, each after the cgroup's statistics are made current
(:meth:`MemoryCgroup.flush_stats`).  Anonymous pages can only leave through swap, so swap must be on
first.

Without root or without a memory controller :func:`memory_cgroup_root` is None
and the checks skip with that reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from zsmalloc.errors import KernelUnavailableError

CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
SWAP_OUT_STEPS = 8  # limit steps before the final sweep, as pressure builds in real life
RECLAIM_PASSES = 16  # v2: memory.reclaim writes in a sweep (v1's force_empty retries)
SWEEPS = 8  # sweeps over everything, repeated while they free memory


def memory_cgroup_root() -> tuple[Path, int] | None:
    """(mount point, cgroup version) of a hierarchy with the memory controller, or None."""
    controllers = CGROUP_V2 / "cgroup.controllers"
    if controllers.exists() and "memory" in controllers.read_text().split():
        return CGROUP_V2, 2
    if (CGROUP_V1_MEMORY / "memory.limit_in_bytes").exists():
        return CGROUP_V1_MEMORY, 1
    return None


class MemoryCgroup:
    """A child cgroup of the memory hierarchy, made on enter and removed on exit."""

    def __init__(self, name: str) -> None:
        found = memory_cgroup_root()
        if found is None:
            raise KernelUnavailableError(
                "no memory cgroup controller (neither cgroup v2 nor the v1 memory hierarchy)"
            )
        root, self.version = found
        self.path = root / name

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> MemoryCgroup:
        self.path.mkdir()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def remove(self) -> None:
        """rmdir, retried while killed tasks leave (EBUSY); raises OSError if it stays."""
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)
        self.path.rmdir()

    def joiner(self) -> Callable[[], None]:
        """A ``preexec_fn`` that moves the child into this cgroup before it runs anything,
        so every page it ever touches is charged here."""
        procs = self.path / "cgroup.procs"

        def join() -> None:
            procs.write_text(str(os.getpid()))

        return join

    # -- files -----------------------------------------------------------------------
    def _file(self, v2: str, v1: str) -> Path:
        return self.path / (v2 if self.version == 2 else v1)

    def usage(self) -> int:
        """Bytes charged to the cgroup now."""
        return int(self._file("memory.current", "memory.usage_in_bytes").read_text())

    def set_limit(self, nbytes: int | None) -> bool:
        """Set the hard limit (None: none); False if the kernel could not reclaim down to it."""
        f = self._file("memory.max", "memory.limit_in_bytes")
        value = ("max" if self.version == 2 else "-1") if nbytes is None else str(nbytes)
        try:
            f.write_text(value)
        except OSError as exc:
            if exc.errno in (errno.EBUSY, errno.EAGAIN):
                return False
            raise
        return True

    def reclaim(self, nbytes: int) -> bool:
        """v2 ``memory.reclaim``: False when the kernel reclaimed less than asked (EAGAIN)."""
        try:
            (self.path / "memory.reclaim").write_text(str(nbytes))
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return False
            raise
        return True

    def swap_out(self, steps: int = SWAP_OUT_STEPS) -> None:
        """Push everything reclaim can take out of the cgroup's memory (see the module doc).

        Pages referenced since reclaim last looked (any access: a read through
        /proc/PID/mem too) are given a second chance: the first sweep moves them to
        the active list and frees nothing, so sweeps repeat while they free memory.
        """
        usage = self.usage()
        if self.version == 1:
            for k in range(steps, 0, -1):
                self.flush_stats()
                self.set_limit(usage * k // (steps + 1))
        else:
            self.set_limit(usage)  # no growth meanwhile; never below: that would OOM-kill
            for _ in range(steps):
                self.flush_stats()
                self.reclaim(max(1, usage // (steps + 1)))
        idle = 0
        for _ in range(SWEEPS):
            self.flush_stats()
            before = self.usage()
            if self.version == 1:
                (self.path / "memory.force_empty").write_text("0")
            else:
                for _ in range(RECLAIM_PASSES):
                    if not self.reclaim(max(self.usage(), 1 << 20)):
                        break
            idle = idle + 1 if self.usage() >= before else 0
            if idle == 2:  # the second chance is spent: nothing more will go
                break

    def flush_stats(self) -> None:
        """Make the kernel's per-cgroup LRU sizes current, by reading memory.stat.

        Reclaim decides whether to move active pages to the inactive list from
        these sizes (inactive_is_low() in mm/vmscan.c), but they are per-CPU
        counts summed lazily (every 2 s, or after enough updates); reading
        memory.stat sums them (mem_cgroup_flush_stats()).  Without it, right after
        a sweep activated every referenced page, reclaim can still see a full
        inactive list, skip the active one and free nothing.
        """
        self.stat()

    def swap_usage(self) -> int:
        """Bytes of swap the cgroup's pages take (zero-map entries included)."""
        if self.version == 2:
            return int((self.path / "memory.swap.current").read_text())
        return self.stat().get("swap", 0)

    def stat(self) -> dict[str, int]:
        """memory.stat as a dict (both versions)."""
        out: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in (self.path / "memory.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                with contextlib.suppress(ValueError):
                    out[key] = int(value)
        return out
