"""``estimate --scheduler``: the estimate on a Dask cluster is the single process's.

The cluster is a ``LocalCluster`` of 2 workers in this process (threads), so the tests
take seconds; one test uses 2 worker processes, to kill one.  Without Dask installed
(the ``fleet`` extra) they skip.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_estimate_sources import PAGE, elf_core

from cli_helpers import kernel_mm_stat, run_cli
from zsmalloc.compress import ALGORITHMS
from zsmalloc.errors import ClusterError, InputError
from zsmalloc.estimate import cluster
from zsmalloc.estimate.chunks import Chunk, ChunkResult, TallySpec, tally_chunk
from zsmalloc.estimate.cluster import run_estimate_on_cluster
from zsmalloc.zram.stats import MmStat

distributed = pytest.importorskip("distributed", reason="Dask is the `fleet` extra")

ALGOS = "lzo,lzo-rle,lz4"


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[Any]:
    """2 workers of one thread each, in this process (no start-up cost)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as lc:
        yield lc


@pytest.fixture
def client(local_cluster: Any) -> Iterator[Any]:
    with distributed.Client(local_cluster) as c:
        yield c


@pytest.fixture(scope="module")
def kernel_pages(testdata: Path) -> bytes:
    return gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())


def split_into_files(data: bytes, root: Path, nfiles: int, seed: int) -> list[Path]:
    """The pages cut at random page boundaries into ``nfiles`` files, in subdirectories
    whose sorted walk gives the pages back in order."""
    npages = len(data) // PAGE
    cuts = sorted(random.Random(seed).sample(range(1, npages), nfiles - 1))
    paths = []
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, npages], strict=True)):
        p = root / f"d{i // 10:02d}" / f"part{i:03d}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data[a * PAGE : b * PAGE])
        paths.append(p)
    return paths


def without_timing(report: dict[str, Any]) -> dict[str, Any]:
    """The report minus what depends on the run, not on the pages."""
    inp = report["input"]
    for key in ("elapsed_s", "pages_per_s", "peak_rss_bytes", "cluster"):
        inp.pop(key)
    for algo in report["algorithms"].values():
        if algo["verified_by_replay"]:
            algo["verified_by_replay"].pop("seconds")
    return report


def test_cluster_estimate_is_the_kernels_mm_stat(
    local_cluster: Any,
    kernel_pages: bytes,
    testdata: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The issue's acceptance test: the kernel's 1024 pages cut into 64 files (one
    directory and 5 files given on their own, in page order), estimated on 2 workers in
    tasks of 40 pages: mm_stat equals the kernel's for every algorithm, before and after
    compaction (zs_compact run on a Pool with --compact)."""
    files = split_into_files(kernel_pages, tmp_path / "tree", 64, seed=1)
    # The last five files, moved out of the tree, follow it as SOURCE arguments.
    loose = []
    for p in files[-5:]:
        q = tmp_path / f"loose-{p.name}"
        p.rename(q)
        loose.append(str(q))
    args = ["estimate", str(tmp_path / "tree"), *loose, "--algo", ALGOS, "--json", "--compact"]
    args += ["--scheduler", local_cluster.scheduler_address, "--task-pages", "40"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    rep = json.loads(out)
    assert rep["input"]["pages"] == 1024
    assert rep["input"]["cluster"]["workers"] == 2
    assert rep["input"]["cluster"]["tasks"] > 2 * 6  # many tasks, for both workers
    assert [s["label"] for s in rep["input"]["sources"]] == [str(tmp_path / "tree"), *loose]
    expected = kernel_mm_stat(testdata)
    assert set(expected) == set(ALGOS.split(","))
    for algo, (before, after) in expected.items():
        got = rep["algorithms"][algo]
        assert MmStat(**got["mm_stat"]) == before
        assert MmStat(**got["mm_stat_after_compact"]) == after
        assert got["compaction_run_in_pool"] is True


@pytest.mark.parametrize("zram_as", [[], ["--as", "swap"]])
def test_cluster_report_is_the_single_process_report(
    local_cluster: Any,
    kernel_pages: bytes,
    tmp_path: Path,
    zram_as: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every kind of SOURCE at once (a directory, a raw image, a gzip image, an ELF core
    cut inside its segments), every algorithm, with --compact --classes --zswap --verify:
    the JSON is the single process's, field for field, but for timings and the cluster's
    description.  Also with the swap rules (--as swap: zero-filled pages to the swap
    zero map, counted per source)."""
    split_into_files(kernel_pages[: 400 * PAGE], tmp_path / "tree", 9, seed=2)
    (tmp_path / "image").write_bytes(kernel_pages[400 * PAGE : 700 * PAGE] + b"tail")
    (tmp_path / "image.gz").write_bytes(gzip.compress(kernel_pages[700 * PAGE : 800 * PAGE]))
    segs = [(0x400000, kernel_pages[800 * PAGE : 900 * PAGE + 99]), (0x7F00000, b"\7" * 5000)]
    (tmp_path / "core").write_bytes(elf_core(segs))
    srcs = [str(tmp_path / n) for n in ("tree", "image", "image.gz", "core")]
    every = ",".join(ALGORITHMS)
    flags = ["--algo", every, "--json", "--compact", "--classes", "--zswap", "--verify"]
    flags += zram_as
    code, out, _ = run_cli(["estimate", *srcs, *flags], capsys)
    assert code == 0
    single = json.loads(out)
    on_cluster = [*flags, "--scheduler", local_cluster.scheduler_address, "--task-pages", "33"]
    code, out, _ = run_cli(["estimate", *srcs, *on_cluster], capsys)
    assert code == 0
    distributed_rep = json.loads(out)
    assert distributed_rep["input"]["cluster"]["tasks"] > 10
    assert single["input"]["cluster"] is None
    for r in distributed_rep["algorithms"].values():  # replay_check raises on a mismatch
        assert r["verified_by_replay"]["replayed_pages"] == single["input"]["pages"]
    assert list(single["algorithms"]) == list(ALGORITHMS)
    zero_mapped = sum(s["zero_map_pages"] for s in single["input"]["sources"])
    assert (zero_mapped > 0) == bool(zram_as)  # the kernel's pages have zero-filled ones
    assert single["input"]["pages"] + zero_mapped == 904
    assert without_timing(distributed_rep) == without_timing(single)


def test_text_report_says_where_it_was_computed(
    local_cluster: Any, kernel_pages: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split_into_files(kernel_pages, tmp_path, 4, seed=7)
    args = ["estimate", str(tmp_path), "--algo", "lz4", "--task-pages", "300"]
    code, out, _ = run_cli([*args, "--scheduler", local_cluster.scheduler_address], capsys)
    assert code == 0
    assert (
        f"computed on a Dask cluster ({local_cluster.scheduler_address}): 4 tasks of up to "
        "300 pages on 2 workers" in " ".join(out.split())
    )


def test_progress_follows_the_chunks(client: Any, kernel_pages: bytes, tmp_path: Path) -> None:
    split_into_files(kernel_pages, tmp_path, 20, seed=3)
    seen: list[Any] = []
    done: list[int] = []
    tally = run_estimate_on_cluster(
        client,
        [str(tmp_path)],
        ["lz4"],
        task_pages=100,
        on_plan=lambda plan, run: seen.append((plan.total_pages, len(plan.chunks), run.workers)),
        on_chunk=done.append,
    )
    assert seen == [(1024, len(done), 2)]
    assert sum(done) == tally.pages == 1024


ATTEMPTS: dict[int, int] = {}  # chunk index -> attempts (the workers are threads here)


def flaky(chunk: Chunk, spec: TallySpec) -> ChunkResult:
    """tally_chunk, but every chunk's first attempt breaks its worker's task."""
    ATTEMPTS[chunk.index] = ATTEMPTS.get(chunk.index, 0) + 1
    if ATTEMPTS[chunk.index] == 1:
        raise RuntimeError(f"worker broke on chunk {chunk.index}")
    return tally_chunk(chunk, spec)


def test_task_errors_are_retried(
    client: Any, kernel_pages: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every task fails once: Dask runs it again and the estimate is still exact."""
    split_into_files(kernel_pages, tmp_path, 8, seed=4)
    want = run_estimate_on_cluster(client, [str(tmp_path)], ["lzo"], task_pages=200)
    ATTEMPTS.clear()
    monkeypatch.setattr(cluster, "tally_chunk", flaky)
    got = run_estimate_on_cluster(client, [str(tmp_path)], ["lzo"], task_pages=200)
    assert want.cluster is not None
    assert len(ATTEMPTS) == want.cluster["tasks"] and set(ATTEMPTS.values()) == {2}
    assert np.array_equal(got.len_hist["lzo"], want.len_hist["lzo"])
    assert got.same_pages == want.same_pages
    # More failures than retries: one line naming what failed, not a traceback.
    ATTEMPTS.clear()
    with pytest.raises(ClusterError, match="worker broke on chunk"):
        run_estimate_on_cluster(client, [str(tmp_path)], ["lzo"], task_pages=200, retries=0)


def test_unreadable_files_are_reported_never_dropped(
    client: Any, kernel_pages: bytes, tmp_path: Path
) -> None:
    """A file of a directory gone between plan and read is skipped, counted and named;
    a SOURCE gone is an error naming it, as without a cluster."""
    files = split_into_files(kernel_pages, tmp_path / "tree", 10, seed=5)
    gone = files[3]
    lost = gone.stat().st_size // PAGE
    tally = run_estimate_on_cluster(
        client,
        [str(tmp_path / "tree")],
        ["lz4"],
        task_pages=64,
        on_plan=lambda plan, run: gone.unlink(),
    )
    (src,) = tally.sources
    assert src.skipped.get("unreadable files") == 1
    assert tally.pages == 1024 - lost
    assert tally.cluster is not None
    assert any(str(gone) in line for line in tally.cluster["unreadable_files"])
    image = tmp_path / "image"
    image.write_bytes(kernel_pages)
    with pytest.raises(InputError, match=f"{image}: no such file or directory"):
        run_estimate_on_cluster(
            client, [str(image)], ["lz4"], task_pages=64, on_plan=lambda plan, run: image.unlink()
        )
    with pytest.raises(InputError, match="/nonexistent: no such file or directory"):
        run_estimate_on_cluster(client, ["/nonexistent"], ["lz4"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--scheduler", "local", "--pid", "1"], "--scheduler: give the SOURCE paths"),
        (["--scheduler", "local"], "--scheduler: give the SOURCE paths"),
        (["README.md", "--workers", "2"], "--workers sizes a local Dask cluster"),
        (["-", "--scheduler", "{address}"], "standard input cannot be cut"),
        (["README.md", "--scheduler", "{address}", "--workers", "2"], "--workers sizes a local"),
    ],
)
def test_cluster_usage_errors_are_one_line(
    local_cluster: Any, args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.format(address=local_cluster.scheduler_address) for a in args]
    code, out, err = run_cli(["estimate", *args], capsys)
    assert code == 2 and out == ""
    assert err.startswith("zsmalloc: error: ") and needle in err and err.count("\n") == 1


def test_unreachable_scheduler_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    code, _, err = run_cli(["estimate", "README.md", "--scheduler", "tcp://127.0.0.1:9"], capsys)
    assert code == 2
    assert "zsmalloc: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err


def test_without_scheduler_nothing_of_dask_is_imported(testdata: Path) -> None:
    """The whole estimate command, in a fresh interpreter: no dask, no distributed."""
    code = (
        "import sys\n"
        "from zsmalloc.cli.main import main\n"
        "try:\n"
        f"    main(['estimate', {str(testdata / 'shared_pages.bin.gz')!r}, '--json',"
        " '--compact', '--zswap'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "assert not bad, bad\n"
        "assert 'zsmalloc.estimate.cluster' not in sys.modules\n"
        "print('clean')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.rstrip().endswith("clean")
    assert json.loads(out.rstrip()[: -len("clean")])["input"]["pages"] == 1024


def die_once(marker: str, chunk: Chunk, spec: TallySpec) -> ChunkResult:
    """tally_chunk, but the worker process running chunk 1 first dies outright."""
    if chunk.index == 1 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)
    return tally_chunk(chunk, spec)


def test_a_dead_worker_is_replaced_and_its_task_rerun(
    kernel_pages: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 worker processes; one dies in the middle of a task: the nanny starts a new
    one, the scheduler runs the task again, and the estimate is exact."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    split_into_files(kernel_pages, tmp_path / "tree", 6, seed=6)
    marker = tmp_path / "died"
    monkeypatch.setattr(cluster, "tally_chunk", functools.partial(die_once, str(marker)))
    environ = dict(os.environ)
    try:
        with cluster.connect("local", workers=2) as c:
            got = run_estimate_on_cluster(c, [str(tmp_path / "tree")], ["lz4"], task_pages=200)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists() and int(marker.read_text()) != os.getpid()
    # The nannies set MALLOC_TRIM_THRESHOLD_ and friends in our environment to spawn
    # their workers (the replacement too); none of it outlives the cluster.
    assert dict(os.environ) == environ
    monkeypatch.undo()
    from zsmalloc.estimate.driver import run_estimate
    from zsmalloc.estimate.sources import open_path

    want = run_estimate([open_path(tmp_path / "tree", PAGE)], ["lz4"])
    assert np.array_equal(got.len_hist["lz4"], want.len_hist["lz4"])
    assert (got.pages, got.same_pages) == (want.pages, want.same_pages)


def test_cluster_zswap_on_61_is_what_the_guest_measured(
    local_cluster: Any,
    testdata: Path,
    kernel_pages: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """zbud and z3fold pack pages in swap-out order: chunks that finish out of order
    must still reach them in page order, so each pool's figures are the 6.1 guest's."""
    rec_dir = testdata / "kernels" / "zswap-6.1"
    want = {}
    for p in rec_dir.glob("shared-*-*.txt"):
        _, zpool, comp = p.stem.split("-")
        after = p.read_text().split("# after\n", 1)[1]
        vals = dict(line.split() for line in after.splitlines()[:2])  # same_filled, stored
        size = next(ln for ln in after.splitlines() if ln.startswith("pool_total_size"))
        want[(zpool, comp)] = (int(size.split()[1]), int(vals["stored_pages"]))
    flags = ["--algo", "lzo,lz4", "--json", "--zswap", "--kernel", "6.1"]
    on_cluster = [*flags, "--scheduler", local_cluster.scheduler_address, "--task-pages", "33"]
    (tmp_path / "image").write_bytes(kernel_pages)  # raw: cut into 32 chunks
    code, out, err = run_cli(["estimate", str(tmp_path / "image"), *on_cluster], capsys)
    assert code == 0, err
    algos = json.loads(out)["algorithms"]
    got = {(pool, a): (v["pool_total_size"], v["stored_pages"])
           for a in ("lzo", "lz4") for pool, v in algos[a]["zswap_pools"].items()}
    assert got == want
