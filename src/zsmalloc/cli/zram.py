"""``zsmalloc zram``: try a zram configuration on the model, without root.

A tiny script language drives one :class:`~zsmalloc.zram.device.Zram`, one
command a line (or ``;``-separated with ``-e``); ``#`` starts a comment.
Sizes and offsets take memparse suffixes (``4K``, ``64M``)::

    set ATTR VALUE                 echo VALUE > /sys/block/zramN/ATTR
    show ATTR                      cat ATTR (mm_stat, io_stat, bd_stat, debug_stat, ...)
    write FILE [at OFFSET] [pages N] [skip BYTES]
                                   write the file's bytes (the last page zero-padded)
    fill zero|random|byte:N [at OFFSET] pages N
    check FILE [at OFFSET] [pages N] [skip BYTES]
                                   read back and compare with the file (fails if different)
    discard OFFSET LENGTH          BLKDISCARD
    compact | idle | reset         echo 1 / all / 1 > ATTR
    writeback SPEC                 echo SPEC > writeback (e.g. huge, type=idle)
    recompress SPEC                echo SPEC > recompress (e.g. type=huge algo=lz4)
    slot N                         one slot's kind, size, flags and priority

Example::

    zsmalloc zram -e 'set comp_algorithm lz4; set disksize 64M; write /usr/bin/ls; show mm_stat'

Everything is streamed: the script is read a line at a time, and ``write``,
``check`` and ``fill`` move :data:`CHUNK_PAGES` pages at a time, so ``write
/dev/zero`` or a file larger than memory works.  A write that reaches the end of
the device stops there, as ``dd`` into /dev/zramN does, with a note on stderr
saying how much was written (the script goes on).  A ``set`` whose value the
kernel reads only in part (``set disksize 1.5G`` is 1 byte, rounded to a page)
is done as the kernel does it, with a note saying so.

A refused command stops the script with the kernel's errno (exit status 2),
naming the script line; so does a script that is not text.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Iterator

import click
import numpy as np

from zsmalloc.cli.options import kernel_option
from zsmalloc.errors import InputError, ZsmallocError
from zsmalloc.kparse import memparse
from zsmalloc.profile import KernelProfile
from zsmalloc.streams import STDIN, CheckedStream, open_input, read_exact_into, text_lines
from zsmalloc.zram.device import Zram

CHUNK_PAGES = 256
"""Pages a ``write``/``check``/``fill`` moves at a time (1 MiB of 4 KiB pages)."""
MAX_CONFIG_BYTES = 16 << 20
"""A kernel ``.config`` is well under 1 MiB; more than this is not one."""
Note = Callable[[str], None]


def _size(word: str, what: str) -> int:
    value, used = memparse(word)
    if used != len(word) or not word:
        raise InputError(f"{what}: expected a size such as 4096, 4K or 64M, found {word!r}")
    return value


def _options(words: list[str], allowed: tuple[str, ...]) -> dict[str, int]:
    if len(words) % 2:
        raise InputError(
            f"expected KEY VALUE pairs ({', '.join(allowed)}), found {' '.join(words)!r}"
        )
    out: dict[str, int] = {}
    for key, value in zip(words[::2], words[1::2], strict=True):
        if key not in allowed:
            raise InputError(f"unknown option {key!r}; expected one of {', '.join(allowed)}")
        out[key] = _size(value, key)
    return out


def _open_file(path: str, skip: int) -> CheckedStream:
    """The file's raw bytes from ``skip`` on (no decompression: the bytes as they are)."""
    try:
        stream = open_input(path, decompress=False)
    except InputError as exc:
        raise InputError(f"cannot read {path}: {exc.detail}") from None
    if skip and stream.skip(skip) < skip:
        stream.close()
        raise InputError(f"{path}: nothing to write (skip beyond its end)")
    return stream


def _file_chunks(stream: CheckedStream, pages: int | None, page_size: int) -> Iterator[bytes]:
    """Chunks of whole pages from ``stream`` (the last page zero-padded), ``pages`` at most."""
    buf = bytearray(CHUNK_PAGES * page_size)
    left = pages
    while left is None or left > 0:
        want = CHUNK_PAGES if left is None else min(CHUNK_PAGES, left)
        mv = memoryview(buf)[: want * page_size]
        got = read_exact_into(stream, mv)
        if got == 0:
            return
        n = -(-got // page_size)
        mv[got : n * page_size] = bytes(n * page_size - got)
        yield bytes(mv[: n * page_size])
        if left is not None:
            left -= n
        if got < want * page_size:
            return


def _fill_chunks(kind: str, pages: int, page_size: int) -> Iterator[bytes]:
    """The pattern of ``fill``, ``pages`` pages of it, a chunk at a time."""
    rng = np.random.default_rng(0) if kind == "random" else None
    if kind == "zero":
        byte = 0
    elif kind.startswith("byte:"):
        try:
            byte = int(kind[5:], 0) & 0xFF
        except ValueError:
            raise InputError(f"fill: byte:N needs a number, found {kind!r}") from None
    elif kind != "random":
        raise InputError(f"fill: unknown pattern {kind!r} (zero, random, byte:N)")
    for lo in range(0, pages, CHUNK_PAGES):
        nbytes = min(CHUNK_PAGES, pages - lo) * page_size
        yield rng.bytes(nbytes) if rng is not None else bytes([byte]) * nbytes


def _write_stream(
    zram: Zram, what: str, at: int, chunks: Iterable[bytes], note: Note
) -> int:
    """Write ``chunks`` at ``at`` and on; stop at the device's end with a note.  Bytes written."""
    done = 0
    page_size = zram.profile.page_size
    it = iter(chunks)
    for chunk in it:
        if done and at + done >= zram.disksize:  # exactly at the end, with more to come
            note(f"{what}: stopped at the end of {zram.name} (disksize {zram.disksize}) "
                 f"after {done // page_size} pages; the rest was not written")
            return done
        n = zram.write(at + done, chunk)  # a write starting past the end is ENOSPC
        done += n
        if n < len(chunk):  # cut short at the end, as on the real device
            note(f"{what}: stopped at the end of {zram.name} (disksize {zram.disksize}) "
                 f"after {done // page_size} pages; the rest was not written")
            return done
    return done


def run_command(zram: Zram, words: list[str], note: Note) -> str:
    """Run one script command on ``zram``; returns the text it prints ('' if none).

    ``note`` receives remarks that are not the command's output (a write cut short
    at the end of the device, a value the kernel read only in part).
    """
    cmd, args = words[0], words[1:]
    page_size = zram.profile.page_size
    if cmd == "set":
        if len(args) < 2:
            raise InputError("usage: set ATTR VALUE")
        value = " ".join(args[1:])
        if args[0] in ("disksize", "mem_limit"):
            parsed, used = memparse(value)
            if 0 < used < len(value.rstrip("\n")):
                note(f"{args[0]} {value}: the kernel's memparse reads {value[:used]!r} = "
                     f"{parsed} bytes and ignores {value[used:]!r}")
        zram.write_attr(args[0], value)
    elif cmd == "show":
        if len(args) != 1:
            raise InputError("usage: show ATTR")
        return zram.read_attr(args[0])
    elif cmd in ("write", "check"):
        if not args:
            raise InputError(f"usage: {cmd} FILE [at OFFSET] [pages N] [skip BYTES]")
        opts = _options(args[1:], ("at", "pages", "skip"))
        at, path = opts.get("at", 0), args[0]
        with _open_file(path, opts.get("skip", 0)) as stream:
            chunks = _file_chunks(stream, opts.get("pages"), page_size)
            if cmd == "write":
                if not _write_stream(zram, f"write {path}", at, _nonempty(chunks, path), note):
                    raise InputError(f"{path}: nothing to write")
                return ""
            return _check(zram, path, at, _nonempty(chunks, path))
    elif cmd == "fill":
        if not args:
            raise InputError("usage: fill zero|random|byte:N [at OFFSET] pages N")
        opts = _options(args[1:], ("at", "pages"))
        chunks = _fill_chunks(args[0], opts.get("pages", 1), page_size)
        _write_stream(zram, f"fill {args[0]}", opts.get("at", 0), chunks, note)
    elif cmd == "discard":
        if len(args) != 2:
            raise InputError("usage: discard OFFSET LENGTH")
        zram.discard(_size(args[0], "offset"), _size(args[1], "length"))
    elif cmd in ("compact", "reset"):
        zram.write_attr(cmd, "1")
    elif cmd == "idle":
        zram.write_attr("idle", args[0] if args else "all")
    elif cmd in ("writeback", "recompress"):
        zram.write_attr(cmd, " ".join(args))
    elif cmd == "slot":
        if len(args) != 1:
            raise InputError("usage: slot N")
        s = zram.slot(_size(args[0], "slot"))
        return (
            f"slot {args[0]}: {s['kind']} size {s['size']} priority {s['priority']} "
            f"flags {','.join(s['flags']) or '-'}\n"
        )
    else:
        raise InputError(f"unknown command {cmd!r}")
    return ""


def _nonempty(chunks: Iterator[bytes], path: str) -> Iterator[bytes]:
    """``chunks``, or InputError when there is none (an empty file)."""
    first = next(chunks, None)
    if first is None:
        raise InputError(f"{path}: nothing to write (empty, or skip beyond its end)")
    yield first
    yield from chunks


def _check(zram: Zram, path: str, at: int, chunks: Iterable[bytes]) -> str:
    """Read back what ``chunks`` hold, at ``at`` and on; InputError at the first difference."""
    page_size = zram.profile.page_size
    done = 0
    for chunk in chunks:
        got = zram.read(at + done, len(chunk))
        if got != chunk:
            bad = next(
                (i for i in range(0, len(got), page_size)
                 if got[i : i + page_size] != chunk[i : i + page_size]),
                len(got),
            )
            if bad >= len(got):
                raise InputError(
                    f"check {path}: the file goes on past the end of {zram.name} "
                    f"(disksize {zram.disksize})"
                )
            raise InputError(f"check {path}: page at {at + done + bad} differs from the file")
        done += len(chunk)
    return f"check {path}: {done // page_size} pages read back identical\n"


def run_script(
    zram: Zram, lines: Iterable[tuple[int, str]], path: str, note: Note | None = None
) -> list[str]:
    """Run ``(line number, text)`` script lines; errors name the line.  Returns the outputs.

    Each output is also printed as it comes; notes go to stderr.
    """
    out: list[str] = []
    for lineno, line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue

        def line_note(msg: str, lineno: int = lineno) -> None:
            if note is not None:
                note(msg)
            else:
                click.echo(f"zsmalloc: note: {path}:{lineno}: {msg}", err=True)

        try:
            words = shlex.split(text)
        except ValueError as exc:  # shlex: an unclosed quote
            raise InputError(str(exc), path=path, line=lineno) from None
        try:
            text_out = run_command(zram, words, line_note)
        except InputError as exc:  # the script's own mistakes (usage, files, sizes)
            raise InputError(exc.detail, path=path, line=lineno) from None
        except ZsmallocError as exc:  # what the device refused, with its errno
            raise type(exc)(f"{path}:{lineno}: {exc}", errno=exc.errno) from None
        if text_out:
            out.append(text_out)
            click.echo(text_out, nl=False)
    return out


def _read_config(path: str) -> str:
    """A kernel ``.config``, read as text lines (a binary file or a stream that does not
    end, such as /dev/zero, is refused instead of read without end)."""
    lines, size = [], 0
    with open_input(path, decompress=False, label=path, what="the config") as stream:
        for _, line in text_lines(stream):
            size += len(line) + 1
            if size > MAX_CONFIG_BYTES:
                raise InputError(f"more than {MAX_CONFIG_BYTES >> 20} MiB: not a kernel .config",
                                 path=path)
            lines.append(line)
    return "\n".join(lines) + "\n"


@click.command("zram")
@click.argument("script", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-e", "--exec", "commands", help="Commands separated by ';' instead of a script.")
@click.option("--algo", default=None, help="comp_algorithm before disksize.")
@click.option("--disksize", default=None, help="Initialise with this disksize (e.g. 64M).")
@click.option("--mem-limit", default=None, help="mem_limit (e.g. 8M).")
@kernel_option(help="The kernel whose zram (and zsmalloc) the device is.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The kernel build's .config (e.g. /boot/config-$(uname -r)): compressors, default "
    "algorithm, writeback, recompression as that build has them (default: the reference "
    "kernel's build).",
)
def zram_cmd(
    script: str | None,
    commands: str | None,
    algo: str | None,
    disksize: str | None,
    mem_limit: str | None,
    kernel: str,
    config_path: str | None,
) -> None:
    """Run a zram workload script on the model device and print what it asks for."""
    if (script is None) == (commands is None):
        raise click.UsageError("give a SCRIPT file (or - for stdin), or -e 'commands'")
    # The options are sizes, not sysfs text: a value read only in part is refused.
    for option, value in (("--disksize", disksize), ("--mem-limit", mem_limit)):
        if value is not None:
            _size(value, option)
    profile = KernelProfile(kernel)
    if config_path is not None:
        zram = Zram.from_kernel_config(_read_config(config_path), profile)
    else:
        zram = Zram(profile=profile)
    if algo is not None:
        zram.write_attr("comp_algorithm", algo)
    if mem_limit is not None:
        zram.write_attr("mem_limit", mem_limit)
    if disksize is not None:
        zram.write_attr("disksize", disksize)
    if commands is not None:
        run_script(zram, enumerate(commands.split(";"), 1), "-e")
        return
    assert script is not None
    label = "<stdin>" if script == STDIN else script
    with open_input(script, decompress=False, label=label, what="script") as stream:
        run_script(zram, text_lines(stream), label)
