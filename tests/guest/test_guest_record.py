"""``zsmalloc record``'s events, checked against Debian kernels booted in QEMU.

tests/data/record holds what the guest printed (its README says how it was made):
the ring buffer's text of the recorder's own kprobe events while ``verify --guest``'s
zram workload ran, with the guest's mm_stat after every operation.  Converting it with
the recorder's converter and replaying it in the model of that kernel must give the
guest's pool pages and pages_compacted after every operation, and what each zs_compact
returned.  The live test at the end records anew in a guest (marked ``guest``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_guest_live import PACKAGES, _skip_reason

from zsmalloc.errors import InputError
from zsmalloc.guest.program import GuestReport
from zsmalloc.guest.record import check_recording, read_report, report_to_zs_trace
from zsmalloc.zs.record import OPTIONAL_EVENTS, event_definitions, event_name
from zsmalloc.zs.replay import replay_zs
from zsmalloc.zs.trace import parse_zs_trace

RECORDINGS = {  # report -> CONFIG_ZSMALLOC_CHAIN_SIZE (6.1 has none)
    "6.1.0-57-amd64": None,
    "6.12.118+deb13-amd64": 8,
    "6.18.15+deb13-amd64": 8,
    "7.3.4+deb13-amd64": 8,
}


@pytest.fixture(scope="module", params=sorted(RECORDINGS))
def recording(request: pytest.FixtureRequest, testdata: Path) -> tuple[GuestReport, int | None]:
    release = request.param
    return read_report(testdata / "record" / f"{release}.report.xz"), RECORDINGS[release]


def test_recording_replays_exactly(recording: tuple[GuestReport, int | None]) -> None:
    report, chain = recording
    check = check_recording(report, chain)
    assert check.ok, check.replay.to_dict()
    c = check.counts
    # one m line after the setup and after each operation, one answer per compaction
    assert check.replay.checks == len(report.steps) + 1 + c.compactions
    assert (c.lost_entries, c.orphan_returns, c.unknown_frees, c.unparsed) == (0, 0, 0, 0)
    assert c.unattributed == 0 and c.allocs > 1000
    # the compact attribute's, and the shrinker's (drop_caches) that freed pages
    writes = sum(1 for s in report.steps if s.line == "c")
    shrinker = sum(1 for line in report.trace
                   if "<- zs_compact)" in line and "zs_shrinker_scan+" in line)
    assert c.compactions == writes + shrinker + c.shrinker_compactions
    assert shrinker + c.shrinker_compactions > 0
    assert check.replay.pools[0].summary()["pages_compacted"] > 0


def test_the_shrinker_compacts_through_zs_compact_until_616(
    recording: tuple[GuestReport, int | None],
) -> None:
    """From 6.16 Debian's zs_shrinker_scan() has zs_compact() inlined: only its classes'
    compaction (__zs_compact) and the shrinker's own probe show it."""
    report, chain = recording
    c = check_recording(report, chain).counts
    if report.release.startswith(("6.1.", "6.12.")):
        assert c.shrinker_compactions == 0
    else:
        assert c.shrinker_compactions > 0


def test_the_guest_ran_the_recorders_definitions(
    recording: tuple[GuestReport, int | None],
) -> None:
    report, _ = recording
    events = {line.split()[0].split("/")[-1] for line in report.kprobe_profile}
    skipped = {event_name(d) for d in report.kprobes_skipped}
    assert skipped <= OPTIONAL_EVENTS
    assert events == {event_name(d) for d in event_definitions()} - skipped
    assert all(line.split()[-1] == "0" for line in report.kprobe_profile)  # nothing missed


def test_a_lost_free_is_noticed(recording: tuple[GuestReport, int | None]) -> None:
    """Drop one zs_free from the ring buffer: the replay must stop at a difference."""
    report, chain = recording
    k = next(i for i, line in enumerate(report.trace) if ": zs_free: " in line)
    check = check_recording(replace(report, trace=report.trace[:k] + report.trace[k + 1:]),
                            chain)
    assert not check.ok and check.replay.mismatch_line is not None


def test_a_missed_return_marks_the_trace_incomplete(
    recording: tuple[GuestReport, int | None],
) -> None:
    report, chain = recording
    trace = report.trace
    k = next(i for i, line in enumerate(trace) if ": zs_malloc_ret: " in line)
    lost = replace(report, trace=trace[:k] + trace[k + 1:])
    text, counts = report_to_zs_trace(lost, chain)
    assert counts.lost_entries == 1
    res = replay_zs(parse_zs_trace(text.encode()))
    assert res.incomplete and "kretprobe missed" in res.incomplete[0]


def test_kretprobe_misses_and_overruns_mark_it_incomplete(
    recording: tuple[GuestReport, int | None],
) -> None:
    report, chain = recording
    profile = [line.rsplit(" ", 1)[0] + " 7" if "zs_malloc_ret" in line else line
               for line in report.kprobe_profile]
    stats = [line.replace("overrun: 0", "overrun: 12") for line in report.buffer_stats]
    bad = replace(report, kprobe_profile=profile, buffer_stats=stats)
    text, _ = report_to_zs_trace(bad, chain)
    res = replay_zs(parse_zs_trace(text.encode()))
    assert any("zs_malloc_ret: 7 missed" in r for r in res.incomplete)
    assert any("overrun 12" in r for r in res.incomplete)


def test_report_without_a_recording() -> None:
    with pytest.raises(InputError, match="no ring-buffer text"):
        report_to_zs_trace(GuestReport(), 8)


# ---- a new recording in a guest --------------------------------------------------------


@pytest.mark.guest
@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
@pytest.mark.parametrize("package", PACKAGES[:1] + PACKAGES[-1:],
                         ids=lambda p: p.name.split("_")[0])
def test_record_in_a_guest(package: Path, tmp_path: Path) -> None:
    from zsmalloc.guest.record import verify_guest_record

    check = verify_guest_record([package], n_ops=300, seed=7, nr_pages=64, files=[],
                                save=tmp_path / "t.zs.gz")
    assert check.ok, check.replay.to_dict()
    assert check.replay.checks >= 301 and check.counts.unattributed == 0
    assert replay_zs(tmp_path / "t.zs.gz").ok


def test_a_recording_that_began_late(recording: tuple[GuestReport, int | None]) -> None:
    """Cut the first half of the ring buffer: the pool existed before the recording,
    frees of its older objects are unknown, and its answers cannot be checked."""
    report, chain = recording
    half = len(report.trace) // 2
    while ": zs_malloc: " not in report.trace[half]:  # start at a call's entry
        half += 1
    text, counts = report_to_zs_trace(replace(report, trace=report.trace[half:]), chain)
    assert "# pool 0 existing name=zram0" in text.splitlines()
    assert counts.unknown_frees > 0 and counts.orphan_returns == 0
    res = replay_zs(parse_zs_trace(text.encode()))
    s = res.pools[0].summary()
    assert s["unknown_frees"] == counts.unknown_frees and s["checks"] == 0
    assert s["checks_skipped"] > 0 and not res.ok and res.mismatch_line is None


@pytest.mark.guest
@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_two_tasks_at_once_are_flagged(tmp_path: Path) -> None:
    """Two CPUs, two tasks writing at once: calls overlap, and the trace says its order
    is inexact (whether the replay still matches depends on the interleaving)."""
    from zsmalloc.guest.record import verify_guest_record

    check = verify_guest_record([PACKAGES[-1]], n_ops=200, seed=3, nr_pages=64, files=[],
                                parallel=40, cpus=2)
    assert check.counts.overlaps > 0 and check.replay.inexact
    assert not check.replay.incomplete and check.counts.unknown_frees == 0
