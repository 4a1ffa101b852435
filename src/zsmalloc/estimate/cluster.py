"""``estimate --scheduler``: the same estimate, computed on a Dask cluster.

A corpus too big for one host (terabytes of VM images or crash dumps) is cut
into chunks (:mod:`zsmalloc.estimate.chunks`); each chunk is one Dask task
that reads its pages where they live and sends back a tally, never pages.
Tallies add up exactly (:meth:`Tally.merge <zsmalloc.estimate.driver.Tally.merge>`),
so the report equals the single process's, ``--compact``, ``--classes``,
``--zswap`` and ``--verify`` included.

Who reads what:

* the plan (walking directories, reading ELF headers, sizing files) is itself
  a task, run on a worker: the paths must mean the same files on every worker
  (shared storage, or the same paths on each machine), not on this client;
* each chunk task reads its own byte ranges and compresses them with every
  algorithm; the client merges the tallies as they arrive, so memory stays
  bounded however many chunks there are.

Failures: a task that raises (a worker's own error) is retried by Dask
(``retries``); a worker that dies is replaced and its tasks rescheduled by the
scheduler (its ``allowed-failures``).  A SOURCE that cannot be read fails the
estimate with one line naming it, as without a cluster; a file inside a
directory that cannot be read is skipped, counted and named, never dropped
silently.

``local`` starts a ``LocalCluster`` of single-threaded worker processes, each
with one compressor thread (parallelism comes from the workers; threads of one
worker process take turns compressing, see driver.py).  Dask is imported only
here, and this module only with ``--scheduler``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from zsmalloc.errors import ClusterError, InputError
from zsmalloc.estimate.chunks import (
    STDIN_REFUSED,
    TASK_PAGES,
    ChunkResult,
    Plan,
    TallySpec,
    plan_chunks,
    tally_chunk,
)
from zsmalloc.estimate.driver import (
    CompressorSetup,
    SourceSummary,
    Tally,
    check_algorithms,
    check_not_empty,
    new_tally,
    peak_rss_bytes,
    warm_up,
)
from zsmalloc.estimate.swap import BLOCK_RULES, SwapRules
from zsmalloc.profile import DEFAULT_PROFILE

if TYPE_CHECKING:
    from distributed import Client

LOCAL = "local"
RETRIES = 2  # per task, for errors raised on a worker (a dead worker is the scheduler's)
CONNECT_TIMEOUT_S = 30
WORKERS_TIMEOUT_S = 60  # for a scheduler whose workers are still starting


@dataclass
class ClusterRun:
    """What the cluster did, for the report's ``input.cluster``."""

    scheduler: str
    workers: int
    threads: int
    tasks: int = 0
    task_pages: int = TASK_PAGES
    unreadable: list[str] = field(default_factory=list)  # member files, "path: reason"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scheduler": self.scheduler,
            "workers": self.workers,
            "threads": self.threads,
            "tasks": self.tasks,
            "task_pages": self.task_pages,
            "unreadable_files": self.unreadable,
        }


@contextmanager
def connect(address: str, workers: int | None = None) -> Iterator[Client]:
    """A client of the scheduler at ``address``, or of a new LocalCluster (``local``).

    ``workers``: how many worker processes ``local`` starts (default: one per CPU).
    """
    import logging

    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(
            "--scheduler needs Dask's distributed scheduler: pip install 'zsmalloc[fleet]'"
        ) from None

    if address == LOCAL:
        n = workers or os.cpu_count() or 1
        with _environ_kept():
            try:
                cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # a free port: 8787 may be taken
                    silence_logs=logging.ERROR,
                    # One compressor thread per worker: the workers are the parallelism.
                    env={"NUMBA_NUM_THREADS": "1"},
                )
            except Exception as exc:  # distributed raises many kinds; all mean "no cluster"
                raise ClusterError(f"cannot start a local Dask cluster: {exc}") from None
            try:
                with Client(cluster) as client:
                    yield client
            finally:
                cluster.close()
        return
    if workers is not None:
        raise InputError("--workers sizes a local cluster only (--scheduler local)")
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        yield client


@contextmanager
def _environ_kept() -> Iterator[None]:
    """``os.environ`` as it was on entry, again on exit.

    Each nanny of a local cluster writes its workers' environment (MALLOC_TRIM_THRESHOLD_,
    OMP_NUM_THREADS, ...) into ours before it spawns them: left there, every process we
    start later would inherit a retuned malloc and single-threaded BLAS.
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def _gather_result(fut: Any, what: str) -> Any:
    """``fut.result()``, with the cluster's own failures turned into one line."""
    from distributed import KilledWorker

    try:
        return fut.result()
    except (InputError, ClusterError, AssertionError):
        raise  # a user's error as it is; an InvariantError (a bug) keeps its traceback
    except KilledWorker as exc:
        raise ClusterError(f"{what}: the workers running it kept dying ({exc})") from None
    except ImportError as exc:
        raise ClusterError(
            f"{what}: a worker cannot import zsmalloc ({exc}); install the same "
            "zsmalloc on every worker"
        ) from None
    except Exception as exc:  # retried RETRIES times already; anything else is fatal
        raise ClusterError(f"{what} failed on the cluster: {type(exc).__name__}: {exc}") from None


def plan_on_cluster(client: Client, paths: Sequence[str], page_size: int, task_pages: int) -> Plan:
    """Cut the input into chunks, on a worker (which sees the paths as the tasks will)."""
    if "-" in paths:  # refused here: a worker's standard input is not ours
        raise InputError(STDIN_REFUSED)
    # Relative paths mean this client's directory (the workers' may be another).
    absolute = [os.path.abspath(p) for p in paths]
    fut = client.submit(plan_chunks, absolute, page_size, task_pages, pure=False)
    plan: Plan = _gather_result(fut, "planning the chunks")
    for src, given in zip(plan.sources, paths, strict=True):
        src.label = given  # as the user named it, as the single process does
    return plan


def run_estimate_on_cluster(
    client: Client,
    paths: Sequence[str],
    algos: Sequence[str],
    *,
    page_size: int = DEFAULT_PROFILE.page_size,
    level: int | None = None,
    zswap: bool = False,
    keep_lengths: bool = False,
    rules: SwapRules = BLOCK_RULES,
    kernel: str = DEFAULT_PROFILE.version,
    winbits: int | None = None,
    task_pages: int = TASK_PAGES,
    retries: int = RETRIES,
    warm: bool = True,
    on_plan: Callable[[Plan, ClusterRun], None] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> Tally:
    """:func:`~zsmalloc.estimate.driver.run_estimate` for ``paths``, on ``client``'s cluster.

    ``warm`` first loads the compressors on every worker (not timed, as one
    process's warm-up is not).  ``on_plan(plan, run)`` is called once the chunks
    are known, ``on_chunk(n)`` as each chunk of ``n`` pages is merged.  Ctrl-C
    cancels the remaining tasks and returns the tally so far, ``interrupted``
    set.  The tally's ``cluster`` says how it was computed.
    """
    from distributed import as_completed

    setup = CompressorSetup(kernel, page_size, level, winbits)
    algos = check_algorithms(algos, setup=setup)
    spec = TallySpec(tuple(algos), page_size, level, zswap, keep_lengths, rules, setup)
    tally = new_tally(algos, keep_lengths=keep_lengths, zswap=zswap, setup=setup)
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
    except TimeoutError:
        raise ClusterError(
            f"no worker joined the Dask scheduler in {WORKERS_TIMEOUT_S} s"
        ) from None
    if warm:
        # Compile or load the compressors on every worker now, as the single process
        # does before its pass: the pass's time is then the pass's, on either side.
        try:
            client.run(warm_up, algos, page_size, level, setup)
        except Exception as exc:  # a worker's own failure, whatever it is: one line
            raise ClusterError(f"loading the compressors on the workers failed: {exc}") from None
    # Asked of the scheduler now (scheduler_info() is a cache a background refresh
    # may empty of workers).
    nthreads = client.nthreads()
    run = ClusterRun(
        scheduler=client.scheduler.address if client.scheduler else "?",
        workers=len(nthreads),
        threads=sum(nthreads.values()),
        task_pages=task_pages,
    )
    t0 = time.perf_counter()
    plan = plan_on_cluster(client, paths, page_size, task_pages)
    run.tasks = len(plan.chunks)
    if on_plan is not None:
        on_plan(plan, run)
    summaries = [SourceSummary(s.label, s.kind, 0, {}, rules) for s in plan.sources]
    lengths: dict[int, dict[str, list[np.ndarray]]] = {}
    zlengths: dict[int, dict[str, list[np.ndarray]]] = {}  # zbud and z3fold pack in order
    futures = client.map(tally_chunk, plan.chunks, spec=spec, retries=retries, pure=False)
    try:
        for fut in as_completed(futures):
            res: ChunkResult = _gather_result(fut, "a chunk")
            fut.release()
            if res.error is not None:
                raise res.error
            if res.tally.lengths is not None:
                lengths[res.index] = res.tally.lengths
                res.tally.lengths = {a: [] for a in algos}
            if res.tally.zswap_lengths is not None:
                zlengths[res.index] = res.tally.zswap_lengths
                res.tally.zswap_lengths = {a: [] for a in algos}
            tally.merge(res.tally)
            summaries[res.source].merge(res.summary)
            run.unreadable += res.unreadable
            if on_chunk is not None:
                on_chunk(res.tally.pages)
    except KeyboardInterrupt:
        tally.interrupted = True
    finally:
        client.cancel(futures)
        tally.elapsed = time.perf_counter() - t0
        tally.peak_rss = peak_rss_bytes()
    if tally.lengths is not None:  # back in page order, for --verify's replay
        for idx in sorted(lengths):
            for a in algos:
                tally.lengths[a].extend(lengths[idx][a])
    if tally.zswap_lengths is not None:  # swap-out order: the order zbud and z3fold pack
        for idx in sorted(zlengths):
            for a in algos:
                tally.zswap_lengths[a].extend(zlengths[idx][a])
    tally.sources = summaries
    tally.cluster = run.as_dict()
    check_not_empty(tally)
    return tally
