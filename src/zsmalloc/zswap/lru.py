"""zswap's LRU: one ``list_lru`` per memcg, new entries at the tail, walks from the head.

Mirrors ``zswap_list_lru`` with ``zswap_lru_add``/``zswap_lru_del`` in mm/zswap.c
and ``list_lru_walk_one`` in mm/list_lru.c (6.18), spec §3 and §9, on one NUMA
node.

The walk, as ``__list_lru_walk_one`` runs it with ``shrink_memcg_cb``: every
visit costs one unit of ``nr_to_walk`` (even a rotation, so a walk cannot
livelock), and the next item visited is always the current head, because the
callback moves the visited entry to the tail (``LRU_ROTATE`` or its explicit
``list_move_tail``) or frees it, and ``LRU_RETRY``/``LRU_REMOVED_RETRY`` restart
from the head.  So a Python ``dict`` in insertion order is the list: the first
key is the head, re-inserting a key moves it to the tail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar


class _Keyed(Protocol):
    offset: int


E = TypeVar("E", bound=_Keyed)


class ListLru(Generic[E]):
    """One memcg's list of zswap entries, oldest first."""

    def __init__(self) -> None:
        self._items: dict[int, E] = {}

    def __len__(self) -> int:
        """Mirrors list_lru_count_one()."""
        return len(self._items)

    def __iter__(self) -> Iterator[E]:
        """Head (oldest) to tail (newest)."""
        return iter(list(self._items.values()))

    def add(self, entry: E) -> None:
        """Mirrors list_lru_add(): append at the tail."""
        self._items[entry.offset] = entry

    def delete(self, entry: E) -> None:
        """Mirrors list_lru_del(); a missing entry is ignored, as list_empty() checks."""
        if self._items.get(entry.offset) is entry:
            del self._items[entry.offset]

    def head(self) -> E | None:
        return next(iter(self._items.values()), None)

    def move_tail(self, entry: E) -> None:
        """list_move_tail(): the rotation of a second chance (or of a writeback try)."""
        del self._items[entry.offset]
        self._items[entry.offset] = entry
