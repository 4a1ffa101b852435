"""Cutting the input into chunks: every page exactly once, in order, as one pass reads it.

No Dask here: the chunks are tallied one after another in this process (the cluster
tests run the same chunks on workers).
"""

from __future__ import annotations

import gzip
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_estimate_sources import PAGE, drain, elf_core

from cli_helpers import kernel_mm_stat
from zsmalloc.errors import InputError
from zsmalloc.estimate.chunks import (
    MAX_PARTS,
    STDIN_REFUSED,
    UNREADABLE_FILE_PARTS,
    UNREADABLE_FILES,
    TallySpec,
    open_chunk,
    plan_chunks,
    tally_chunk,
)
from zsmalloc.estimate.driver import new_tally, run_estimate
from zsmalloc.estimate.fill import fill_state
from zsmalloc.estimate.sources import open_path
from zsmalloc.profile import KernelProfile
from zsmalloc.zs.size_class import class_table


def pages_of_one_pass(paths: list[str]) -> tuple[np.ndarray, list[dict[str, int]]]:
    """The pages (and skip counts) the single pass reads from ``paths``, in order."""
    srcs = [open_path(p, PAGE) for p in paths]
    pages = np.concatenate([drain(s, chunk=5) for s in srcs])
    return pages, [dict(s.skipped) for s in srcs]


def pages_of_chunks(paths: list[str], task_pages: int) -> tuple[np.ndarray, list[dict[str, int]]]:
    """The pages the chunks of ``paths`` read, chunk after chunk, and skips per SOURCE."""
    plan = plan_chunks(paths, PAGE, task_pages)
    assert [c.index for c in plan.chunks] == list(range(len(plan.chunks)))
    skipped: list[dict[str, int]] = [{} for _ in paths]
    out = [np.zeros((0, PAGE), dtype=np.uint8)]
    for chunk in plan.chunks:
        src = open_chunk(chunk, PAGE)
        out.append(drain(src, chunk=3))
        for k, v in src.skipped.items():
            skipped[chunk.source][k] = skipped[chunk.source].get(k, 0) + v
    return np.concatenate(out), skipped


@given(
    files=st.lists(st.integers(0, 9 * PAGE), min_size=1, max_size=8),
    image=st.integers(0, 11 * PAGE + 3),
    segments=st.lists(st.integers(1, 5 * PAGE + 7), min_size=0, max_size=4),
    truncate=st.integers(0, 3 * PAGE),
    task_pages=st.integers(1, 12),
)
def test_chunks_read_the_pages_of_one_pass(
    tmp_path_factory: pytest.TempPathFactory,
    files: list[int],
    image: int,
    segments: list[int],
    truncate: int,
    task_pages: int,
) -> None:
    """A directory (files of any size, in subdirectories), a raw image, a gzip image and
    an ELF core (truncated or not): cut at any task size, the chunks hold exactly the
    pages one pass reads, in the same order, with the same skip counts."""
    root = tmp_path_factory.mktemp("in")
    rng = np.random.default_rng(len(files) * 1000 + image)

    def blob(n: int) -> bytes:
        # Half random bytes, half a repeated byte: a mix of page kinds.
        return rng.integers(0, 256, n // 2, dtype=np.uint8).tobytes() + b"\x05" * (n - n // 2)

    d = root / "tree"
    for i, n in enumerate(files):
        p = d / f"s{i % 3}" / f"f{i:02d}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob(n))
    (root / "image").write_bytes(blob(image))
    (root / "image.gz").write_bytes(gzip.compress(blob(image)))
    core = elf_core([(0x10000 * (i + 1), blob(n)) for i, n in enumerate(segments)])
    headers = 64 + 56 * (len(segments) + 1) + 20  # ELF and program headers, the note
    (root / "core").write_bytes(core[: max(headers, len(core) - truncate)])
    paths = [str(d), str(root / "image"), str(root / "image.gz"), str(root / "core")]

    want, want_skipped = pages_of_one_pass(paths)
    got, got_skipped = pages_of_chunks(paths, task_pages)
    assert np.array_equal(got, want)
    assert got_skipped == want_skipped


def test_a_chunk_names_pages_it_never_holds(tmp_path: Path) -> None:
    """What is sent to a worker is a path and a range: a 1 GiB image is 16 chunks of
    64 MiB, each a few hundred bytes pickled; a directory of many files packs them."""
    big = tmp_path / "big.img"
    with open(big, "wb") as f:
        f.truncate(2**30)  # sparse: nothing is read here
    plan = plan_chunks([str(big)], PAGE)
    assert len(plan.chunks) == 16 and plan.total_pages == 2**30 // PAGE
    assert [c.pages for c in plan.chunks] == [16384] * 16
    assert max(len(pickle.dumps(c)) for c in plan.chunks) < 512
    many = tmp_path / "many"
    many.mkdir()
    for i in range(MAX_PARTS + 10):
        (many / f"{i:05d}").write_bytes(b"")
    plan = plan_chunks([str(many)], PAGE)
    assert [len(c.parts) for c in plan.chunks] == [MAX_PARTS, 10]


def test_sources_refused_or_missing_as_in_one_pass() -> None:
    with pytest.raises(InputError) as one_pass:
        open_path("/nonexistent/x.img", PAGE)
    with pytest.raises(InputError) as chunked:
        plan_chunks(["/nonexistent/x.img"], PAGE)
    assert str(chunked.value) == str(one_pass.value)
    with pytest.raises(InputError, match="standard input") as exc:
        plan_chunks(["-"], PAGE)
    assert str(exc.value) == STDIN_REFUSED
    with pytest.raises(InputError, match="at least 1"):
        plan_chunks(["README.md"], PAGE, 0)


def test_an_unreadable_file_is_counted_once_and_named(tmp_path: Path) -> None:
    """A file of a directory gone between plan and read: skipped and counted once, as one
    pass counts it, however many chunks it was cut into; its later ranges apart."""
    (tmp_path / "a").write_bytes(b"a" * PAGE * 2)
    (tmp_path / "b").write_bytes(b"b" * PAGE * 7)
    (tmp_path / "c").write_bytes(b"c" * PAGE)
    plan = plan_chunks([str(tmp_path)], PAGE, 3)
    (tmp_path / "b").unlink()
    spec = TallySpec(("lz4",), PAGE)
    results = [tally_chunk(c, spec) for c in plan.chunks]
    assert all(r.error is None for r in results)
    skipped: dict[str, int] = {}
    for r in results:
        for k, v in r.summary.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
    assert skipped == {UNREADABLE_FILES: 1, UNREADABLE_FILE_PARTS: 2}
    assert sum(r.tally.pages for r in results) == 3  # a and c
    named = [line for r in results for line in r.unreadable]
    assert len(named) == 3 and all(f"{tmp_path / 'b'}: no such file" in n for n in named)


def test_a_source_failing_is_returned_not_raised(tmp_path: Path) -> None:
    """The SOURCE itself failing is fatal, as in one pass, but comes back as a value:
    the scheduler must not retry what would fail again."""
    img = tmp_path / "img"
    img.write_bytes(b"x" * PAGE * 4)
    (chunk,) = plan_chunks([str(img)], PAGE).chunks
    img.unlink()
    res = tally_chunk(chunk, TallySpec(("lz4",), PAGE))
    assert isinstance(res.error, InputError)
    assert str(res.error) == f"{img}: no such file or directory"


def test_merged_chunk_tallies_give_the_kernels_mm_stat(testdata: Path, tmp_path: Path) -> None:
    """The acceptance test without a cluster: the kernel's pages cut into 57 files, the
    chunks tallied in a random order and merged: the kernel's mm_stat, every algorithm."""
    data = gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())
    cuts = sorted(random.Random(13).sample(range(1, 1024), 56))
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, 1024], strict=True)):
        p = tmp_path / f"d{i % 4}" / f"part{i:02d}"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data[a * PAGE : b * PAGE])
    algos = ("lzo", "lzo-rle", "lz4")
    plan = plan_chunks([str(tmp_path)], PAGE, 50)
    order = list(range(len(plan.chunks)))
    random.Random(7).shuffle(order)
    total = new_tally(algos, PAGE)
    for i in order:
        res = tally_chunk(plan.chunks[i], TallySpec(algos, PAGE))
        total.merge(res.tally)
    table = class_table(KernelProfile())
    assert total.pages == 1024
    for algo, (before, after) in kernel_mm_stat(testdata).items():
        st_ = fill_state(total.len_hist[algo], total.same_pages, table)
        assert st_.mm_stat() == before
        assert st_.mm_stat(compacted=True) == after


def test_merge_refuses_tallies_of_another_kind() -> None:
    a = new_tally(["lz4"], PAGE)
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(new_tally(["lzo"], PAGE))
    with pytest.raises(ValueError, match="keep_lengths"):
        a.merge(new_tally(["lz4"], PAGE, zswap=True))


def test_merge_adds_up_exactly(testdata: Path) -> None:
    """Two passes over halves, merged, are the pass over the whole (per-page order too)."""
    data = gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes())
    from zsmalloc.estimate.sources import ArraySource

    kw = {"keep_lengths": True, "zswap": True}
    whole = run_estimate([ArraySource(data, PAGE)], ["lzo-rle"], **kw)  # type: ignore[arg-type]
    first = run_estimate([ArraySource(data[: 300 * PAGE], PAGE)], ["lzo-rle"], **kw)  # type: ignore[arg-type]
    second = run_estimate([ArraySource(data[300 * PAGE :], PAGE)], ["lzo-rle"], **kw)  # type: ignore[arg-type]
    first.merge(second)
    assert (first.pages, first.same_pages) == (whole.pages, whole.same_pages)
    assert np.array_equal(first.len_hist["lzo-rle"], whole.len_hist["lzo-rle"])
    assert first.zswap_hist is not None and whole.zswap_hist is not None
    assert np.array_equal(first.zswap_hist["lzo-rle"], whole.zswap_hist["lzo-rle"])
    assert np.array_equal(first.page_lengths("lzo-rle"), whole.page_lengths("lzo-rle"))
    assert len(first.sources) == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_mode_is_counted(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"s" * 10)
    (tmp_path / "secret").chmod(0)
    (tmp_path / "open").write_bytes(b"o" * 10)
    _, want = pages_of_one_pass([str(tmp_path)])
    _, got = pages_of_chunks([str(tmp_path)], 4)
    assert got == want == [{UNREADABLE_FILES: 1}]


@pytest.mark.parametrize(
    ("size", "cut", "delivered", "lost"),
    [
        (4097, 2, 1, 1),  # page 1 read but its last byte, page 2 missing
        (8192, 4097, 1, 1),  # the same in a two-page segment: one page missing, not two
        (3 * PAGE, PAGE, 2, 1),
        (3 * PAGE, 3 * PAGE, 0, 3),
    ],
)
def test_a_truncated_core_counts_the_pages_it_misses(
    tmp_path: Path, size: int, cut: int, delivered: int, lost: int
) -> None:
    """Pages past the end: the segment's pages after the last one read, however the
    reads and the chunks cut the segment."""
    core = elf_core([(0x10000, b"\x07" * size)])
    (tmp_path / "core").write_bytes(core[: len(core) - cut])
    for buf in (1, 2, 5):
        src = open_path(tmp_path / "core", PAGE)
        assert len(drain(src, chunk=buf)) == delivered
        assert src.skipped == {"pages past the end of a truncated core": lost}
    for task_pages in (1, 2, 7):
        pages, skipped = pages_of_chunks([str(tmp_path / "core")], task_pages)
        assert len(pages) == delivered
        assert skipped == [{"pages past the end of a truncated core": lost}]
