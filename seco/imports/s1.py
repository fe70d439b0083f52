"""Sentinel-1 of SSL4EO-S12 v1: ``<root>/s1/<location>/<S1 product id>/{VV,VH}.tif`` + ``metadata.json``.

Layout (zhu-xlab/SSL4EO-S12 ``src/download_data/ssl4eo_s12_downloader.py``: ``get_patch_s1``, ``save_patch``;
torchgeo ``SSL4EOS12`` split ``"s1"``, bands ``VV``, ``VH``): per location one folder per season named by the
Earth Engine ``system:index`` (``S1A_IW_GRDH_1SDV_20200402T053427_20200402T053452_031957_03B0A6_1D1B``), each
holding ``VV.tif`` and ``VH.tif`` (float32 dB, 264 x 264 at 10 m, '+proj=latlong', one band) and
``metadata.json`` = Earth Engine ``image.getInfo()`` (properties under ``"properties"``).

Pairing: the downloader searched each modality in its own 30-day window centred on the same per-location date
of each season (``get_period(date - delta, days=30)``), and seasons are ~3 months apart, so the S1 season of an
S2 date is the S1 acquisition closest in time to it within :data:`MAX_OFFSET_DAYS`. S1 without such an S2 date
(its S2 season is missing or was left out) is not stored and is counted.

Runs in the reader workers (numpy, rasterio, json only).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from seco.radiometry.corpora import S1_SSL4EO_RULE, s1_db

__all__ = ["MAX_OFFSET_DAYS", "S1_FILES", "S1DateRead", "S1Location", "orbit_state_from_time", "pair_s1",
           "read_s1_date", "read_s1_location", "relative_orbit", "s1_attrs"]

S1_FILES = ("VV", "VH")
#: Largest |S1 time - S2 time| paired, days: both come from the same 30-day window of a season.
MAX_OFFSET_DAYS = 30.0
_ID = re.compile(r"^S1([A-D])_(\w\w)_(\w{4})_\w{4}_(\d{8}T\d{6})_\d{8}T\d{6}_(\d{6})_")
#: Absolute orbit of the first pass over relative orbit 1, per platform (ESA: relative = (abs - k) % 175 + 1).
_ORBIT_K = {"A": 73, "B": 27}


@dataclass
class S1DateRead:
    """One S1 season folder: (2, P, P) float32 dB (NaN = no data) and its metadata, or why it was left out."""

    item_id: str
    when: datetime | None = None
    db: np.ndarray | None = None
    meta: dict[str, Any] | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class S1Location:
    """S1 of one location on the store's date slots (the S2 dates')."""

    db: np.ndarray  # (T, 2, P, P) float32 dB, NaN = no data
    valid: np.ndarray  # (T,) bool
    meta: list[dict[str, Any] | None]
    problems: list[str] = field(default_factory=list)  # "<id>: <why>" of S1 seasons left out
    notes: list[str] = field(default_factory=list)


def orbit_state_from_time(when: datetime, lon: float) -> str:
    """Orbit direction of a Sentinel-1 pass from its local solar time: the orbit is sun-synchronous with the
    ascending node at 18:00 local time, so ascending passes cross near 18:00 and descending near 06:00."""
    hour = (when.hour + when.minute / 60.0 + when.second / 3600.0 + lon / 15.0) % 24.0
    return "ascending" if hour >= 12.0 else "descending"


def relative_orbit(platform: str, absolute_orbit: int) -> int:
    """Relative orbit (1..175) of a Sentinel-1A/B absolute orbit number (ESA's relation)."""
    return (absolute_orbit - _ORBIT_K[platform]) % 175 + 1


def _properties(path: str, notes: list[str]) -> dict[str, Any]:
    p = os.path.join(path, "metadata.json")
    if not os.path.isfile(p):
        notes.append("no metadata.json")
        return {}
    try:
        with open(p, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        notes.append(f"unreadable metadata.json ({type(e).__name__}); ignored")
        return {}
    if not isinstance(info, dict):
        notes.append("metadata.json is not an object; ignored")
        return {}
    props = info.get("properties")  # image.getInfo(); a flat properties dict is accepted as well
    return props if isinstance(props, dict) else info


def _s1_meta(item_id: str, props: dict[str, Any], notes: list[str]) -> tuple[datetime | None, dict[str, Any]]:
    """Acquisition time and the contract's per-date fields from the properties, else from the product id."""
    m = _ID.match(item_id)
    when: datetime | None = None
    if isinstance(props.get("system:time_start"), (int, float)):
        when = datetime.fromtimestamp(float(props["system:time_start"]) / 1000.0, tz=UTC)
    elif m:
        when = datetime.strptime(m.group(4), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        notes.append("datetime from the product id")
    letter = props.get("platform_number") or (m.group(1) if m else None)
    platform = f"sentinel-1{str(letter).lower()}" if letter else None
    orbit = props.get("orbitProperties_pass")
    rel = props.get("relativeOrbitNumber_start")
    if rel is None and m and m.group(1) in _ORBIT_K:
        rel = relative_orbit(m.group(1), int(m.group(5)))
        notes.append("relative orbit from the product id's absolute orbit")
    looks = None  # Earth Engine's GRD properties carry no equivalent number of looks
    return when, {
        "item_id": item_id,
        "product": "GRD",
        "quantity": "sigma0",
        "platform": platform,
        "orbit_state": str(orbit).lower() if orbit else None,
        "relative_orbit": int(rel) if rel is not None else None,
        "rule": S1_SSL4EO_RULE,
        "looks": looks,
        "mode": props.get("instrumentMode") or (m.group(2) if m else None),
    }


def read_s1_date(path: str, item_id: str, patch_size: int, tol: int = 1) -> S1DateRead:
    """Read one S1 season folder (VV, VH) as dB on the 10 m grid; never raises on bad files."""
    import rasterio

    from seco.imports.layouts import fit_patch  # the S2 reader's crop/pad rule (the downloader's center_crop)

    out = S1DateRead(item_id=item_id)
    props = _properties(path, out.notes)
    when, meta = _s1_meta(item_id, props, out.notes)
    if when is None:
        out.problem = "no acquisition time (no system:time_start in metadata.json, product id not S1x_IW_...)"
        return out
    if meta["mode"] not in (None, "IW"):
        out.problem = f"instrument mode {meta['mode']}, not IW (VV+VH at 10 m)"
        return out
    db = np.empty((2, patch_size, patch_size), dtype=np.float32)
    for c, band in enumerate(S1_FILES):
        fpath = os.path.join(path, f"{band}.tif")
        if not os.path.isfile(fpath):
            out.problem = f"missing band {band}.tif"
            return out
        try:
            with rasterio.open(fpath) as src:
                if src.count != 1 or np.dtype(src.dtypes[0]).kind != "f":
                    out.problem = f"{band}.tif is {src.count} x {src.dtypes[0]}, expected 1 band of float dB"
                    return out
                a = src.read(1)
                centre_lon = (src.transform @ (src.width / 2.0, src.height / 2.0))[0]
                geographic = src.crs is None or src.crs.is_geographic
        except Exception as e:  # a truncated or corrupt file: rasterio/GDAL raise many types
            out.problem = f"unreadable {band}.tif ({type(e).__name__}: {str(e)[:120]})"
            return out
        try:
            a, _, note = fit_patch(a, patch_size, tol, band)
        except ValueError as e:
            out.problem = str(e)
            return out
        if note:
            out.notes.append(note)
        db[c] = s1_db(a)
    nodata = float(np.mean(np.isnan(db).any(axis=0)))
    if nodata >= 1.0:
        out.problem = "no data: every pixel is 0 or NaN in VV or VH"
        return out
    meta.pop("mode")
    if meta["orbit_state"] is None and geographic and -180.0 <= centre_lon <= 180.0:
        meta["orbit_state"] = orbit_state_from_time(when, centre_lon)  # both downloaders write '+proj=latlong'
        out.notes.append("orbit state from the local solar time")
    meta["datetime"] = when
    meta["nodata_fraction"] = nodata
    out.when, out.db, out.meta = when, db, meta
    return out


def pair_s1(s1_times: list[datetime], s2_times: list[datetime | None],
            max_days: float = MAX_OFFSET_DAYS) -> dict[int, int]:
    """Match S1 acquisitions to S2 date slots: closest in time within ``max_days``, one to one.

    Args:
        s1_times: acquisition time of each S1 season read.
        s2_times: per store slot, the S2 date's time (``None``: no valid S2 date in that slot).

    Returns:
        ``{s1 index: slot}``; pairs are taken in order of increasing time offset, so a slot gets its closest S1.
    """
    cands = sorted((abs((a - b).total_seconds()), i, t)
                   for i, a in enumerate(s1_times) for t, b in enumerate(s2_times)
                   if b is not None and abs((a - b).total_seconds()) <= max_days * 86400.0)
    used_s1: set[int] = set()
    used_slot: set[int] = set()
    out: dict[int, int] = {}
    for _, i, t in cands:
        if i not in used_s1 and t not in used_slot:
            out[i] = t
            used_s1.add(i)
            used_slot.add(t)
    return out


def read_s1_location(folder: str, s2_times: list[datetime | None], patch_size: int,
                     tol: int = 1) -> S1Location:
    """Read a location's S1 seasons and place each on the slot of its S2 date.

    Args:
        folder: ``<root>/s1/<location>`` (may be absent: the location then has no S1).
        s2_times: per store slot, the S2 date's acquisition time (``None`` for slots without a valid S2 date).
        patch_size: ``P``.
    """
    T = len(s2_times)
    res = S1Location(db=np.full((T, 2, patch_size, patch_size), np.nan, dtype=np.float32),
                     valid=np.zeros(T, dtype=bool), meta=[None] * T)
    try:
        dirs = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        res.notes.append("no s1 folder for this location")
        return res
    except OSError as e:
        res.problems.append(f"{folder}: cannot list the s1 folder ({e})")
        return res
    reads = [read_s1_date(os.path.join(folder, d), d, patch_size, tol) for d in dirs]
    good = [r for r in reads if r.db is not None]
    for r in reads:
        res.notes += [f"s1 {r.item_id}: {n}" for n in r.notes]
        if r.problem:
            res.problems.append(f"{r.item_id}: {r.problem}")
    pairs = pair_s1([r.when for r in good if r.when is not None], s2_times)
    for i, r in enumerate(good):
        t = pairs.get(i)
        if t is None:
            res.problems.append(f"{r.item_id}: no S2 date within {MAX_OFFSET_DAYS:g} days (its season has no S2)")
            continue
        s2_time = s2_times[t]
        assert r.db is not None and r.meta is not None and r.when is not None and s2_time is not None
        res.db[t], res.valid[t] = r.db, True
        res.meta[t] = {**r.meta, "time_offset_days": (r.when - s2_time).total_seconds() / 86400.0}
    return res


def s1_attrs(v11: bool) -> dict[str, Any]:
    """What an imported store records about its S1 (``user_attrs.import.s1``)."""
    from seco.radiometry.corpora import S1_SSL4EO_V11_RULE, SSL4EO_S1_DB, SSL4EO_V11_S1_DB

    return {
        "radiometry": (SSL4EO_V11_S1_DB if v11 else SSL4EO_S1_DB).to_attrs(),
        "rule": S1_SSL4EO_V11_RULE if v11 else S1_SSL4EO_RULE,
        "pairing": (f"each S1 season on the S2 date closest in time within {MAX_OFFSET_DAYS:g} days, one to one (the "
                    "downloader searched both in 30-day windows around the same date); S1 without an S2 date is "
                    "not stored; an S2 date without S1 keeps its S2"),
        "metadata": ("from metadata.json (Earth Engine image properties): system:time_start, platform_number, "
                     "orbitProperties_pass, relativeOrbitNumber_start; without it: time and platform from the product "
                     "id, relative orbit from its absolute orbit, orbit state from the local solar time (ascending "
                     "~18:00, descending ~06:00); looks unknown"),
        "grid": "the corpus' own 264 px S1 patch of the same region as the S2 patch, not resampled",
    }
