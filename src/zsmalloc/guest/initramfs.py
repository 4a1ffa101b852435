"""The guest's root file system: a newc cpio archive of /init, the modules and the workload.

The kernel unpacks an uncompressed "newc" cpio archive given as the initrd into its
rootfs and runs ``/init`` (Documentation/driver-api/early-userspace/buffer-format.rst).
The archive is written here byte by byte: a 110-byte ASCII header per entry (magic
``070701`` and thirteen 8-digit hex fields), the NUL-terminated name and the data, each
padded to 4 bytes, ending with the ``TRAILER!!!`` entry.

``/init`` is :file:`init.c` of this package, compiled once per source digest with the
host's C compiler (``cc -static``; Debian: gcc and libc6-dev) and kept in the cache
directory (``$XDG_CACHE_HOME/zsmalloc/guest``, else ``~/.cache/zsmalloc/guest``).
Modules go to ``/lib/modules/NN-name.ko`` so that /init, which loads them in name order,
loads each after the ones it depends on.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from zsmalloc.errors import KernelUnavailableError

S_IFDIR, S_IFREG, S_IFCHR = 0o040000, 0o100000, 0o020000
CPIO_MAGIC = b"070701"
TRAILER = "TRAILER!!!"


def cache_dir() -> Path:
    """Where compiled /init programs (and unpacked kernels) are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zsmalloc" / "guest"


def _pad4(buf: bytearray) -> None:
    buf.extend(b"\0" * (-len(buf) % 4))


class Cpio:
    """A newc cpio archive under construction (directories are added as needed)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(self, name: str, data: bytes, mode: int, rdev: tuple[int, int] = (0, 0)) -> None:
        self.ino += 1
        raw = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0)
        self.buf += CPIO_MAGIC + b"".join(b"%08x" % f for f in fields) + raw
        _pad4(self.buf)
        self.buf += data
        _pad4(self.buf)

    def mkdir(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, b"", S_IFDIR | 0o755)

    def add(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """A regular file (its directories first)."""
        path = path.strip("/")
        if "/" in path:
            self.mkdir(path.rsplit("/", 1)[0])
        self._entry(path, data, S_IFREG | mode)

    def add_chardev(self, path: str, major: int, minor: int) -> None:
        self._entry(path.strip("/"), b"", S_IFCHR | 0o600, (major, minor))

    def finish(self) -> bytes:
        self._entry(TRAILER, b"", 0)
        self.buf.extend(b"\0" * (-len(self.buf) % 512))
        return bytes(self.buf)


def init_source() -> bytes:
    """The C source of /init, as shipped in the package."""
    return resources.files("zsmalloc.guest").joinpath("init.c").read_bytes()


def compiler() -> str | None:
    """The host's C compiler (``$CC``, cc, gcc), or None."""
    for cc in (os.environ.get("CC"), "cc", "gcc"):
        if cc and shutil.which(cc):
            return cc
    return None


def build_init(cache: Path | None = None) -> bytes:
    """/init compiled statically for x86-64 (cached by source digest).

    Raises KernelUnavailableError when there is no C compiler or no static C library.
    """
    src = init_source()
    digest = hashlib.sha256(src).hexdigest()[:16]
    target = (cache or cache_dir()) / f"init-{digest}"
    if target.exists():
        return target.read_bytes()
    cc = compiler()
    if cc is None:
        raise KernelUnavailableError(
            "no C compiler for the guest's /init (apt-get install gcc libc6-dev)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    source = target.with_suffix(".c")
    source.write_bytes(src)
    tmp = target.with_name(target.name + f".{os.getpid()}")
    proc = subprocess.run(
        [cc, "-static", "-O2", "-Wall", "-o", str(tmp), str(source)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise KernelUnavailableError(
            f"could not build the guest's /init with {cc} -static (a static C library is "
            f"needed: apt-get install libc6-dev): {proc.stderr.strip()[-500:]}"
        )
    os.replace(tmp, target)
    return target.read_bytes()


def build_initramfs(
    init: bytes, modules: Iterable[tuple[str, bytes]], data: Iterable[tuple[str, bytes]]
) -> bytes:
    """The initrd: /init, /dev/console, /lib/modules/NN-name.ko in order, /data/* files."""
    cpio = Cpio()
    for d in ("dev", "proc", "sys", "data", "lib/modules"):
        cpio.mkdir(d)
    cpio.add_chardev("dev/console", 5, 1)
    cpio.add("init", init, 0o755)
    for i, (name, ko) in enumerate(modules):
        cpio.add(f"lib/modules/{i:02d}-{name}.ko", ko)
    for name, blob in data:
        cpio.add(f"data/{name}", blob)
    return cpio.finish()
