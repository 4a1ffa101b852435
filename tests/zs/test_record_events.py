"""The kprobe events of ``zsmalloc record`` and the converter of their ring-buffer text.

Lines are in the format tracefs printed them in Debian's guests (tests/data/record);
the cases the guests' single-task workload never produces (failed allocations, pools
from before the recording, two tasks at once, a filter) are built from that format.
"""

from __future__ import annotations

import io

from zsmalloc.zs.record import (
    GROUP,
    KprobeConverter,
    chain_size_from_config,
    event_definitions,
    is_failed_handle,
    lost_events,
    parse_buffer_stats,
    parse_nmissed,
)
from zsmalloc.zs.trace import ZsTraceWriter, parse_zs_trace

POOL = "0xffff8ba581bb5000"
POOL2 = "0xffff8ba581bb6000"


def ev(pid: int, name: str, args: str, where: str = "(zs_malloc+0x4/0x570)") -> str:
    return f"            init-{pid}       [000] ...1.     2.567254: {name}: {where} {args}"


def convert(lines: list[str], **kw: object) -> tuple[list[str], KprobeConverter]:
    out = io.StringIO()
    conv = KprobeConverter(ZsTraceWriter(out, {"kernel": "6.12"}), **kw)  # type: ignore[arg-type]
    conv.feed(lines)
    conv.finish([])
    return out.getvalue().splitlines()[1:], conv


def malloc(pid: int, size: int, handle: str, pool: str = POOL, name: str = "zram0") -> list[str]:
    return [ev(pid, "zs_malloc", f'pool={pool} size={size} name="{name}"'),
            ev(pid, "zs_malloc_ret", f"handle={handle}",
               "(zram_submit_bio+0x7a9/0x860 [zram] <- zs_malloc)")]


def free(pid: int, handle: str, pool: str = POOL, name: str = "zram0") -> list[str]:
    return [ev(pid, "zs_free", f'pool={pool} handle={handle} name="{name}"', "(zs_free+0x4)"),
            ev(pid, "zs_free_ret", "", "(zram_free_page+0x5c/0x1a0 [zram] <- zs_free)")]


def test_definitions_use_arguments_not_registers() -> None:
    defs = event_definitions()
    assert all(d.split()[0].split(":")[1].startswith(GROUP + "/") for d in defs)
    assert not any("%" in d for d in defs)  # $argN/$retval: x86-64 and arm64 alike
    assert {d.split()[1] for d in defs} == {"zs_create_pool", "zs_destroy_pool", "zs_malloc",
                                            "zs_free", "zs_compact", "__zs_compact",
                                            "zs_shrinker_scan"}


def test_pool_life_and_objects() -> None:
    lines = [
        ev(1, "zs_create_pool", 'name="zram0"', "(zs_create_pool+0x4/0x3c0)"),
        ev(1, "zs_create_pool_ret", f"pool={POOL}",
           "(disksize_store+0x9d/0x190 [zram] <- zs_create_pool)"),
        "            init-1       [000] .....     2.563294: tracing_mark_write: zsrec op 0",
        *malloc(1, 2416, "0xffff8ba585d8a328"),
        *malloc(1, 100, "0xffff8ba585d8a800"),
        ev(1, "zs_free", f'pool={POOL} handle=0xffff8ba585d8a328 name="zram0"'),
        ev(1, "zs_free_ret", "", "(x <- zs_free)"),
        *malloc(1, 300, "0xfffffffffffffff4"),  # -ENOMEM as an unsigned long
        *malloc(1, 300, "0xffff8ba585d8aaaa"),
        ev(1, "zs_compact", f'pool={POOL} name="zram0"'),
        ev(1, "zs_compact_ret", "freed=3", "(compact_store+0x3a/0x60 [zram] <- zs_compact)"),
        ev(1, "zs_destroy_pool", f"pool={POOL}"),
    ]
    out, conv = convert(lines)
    assert out[:7] == ["# pool 0 created name=zram0", "a 0 1 2416", "a 0 2 100", "f 0 1",
                       "x 0 300", "a 0 1 300", "c 0 3"]
    assert out[7] == "# pool 0 destroyed name=zram0"
    assert out[-1].endswith("complete=1")
    c = conv.counts
    assert (c.allocs, c.failed, c.frees, c.compactions, c.overlaps) == (3, 1, 1, 1, 0)


def test_failed_handles() -> None:
    assert is_failed_handle(0) and is_failed_handle((1 << 64) - 12)
    assert not is_failed_handle(0xFFFF8BA585D8A328)


def test_a_pool_from_before_the_recording() -> None:
    lines = [*free(5, "0xffff000000001000", POOL2, "zswap0"),
             *malloc(5, 700, "0xffff000000002000", POOL2, "zswap0"),
             *free(5, "0x0", POOL2, "zswap0")]  # zs_free(0): nothing done
    out, conv = convert(lines)
    assert out[:3] == ["# pool 0 existing name=zswap0", "f 0 0", "a 0 1 700"]
    assert conv.counts.unknown_frees == 1 and conv.counts.frees == 1
    t = parse_zs_trace(("# zs trace v1 kernel=6.12\n" + "\n".join(out) + "\n").encode())
    assert t.pools == {0: ("existing", "zswap0")}


def test_pool_filter() -> None:
    lines = [*malloc(1, 100, "0xffff000000001000", POOL, "zram0"),
             *malloc(1, 200, "0xffff000000002000", POOL2, "zswap0")]
    out, conv = convert(lines, pool_filter="zswap0")
    assert out[:2] == ["# pool 1 existing name=zswap0", "a 1 1 200"]
    assert conv.counts.filtered == 1


def test_tasks_are_paired_and_overlaps_counted() -> None:
    a = malloc(1, 100, "0xffff000000001000")
    b = malloc(2, 200, "0xffff000000002000")
    out, conv = convert([a[0], b[0], b[1], a[1]])  # task 2 ran while task 1 slept
    assert out[1:3] == ["a 0 1 200", "a 0 2 100"]
    assert conv.counts.overlaps == 1


def test_returns_without_entries_make_it_incomplete() -> None:
    out, conv = convert(malloc(1, 100, "0xffff000000001000")[1:])
    assert conv.counts.orphan_returns == 1
    assert any(line.startswith("# incomplete") for line in out)
    assert out[-1].endswith("complete=0")


def test_loss_counters() -> None:
    profile = ("  zsmalloc_rec/zs_malloc                 12      0\n"
               "  zs_malloc_ret                          12      3\n"
               "  other/probe                             1      9\n")
    assert parse_nmissed(profile) == {"zs_malloc": 0, "zs_malloc_ret": 3}
    stats = "entries: 0\noverrun: 5\ncommit overrun: 0\ndropped events: 2\nread events: 7\n"
    assert parse_buffer_stats(stats) == {"overrun": 5, "commit overrun": 0, "dropped events": 2}
    reasons = lost_events(profile, ["overrun: 0\n", stats])
    assert reasons == ["zs_malloc_ret: 3 missed (kprobe_profile)", "cpu1: ring buffer overrun 5",
                       "cpu1: ring buffer dropped events 2"]


def test_chain_size_from_config() -> None:
    assert chain_size_from_config("CONFIG_ZSMALLOC=y\nCONFIG_ZSMALLOC_CHAIN_SIZE=8\n") == 8
    assert chain_size_from_config("CONFIG_ZSMALLOC=m\n") is None


def shrink(pid: int, inner: list[str], freed: str) -> list[str]:
    return [ev(pid, "zs_shrinker_scan", "", "(zs_shrinker_scan+0x4/0x30)"), *inner,
            ev(pid, "zs_shrinker_scan_ret", f"freed={freed}",
               "(do_shrink_slab+0x14a/0x3d0 <- zs_shrinker_scan)")]


def compact_class(pid: int, freed: int, pool: str = POOL) -> list[str]:
    return [ev(pid, "zs_compact_class", f'pool={pool} name="zram0"', "(__zs_compact+0x4/0x9)"),
            ev(pid, "zs_compact_class_ret", f"freed={freed}", "(zs_compact+0x20 <- __zs_compact)")]


def test_the_shrinker_with_zs_compact_inlined() -> None:
    """6.16 and later: the classes' compaction inside the shrinker's run is one c line."""
    inner = compact_class(1, 0) + compact_class(1, 2) + compact_class(1, 1)
    out, conv = convert([*malloc(1, 100, "0xffff000000001000"), *shrink(1, inner, "3")])
    assert out[2] == "c 0 3"
    assert (conv.counts.compactions, conv.counts.shrinker_compactions) == (1, 1)


def test_the_shrinker_through_zs_compact_is_one_compaction() -> None:
    inner = [ev(1, "zs_compact", f'pool={POOL} name="zram0"'), *compact_class(1, 2),
             ev(1, "zs_compact_ret", "freed=2", "(zs_shrinker_scan+0x12/0x30 <- zs_compact)")]
    out, conv = convert([*malloc(1, 100, "0xffff000000001000"), *shrink(1, inner, "2")])
    assert out[2] == "c 0 2" and not out[3].startswith("c ")
    assert (conv.counts.compactions, conv.counts.shrinker_compactions) == (1, 0)


def test_a_shrinker_run_that_freed_unseen_pages_is_incomplete() -> None:
    out, conv = convert([*malloc(1, 100, "0xffff000000001000"), *shrink(1, [], "4")])
    assert conv.counts.unattributed == 1 and out[-1].endswith("complete=0")
    _, conv = convert([*malloc(1, 100, "0xffff000000001000"),
                       *shrink(1, [], str((1 << 64) - 1))])  # SHRINK_STOP: nothing freed
    assert conv.counts.unattributed == 0


def test_frees_are_written_at_their_return() -> None:
    """Task 2 frees H; before its zs_free returns, task 1's zs_malloc gets H again (the
    handle's slab object was freed inside zs_free): the objects stay apart, and the
    free comes after the malloc that held the pool's lock first."""
    h = "0xffff000000001000"
    out, conv = convert([*malloc(1, 100, h), free(2, h)[0], *malloc(1, 200, h), free(2, h)[1],
                         *free(1, h)])
    assert out[1:5] == ["a 0 1 100", "a 0 2 200", "f 0 1", "f 0 2"]
    assert conv.counts.overlaps == 1 and conv.counts.unknown_frees == 0


def test_overlaps_mark_the_order_inexact() -> None:
    a = malloc(1, 100, "0xffff000000001000")
    b = malloc(2, 200, "0xffff000000002000")
    out, _ = convert([a[0], b[0], b[1], a[1]])
    t = parse_zs_trace(("# zs trace v1 kernel=6.12\n" + "\n".join(out) + "\n").encode())
    assert len(t.inexact) == 1 and t.inexact[0].startswith("1 calls into a pool")
    assert not t.incomplete
