"""numba, or plain Python where numba is missing or disabled.

Hot loops are written once, in the subset of Python that numba compiles, and
decorated with :func:`njit` from here.  Without numba (or with
``NUMBA_DISABLE_JIT=1``) the same functions run as ordinary Python and give
identical results, only slower; the test-suite runs both ways.

``prange`` is ``range`` without numba.  ``HAVE_NUMBA`` says whether code is
actually compiled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

try:
    import numba as _numba

    HAVE_NUMBA = os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0")
except ImportError:  # pragma: no cover - exercised where numba is absent
    _numba = None
    HAVE_NUMBA = False


def njit(*args: Any, **kwargs: Any) -> Any:
    """``numba.njit(cache=True, ...)``, or the identity decorator without numba."""
    if _numba is None:
        if args and callable(args[0]):
            return args[0]
        return lambda f: f
    kwargs.setdefault("cache", True)
    return _numba.njit(*args, **kwargs)


prange: Callable[..., Any] = _numba.prange if _numba is not None else range
