"""The ``zsmalloc`` command.

Each sub-command lives in its own module under ``zsmalloc.cli`` and is loaded
only when invoked, so ``zsmalloc --help`` and quick commands start fast.  To add
a command, add one line to ``COMMANDS``: name -> "module:attribute" of a
``click.Command``.

A :class:`~zsmalloc.errors.ZsmallocError` is printed as one line on stderr with
exit status 2; anything else escaping is a bug and keeps its traceback.  Output
that cannot be written is not a bug: a closed pipe (``| head -c1``) ends the
command quietly with status 1 (as click does when the pipe closes while a command
runs), any other write error on stdout (a full disk) is one line and status 1.
Output is flushed before ``main`` returns, also on ``sys.exit``, so no error is
left for the interpreter's exit to report (it would exit 0 or 120 after a
traceback-like "Exception ignored" message).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys

# numpy's OpenBLAS starts a thread per CPU, which spins after each call; no command needs
# threaded BLAS, and estimate's compressing threads want those cycles (before numpy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click

from zsmalloc.errors import ZsmallocError

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:attribute", one-line help)
    "classes": ("zsmalloc.cli.classes:classes", "The size-class table and huge_class_size."),
    "estimate": ("zsmalloc.cli.estimate:estimate", "What zram would really take for these pages."),
    "sizes": ("zsmalloc.cli.sizes:sizes", "Per-page stored bytes as zram counts them."),
    "layout": ("zsmalloc.cli.layout:layout", "struct page and struct zpdesc side by side."),
    "record": ("zsmalloc.cli.record:record_cmd", "Record zsmalloc's calls (kprobes): a zs trace."),
    "replay": ("zsmalloc.cli.replay:replay_cmd", "Replay a zram or zs trace; compare mm_stat."),
    "report": ("zsmalloc.cli.report:report_cmd", "Many estimates read as one fleet (--html page)."),
    "verify": ("zsmalloc.cli.verify:verify_cmd", "Check the model against the live kernel."),
    "zram": ("zsmalloc.cli.zram:zram_cmd", "Run a zram workload script on the model device."),
    "whatif": ("zsmalloc.cli.whatif:whatif_cmd", "One workload under class-table variants."),
    "zswap": ("zsmalloc.cli.zswap:zswap_cmd", "zswap model: replay swap traces, live check."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zsmalloc")
def cli() -> None:
    """Linux 6.18's zsmalloc, zram and zswap, exactly, in user space."""


EXIT_OUTPUT_ERROR = 1
# errno values of a write to stdout that fails for reasons outside the program
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT, errno.EBADF})


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):
        pass


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one clean line."""
    try:
        try:
            cli.main(args=argv, prog_name="zsmalloc", standalone_mode=False)
        finally:  # also on sys.exit(): the output must be out, or its error caught, here
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:  # the reader went away: stop, quietly
        _silence_stdout()
        sys.exit(EXIT_OUTPUT_ERROR)
    except ZsmallocError as exc:
        click.echo(f"zsmalloc: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # after ZsmallocError: SysfsError is an OSError too
        if exc.errno not in _OUTPUT_ERRNOS or exc.filename is not None:
            raise
        _silence_stdout()
        click.echo(f"zsmalloc: error: cannot write the output: {exc.strerror}", err=True)
        sys.exit(EXIT_OUTPUT_ERROR)
    except click.exceptions.Abort:
        click.echo("zsmalloc: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
