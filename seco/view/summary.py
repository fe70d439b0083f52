"""The store-wide views: band histograms, date spacing, day of year, valid dates, failures, check findings.

Everything here reads metadata arrays ((N, T) numbers, a few MB per 100k locations) and the store's saved
histograms, never the pixels of all locations.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seco.errors import StoreError

#: Optical histogram display: DN 1..MAX_DN in bins of DN_BIN (reflectance 0..1), plus one bin above.
DN_BIN, MAX_DN = 100, 10000
#: S1 histogram display: dB from DB_RANGE[0] to DB_RANGE[1] in bins of DB_BIN.
DB_BIN, DB_RANGE = 0.5, (-40.0, 10.0)
#: How many examples the failures table shows per kind.
EXAMPLES = 3
#: Background points on the map at most (a seeded sample of every location beyond that).
MAP_POINTS = 20000


def first_valid(arr: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N,) value of each location's first valid date from (N, T) ``arr`` (NaN where none)."""
    t = np.argmax(valid, axis=1)  # (N,)
    out = arr[np.arange(len(arr)), t].astype(np.float64)
    out[~valid.any(axis=1)] = np.nan
    return out


def optical_histograms(store: Any) -> dict[str, Any]:
    """Per-band DN histograms from the store's exact histogram (nodata 0 left out), rebinned for display."""
    if not len(store):
        return {"bands": [], "edges": [], "counts": []}
    hist = store.histogram()  # (C, 65536) uint64
    nb = MAX_DN // DN_BIN
    counts = []
    for c in range(hist.shape[0]):
        h = hist[c, 1 : MAX_DN + 1].reshape(nb, DN_BIN).sum(axis=1)  # (nb,)
        counts.append([int(x) for x in h] + [int(hist[c, MAX_DN + 1 :].sum())])
    try:
        st = store.stats()
        stats = {b: {k: round(float(st[k][i]), 1) for k in ("mean", "std", "p2", "p98")}
                 for i, b in enumerate(store.bands)}
    except StoreError:
        stats = {}
    return {"bands": list(store.bands), "bin": DN_BIN, "max": MAX_DN, "counts": counts, "stats": stats,
            "units": "DN (reflectance x 10000)"}


def s1_bins() -> np.ndarray:
    """Edges of the S1 display histogram in dB."""
    lo, hi = DB_RANGE
    return np.arange(lo, hi + DB_BIN / 2, DB_BIN)


def s1_histograms(s1: Any, viewed: np.ndarray | None) -> dict[str, Any]:
    """Per-band dB histograms of the S1 group: the store's own when its reader gives them
    (``histogram()``: (2, 65536) counts of the stored codes), else ``viewed`` ((2, bins) counts summed over the
    viewed locations)."""
    edges = s1_bins()
    source = "viewed locations"
    counts = viewed
    hist_fn = getattr(s1, "histogram", None)
    if hist_fn is not None:
        try:
            h = np.asarray(hist_fn(), dtype=np.float64)  # (2, 65536) per code; code u = dB * 100 + 32768
            db = (np.arange(h.shape[1]) - 32768) / 100.0
            idx = np.clip(np.digitize(db, edges) - 1, 0, len(edges) - 2)
            counts = np.stack([np.bincount(idx[1:], weights=h[c, 1:], minlength=len(edges) - 1)
                               for c in range(h.shape[0])])
            source = "whole store"
        except Exception:  # a reader without saved histograms: keep the viewed locations' counts
            counts = viewed
    stats: dict[str, Any] = {}
    try:
        st = s1.stats()
        stats = {b: {k: round(float(st[k][i]), 2) for k in ("mean", "std", "p2", "p98")}
                 for i, b in enumerate(s1.bands)}
    except Exception as e:  # an S1 group without valid data
        stats = {"note": str(e)}
    return {"bands": list(s1.bands), "edges": [float(x) for x in edges], "source": source, "stats": stats,
            "counts": [] if counts is None else [[int(x) for x in row] for row in counts], "units": "dB"}


def date_views(store: Any) -> dict[str, Any]:
    """Valid dates per location, days between consecutive valid dates, day of year, cloud fraction."""
    valid = store.valid_mask()  # (N, T)
    T = store.num_dates
    per = valid.sum(axis=1) if len(store) else np.zeros(0, int)
    out: dict[str, Any] = {"valid_counts": [int(x) for x in np.bincount(per, minlength=T + 1)]}
    if not len(store):
        return {**out, "spacing": [], "doy": [], "cloud": []}
    when = store.meta_array("datetime")  # (N, T) datetime64[us]
    ok = valid & ~np.isnat(when)
    days = np.where(ok, when.astype("datetime64[s]").astype(np.int64) / 86400.0, np.nan)  # (N, T)
    gaps: list[np.ndarray] = []
    last = np.full(len(days), np.nan)
    for t in range(T):  # gap to the previous valid date of the same location
        d = days[:, t]
        g = d - last
        gaps.append(g[np.isfinite(g)])
        last = np.where(np.isfinite(d), d, last)
    gap = np.concatenate(gaps) if gaps else np.zeros(0)
    top = max(7 * int(np.ceil(gap.max() / 7)) if gap.size else 7, 7)
    spacing = np.histogram(gap, bins=np.arange(0, top + 8, 7))[0]  # the largest gap inside the last bin
    doy = (when[ok].astype("datetime64[D]") - when[ok].astype("datetime64[Y]")).astype(int) + 1
    cloud = store.meta_array("cloud_fraction")[ok]
    cloud = cloud[np.isfinite(cloud)]
    return {
        **out,
        "spacing": [int(x) for x in spacing], "spacing_bin_days": 7,
        "spacing_median_days": round(float(np.median(gap)), 1) if gap.size else None,
        "doy": [int(x) for x in np.histogram(doy, bins=np.arange(1, 374, 7))[0]],
        "cloud": [int(x) for x in np.histogram(cloud, bins=np.linspace(0, 1, 11))[0]],
    }


def map_points(store: Any, seed: int) -> dict[str, Any]:
    """Every location's centre (first valid date), as flat [lat, lon, ...] rounded to 0.01 degree; at most
    :data:`MAP_POINTS` (a seeded sample of them beyond that)."""
    if not len(store):
        return {"points": [], "total": 0}
    valid = store.valid_mask()
    lat = first_valid(store.meta_array("lat"), valid)
    lon = first_valid(store.meta_array("lon"), valid)
    idx = np.arange(len(store))
    if len(idx) > MAP_POINTS:
        idx = np.sort(np.random.default_rng(seed).choice(len(idx), MAP_POINTS, replace=False))
    keep = idx[np.isfinite(lat[idx]) & np.isfinite(lon[idx])]
    pts = np.stack([lat[keep], lon[keep]], axis=1).round(2).reshape(-1)
    return {"points": [float(x) for x in pts], "total": int(len(store))}


def failures_table(rows: Sequence[dict[str, Any]], source: str) -> dict[str, Any]:
    """A failures table summarised by kind: count and the first :data:`EXAMPLES` rows of each."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[str(r.get("kind") or "other")].append(r)
    kinds = []
    for kind, rs in sorted(by.items(), key=lambda kv: -len(kv[1])):
        ex = [{k: (None if v is None else str(v)) for k, v in r.items() if k != "kind"} for r in rs[:EXAMPLES]]
        kinds.append({"kind": kind, "count": len(rs), "examples": ex})
    return {"source": source, "total": len(rows), "kinds": kinds}


def find_failures(store_path: str, given: str | None) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The failures table of a collected store (``_collect/failures.parquet``, or ``given``: that file or a
    ``--journal`` folder) or the skipped locations of an imported one (``_import/report.json``).

    Returns:
        The summary (``None`` when the store has none) and the raw rows (for warned locations).
    """
    base = Path(store_path) if "://" not in store_path else None
    candidates = []
    if given is not None:
        g = Path(given).expanduser()
        candidates.append(g / "failures.parquet" if g.is_dir() else g)
        if not candidates[0].is_file():
            raise StoreError(f"--failures {given}: no failures table there (give the failures.parquet that "
                             "`seco collect` wrote, or its --journal folder)")
    elif base is not None:
        candidates += [base / "_collect" / "failures.parquet", base / "_import" / "report.json"]
    for path in candidates:
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
            return failures_table(rows, str(path)), rows
        rep = json.loads(path.read_text(encoding="utf-8"))
        rows = [{"kind": _import_kind(str(s.get("reason", ""))), "location": s.get("location"),
                 "reason": s.get("reason")} for s in rep.get("skipped", [])]
        return failures_table(rows, str(path)), []
    return None, []


def _import_kind(reason: str) -> str:
    from seco.imports.pipeline import reason_kind

    return reason_kind(reason)


def load_check_report(path: Path | None) -> dict[str, Any] | None:
    """The JSON of ``seco store check --json``, summarised: counts by (check, severity) and every finding.

    Raises:
        StoreError: the file is not such a report.
    """
    if path is None:
        return None
    try:
        rep = json.loads(path.read_text(encoding="utf-8"))
        findings = [dict(f) for f in rep["findings"]]
        counts = Counter((str(f["check"]), str(f["severity"])) for f in findings)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"--check-report {path}: not the JSON of `seco store check --json` ({type(e).__name__}: "
                         f"{e}); write it with `seco store check STORE --json > {path}`") from None
    return {"source": str(path), "checked": rep.get("checked"), "notes": rep.get("notes", []),
            "counts": [{"check": c, "severity": s, "count": n} for (c, s), n in sorted(counts.items())],
            "findings": findings}


def default_check_report(out: Path, given: str | os.PathLike[str] | None) -> Path | None:
    """``given``, else ``check.json`` in the view folder when a user saved one there."""
    if given is not None:
        return Path(given).expanduser()
    p = out / "check.json"
    return p if p.is_file() else None
