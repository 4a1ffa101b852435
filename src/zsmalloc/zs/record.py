"""zsmalloc's calls as tracefs kprobe events, and their text turned into a zs trace.

``zsmalloc record`` (:mod:`zsmalloc.live.record`) and the guest's /init
(``zsmalloc verify --guest --record``, :mod:`zsmalloc.guest.init.c`) write the SAME
event definitions, :func:`event_definitions`, into ``kprobe_events``, and both feed
what the ring buffer gives back through one :class:`KprobeConverter` into a
:class:`~zsmalloc.zs.trace.ZsTraceWriter`.

The events use ``$argN``/``$retval`` only (no register names), so one set serves x86-64
and arm64 (CONFIG_HAVE_FUNCTION_ARG_ACCESS_API, both since 4.20)::

    zs_create_pool(name)        entry: the name; return: the pool
    zs_destroy_pool(pool)       entry
    zs_malloc(pool, size, ...)  entry: pool, size, pool->name; return: the handle
    zs_free(pool, handle)       entry: pool, handle, pool->name; return (written then)
    zs_compact(pool)            entry: pool, pool->name; return: the pages it freed
    __zs_compact(pool, class)   entry: pool, pool->name; return: the pages freed (optional)
    zs_shrinker_scan(...)       entry; return: the pages the shrinker freed (optional)

``pool->name`` is ``+0(+0($arg1)):string``: the name is the first member of struct
zs_pool on every kernel the model knows (6.1 .. 7.x), so a pool that existed before the
recording began is named at its first call.  Every other change of a pool's page count
goes through these functions: zram's and zswap's stores and frees call zs_malloc and
zs_free, ``compact`` and the pool's shrinker compact through zs_compact(), and page
migration moves a zspage's pages without changing their number.  The shrinker's
zs_compact() is a call in Debian's 6.1 and 6.12, but from 6.16 on the compiler inlined
it into zs_shrinker_scan() (the guests showed it): there only the classes' compaction,
__zs_compact() (a function of its own in those kernels), and the shrinker's return are
seen, and the __zs_compact() calls of one shrinker run that no zs_compact() call
encloses make one ``c`` line.  Where __zs_compact() is inlined (6.1, 6.12) its
definitions fail and are left out (:data:`OPTIONAL_EVENTS`).  (6.1 frees a zspage
that emptied while isolated for migration from a work item, later than its zs_free: a
replay sees it freed at once.)

A zs_malloc may sleep, so its return is paired with its entry by task (pid); so is a
zs_free's.  Both are written at their return, after the pool's locks were released:
two tasks' calls are in the order they left the pool, which is the order they held its
class lock unless a task was preempted between the unlock and the return (a free
written at its entry came before a zs_malloc that held the lock first: the guests
with two CPUs showed it).  It
failed when it returned 0 (old kernels) or an error value (-4095..-1).  A kretprobe
that found no free instance is counted in ``kprobe_profile`` (nmissed), a full ring
buffer in ``per_cpu/cpuN/stats`` (overrun, dropped events): the recorder checks both
at the end (:func:`lost_events`).  Calls on one pool that overlap in time (two CPUs, or
a task that slept) are counted as ``overlaps``: their order in the trace is the order
their probes fired, which need not be the order they took the pool's locks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from zsmalloc.zs.trace import ZsTraceWriter

GROUP = "zsmalloc_rec"
MAXACTIVE = 128
"""Kretprobe instances (calls in flight at once) per probe; more are missed, and counted."""
MARKER = "zsrec"
"""``trace_marker`` lines ``zsrec op N`` (the guest's /init after its Nth operation)."""
ERR_MAX = 4095  # IS_ERR_VALUE(): the top 4095 values of an unsigned long are -errno


def event_definitions(group: str = GROUP) -> list[str]:
    """The ``kprobe_events`` lines, one per event (see the module docstring)."""
    name = "name=+0(+0($arg1)):string"
    r = f"r{MAXACTIVE}"
    return [
        f"p:{group}/zs_create_pool zs_create_pool name=+0($arg1):string",
        f"{r}:{group}/zs_create_pool_ret zs_create_pool pool=$retval:x64",
        f"p:{group}/zs_destroy_pool zs_destroy_pool pool=$arg1:x64",
        f"p:{group}/zs_malloc zs_malloc pool=$arg1:x64 size=$arg2:u64 {name}",
        f"{r}:{group}/zs_malloc_ret zs_malloc handle=$retval:x64",
        f"p:{group}/zs_free zs_free pool=$arg1:x64 handle=$arg2:x64 {name}",
        f"{r}:{group}/zs_free_ret zs_free",
        f"p:{group}/zs_compact zs_compact pool=$arg1:x64 {name}",
        f"{r}:{group}/zs_compact_ret zs_compact freed=$retval:u64",
        f"p:{group}/zs_compact_class __zs_compact pool=$arg1:x64 {name}",
        f"{r}:{group}/zs_compact_class_ret __zs_compact freed=$retval:u64",
        f"p:{group}/zs_shrinker_scan zs_shrinker_scan",
        f"{r}:{group}/zs_shrinker_scan_ret zs_shrinker_scan freed=$retval:u64",
    ]


OPTIONAL_EVENTS = frozenset(
    ("zs_compact_class", "zs_compact_class_ret", "zs_shrinker_scan", "zs_shrinker_scan_ret")
)
"""Events whose function a kernel may not have as a symbol of its own (inlined): their
definitions may fail, and are then left out."""
SHRINK_STOP = (1 << 64) - 1  # ~0UL: what a shrinker's scan returns when it freed nothing


def event_name(definition: str) -> str:
    """``zs_malloc`` of ``p:zsmalloc_rec/zs_malloc zs_malloc ...``."""
    return definition.split()[0].split("/")[1]


EVENTS = tuple(event_name(d) for d in event_definitions())

# "  task-1234  [001] d..1.  123.456789: zs_malloc: (zs_malloc+0x0/0x2e0) pool=0x.. size=.."
# (the flags column and a tgid column are there or not, as tracefs options say)
_LINE = re.compile(r"-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[\d+\][^:]*?\s(\d+\.\d+): (\w+): (.*)$")
_ARG = re.compile(r'(\w+)=("[^"]*"|\S+)')


def is_failed_handle(handle: int) -> bool:
    """zs_malloc's failure: 0 (before 5.19) or an ERR_PTR value."""
    return handle == 0 or handle >= (1 << 64) - ERR_MAX


@dataclass
class RecordCounts:
    """What the converter saw, for the trace's ``# end`` line and the recorder's summary."""

    events: int = 0
    allocs: int = 0
    failed: int = 0
    frees: int = 0
    compactions: int = 0
    unknown_frees: int = 0  # frees of objects allocated before the recording began
    orphan_returns: int = 0  # returns whose entry came before the recording began
    lost_entries: int = 0  # a second entry of a task before the first one's return
    overlaps: int = 0  # calls on one pool that overlapped in time
    shrinker_compactions: int = 0  # compactions of the shrinker with zs_compact inlined
    unattributed: int = 0  # shrinker runs that freed pages, and no compaction seen
    filtered: int = 0  # events of pools --pool left out
    unparsed: int = 0  # ring-buffer lines that are none of ours (e.g. "CPU 1 buffer started")
    pools: dict[int, str] = field(default_factory=dict)

    def as_words(self) -> str:
        skip = {"pools"}
        return " ".join(f"{k}={v}" for k, v in self.__dict__.items() if k not in skip)


class KprobeConverter:
    """Ring-buffer text lines (tracefs ``trace``/``trace_pipe``) -> zs trace lines.

    ``pool_filter`` keeps one pool name (``zram0``); ``on_marker`` is called with the
    text of each ``zsrec`` marker line, in order (the guest check writes its mm_stat
    there).
    """

    def __init__(
        self,
        writer: ZsTraceWriter,
        pool_filter: str | None = None,
        on_marker: Callable[[str], None] | None = None,
    ) -> None:
        self.w = writer
        self.pool_filter = pool_filter
        self.on_marker = on_marker
        self.counts = RecordCounts()
        self.pool_no: dict[int, int] = {}  # kernel pointer -> pool number
        self.names: dict[int, str] = {}  # pool number -> name
        self.pending: dict[tuple[str, int], tuple[int, ...]] = {}  # (call, pid) -> entry args
        self.pending_name: dict[int, str] = {}  # zs_create_pool entry per pid
        self.in_flight: dict[int, set[int]] = {}  # pool pointer -> pids inside a call
        self.incomplete: list[str] = []  # set by finish()
        # pid -> (a zs_compact ran inside, {pool pointer: pages __zs_compact freed})
        self.shrinking: dict[int, tuple[list[bool], dict[int, int]]] = {}

    def feed(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.line(line)

    def _pool(self, ptr: int, name: str | None, created: bool = False) -> int | None:
        """The pool number of ``ptr`` (a new one is announced), None when filtered out."""
        no = self.pool_no.get(ptr)
        if no is None:
            no = self.pool_no[ptr] = len(self.names)
            self.names[no] = name or ""
            self.counts.pools[no] = name or ""
            if self._keep(no):
                self.w.pool(no, "created" if created else "existing", self.names[no])
        return no if self._keep(no) else None

    def _keep(self, no: int) -> bool:
        return self.pool_filter is None or self.names.get(no) == self.pool_filter

    def _enter(self, ptr: int, pid: int) -> None:
        inside = self.in_flight.setdefault(ptr, set())
        if inside - {pid}:
            self.counts.overlaps += 1
        inside.add(pid)

    def _leave(self, ptr: int, pid: int) -> None:
        self.in_flight.get(ptr, set()).discard(pid)

    def _push(self, call: str, pid: int, args: tuple[int, ...]) -> None:
        if (call, pid) in self.pending:
            self.counts.lost_entries += 1
        self.pending[(call, pid)] = args

    def line(self, line: str) -> None:
        m = _LINE.search(line)
        if m is None:
            if line.strip() and not line.startswith("#"):
                self.counts.unparsed += 1
            return
        pid, event, rest = int(m.group(1)), m.group(3), m.group(4)
        if event == "tracing_mark_write":
            text = rest.strip()
            if text.startswith(MARKER) and self.on_marker is not None:
                self.on_marker(text[len(MARKER):].strip())
            return
        if event not in EVENTS:
            self.counts.unparsed += 1
            return
        self.counts.events += 1
        args = {k: v for k, v in _ARG.findall(rest.partition(") ")[2] if ") " in rest else rest)}
        name = args.get("name", "").strip('"') or None
        if event == "zs_malloc":
            ptr = int(args["pool"], 0)
            self._enter(ptr, pid)
            self._push("malloc", pid, (ptr, int(args["size"], 0)))
            self._pool(ptr, name)
        elif event == "zs_malloc_ret":
            entry = self.pending.pop(("malloc", pid), None)
            if entry is None:
                self.counts.orphan_returns += 1
                return
            ptr, size = entry
            self._leave(ptr, pid)
            no = self._pool(ptr, None)
            if no is None:
                self.counts.filtered += 1
                return
            handle = int(args["handle"], 0)
            if is_failed_handle(handle):
                self.counts.failed += 1
                self.w.fail(no, size)
            else:
                self.counts.allocs += 1
                self.w.alloc(no, handle, size)
        elif event == "zs_free":
            # the object is known by its handle at the entry, its line written at the
            # return: after the pool's locks, as a zs_malloc's is (the order they took
            # them), and the handle may be handed out again before the return
            ptr, handle = int(args["pool"], 0), int(args["handle"], 0)
            self._enter(ptr, pid)
            no = self._pool(ptr, name)
            oid = -1  # nothing to write: filtered, or a handle zs_free() ignores
            if no is None:
                self.counts.filtered += 1
            elif handle != 0 and not is_failed_handle(handle):
                oid = self.w.detach(no, handle)
            self._push("free", pid, (ptr, oid))
        elif event == "zs_free_ret":
            entry = self.pending.pop(("free", pid), None)
            if entry is None:
                self.counts.orphan_returns += 1
                return
            ptr, oid = entry
            self._leave(ptr, pid)
            no = self.pool_no.get(ptr)
            if oid >= 0 and no is not None:
                self.w.free_id(no, oid)
                self.counts.frees += 1
                self.counts.unknown_frees += oid == 0
        elif event == "zs_compact":
            ptr = int(args["pool"], 0)
            if pid in self.shrinking:
                self.shrinking[pid][0][0] = True
            self._enter(ptr, pid)
            self._push("compact", pid, (ptr,))
            self._pool(ptr, name)
        elif event == "zs_compact_ret":
            entry = self.pending.pop(("compact", pid), None)
            if entry is None:
                self.counts.orphan_returns += 1
                return
            self._leave(entry[0], pid)
            no = self._pool(entry[0], None)
            if no is None:
                self.counts.filtered += 1
                return
            self.counts.compactions += 1
            self.w.compact(no, int(args["freed"], 0))
        elif event == "zs_compact_class":
            self._push("class", pid, (int(args["pool"], 0),))
            self._pool(int(args["pool"], 0), name)
        elif event == "zs_compact_class_ret":
            entry = self.pending.pop(("class", pid), None)
            if entry is not None and ("compact", pid) not in self.pending and pid in self.shrinking:
                # zs_compact inlined into zs_shrinker_scan: only its classes are seen
                runs = self.shrinking[pid][1]
                runs[entry[0]] = runs.get(entry[0], 0) + int(args["freed"], 0)
        elif event == "zs_shrinker_scan":
            self.shrinking[pid] = ([False], {})
        elif event == "zs_shrinker_scan_ret":
            run = self.shrinking.pop(pid, None)
            if run is None or run[0][0]:
                return  # (its zs_compact was recorded as such)
            for ptr, freed in run[1].items():
                no = self._pool(ptr, None)
                if no is None:
                    self.counts.filtered += 1
                    continue
                self.counts.compactions += 1
                self.counts.shrinker_compactions += 1
                self.w.compact(no, freed)
            freed = int(args["freed"], 0)
            if not run[1] and freed not in (0, SHRINK_STOP):
                self.counts.unattributed += 1
        elif event == "zs_create_pool":
            self.pending_name[pid] = name or ""
        elif event == "zs_create_pool_ret":
            ptr = int(args["pool"], 0)
            pname = self.pending_name.pop(pid, "")
            if ptr and not is_failed_handle(ptr):
                self.pool_no.pop(ptr, None)  # a destroyed pool's memory, used again
                self._pool(ptr, pname, created=True)
        elif event == "zs_destroy_pool":
            ptr = int(args["pool"], 0)
            no = self.pool_no.pop(ptr, None)
            if no is not None and self._keep(no):
                self.w.pool(no, "destroyed", self.names[no])

    def finish(self, lost: list[str]) -> list[str]:
        """The ``# incomplete`` lines (``lost``: why events are missing) and ``# end``;
        returns the reasons the trace is incomplete ([]: it is complete)."""
        c = self.counts
        reasons = list(lost)
        if c.orphan_returns:
            reasons.append(f"{c.orphan_returns} returns of calls that began before the "
                           "recording (their objects are unknown)")
        if c.lost_entries:
            reasons.append(f"{c.lost_entries} calls entered twice by one task without a "
                           "return between (a kretprobe missed)")
        if c.unattributed:
            reasons.append(f"{c.unattributed} runs of zsmalloc's shrinker freed pages and no "
                           "compaction was seen (zs_compact and __zs_compact inlined?)")
        for r in reasons:
            self.w.comment(f"incomplete {r}")
        if c.overlaps:
            self.w.comment(
                f"inexact {c.overlaps} calls into a pool began while another task was inside "
                "one: the model runs calls one at a time (a zs_malloc that allocates a "
                "zspage does so outside the class lock)")
        self.w.comment(f"end {c.as_words()} complete={int(not reasons)}")
        self.incomplete = reasons
        return reasons


def parse_nmissed(kprobe_profile: str, group: str = GROUP) -> dict[str, int]:
    """``kprobe_profile`` lines ``EVENT HITS MISSES`` of our events: misses per event."""
    out: dict[str, int] = {}
    for line in kprobe_profile.splitlines():
        w = line.split()
        if len(w) >= 3 and w[-1].isdigit() and w[-3].split("/")[-1] in EVENTS:
            out[w[-3].split("/")[-1]] = int(w[-1])
    return out


def parse_buffer_stats(stats: str) -> dict[str, int]:
    """``per_cpu/cpuN/stats``: ``overrun``, ``commit overrun``, ``dropped events`` (losses)."""
    out: dict[str, int] = {}
    for line in stats.splitlines():
        key, _, value = line.partition(":")
        value = value.strip().split(" ")[0]
        if key.strip() in ("overrun", "commit overrun", "dropped events") and value.isdigit():
            out[key.strip()] = int(value)
    return out


def lost_events(kprobe_profile: str, cpu_stats: Iterable[str]) -> list[str]:
    """Why events are missing, from kprobe_profile and every CPU's buffer stats ([]: none)."""
    reasons = [f"{e}: {n} missed (kprobe_profile)"
               for e, n in parse_nmissed(kprobe_profile).items() if n]
    for cpu, text in enumerate(cpu_stats):
        for key, n in parse_buffer_stats(text).items():
            if n:
                reasons.append(f"cpu{cpu}: ring buffer {key} {n}")
    return reasons


def chain_size_from_config(config: str) -> int | None:
    """CONFIG_ZSMALLOC_CHAIN_SIZE of a kernel ``.config`` (None: the kernel has none, 6.1)."""
    m = re.search(r"^CONFIG_ZSMALLOC_CHAIN_SIZE=(\d+)$", config, re.MULTILINE)
    return int(m.group(1)) if m else None


def trace_header(release: str, page_size: int, chain_size: int | None,
                 source: str) -> dict[str, object]:
    """The zs trace header of a recording on ``release``."""
    header: dict[str, object] = {"kernel": release, "page_size": page_size}
    if chain_size is not None:
        header["chain_size"] = chain_size
    header["source"] = source
    return header
