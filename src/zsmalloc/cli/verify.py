"""``zsmalloc verify --kernel|--guest DEB|--zswap``: the model against a real kernel.

``--kernel`` runs a random zram workload on a hot-added ``/dev/zramN`` and on
the model side by side (:mod:`zsmalloc.live.verify_zram`).  ``--guest
linux-image-....deb`` boots that kernel package in QEMU, runs the same workload
there and replays it against the model of that kernel (:mod:`zsmalloc.guest.verify`;
no root needed, only QEMU and a C compiler).  ``--zswap`` swaps
a set of pages out through the kernel's zswap and through the model, then
frees or swaps in ``--ops`` of them, and compares the counters after each
phase (:mod:`zsmalloc.live.verify_zswap`); ``zsmalloc zswap verify`` is the
same command (an alias with the same options and defaults).

Exit status: 0 when everything matched, 1 at a divergence (printed with both
rows), 2 when no kernel device can be used (not root, no zram or zswap, a
busy machine; no QEMU for ``--guest``) or on bad input.  Whatever happens, the machine is left as it
was found (devices removed, swap off, parameters restored).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from zsmalloc.errors import KernelUnavailableError
from zsmalloc.live.defaults import GUEST, ZRAM, ZSWAP, CheckDefaults

MODE_DEFAULTS: dict[str, CheckDefaults] = {"zram": ZRAM, "guest": GUEST, "zswap": ZSWAP}


def _both(key: str) -> str:
    values = (ZRAM[key], GUEST[key], ZSWAP[key])  # type: ignore[literal-required]
    return "[zram: {}; guest: {}; zswap: {}]".format(*values)


def check_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of a live check, shared by ``verify`` and ``zswap verify``."""
    options = [
        click.option("--algo", default=None, help=f"Compression algorithm {_both('algorithm')}."),
        click.option(
            "--ops",
            "n_ops",
            default=None,
            type=click.IntRange(0),
            help=f"zram: operations; zswap: frees and swap-ins after the stores {_both('n_ops')}.",
        ),
        click.option("--seed", default=None, type=int, help=f"Workload seed {_both('seed')}."),
        click.option(
            "--pages",
            "nr_pages",
            default=None,
            type=click.IntRange(1),
            help=f"zram: device size; zswap: pages swapped out {_both('nr_pages')}.",
        ),
        click.option(
            "--limit",
            is_flag=True,
            help="zswap: fill the pool to max_pool_percent=1 with incompressible pages, "
            "then offer --pages more (checks pool_limit_hit).",
        ),
        click.option(
            "--save",
            type=click.Path(dir_okay=False),
            default=None,
            help="Save the kernel run as a trace (zram: tests/data format; zswap: "
            "a swap trace with the kernel's values; .gz to compress).",
        ),
        click.option(
            "--process",
            "process_mib",
            type=click.IntRange(16),
            default=None,
            metavar="MIB",
            help="Instead: swap out a real process of MIB MiB (Python objects, numpy arrays, "
            "zero-filled, shared, mlocked and library memory) from a memory cgroup into a "
            "zram device used as swap (--kernel) or through zswap before a swap file "
            "(--zswap), and compare every counter with `zsmalloc estimate --pid` of it.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command("verify")
@click.option("--kernel", "mode", flag_value="zram", help="Check zram against a live zram device.")
@click.option(
    "--guest",
    "packages",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Check zram against this Debian kernel package (linux-image-*.deb; the base/binary/"
    "modules parts of a split one are taken from beside it), booted in QEMU.",
)
@click.option("--zswap", "mode", flag_value="zswap", help="Check zswap against the live kernel.")
@click.option(
    "--accel",
    type=click.Choice(["auto", "kvm", "tcg"]),
    default="auto",
    show_default=True,
    help="--guest: QEMU accelerator (auto: KVM where it runs stock kernels, else TCG).",
)
@click.option(
    "--record",
    is_flag=True,
    help="--guest: record zsmalloc's calls there with `zsmalloc record`'s kprobe events, "
    "replay the recording in the model, compare pool pages and pages_compacted after every "
    "operation (--save: the zs trace).",
)
@click.option(
    "--parallel",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="--record: a guest of two CPUs where, every 50 operations, two tasks write N pages "
    "each at once (calls into the pool overlap).",
)
@check_options
def verify_cmd(
    mode: str | None,
    packages: tuple[str, ...],
    accel: str,
    record: bool,
    parallel: int | None,
    **options: Any,
) -> None:
    """Run a workload on a real kernel and on the model; compare the counters.

    Options left out take the chosen check's defaults (shown in brackets).
    """
    if record and not packages:
        raise click.UsageError("--record checks the recorder in a guest: give --guest DEB")
    if parallel is not None and not record:
        raise click.UsageError("--parallel is for --guest DEB --record")
    if packages:
        if mode is not None:
            raise click.UsageError("--guest checks zram in a guest: not with --kernel or --zswap")
        if record:
            run_record_check(packages, accel=accel, parallel=parallel or 0, **options)
            return
        run_check("guest", packages=packages, accel=accel, **options)
        return
    if mode is None:
        raise click.UsageError("choose what to verify: --kernel (zram), --guest DEB or --zswap")
    run_check(mode, **options)


@click.command("verify")
@check_options
def zswap_verify_cmd(**options: Any) -> None:
    """The live zswap check: the same command as `zsmalloc verify --zswap`."""
    run_check("zswap", **options)


def run_check(
    mode: str,
    *,
    algo: str | None,
    n_ops: int | None,
    seed: int | None,
    nr_pages: int | None,
    limit: bool,
    save: str | None,
    process_mib: int | None,
    as_json: bool,
    packages: tuple[str, ...] = (),
    accel: str = "auto",
) -> None:
    """Run one check with its defaults filled in, print the result, exit with its status."""
    from zsmalloc.cli.live import progress_bar, render_result

    d = MODE_DEFAULTS[mode]
    args: CheckDefaults = {
        "algorithm": d["algorithm"] if algo is None else algo,
        "n_ops": d["n_ops"] if n_ops is None else n_ops,
        "seed": d["seed"] if seed is None else seed,
        "nr_pages": d["nr_pages"] if nr_pages is None else nr_pages,
    }
    if limit and mode != "zswap":
        raise click.UsageError("--limit is for --zswap")
    if process_mib is not None and mode == "guest":
        raise click.UsageError("--process is for --kernel or --zswap, not --guest")
    if process_mib is not None and (limit or save or n_ops is not None or nr_pages is not None):
        raise click.UsageError("--process takes --algo and --seed only")
    try:
        with progress_bar() as progress:
            if process_mib is not None:
                from zsmalloc.live.verify_swap import verify_swap

                result = verify_swap(
                    process_mib,
                    args["algorithm"],
                    seed=args["seed"],
                    zswap=mode == "zswap",
                    progress=progress,
                )
            elif mode == "zram":
                from zsmalloc.live.verify_zram import verify_zram

                result = verify_zram(**args, save=save, progress=progress)
            elif mode == "guest":
                from zsmalloc.guest.verify import verify_guest

                result = verify_guest(packages, **args, save=save, progress=progress, accel=accel)
            else:
                from pathlib import Path

                from zsmalloc.live.verify_zswap import verify_zswap

                result = verify_zswap(
                    args["nr_pages"],
                    seed=args["seed"],
                    compressor=args["algorithm"],
                    churn=args["n_ops"],
                    limit=limit,
                    save=Path(save) if save else None,
                    progress=progress,
                )
    except KernelUnavailableError as exc:
        if as_json:
            click.echo(json.dumps({"ok": None, "error": str(exc)}))
        click.echo(f"zsmalloc: no kernel device can be used: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(render_result(result))
        if save:
            click.echo(f"  kernel run saved to {save}")
    sys.exit(0 if result.ok else 1)


def run_record_check(
    packages: tuple[str, ...],
    *,
    algo: str | None,
    n_ops: int | None,
    seed: int | None,
    nr_pages: int | None,
    limit: bool,
    save: str | None,
    process_mib: int | None,
    as_json: bool,
    accel: str = "auto",
    parallel: int = 0,
) -> None:
    """``verify --guest DEB --record``: print the recording's check, exit with its status."""
    from zsmalloc.guest.record import verify_guest_record

    if limit or process_mib is not None:
        raise click.UsageError("--record takes --algo, --ops, --seed, --pages and --save")
    try:
        check = verify_guest_record(
            packages,
            GUEST["algorithm"] if algo is None else algo,
            GUEST["n_ops"] if n_ops is None else n_ops,
            GUEST["seed"] if seed is None else seed,
            GUEST["nr_pages"] if nr_pages is None else nr_pages,
            save=save,
            accel=accel,
            parallel=parallel,
            cpus=2 if parallel else 1,
        )
    except KernelUnavailableError as exc:
        if as_json:
            click.echo(json.dumps({"ok": None, "error": str(exc)}))
        click.echo(f"zsmalloc: no kernel device can be used: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(check.to_dict(), indent=2))
        sys.exit(0 if check.ok else 1)
    from zsmalloc.cli.record import render_replay

    click.echo(f"{check.release}: {check.ops} operations recorded in the guest, "
               f"{check.counts.events} kprobe events ({'; '.join(check.notes)})")
    click.echo(f"  {check.counts.as_words()}")
    for line in render_replay(check.replay):
        click.echo(f"  {line}")
    if save:
        click.echo(f"  zs trace saved to {save}")
    sys.exit(0 if check.ok else 1)
