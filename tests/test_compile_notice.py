"""The first run's compilation is announced, and only a silence that lasts is.

zsmalloc.cli.notice prints "compiling ..." when the wrapped warm-up has not
returned after a delay.  Driven by events, not by timing: the block waits until the
notice is out (or, for the quiet case, returns at once under a delay no test run
reaches).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import zsmalloc.cli.notice as notice


def test_a_long_silence_is_announced(monkeypatch: pytest.MonkeyPatch) -> None:
    said = threading.Event()
    lines: list[str] = []

    def echo(message: str, err: bool = False) -> None:
        lines.append(message)
        said.set()

    monkeypatch.setattr(notice.click, "echo", echo)
    with notice.compile_notice("the replay loop", delay=0.0):
        assert said.wait(timeout=60), "no notice while the block was still running"
    assert len(lines) == 1
    assert lines[0].startswith("zsmalloc: compiling the replay loop (first run")


def test_a_quick_block_says_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr(notice.click, "echo", lambda m, err=False: lines.append(m))
    with notice.compile_notice("the replay loop", delay=3600.0):
        pass
    assert lines == []


def test_replay_warms_up_inside_the_notice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The replay command compiles in the notice's block, before any real work."""
    import zsmalloc.cli.replay as cli_replay
    import zsmalloc.zram.replay as zram_replay

    events: list[str] = []

    class Spy:
        def __init__(self, what: str) -> None:
            events.append(f"notice {what}")

        def __enter__(self) -> None:
            events.append("enter")

        def __exit__(self, *exc: object) -> None:
            events.append("exit")

    monkeypatch.setattr(cli_replay, "compile_notice", Spy)
    monkeypatch.setattr(zram_replay, "warm_up", lambda *_: events.append("warm_up"))

    def fake_replay(trace: str, *_: object) -> object:
        events.append("replay")
        raise SystemExit(0)

    monkeypatch.setattr(zram_replay, "replay", fake_replay)
    with pytest.raises(SystemExit):
        trace = tmp_path / "x.trace"
        trace.write_text("w 0 100\n")  # headerless: the reference kernel
        cli_replay.replay_cmd.main([str(trace)], standalone_mode=False)
    assert events == ["notice the replay loop", "enter", "warm_up", "exit", "replay"]
