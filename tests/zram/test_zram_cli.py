"""``zsmalloc zram`` scripts and ``zsmalloc verify`` without a kernel device."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from zsmalloc.cli.main import main
from zsmalloc.zram.stats import MmStat

PAGE = 4096


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_script_writes_checks_and_prints_kernel_text(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The shared pages through a script: mm_stat is the kernel's recorded line."""
    pages = tmp_path / "pages.bin"
    pages.write_bytes(gzip.decompress((testdata / "shared_pages.bin.gz").read_bytes()))
    script = tmp_path / "w.zram"
    script.write_text(
        "# the shared pages, lz4\n"
        "set comp_algorithm lz4\n"
        "set disksize 4M\n"
        f"write {pages}\n"
        "show mm_stat\n"
        "compact\n"
        f"check {pages} pages 1024\n"
        "show io_stat\n"
        "slot 0\n"
    )
    code, out, _ = run(["zram", str(script)], capsys)
    assert code == 0
    kernel = next(
        line
        for line in (testdata / "shared_pages.mm_stat").read_text().splitlines()
        if line.startswith("shared lz4 ")
    )
    lines = out.splitlines()
    assert lines[0].split() == kernel.split()[2:]
    assert lines[1] == "check " + str(pages) + ": 1024 pages read back identical"
    assert lines[2] == "       0        0 0        0"
    assert lines[3].startswith("slot 0: compressed size ")


def test_script_exec_and_errors(capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(
        [
            "zram",
            "--disksize",
            "64K",
            "-e",
            "fill byte:7 pages 2; fill random at 8K pages 1; discard 0 4K; show mm_stat; "
            "writeback huge; show bd_stat",
        ],
        capsys,
    )
    assert code == 2  # writeback without a backing device: ENODEV, script stops
    assert out.split() == ["8192", "4096", "4096", "0", "4096", "1", "0", "1", "1"]
    assert "-e:5: writeback" in err and "ENODEV" in err
    code, out, err = run(
        ["zram", "--disksize", "64K", "-e", "fill byte:7 pages 2; set disksize 1M"], capsys
    )
    assert code == 2
    assert "-e:2: disksize <- '1M'" in err and "EBUSY" in err
    code, out, err = run(["zram", "-e", "frobnicate"], capsys)
    assert code == 2 and "-e:1: unknown command 'frobnicate'" in err
    code, out, err = run(["zram", "--disksize", "8K", "-e", "write /nonexistent"], capsys)
    assert code == 2 and "cannot read /nonexistent" in err


def test_writeback_and_recompress_from_a_script(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    backing = tmp_path / "bd.img"
    backing.write_bytes(bytes(16 * PAGE))
    code, out, _ = run(
        [
            "zram",
            "-e",
            f"set backing_dev {backing}; set disksize 64K; fill byte:7 pages 2; "
            "fill random at 8K pages 2; writeback huge; show bd_stat; show mm_stat",
        ],
        capsys,
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "       2        0        2"
    mm = MmStat.parse(lines[1])
    assert mm.orig_data_size == 4 * PAGE and mm.compr_data_size == 0 and mm.same_pages == 2
    assert mm.huge_pages == 0 and mm.huge_pages_since == 2


def test_verify_without_a_kernel_device_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import zsmalloc.live.zram as live

    monkeypatch.setattr(live, "zram_unavailable_reason", lambda: "not root: test")
    code, _, err = run(["verify", "--kernel", "--ops", "10"], capsys)
    assert code == 2
    assert "no kernel device can be used: not root: test" in err


def test_verify_needs_a_mode(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(["verify"], capsys)
    assert code == 2 and "--kernel" in err
