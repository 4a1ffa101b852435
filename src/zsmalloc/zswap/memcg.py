"""Per-cgroup zswap accounting: ``memory.zswap.{current,max,writeback}`` and events.

Mirrors the zswap parts of mm/memcontrol.c (6.18), spec §12, on the cgroup v2
(default) hierarchy:

* ``obj_cgroup_charge_zswap`` / ``obj_cgroup_uncharge_zswap``: a stored entry
  charges its ``length`` bytes (compressed size, or 4096 stored as-is) to
  ``MEMCG_ZSWAP_B`` and one to ``MEMCG_ZSWAPPED``.  Statistics are hierarchical
  (rstat), so the charge shows in every ancestor; we add it to each directly.
  zsmalloc fragmentation is not charged.
* ``obj_cgroup_may_zswap``: walking up to, but not including, the root, any
  ancestor with ``zswap.max == 0`` or whose usage in whole pages has reached its
  ``zswap.max`` pages refuses the store.
* ``mem_cgroup_zswap_writeback_enabled``: true when zswap is disabled, else
  false if any ancestor has ``memory.zswap.writeback = 0``.
* Events ``zswpin``, ``zswpout``, ``zswpwb`` (``memory.stat``), hierarchical too.
* ``nr_disk_swapins`` (``zswap_lruvec_state``) counts swap-ins that had to read
  the disk; the dynamic shrinker consumes it (spec §9).

The model has one NUMA node, so a memcg's lruvec is the memcg itself.
Per-CPU stat batching (spec §12: ``memory.stat`` may lag) is not modelled: the
model always shows the flushed value.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass, field

from zsmalloc.args import as_str, as_sysfs_text
from zsmalloc.errors import SysfsError

ROOT = "/"
_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_zswap_max(value: str, page_size: int) -> int | None:
    """Mirrors page_counter_memparse(): bytes with K/M/G/T suffix, or ``max``.

    Returns whole pages (rounded down) or None for ``max`` (PAGE_COUNTER_MAX).
    """
    v = value.strip()
    if not v.isascii():  # str.isdigit() would take other scripts' digits
        raise SysfsError(
            f"memory.zswap.max: expected bytes (K/M/G/T suffix) or 'max', found {value!r}",
            errno=errno.EINVAL,
        )
    if v == "max":
        return None
    mult = 1
    if v[-1:].lower() in _SUFFIX:
        mult = _SUFFIX[v[-1].lower()]
        v = v[:-1]
    if not v.isdigit():
        raise SysfsError(
            f"memory.zswap.max: expected bytes (K/M/G/T suffix) or 'max', found {value!r}",
            errno=errno.EINVAL,
        )
    return int(v) * mult // page_size


@dataclass(eq=False)
class MemCgroup:
    """One memory cgroup's zswap view (``struct mem_cgroup`` zswap fields + stats)."""

    name: str
    page_size: int  # PAGE_SIZE of the kernel (the page counters count pages)
    parent: MemCgroup | None = None
    zswap_max: int | None = None  # pages; None = PAGE_COUNTER_MAX ("max")
    zswap_writeback: bool = True
    zswap_b: int = 0  # MEMCG_ZSWAP_B, bytes, hierarchical
    zswapped: int = 0  # MEMCG_ZSWAPPED, entries, hierarchical
    zswpin: int = 0
    zswpout: int = 0
    zswpwb: int = 0
    nr_disk_swapins: int = 0  # this lruvec's only (not hierarchical)
    children: list[MemCgroup] = field(default_factory=list, repr=False)

    def ancestors(self) -> Iterator[MemCgroup]:
        """This memcg and every parent up to and including the root."""
        m: MemCgroup | None = self
        while m is not None:
            yield m
            m = m.parent

    def is_root(self) -> bool:
        return self.parent is None

    def set_file(self, name: str, value: str) -> None:
        """Write ``memory.zswap.max`` or ``memory.zswap.writeback`` (validated first)."""
        name = as_str(name, "cgroup file")
        value = as_sysfs_text(value, name)
        if self.is_root():
            raise SysfsError(f"{name}: the root cgroup has no such file", errno=errno.ENOENT)
        if name == "memory.zswap.max":
            self.zswap_max = parse_zswap_max(value, self.page_size)
        elif name == "memory.zswap.writeback":
            if value.strip() not in ("0", "1"):
                raise SysfsError(
                    f"memory.zswap.writeback: expected 0 or 1, found {value!r}",
                    errno=errno.EINVAL,
                )
            self.zswap_writeback = value.strip() == "1"
        else:
            raise SysfsError(
                f"unknown cgroup file {name!r}; known: memory.zswap.max, memory.zswap.writeback",
                errno=errno.ENOENT,
            )

    # -- spec §12 rules ----------------------------------------------------------
    def may_zswap(self) -> bool:
        """Mirrors obj_cgroup_may_zswap() in mm/memcontrol.c (6.18)."""
        for m in self.ancestors():
            if m.is_root():
                break
            if m.zswap_max is None:
                continue
            if m.zswap_max == 0 or m.zswap_b // m.page_size >= m.zswap_max:
                return False
        return True

    def writeback_enabled(self) -> bool:
        """Mirrors mem_cgroup_zswap_writeback_enabled() (caller handles 'zswap disabled')."""
        return all(m.zswap_writeback for m in self.ancestors())

    def charge(self, length: int) -> None:
        """Mirrors obj_cgroup_charge_zswap(): ``length`` bytes and one entry, hierarchically."""
        for m in self.ancestors():
            m.zswap_b += length
            m.zswapped += 1

    def uncharge(self, length: int) -> None:
        """Mirrors obj_cgroup_uncharge_zswap()."""
        for m in self.ancestors():
            m.zswap_b -= length
            m.zswapped -= 1

    def count_event(self, name: str, n: int = 1) -> None:
        """count_objcg_events(): zswpin / zswpout / zswpwb, hierarchical in memory.stat."""
        for m in self.ancestors():
            setattr(m, name, getattr(m, name) + n)

    def stat(self) -> dict[str, int]:
        """The zswap keys of ``memory.stat`` plus ``memory.zswap.current``."""
        return {
            "memory.zswap.current": self.zswap_b,
            "zswap": self.zswap_b,
            "zswapped": self.zswapped * self.page_size,
            "zswpin": self.zswpin,
            "zswpout": self.zswpout,
            "zswpwb": self.zswpwb,
        }


class MemCgroupTree:
    """The cgroup hierarchy: the root plus children in creation order.

    ``iter_pre_order`` is the order of ``mem_cgroup_iter(NULL, prev, NULL)``, which
    the pool-limit shrink worker uses for its round-robin (spec §9).
    """

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self.root = MemCgroup(ROOT, page_size)
        self.by_name: dict[str, MemCgroup] = {ROOT: self.root}

    def get(self, name: str | None) -> MemCgroup:
        if name is None:
            return self.root
        name = as_str(name, "cgroup name")
        try:
            return self.by_name[name]
        except KeyError:
            raise SysfsError(f"no cgroup {name!r}; create it first", errno=errno.ENOENT) from None

    def mkdir(self, name: str, parent: str | None = None) -> MemCgroup:
        name = as_str(name, "cgroup name")
        if not name or "/" in name or name in (".", ".."):
            raise SysfsError(f"cgroup name {name!r}: not a directory name", errno=errno.EINVAL)
        if name in self.by_name:
            raise SysfsError(f"cgroup {name!r} already exists", errno=errno.EEXIST)
        p = self.get(parent)
        m = MemCgroup(name, self.page_size, parent=p)
        p.children.append(m)
        self.by_name[name] = m
        return m

    def iter_pre_order(self) -> Iterator[MemCgroup]:
        stack = [self.root]
        while stack:
            m = stack.pop()
            yield m
            stack.extend(reversed(m.children))

    def next_after(self, prev: MemCgroup | None) -> MemCgroup | None:
        """Mirrors mem_cgroup_iter(NULL, prev, NULL): pre-order successor; None ends a walk."""
        order = list(self.iter_pre_order())
        if prev is None:
            return order[0]
        i = order.index(prev)
        return order[i + 1] if i + 1 < len(order) else None
