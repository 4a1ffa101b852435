"""What each live check runs when not told otherwise: the one table the library and the CLI share.

``zsmalloc verify --kernel`` / ``--guest`` / ``--zswap`` (and its alias ``zsmalloc zswap
verify``) take their defaults from here, as do :func:`~.verify_zram.verify_zram`
and :func:`~.verify_zswap.verify_zswap`.  The module imports nothing, so the
CLI can show the values in its help without loading the model.
"""

from __future__ import annotations

from typing import Final, TypedDict


class CheckDefaults(TypedDict):
    algorithm: str
    n_ops: int  # zram: operations; zswap: frees and swap-ins after the stores
    seed: int
    nr_pages: int  # zram: device slots; zswap: pages swapped out


ZRAM: Final[CheckDefaults] = {
    "algorithm": "lzo-rle",
    "n_ops": 2000,
    "seed": 1,
    "nr_pages": 256,  # small, so overwrites and full zspages are common
}
GUEST: Final[CheckDefaults] = {
    "algorithm": "lz4",  # every Debian kernel has it, and the model compresses it exactly
    "n_ops": 2000,
    "seed": 1,
    "nr_pages": 256,
}
ZSWAP: Final[CheckDefaults] = {
    "algorithm": "lzo",
    "n_ops": 2000,
    "seed": 1,
    "nr_pages": 20000,  # about 18500 reach zswap: every size class, well below the pool limit
}
