"""``zsmalloc verify --kernel|--zswap``: the model against the running kernel, live.

``--kernel`` runs a random zram workload on a hot-added ``/dev/zramN`` and on
the model side by side (:mod:`zsmalloc.kernel.verify`).  Exit status: 0 when
every operation matched, 1 at the first divergence (printed with both rows),
2 when no kernel device can be used (not root, no zram) or on bad input.
The device is always removed.

Other modes plug in as modules with a ``run_cli(**options) -> int`` function
taking the common options below and returning the exit status; ``--zswap``
is dispatched to ``zsmalloc.zswap.verify``.
"""

from __future__ import annotations

import importlib
import json
import sys

import click

from zsmalloc.errors import KernelUnavailableError

MODES = {"kernel": "zsmalloc.kernel.verify", "zswap": "zsmalloc.zswap.verify"}


@click.command("verify")
@click.option(
    "--kernel", "mode", flag_value="kernel", help="Check zram against a live zram device."
)
@click.option("--zswap", "mode", flag_value="zswap", help="Check zswap against the live kernel.")
@click.option("--algo", default=None, help="Compression algorithm [zram: lzo-rle].")
@click.option(
    "--ops", "n_ops", default=None, type=click.IntRange(0), help="Operations [zram: 2000]."
)
@click.option("--seed", default=None, type=int, help="Workload seed [1].")
@click.option(
    "--pages",
    "nr_pages",
    default=None,
    type=click.IntRange(1),
    help="Device size in pages [zram: 256].",
)
@click.option(
    "--save",
    type=click.Path(dir_okay=False),
    default=None,
    help="Save the kernel run as a trace (shared/testdata format; .gz to compress).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_cmd(
    mode: str | None,
    algo: str | None,
    n_ops: int | None,
    seed: int | None,
    nr_pages: int | None,
    save: str | None,
    as_json: bool,
) -> None:
    """Run a random workload on the live kernel and on the model; compare after every step.

    Options left out take the chosen mode's defaults (shown in brackets).
    """
    if mode is None:
        raise click.UsageError("choose what to verify: --kernel (zram) or --zswap")
    try:
        module = importlib.import_module(MODES[mode])
    except ModuleNotFoundError:
        click.echo(f"zsmalloc: error: verify --{mode} is not available in this build", err=True)
        sys.exit(2)
    given = {"algo": algo, "n_ops": n_ops, "seed": seed, "nr_pages": nr_pages, "save": save}
    options = {k: v for k, v in given.items() if v is not None}
    try:
        status = module.run_cli(as_json=as_json, **options)
    except KernelUnavailableError as exc:
        if as_json:
            click.echo(json.dumps({"ok": None, "error": str(exc)}))
        click.echo(f"zsmalloc: no kernel device can be used: {exc}", err=True)
        sys.exit(2)
    sys.exit(status)
