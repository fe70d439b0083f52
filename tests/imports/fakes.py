"""Seeded fake corpora in exactly the published layouts (docs/IMPORT.md), with broken files and short locations.

``make_seco`` writes the SeCo 100k/1M layout (uint8 JPEG GeoTIFFs, '+proj=latlong', up to 5 dates);
``make_ssl4eo`` the SSL4EO-S12 v1 layout (uint16 uncompressed GeoTIFFs, 4 seasons, s2c 13 / s2a 12 bands).
Both return a :class:`Fake` saying what each location holds, so tests check the importer against the plan,
not against the importer. Locations, when ``broken`` (the default), by id:

    0  every date good (plus preview GeoTIFFs and a hidden folder beside the date folders, to be ignored)
    1  short: only 2 dates (skipped with --min-dates 3)
    2  one date lacks B5.tif (that date left out)
    3  one date's B2.tif is truncated (unreadable; that date left out)
    4  every B8A.tif is one pixel too large (centre-cropped, all dates kept)
    5  one date without metadata.json (datetime from the product id)
    6  (SSL4EO only) metadata says PROCESSING_BASELINE 04.00 (-1000 DN)
    7+ good
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

SECO_FILES = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")
L1C_FILES = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
RES = {"B1": 60, "B9": 60, "B10": 60, "B5": 20, "B6": 20, "B7": 20, "B8A": 20, "B11": 20, "B12": 20}


@dataclass
class Fake:
    """What was written: per location id, the date folders and what the importer should make of them."""

    root: Path
    patch: int
    dates: dict[str, list[str]] = field(default_factory=dict)  # location -> product ids written
    good: dict[str, list[str]] = field(default_factory=dict)  # location -> product ids that must be imported
    centre: dict[str, tuple[float, float]] = field(default_factory=dict)  # location -> (lon, lat)
    skipped: set[str] = field(default_factory=set)  # locations that must be skipped (with --min-dates 3)
    #: SSL4EO-S12 S1: location -> [(S1 product id, the S2 product id it must pair with or None, readable)]
    s1: dict[str, list[tuple[str, str | None, bool]]] = field(default_factory=dict)


def _write(path: Path, a: np.ndarray, centre: tuple[float, float], compress: str) -> None:
    h, w = a.shape
    lon, lat = centre
    scale = 10.0 * 264 / h  # metres per native pixel (264 px of 10 m per patch side)
    xres, yres = scale / (111320.0 * np.cos(np.radians(lat))), scale / 110540.0
    transform = Affine.translation(lon - xres * w / 2, lat + yres * h / 2) @ Affine.scale(xres, -yres)
    profile = {"driver": "GTiff", "width": w, "height": h, "count": 1, "crs": "+proj=latlong",
               "transform": transform, "dtype": a.dtype.name}
    if compress != "none":
        profile["compress"] = compress
    with rasterio.open(path, "w", **profile) as f:
        f.write(a[None])


def _field(rng: np.random.Generator, n: int, base: float) -> np.ndarray:
    """A smooth reflectance field (n, n) around ``base`` with some texture."""
    k = max(2, n // 8)
    coarse = rng.uniform(0.6, 1.4, size=(k, k))
    up = np.kron(coarse, np.ones((n // k + 1, n // k + 1)))[:n, :n]
    return np.clip(base * up + rng.normal(0, 0.01, size=(n, n)), 0.0, 1.2)


def _native(patch: int, f: str) -> int:
    return patch // (RES.get(f, 10) // 10)


def _make(root: Path, files: tuple[str, ...], n_dates: int, digits: int, locations: int, seed: int, patch: int,
          broken: bool, uint8: bool, baseline_case: bool) -> Fake:
    rng = np.random.default_rng(seed)
    fake = Fake(root=root, patch=patch)
    t_ref = datetime(2021, 9, 22, 10, 30, 0, tzinfo=UTC)
    for i in range(locations):
        name = f"{i:0{digits}d}"
        loc = root / name
        lon, lat = float(rng.uniform(-170, 170)), float(rng.uniform(-60, 60))
        fake.centre[name] = (lon, lat)
        nd = 2 if (broken and i == 1) else n_dates
        tile = f"T{rng.integers(10, 60)}{'ABCDEFGH'[rng.integers(0, 8)]}{'KLMNPQRS'[rng.integers(0, 8)]}" \
               f"{'ABCDEFGH'[rng.integers(0, 8)]}"
        ids = []
        for d in range(nd):
            when = t_ref - timedelta(weeks=12 * d, days=int(rng.integers(0, 10)), seconds=int(rng.integers(0, 3600)))
            pid = f"{when:%Y%m%dT%H%M%S}_{when + timedelta(seconds=3271):%Y%m%dT%H%M%S}_{tile}"
            ids.append(pid)
            ddir = loc / pid
            ddir.mkdir(parents=True)
            for b, f in enumerate(files):
                if broken and i == 2 and d == 1 and f == "B5":
                    continue
                n = _native(patch, f)
                if broken and i == 4 and f == "B8A":
                    n += 1
                refl = _field(rng, n, 0.05 + 0.03 * b + 0.02 * d)
                if uint8:
                    a = (np.clip(refl, 0, 1) * 255).astype(np.uint8)  # skimage rescale_intensity truncates
                    a[0, 0], a[0, 1] = 0, 255  # a dark and a saturated pixel: neither is nodata
                    _write(ddir / f"{f}.tif", a, (lon, lat), "JPEG")
                else:
                    a = np.clip(np.rint(refl * 10000), 1, 65535).astype(np.uint16)
                    _write(ddir / f"{f}.tif", a, (lon, lat), "none")
            if broken and i == 3 and d == 2:
                p = ddir / "B2.tif"
                p.write_bytes(p.read_bytes()[:200])  # truncated download
            meta = {"system:index": pid, "system:time_start": int(when.timestamp() * 1000),
                    "CLOUDY_PIXEL_PERCENTAGE": float(rng.uniform(0, 10)), "MGRS_TILE": tile[1:],
                    "PROCESSING_BASELINE": "04.00" if (baseline_case and broken and i == 6) else "02.14"}
            if not (broken and i == 5 and d == 0):
                (ddir / "metadata.json").write_text(json.dumps(meta))
        if broken and i == 0:  # what the downloaders' --preview and a notebook leave beside the date folders
            for pid in ids:
                _write(loc / f"{pid}.tif", np.full((patch, patch), 7, dtype=np.uint8 if uint8 else np.uint16),
                       (lon, lat), "none")
            (loc / ".ipynb_checkpoints").mkdir()
        fake.dates[name] = ids
        lost = {ids[1]} if (broken and i == 2) else {ids[2]} if (broken and i == 3) else set()
        fake.good[name] = [p for p in ids if p not in lost]
        if len(fake.good[name]) < 3:
            fake.skipped.add(name)
    return fake


def make_seco(root: Path, locations: int = 8, *, seed: int = 0, patch: int = 48, broken: bool = True) -> Fake:
    """A SeCo corpus tree (``<root>/<6 digits>/<product id>/B*.tif``, uint8 JPEG)."""
    return _make(root, SECO_FILES, 5, 6, locations, seed, patch, broken, uint8=True, baseline_case=False)


def make_ssl4eo(root: Path, locations: int = 8, *, modality: str = "s2c", seed: int = 0, patch: int = 48,
                broken: bool = True, s1: bool = False) -> Fake:
    """An SSL4EO-S12 v1 tree (``<root>/<modality>/<7 digits>/<product id>/B*.tif``, uint16) plus an s1/ folder
    (empty but for one location folder, or with ``s1`` the S1 seasons of every location: :func:`make_s1`)."""
    files = L1C_FILES if modality == "s2c" else tuple(f for f in L1C_FILES if f != "B10")
    fake = _make(root / modality, files, 4, 7, locations, seed, patch, broken, uint8=False, baseline_case=True)
    (root / "s1" / "0000000").mkdir(parents=True, exist_ok=True)
    if s1:
        make_s1(root / "s1", fake, seed=seed + 100, broken=broken)
    return fake


#: Real Earth Engine ``image.getInfo()`` of an S1 GRD scene (tests/fixtures/ssl4eo/s1_grd_ee_image.json, recorded).
S1_INFO = Path(__file__).resolve().parents[1] / "fixtures" / "ssl4eo" / "s1_grd_ee_image.json"


def make_s1(s1_root: Path, fake: Fake, *, seed: int = 0, broken: bool = True) -> None:
    """The S1 seasons of every location of ``fake`` (``<s1_root>/<7 digits>/<S1 id>/{VV,VH}.tif`` float32 dB
    + metadata.json = the recorded image info with this scene's time, id and orbit), each within +-14 days of an
    S2 date. Metadata values other than those are the recorded scene's. When ``broken``, by location id:

        0  a no-data stripe (0.0, the downloader's defaultValue) in the first season
        2  its S2 date 1 is left out (missing B5): that S1 season pairs with nothing (not stored)
        5  season 0's VV.tif is truncated (corrupt: that date keeps its S2, without S1)
        6  season 1 has no metadata.json (time and relative orbit from the product id)
        7  season 3 is missing (that date keeps its S2, without S1)
    """
    rng = np.random.default_rng(seed)
    info = json.loads(S1_INFO.read_text())
    info.pop("_source")
    for name, pids in fake.dates.items():
        lon, lat = fake.centre[name]
        entries: list[tuple[str, str | None, bool]] = []
        letter = "AB"[int(rng.integers(0, 2))]
        passing = ["ASCENDING", "DESCENDING"][int(rng.integers(0, 2))]
        for d, pid in enumerate(pids):
            if broken and name == "0000007" and d == 3:
                continue
            s2_time = datetime.strptime(pid[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
            when = s2_time + timedelta(days=float(rng.uniform(-14, 14)))
            absolute = int(rng.integers(20000, 40000))
            sid = (f"S1{letter}_IW_GRDH_1SDV_{when:%Y%m%dT%H%M%S}_{when + timedelta(seconds=25):%Y%m%dT%H%M%S}_"
                   f"{absolute:06d}_{int(rng.integers(0, 0xFFFFFF)):06X}_{int(rng.integers(0, 0xFFFF)):04X}")
            ddir = s1_root / name / sid
            ddir.mkdir(parents=True)
            for b, band in enumerate(("VV", "VH")):
                db = (-11.0 - 7.0 * b + rng.normal(0, 3.0, size=(fake.patch, fake.patch))).astype(np.float32)
                if broken and name == "0000000" and d == 0:
                    db[:, :5] = 0.0  # masked pixels sampled with defaultValue=0
                _write(ddir / f"{band}.tif", db, (lon, lat), "none")
            if broken and name == "0000005" and d == 0:
                p = ddir / "VV.tif"
                p.write_bytes(p.read_bytes()[:300])
            props = dict(info["properties"], **{
                "system:index": sid, "system:time_start": int(when.timestamp() * 1000),
                "system:time_end": int(when.timestamp() * 1000) + 25000, "platform_number": letter,
                "orbitNumber_start": absolute, "orbitNumber_stop": absolute, "orbitProperties_pass": passing,
                "relativeOrbitNumber_start": (absolute - {"A": 73, "B": 27}[letter]) % 175 + 1})
            if not (broken and name == "0000006" and d == 1):
                (ddir / "metadata.json").write_text(json.dumps(dict(info, id=f"COPERNICUS/S1_GRD/{sid}",
                                                                    properties=props)))
            good_s2 = pid if pid in fake.good[name] else None
            entries.append((sid, good_s2, not (broken and name == "0000005" and d == 0)))
        fake.s1[name] = entries
