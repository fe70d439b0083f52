"""Which locations get a page: a seeded sample plus every location that carries a warning."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Failure-table kinds that are warnings about a committed location (``seco.collect.dn_warnings``).
RADIOMETRY_KINDS = ("radiometry-rule", "radiometry-inconsistent")


def warned_locations(store: Any, check: dict[str, Any] | None, failures: Sequence[dict[str, Any]]
                     ) -> dict[int, list[str]]:
    """Location index -> why it is warned, from metadata only (no pixels are read).

    Sources: a date's ``dn_warning`` (the provider rule took a default), a ``store check`` finding, and the
    radiometry rows of a collect failures table (its ``location_id`` is the location's key).
    """
    out: dict[int, list[str]] = defaultdict(list)
    if len(store):
        warn = store.meta_array("dn_warning")  # (N, T) str objects, '' = none
        has = np.vectorize(bool, otypes=[bool])(warn) & store.valid_mask()
        for i in np.flatnonzero(has.any(axis=1)):
            out[int(i)].append("dn_warning on date(s) " + ", ".join(str(t) for t in np.flatnonzero(has[i])))
    for f in (check or {}).get("findings", []):
        loc = f.get("location")
        if isinstance(loc, int) and 0 <= loc < len(store):
            out[loc].append(f"store check [{f.get('check')}] {f.get('severity')}")
    rad = [r for r in failures if r.get("kind") in RADIOMETRY_KINDS]
    if rad:
        index = {k: i for i, k in enumerate(store.keys())}
        for r in rad:
            j = index.get(str(r.get("location_id")))
            if j is not None:
                out[j].append(f"collect {r['kind']} (date {r.get('date_index')})")
    return {i: sorted(set(v)) for i, v in out.items()}


def choose(n: int, max_locations: int, seed: int, warned: Sequence[int]) -> np.ndarray:
    """Sorted location indices: ``max_locations`` drawn without replacement by ``seed`` (all when fewer) plus
    every ``warned`` one. The same (n, max_locations, seed) always gives the same sample."""
    if max_locations >= n:
        base = np.arange(n)
    else:
        base = np.random.default_rng(seed).choice(n, size=max_locations, replace=False)
    return np.union1d(base, np.asarray(list(warned), dtype=np.int64)).astype(np.int64)
