"""``struct list_head`` over arrays: the circular doubly linked lists of include/linux/list.h.

zbud and z3fold keep their pages on kernel lists (the unbuddied lists, the buddied
list, the pool LRU), and the order of those lists decides which page the next
allocation or reclaim takes.  So they are kept here exactly as list.h keeps them:
circular, with a head node, ``list_add`` inserting right after the head, ``list_del``
unlinking, ``list_first_entry`` being ``head->next`` and ``list_last_entry``
``head->prev``.

A list node is an index into two arrays, ``nxt`` and ``prv`` (the ``next`` and
``prev`` pointers).  Page nodes are page frame numbers; list heads are the indexes
after the last pfn, so one pair of arrays holds every node of one kind of link
(a page has two: its buddy-list link and its LRU link, two pairs of arrays).  A node
that is on no list points to itself (``INIT_LIST_HEAD`` / ``list_del_init``), which is
what :func:`list_empty` tests, as the kernel's does.  A fresh array pair (zeros) is not a
list: every node must be initialised before use, like a kernel ``list_head``.
"""

from __future__ import annotations

import numpy as np

from zsmalloc.mm.hotpath import as_i64, hot_njit


@hot_njit
def INIT_LIST_HEAD(nxt: np.ndarray, prv: np.ndarray, node: int) -> None:
    """An empty list (or a node on no list): both links point to the node itself."""
    nxt[node] = node
    prv[node] = node


@hot_njit
def list_empty(nxt: np.ndarray, node: int) -> bool:
    """Is the list empty (for a node: is it on no list)?"""
    return as_i64(nxt[node]) == node


@hot_njit
def __list_add(nxt: np.ndarray, prv: np.ndarray, new: int, prev: int, next_: int) -> None:
    nxt[prev] = new
    prv[new] = prev
    nxt[new] = next_
    prv[next_] = new


@hot_njit
def list_add(nxt: np.ndarray, prv: np.ndarray, new: int, head: int) -> None:
    """Insert ``new`` right after ``head``: the list's new first entry (a stack push)."""
    __list_add(nxt, prv, new, head, as_i64(nxt[head]))


@hot_njit
def list_add_tail(nxt: np.ndarray, prv: np.ndarray, new: int, head: int) -> None:
    """Insert ``new`` right before ``head``: the list's new last entry (a queue)."""
    __list_add(nxt, prv, new, as_i64(prv[head]), head)


@hot_njit
def list_del(nxt: np.ndarray, prv: np.ndarray, node: int) -> None:
    """Unlink ``node``.  (The kernel poisons its pointers; here it points to itself.)"""
    p = as_i64(prv[node])
    n = as_i64(nxt[node])
    nxt[p] = n
    prv[n] = p
    nxt[node] = node
    prv[node] = node


@hot_njit
def list_del_init(nxt: np.ndarray, prv: np.ndarray, node: int) -> None:
    """Unlink ``node`` and leave it empty (safe on a node that is on no list)."""
    list_del(nxt, prv, node)


@hot_njit
def list_move(nxt: np.ndarray, prv: np.ndarray, node: int, head: int) -> None:
    """Unlink ``node`` and insert it first on ``head``."""
    list_del(nxt, prv, node)
    list_add(nxt, prv, node, head)


@hot_njit
def list_first(nxt: np.ndarray, head: int) -> int:
    """``list_first_entry``'s node: ``head->next`` (the head itself when empty)."""
    return as_i64(nxt[head])


@hot_njit
def list_last(prv: np.ndarray, head: int) -> int:
    """``list_last_entry``'s node: ``head->prev`` (the head itself when empty)."""
    return as_i64(prv[head])


def list_nodes(nxt: np.ndarray, head: int) -> list[int]:
    """The nodes of a list, first to last (for checks and debugging; not compiled)."""
    out = []
    node = int(nxt[head])
    while node != head:
        out.append(node)
        node = int(nxt[node])
    return out
