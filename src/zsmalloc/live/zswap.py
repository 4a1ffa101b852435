"""The running kernel's zswap, borrowed for a live check and always given back.

A live check pushes known pages through the kernel's zswap and reads its
debugfs counters (``/sys/kernel/debug/zswap``, spec §10).  That needs machine
state this package must not leave behind: a swap file, zswap enabled, a memory
cgroup.  :class:`LiveZswap` is a context manager that sets all of it up and, on
exit -- normal, exception or Ctrl-C -- kills its workload process, swaps off and
deletes its swap file, writes back every zswap parameter it found
(``enabled``, ``compressor``, ``max_pool_percent``, ``accept_threshold_percent``,
``shrinker_enabled``), removes its cgroup and unmounts debugfs if it mounted it.

How pages reach zswap.  A child Python process ("the holder") maps anonymous
memory with ``MADV_NOHUGEPAGE`` (so every folio is one page), reads the pages
from a pipe into it (contents never touch the disk), then calls
``madvise(MADV_PAGEOUT)``: reclaim of exactly those pages, each going
swap_writeout -> zero map (all-zero pages, spec §1) or ``zswap_store``.  The
holder runs pinned to one CPU so the per-CPU LRU batches are drained by the
madvise itself, and repeats the madvise until its mapping has no resident page.
It runs inside a memory cgroup of our own (cgroup v2 when the memory controller
is there, otherwise the v1 memory hierarchy, as on the reference machine), so
any memory pressure stays local.  ``MADV_PAGEOUT`` is used rather than a low
memory limit because a limit also swaps out the holder's own interpreter heap,
whose contents are unknown; a limit is still set, as a backstop.

Store-only workloads need no writeback, so the shrinker is switched off
(``shrinker_enabled=N``) and ``max_pool_percent`` is left high enough that the
pool limit is never hit: the counters then depend only on the pages.

Everything here needs root; without it (or without zswap, debugfs or a memory
cgroup) :func:`zswap_unavailable_reason` says why and :class:`LiveZswap` raises
:class:`~zsmalloc.errors.KernelUnavailableError`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

from zsmalloc.errors import (
    InvalidSizeError,
    InvariantError,
    KernelUnavailableError,
    SysfsError,
    ZsmallocError,
)
from zsmalloc.kparse import param_get_bool
from zsmalloc.live.lock import machine_lock
from zsmalloc.profile import DEFAULT_PROFILE
from zsmalloc.zswap.stats import DEBUGFS_FILES

PAGE = DEFAULT_PROFILE.page_size  # the model's PAGE_SIZE, which the live kernel must share

ZSWAP_PARAMS = Path("/sys/module/zswap/parameters")
DEBUGFS = Path("/sys/kernel/debug")
ZSWAP_DEBUGFS = DEBUGFS / "zswap"
CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
PAGE_CLUSTER = Path("/proc/sys/vm/page-cluster")
PROC_MEMINFO = Path("/proc/meminfo")
PROC_VMSTAT = Path("/proc/vmstat")
SWAPOUT_EVENTS = ("pswpout", "zswpout", "swpout_zero")  # every way a page leaves for swap
SAVED_PARAMS = (
    "enabled",
    "compressor",
    "max_pool_percent",
    "accept_threshold_percent",
    "shrinker_enabled",
)
MADV_PAGEOUT = 21  # include/uapi/asm-generic/mman-common.h; Python 3.11 lacks the name

# The holder: reads NR pages from stdin into a private anonymous mapping, pages
# them out, reports "ok <resident pages left>", then waits for stdin to close.
# It is a string because it runs in a child interpreter; it imports nothing big.
_HOLDER = r"""
import mmap, os, sys, time
nr = int(sys.argv[1])
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
m = mmap.mmap(-1, nr * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.madvise(mmap.MADV_NOHUGEPAGE)
view = memoryview(m)
got = 0
inp = sys.stdin.buffer
while got < nr * 4096:
    n = inp.readinto(view[got:])
    if not n:
        sys.exit("holder: short input")
    got += n
del view
import ctypes
addr = ctypes.c_void_p.from_buffer(m)
base = ctypes.addressof(addr)
def resident():
    # Rss of our mapping in smaps: pages still mapped.  (mincore would also count
    # refused pages sitting unmapped in the swap cache after their disk write.)
    found = False
    for line in open("/proc/self/smaps"):
        if line.startswith(f"{base:x}-"):
            found = True
        elif found and line.startswith("Rss:"):
            return int(line.split()[1]) // 4
    return nr
left = nr
for _ in range(20):
    m.madvise(int(sys.argv[2]))
    left = resident()
    if left == 0:
        break
    time.sleep(0.05)  # let per-CPU LRU batches and in-flight I/O settle, then retry
del addr
sys.stdout.write(f"ok {left}\n")
sys.stdout.flush()
# Then commands, one a line, answered at ".": "d I" drops page I (MADV_DONTNEED:
# its swap slot is freed), "t I" reads a byte of page I (a swap-in).
for line in sys.stdin:
    op, arg = (line.split() + ["0"])[:2]
    if op == "d":
        m.madvise(mmap.MADV_DONTNEED, int(arg) * 4096, 4096)
    elif op == "t":
        m[int(arg) * 4096]
    elif op == ".":
        sys.stdout.write(f"done {resident()}\n")
        sys.stdout.flush()
"""


def zswap_unavailable_reason() -> str | None:
    """Why a live zswap check cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "not root: enabling zswap and swap needs root"
    if not ZSWAP_PARAMS.is_dir():
        return "no /sys/module/zswap/parameters: this kernel has no zswap"
    if _memory_cgroup_root() is None:
        return "no memory cgroup controller (neither cgroup v2 nor the v1 memory hierarchy)"
    if not DEBUGFS.is_dir():
        return "no /sys/kernel/debug directory to mount debugfs on"
    if os.sysconf("SC_PAGE_SIZE") != PAGE:
        return f"this kernel's page size is {os.sysconf('SC_PAGE_SIZE')}, the model's {PAGE}"
    return None


def _memory_cgroup_root() -> tuple[Path, int] | None:
    """(mount point, cgroup version) of a hierarchy with the memory controller."""
    controllers = CGROUP_V2 / "cgroup.controllers"
    if controllers.exists() and "memory" in controllers.read_text().split():
        return CGROUP_V2, 2
    if (CGROUP_V1_MEMORY / "memory.limit_in_bytes").exists():
        return CGROUP_V1_MEMORY, 1
    return None


def read_param(name: str) -> str:
    return (ZSWAP_PARAMS / name).read_text().strip()


def write_param(name: str, value: str) -> None:
    """Write a zswap module parameter; a refusal becomes SysfsError with the errno."""
    try:
        (ZSWAP_PARAMS / name).write_text(value)
    except OSError as exc:
        raise SysfsError(
            f"zswap parameter {name} <- {value!r}: {os.strerror(exc.errno or 0)}",
            errno=exc.errno,
        ) from None


def read_debugfs() -> dict[str, int]:
    """Every 6.18 debugfs counter present (spec §10), as integers."""
    out = {}
    for name in DEBUGFS_FILES:
        path = ZSWAP_DEBUGFS / name
        if path.exists():
            out[name] = int(path.read_text())
    return out


def totalram_pages() -> int:
    """MemTotal / 4 KiB: the kernel's totalram_pages() (spec §6)."""
    for line in PROC_MEMINFO.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024 // PAGE
    raise KernelUnavailableError(f"no MemTotal in {PROC_MEMINFO}")


def vmstat_all() -> dict[str, int]:
    """/proc/vmstat as a dict; the swap events read 0 where this kernel lacks them."""
    out: dict[str, int] = {}
    for line in PROC_VMSTAT.read_text().splitlines():
        key, _, value = line.partition(" ")
        out[key] = int(value)
    for e in (*SWAPOUT_EVENTS, "zswpin"):
        out.setdefault(e, 0)
    return out


def crypto_compressors() -> set[str]:
    """acomp/scomp algorithm names in /proc/crypto (what zswap's compressor can be)."""
    names, name = set(), ""
    for line in Path("/proc/crypto").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "name":
            name = value.strip()
        elif key.strip() == "type" and value.strip() in ("scomp", "acomp"):
            names.add(name)
    return names


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _syscall_path(fn_name: str, path: Path, *args: int) -> None:
    fn = getattr(_libc(), fn_name)
    if fn(os.fsencode(path), *args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{fn_name}({path}): {os.strerror(err)}")


def _run(cmd: list[str]) -> None:
    """Run a command; a nonzero exit raises CalledProcessError with its stderr."""
    subprocess.run(cmd, check=True, capture_output=True)


def swap_header(nr_pages: int) -> bytes:
    """Page 0 of a swap area of ``nr_pages`` pages, as mkswap writes it.

    Layout (include/linux/swap.h, union swap_header): at byte 1024 version=1,
    last_page, nr_badpages=0, a uuid; "SWAPSPACE2" in the last 10 bytes of page 0.
    """
    header = bytearray(PAGE)
    header[1024:1036] = (1).to_bytes(4, "little") + (nr_pages - 1).to_bytes(4, "little") + bytes(4)
    header[1036:1052] = uuid.uuid4().bytes
    header[PAGE - 10 :] = b"SWAPSPACE2"
    return bytes(header)


def make_swap_file(path: Path, size: int) -> None:
    """Write a swap file: its header (:func:`swap_header`), then zeros.

    The file is written, not fallocated, so it has no holes (swapon refuses holes).
    """
    nr_pages = size // PAGE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, swap_header(nr_pages))
        chunk = bytes(256 * PAGE)
        left = (nr_pages - 1) * PAGE
        while left:
            left -= os.write(fd, chunk[: min(left, len(chunk))])
        os.fsync(fd)
    finally:
        os.close(fd)


class LiveZswap:
    """zswap enabled on a swap file of our own, with a cgroup for the holder.

    >>> with LiveZswap(compressor="lzo") as z:            # doctest: +SKIP
    ...     z.hold(pages)          # pages -> MADV_PAGEOUT -> zswap_store
    ...     z.counters()
    """

    def __init__(
        self,
        compressor: str = "lzo",
        swap_size: int = 256 << 20,
        swap_dir: Path = Path("/var/tmp"),
        max_pool_percent: int | None = None,
        accept_threshold_percent: int | None = None,
        shrinker_enabled: bool = False,
        memory_limit: int = 512 << 20,
    ) -> None:
        self.compressor = compressor
        self.swap_size = swap_size
        self.swap_path = swap_dir / f"zsmalloc-zswap-{os.getpid()}.swap"
        self.max_pool_percent = max_pool_percent
        self.accept_threshold_percent = accept_threshold_percent
        self.shrinker_enabled = shrinker_enabled
        self.memory_limit = memory_limit
        self.saved: dict[str, str] = {}
        self.saved_page_cluster: str | None = None
        self._old_handlers: dict[int, Any] = {}  # signal number -> its previous handler
        self.cgroup: Path | None = None
        self.cgroup_version = 0
        self._swap_on = False
        self._swap_made = False
        self._mounted_debugfs = False
        self._holders: list[subprocess.Popen[bytes]] = []
        self._lock: AbstractContextManager[None] | None = None
        self.undo_errors: list[str] = []

    # -- lifecycle ---------------------------------------------------------------
    def __enter__(self) -> LiveZswap:
        reason = zswap_unavailable_reason()
        if reason:
            raise KernelUnavailableError(reason)
        # zswap and swap are global: one borrower at a time (released in restore()).
        self._lock = machine_lock("swap")
        self._lock.__enter__()
        self._catch_termination()
        self.saved = {name: read_param(name) for name in SAVED_PARAMS}
        self.saved_page_cluster = PAGE_CLUSTER.read_text().strip()
        try:
            self._setup()
        except ZsmallocError:  # said clearly already (an unknown compressor, ...)
            self.restore()
            raise
        except (OSError, subprocess.CalledProcessError) as exc:
            # The machine refused (disk full, mkdir, swapon, mount): not ours to fix.
            self.restore()
            detail = (
                exc.stderr.decode().strip()
                if isinstance(exc, subprocess.CalledProcessError)
                else ""
            )
            raise KernelUnavailableError(
                f"cannot set up a live zswap: {exc} {detail}".strip()
            ) from exc
        except BaseException:
            self.restore()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()

    def _setup(self) -> None:
        if self.compressor not in crypto_compressors():
            raise SysfsError(
                f"zswap compressor {self.compressor!r}: the running kernel's crypto API does not "
                f"have it (has: {', '.join(sorted(crypto_compressors()))}; see /proc/crypto)",
                errno=errno.ENOENT,
            )
        if not ZSWAP_DEBUGFS.parent.joinpath("zswap").exists() and not os.path.ismount(DEBUGFS):
            _run(["mount", "-t", "debugfs", "none", str(DEBUGFS)])
            self._mounted_debugfs = True
        make_swap_file(self.swap_path, self.swap_size)
        self._swap_made = True
        _syscall_path("swapon", self.swap_path, 0)
        self._swap_on = True
        found = _memory_cgroup_root()
        if found is None:  # checked by zswap_unavailable_reason(); gone since?
            raise KernelUnavailableError("the memory cgroup controller went away")
        root, self.cgroup_version = found
        self.cgroup = root / f"zsmalloc-zswap-{os.getpid()}"
        self.cgroup.mkdir()
        limit_file = "memory.max" if self.cgroup_version == 2 else "memory.limit_in_bytes"
        (self.cgroup / limit_file).write_text(str(self.memory_limit))
        # Order matters: the compressor is only a string until the first enable,
        # which then creates the pool with it (spec §2).
        # No swap readahead: a swap-in then loads exactly the page touched.
        PAGE_CLUSTER.write_text("0")
        write_param("shrinker_enabled", param_get_bool(self.shrinker_enabled))
        if self.max_pool_percent is not None:
            write_param("max_pool_percent", str(self.max_pool_percent))
        if self.accept_threshold_percent is not None:
            write_param("accept_threshold_percent", str(self.accept_threshold_percent))
        write_param("compressor", self.compressor)
        write_param("enabled", "Y")
        if not ZSWAP_DEBUGFS.is_dir():
            raise KernelUnavailableError("zswap enabled but /sys/kernel/debug/zswap is missing")

    def _catch_termination(self) -> None:
        """SIGTERM/SIGHUP would kill us without running ``restore``: make them raise."""
        if threading.current_thread() is not threading.main_thread():
            return

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, interrupt)

    def restore(self) -> None:
        """Give everything back, every step tried whatever the others did.

        What the machine refuses (an OSError, a failed ``umount``, a refused
        parameter) is kept in ``undo_errors`` and never raised.  An exception
        of any other kind is a bug here: it is recorded too, and raised once
        every other step has run.
        """
        bugs: list[BaseException] = []
        try:
            self._restore(bugs)
        finally:
            if self._lock is not None:
                self._lock.__exit__(None, None, None)
                self._lock = None
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
            self._old_handlers.clear()
        if bugs:
            raise bugs[0]

    def _restore(self, bugs: list[BaseException]) -> None:
        def attempt(what: str, fn: Callable[..., object], *args: object) -> None:
            try:
                fn(*args)
            except (OSError, subprocess.SubprocessError, ZsmallocError) as exc:
                self.undo_errors.append(f"{what}: {exc}")
            except Exception as exc:  # a bug: carry on restoring, raise it at the end
                self.undo_errors.append(f"{what}: {type(exc).__name__}: {exc}")
                bugs.append(exc)

        for proc in self._holders:
            attempt("kill holder", self._kill, proc)
        self._holders.clear()
        if self._swap_on:
            # swapoff loads every stored entry back (zswap_load), so zswap ends empty.
            attempt("swapoff", _syscall_path, "swapoff", self.swap_path)
            self._swap_on = False
        for name in SAVED_PARAMS:
            if name in self.saved and name != "enabled":
                attempt(f"restore {name}", self._restore_param, name)
        if "enabled" in self.saved:
            attempt("restore enabled", self._restore_param, "enabled")
        if self.saved_page_cluster is not None:
            attempt("restore vm.page-cluster", PAGE_CLUSTER.write_text, self.saved_page_cluster)
            self.saved_page_cluster = None
        if self._swap_made:
            attempt("remove swap file", self.swap_path.unlink)
            self._swap_made = False
        if self.cgroup is not None:
            attempt("remove cgroup", self._remove_cgroup, self.cgroup)
            self.cgroup = None
        if self._mounted_debugfs:
            attempt("umount debugfs", _run, ["umount", str(DEBUGFS)])
            self._mounted_debugfs = False

    def _restore_param(self, name: str) -> None:
        if read_param(name) != self.saved[name]:
            write_param(name, self.saved[name])

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    @staticmethod
    def _remove_cgroup(path: Path) -> None:
        # A killed task may take a moment to leave; rmdir fails with EBUSY until then.
        for _ in range(100):
            try:
                path.rmdir()
                return
            except OSError:
                time.sleep(0.05)
        path.rmdir()

    # -- use -----------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        return read_debugfs()

    def hold(self, pages: bytes | memoryview) -> int:
        """Start a holder with these pages, page them out; return pages left resident.

        The holder keeps its (swapped) pages until this context exits, so the
        stored entries stay in zswap.  Call it once per workload.
        """
        if len(pages) % PAGE:
            raise InvalidSizeError(f"expected whole {PAGE}-byte pages, found {len(pages)} bytes")
        if self.cgroup is None:
            raise KernelUnavailableError("LiveZswap is not set up: use it in `with`")
        procs = self.cgroup / "cgroup.procs"

        def join_cgroup() -> None:  # in the child, between fork and exec
            procs.write_text(str(os.getpid()))

        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _HOLDER, str(len(pages) // PAGE), str(MADV_PAGEOUT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=join_cgroup,
        )
        self._holders.append(proc)
        return self._ask(proc, bytes(pages), "ok")

    def command(self, ops: list[tuple[str, int]]) -> int:
        """Run ``("d", i)`` (drop page i: slot freed) / ``("t", i)`` (touch: swap-in) in
        the last holder, in order; returns its pages still mapped afterwards."""
        if not self._holders:
            raise KernelUnavailableError("no holder process: call hold() first")
        text = "".join(f"{op} {i}\n" for op, i in ops) + ".\n"
        return self._ask(self._holders[-1], text.encode(), "done")

    @staticmethod
    def _ask(proc: subprocess.Popen[bytes], data: bytes, answer: str) -> int:
        """Send ``data`` to a holder; its reply ``ANSWER N`` gives N (pages still resident)."""
        if proc.stdin is None or proc.stdout is None:  # Popen(stdin=PIPE, stdout=PIPE)
            raise InvariantError("the page holder was started without its pipes")
        proc.stdin.write(data)
        proc.stdin.flush()
        line = proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != answer:
            raise KernelUnavailableError(f"the page holder failed (exit {proc.wait()})")
        return int(line[1])
