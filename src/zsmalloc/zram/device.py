"""The zram block device: sysfs knobs, page I/O and counters, as Linux 6.18 (and its kin).

Mirrors drivers/block/zram/zram_drv.c (6.18): the attribute handlers
(``disksize_store``, ``comp_algorithm_store``, ``algorithm_params_store``,
``mem_limit_store``, ``mem_used_max_store``, ``compact_store``,
``reset_store``, ``idle_store``, ``backing_dev_store``, ``writeback_store``,
``recomp_algorithm_store``, ``recompress_store`` and the ``*_show``
functions), the bio paths (``zram_bio_read``/``write``/``discard``) and
``zram_reset_device``.  Slot state, the counters and the store/free paths
belong to :mod:`zsmalloc.zram.table` (one :class:`~zsmalloc.zram.table.ZramTable`
held in ``Zram.table``); writeback and recompression live in their own modules,
which this one imports and which see the device only through a protocol.
PAGE_SIZE and everything derived from it come from the device's
:class:`~zsmalloc.profile.KernelProfile`.

A ``Zram`` starts like a freshly hot-added device: not initialised,
``comp_algorithm`` at the build default (``lzo-rle``, read from the reference
kernel's fresh device), no limit.  It can be driven through sysfs-style
strings (``write_attr("disksize", "64M")``, ``read_attr("mm_stat")``), which
refuse bad input with the kernel's errno (:class:`SysfsError`) before touching
any state, or through the Pythonic methods they call.

Concurrency: every public method takes the device's lock (``Zram.lock``, the
model's ``init_lock`` and slot locks in one), so threads may share a device; each
call sees the device as one whole step left it.

Arguments follow :mod:`zsmalloc.args`: offsets and lengths are integers (a float
is refused), data is a buffer's raw bytes, attribute values are strings (parsed
as the kernel parses them) or integers.

Features the reference kernel was built without are on by default here
(``writeback=True``: CONFIG_ZRAM_WRITEBACK, ``multi_comp=True``:
CONFIG_ZRAM_MULTI_COMP) and follow the 6.18 source (spec zram.md §2.13,
§2.14); switch them off to get exactly the reference kernel's attribute set.
The backing device may be a regular file (user space has no block device to
claim); blocks are PAGE_SIZE bytes at offset ``block * PAGE_SIZE``; it is held
open, exclusively, from ``backing_dev`` to reset (:mod:`zsmalloc.zram.bdev`).

Other kernels (the ``zram_*`` rules of the profile; docs/kernels.md): before 6.12 zram
compresses through the crypto API (``comp_algorithm`` takes any crypto compressor the
build has, lists the crypto table ``lzo lzo-rle lz4 lz4hc 842 zstd``, there is no
``algorithm_params``), 6.1 prints ``invalid_io`` in io_stat, kernels before 6.15 print
``writestall`` in debug_stat and have ``max_comp_streams``, 7.2 and later refuse
``algorithm_params`` on an initialised device and add ``writeback_batch_size`` and
``compressed_writeback``.  The store, free and overwrite paths are the same in every
profile (new object first, then the old one freed; every kernel's traces replay so).
:meth:`Zram.from_kernel_config` builds a device as a kernel's ``.config`` has it.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from zsmalloc.args import as_byte_array, as_int, as_str, as_sysfs_text
from zsmalloc.errors import (
    InvalidTypeError,
    InvariantError,
    OutOfMemoryError,
    SysfsError,
    ZsmallocError,
)
from zsmalloc.kparse import (
    kstrtobool,
    kstrtoint,
    kstrtou16,
    kstrtouint,
    kstrtoull,
    memparse,
    next_args,
    sysfs_streq,
)
from zsmalloc.locking import serialized
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile
from zsmalloc.zram.bdev import BackingDev, backing_dev_store
from zsmalloc.zram.recompress import recompress_store
from zsmalloc.zram.stats import (
    IoStat,
    MmStat,
    build_mm_stat,
    format_bd_stat,
    format_debug_stat,
)
from zsmalloc.zram.sysfs import fail
from zsmalloc.zram.table import (
    ZramTable,
    mark_idle,
    mem_limit_pages,
    new_table,
    slot_layout,
    zram_accessed,
    zram_allocated,
    zram_create_pool,
    zram_discard_range,
    zram_get_obj_size,
    zram_get_priority,
    zram_read_obj,
    zram_reset_max_used,
    zram_write_obj,
    zram_write_same,
)
from zsmalloc.zram.writeback import (
    WbLimit,
    writeback_limit_enable_store,
    writeback_limit_store,
    writeback_store,
)
from zsmalloc.zs.core import zs_compact, zs_get_total_pages, zs_pages_compacted

# Backend names in the kernel's fixed listing order (zcomp.c backends[]).
ALL_BACKENDS = ("lzo-rle", "lzo", "lz4", "lz4hc", "zstd", "deflate", "842")
# Before 6.12: zcomp.c's crypto table (listed even when not selected), in its order; any
# other crypto compressor of the build (deflate) may be selected and is listed after it.
CRYPTO_BACKENDS = ("lzo", "lzo-rle", "lz4", "lz4hc", "842", "zstd")
CRYPTO_MAX_ALG_NAME = 128
WB_BATCH_SIZE = 32  # zram_add(): writeback_batch_size of a new device (7.2)
# What the reference 6.18.44 kernel has built in (comp_algorithm listing).
REFERENCE_BACKENDS = ("lzo-rle", "lzo", "lz4")
CONFIG_ZRAM_DEF_COMP = "lzo-rle"  # read on a fresh hot-added device of the reference kernel
ZRAM_MAX_ALGO_NAME_SZ = 128
ZRAM_PRIMARY_COMP = 0
ZRAM_SECONDARY_COMP = 1
RO, WO, RW = "r", "w", "rw"
U64_MASK = (1 << 64) - 1  # sizes are u64 in the kernel: PAGE_ALIGN wraps at 2**64
INT_MAX = 2**31 - 1  # kernel_read_file()'s limit for a dict file


@dataclass
class CompParams:
    """Mirrors struct zcomp_params: None means ZCOMP_PARAM_NOT_SET."""

    level: int | None = None
    dict_data: bytes | None = None
    winbits: int | None = None


def page_same_filled(page: np.ndarray) -> tuple[bool, int]:
    """Mirrors page_same_filled(): all PAGE_SIZE / 8 native words equal; (same, the word).

    One page at a time, as the write path needs it (zsmalloc.compress.is_same_filled
    is the batch form, for many pages at once).
    """
    words = page.view(np.int64)
    w = int(words[0])
    if words[-1] != w:  # the kernel compares the last word first
        return False, 0
    return bool((words == w).all()), w


class Zram:
    """One zram device (``/sys/block/zramN`` plus ``/dev/zramN``), exactly as 6.18.

    ``profile`` gives PAGE_SIZE, the flag layout of the slot table and the pool built
    at disksize (chain size, class table); the default is the reference kernel's.
    The compressors take 4 KiB pages, so the device does too; size traces of other
    page sizes replay through :func:`zsmalloc.zram.replay.replay`.
    """

    def __init__(
        self,
        *,
        name: str = "zram0",
        backends: tuple[str, ...] = REFERENCE_BACKENDS,
        writeback: bool = True,
        multi_comp: bool = True,
        track_actime: bool = False,
        clock: Callable[[], float] = time.monotonic,
        profile: KernelProfile = DEFAULT_PROFILE,
        default_comp: str = CONFIG_ZRAM_DEF_COMP,
        nr_cpus: int = 1,
    ) -> None:
        name = as_str(name, "name")
        default_comp = as_str(default_comp, "default_comp")
        nr_cpus = as_int(nr_cpus, "nr_cpus")
        if not isinstance(backends, tuple | list) or not all(isinstance(b, str) for b in backends):
            raise InvalidTypeError(f"backends must be a tuple of names, found {backends!r}")
        if not isinstance(profile, KernelProfile):
            raise InvalidTypeError(f"profile must be a KernelProfile, found {profile!r}")
        if not callable(clock):
            raise InvalidTypeError(f"clock must be callable, found {clock!r}")
        unknown = [b for b in backends if b not in ALL_BACKENDS]
        if not backends:
            raise SysfsError("a zram device needs at least one backend", errno=errno.EINVAL)
        if unknown:
            raise SysfsError(f"unknown zram backend {unknown[0]!r}", errno=errno.EINVAL)
        if profile.page_size != DEFAULT_PROFILE.page_size:
            raise ZsmallocError(
                f"zram device on {profile.describe()}: the compressors take "
                f"{DEFAULT_PROFILE.page_size}-byte pages only (replay a size trace instead)"
            )
        self.lock = threading.RLock()
        self.name = name
        self.profile = profile
        self.layout = slot_layout(profile)  # PAGE_SIZE and the slot flag bits
        self.crypto = profile.zram_compressors == "crypto"
        self.backends = tuple(b for b in ALL_BACKENDS if b in backends)
        self.default_comp = default_comp
        self.nr_cpus = nr_cpus  # what max_comp_streams shows: num_online_cpus()
        self.wb_batch_size = WB_BATCH_SIZE
        self.compressed_wb = False
        self.has_writeback = writeback
        self.zram_max_comps = 4 if multi_comp else 1
        self.comp_algs: list[str | None] = [None] * self.zram_max_comps
        self.params = [CompParams() for _ in range(self.zram_max_comps)]
        self.comp_algs[ZRAM_PRIMARY_COMP] = self._default_comp()
        self.disksize = 0
        self.pool: Any = None
        self.comps: list[Any] = [None] * self.zram_max_comps
        # slots, counters, limit_pages, bitmap: an empty table until disksize
        self.table: ZramTable = new_table(profile)
        self.backing_dev: BackingDev | None = None
        self.wb_limit = WbLimit()
        # CONFIG_ZRAM_TRACK_ENTRY_ACTIME: per-slot access time (seconds on ``clock``,
        # boot time in the kernel), 0 for a freed slot
        self.track_actime = track_actime
        self.clock = clock

    @classmethod
    def from_kernel_config(
        cls, config: str, profile: KernelProfile, **kwargs: Any
    ) -> Zram:
        """A device as a kernel build has it, from the text of its ``.config``.

        Reads CONFIG_ZRAM_DEF_COMP, CONFIG_ZRAM_WRITEBACK, CONFIG_ZRAM_MULTI_COMP,
        CONFIG_ZRAM_TRACK_ENTRY_ACTIME, and the compressors: CONFIG_ZRAM_BACKEND_* (6.12
        and later) or the crypto API's CONFIG_CRYPTO_{LZO,LZ4,LZ4HC,ZSTD,DEFLATE,842}.
        """
        opts: dict[str, str] = {}
        for line in config.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.startswith("CONFIG_"):
                opts[key] = value.strip('"')

        def on(name: str) -> bool:
            return opts.get(name) in ("y", "m")

        symbols = {"lzo": "LZO", "lz4": "LZ4", "lz4hc": "LZ4HC", "zstd": "ZSTD",
                   "deflate": "DEFLATE", "842": "842"}
        prefix = "CRYPTO" if profile.zram_compressors == "crypto" else "ZRAM_BACKEND"
        backends = [b for b, sym in symbols.items() if on(f"CONFIG_{prefix}_{sym}")]
        # crypto/lzo-rle.c comes with CRYPTO_LZO; ZRAM_BACKEND_LZO builds both, and
        # Kconfig forces it on when no other backend is
        if "lzo" in backends or (prefix == "ZRAM_BACKEND" and not backends):
            backends += ["lzo", "lzo-rle"]
        kwargs.setdefault("writeback", on("CONFIG_ZRAM_WRITEBACK"))
        kwargs.setdefault("multi_comp", on("CONFIG_ZRAM_MULTI_COMP"))
        kwargs.setdefault("track_actime", on("CONFIG_ZRAM_TRACK_ENTRY_ACTIME"))
        kwargs.setdefault("default_comp", opts.get("CONFIG_ZRAM_DEF_COMP", CONFIG_ZRAM_DEF_COMP))
        return cls(backends=tuple(backends), profile=profile, **kwargs)

    def _default_comp(self) -> str:
        if self.default_comp in self.backends:
            return self.default_comp
        return self._listed()[0] if self._listed() else self.backends[0]

    def _listed(self) -> tuple[str, ...]:
        """The names comp_algorithm lists whatever is selected (the backend table)."""
        if self.crypto:
            return tuple(b for b in CRYPTO_BACKENDS if b in self.backends)
        return self.backends

    # -- state -----------------------------------------------------------------
    @property
    def initstate(self) -> bool:
        """Mirrors init_done(): disksize has been set."""
        return self.disksize != 0

    @property
    def nr_pages(self) -> int:
        return self.disksize >> self.profile.PAGE_SHIFT

    @property
    def num_active_comps(self) -> int:
        return sum(c is not None for c in self.comps)

    @property
    def handle(self) -> np.ndarray:
        """The slots' handle words (read-only use: slots change through zram.table)."""
        return self.table.handle

    @property
    def flags(self) -> np.ndarray:
        """The slots' flag words: the size, then the ZRAM_* bits of ``self.layout``."""
        return self.table.flags

    @property
    def bd_map(self) -> np.ndarray:
        """``zram->bitmap``: one byte a backing block."""
        return self.table.bd_map

    @property
    def ac_time(self) -> np.ndarray | None:
        """Per-slot access times with ``track_actime``, else None."""
        return self.table.ac_time if self.track_actime else None

    @property
    def huge_class_size(self) -> int:
        """zs_huge_class_size() of the pool (0 before init): comp_len from it on is stored raw."""
        return int(self.table.dev[0]["huge_class_size"])

    def _require_init(self, attr: str, value: str) -> None:
        if not self.initstate:
            raise fail(attr, value, errno.EINVAL, f"{self.name} is not initialised")

    # -- disksize / reset ------------------------------------------------------------
    @serialized
    def set_disksize(self, value: int | str) -> None:
        """Mirrors disksize_store(): memparse, EINVAL for 0, EBUSY once init, page-aligned up.

        Sizes are u64 as in the kernel: PAGE_ALIGN of a size within a page of 2**64
        wraps to 0, and the table allocation of zero slots fails (ENOMEM), as
        vzalloc(0) does.  A slot table the host cannot allocate is ENOMEM too; the
        pool reserves memory only as it is used, so any size the table fits works.
        """
        text = as_sysfs_text(value, "disksize")
        size, _ = memparse(text)
        if size == 0:
            raise fail("disksize", text, errno.EINVAL, "size must be a positive number of bytes")
        if self.initstate:
            raise fail(
                "disksize", text, errno.EBUSY, "cannot change disksize of an initialised device"
            )
        page_size = self.profile.page_size
        size = ((size + page_size - 1) & ~(page_size - 1)) & U64_MASK
        nr_pages = size >> self.profile.PAGE_SHIFT
        if nr_pages == 0:
            raise fail("disksize", text, errno.ENOMEM, "rounded up to a page it wraps to 0 bytes")
        comps: list[Any] = [None] * self.zram_max_comps
        for prio, alg in enumerate(self.comp_algs):
            if alg is not None:
                comps[prio] = self._zcomp_create(alg, self.params[prio])
        old = self.table
        try:
            table = new_table(
                self.profile,
                nr_pages,
                stats=old.stats,
                dev=old.dev,
                bd_map=old.bd_map,
                track_actime=self.track_actime,
            )
            pool = zram_create_pool(self.profile, nr_pages)
        except (MemoryError, OSError, ValueError, OutOfMemoryError):
            raise fail(
                "disksize", text, errno.ENOMEM,
                f"cannot allocate the slot table for {nr_pages} slots (16 bytes each)",
            ) from None
        self.pool, self.table = pool, table
        self.table.dev[0]["huge_class_size"] = self.pool.huge_class_size
        self.comps = comps
        self.disksize = size

    def _zcomp_create(self, alg: str, params: CompParams) -> Any:
        from zsmalloc import compress

        if params.dict_data is not None:
            raise SysfsError(
                f"disksize: {alg}: compression dictionaries are not modelled",
                errno=errno.EOPNOTSUPP,
            )
        try:
            if alg == "deflate" and params.winbits is not None:  # only deflate reads it
                return compress.get(alg, level=params.level, winbits=params.winbits)
            return compress.get(alg, level=params.level)
        # a backend refusing its params fails disksize: our checks raise ZsmallocError
        # (InputError), the libraries ValueError (zstd level), a missing one ImportError
        except (ZsmallocError, ValueError, ImportError) as exc:
            err = getattr(exc, "errno", None) or errno.EINVAL
            raise SysfsError(f"disksize: cannot create {alg}: {exc}", errno=err) from None

    @serialized
    def reset(self) -> None:
        """Mirrors zram_reset_device(): free everything, back to the build default.

        limit_pages, max_used_pages and every counter go to 0 and the backing
        device is released; the writeback limit stays, as in the kernel.
        """
        if self.backing_dev is not None:
            self.backing_dev.close()
        self.table = new_table(self.profile)
        self.pool = None
        self.disksize = 0
        self.comps = [None] * self.zram_max_comps
        self.comp_algs = [None] * self.zram_max_comps
        self.params = [CompParams() for _ in range(self.zram_max_comps)]
        self.backing_dev = None
        self.comp_algs[ZRAM_PRIMARY_COMP] = self._default_comp()

    @serialized
    def close(self) -> None:
        """The device goes away (hot_remove): reset it, releasing the backing file."""
        self.reset()

    def __enter__(self) -> Zram:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _reset_store(self, text: str) -> None:
        """Mirrors reset_store(): kstrtou16, 0 is EINVAL (nothing here holds the device open)."""
        text = as_sysfs_text(text, "reset")
        if kstrtou16(text, 10, attr="reset") == 0:
            raise fail("reset", text, errno.EINVAL, "write a nonzero number to reset")
        self.reset()

    # -- algorithms ------------------------------------------------------------------
    def _check_algorithm(self, attr: str, text: str) -> str:
        """Mirrors __comp_algorithm_store()'s checks: length, trailing newline, availability.

        Before 6.12 the name is cut to CRYPTO_MAX_ALG_NAME - 1 bytes (strscpy) instead of
        refused, and any crypto compressor of the build is available.
        """
        text = as_str(text, attr)
        if self.crypto:
            raw = text.encode()[: CRYPTO_MAX_ALG_NAME - 1]
            text = raw.decode("utf-8", "replace")
        elif len(text.encode()) >= ZRAM_MAX_ALGO_NAME_SZ:
            raise fail(attr, text[:20] + "...", errno.E2BIG, "algorithm name too long")
        name = text[:-1] if text.endswith("\n") else text
        if name not in self.backends:
            raise fail(
                attr, text, errno.EINVAL, f"unknown algorithm; available: {' '.join(self.backends)}"
            )
        return name

    @serialized
    def set_comp_algorithm(self, text: str) -> None:
        """Mirrors comp_algorithm_store(); 6.18 keeps that priority's algorithm_params."""
        name = self._check_algorithm("comp_algorithm", text)
        if self.initstate:
            raise fail(
                "comp_algorithm",
                text,
                errno.EBUSY,
                "cannot change the algorithm of an initialised device",
            )
        self.comp_algs[ZRAM_PRIMARY_COMP] = name

    def _algorithm_listing(self, selected: str | None) -> str:
        """Mirrors zcomp_available_show(): every backend, the selected one in brackets.

        Before 6.12 the crypto table is listed, and a selected crypto compressor outside
        it is appended in brackets.
        """
        listed = self._listed()
        text = "".join(f"[{b}] " if b == selected else f"{b} " for b in listed)
        if selected is not None and selected not in listed:
            text += f"[{selected}] "
        return text + "\n"

    @serialized
    def set_recomp_algorithm(self, text: str) -> None:
        """Mirrors recomp_algorithm_store(): ``algo=NAME [priority=P]``, P in 1..3."""
        text = as_sysfs_text(text, "recomp_algorithm")
        self._require_multi_comp("recomp_algorithm")
        prio = ZRAM_SECONDARY_COMP
        alg: str | None = None
        for key, val in next_args(text):
            if not val:
                raise fail("recomp_algorithm", text, errno.EINVAL, f"{key} needs a value")
            if key == "algo":
                alg = val
            elif key == "priority":
                prio = kstrtouint(val, 10, attr="recomp_algorithm")
        if alg is None:
            raise fail("recomp_algorithm", text, errno.EINVAL, "algo=NAME is required")
        if prio < ZRAM_SECONDARY_COMP or prio >= self.zram_max_comps:
            raise fail(
                "recomp_algorithm",
                text,
                errno.EINVAL,
                f"priority must be 1..{self.zram_max_comps - 1}",
            )
        name = self._check_algorithm("recomp_algorithm", alg)
        if self.initstate:
            raise fail("recomp_algorithm", text, errno.EBUSY, "device is initialised")
        self.comp_algs[prio] = name

    @serialized
    def set_algorithm_params(self, text: str) -> None:
        """Mirrors algorithm_params_store() (6.18): allowed after init; unknown keys ignored.

        7.2 and later refuse an initialised device (EBUSY, after parsing), check
        ``priority`` only when given, and with both ``algo`` and ``priority`` require that
        algorithm at that priority (validate_algo_priority).
        """
        text = as_sysfs_text(text, "algorithm_params")
        prio = ZRAM_PRIMARY_COMP
        prio_given = False
        level: int | None = None
        winbits: int | None = None
        alg: str | None = None
        dict_path: str | None = None
        for key, val in next_args(text):
            if not val:
                raise fail("algorithm_params", text, errno.EINVAL, f"{key} needs a value")
            if key == "priority":
                prio_given = True
                prio = kstrtoint(val, 10, attr="algorithm_params")
            elif key == "level":
                level = kstrtoint(val, 10, attr="algorithm_params")
            elif key == "algo":
                alg = val
            elif key == "dict":
                dict_path = val
            elif key == "deflate.winbits" and self.profile.zram_deflate_winbits:
                winbits = kstrtoint(val, 10, attr="algorithm_params")
        if self.profile.zram_params_busy_after_init:
            if self.initstate:
                raise fail("algorithm_params", text, errno.EBUSY, "device is initialised")
            if prio_given and not 0 <= prio < self.zram_max_comps:
                raise fail("algorithm_params", text, errno.EINVAL, "no such priority")
            if alg is not None and prio_given and self.comp_algs[prio] != alg:
                raise fail("algorithm_params", text, errno.EINVAL, f"{alg} is not at {prio}")
        if alg is not None and not (prio_given and self.profile.zram_params_busy_after_init):
            prio = next((p for p, a in enumerate(self.comp_algs) if a == alg), -1)
        if prio < 0 or prio >= self.zram_max_comps:
            raise fail("algorithm_params", text, errno.EINVAL, "no such priority or algorithm")
        dict_data = None
        if dict_path is not None:  # kernel_read_file(): a regular file, at most INT_MAX bytes
            try:
                st = os.stat(dict_path)
                if not stat.S_ISREG(st.st_mode) or st.st_size > INT_MAX:
                    raise OSError(errno.EINVAL, "not a regular file of at most 2 GiB")
                with open(dict_path, "rb") as f:
                    dict_data = f.read(INT_MAX)
            except OSError:
                raise fail("algorithm_params", text, errno.EINVAL, "cannot read dict") from None
        self.params[prio] = CompParams(level, dict_data, winbits)

    # -- memory limit and max --------------------------------------------------------
    @serialized
    def set_mem_limit(self, value: int | str) -> None:
        """Mirrors mem_limit_store(): memparse, EINVAL if nothing parsed, pages rounded up."""
        text = as_sysfs_text(value, "mem_limit")
        limit, used = memparse(text)
        if used == 0:
            raise fail("mem_limit", text, errno.EINVAL, "not a size")
        self.table.dev[0]["limit_pages"] = mem_limit_pages(self.layout, limit)

    @serialized
    def reset_mem_used_max(self, text: str = "0") -> None:
        """Mirrors mem_used_max_store(): only 0; sets the max to the current total."""
        text = as_sysfs_text(text, "mem_used_max")
        try:
            ok = kstrtoull(text, 10, attr="mem_used_max") == 0
        except SysfsError:  # any parse error is EINVAL here, ERANGE included
            ok = False
        if not ok:
            raise fail("mem_used_max", text, errno.EINVAL, "only 0 can be written")
        if self.initstate:
            zram_reset_max_used(self.pool.state, self.table)

    # -- compaction and idle ---------------------------------------------------------
    @serialized
    def compact(self) -> int:
        """Mirrors compact_store(): zs_compact(); returns the pages freed."""
        self._require_init("compact", "1")
        return int(zs_compact(self.pool.state))

    @serialized
    def idle(self, text: str = "all") -> None:
        """Mirrors idle_store(): ``all``, or an age in seconds with ac_time.

        ``all`` marks every stored slot (not WB, not SAME) idle.  With
        ``track_actime`` an integer N (kstrtoull base 0) sets IDLE on slots
        accessed strictly before ``now - N`` and clears it on the others;
        without it, like the reference kernel, anything but ``all`` is EINVAL.
        """
        text = as_sysfs_text(text, "idle")
        cutoff = None
        if not sysfs_streq(text, "all"):
            if not self.track_actime:
                raise fail(
                    "idle", text, errno.EINVAL, "only 'all' (no CONFIG_ZRAM_TRACK_ENTRY_ACTIME)"
                )
            try:
                cutoff = self.clock() - kstrtoull(text, 0, attr="idle")
            except SysfsError:
                raise fail(
                    "idle", text, errno.EINVAL, "expected 'all' or an age in seconds"
                ) from None
        self._require_init("idle", text)
        mark_idle(self.table, self.layout, cutoff)

    def _accessed(self, index: int) -> None:
        """Mirrors zram_accessed(): clear IDLE and PP_SLOT, stamp ac_time."""
        now = self.clock() if self.track_actime else 0.0
        zram_accessed(self.table, self.layout, index, now)

    # -- statistics ------------------------------------------------------------------
    @serialized
    def total_pages(self) -> int:
        """zs_get_total_pages(), 0 when not initialised."""
        return 0 if self.pool is None else int(zs_get_total_pages(self.pool.state))

    @serialized
    def pages_compacted(self) -> int:
        """The pool's pages_compacted, 0 when not initialised."""
        return 0 if self.pool is None else int(zs_pages_compacted(self.pool.state))

    @serialized
    def mm_stat(self) -> MmStat:
        """The nine mm_stat columns (mirrors mm_stat_show)."""
        zt = self.table
        return build_mm_stat(
            zt.stats,
            int(zt.dev[0]["limit_pages"]),
            self.total_pages(),
            self.pages_compacted(),
            self.profile.PAGE_SHIFT,
        )

    @serialized
    def io_stat(self) -> IoStat:
        """The four io_stat columns (mirrors io_stat_show)."""
        return IoStat.from_stats(self.table.stats)

    # -- sysfs-style access ----------------------------------------------------------
    def attributes(self) -> dict[str, str]:
        """The device's zram attributes and their modes, as this build and kernel have them."""
        prof = self.profile
        attrs = {
            "comp_algorithm": RW,
            "compact": WO,
            "debug_stat": RO,
            "disksize": RW,
            "idle": WO,
            "initstate": RO,
            "io_stat": RO,
            "mem_limit": WO,
            "mem_used_max": WO,
            "mm_stat": RO,
            "reset": WO,
        }
        if prof.zram_compressors == "backends":
            attrs["algorithm_params"] = WO
        if prof.zram_max_comp_streams:
            attrs["max_comp_streams"] = RW
        if self.has_writeback:
            attrs.update(
                backing_dev=RW,
                bd_stat=RO,
                writeback=WO,
                writeback_limit=RW,
                writeback_limit_enable=RW,
            )
            if prof.zram_writeback_batching:
                attrs.update(writeback_batch_size=RW, compressed_writeback=RW)
        if self.zram_max_comps > 1:
            attrs.update(recomp_algorithm=RW, recompress=WO)
        return dict(sorted(attrs.items()))

    def _show(self, name: str) -> str:
        """The ``*_show`` handler of a readable attribute (the caller checked the mode)."""
        if name == "mm_stat":
            return self.mm_stat().format()
        if name == "io_stat":
            return self.io_stat().format(self.profile.zram_invalid_io_counted)
        if name == "debug_stat":
            return format_debug_stat(self.table.stats, self.profile.zram_writestall_counted)
        if name == "max_comp_streams":
            return f"{self.nr_cpus}\n"
        if name == "writeback_batch_size":
            return f"{self.wb_batch_size}\n"
        if name == "compressed_writeback":
            return f"{int(self.compressed_wb)}\n"
        if name == "bd_stat":
            return format_bd_stat(self.table.stats, self.profile.PAGE_SHIFT)
        if name == "disksize":
            return f"{self.disksize}\n"
        if name == "initstate":
            return f"{int(self.initstate)}\n"
        if name == "comp_algorithm":
            return self._algorithm_listing(self.comp_algs[ZRAM_PRIMARY_COMP])
        if name == "recomp_algorithm":
            return "".join(
                f"#{p}: " + self._algorithm_listing(a)
                for p, a in enumerate(self.comp_algs)
                if p >= ZRAM_SECONDARY_COMP and a is not None
            )
        if name == "backing_dev":
            return f"{self.backing_dev.show()}\n" if self.backing_dev is not None else "none\n"
        if name == "writeback_limit":
            return f"{self.wb_limit.bd_wb_limit}\n"
        if name == "writeback_limit_enable":
            return f"{int(self.wb_limit.enable)}\n"
        raise InvariantError(f"{name} is readable but has no show handler")

    @serialized
    def read_attr(self, name: str) -> str:
        """The text ``cat /sys/block/zramN/<name>`` prints."""
        name = as_str(name, "attribute name")
        mode = self.attributes().get(name)
        if mode is None:
            raise SysfsError(f"{self.name} has no attribute {name!r}", errno=errno.ENOENT)
        if "r" not in mode:
            raise SysfsError(f"{name} is write-only", errno=errno.EACCES)
        return self._show(name)

    @serialized
    def write_attr(self, name: str, value: str | int) -> None:
        """``echo value > /sys/block/zramN/<name>``: refused writes raise SysfsError.

        ``value`` is the text written (or an integer, written in decimal).
        """
        name = as_str(name, "attribute name")
        text = as_sysfs_text(value, name)
        mode = self.attributes().get(name)
        if mode is None:
            raise SysfsError(f"{self.name} has no attribute {name!r}", errno=errno.ENOENT)
        if "w" not in mode:
            raise SysfsError(f"{name} is read-only", errno=errno.EACCES)
        handler = {
            "disksize": self.set_disksize,
            "reset": self._reset_store,
            "comp_algorithm": self.set_comp_algorithm,
            "algorithm_params": self.set_algorithm_params,
            "mem_limit": self.set_mem_limit,
            "mem_used_max": self.reset_mem_used_max,
            "compact": lambda _t: self.compact(),
            "idle": self.idle,
            "backing_dev": self.set_backing_dev,
            "writeback": self.writeback,
            "writeback_limit": self.set_writeback_limit,
            "writeback_limit_enable": self.set_writeback_limit_enable,
            "recomp_algorithm": self.set_recomp_algorithm,
            "recompress": self.recompress,
            "max_comp_streams": lambda _t: None,  # max_comp_streams_store(): returns len
            "writeback_batch_size": self.set_writeback_batch_size,
            "compressed_writeback": self.set_compressed_writeback,
        }[name]
        handler(text)

    # -- block I/O -------------------------------------------------------------------
    def _io_length(self, op: str, offset: int, length: int) -> int:
        """The bytes a block-device request really covers, or SysfsError.

        Mirrors what the reference kernel does with O_DIRECT on /dev/zramN
        (observed): offsets and lengths must be multiples of the 4096-byte
        logical block (EINVAL); a write starting at or past the end fails with
        ENOSPC and one crossing it is cut short (blkdev_write_iter); a read
        past the end returns nothing and one crossing it is cut short; a
        discard must lie inside the device (blk_ioctl_discard, EINVAL).
        """
        page_size = self.profile.page_size
        if offset < 0 or length < 0 or offset % page_size or length % page_size:
            raise SysfsError(
                f"{op} at {offset}+{length}: I/O on {self.name} must be aligned to its "
                f"{page_size}-byte blocks",
                errno=errno.EINVAL,
            )
        if op == "discard" and offset + length > self.disksize:
            raise SysfsError(
                f"discard at {offset}+{length}: beyond the end of {self.name} "
                f"(disksize {self.disksize})",
                errno=errno.EINVAL,
            )
        if op == "write" and length and offset >= self.disksize:
            raise SysfsError(
                f"write at {offset}: at or beyond the end of {self.name} "
                f"(disksize {self.disksize}): no space left on device (ENOSPC)",
                errno=errno.ENOSPC,
            )
        return max(0, min(length, self.disksize - offset))

    @serialized
    def write(self, offset: int, data: bytes | bytearray | memoryview | np.ndarray) -> int:
        """Write whole pages at a page-aligned offset; returns the bytes written.

        ``data`` is any buffer, taken as its raw bytes (:func:`zsmalloc.args.
        as_byte_array`).  A write crossing the end of the device is cut short, as
        on the real device: the return value says how much was written.

        Mirrors zram_bio_write(): one bio, page by page.  The first failing
        page (-ENOMEM over mem_limit) counts one failed write and stops the
        bio; pages before it stay written.  The failure is raised as
        OutOfMemoryError (write(2) on the real device returns EIO).
        """
        offset = as_int(offset, "offset")
        buf = as_byte_array(data, "data to write")  # raw bytes, as Pool.write takes them
        length = self._io_length("write", offset, buf.size)
        page_size, page_shift = self.profile.page_size, self.profile.PAGE_SHIFT
        first = offset >> page_shift
        for k in range(length >> page_shift):
            err = self.zram_write_page(first + k, buf[k * page_size : (k + 1) * page_size])
            if err:
                self.table.stats[0]["failed_writes"] += 1
                raise OutOfMemoryError(
                    f"{self.name}: store of slot {first + k} refused: "
                    f"{errno.errorcode.get(-err, err)} (over mem_limit "
                    f"{int(self.table.dev[0]['limit_pages'])} pages); write(2) would fail with EIO",
                    errno=-err,
                )
            self._accessed(first + k)
        return length

    def zram_write_page(self, index: int, page: np.ndarray) -> int:
        """Mirrors zram_write_page(): same-filled, else compress and store; 0 or -errno."""
        same, word = page_same_filled(page)
        if same:
            zram_write_same(self.pool.state, self.table, index, word)
            return 0
        comp = bytes(self.comps[ZRAM_PRIMARY_COMP].compress(page))
        src, dst = np.ascontiguousarray(page), np.frombuffer(comp, dtype=np.uint8)
        pool = self.pool
        while True:
            err = int(zram_write_obj(pool.state, self.table, index, len(comp), src, dst))
            if err != -errno.ENOMEM or not pool.grow():  # below the pool's limit: reserve more
                return err

    @serialized
    def read(self, offset: int, length: int) -> bytes:
        """Read whole pages (mirrors zram_bio_read: each page then marked accessed).

        As on the real device, a read past the end is cut short (EOF).  A page the
        backing device cannot give back whole counts a failed read and raises
        SysfsError with EIO, as read(2) on the device fails.
        """
        offset, length = as_int(offset, "offset"), as_int(length, "length")
        length = self._io_length("read", offset, length)
        page_shift = self.profile.PAGE_SHIFT
        first = offset >> page_shift
        out = bytearray()
        for index in range(first, first + (length >> page_shift)):
            try:
                out += self.zram_read_page(index)
            except OSError as exc:  # the bio failed: zram_bio_read() counts it and stops
                self.table.stats[0]["failed_reads"] += 1
                raise SysfsError(
                    f"{self.name}: read of slot {index} failed: {exc.strerror} (EIO)",
                    errno=errno.EIO,
                ) from None
            self._accessed(index)
        return bytes(out)

    def zram_read_page(self, index: int) -> bytes:
        """Mirrors zram_read_page(): WB from the backing file, else from the pool."""
        zt = self.table
        if zt.flags[index] & self.layout.ZRAM_WB:
            if self.backing_dev is None:
                raise InvariantError(f"slot {index} is written back but there is no backing_dev")
            zt.stats[0]["bd_reads"] += 1
            return self.backing_dev.read_block(int(zt.handle[index]))
        return self.read_from_zspool(index)

    def read_from_zspool(self, index: int) -> bytes:
        """Mirrors zram_read_from_zspool(): fill word, raw huge page, or decompress."""
        zt, lay = self.table, self.layout
        f = int(zt.flags[index])
        if f & lay.ZRAM_SAME or zt.handle[index] == 0:
            return np.full(lay.PAGE_SIZE // 8, zt.handle[index], dtype=np.int64).tobytes()
        dst = np.empty(lay.PAGE_SIZE, dtype=np.uint8)
        size = int(zram_read_obj(self.pool.state, zt, index, dst))
        if size == lay.PAGE_SIZE:
            return dst.tobytes()
        prio = zram_get_priority(lay, f)
        return bytes(self.comps[prio].decompress(dst[:size].tobytes()))

    @serialized
    def discard(self, offset: int, length: int) -> None:
        """BLKDISCARD of whole slots: mirrors zram_bio_discard().

        The ioctl refuses anything not aligned to the 4096-byte logical block
        (observed on the reference kernel), so zram's partial-slot rules never
        apply with 4 KiB pages and every covered slot is freed, notify_free
        counted per slot.
        """
        offset, length = as_int(offset, "offset"), as_int(length, "length")
        length = self._io_length("discard", offset, length)
        if length:
            page_shift = self.profile.PAGE_SHIFT
            zram_discard_range(
                self.pool.state, self.table, offset >> page_shift, length >> page_shift
            )

    @serialized
    def slot_free_notify(self, index: int) -> None:
        """Mirrors zram_slot_free_notify(): the swap layer freed swap slot ``index``.

        ``notify_free += 1``, then the slot is freed if its lock can be taken
        without waiting; in the model nothing else holds it, so ``miss_free``
        (the lock-miss count) stays 0.
        """
        index = as_int(index, "slot")
        if not 0 <= index < self.nr_pages:
            raise SysfsError(
                f"slot_free_notify: slot {index} outside 0..{self.nr_pages - 1}", errno=errno.EINVAL
            )
        zram_discard_range(self.pool.state, self.table, index, 1)

    # -- writeback and recompression (own modules) ----------------------------------
    def _require_writeback(self, attr: str) -> None:
        if not self.has_writeback:
            raise SysfsError(
                f"{attr}: this device has no CONFIG_ZRAM_WRITEBACK", errno=errno.ENOENT
            )

    def _require_multi_comp(self, attr: str) -> None:
        if self.zram_max_comps == 1:
            raise SysfsError(
                f"{attr}: this device has no CONFIG_ZRAM_MULTI_COMP", errno=errno.ENOENT
            )

    @serialized
    def set_backing_dev(self, text: str) -> None:
        """Mirrors backing_dev_store() (see :mod:`zsmalloc.zram.bdev`)."""
        self._require_writeback("backing_dev")
        text = as_str(text, "backing_dev")
        old = self.backing_dev
        bdev, bitmap = backing_dev_store(text, self.initstate, self.profile.page_size, old)
        if old is not None and old is not bdev:
            old.close()  # reset_bdev(): the new device is in place
        self.backing_dev = bdev
        self.table = self.table._replace(bd_map=bitmap)  # before init: an empty table

    @serialized
    def writeback(self, text: str) -> None:
        """Mirrors writeback_store() (see :mod:`zsmalloc.zram.writeback`)."""
        text = as_sysfs_text(text, "writeback")
        self._require_writeback("writeback")
        if self.compressed_wb:
            raise SysfsError(
                "writeback: compressed writeback (7.2's compressed_writeback=1) is not modelled",
                errno=errno.EOPNOTSUPP,
            )
        writeback_store(self, text)

    @serialized
    def set_writeback_limit(self, text: str) -> None:
        """Mirrors writeback_limit_store(): a u64 in 4 KiB units, stored as written."""
        text = as_sysfs_text(text, "writeback_limit")
        self._require_writeback("writeback_limit")
        writeback_limit_store(self.wb_limit, text)

    @serialized
    def set_writeback_limit_enable(self, text: str) -> None:
        """Mirrors writeback_limit_enable_store(): any nonzero u64 enables."""
        text = as_sysfs_text(text, "writeback_limit_enable")
        self._require_writeback("writeback_limit_enable")
        writeback_limit_enable_store(self.wb_limit, text)

    @serialized
    def set_writeback_batch_size(self, text: str) -> None:
        """Mirrors writeback_batch_size_store() (7.2): kstrtouint, 0 or junk is EINVAL."""
        text = as_sysfs_text(text, "writeback_batch_size")
        self._require_writeback("writeback_batch_size")
        try:
            val = kstrtouint(text, 10, attr="writeback_batch_size")
        except SysfsError:
            val = 0
        if val == 0:
            raise fail("writeback_batch_size", text, errno.EINVAL, "a positive number of pages")
        self.wb_batch_size = val

    @serialized
    def set_compressed_writeback(self, text: str) -> None:
        """Mirrors compressed_writeback_store() (7.2): kstrtobool, EBUSY once initialised."""
        text = as_sysfs_text(text, "compressed_writeback")
        self._require_writeback("compressed_writeback")
        try:
            val = kstrtobool(text, attr="compressed_writeback")
        except SysfsError:
            raise fail("compressed_writeback", text, errno.EINVAL, "expected a boolean") from None
        if self.initstate:
            raise fail("compressed_writeback", text, errno.EBUSY, "device is initialised")
        self.compressed_wb = val

    @serialized
    def recompress(self, text: str) -> None:
        """Mirrors recompress_store() (see :mod:`zsmalloc.zram.recompress`)."""
        text = as_sysfs_text(text, "recompress")
        self._require_multi_comp("recompress")
        recompress_store(self, text)

    # -- inspection ------------------------------------------------------------------
    @serialized
    def slot(self, index: int) -> dict[str, Any]:
        """One slot's state: kind, size, flags and priority (for tests and the CLI)."""
        index = as_int(index, "slot")
        if not 0 <= index < self.nr_pages:
            raise SysfsError(f"slot {index} outside 0..{self.nr_pages - 1}", errno=errno.EINVAL)
        lay = self.layout
        f = int(self.table.flags[index])
        if f & lay.ZRAM_WB:
            kind = "wb"
        elif f & lay.ZRAM_SAME:
            kind = "same"
        elif f & lay.ZRAM_HUGE:
            kind = "huge"
        elif zram_allocated(lay, f):
            kind = "compressed"
        else:
            kind = "empty"
        return {
            "kind": kind,
            "size": zram_get_obj_size(lay, f),
            "flags": lay.flag_names(f),
            "priority": zram_get_priority(lay, f),
        }
