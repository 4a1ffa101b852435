"""The parts of ``verify --guest`` that need no QEMU: package reading, the initramfs, the
guest's program and report, and the check of recorded guest runs against the model.

tests/data/guest holds reports /init printed in QEMU guests of Debian's 6.1.0-57,
6.12.118 and 7.3.4 kernels for a synthetic workload (``zram_ops(400, seed, 64, [])``), and
the zram lines of each kernel's ``.config``: replaying them must match every mm_stat and
io_stat row, and the stat files at the end, byte for byte.
"""

from __future__ import annotations

import errno
import gzip
import io
import lzma
import re
import struct
import tarfile
from pathlib import Path

import pytest

from zsmalloc.errors import InputError, KernelUnavailableError
from zsmalloc.guest import qemu
from zsmalloc.guest.deb import load_order, modinfo, module_name, read_kernel
from zsmalloc.guest.initramfs import build_initramfs
from zsmalloc.guest.program import guest_program, parse_report
from zsmalloc.guest.verify import GuestZram, check_report
from zsmalloc.live.workload import Op, zram_ops
from zsmalloc.profile import profile_for_release
from zsmalloc.zram.device import Zram

RECORDED = [("6.1-lzo-rle", "lzo-rle", 16), ("6.12-lz4", "lz4", 17), ("7.3.4-lz4", "lz4", 18)]


def recorded_text(testdata: Path, name: str) -> str:
    return gzip.decompress((testdata / "guest" / f"{name}.report.gz").read_bytes()).decode()


# ---- recorded guest runs ---------------------------------------------------------------
@pytest.mark.parametrize(("name", "algo", "seed"), RECORDED)
def test_recorded_guest_runs_match_the_model(
    testdata: Path, name: str, algo: str, seed: int
) -> None:
    report = parse_report(recorded_text(testdata, name))
    config = (testdata / "guest" / f"{name}.config").read_text()
    ops = list(zram_ops(400, seed, 64, []))
    assert report.status == 0 and len(report.steps) == len(ops)
    result = check_report(report, config, ops, algo, 64, seed)
    assert result.ok, result.divergence
    assert result.ops_done == 400 and result.events["failed_stores"] > 0
    assert result.counts["read"] == result.events["reads_checked"] > 0


def test_a_changed_row_is_the_divergence(testdata: Path) -> None:
    """Corrupt one mm_stat row of the 6.1 run: the divergence is that operation."""
    report = parse_report(recorded_text(testdata, "6.1-lzo-rle"))
    step = report.steps[99]
    step.mm_stat = (step.mm_stat[0], step.mm_stat[1] + 1, *step.mm_stat[2:])
    config = (testdata / "guest" / "6.1-lzo-rle.config").read_text()
    result = check_report(report, config, list(zram_ops(400, 16, 64, [])), "lzo-rle", 64, 16)
    assert result.divergence is not None and result.ops_done == 100
    assert result.divergence.where.startswith("op 100 ") and result.divergence.differing == [
        "compr_data_size"
    ]


def test_61_rules_are_needed(testdata: Path) -> None:
    """The 6.1 run against the 6.6 model (the same zram attributes, 6.3+ allocator): an
    mm_stat row differs long before the end."""
    text = recorded_text(testdata, "6.1-lzo-rle")
    report = parse_report(text.replace("# uname 6.1.0-57-amd64", "# uname 6.6.0"))
    config = (testdata / "guest" / "6.1-lzo-rle.config").read_text()
    result = check_report(report, config, list(zram_ops(400, 16, 64, [])), "lzo-rle", 64, 16)
    assert result.divergence is not None and result.divergence.what == "mm_stat"
    assert result.ops_done < 100


def test_each_kernels_attributes(testdata: Path) -> None:
    """The zram files each guest listed are the model's for that kernel (docs/kernels.md)."""
    for name, _, _ in RECORDED:
        report = parse_report(recorded_text(testdata, name))
        config = (testdata / "guest" / f"{name}.config").read_text()
        z = Zram.from_kernel_config(config, profile_for_release(report.release))
        attrs = set(z.attributes())
        assert attrs <= set(report.attrs)
        assert ("algorithm_params" in attrs) == (not name.startswith("6.1-"))
        assert ("max_comp_streams" in attrs) == (not name.startswith("7.3"))
        assert ("writeback_batch_size" in attrs) == name.startswith("7.3")
        assert z.read_attr("comp_algorithm").strip() == report.facts["comp_algorithm_default"]


def test_guest_zram_checks_the_order(testdata: Path) -> None:
    report = parse_report(recorded_text(testdata, "6.12-lz4"))
    dev = GuestZram(report)
    assert report.steps[0].line == "d 6"  # zram_ops(400, 17, 64, []) opens with a discard
    with pytest.raises(InputError, match="is 'd 6', not 'c'"):
        dev.compact()  # asked for something else than the guest did: a harness error


# ---- the program and its report ----------------------------------------------------------
def test_guest_program_dedups_pages_and_maps_ops() -> None:
    a, b = b"a" * 4096, b"b" * 4096
    ops = [Op("write", 3, a), Op("write", 4, b), Op("write", 5, a), Op("discard", 3),
           Op("read", 4), Op("compact"), Op("limit", value=-1), Op("reset_max")]  # fmt: skip
    text, pages, done = guest_program(ops, 64 * 4096, "lz4", "level=3")
    assert text.splitlines() == [
        "algo lz4", "param level=3", f"disksize {64 * 4096}",
        "w 3 0", "w 4 1", "w 5 0", "d 3", "r 4", "c", "l -1", "x",
    ]  # fmt: skip
    assert pages == a + b and done == ops
    with pytest.raises(InputError, match="4096 bytes"):
        guest_program([Op("write", 0, b"x")], 4096, "lz4")


def test_parse_report() -> None:
    text = (
        "# uname 6.1.0-57-amd64\n# insmod 00-zsmalloc.ko\n# insmod 01-zram.ko failed: x\n"
        "# attrs comp_algorithm mm_stat\ni 0 0 0 0 0 0 0 0 0\n"
        "w 0 0\ne 5\nm 1 2 3 4 5 6 7 8 9\no 0 1 0 0\n"
        "r 0\nv 1\nm 1 2 3 4 5 6 7 8 9\no 0 1 0 0\n"
        "l -1\nL 8192\nm 1 2 3 8192 5 6 7 8 9\no 0 1 0 0\n"
        "t io_stat 300a\n# end status=0\n"
    )
    rep = parse_report(text)
    assert rep.release == "6.1.0-57-amd64" and rep.attrs == ["comp_algorithm", "mm_stat"]
    assert rep.modules_failed == ["01-zram.ko failed: x"] and rep.status == 0
    assert [s.errno for s in rep.steps] == [errno.EIO, 0, 0]
    assert rep.steps[1].read_ok and rep.steps[2].limit == 8192
    assert rep.texts == {"io_stat": "0\n"}
    assert parse_report("# uname x\nw 0 0\n").status is None  # cut short: the guest died
    with pytest.raises(InputError, match="cannot parse"):
        parse_report("w 0 0\nq 1\n")
    with pytest.raises(InputError, match="one value"):
        parse_report("w 0 0\ne\n")
    with pytest.raises(InputError, match="without its mm_stat"):
        parse_report("w 0 0\nm 1 2 3 4 5 6 7 8 9\n# end status=0\n")


# ---- the initramfs -----------------------------------------------------------------------
def read_newc(blob: bytes) -> dict[str, tuple[int, bytes]]:
    """An independent reader of newc cpio archives: name -> (mode, data)."""
    out, pos = {}, 0
    while True:
        assert blob[pos : pos + 6] == b"070701"
        fields = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = blob[pos + 110 : pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        data = blob[pos : pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            assert len(blob) % 512 == 0
            return out
        out[name] = (mode, data)


def test_initramfs_layout() -> None:
    blob = build_initramfs(
        b"\x7fELF-init", [("zsmalloc", b"ko1"), ("zram", b"ko2")], [("ops.txt", b"c\n")]
    )
    files = read_newc(blob)
    assert files["init"] == (0o100755, b"\x7fELF-init")
    assert files["lib/modules/00-zsmalloc.ko"][1] == b"ko1"
    assert files["lib/modules/01-zram.ko"][1] == b"ko2"
    assert files["data/ops.txt"] == (0o100644, b"c\n")
    assert files["dev/console"][0] == 0o020600 and files["lib"][0] == 0o040755


# ---- kernel packages ---------------------------------------------------------------------
def elf_module(depends: str) -> bytes:
    """A minimal ELF64 object whose only sections are .shstrtab and .modinfo."""
    shstr = b"\0.shstrtab\0.modinfo\0"
    info = f"license=GPL\0depends={depends}\0vermagic=x\0".encode()
    body = shstr + info
    shoff = 64 + len(body)
    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", head, 0x28, shoff)
    struct.pack_into("<HHH", head, 0x3A, 64, 3, 1)

    def sh(name: int, offset: int, size: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, 3, 0, 0, offset, size, 0, 0, 1, 0)

    return bytes(head) + body + bytes(64) + sh(1, 64, len(shstr)) + sh(11, 64 + len(shstr),
                                                                         len(info))


def make_deb(path: Path, package: str, files: dict[str, bytes], depends: str = "") -> Path:
    """A .deb (ar: debian-binary, control.tar.xz, data.tar.xz) holding ``files``."""

    def tar_xz(members: dict[str, bytes]) -> bytes:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo("./" + name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return lzma.compress(raw.getvalue())

    control = f"Package: {package}\nVersion: 1.0-1\nDepends: {depends}\n".encode()
    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", tar_xz({"control": control})),
        ("data.tar.xz", tar_xz(files)),
    ]
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    path.write_bytes(bytes(out))
    return path


def test_read_kernel_orders_modules_by_their_dependencies(tmp_path: Path) -> None:
    rel = "6.1.0-99-amd64"
    mods = f"lib/modules/{rel}/kernel"
    files = {
        f"boot/vmlinuz-{rel}": b"kernel image",
        f"boot/config-{rel}": b"CONFIG_ZRAM=m\n",
        f"lib/modules/{rel}/modules.builtin": b"kernel/lib/lzo/lzo_compress.ko\n",
        f"{mods}/drivers/block/zram/zram.ko.xz": lzma.compress(elf_module("zsmalloc")),
        f"{mods}/mm/zsmalloc.ko.xz": lzma.compress(elf_module("")),
        f"{mods}/crypto/lz4.ko.xz": lzma.compress(elf_module("lz4_compress")),
        f"{mods}/lib/lz4/lz4_compress.ko": elf_module(""),
        f"{mods}/fs/ext4/ext4.ko.xz": lzma.compress(elf_module("")),  # not wanted
    }
    deb = make_deb(tmp_path / "linux-image.deb", f"linux-image-{rel}", files)
    k = read_kernel([deb])
    assert k.release == rel and k.vmlinuz == b"kernel image" and k.config == "CONFIG_ZRAM=m\n"
    names = k.module_names()
    assert set(names) == {"zram", "zsmalloc", "lz4", "lz4_compress"}
    assert names.index("zsmalloc") < names.index("zram")
    assert names.index("lz4_compress") < names.index("lz4")
    assert "lzo_compress" in k.builtin and "842" in k.absent
    assert dict(k.modules)["zsmalloc"].startswith(b"\x7fELF")  # decompressed


def test_split_package_needs_its_parts(tmp_path: Path) -> None:
    rel = "7.2.99+deb14-amd64"
    deps = f"linux-base-{rel} (= 1.0-1), linux-binary-{rel} (= 1.0-1), linux-modules-{rel}"
    image = make_deb(tmp_path / f"linux-image-{rel}_1.0-1_amd64.deb", f"linux-image-{rel}", {},
                     deps)  # fmt: skip
    missing = re.escape(f"missing beside it: linux-binary-{rel}, linux-modules-{rel}")
    with pytest.raises(InputError, match=missing):
        read_kernel([image])
    make_deb(tmp_path / f"linux-binary-{rel}_1.0-1_amd64.deb", f"linux-binary-{rel}",
             {f"usr/lib/modules/{rel}/vmlinuz": b"img"})  # fmt: skip
    make_deb(tmp_path / f"linux-modules-{rel}_1.0-1_amd64.deb", f"linux-modules-{rel}",
             {f"usr/lib/modules/{rel}/kernel/mm/zsmalloc.ko": elf_module("")})  # fmt: skip
    k = read_kernel([image])  # linux-base is optional: it only adds modules.builtin
    assert (k.release, k.vmlinuz, k.module_names()) == (rel, b"img", ["zsmalloc"])


def test_not_a_package(tmp_path: Path) -> None:
    bad = tmp_path / "x.deb"
    bad.write_bytes(b"hello")
    with pytest.raises(InputError, match="not a Debian package"):
        read_kernel([bad])
    with pytest.raises(InputError, match="no such file"):
        read_kernel([tmp_path / "missing.deb"])


def test_modinfo_and_names() -> None:
    assert modinfo(elf_module("a,b-c"))["depends"] == "a,b-c"
    assert modinfo(b"not elf") == {}
    assert module_name("kernel/crypto/lzo-rle.ko.xz") == "lzo_rle"
    mods = {"a": elf_module("b"), "b": elf_module("c"), "c": elf_module("")}
    assert load_order(mods, ["a", "zzz"]) == ["c", "b", "a"]


# ---- qemu ------------------------------------------------------------------------------
def test_no_qemu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qemu.shutil, "which", lambda _name: None)
    assert "apt-get install qemu-system-x86" in (qemu.qemu_unavailable_reason() or "")
    with pytest.raises(KernelUnavailableError, match="qemu-system-x86_64 not found"):
        qemu.boot(b"", b"")


def test_accelerator_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert qemu.pick_accel("tcg") == "tcg" and qemu.pick_accel("kvm") == "kvm"
    monkeypatch.setattr(qemu.os, "access", lambda *_a: False)
    assert qemu.pick_accel("auto") == "tcg"
