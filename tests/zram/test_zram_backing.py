"""The backing device: opened once, exclusively, and kept open, as backing_dev_store() does.

The kernel opens ``backing_dev`` with ``BLK_OPEN_EXCL`` and holds the file until
reset: a second device gets EBUSY, and nothing done to the path afterwards (rename,
delete, replace, chdir) changes what the device reads; a read the file cannot
satisfy fails the bio (EIO, one failed read).  A FIFO is not a block device
(ENOTBLK).
"""

from __future__ import annotations

import errno
import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zsmalloc.errors import SysfsError
from zsmalloc.zram.device import Zram

PAGE = 4096


def huge_page(seed: int) -> bytes:
    return np.random.default_rng(seed).bytes(PAGE)


def backing_file(tmp_path: Path, name: str = "bd.img", blocks: int = 16) -> Path:
    p = tmp_path / name
    p.write_bytes(bytes(blocks * PAGE))
    return p


def written_back(tmp_path: Path, bd: Path) -> tuple[Zram, dict[int, bytes]]:
    """A device with two huge pages written back to ``bd`` and one page still in RAM."""
    z = Zram()
    z.write_attr("backing_dev", str(bd))
    z.write_attr("disksize", "64K")
    pages = {0: huge_page(1), 1: huge_page(2), 2: b"\x05" * 100 + bytes(PAGE - 100)}
    for slot, page in pages.items():
        z.write(slot * PAGE, page)
    z.write_attr("writeback", "huge")
    assert [z.slot(i)["kind"] for i in range(3)] == ["wb", "wb", "compressed"]
    return z, pages


def read_all(z: Zram, pages: dict[int, bytes]) -> None:
    for slot, page in pages.items():
        assert z.read(slot * PAGE, PAGE) == page


def test_a_second_device_on_the_same_file_is_busy(tmp_path: Path) -> None:
    bd = backing_file(tmp_path)
    a, b = Zram(name="zram0"), Zram(name="zram1")
    a.write_attr("backing_dev", str(bd))
    for path in (str(bd), str(bd) + "\n", os.path.relpath(bd)):
        with pytest.raises(SysfsError, match="another zram device") as exc:
            b.write_attr("backing_dev", path)
        assert exc.value.errno == errno.EBUSY
    assert b.read_attr("backing_dev") == "none\n"
    a.write_attr("backing_dev", str(bd))  # the holder itself may name it again
    a.reset()  # zram_reset_device() releases it
    b.write_attr("backing_dev", str(bd))
    assert b.read_attr("backing_dev") == f"{bd}\n"


def test_a_device_in_another_process_is_busy(tmp_path: Path) -> None:
    bd = backing_file(tmp_path)
    z = Zram()
    z.write_attr("backing_dev", str(bd))
    code = (
        "import errno, sys\n"
        "from zsmalloc.zram.device import Zram\n"
        "from zsmalloc.errors import SysfsError\n"
        "try:\n"
        f"    Zram().write_attr('backing_dev', {str(bd)!r})\n"
        "except SysfsError as e:\n"
        "    sys.exit(0 if e.errno == errno.EBUSY else 1)\n"
        "sys.exit(2)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_device_that_goes_away_releases_its_file(tmp_path: Path) -> None:
    bd = backing_file(tmp_path)
    z = Zram()
    z.write_attr("backing_dev", str(bd))
    del z
    gc.collect()
    Zram().write_attr("backing_dev", str(bd))
    with Zram() as z2:  # the context manager resets (releases) on exit
        z2.write_attr("backing_dev", str(backing_file(tmp_path, "other.img")))
    Zram().write_attr("backing_dev", str(tmp_path / "other.img"))


@pytest.mark.parametrize("kind", ["fifo", "directory", "char device"])
def test_what_is_not_a_block_device_is_enotblk(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    elif kind == "directory":
        path = tmp_path
    else:
        path = Path("/dev/null")
    z = Zram()
    with pytest.raises(SysfsError, match="not a block device") as exc:
        z.write_attr("backing_dev", str(path))
    assert exc.value.errno == errno.ENOTBLK
    assert z.read_attr("backing_dev") == "none\n"


def test_renamed_deleted_or_replaced_file_is_still_read(tmp_path: Path) -> None:
    bd = backing_file(tmp_path)
    z, pages = written_back(tmp_path, bd)
    bd.rename(tmp_path / "moved.img")
    read_all(z, pages)
    assert z.read_attr("backing_dev") == f"{tmp_path / 'moved.img'}\n"
    (tmp_path / "moved.img").unlink()
    read_all(z, pages)
    assert z.read_attr("backing_dev") == f"{tmp_path / 'moved.img'} (deleted)\n"
    backing_file(tmp_path, "bd.img")  # a new file of zeros where the old one was
    read_all(z, pages)
    assert z.read_attr("bd_stat").split()[1] == "6"  # bd_reads: 2 pages, three times


def test_a_relative_path_survives_chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    backing_file(tmp_path, "rel.img")
    z = Zram()
    z.write_attr("backing_dev", "rel.img")
    z.write_attr("disksize", "64K")
    z.write(0, huge_page(7))
    z.write_attr("writeback", "huge")
    assert z.read_attr("backing_dev") == f"{tmp_path / 'rel.img'}\n"
    monkeypatch.chdir("/")
    assert z.read(0, PAGE) == huge_page(7)


def test_a_truncated_file_is_an_io_error(tmp_path: Path) -> None:
    bd = backing_file(tmp_path)
    z, pages = written_back(tmp_path, bd)
    os.truncate(bd, PAGE)  # block 1 (slot 0's) is gone: a short read
    with pytest.raises(SysfsError, match="read of slot 0 failed") as exc:
        z.read(0, PAGE)
    assert exc.value.errno == errno.EIO
    assert z.io_stat().failed_reads == 1
    assert z.read(2 * PAGE, PAGE) == pages[2]  # slots in RAM are unaffected
    assert z.slot(0)["kind"] == "wb"  # the slot is not lost: a later read may succeed
    os.truncate(bd, 16 * PAGE)
    assert z.read(0, PAGE) == bytes(PAGE)  # the bytes are what the file holds now
