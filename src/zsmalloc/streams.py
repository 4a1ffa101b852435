"""Reading user inputs: files, pipes and compressed streams, with one error class.

Every input a command reads (pages, images, traces, scripts, page files) is opened
here, so that every way reading can fail -- a missing file, a directory, a truncated
``.gz``, a bad deflate block in the middle of one, a corrupt ``.zst``, ``.xz`` or
``.bz2`` frame, bytes that are not text -- is one :class:`~zsmalloc.errors.InputError`
naming the file (and the line, for text), never the compression library's own
exception, and never after reading the whole input into memory: callers read
blocks, pages or lines.

Compressed input is recognised by its magic bytes; where a raw image may start with
bytes that look like a magic number (the estimate's sources), the file name must
agree too (``require_suffix``).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

from zsmalloc.errors import InputError

COMPRESSED_FORMATS = (  # (file name suffixes, magic bytes, format)
    ((".gz", ".gzip"), b"\x1f\x8b", "gzip"),
    ((".xz",), b"\xfd7zXZ\x00", "xz"),
    ((".bz2",), b"BZh", "bzip2"),
    ((".zst", ".zstd"), b"\x28\xb5\x2f\xfd", "zstd"),
)
STDIN = "-"


def decode_errors() -> tuple[type[BaseException], ...]:
    """Exceptions the decompressors raise for corrupt or truncated data (and I/O errors)."""
    import zstandard

    return (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError)


def sniff(path: Path, head: bytes, *, require_suffix: bool) -> str | None:
    """The compression format of a stream starting with ``head``, or None for raw data.

    With ``require_suffix`` the file name must agree with the magic bytes.
    """
    for suffixes, magic, name in COMPRESSED_FORMATS:
        if head.startswith(magic) and (not require_suffix or path.suffix.lower() in suffixes):
            return name
    return None


class _ZstdReader(io.RawIOBase):
    """zstd frames, one after another, as a raw stream that notices truncation.

    zstandard's own stream reader ends quietly when the input stops inside a frame;
    a truncated file must be an error, as it is for gzip, xz and bzip2.  The input
    is fed :data:`_ZSTD_FEED` bytes at a time, which bounds what one step can
    produce (at most 256 RLE blocks of 128 KiB: 32 MiB) however well it compresses.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._zstd = zstandard
        self._raw = raw
        self._dobj = zstandard.ZstdDecompressor().decompressobj()
        self._input = b""
        self._out = b""
        self._pos = 0
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def _step(self) -> bool:
        """Decompress the next piece of input; False at the end of the input."""
        if not self._input:
            self._input = self._raw.read(1 << 16)
            if not self._input:
                if self._in_frame:
                    raise self._zstd.ZstdError("input ends inside a frame (truncated)")
                return False
        piece, self._input = self._input[:_ZSTD_FEED], self._input[_ZSTD_FEED:]
        self._in_frame = True
        self._out, self._pos = self._dobj.decompress(piece), 0
        if self._dobj.eof:  # the frame is done; what follows starts the next one
            self._input = self._dobj.unused_data + self._input
            self._dobj = self._zstd.ZstdDecompressor().decompressobj()
            self._in_frame = False
        return True

    def readinto(self, b: Any) -> int:
        while self._pos >= len(self._out):
            if not self._step():
                return 0
        n = min(len(b), len(self._out) - self._pos)
        b[:n] = self._out[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


_ZSTD_FEED = 1 << 10


class CheckedStream:
    """A binary stream whose read errors come out as InputError naming ``label``.

    Offers what the package's readers use: ``read``, ``readinto``, ``readline``,
    ``seek``/``tell`` (raw files), iteration over lines, ``close`` and the
    context-manager protocol.
    """

    def __init__(
        self, stream: IO[bytes], label: str, compression: str | None, raw: IO[bytes] | None = None
    ) -> None:
        self._stream = stream
        # The file under a decompressor: GzipFile, LZMAFile and BZ2File given a file
        # object leave it open when they close, so close() closes it too.
        self._raw = raw if raw is not stream else None
        self.label = label
        self.compression = compression
        self._errors = decode_errors()

    def _fail(self, exc: BaseException) -> InputError:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if self.compression:
            return InputError(
                f"corrupt {self.compression} data (damaged or truncated): {why}", path=self.label
            )
        return InputError(f"cannot read: {why}", path=self.label)

    def read(self, n: int = -1) -> bytes:
        try:
            return self._stream.read(n)
        except self._errors as exc:
            raise self._fail(exc) from None

    def readinto(self, buf: Any) -> int:
        try:
            return int(self._stream.readinto(buf))  # type: ignore[attr-defined]
        except self._errors as exc:
            raise self._fail(exc) from None

    def readline(self, limit: int = -1) -> bytes:
        try:
            return self._stream.readline(limit)
        except self._errors as exc:
            raise self._fail(exc) from None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        try:
            return self._stream.seek(offset, whence)
        except self._errors as exc:
            raise self._fail(exc) from None

    def tell(self) -> int:
        return self._stream.tell()

    def skip(self, n: int) -> int:
        """Skip ``n`` bytes (seek where the stream can, else read them); returns bytes skipped."""
        raw = self._stream
        if self.compression is None and n > 0:
            try:
                if raw.seekable():
                    pos = raw.tell()
                    end = raw.seek(0, os.SEEK_END)
                    return raw.seek(min(pos + n, end)) - pos
            except (OSError, ValueError):
                pass
        done = 0
        while done < n:
            chunk = self.read(min(n - done, 1 << 20))
            if not chunk:
                break
            done += len(chunk)
        return done

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def close(self) -> None:
        try:
            with contextlib.suppress(*self._errors):  # a truncated stream may complain again
                self._stream.close()
        finally:
            if self._raw is not None:
                self._raw.close()

    def __enter__(self) -> CheckedStream:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_input(
    path: str | os.PathLike[str],
    *,
    decompress: bool = True,
    require_suffix: bool = False,
    label: str | None = None,
    what: str | None = None,
) -> CheckedStream:
    """Open ``path`` (``-``: standard input) for reading, decompressing it if it is compressed.

    A missing, unreadable or closed input raises InputError naming it (and ``what``
    it was to be: ``cannot read trace: no such file or directory``).
    """
    p = Path(path)
    name = label or ("standard input" if str(path) == STDIN else str(path))
    prefix = f"cannot read {what}: " if what else ""
    if str(path) == STDIN:
        if sys.stdin is None:  # started with stdin closed (<&-)
            raise InputError(f"{prefix}standard input is closed", path=name)
        try:
            raw = cast(IO[bytes], os.fdopen(os.dup(sys.stdin.fileno()), "rb"))
        except (OSError, ValueError, AttributeError) as exc:
            raise InputError(f"{prefix}standard input is not readable ({exc})", path=name) from None
    else:
        try:
            raw = open(p, "rb")  # noqa: SIM115 - the caller owns the stream
        except FileNotFoundError:
            raise InputError(f"{prefix}no such file or directory", path=name) from None
        except IsADirectoryError:
            raise InputError(f"{prefix}is a directory", path=name) from None
        except OSError as exc:
            raise InputError(f"{prefix or 'cannot open: '}{exc.strerror}", path=name) from None
    if not decompress:
        return CheckedStream(raw, name, None)
    try:
        head = cast(Any, raw).peek(6)[:6]  # peek: a pipe cannot seek back
    except OSError as exc:
        raw.close()
        raise InputError(f"{prefix or 'cannot read: '}{exc.strerror}", path=name) from None
    fmt = sniff(p, head, require_suffix=require_suffix)
    stream: IO[bytes]
    if fmt == "gzip":
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    elif fmt == "xz":
        stream = lzma.LZMAFile(raw, "rb")  # noqa: SIM115 - the caller owns the stream
    elif fmt == "bzip2":
        stream = bz2.BZ2File(raw, "rb")
    elif fmt == "zstd":
        stream = cast(IO[bytes], io.BufferedReader(_ZstdReader(raw)))  # readline for text
    else:
        stream = raw
    return CheckedStream(stream, name, fmt, raw)


def read_exact_into(stream: CheckedStream | IO[bytes], mv: memoryview) -> int:
    """``readinto`` until ``mv`` is full or the stream ends; returns bytes read."""
    got = 0
    while got < len(mv):
        n = stream.readinto(mv[got:])  # type: ignore[union-attr]
        if not n:
            break
        got += n
    return got


def text_lines(stream: CheckedStream, *, max_line: int = 1 << 20) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line, decoded as UTF-8, without its newline.

    A line that is not text (a NUL byte, invalid UTF-8, or longer than ``max_line``
    bytes: a binary file) raises InputError naming the line.
    """
    lineno = 0
    while True:
        raw = stream.readline(max_line + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > max_line and not raw.endswith(b"\n"):
            raise InputError(
                f"line longer than {max_line} bytes: not a text file?",
                path=stream.label,
                line=lineno,
            )
        if b"\0" in raw:
            raise InputError("NUL byte: not a text file?", path=stream.label, line=lineno)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                "not UTF-8 text (a binary file?)", path=stream.label, line=lineno
            ) from None
        yield lineno, text.rstrip("\r\n")
