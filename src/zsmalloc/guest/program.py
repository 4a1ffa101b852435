"""The workload as the guest's /init reads it, and its report parsed back.

:func:`guest_program` turns a list of :class:`~zsmalloc.live.workload.Op` (the
operations ``zsmalloc verify --kernel`` runs on a live device) into ``/data/ops.txt``
and ``/data/pages.bin`` (each distinct page once); :func:`parse_report` reads what
:file:`init.c` printed into a :class:`GuestReport`: the facts (release, sysfs files,
algorithms), ``mm_stat`` after setup, one :class:`GuestStep` per operation (mm_stat,
io_stat, the errno of a refused write, whether a read matched, the mem_limit written)
and the stat files as text at the end.  The format is documented in init.c.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from zsmalloc.errors import InputError
from zsmalloc.live.workload import Op

GUEST_PAGE = 4096  # x86-64 guests


@dataclass
class GuestStep:
    """One operation as the guest did it."""

    line: str  # "w 3 17", "d 3", "c", "r 3", "l -1", "x", "z"
    mm_stat: tuple[int, ...] = ()
    io_stat: tuple[int, ...] = ()
    errno: int = 0  # a write the kernel refused (EIO when zram is over mem_limit)
    read_ok: bool | None = None  # "r": did the data read back match
    limit: int | None = None  # "l": the value written to mem_limit


@dataclass
class GuestReport:
    """Everything /init printed."""

    facts: dict[str, str] = field(default_factory=dict)
    initial: tuple[int, ...] = ()
    steps: list[GuestStep] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    # with "trace on": tracefs files as the guest dumped them at the end (see init.c)
    trace: list[str] = field(default_factory=list)  # the ring buffer's text
    kprobe_profile: list[str] = field(default_factory=list)
    buffer_stats: list[str] = field(default_factory=list)
    kprobes_skipped: list[str] = field(default_factory=list)  # optional ones refused
    modules_failed: list[str] = field(default_factory=list)
    raw: str = ""  # the report's text as the guest printed it
    status: int | None = None  # None: the report ends early (the guest crashed)

    @property
    def release(self) -> str:
        return self.facts.get("uname", "")

    @property
    def attrs(self) -> list[str]:
        """The zram device's sysfs files on this kernel."""
        return self.facts.get("attrs", "").split()

    @property
    def error(self) -> str | None:
        return self.facts.get("error")


def guest_program(
    ops: Iterable[Op],
    disksize: int,
    algorithm: str,
    params: str = "",
    kprobes: Iterable[str] = (),
) -> tuple[str, bytes, list[Op]]:
    """(ops.txt, pages.bin, the ops as a list) for ``ops`` on a device of ``disksize``.

    ``kprobes``: event definitions (:func:`zsmalloc.zs.record.event_definitions`) the
    guest sets up and records from before the device exists.
    """
    from zsmalloc.zs.record import OPTIONAL_EVENTS, event_name

    lines = [f"kprobe{'?' if event_name(d) in OPTIONAL_EVENTS else ''} {d}" for d in kprobes]
    if lines:
        lines.append("trace on")
    lines.append(f"algo {algorithm}")
    if params:
        lines.append(f"param {params}")
    lines.append(f"disksize {disksize}")
    index: dict[bytes, int] = {}
    pages: list[bytes] = []
    done: list[Op] = []
    for op in ops:
        done.append(op)
        if op.kind == "write":
            if len(op.page) != GUEST_PAGE:
                raise InputError(f"a guest page is {GUEST_PAGE} bytes, found {len(op.page)}")
            idx = index.setdefault(op.page, len(pages))
            if idx == len(pages):
                pages.append(op.page)
            lines.append(f"w {op.slot} {idx}")
        elif op.kind == "discard":
            lines.append(f"d {op.slot}")
        elif op.kind == "compact":
            lines.append("c")
        elif op.kind == "read":
            lines.append(f"r {op.slot}")
        elif op.kind == "limit":
            lines.append(f"l {op.value}")
        elif op.kind == "reset_max":
            lines.append("x")
        elif op.kind == "shrink":  # the record check only (verify's model has no shrinker)
            lines.append("z")
        elif op.kind == "parallel":  # the record check only: two tasks at once
            lines.append(f"p {op.value}")
        else:
            raise InputError(f"the guest cannot run a {op.kind!r} operation")
    return "\n".join(lines) + "\n", b"".join(pages), done


_DUMPS = {"k": "trace", "K": "kprobe_profile", "S": "buffer_stats"}


def _ints(words: list[str], line: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in words)
    except ValueError:
        raise InputError(f"guest report: not numbers in {line!r}") from None


def parse_report(text: str) -> GuestReport:
    """Parse /init's report (see init.c); a report cut short has ``status`` None.

    A finished report (``# end``) whose operations lack their mm_stat or io_stat row, or
    any line that is not in the format, raises InputError.
    """
    rep = GuestReport(raw=text)
    step: GuestStep | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("# "):
            key, _, value = line[2:].partition(" ")
            if key == "end":
                rep.status = int(value.partition("=")[2] or 0)
            elif key == "insmod" and "failed" in value:
                rep.modules_failed.append(value)
            elif key == "kprobe-skipped":
                rep.kprobes_skipped.append(value)
            elif key != "insmod":
                rep.facts[key] = value
            continue
        tag, _, rest = line.partition(" ")
        if tag in _DUMPS:
            getattr(rep, _DUMPS[tag]).append(rest)
            continue
        words = rest.split()
        if tag == "i":
            rep.initial = _ints(words, line)
        elif tag in ("w", "d", "c", "r", "l", "x", "z", "p"):
            step = GuestStep(line)
            rep.steps.append(step)
        elif tag == "t" and len(words) in (1, 2):
            rep.texts[words[0]] = bytes.fromhex(words[1] if len(words) == 2 else "").decode(
                "utf-8", "replace"
            )
        elif step is not None and tag in ("m", "o", "e", "v", "L"):
            _step_line(step, tag, words, line)
        else:
            raise InputError(f"guest report: cannot parse {line!r}")
    if rep.status is not None and any(len(s.mm_stat) != 9 or not s.io_stat for s in rep.steps):
        raise InputError("guest report: an operation without its mm_stat or io_stat row")
    return rep


def _step_line(step: GuestStep, tag: str, words: list[str], line: str) -> None:
    """One result line of the operation ``step`` (see init.c)."""
    if tag in ("e", "v", "L") and len(words) != 1:
        raise InputError(f"guest report: expected one value in {line!r}")
    if tag == "m":
        step.mm_stat = _ints(words, line)
    elif tag == "o":
        step.io_stat = _ints(words, line)
    elif tag == "e":
        step.errno = _ints(words, line)[0]
    elif tag == "v":
        step.read_ok = words == ["1"]
    else:  # "L"
        step.limit = _ints(words, line)[0]
