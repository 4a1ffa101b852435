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

A refused command stops the script with the kernel's errno (exit status 2),
naming the script line.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
import numpy as np

from zsmalloc.cli.options import kernel_option
from zsmalloc.errors import InputError, ZsmallocError
from zsmalloc.kparse import memparse
from zsmalloc.profile import KernelProfile
from zsmalloc.zram.device import Zram


def _size(word: str, what: str) -> int:
    value, used = memparse(word)
    if used != len(word):
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


def _file_pages(path: str, opts: dict[str, int], page_size: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(opts.get("skip", 0))
            n = opts.get("pages")
            data = f.read(n * page_size if n is not None else -1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if not data:
        raise InputError(f"{path}: nothing to write (empty, or skip beyond its end)")
    pad = -len(data) % page_size
    return data + bytes(pad)


def run_command(zram: Zram, words: list[str]) -> str:
    """Run one script command on ``zram``; returns the text it prints ('' if none)."""
    cmd, args = words[0], words[1:]
    page_size = zram.profile.page_size
    if cmd == "set":
        if len(args) < 2:
            raise InputError("usage: set ATTR VALUE")
        zram.write_attr(args[0], " ".join(args[1:]))
    elif cmd == "show":
        if len(args) != 1:
            raise InputError("usage: show ATTR")
        return zram.read_attr(args[0])
    elif cmd in ("write", "check"):
        if not args:
            raise InputError(f"usage: {cmd} FILE [at OFFSET] [pages N] [skip BYTES]")
        opts = _options(args[1:], ("at", "pages", "skip"))
        data = _file_pages(args[0], opts, page_size)
        at = opts.get("at", 0)
        if cmd == "write":
            zram.write(at, data)
        else:
            got = zram.read(at, len(data))
            if got != data:
                bad = next(
                    i
                    for i in range(0, len(data), page_size)
                    if got[i : i + page_size] != data[i : i + page_size]
                )
                raise InputError(f"check {args[0]}: page at {at + bad} differs from the file")
            return f"check {args[0]}: {len(data) // page_size} pages read back identical\n"
    elif cmd == "fill":
        if not args:
            raise InputError("usage: fill zero|random|byte:N [at OFFSET] pages N")
        opts = _options(args[1:], ("at", "pages"))
        n = opts.get("pages", 1) * page_size
        kind = args[0]
        if kind == "zero":
            data = bytes(n)
        elif kind == "random":
            data = np.random.default_rng(0).bytes(n)
        elif kind.startswith("byte:"):
            try:
                byte = int(kind[5:], 0) & 0xFF
            except ValueError:
                raise InputError(f"fill: byte:N needs a number, found {kind!r}") from None
            data = bytes([byte]) * n
        else:
            raise InputError(f"fill: unknown pattern {kind!r} (zero, random, byte:N)")
        zram.write(opts.get("at", 0), data)
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


def run_script(zram: Zram, lines: list[str], path: str) -> list[str]:
    """Run script lines; errors name the line.  Returns the printed outputs."""
    out: list[str] = []
    for lineno, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            words = shlex.split(text)
        except ValueError as exc:  # shlex: an unclosed quote
            raise InputError(str(exc), path=path, line=lineno) from None
        try:
            text_out = run_command(zram, words)
        except InputError as exc:  # the script's own mistakes (usage, files, sizes)
            raise InputError(str(exc), path=path, line=lineno) from None
        except ZsmallocError as exc:  # what the device refused, with its errno
            raise type(exc)(f"{path}:{lineno}: {exc}", errno=exc.errno) from None
        if text_out:
            out.append(text_out)
            click.echo(text_out, nl=False)
    return out


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
    if commands is not None:
        lines, path = commands.split(";"), "-e"
    elif script == "-":
        lines, path = sys.stdin.read().splitlines(), "<stdin>"
    else:
        try:
            with open(script, encoding="utf-8") as f:  # type: ignore[arg-type]
                lines, path = f.read().splitlines(), str(script)
        except OSError as exc:
            raise InputError(f"cannot read script: {exc.strerror}", path=str(script)) from None
    profile = KernelProfile(kernel)
    if config_path is not None:
        try:
            config = Path(config_path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InputError(f"cannot read the config: {exc.strerror}", path=config_path) from None
        zram = Zram.from_kernel_config(config, profile)
    else:
        zram = Zram(profile=profile)
    if algo:
        zram.write_attr("comp_algorithm", algo)
    if mem_limit:
        zram.write_attr("mem_limit", mem_limit)
    if disksize:
        zram.write_attr("disksize", disksize)
    run_script(zram, lines, path)
