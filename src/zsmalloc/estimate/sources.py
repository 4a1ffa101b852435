"""Page sources: files, disk/memory images, directories and ELF core dumps as pages.

zram stores whole pages, so every input is turned into a sequence of
``page_size``-byte pages, in the order a sequential ``dd`` of it would write
them to a zram device:

============ ===============================================================
raw file     its bytes, page after page; a partial last page is zero-padded
             (as the page cache holds a file's tail page)
compressed   ``.gz``/``.xz``/``.bz2``/``.zst`` (by name *and* magic bytes)
             are decompressed on the fly: the pages are the decompressed bytes
directory    every regular file below it, recursively, in sorted path order;
             symlinks are not followed; unreadable files are skipped and counted;
             kernel pseudo-filesystems (/proc, /sys, ...) are not entered
core dump    an ELF ``ET_CORE`` file: the memory in its ``PT_LOAD`` segments
             (``p_filesz`` bytes each, zero-padded to whole pages), not the
             notes and headers
============ ===============================================================

Live processes are in :mod:`zsmalloc.estimate.process`, the built-in sample in
:mod:`zsmalloc.estimate.sample`; all share the :class:`PageSource` interface.

Design: a source *fills a caller's buffer* (``read_pages(out)``) rather than
returning new arrays, so a large file goes straight from ``readinto`` into the
chunk the compressors will read, with no copy and bounded memory (spec of the
estimate: stream, never hold the input).  Page contents are never written
anywhere else.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import numpy as np

from zsmalloc.errors import InputError
from zsmalloc.estimate.swap import BLOCK_RULES, SwapRules
from zsmalloc.streams import CheckedStream, open_input, read_exact_into


class PageSource:
    """Something that yields pages into a caller's buffer (the base of every source).

    ``label`` names it in reports; ``total_pages`` is a best-effort page count
    for the progress bar (None when unknown); ``pages`` counts pages delivered
    so far and ``skipped`` counts pages (or files, or processes) that could not
    be read, by reason.  ``read_pages`` returns fewer pages than asked for only
    when the source is exhausted.

    ``rules`` says how the pages reach zram (:mod:`zsmalloc.estimate.swap`):
    block writes by default.  Under swap rules with a zero map, zero-filled
    folios never reach zram; they are counted in ``zero_map_pages`` (single
    pages) and ``zero_thp_pages`` (pages of all-zero THPs), not in ``pages``.
    A source that knows its folios drops them itself (``applies_swap_rules``);
    for the others each page is a folio and the estimate's reader drops them.
    """

    kind = "source"
    applies_swap_rules = False

    def __init__(self, label: str, page_size: int, rules: SwapRules = BLOCK_RULES) -> None:
        self.label = label
        self.page_size = page_size
        self.rules = rules
        self.pages = 0
        self.skipped: dict[str, int] = {}
        self.zero_map_pages = 0
        self.zero_thp_pages = 0
        self.thp_pages = 0  # pages read as parts of whole THPs (each one folio to swap)
        self.shmem_pages = 0  # of the pages swap takes, shmem ones (the rest: anonymous)
        self.notes: list[str] = []  # what limits the figures' exactness, for the report

    def count_skipped(self, reason: str, n: int = 1) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + n

    def zero_mapped(self, n: int) -> None:
        """``n`` pages already delivered went to the swap zero map instead (the reader's drop)."""
        self.pages -= n
        self.zero_map_pages += n

    def total_pages(self) -> int | None:
        return None

    def read_pages(self, out: np.ndarray) -> int:
        """Fill ``out[:n]`` (shape (k, page_size), uint8) and return n; n < k = exhausted."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class ChainedSource(PageSource):
    """Several sources one after another: the files of a directory, the processes.

    Subclasses yield opened parts from ``parts()``; each part starts on a new
    page.  A part that fails to read (``InputError``) is skipped and counted
    under ``part_unreadable``; each finished part's own skip counts are merged.
    """

    part_unreadable = "unreadable parts"

    def __init__(self, label: str, page_size: int) -> None:
        super().__init__(label, page_size)
        self._parts: Iterator[PageSource] | None = None
        self._current: PageSource | None = None

    def parts(self) -> Iterator[PageSource]:
        raise NotImplementedError

    def part_failed(self, part: PageSource, exc: InputError) -> None:
        """A part could not be read: count it under ``part_unreadable``."""
        self.count_skipped(self.part_unreadable)

    def _finish_part(self) -> None:
        assert self._current is not None
        for k, v in self._current.skipped.items():
            self.count_skipped(k, v)
        self.zero_map_pages += self._current.zero_map_pages
        self.zero_thp_pages += self._current.zero_thp_pages
        self.thp_pages += self._current.thp_pages
        self.shmem_pages += self._current.shmem_pages
        self.notes += [n for n in self._current.notes if n not in self.notes]
        self._current.close()
        self._current = None

    def read_pages(self, out: np.ndarray) -> int:
        if self._parts is None:
            self._parts = self.parts()
        n = 0
        while n < len(out):
            if self._current is None:
                self._current = next(self._parts, None)
                if self._current is None:
                    break
            try:
                got = self._current.read_pages(out[n:])
            except InputError as exc:
                self.part_failed(self._current, exc)
                self._finish_part()
                continue
            n += got
            if n < len(out):  # the part is exhausted
                self._finish_part()
        self.pages += n
        return n

    def close(self) -> None:
        if self._current is not None:
            self._finish_part()


# -- opening files, transparently decompressing -------------------------------


def open_stream(path: Path, *, decompress: bool = True) -> tuple[IO[bytes], str | None]:
    """Open ``path`` for reading, decompressing it if its name *and* magic say so.

    Both are required: a raw image may well start with bytes that look like a magic
    number, and it must then be measured as it is.  Returns the byte stream (read
    errors, corrupt compressed data included, come out as InputError naming the
    file: :mod:`zsmalloc.streams`) and the compression format (None for raw data).
    """
    stream = open_input(path, decompress=decompress, require_suffix=True, label=str(path))
    return cast(IO[bytes], stream), stream.compression  # the file-like subset readers use


def fill_pages(stream: CheckedStream | IO[bytes], out: np.ndarray) -> int:
    """Read whole pages from ``stream`` into ``out``; zero-pad a partial last page."""
    page_size = out.shape[1]
    mv = memoryview(out.data).cast("B")
    got = read_exact_into(stream, mv)
    n = -(-got // page_size)
    if got % page_size:
        out[n - 1, got % page_size :] = 0
    return n


# -- pages already in memory ----------------------------------------------------


class ArraySource(PageSource):
    """Pages already in memory (a bytes-like object or an (n, page_size) uint8 array)."""

    kind = "memory"

    def __init__(self, data: object, page_size: int, label: str = "pages in memory") -> None:
        arr = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)  # type: ignore[arg-type]
        if arr.size % page_size:
            raise InputError(
                f"{label}: expected whole {page_size}-byte pages, found {arr.size} bytes"
            )
        super().__init__(label, page_size)
        self.data = arr.reshape(-1, page_size)

    def total_pages(self) -> int | None:
        return len(self.data)

    def read_pages(self, out: np.ndarray) -> int:
        n = min(len(out), len(self.data) - self.pages)
        out[:n] = self.data[self.pages : self.pages + n]
        self.pages += n
        return n


# -- raw files and images -----------------------------------------------------


class FileSource(PageSource):
    """One file (or block device, or compressed image) read as pages.

    ``decompress=False`` takes the bytes as they are, as for the files of a
    directory (the page cache holds them that way).
    """

    kind = "file"

    def __init__(
        self, path: str | os.PathLike[str], page_size: int, *, decompress: bool = True
    ) -> None:
        super().__init__(str(path), page_size)
        self.path = Path(path)
        self.decompress = decompress
        stream, self.compression = open_stream(self.path, decompress=decompress)
        if self.compression:
            self.kind = f"file ({self.compression})"
        # A regular file is checked now and reopened when its turn comes, so that many
        # SOURCE arguments do not hold a descriptor each; a pipe must stay open.
        self._stream: IO[bytes] | None = stream
        if self.path.is_file():
            stream.close()
            self._stream = None

    def total_pages(self) -> int | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            return None  # a pipe or a character device: unknown until read
        if self.compression == "gzip" and st.st_size >= 4:
            # The gzip trailer holds the uncompressed size mod 2**32: a good guess.
            with open(self.path, "rb") as f:
                f.seek(-4, os.SEEK_END)
                size = struct.unpack("<I", f.read(4))[0]
            return -(-size // self.page_size)
        if self.compression:
            return None
        if stat.S_ISBLK(st.st_mode):
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
            return -(-size // self.page_size)
        return -(-st.st_size // self.page_size)

    def read_pages(self, out: np.ndarray) -> int:
        if self._stream is None:
            self._stream, _ = open_stream(self.path, decompress=self.decompress)
        n = fill_pages(self._stream, out)  # read errors come out as InputError
        self.pages += n
        return n

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


# -- directories --------------------------------------------------------------


# Kernel-made filesystems: their "files" are live interfaces (/proc/kcore, sysfs
# attributes), not data a page cache would hold, and reading some has side effects.
PSEUDO_FILESYSTEMS = frozenset(
    [
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "debugfs",
        "tracefs",
        "securityfs",
        "cgroup",
        "cgroup2",
        "pstore",
        "bpf",
        "configfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "autofs",
        "binfmt_misc",
        "efivarfs",
        "rpc_pipefs",
        "nsfs",
        "selinuxfs",
    ]
)


def pseudo_mount_points() -> frozenset[str]:
    """Mount points of kernel pseudo-filesystems, from /proc/self/mounts."""
    try:
        with open("/proc/self/mounts") as f:
            lines = f.read().splitlines()
    except OSError:
        return frozenset()
    out = set()
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2] in PSEUDO_FILESYSTEMS:
            out.add(parts[1].replace("\\040", " "))
    return frozenset(out)


def walk_files(root: Path, skip: frozenset[str] | None = None) -> Iterator[Path]:
    """Regular files below ``root``, sorted, not following symlinks.

    Directories where a kernel pseudo-filesystem is mounted (/proc, /sys, ...) are
    not entered.
    """
    if skip is None:
        skip = pseudo_mount_points()
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if os.path.realpath(entry.path) not in skip:
                    yield from walk_files(Path(entry.path), skip)
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)
        except OSError:
            continue


class DirectorySource(ChainedSource):
    """Every regular file under a directory, each as its own run of pages."""

    kind = "directory"
    part_unreadable = "unreadable files"

    def __init__(self, path: str | os.PathLike[str], page_size: int) -> None:
        super().__init__(str(path), page_size)
        self.path = Path(path)
        self.files = 0

    def total_pages(self) -> int | None:
        total = 0
        for p in walk_files(self.path):
            try:
                total += -(-p.stat(follow_symlinks=False).st_size // self.page_size)
            except OSError:
                continue
        return total

    def parts(self) -> Iterator[PageSource]:
        for p in walk_files(self.path):
            try:
                src = FileSource(p, self.page_size, decompress=False)
            except InputError:
                self.count_skipped(self.part_unreadable)
                continue
            self.files += 1
            yield src


# -- ELF core dumps -------------------------------------------------------------

ELF_MAGIC = b"\x7fELF"
ET_CORE = 4
PT_LOAD = 1


def core_segments(path: Path) -> list[tuple[int, int, int]] | None:
    """``(file offset, file size, vaddr)`` of each PT_LOAD of an ELF core, else None.

    Only ELF ``ET_CORE`` files qualify; executables and libraries are plain
    files (their pages are what the page cache would hold).
    """
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 52 or not ident.startswith(ELF_MAGIC):
                return None
            cls, data = ident[4], ident[5]
            endian = "<" if data == 1 else ">"
            if cls == 2:  # ELFCLASS64
                (e_type,) = struct.unpack_from(endian + "H", ident, 16)
                (e_phoff,) = struct.unpack_from(endian + "Q", ident, 32)
                e_phentsize, e_phnum = struct.unpack_from(endian + "HH", ident, 54)
                ph_fmt = endian + "IIQQQQQQ"
            elif cls == 1:  # ELFCLASS32
                (e_type,) = struct.unpack_from(endian + "H", ident, 16)
                (e_phoff,) = struct.unpack_from(endian + "I", ident, 28)
                e_phentsize, e_phnum = struct.unpack_from(endian + "HH", ident, 42)
                ph_fmt = endian + "IIIIIIII"
            else:
                return None
            if e_type != ET_CORE:
                return None
            f.seek(e_phoff)
            table = f.read(e_phentsize * e_phnum)
    except OSError:
        return None
    segs = []
    for i in range(e_phnum):
        rec = table[i * e_phentsize : (i + 1) * e_phentsize]
        if len(rec) < struct.calcsize(ph_fmt):
            raise InputError(f"truncated program header {i}", path=str(path))
        f_ = struct.unpack_from(ph_fmt, rec)
        if cls == 2:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = f_[:6]
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = f_[:5]
        if p_type == PT_LOAD and p_filesz > 0:
            segs.append((p_offset, p_filesz, p_vaddr))
    return segs


class CoreDumpSource(PageSource):
    """The memory segments of an ELF core dump, each zero-padded to whole pages."""

    kind = "core dump"

    def __init__(
        self, path: str | os.PathLike[str], page_size: int, segments: list[tuple[int, int, int]]
    ) -> None:
        super().__init__(str(path), page_size)
        self.path = Path(path)
        self.segments = segments
        self._f: IO[bytes] | None = None  # opened when its turn comes
        self._seg = 0
        self._done = 0  # bytes of the current segment already read

    def total_pages(self) -> int | None:
        return sum(-(-size // self.page_size) for _, size, _ in self.segments)

    def read_pages(self, out: np.ndarray) -> int:
        if self._f is None:
            try:
                self._f = open(self.path, "rb")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise InputError(f"cannot open: {exc.strerror}", path=self.label) from None
        n = 0
        while n < len(out) and self._seg < len(self.segments):
            offset, size, _ = self.segments[self._seg]
            want = min(size - self._done, (len(out) - n) * self.page_size)
            self._f.seek(offset + self._done)
            mv = memoryview(out[n:].data).cast("B")[:want]
            got = read_exact_into(self._f, mv)
            if got < want:  # truncated core: the rest of the segment is missing
                # The segment's pages after the last one read (a partly read page is
                # delivered, zero-padded); _done is whole pages here.
                ps = self.page_size
                lost = -(-size // ps) - self._done // ps - -(-got // ps)
                self.count_skipped("pages past the end of a truncated core", lost)
                want = got
                self._done = size
            else:
                self._done += got
            k = -(-want // self.page_size)
            if want % self.page_size:
                out[n + k - 1, want % self.page_size :] = 0
            n += k
            if self._done >= size:
                self._seg += 1
                self._done = 0
        self.pages += n
        return n

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def open_path(path: str | os.PathLike[str], page_size: int) -> PageSource:
    """The right source for a path: directory, core dump or (possibly compressed) file.

    ``-`` is standard input, read as a raw image.
    """
    if str(path) == "-":
        src = FileSource("/dev/stdin", page_size, decompress=False)
        src.label = "standard input"
        return src
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError("no such file or directory", path=str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot stat: {exc.strerror}", path=str(p)) from None
    if stat.S_ISDIR(st.st_mode):
        if not os.access(p, os.R_OK | os.X_OK):
            raise InputError("directory not readable", path=str(p))
        return DirectorySource(p, page_size)
    if stat.S_ISREG(st.st_mode):
        segs = core_segments(p)
        if segs is not None:
            return CoreDumpSource(p, page_size, segs)
    return FileSource(p, page_size)
