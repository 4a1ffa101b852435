"""A real process of our own, with a known mix of memory, for the swap-out checks.

``zsmalloc estimate --pid`` is checked against what the kernel really swaps
out of a process (:mod:`zsmalloc.live.verify_swap`).  The process must be a
real one -- an interpreter with its heap, its libraries' copy-on-write pages,
its stacks -- and hold every kind of memory that swap treats differently, in
proportions like a real program's.  The child runs :data:`SCRIPT`, which builds
about ``MIB`` MiB of:

==============================  ===========================================================
Python objects                  dicts of str -> float, lists of str, ints: the obmalloc and
                                malloc heaps
numpy arrays                    random floats (poorly compressible), rounded prices, int
                                ranges, repeated 8-byte patterns (same-filled pages), arrays
                                with zero-filled pages inside; arrays of 4 MiB and more are
                                THPs (numpy asks MADV_HUGEPAGE), smaller ones are not
zero-filled memory              written zeros: all-zero THPs and single zero pages (the swap
                                zero map)
library data                    bytes of files under /usr/lib, incompressible ones included
                                (zram huge pages), and the copy-on-write pages of every
                                library the interpreter loaded
written private file mapping    a file mapped MAP_PRIVATE and partly written: anonymous
                                pages inside a file mapping
shared memory                   MAP_SHARED anonymous memory (shmem)
the shared zero page            untouched memory only read: nothing to swap
mlocked memory                  never swapped
MADV_FREE'd memory              discarded by reclaim, not swapped
==============================  ===========================================================

It pins itself to one CPU, so that ``madvise(MADV_COLD)`` on a page of its own
drains its per-CPU LRU batches (the MADV_FREE'd pages must have left them to be
seen as such), prints ``ready <resident kB>`` and waits for its stdin to close.
The seed fixes the content; addresses (ASLR) and the interpreter's own
bookkeeping vary from run to run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from types import TracebackType

from zsmalloc.errors import KernelUnavailableError

SCRIPT = r"""
import ctypes, mmap, os, random, sys, tempfile
import numpy as np

mib, seed = int(sys.argv[1]), int(sys.argv[2])
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
PAGE = mmap.PAGESIZE
MiB = 1 << 20
rng = np.random.default_rng(seed)
rnd = random.Random(seed)
keep = []

def share(x):
    return max(1, int(mib * x)) * MiB

# Python objects: about 30 %.
words = [bytes(rng.integers(97, 123, rnd.randint(3, 12))).decode() for _ in range(5000)]
target = share(0.30)
n = target // 300
d = {f"{rnd.choice(words)}-{i}": rnd.random() * 1000 for i in range(n // 2)}
keep.append(d)
keep.append([" ".join(rnd.choice(words) for _ in range(rnd.randint(4, 20))) for _ in range(n // 2)])
keep.append(list(range(n)))

# numpy arrays: about 35 %, in pieces of 1 to 16 MiB (THPs from 4 MiB up).
left = share(0.35)
kinds = ("random", "prices", "range", "pattern", "holes")
while left > 0:
    size = min(left, rnd.choice((1, 2, 3, 6, 8, 16)) * MiB)
    kind = rnd.choice(kinds)
    count = size // 8
    if kind == "random":
        a = rng.random(count)
    elif kind == "prices":
        a = np.round(rng.random(count) * 100, 2)
    elif kind == "range":
        a = np.arange(count, dtype=np.int64) * 3
    elif kind == "pattern":
        a = np.full(count, rng.integers(1, 2**63), dtype=np.int64)
    else:  # zero-filled pages among data pages
        a = rng.random(count)
        pages = a.reshape(-1, PAGE // 8)
        pages[rng.random(len(pages)) < 0.4] = 0.0
    keep.append(a)
    left -= size

# Zero-filled memory, written: about 10 % (all-zero THPs and single pages).
z = np.empty(share(0.06) // 8)
z[:] = 0.0
keep.append(z)
small = [bytearray(PAGE * rnd.randint(1, 8)) for _ in range(share(0.04) // (5 * PAGE))]
for b in small:
    b[:] = bytes(len(b))
keep.append(small)

# Library data: about 15 %, as bytes read from files (compressed ones included).
left = share(0.15)
roots = ["/usr/lib", "/usr/share"]
for root in roots:
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if left <= 0:
                break
            path = os.path.join(dirpath, name)
            try:
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as f:
                    data = f.read(min(left, 4 * MiB))
            except OSError:
                continue
            keep.append(bytearray(data))
            left -= len(data)

# A private file mapping, half of it written: anonymous pages in a file mapping.
tmp = tempfile.TemporaryFile()
tmp.write(bytes(rng.integers(0, 256, share(0.02), dtype=np.uint8)))
tmp.flush()
fm = mmap.mmap(tmp.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
for off in range(0, len(fm) // 2, PAGE):
    fm[off:off + 16] = b"copy-on-write!!!"
keep.append(fm)

# Shared memory (shmem): MAP_SHARED anonymous.
shm = mmap.mmap(-1, share(0.03))
text = " ".join(words).encode()
for off in range(0, len(shm), len(text)):
    chunk = text[: len(shm) - off]
    shm[off:off + len(chunk)] = chunk
keep.append(shm)

# Untouched memory only read: the shared zero page (small pages and a huge one).
for size in (share(0.01), 8 * MiB):
    r = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if size >= 4 * MiB:
        r.madvise(mmap.MADV_HUGEPAGE)
    for off in range(0, size, PAGE):
        r[off]
    keep.append(r)

# mlocked memory: never swapped.
lk = mmap.mmap(-1, share(0.01), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
lk.write(bytes(rng.integers(0, 256, len(lk), dtype=np.uint8)))
libc = ctypes.CDLL(None, use_errno=True)
addr = ctypes.addressof(ctypes.c_char.from_buffer(lk))
libc.mlock(ctypes.c_void_p(addr), ctypes.c_size_t(len(lk)))
keep.append(lk)

# MADV_FREE'd memory: discarded by reclaim.
fr = mmap.mmap(-1, share(0.01), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
fr.write(b"free me " * (len(fr) // 8))
fr.madvise(mmap.MADV_FREE)
keep.append(fr)

# Drain this CPU's LRU batches (MADV_COLD drains them first), so MADV_FREE'd pages
# are no longer swap-backed when they are looked at.
cold = mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
cold[0] = 1
cold.madvise(getattr(mmap, "MADV_COLD", 20))  # 3.11 lacks the name
keep.append(cold)

rss = 0
for line in open("/proc/self/status"):
    if line.startswith(("RssAnon:", "RssShmem:")):
        rss += int(line.split()[1])
sys.stdout.write(f"ready {rss}\n")
sys.stdout.flush()
sys.stdin.read()
"""


def _allocator_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without what retunes glibc's malloc for a child.

    The mix above relies on malloc's defaults: a fixed ``MALLOC_TRIM_THRESHOLD_`` (which
    Dask's distributed sets in its caller's environment) turns off malloc's dynamic mmap
    threshold, so the large arrays land in unaligned mappings of their own and hardly any
    of them in THPs: no same-filled pages inside THPs left to compare.
    """
    return {
        k: v for k, v in environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"
    }


class MemHog:
    """The :data:`SCRIPT` child, started (optionally inside a cgroup), stopped, killed.

    >>> with MemHog(64, seed=1) as hog:       # doctest: +SKIP
    ...     hog.stop()                          # SIGSTOP: nothing it maps changes now
    ...     estimate(hog.pid)
    """

    def __init__(
        self, mib: int, seed: int = 1, join_cgroup: Callable[[], None] | None = None
    ) -> None:
        self.mib = mib
        self.seed = seed
        self.join_cgroup = join_cgroup
        self.proc: subprocess.Popen[bytes] | None = None
        self.resident_kb = 0

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise KernelUnavailableError("the process is not started: use MemHog in `with`")
        return self.proc.pid

    def __enter__(self) -> MemHog:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(self.mib), str(self.seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=self.join_cgroup,
            env=_allocator_defaults(os.environ),
        )
        try:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline().decode().split()
            if len(line) != 2 or line[0] != "ready":
                err = self.proc.stderr.read().decode().strip() if self.proc.stderr else ""
                raise KernelUnavailableError(
                    f"the test process failed to build its memory (exit {self.proc.wait()}): "
                    f"{err.splitlines()[-1] if err else 'no message'}"
                )
            self.resident_kb = int(line[1])
        except BaseException:
            self.kill()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    def stop(self) -> None:
        """SIGSTOP: the process runs no more, so its memory holds still."""
        os.kill(self.pid, signal.SIGSTOP)

    def kill(self) -> None:
        """SIGKILL (a stopped process dies too) and reap; never raises."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            proc.wait(timeout=60)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
