"""``zsmalloc record``: its refusal where the kernel has no kprobes, and its tracefs plumbing.

This project's development host has no kprobes (CONFIG_KPROBES unset), so the live
recorder cannot run here: the command must refuse in one line with exit status 2.
The plumbing (events defined, an instance of its own set up, trace_pipe read and
converted, losses checked, everything removed) runs against a directory laid out as
tracefs, whose trace_pipe holds what a Debian guest's ring buffer held
(tests/data/record); the events themselves are checked in the guests
(tests/guest/test_guest_record.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cli_helpers import run_cli
from zsmalloc.errors import KernelUnavailableError
from zsmalloc.guest.record import read_report, report_to_zs_trace
from zsmalloc.live import record as live_record
from zsmalloc.live.record import Recorder, record_unavailable_reason
from zsmalloc.zs.record import GROUP, event_definitions
from zsmalloc.zs.replay import replay_zs
from zsmalloc.zs.trace import parse_zs_trace

REASON = record_unavailable_reason()


@pytest.mark.skipif(REASON is None, reason="this machine can record: nothing to refuse")
def test_record_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["record", "--duration", "1"], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert REASON is not None and REASON in err


def test_no_kprobes_is_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_record, "kernel_config",
                        lambda: "CONFIG_TRACING=y\n# CONFIG_KPROBES is not set\n")
    reason = record_unavailable_reason()
    assert reason is not None and "CONFIG_KPROBES is not set" in reason
    with pytest.raises(KernelUnavailableError, match="CONFIG_KPROBES"):
        Recorder(io.StringIO())


def fake_tracefs(root: Path, pipe_text: str, nmissed: int = 0) -> Path:
    inst = root / "instances" / GROUP
    (inst / "options").mkdir(parents=True)
    (inst / "events" / GROUP).mkdir(parents=True)
    (inst / "per_cpu" / "cpu0").mkdir(parents=True)
    (inst / "per_cpu" / "cpu0" / "stats").write_text("entries: 0\noverrun: 0\n"
                                                      "dropped events: 0\n")
    (root / "kprobe_events").write_text("")
    (root / "kprobe_profile").write_text(
        "".join(f"  {GROUP}/{d.split()[0].split('/')[1]}  10  "
                f"{nmissed if 'malloc_ret' in d else 0}\n" for d in event_definitions()))
    (inst / "trace_pipe").write_text(pipe_text)
    return root


@pytest.mark.parametrize("nmissed", [0, 2])
def test_recorder_plumbing(tmp_path: Path, testdata: Path, nmissed: int) -> None:
    report = read_report(testdata / "record" / "6.12.118+deb13-amd64.report.xz")
    lines = [line for line in report.trace if not line.startswith("#")]
    root = fake_tracefs(tmp_path, "\n".join(lines) + "\n", nmissed)
    out = io.StringIO()
    rec = Recorder(out, tracefs=root)
    rec.start()
    inst = root / "instances" / GROUP
    assert (inst / "trace_clock").read_text() == "global"
    assert (inst / "options" / "overwrite").read_text() == "0"
    assert (inst / "events" / GROUP / "enable").read_text() == "1"
    rec.run(duration=0.05)
    counts = rec.stop()
    # every definition written, then every event removed again; the instance is gone
    written = (root / "kprobe_events").read_text().splitlines()
    assert [w for w in written if not w.startswith("-:")] == event_definitions()
    assert written[-len(event_definitions()):] == [
        f"-:{d.split()[0].split(':', 1)[1]}" for d in event_definitions()]
    # the same zs trace as the guest's conversion (without its mm_stat markers)
    text = out.getvalue()
    guest_text, guest_counts = report_to_zs_trace(report, 8)
    body = [w for w in text.splitlines()[1:] if not w.startswith("#")]
    assert body == [w for w in guest_text.splitlines()[1:]
                    if not w.startswith(("#", "m "))]
    assert counts.allocs > 1000
    res = replay_zs(parse_zs_trace(text.encode()))
    assert res.checks == guest_counts.compactions  # the compactions' returns, all matched
    assert res.ok is (nmissed == 0) or res.incomplete
    assert bool(res.incomplete) is (nmissed > 0)
    assert rec.conv.incomplete == res.incomplete


def test_verify_record_needs_a_guest(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["verify", "--record"], capsys)
    assert code == 2 and "--record" in err and "--guest" in err


@pytest.mark.parametrize(("nmissed", "status"), [(0, 0), (3, 1)])
def test_record_cli(tmp_path: Path, testdata: Path, capsys: pytest.CaptureFixture[str],
                    nmissed: int, status: int) -> None:
    report = read_report(testdata / "record" / "6.18.15+deb13-amd64.report.xz")
    root = fake_tracefs(tmp_path / "tracefs",
                        "\n".join(w for w in report.trace if not w.startswith("#")) + "\n",
                        nmissed)
    out = tmp_path / "t.zs.gz"
    code, _, err = run_cli(["record", "--tracefs", str(root), "--duration", "0.05",
                            "--pool", "zram0", "-o", str(out)], capsys)
    assert code == status, err
    assert ("incomplete trace: zs_malloc_ret: 3 missed" in err) is (nmissed > 0)
    assert "1204 zs_malloc, 1029 zs_free, 89 zs_compact in 1 pools" in err
    code, text, _ = run_cli(["replay", str(out)], capsys)
    assert code == 0 and "all 89 answers match" in text  # the compactions' returns
    assert ("INCOMPLETE recording" in text) is (nmissed > 0)


def test_verify_parallel_needs_record(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["verify", "--kernel", "--parallel", "4"], capsys)
    assert code == 2 and "--parallel" in err
