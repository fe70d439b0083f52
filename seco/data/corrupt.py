"""Damaged locations in the pre-training data path: typed errors naming location and file, and the records a
run keeps of the locations it skipped (``--on-corrupt skip``).

A *record* is a plain dict (``location``, ``key``, ``path``, ``message``) so that it travels from DataLoader
workers to the training loop and into the checkpoint and ``metrics.csv`` unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seco.errors import SecoError, StoreCorruptError, StoreError

__all__ = [
    "MAX_SUBSTITUTES", "ON_CORRUPT", "corrupt_error", "error_from_record", "is_decode_error", "record",
    "substitutes",
]

ON_CORRUPT = ("fail", "skip")
#: Tries to find a readable substitute for one damaged sample before giving up.
MAX_SUBSTITUTES = 64


def is_decode_error(exc: BaseException) -> bool:
    """True for what a store read raises on damaged data (the codec's errors, a truncated or unreadable file,
    a shard index failing its checksum, ``StoreCorruptError``); False for programming or usage errors."""
    if isinstance(exc, StoreCorruptError):
        return True
    if isinstance(exc, SecoError):  # typed usage errors (ConfigError is a ValueError) are not damage
        return isinstance(exc, StoreError) and not isinstance(exc, IndexError)
    return isinstance(exc, RuntimeError | ValueError | OSError)


def _shard_file(store: Any, loc: int) -> str | None:
    """The file holding location ``loc``'s pixels (its shard), or its folder, as far as it can be found."""
    root = getattr(store, "path", None)
    if not isinstance(root, str | os.PathLike):
        return None
    base = Path(root) / "images" / "c" / str(loc)
    if base.is_dir():
        for dirpath, _, files in os.walk(base):
            if files:
                return str(Path(dirpath) / sorted(files)[0])
    return str(base)


def corrupt_error(store: Any, loc: int, exc: BaseException) -> StoreCorruptError:
    """A ``StoreCorruptError`` for a failed read of location ``loc``, naming the location, its key and file."""
    try:
        key: str | None = str(store.key(loc))
    except Exception:  # noqa: BLE001 - the key is only for the message
        key = None
    path = getattr(exc, "path", None) or _shard_file(store, loc)
    if isinstance(exc, StoreCorruptError) and exc.location == loc and exc.path:
        return exc
    where = getattr(store, "path", "the store")
    msg = (
        f"location {loc}" + (f" ({key})" if key else "") + f" of {where} cannot be decoded "
        f"({type(exc).__name__}: {exc}); damaged file: {path}. Re-collect or restore that location, or pass "
        "--on-corrupt skip to leave damaged locations out of pre-training"
    )
    return StoreCorruptError(msg, location=loc, key=key, path=path)


def record(err: StoreCorruptError) -> dict[str, Any]:
    """The plain-dict record of a damaged location (what workers send and checkpoints keep)."""
    return {"location": err.location, "key": err.key, "path": err.path, "message": str(err)}


def error_from_record(rec: Mapping[str, Any]) -> StoreCorruptError:
    """The typed error of a record (raised by the loop in the default ``--on-corrupt fail`` mode)."""
    return StoreCorruptError(str(rec["message"]), location=rec.get("location"), key=rec.get("key"),
                             path=rec.get("path"))


def substitutes(seed: int, epoch: int, i: int, n: int) -> Iterator[int]:
    """Dataset indices to use instead of a damaged sample ``i`` of ``epoch``, in a fixed seeded order.

    The order depends only on ``(seed, epoch, i)`` and the first readable one is used, so the substitute is a
    function of the data alone: a resumed run (which already knows the damaged locations and skips them
    without reading) picks exactly what the straight run picked.
    """
    rng = np.random.default_rng([seed, epoch, i, 0x5ECC])
    for _ in range(MAX_SUBSTITUTES):
        j = int(rng.integers(n))
        if j != i:
            yield j
