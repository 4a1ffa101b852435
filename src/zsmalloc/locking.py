"""``serialized``: one caller at a time in an object's methods, as the kernel's locks make it.

The kernel serialises what the models here mirror with locks of its own: zsmalloc's
``pool->lock`` and class locks, zram's ``init_lock`` and per-slot locks, zswap's
tree and LRU locks.  A model object offers the same guarantee with one re-entrant
lock, ``self.lock``, taken by every public method: threads may share a ``Pool``, a
``Zram`` or a ``Zswap``, each call sees the object as a whole call left it, and a
method may call another (the lock is re-entrant).  Nothing is detected and raised:
concurrent use is safe, it just does not run in parallel.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


class Lockable(Protocol):
    lock: threading.RLock


def serialized(method: F) -> F:
    """Run ``method`` holding ``self.lock``."""

    @functools.wraps(method)
    def locked(self: Lockable, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return cast(F, locked)
