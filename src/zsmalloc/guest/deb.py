"""A Debian kernel package, read without installing it: the kernel and the modules zram needs.

A ``.deb`` is an ``ar`` archive whose ``data.tar.{xz,zst,gz}`` member holds the files
to install; ``control.tar.*`` holds the package's name and dependencies.  Debian's
kernel packages come in two shapes:

* one package (``linux-image-6.1.0-57-amd64``, ``linux-image-6.12.118+deb13-amd64``):
  ``boot/vmlinuz-<release>`` and ``{,usr/}lib/modules/<release>/kernel/...``;
* split (sid, experimental and trixie-backports from 6.19): ``linux-image-<release>``
  only depends on ``linux-base-<release>`` (``modules.builtin``, the config),
  ``linux-binary-<release>`` (``vmlinuz``) and ``linux-modules-<release>`` (the ``.ko``
  files).  They are looked for beside the given file, as ``apt-get download`` leaves
  them; binary and modules are required, base is read when there (some whole packages
  depend on a base package too).

Nothing here runs dpkg or depmod: the ``data.tar`` is streamed once (lzma is in the
standard library, zstd comes from ``zstandard``), and module dependencies come from
each module's own ``.modinfo`` section (its ``depends=`` field), which is what depmod
reads to write ``modules.dep``.  :func:`read_kernel` returns a :class:`GuestKernel`: the
release, ``vmlinuz``, the modules to load in dependency order (decompressed), the
modules built in, and which of the wanted ones the kernel lacks.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import lzma
import re
import struct
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from zsmalloc.errors import InputError

# zram, its allocator and every compressor a Debian kernel may offer zram: crypto API
# modules (6.1) and the library modules behind zram's own backends (6.12 and later).
WANTED_MODULES = (
    "zsmalloc",
    "zram",
    "lzo", "lzo_rle", "lzo_compress", "lzo_decompress",
    "lz4", "lz4_compress", "lz4_decompress",
    "lz4hc", "lz4hc_compress",
    "zstd", "zstd_compress", "zstd_decompress",
    "842", "842_compress", "842_decompress",
    "deflate", "zlib_deflate", "zlib_inflate",
)  # fmt: skip
# Directories of the module tree that can hold them or their dependencies.
MODULE_DIRS = ("kernel/drivers/block/zram/", "kernel/mm/", "kernel/crypto/", "kernel/lib/")
SPLIT_PARTS = ("linux-base", "linux-binary", "linux-modules")


@dataclass
class GuestKernel:
    """What a QEMU guest needs from a kernel package."""

    release: str  # uname -r, e.g. "6.1.0-57-amd64"
    vmlinuz: bytes = field(repr=False)
    modules: list[tuple[str, bytes]] = field(repr=False)  # (name, .ko), load order
    builtin: list[str]  # wanted modules compiled into the kernel
    absent: list[str]  # wanted modules the kernel has neither way
    packages: list[str]  # the .deb files read
    config: str = field(default="", repr=False)  # the build's .config, where shipped

    def module_names(self) -> list[str]:
        return [name for name, _ in self.modules]


def module_name(path: str) -> str:
    """The kernel's name of a module file: ``lzo-rle.ko.xz`` -> ``lzo_rle``."""
    base = path.rsplit("/", 1)[-1]
    for ext in (".xz", ".zst", ".gz"):
        base = base.removesuffix(ext)
    return base.removesuffix(".ko").replace("-", "_")


# ---- ar and tar ------------------------------------------------------------------------
def ar_members(data: bytes, path: str) -> Iterator[tuple[str, bytes]]:
    """The (name, bytes) members of an ``ar`` archive (the .deb container)."""
    if not data.startswith(b"!<arch>\n"):
        raise InputError("not a Debian package (no ar header)", path=path)
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise InputError(f"corrupt ar header at byte {pos}", path=path) from None
        pos += 60
        yield name, data[pos : pos + size]
        pos += size + (size & 1)


def _decompress_stream(name: str, blob: bytes) -> io.BufferedIOBase:
    """A readable stream of a ``data.tar.*`` member, decompressed as its suffix says."""
    if name.endswith(".xz"):
        return lzma.LZMAFile(io.BytesIO(blob))
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=io.BytesIO(blob))
    if name.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)))
    return io.BytesIO(blob)


def deb_part(path: Path, prefix: str) -> bytes:
    """The raw ``control.tar.*`` or ``data.tar.*`` member of a package."""
    data = path.read_bytes()
    for name, blob in ar_members(data, str(path)):
        if name.startswith(prefix):
            return _decompress_stream(name, blob).read()
    raise InputError(f"no {prefix}* member", path=str(path))


def deb_files(path: Path, want: Iterable[str] = ()) -> Iterator[tuple[str, bytes]]:
    """(path without ``./``, contents) of the regular files of ``data.tar`` whose path
    contains one of ``want`` (every file when ``want`` is empty), streamed."""
    wanted = tuple(want)
    data = path.read_bytes()
    for name, blob in ar_members(data, str(path)):
        if not name.startswith("data.tar"):
            continue
        with tarfile.open(fileobj=_decompress_stream(name, blob), mode="r|") as tar:
            for info in tar:
                rel = info.name.removeprefix("./")
                if not info.isfile() or (wanted and not any(w in rel for w in wanted)):
                    continue
                f = tar.extractfile(info)
                if f is not None:
                    yield rel, f.read()
        return
    raise InputError("no data.tar member", path=str(path))


def deb_control(path: Path) -> dict[str, str]:
    """The fields of the package's ``control`` file (Package, Version, Depends, ...)."""
    with tarfile.open(fileobj=io.BytesIO(deb_part(path, "control.tar")), mode="r:") as tar:
        for info in tar:
            if info.name.removeprefix("./") == "control":
                f = tar.extractfile(info)
                text = f.read().decode("utf-8", "replace") if f else ""
                break
        else:
            raise InputError("no control file", path=str(path))
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


# ---- modules ---------------------------------------------------------------------------
def decompress_module(path: str, data: bytes) -> bytes:
    """A ``.ko`` as the kernel's finit_module() takes it (Debian ships .ko.xz since 6.x)."""
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def modinfo(ko: bytes) -> dict[str, str]:
    """The ``key=value`` strings of an ELF64 module's ``.modinfo`` section."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2 or ko[5] != 1:
        return {}
    (shoff,) = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", ko, shoff + i * shentsize)
        return name, offset, size

    _, str_off, _ = section(shstrndx)
    for i in range(shnum):
        name, offset, size = section(i)
        end = ko.index(b"\0", str_off + name)
        if ko[str_off + name : end] == b".modinfo":
            out: dict[str, str] = {}
            for item in ko[offset : offset + size].split(b"\0"):
                key, sep, value = item.decode("utf-8", "replace").partition("=")
                if sep and key not in out:
                    out[key] = value
            return out
    return {}


def load_order(available: dict[str, bytes], wanted: Iterable[str]) -> list[str]:
    """``wanted`` modules found in ``available`` and their dependencies, each after what it
    needs (modules.dep order, as modprobe would load them)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in available:
            return
        seen.add(name)
        depends = modinfo(available[name]).get("depends", "")
        for dep in filter(None, depends.split(",")):
            visit(dep.replace("-", "_"))
        order.append(name)

    for name in wanted:
        visit(name)
    return order


# ---- the package -----------------------------------------------------------------------
_RELEASE = re.compile(r"(?:usr/)?lib/modules/([^/]+)/")


def companion_packages(path: Path) -> list[Path]:
    """``path`` and, for a split kernel package, its base/binary/modules packages beside it."""
    control = deb_control(path)
    depends = control.get("Depends", "")
    parts = re.findall(r"(linux-(?:base|binary|modules)-[^\s,(]+)", depends)
    if not parts:
        return [path]
    version = control.get("Version", "")
    found = [path]
    missing = []
    for part in parts:
        candidates = sorted(path.parent.glob(f"{part}_*.deb"))
        exact = [c for c in candidates if c.name.startswith(f"{part}_{version}_")]
        pick = exact or candidates
        if pick:
            found.append(pick[-1])
        elif not part.startswith("linux-base-"):  # base only adds modules.builtin
            missing.append(part)
    if missing:
        raise InputError(
            f"{control.get('Package', path.name)} is split into several packages; "
            f"missing beside it: {', '.join(missing)} (apt-get download {' '.join(missing)})",
            path=str(path),
        )
    return found


def read_kernel(paths: Iterable[str | Path]) -> GuestKernel:
    """Read a kernel package (and the parts of a split one) into a :class:`GuestKernel`."""
    packages: list[Path] = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise InputError("no such file", path=str(path))
        for part in companion_packages(path):
            if part not in packages:
                packages.append(part)
    release = ""
    vmlinuz = b""
    config = ""
    builtin_text = ""
    kos: dict[str, bytes] = {}
    ko_paths: dict[str, str] = {}
    for pkg in packages:
        for rel, data in deb_files(pkg, ("vmlinuz", "/modules/", "boot/config-")):
            if rel.startswith("boot/vmlinuz-"):
                vmlinuz, release = data, rel.removeprefix("boot/vmlinuz-")
            elif rel.startswith("boot/config-"):
                config = data.decode("utf-8", "replace")
            m = _RELEASE.match(rel)
            if not m:
                continue
            release = release or m.group(1)
            sub = rel[m.end() :]
            if sub == "vmlinuz":
                vmlinuz = data
            elif sub == "config":
                config = data.decode("utf-8", "replace")
            if sub == "modules.builtin":
                builtin_text = data.decode("utf-8", "replace")
            elif sub.startswith(MODULE_DIRS) and ".ko" in sub:
                name = module_name(sub)
                kos[name] = data
                ko_paths[name] = sub
    if not vmlinuz or not release:
        raise InputError(
            "no kernel image in the package(s); give the linux-image-*.deb of a kernel",
            path=", ".join(map(str, packages)),
        )
    available = {n: decompress_module(ko_paths[n], d) for n, d in kos.items()}
    builtin = {module_name(line.strip()) for line in builtin_text.splitlines() if line.strip()}
    order = load_order(available, WANTED_MODULES)
    return GuestKernel(
        release=release,
        vmlinuz=vmlinuz,
        modules=[(n, available[n]) for n in order],
        builtin=[w for w in WANTED_MODULES if w in builtin and w not in available],
        absent=[w for w in WANTED_MODULES if w not in builtin and w not in available],
        packages=[str(p) for p in packages],
        config=config,
    )


def cached_kernel(paths: Iterable[str | Path], cache: Path) -> GuestKernel:
    """:func:`read_kernel`, kept under ``cache`` keyed by the packages' names, sizes and
    modification times (reading a split 7.x kernel takes about ten seconds)."""
    packages: list[Path] = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise InputError("no such file", path=str(path))
        packages += [c for c in companion_packages(path) if c not in packages]
    key = hashlib.sha256(
        "\n".join(f"{p.resolve()} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in packages)
        .encode()
    ).hexdigest()[:16]
    d = cache / f"kernel-{key}"
    meta = d / "meta.json"
    if meta.exists():
        m = json.loads(meta.read_text())
        return GuestKernel(
            release=m["release"],
            vmlinuz=(d / "vmlinuz").read_bytes(),
            modules=[(n, (d / f"{n}.ko").read_bytes()) for n in m["modules"]],
            builtin=m["builtin"],
            absent=m["absent"],
            packages=m["packages"],
            config=(d / "config").read_text(),
        )
    k = read_kernel(packages)
    tmp = d.with_name(d.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "vmlinuz").write_bytes(k.vmlinuz)
    (tmp / "config").write_text(k.config)
    for name, ko in k.modules:
        (tmp / f"{name}.ko").write_bytes(ko)
    (tmp / "meta.json").write_text(json.dumps({
        "release": k.release, "modules": k.module_names(), "builtin": k.builtin,
        "absent": k.absent, "packages": k.packages,
    }))
    with contextlib.suppress(OSError):  # another process cached it first
        tmp.rename(d)
    return k
