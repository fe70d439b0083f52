"""The records passed between the planner, the workers and the driver of ``seco collect``.

A candidate location (:class:`LocationTask`), one failed candidate scene or search (:class:`Failure`, a row of
the failures table) and what a worker found for a candidate (:class:`LocationResult`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Failure kinds that are faults of the data or the servers (the rest are ordinary rejections).
FAULT_KINDS = ("read", "missing", "transient", "catalog", "missing-asset", "malformed-item", "error")
#: Kind of the rows that record a search or read which failed transiently and then succeeded on a retry
#: (neither a fault that cost a scene nor a rejection: the data came through).
RETRIED = "retried"


@dataclass(frozen=True)
class LocationTask:
    """One candidate location of the stream.

    Attributes:
        order: position in the candidate stream (the file's locations, then the spares).
        id: location id (the store key is ``str(id)``).
        lon: longitude, degrees.
        lat: latitude, degrees.
        windows: T (start, end) search windows, timezone-aware UTC, oldest first.
        spare: whether it is a replacement candidate.
    """

    order: int
    id: int
    lon: float
    lat: float
    windows: tuple[tuple[dt.datetime, dt.datetime], ...]
    spare: bool = False

    @property
    def key(self) -> str:
        return str(self.id)


@dataclass(frozen=True)
class Failure:
    """One row of the failures table: a candidate scene (or search) that did not give a patch.

    Attributes:
        location_id: the location.
        date_index: the date window (0-based, oldest first).
        item_id: the STAC item, when known.
        href: the asset or endpoint concerned, when known.
        kind: ``read`` (corrupt or truncated asset), ``missing`` (asset file absent), ``transient`` (timeouts / 5xx beyond the
            retries), ``catalog`` (a search or item the catalog could not serve), ``missing-asset`` (item lacks
            a band), ``malformed-item`` (a catalog row that is not a usable STAC item: no datetime, bbox or
            geometry, unparsable fields; ``location_id`` and ``date_index`` are -1 when it was found on opening
            the catalog rather than by a search), ``error`` (an unexpected exception), ``outside`` (patch not
            inside the scene), ``patch`` (cloud or nodata above the limits), ``window`` (no valid scene left for
            the date), ``retried`` (a search or read that failed transiently, then succeeded: ``attempts`` says
            after how many tries, ``reason`` the errors).
        reason: human-readable detail.
        attempts: attempts made (retries included).
    """

    location_id: int
    date_index: int
    item_id: str | None
    href: str | None
    kind: str
    reason: str
    attempts: int = 1

    @property
    def is_fault(self) -> bool:
        return self.kind in FAULT_KINDS


@dataclass
class LocationResult:
    """What a worker found for one candidate.

    Attributes:
        task: the candidate.
        status: ``ok`` (every date has a patch), ``rejected`` (some date has none: replace the location) or
            ``error`` (the catalog stayed unreachable: undecided, the run stops here and a rerun retries it).
        reason: why it was rejected or failed.
        images: (T, C, H, W) uint16 when ok.
        valid: (T,) bool when ok.
        dates_meta: T dicts of store metadata when ok.
        failures: every candidate scene or search that failed on the way.
        searches: catalog searches made.
        reads: patch reads attempted.
        items: the chosen STAC item of each date so far (when ok: one per date).
        clear: (T, H, W) bool clear pixels when ok (SCL classes, else the store's band test; ``seco.store.clear``).
        clear_rule: T rules of ``clear`` (``"scl"`` or ``"test:..."``) when ok.
        s1_db: (T, 2, H, W) float32 S1 backscatter in dB (VV, VH; NaN = nodata) with ``--s1``, else ``None``.
        s1_valid: (T,) bool, which dates have S1 (with ``--s1``).
        s1_meta: T per-date S1 records (``None`` for a date without S1; with ``--s1``).
    """

    task: LocationTask
    status: str
    reason: str = ""
    images: np.ndarray | None = None
    valid: np.ndarray | None = None
    dates_meta: list[dict[str, Any]] | None = None
    clear: np.ndarray | None = None
    clear_rule: list[str] | None = None
    failures: list[Failure] = field(default_factory=list)
    searches: int = 0
    reads: int = 0
    items: list[str | None] = field(default_factory=list)
    s1_db: np.ndarray | None = None
    s1_valid: np.ndarray | None = None
    s1_meta: list[dict[str, Any] | None] | None = None
