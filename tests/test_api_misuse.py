"""The README's promise, fuzzed: every user mistake is a ZsmallocError and changes nothing.

"Every user mistake raises a subclass of zsmalloc.ZsmallocError naming the problem
and leaves every structure as it was."  Hypothesis drives a Pool, a Zram device and
a Zswap model through random sequences of their public methods, each argument drawn
either from plausible values (so calls succeed and the state moves on) or from a
zoo of wrong ones: floats where integers go (4096.0), bools, None, str where bytes
go, huge and negative integers, numpy scalars and arrays of odd dtypes, containers,
unicode digits, NUL bytes.  After every call:

* nothing but a ZsmallocError may come out (no TypeError, IndexError, OverflowError,
  numba typing error, ...), and its message is not empty;
* a refused call leaves a snapshot of the whole model as it was.

Failures that are not refusals but the model running out, as the kernel's would
(OutOfMemoryError over mem_limit, after the pages before it were stored; EIO/ENOSPC
reported by writeback after the slots it did write back), are exempt from the
snapshot rule: the kernel keeps that partial work too.
"""

from __future__ import annotations

import errno
import math
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zs.zs_helpers import snapshot as pool_snapshot
from zsmalloc import OutOfMemoryError, Pool, Zram, ZsmallocError, Zswap
from zsmalloc.errors import SysfsError
from zsmalloc.zswap.params import ZswapParams

PAGE = 4096

WRONG: list[object] = [
    None, True, False, 0.0, 1.5, 4096.0, -1.0, math.nan, math.inf, 1e300, 3 + 4j,
    -1, -4096, 2**31, 2**63, 2**64, 2**70, -(2**70),
    "", "abc", "4096", "4K", "\x00", "１２", "0x1000", "1_0", " 1", "x" * 300,
    b"", b"abc", b"\x00" * 5, bytearray(b"12"), memoryview(b"xyz"),
    np.int64(5), np.uint64(2**64 - 1), np.float32(1.5), np.bool_(True), np.float64(4096),
    np.zeros(0), np.zeros((2, 3)), np.array(4096), np.array(["a"]), np.array([None]),
    [1, 2], (4096,), {"a": 1}, {4096}, object(), Path("/"), print,
]
wrong = st.sampled_from(WRONG)


def arg(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A plausible value or, two times in three, a wrong one."""
    return st.one_of(valid, wrong, wrong)


class Model:
    """One model object, its snapshot, and the calls the fuzzer may make on it."""

    obj: Any

    def snapshot(self) -> object:
        raise NotImplementedError

    def calls(self, data: st.DataObject) -> tuple[str, Callable[[], object]]:
        raise NotImplementedError

    def exempt(self, name: str, exc: ZsmallocError) -> bool:
        return isinstance(exc, OutOfMemoryError)


class PoolModel(Model):
    def __init__(self) -> None:
        self.obj = Pool(max_pages=64, reserve_pages=8)
        self.handles = [self.obj.malloc(s) for s in (100, 3000, 4096)]

    def snapshot(self) -> object:
        return pool_snapshot(self.obj)

    def calls(self, data: st.DataObject) -> tuple[str, Callable[[], object]]:
        p = self.obj
        handle = arg(st.sampled_from(self.handles) if self.handles else st.just(8))
        size = arg(st.integers(1, PAGE))
        name = data.draw(st.sampled_from([
            "malloc", "free", "write", "read", "capacity", "migrate", "compact", "shrink",
            "can_compact", "total_pages", "stats", "classes_text", "bytes_report",
            "host_bytes", "grow", "new",
        ]))
        if name == "malloc":
            s = data.draw(size)

            def malloc() -> None:
                self.handles.append(p.malloc(s))

            return name, malloc
        if name == "free":
            h = data.draw(handle)
            return name, lambda: (p.free(h), self.handles.remove(h))
        if name == "write":
            h, d = data.draw(handle), data.draw(arg(st.binary(max_size=PAGE)))
            return name, lambda: p.write(h, d)
        if name == "read":
            h, s = data.draw(handle), data.draw(arg(st.integers(0, 64)))
            return name, lambda: p.read(h, s)
        if name == "capacity":
            h = data.draw(handle)
            return name, lambda: p.capacity(h)
        if name == "migrate":
            pfn = data.draw(arg(st.integers(0, 40)))
            return name, lambda: p.migrate(pfn)
        if name == "new":
            kw = data.draw(st.fixed_dictionaries({}, optional={
                "chain_size": arg(st.integers(4, 16)), "page_size": arg(st.just(PAGE)),
                "max_pages": arg(st.integers(2, 100)), "version": arg(st.just("6.18")),
                "profile": wrong, "reserve_pages": arg(st.integers(1, 10)),
            }))
            return name, lambda: Pool(**kw)
        return name, getattr(p, name)


SAFE_TEXT = st.sampled_from([
    "1", "0", "all", "64K", "8K", "1M", "lz4", "lzo", "lzo-rle", "huge", "type=huge",
    "type=idle", "idle", "algo=lz4 level=3", "algo=lz4 priority=1", "priority=1",
    "max_pages=2", "page_index=1", "1.5M", "", "\n", " ", "bogus", "algo=", "=",
])


class ZramModel(Model):
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        bd = tmp / "bd.img"
        bd.write_bytes(bytes(8 * PAGE))
        (tmp / "dir").mkdir(exist_ok=True)
        self.safe_paths = [str(bd), str(tmp / "missing.img"), str(tmp / "dir"), "/dev/null",
                           str(bd) + "\n", ""]
        self.obj = Zram()
        self.obj.write_attr("backing_dev", str(bd))
        self.obj.write_attr("disksize", "64K")
        self.obj.write(0, np.random.default_rng(1).bytes(PAGE) + b"\x07" * PAGE)

    def snapshot(self) -> object:
        z = self.obj
        readable = [a for a, mode in z.attributes().items() if "r" in mode]
        return (
            {a: z.read_attr(a) for a in readable},
            z.table.handle.tobytes(), z.table.flags.tobytes(), z.table.bd_map.tobytes(),
            z.table.dev.tobytes(), z.comp_algs, z.params, z.wb_limit,
            pool_snapshot(z.pool) if z.pool is not None else None,
        )

    def exempt(self, name: str, exc: ZsmallocError) -> bool:
        if isinstance(exc, OutOfMemoryError):
            return True  # over mem_limit: the pages before the failing one are stored
        return isinstance(exc, SysfsError) and exc.errno in (errno.EIO, errno.ENOSPC) and (
            "writeback" in str(exc)  # reported after the slots it did write back
        )

    def calls(self, data: st.DataObject) -> tuple[str, Callable[[], object]]:
        z = self.obj
        offset = arg(st.sampled_from([0, PAGE, 8 * PAGE, 15 * PAGE, 16 * PAGE, 100]))
        length = arg(st.sampled_from([0, PAGE, 2 * PAGE, 16 * PAGE]))
        text = arg(SAFE_TEXT)
        attrs = [*sorted(z.attributes()), "nonexistent"]
        name = data.draw(st.sampled_from([
            "write_attr", "read_attr", "write", "read", "discard", "slot_free_notify", "slot",
            "set_disksize", "set_mem_limit", "set_comp_algorithm", "set_recomp_algorithm",
            "set_algorithm_params", "reset_mem_used_max", "idle", "set_backing_dev",
            "writeback", "set_writeback_limit", "set_writeback_limit_enable", "recompress",
            "compact", "mm_stat", "io_stat", "new",
        ]))
        if name == "write_attr":
            attr = data.draw(arg(st.sampled_from(attrs)))
            value = data.draw(
                st.sampled_from(self.safe_paths)
                if isinstance(attr, str) and attr == "backing_dev"
                else text
            )  # never a real file elsewhere: writeback would write into it
            return name, lambda: z.write_attr(attr, value)
        if name == "read_attr":
            attr = data.draw(arg(st.sampled_from(attrs)))
            return name, lambda: z.read_attr(attr)
        if name == "write":
            off = data.draw(offset)
            d = data.draw(arg(st.sampled_from([bytes(PAGE), b"\x01" * 2 * PAGE, b"x" * 100])))
            return name, lambda: z.write(off, d)
        if name in ("read", "discard"):
            off, n = data.draw(offset), data.draw(length)
            return name, lambda: getattr(z, name)(off, n)
        if name in ("slot_free_notify", "slot"):
            i = data.draw(arg(st.integers(-1, 17)))
            return name, lambda: getattr(z, name)(i)
        if name == "set_backing_dev":
            path = data.draw(st.one_of(st.sampled_from(self.safe_paths), wrong))
            return name, lambda: z.set_backing_dev(path)
        if name == "new":
            kw = data.draw(st.fixed_dictionaries({}, optional={
                "name": arg(st.just("zram9")), "backends": arg(st.just(("lz4",))),
                "profile": wrong, "clock": wrong,
            }))
            return name, lambda: Zram(**kw)
        if name in ("compact", "mm_stat", "io_stat"):
            return name, getattr(z, name)
        t = data.draw(text)
        return name, lambda: getattr(z, name)(t)


class ZswapModel(Model):
    def __init__(self) -> None:
        self.obj = Zswap(1 << 12, ZswapParams(enabled=True), nr_swap_slots=64)
        self.obj.mkdir_memcg("a")
        for off in range(8):
            self.obj.store(off, clen=500 * off)

    def snapshot(self) -> object:
        z = self.obj
        return (
            z.debugfs(), z.params, z.reached_full, z.shrink_work_pending,
            sorted((o, e.length, e.handle, e.memcg.name) for o, e in z.tree.items()),
            sorted((o, s.where, s.memcg.name) for o, s in z.slots.items()),
            {m.name: (m.zswap_max, m.zswap_writeback, m.zswapped, m.zswap_b, z.lru_order(m))
             for m in z.memcgs.iter_pre_order()},
            sorted(z.swapcache), [(p.name, p.compressor, p.nr_entries) for p in z.pools],
            [pool_snapshot(p.zs_pool) for p in z.pools],  # type: ignore[arg-type]
        )

    def calls(self, data: st.DataObject) -> tuple[str, Callable[[], object]]:
        z = self.obj
        offset = arg(st.integers(-1, 70))
        memcg = arg(st.sampled_from([None, "a", "b"]))
        name = data.draw(st.sampled_from([
            "set_param", "store", "store_folio", "load", "invalidate", "swapcache_add",
            "swapcache_del", "shrinker_count", "shrinker_scan", "mkdir_memcg", "memcg",
            "lru_order", "run_shrink_worker", "debugfs", "summary", "cgroup_file", "new",
        ]))
        if name == "set_param":
            p = data.draw(arg(st.sampled_from(["enabled", "compressor", "max_pool_percent",
                                              "accept_threshold_percent", "zpool"])))
            v = data.draw(arg(st.sampled_from(["Y", "N", "lz4", "zstd", "20", "101", "010"])))
            return name, lambda: z.set_param(p, v)
        if name == "store":
            off, m = data.draw(offset), data.draw(memcg)
            if data.draw(st.booleans()):
                c = data.draw(arg(st.integers(0, 5000)))
                return name, lambda: z.store(off, clen=c, memcg=m)
            pg = data.draw(arg(st.sampled_from([bytes(PAGE), b"\x03" * PAGE, b"short"])))
            return name, lambda: z.store(off, pg, memcg=m)
        if name == "store_folio":
            off = data.draw(offset)
            clens = data.draw(arg(st.lists(st.integers(0, 5000), max_size=3)))
            return name, lambda: z.store_folio(off, clens=clens)
        if name == "load":
            off, sc = data.draw(offset), data.draw(arg(st.booleans()))
            return name, lambda: z.load(off, swapcache=sc)
        if name in ("invalidate", "swapcache_add", "swapcache_del"):
            off = data.draw(offset)
            return name, lambda: getattr(z, name)(off)
        if name == "shrinker_scan":
            m, n = data.draw(memcg), data.draw(arg(st.integers(0, 10)))
            return name, lambda: z.shrinker_scan(m, n)
        if name in ("shrinker_count", "memcg", "lru_order"):
            m = data.draw(memcg)
            return name, lambda: getattr(z, name)(m)
        if name == "mkdir_memcg":
            n, parent = data.draw(arg(st.sampled_from(["b", "c"]))), data.draw(memcg)
            return name, lambda: z.mkdir_memcg(n, parent)
        if name == "cgroup_file":
            f = data.draw(arg(st.sampled_from(["memory.zswap.max", "memory.zswap.writeback"])))
            v = data.draw(arg(st.sampled_from(["max", "8K", "0", "1", "１"])))
            return name, lambda: z.memcg("a").set_file(f, v)
        if name == "new":
            kw = data.draw(st.fixed_dictionaries({}, optional={
                "params": wrong, "profile": wrong, "worker": arg(st.just("sync")),
                "nr_swap_slots": arg(st.integers(1, 10)), "pool_factory": wrong,
            }))
            ram = data.draw(arg(st.integers(1, 1 << 20)))
            return name, lambda: Zswap(ram, **kw)
        return name, getattr(z, name)


def fuzz(model: Model, data: st.DataObject, steps: int = 25) -> None:
    before = model.snapshot()
    for _ in range(steps):
        name, call = model.calls(data)
        try:
            call()
        except ZsmallocError as exc:
            assert str(exc), f"{name}: an empty message"
            if not model.exempt(name, exc):
                assert model.snapshot() == before, f"{name} refused ({exc}) but changed the model"
        except Exception as exc:
            pytest.fail(
                f"{name} raised {type(exc).__name__}, not a ZsmallocError: {exc}\n"
                + "".join(traceback.format_exception(exc))
            )
        before = model.snapshot()


FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(data=st.data())
def test_pool_misuse(data: st.DataObject) -> None:
    fuzz(PoolModel(), data)


@FUZZ
@given(data=st.data())
def test_zram_misuse(tmp_path: Path, data: st.DataObject) -> None:
    model = ZramModel(tmp_path)
    try:
        fuzz(model, data)
    finally:
        model.obj.close()


@FUZZ
@given(data=st.data())
def test_zswap_misuse(data: st.DataObject) -> None:
    fuzz(ZswapModel(), data)
