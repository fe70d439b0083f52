"""Where to collect: locations around populous cities or uniformly over land, seeded, without overlaps.

SeCo (Mañas et al. 2021) picks one of the 10,000 most populous cities uniformly and adds an isotropic Gaussian
offset with a 50 km standard deviation. Two corrections to the official downloader:

- the offset is drawn on the local tangent plane in km and mapped to the ground along the great circle (the
  official code converts km to degrees of latitude and adds the same number of degrees to the longitude,
  which squeezes the east-west spread by ``cos(lat)``);
- accepted patches never overlap (the SSL4EO-S12 improvement). Patches are squares of ``patch_km`` (264 px at
  10 m = 2.64 km) whose orientation depends on the UTM zone of the scene that is read later, so two centres
  must be at least ``patch_km * sqrt(2)`` apart by default: squares that far apart cannot overlap whatever
  their rotation. Conflicting candidates are dropped and sampling continues with the next candidate.

Candidates come from one seeded stream in fixed-size batches, so a seed gives the same locations and the first
``k`` of ``n`` locations equal the ``k`` locations drawn with the same seed.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import gzip
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from seco.collect.dates import DateSchedule, DateWindows, date_windows
from seco.collect.geo import (
    LandMask,
    chord_for_km,
    geo_metadata,
    load_land_mask,
    offset_to_lonlat,
    resource_path,
    unit_vectors,
    wkb_points,
)
from seco.errors import CollectError, ConfigError
from seco.fileutil import atomic_write

#: 264 pixels at 10 m, the SeCo patch.
PATCH_KM = 2.64
#: Sentinel-2's systematic land coverage (56 S to 84 N): default latitude limits of uniform sampling.
S2_LAT_RANGE = (-56.0, 84.0)
MODES = ("cities", "uniform")
LOCATIONS_FORMAT = "seco-locations/1"
_BATCH = 4096


# ---------------------------------------------------------------------------------------------- cities


@dataclass(frozen=True)
class Cities:
    """A table of cities, most populous first. Arrays of shape (N,)."""

    geonameid: np.ndarray
    name: np.ndarray
    country: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    population: np.ndarray

    def __len__(self) -> int:
        return int(self.lon.shape[0])

    def top(self, k: int) -> Cities:
        """The ``k`` first (most populous) cities."""
        if not isinstance(k, int | np.integer) or not 1 <= k <= len(self):
            raise ConfigError(f"top_cities={k!r} must be an integer in [1, {len(self)}] (the bundled list size)")
        return Cities(*(getattr(self, f)[:k] for f in ("geonameid", "name", "country", "lon", "lat", "population")))

    @classmethod
    def from_records(cls, records: Sequence[dict[str, Any]]) -> Cities:
        """Build from dicts with keys name, country_code, lat, lon, population (and optionally geonameid)."""
        recs = sorted(records, key=lambda r: -int(r.get("population", 0)))
        return cls(
            geonameid=np.array([int(r.get("geonameid", -1)) for r in recs], dtype=np.int64),
            name=np.array([str(r["name"]) for r in recs], dtype=object),
            country=np.array([str(r.get("country_code", "")) for r in recs], dtype=object),
            lon=np.array([float(r["lon"]) for r in recs], dtype=np.float64),
            lat=np.array([float(r["lat"]) for r in recs], dtype=np.float64),
            population=np.array([int(r.get("population", 0)) for r in recs], dtype=np.int64),
        )


@functools.lru_cache(maxsize=1)
def load_cities() -> Cities:
    """The bundled GeoNames list of the 10,000 most populous cities (CC BY 4.0, see resources/README.md)."""
    res = resource_path("cities.csv.gz")
    try:
        raw = res.read_bytes()
    except FileNotFoundError as e:
        raise ConfigError(f"bundled city list {res} is missing; rebuild it with scripts/make_cities.py") from e
    with io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(raw)), encoding="utf-8", newline="") as f:
        return Cities.from_records(list(csv.DictReader(f)))


# ---------------------------------------------------------------------------------------------- overlap


class SeparationIndex:
    """Accepts points only when no accepted point lies within ``min_km`` (great-circle), in O(1) per point.

    Points live in a hash grid over 3-D unit vectors with cells as wide as the chord of ``min_km``, so any
    conflict is in one of the 27 neighbouring cells. Works across the antimeridian and at the poles.
    """

    def __init__(self, min_km: float):
        self.min_km = float(min_km)
        self._chord2 = chord_for_km(self.min_km) ** 2
        self._cell = max(chord_for_km(self.min_km), 1e-9)
        self._k = int(math.ceil(2.0 / self._cell)) + 4  # cells per axis, with margin
        k = self._k
        self._offsets = [dx * k * k + dy * k + dz for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]
        self._grid: dict[int, list[tuple[float, float, float]]] = {}

    def _key(self, x: float, y: float, z: float) -> int:
        k, h = self._k, self._k // 2
        return (int(math.floor(x / self._cell)) + h) * k * k + (int(math.floor(y / self._cell)) + h) * k + (
            int(math.floor(z / self._cell)) + h
        )

    def try_add(self, x: float, y: float, z: float) -> bool:
        """Add the unit vector (x, y, z) unless it conflicts; return whether it was added."""
        key = self._key(x, y, z)
        if self.min_km > 0:
            grid, c2 = self._grid, self._chord2
            for off in self._offsets:
                for a, b, c in grid.get(key + off, ()):
                    if (a - x) ** 2 + (b - y) ** 2 + (c - z) ** 2 < c2:
                        return False
        self._grid.setdefault(key, []).append((x, y, z))
        return True


# ---------------------------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class SampleConfig:
    """Everything that determines a set of sampled locations (saved in the output file).

    Attributes:
        n: number of locations.
        mode: ``"cities"`` (Gaussian around populous cities, SeCo) or ``"uniform"`` (uniform over land).
        seed: the seed; equal configs give equal files.
        sigma_km: standard deviation of the Gaussian offset per axis (cities mode).
        top_cities: how many of the most populous cities to draw from (cities mode).
        land_only: cities mode: drop candidates that the land mask puts at sea (the official code keeps them
            and retries when no image is found).
        patch_km: patch side in km (264 px at 10 m).
        min_separation_km: least distance between accepted centres; ``None`` = ``patch_km * sqrt(2)``
            (rotation-safe non-overlap); 0 disables the check.
        lat_min: southern limit (uniform mode; default Sentinel-2 coverage).
        lat_max: northern limit (uniform mode).
        dates: the date schedule of every location.
        centres: cities mode: ``(name, lon, lat)`` centres to draw around instead of the bundled city list
            (e.g. the scene centres of a local archive), all equally likely; ``top_cities`` is capped at their
            number. Saved with the file, so replacement locations can be drawn again.
        bbox: ``(west, south, east, north)`` in degrees, west < east: every location lies inside it. Uniform
            mode samples uniformly by area over the land inside it (and within ``lat_min``..``lat_max``);
            cities mode draws around the cities (or ``centres``) inside it and drops candidates outside it.
    """

    n: int
    mode: str = "cities"
    seed: int = 0
    sigma_km: float = 50.0
    top_cities: int = 10000
    land_only: bool = False
    patch_km: float = PATCH_KM
    min_separation_km: float | None = None
    lat_min: float = S2_LAT_RANGE[0]
    lat_max: float = S2_LAT_RANGE[1]
    dates: DateSchedule = field(default_factory=DateSchedule)
    centres: tuple[tuple[str, float, float], ...] | None = None
    bbox: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 1:
            raise ConfigError(f"n={self.n!r} must be a positive integer number of locations, e.g. --n 1000")
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r} is unknown; choose one of {', '.join(MODES)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be a non-negative integer")
        if not (isinstance(self.sigma_km, int | float) and 0 < self.sigma_km <= 5000):
            raise ConfigError(f"sigma_km={self.sigma_km!r} must be in (0, 5000] km (SeCo uses 50)")
        if not isinstance(self.top_cities, int | np.integer) or self.top_cities < 1:
            raise ConfigError(f"top_cities={self.top_cities!r} must be a positive integer (SeCo uses 10000)")
        if not (isinstance(self.patch_km, int | float) and 0 < self.patch_km <= 1000):
            raise ConfigError(f"patch_km={self.patch_km!r} must be in (0, 1000] km (264 px at 10 m = 2.64)")
        if self.min_separation_km is not None and not (
            isinstance(self.min_separation_km, int | float) and 0 <= self.min_separation_km <= 1000
        ):
            raise ConfigError(f"min_separation_km={self.min_separation_km!r} must be in [0, 1000] km or None")
        if not -90 <= self.lat_min < self.lat_max <= 90:
            raise ConfigError(
                f"latitude limits ({self.lat_min!r}, {self.lat_max!r}) must satisfy -90 <= lat_min < lat_max <= 90"
            )
        if not isinstance(self.dates, DateSchedule):
            raise ConfigError(f"dates={self.dates!r} must be a DateSchedule")
        if self.centres is not None:
            object.__setattr__(self, "centres", _check_centres(self.centres, self.mode))
        if self.bbox is not None:
            object.__setattr__(self, "bbox", check_bbox(self.bbox))
            if self.mode == "uniform" and not max(self.bbox[1], self.lat_min) < min(self.bbox[3], self.lat_max):
                raise ConfigError(f"--bbox {_show(self.bbox)} lies outside latitudes {self.lat_min:g}..{self.lat_max:g} "
                                  "(Sentinel-2's land coverage); move it")

    @property
    def separation_km(self) -> float:
        """The effective least distance between centres."""
        return self.patch_km * math.sqrt(2.0) if self.min_separation_km is None else float(self.min_separation_km)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["dates"] = self.dates.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["dates"] = DateSchedule.from_dict(d.get("dates", {}))
        if d.get("centres") is not None:
            d["centres"] = tuple(tuple(c) for c in d["centres"])
        if d.get("bbox") is not None:
            d["bbox"] = tuple(d["bbox"])
        return cls(**d)


def _show(bbox: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in bbox)


def check_bbox(bbox: Any) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` in degrees as floats; ConfigError when malformed."""
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ConfigError(f"--bbox {bbox!r} must be 4 numbers W,S,E,N in degrees, e.g. 2.2,48.8,2.5,48.9") from None
    if not (all(map(math.isfinite, (w, s, e, n))) and -180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ConfigError(f"--bbox {_show((w, s, e, n))} must satisfy -180 <= W < E <= 180 and -90 <= S < N <= 90 "
                          "(a box across the antimeridian: sample each side into its own file)")
    return w, s, e, n


def _inside(lon: np.ndarray, lat: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
    w, s, e, n = bbox
    return (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)


def read_centres(path: str | Path) -> tuple[tuple[str, float, float], ...]:
    """Centres for cities mode (``seco sample --centres FILE``), as ``(name, lon, lat)``.

    ``FILE`` is a CSV with columns ``lon,lat`` or ``name,lon,lat`` (a header line naming them, or none), or a
    stac-geoparquet catalog (``seco catalog build``): the centre of each distinct scene footprint, so a local
    archive's tiles become the centres.

    Raises:
        ConfigError: a missing or unreadable file, or one without positions.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--centres {path}: no such file; give a CSV of name,lon,lat or a catalog .parquet")
    if p.suffix.lower() in (".parquet", ".geoparquet"):
        return _catalog_centres(p)
    rows = [r for r in csv.reader(p.read_text(encoding="utf-8").splitlines()) if r and any(x.strip() for x in r)]
    if rows and {c.strip().lower() for c in rows[0]} >= {"lon", "lat"}:
        head = [c.strip().lower() for c in rows.pop(0)]
        rows = [[r[head.index("name")] if "name" in head else f"centre {k}", r[head.index("lon")],
                 r[head.index("lat")]] for k, r in enumerate(rows)]
    elif rows and len(rows[0]) == 2:
        rows = [[f"centre {k}", *r] for k, r in enumerate(rows)]
    try:
        out = tuple((str(name).strip(), float(lon), float(lat)) for name, lon, lat in rows)
    except ValueError as e:
        raise ConfigError(f"--centres {path}: {e}; each row must be lon,lat or name,lon,lat in degrees") from None
    if not out:
        raise ConfigError(f"--centres {path} holds no rows; give one centre per line as name,lon,lat")
    return out


def _catalog_centres(p: Path) -> tuple[tuple[str, float, float], ...]:
    try:
        table = pq.read_table(p, columns=["id", "bbox"]).to_pylist()
    except (OSError, KeyError, pa.ArrowException) as e:
        raise ConfigError(f"--centres {p} is not a stac-geoparquet catalog with id and bbox columns ({e})") from None
    out: dict[tuple[float, float], str] = {}
    for row in table:
        b = row.get("bbox")
        raw = [b.get(k) for k in ("xmin", "ymin", "xmax", "ymax")] if isinstance(b, dict) else b
        if not raw or len(raw) < 4 or any(v is None for v in raw):
            continue
        x0, y0, x1, y1 = (float(v) for v in raw[:4] if v is not None)
        key = (round((x0 + x1) / 2, 5), round((y0 + y1) / 2, 5))
        out.setdefault(key, str(row.get("id")))
    if not out:
        raise ConfigError(f"--centres {p}: no item has a bbox; build the catalog with `seco catalog build`")
    return tuple((name, lon, lat) for (lon, lat), name in sorted(out.items(), key=lambda kv: kv[1]))


def _check_centres(centres: Any, mode: str) -> tuple[tuple[str, float, float], ...]:
    """``centres`` as a tuple of ``(name, lon, lat)``; ConfigError when malformed or not in cities mode."""
    if mode != "cities":
        raise ConfigError(f"centres (--centres) are for --mode cities, not --mode {mode}")
    try:
        out = tuple((str(name), float(lon), float(lat)) for name, lon, lat in centres)
    except (TypeError, ValueError):
        raise ConfigError(f"centres={centres!r} must be a sequence of (name, lon, lat)") from None
    if not out:
        raise ConfigError("centres is empty; give at least one (name, lon, lat) or None for the bundled cities")
    for name, lon, lat in out:
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
            raise ConfigError(f"centre {name!r} has an invalid position lon={lon!r} lat={lat!r} (WGS84 degrees)")
    return out


@dataclass(frozen=True)
class Locations:
    """Sampled locations. Arrays of shape (N,).

    Attributes:
        id: 0 .. N-1 in sampling order.
        lon: longitude in degrees, [-180, 180).
        lat: latitude in degrees.
        city: source city name per location (object array; ``None`` in uniform mode).
        country: ISO country code of the source city (``None`` in uniform mode).
        windows: the date windows, or ``None`` before dates are drawn.
        config: the config that produced them, when known.
    """

    id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    city: np.ndarray
    country: np.ndarray
    windows: DateWindows | None = None
    config: SampleConfig | None = None

    def __len__(self) -> int:
        return int(self.lon.shape[0])


# ---------------------------------------------------------------------------------------------- sampling


class AreaFullError(CollectError):
    """Fewer non-overlapping locations fit than asked for.

    Attributes:
        placed: how many were placed (the first ``placed`` of the stream, as a run with ``n=placed`` gives).
    """

    def __init__(self, message: str, *, placed: int):
        super().__init__(message)
        self.placed = placed


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be a non-negative integer")
    return np.random.default_rng(int(seed))


def _accept(n: int, draw: Any, separation_km: float, max_candidates: int, what: str) -> tuple[np.ndarray, ...]:
    """Run the candidate stream ``draw() -> (lon, lat, idx)`` through the overlap filter until ``n`` accepted."""
    index = SeparationIndex(separation_km)
    lon_out: list[float] = []
    lat_out: list[float] = []
    idx_out: list[int] = []
    seen = 0
    while len(lon_out) < n:
        if seen >= max_candidates:
            raise AreaFullError(
                f"placed only {len(lon_out)} of --n {n} non-overlapping {what} locations after {seen} candidates "
                f"(min separation {separation_km:.2f} km); lower --n, or widen the area (--sigma-km, --top-cities, "
                "--bbox), or lower --min-separation-km", placed=len(lon_out))
        lon, lat, idx = draw()  # (B,), (B,), (B,)
        seen += _BATCH
        xyz = unit_vectors(lon, lat).tolist()
        for i, (x, y, z) in enumerate(xyz):
            if idx[i] < 0:  # rejected upstream (sea)
                continue
            if index.try_add(x, y, z):
                lon_out.append(float(lon[i]))
                lat_out.append(float(lat[i]))
                idx_out.append(int(idx[i]))
                if len(lon_out) == n:
                    break
    return np.array(lon_out), np.array(lat_out), np.array(idx_out, dtype=np.int64)


def _max_candidates(n: int) -> int:
    return max(200 * n, 20 * _BATCH)


def sample_cities(
    n: int,
    seed: int | np.random.Generator = 0,
    sigma_km: float = 50.0,
    top_cities: int = 10000,
    *,
    cities: Cities | None = None,
    patch_km: float = PATCH_KM,
    min_separation_km: float | None = None,
    land_only: bool = False,
    land_mask: LandMask | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> Locations:
    """Gaussian locations around populous cities (the SeCo sampler), non-overlapping.

    Args:
        n: number of locations.
        seed: integer seed or numpy Generator.
        sigma_km: standard deviation of the offset along each axis, in km.
        top_cities: draw uniformly among this many most populous cities.
        cities: the city table (default: the bundled GeoNames top 10,000).
        patch_km: patch side in km.
        min_separation_km: least centre distance; ``None`` = ``patch_km * sqrt(2)``.
        land_only: drop candidates at sea according to the land mask.
        land_mask: the mask for ``land_only`` (default: the bundled one).
        bbox: keep only candidates inside ``(west, south, east, north)``.

    Returns:
        Locations with ``city``/``country`` set and no windows.
    """
    cfg = SampleConfig(n=n, mode="cities", seed=0, sigma_km=sigma_km, top_cities=top_cities, land_only=land_only,
                       patch_km=patch_km, min_separation_km=min_separation_km)
    table = (cities if cities is not None else load_cities()).top(top_cities)
    mask = (land_mask or load_land_mask()) if land_only else None
    rng = _rng(seed)

    def draw() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = rng.integers(0, len(table), size=_BATCH)  # (B,) city of each candidate
        en = rng.normal(0.0, float(sigma_km), size=(_BATCH, 2))  # (B, 2) km east, km north
        lon, lat = offset_to_lonlat(table.lon[idx], table.lat[idx], en[:, 0], en[:, 1])
        if mask is not None:
            idx = np.where(mask.contains(lon, lat), idx, -1)
        if bbox is not None:
            idx = np.where(_inside(lon, lat, bbox), idx, -1)
        return lon, lat, idx

    lon, lat, idx = _accept(n, draw, cfg.separation_km, _max_candidates(n), "city")
    return Locations(id=np.arange(n, dtype=np.int64), lon=lon, lat=lat, city=table.name[idx].astype(object),
                     country=table.country[idx].astype(object))


def sample_uniform_land(
    n: int,
    seed: int | np.random.Generator = 0,
    *,
    lat_min: float = S2_LAT_RANGE[0],
    lat_max: float = S2_LAT_RANGE[1],
    patch_km: float = PATCH_KM,
    min_separation_km: float | None = None,
    land_mask: LandMask | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> Locations:
    """Locations uniform by area over land, non-overlapping.

    Candidates are uniform on the sphere between ``lat_min`` and ``lat_max`` (longitude uniform, sine of
    latitude uniform) and kept when the land mask says land.

    Args:
        n: number of locations.
        seed: integer seed or numpy Generator.
        lat_min: southern limit in degrees (default 56 S, the edge of Sentinel-2 land coverage).
        lat_max: northern limit in degrees (default 84 N).
        patch_km: patch side in km.
        min_separation_km: least centre distance; ``None`` = ``patch_km * sqrt(2)``.
        land_mask: the mask (default: the bundled 0.1 degree GLOBE-derived one).
        bbox: ``(west, south, east, north)``: sample inside it only (latitudes also within the limits).
    """
    cfg = SampleConfig(n=n, mode="uniform", patch_km=patch_km, min_separation_km=min_separation_km,
                       lat_min=lat_min, lat_max=lat_max, bbox=bbox)
    mask = land_mask or load_land_mask()
    w, e = (-180.0, 180.0) if cfg.bbox is None else (cfg.bbox[0], cfg.bbox[2])
    if cfg.bbox is not None:
        lat_min, lat_max = max(lat_min, cfg.bbox[1]), min(lat_max, cfg.bbox[3])
    if mask.land_area_fraction(lat_min, lat_max) == 0.0:
        raise ConfigError(f"the land mask has no land between latitudes {lat_min} and {lat_max}; widen them")
    rng = _rng(seed)
    s0, s1 = math.sin(math.radians(lat_min)), math.sin(math.radians(lat_max))

    def draw() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = rng.random((_BATCH, 2))  # (B, 2)
        lon = w + u[:, 0] * (e - w)
        lat = np.rad2deg(np.arcsin(s0 + (s1 - s0) * u[:, 1]))
        idx = np.where(mask.contains(lon, lat), 0, -1)
        return lon, lat, idx

    lon, lat, _ = _accept(n, draw, cfg.separation_km, _max_candidates(n) * 10, "uniform-land")
    none = np.full(n, None, dtype=object)
    return Locations(id=np.arange(n, dtype=np.int64), lon=lon, lat=lat, city=none, country=none.copy())


def sample(config: SampleConfig, *, cities: Cities | None = None, land_mask: LandMask | None = None) -> Locations:
    """Locations and date windows for a config (dates resolved, so the result carries a reproducible config)."""
    cfg = SampleConfig(**{**_fields(config), "dates": config.dates.resolved()})
    top = cfg.top_cities
    if cfg.mode == "cities" and cities is None and cfg.centres is not None:
        cities = Cities.from_records([{"name": n, "lon": lo, "lat": la} for n, lo, la in cfg.centres])
        top = min(top, len(cities))
    if cfg.mode == "cities" and cfg.bbox is not None:
        cities = _cities_inside(cities if cities is not None else load_cities().top(top), cfg.bbox)
        top = min(top, len(cities))
    if cfg.mode == "cities":
        loc = sample_cities(cfg.n, cfg.seed, cfg.sigma_km, top, cities=cities, patch_km=cfg.patch_km,
                            min_separation_km=cfg.min_separation_km, land_only=cfg.land_only, land_mask=land_mask,
                            bbox=cfg.bbox)
    else:
        loc = sample_uniform_land(cfg.n, cfg.seed, lat_min=cfg.lat_min, lat_max=cfg.lat_max, patch_km=cfg.patch_km,
                                  min_separation_km=cfg.min_separation_km, land_mask=land_mask, bbox=cfg.bbox)
    win = date_windows(cfg.n, cfg.seed, cfg.dates)
    return Locations(id=loc.id, lon=loc.lon, lat=loc.lat, city=loc.city, country=loc.country, windows=win,
                     config=cfg)


def _cities_inside(cities: Cities, bbox: tuple[float, float, float, float]) -> Cities:
    keep = _inside(cities.lon, cities.lat, bbox)
    if not keep.any():
        raise ConfigError(f"no city (or centre) lies inside --bbox {_show(bbox)}; widen it, give --centres, or "
                          "use --mode uniform")
    return Cities(*(getattr(cities, f)[keep] for f in ("geonameid", "name", "country", "lon", "lat", "population")))


def _fields(cfg: SampleConfig) -> dict[str, Any]:
    return {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}


# ---------------------------------------------------------------------------------------------- file I/O


def _ts_list(a: np.ndarray) -> pa.Array:
    """(N, T) datetime64 -> list<timestamp[ms, UTC]>."""
    n, t = a.shape
    values = pa.array(a.reshape(-1).astype("datetime64[ms]")).cast(pa.timestamp("ms", tz="UTC"))
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * t), values)


def locations_table(loc: Locations) -> pa.Table:
    """The GeoParquet table of a set of locations (schema documented in :func:`write_locations`)."""
    n = len(loc)
    offsets, data = wkb_points(loc.lon, loc.lat)
    geom = pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    cols: dict[str, pa.Array] = {
        "id": pa.array(loc.id, pa.int64()),
        "lon": pa.array(loc.lon, pa.float64()),
        "lat": pa.array(loc.lat, pa.float64()),
        "city": pa.array(list(loc.city), pa.string()),
        "country": pa.array(list(loc.country), pa.string()),
        "geometry": geom,
    }
    if loc.windows is not None:
        cols["dates"] = _ts_list(loc.windows.centre)
        cols["window_start"] = _ts_list(loc.windows.start)
        cols["window_end"] = _ts_list(loc.windows.end)
    table = pa.table(cols)
    bbox = [float(loc.lon.min()), float(loc.lat.min()), float(loc.lon.max()), float(loc.lat.max())] if n else None
    seco_meta = {"format": LOCATIONS_FORMAT, "config": loc.config.to_dict() if loc.config else None}
    return table.replace_schema_metadata({
        b"geo": geo_metadata("geometry", ["Point"], bbox),
        b"seco": json.dumps(seco_meta).encode("utf-8"),
    })


def write_locations(loc: Locations, path: str | Path) -> Path:
    """Write locations as GeoParquet 1.1.0 (WKB points in OGC:CRS84).

    Columns: ``id`` int64, ``lon``/``lat`` float64, ``city``/``country`` string (null in uniform mode),
    ``geometry`` WKB point, and when dated ``dates``, ``window_start``, ``window_end`` as
    ``list<timestamp[ms, UTC]>`` (T per row, oldest first). File metadata: ``geo`` (GeoParquet) and ``seco``
    (format tag and the sampling config).
    """
    path = Path(path)
    if path.suffix.lower() not in (".parquet", ".geoparquet"):
        raise ConfigError(f"output {str(path)!r} should end in .parquet (it is written as GeoParquet)")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = locations_table(loc)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def _fixed_lists(col: pa.ChunkedArray, name: str, path: Path) -> np.ndarray:
    """list<timestamp> column -> (N, T) datetime64[ms]; every row must have the same T."""
    arr = col.combine_chunks()
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths.min() != lengths.max() or arr.null_count):
        raise CollectError(f"column {name!r} of {path} has rows with different numbers of dates; rewrite it "
                           "with `seco sample`")
    t = int(lengths[0]) if len(lengths) else 0
    flat = pc.list_flatten(arr).cast(pa.timestamp("ms")).to_numpy(zero_copy_only=False)
    return flat.astype("datetime64[ms]").reshape(len(lengths), t)


def read_locations(path: str | Path) -> Locations:
    """Read a locations file written by :func:`write_locations` (``seco sample``).

    Raises:
        ConfigError: the file does not exist.
        CollectError: it is not a seco locations GeoParquet.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"locations file {str(path)!r} does not exist; create it with `seco sample --out FILE`")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise CollectError(f"{path} is not a readable Parquet file ({e}); recreate it with `seco sample`") from e
    meta = table.schema.metadata or {}
    missing = [c for c in ("id", "lon", "lat", "geometry") if c not in table.column_names]
    if b"geo" not in meta or missing:
        raise CollectError(
            f"{path} is not a seco locations GeoParquet (missing {', '.join(missing) or 'geo metadata'}); "
            "create it with `seco sample`"
        )
    seco_meta = json.loads(meta.get(b"seco", b"{}"))
    config = SampleConfig.from_dict(seco_meta["config"]) if seco_meta.get("config") else None
    windows = None
    if all(c in table.column_names for c in ("dates", "window_start", "window_end")):
        windows = DateWindows(
            centre=_fixed_lists(table["dates"], "dates", path),
            start=_fixed_lists(table["window_start"], "window_start", path),
            end=_fixed_lists(table["window_end"], "window_end", path),
        )
    n = table.num_rows

    def strings(name: str) -> np.ndarray:
        if name not in table.column_names:
            return np.full(n, None, dtype=object)
        return np.array(table[name].to_pylist(), dtype=object)

    return Locations(
        id=table["id"].to_numpy().astype(np.int64),
        lon=table["lon"].to_numpy().astype(np.float64),
        lat=table["lat"].to_numpy().astype(np.float64),
        city=strings("city"),
        country=strings("country"),
        windows=windows,
        config=config,
    )


# ---------------------------------------------------------------------------------------------- plot


def plot_locations(path: str | Path, out_png: str | Path, *, land_mask: LandMask | None = None,
                   title: str | None = None) -> Path:
    """Draw the locations of a GeoParquet file on a world map (land mask as background) and save a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    loc = read_locations(path)
    mask = land_mask or load_land_mask()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(12, 6.4), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.where(mask.land, 0.82, 1.0), cmap="gray", vmin=0, vmax=1, extent=(-180, 180, -90, 90),
              interpolation="nearest", aspect="equal")
    size = 4.0 if len(loc) < 2000 else 1.0
    ax.scatter(loc.lon, loc.lat, s=size, c="#d62728", linewidths=0, alpha=0.8)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    mode = loc.config.mode if loc.config else "?"
    ax.set_title(title or f"{len(loc)} locations ({mode}) - {Path(path).name}")
    fig.text(0.01, 0.01, "land: GLOBE (NOAA NGDC); cities: GeoNames (CC BY 4.0)", fontsize=7, color="0.4")
    fig.savefig(out_png, bbox_inches="tight")
    return out_png


# ---------------------------------------------------------------------------------------------- CLI entry


def run_sample(
    out: str | Path,
    n: int,
    mode: str = "cities",
    seed: int = 0,
    sigma_km: float = 50.0,
    window_days: float = 7.5,
    plot: str | Path | None = None,
    *,
    end: dt.date | str | None = None,
    top_cities: int = 10000,
    n_dates: int = 5,
    step_weeks: float = 12.0,
    land_only: bool = False,
    patch_km: float = PATCH_KM,
    min_separation_km: float | None = None,
    bbox: Sequence[float] | None = None,
    centres: str | Path | Sequence[tuple[str, float, float]] | None = None,
) -> Path:
    """``seco sample``: sample locations and date windows, write GeoParquet, optionally a PNG map.

    Args:
        out: output ``.parquet`` path.
        n: number of locations.
        mode: ``cities`` or ``uniform``.
        seed: random seed.
        sigma_km: Gaussian spread around cities (cities mode).
        window_days: half-width of each date's search window (official 7.5; the paper's text says 15).
        plot: optional PNG path for a world map of the locations.
        end: latest reference date (``YYYY-MM-DD`` or a date); default today minus 4 weeks.
        top_cities: number of most populous cities to draw from.
        n_dates: dates per location.
        step_weeks: spacing of dates, backwards from the reference.
        land_only: cities mode: drop candidates at sea.
        patch_km: patch side in km.
        min_separation_km: least centre distance (default ``patch_km * sqrt(2)``).
        bbox: ``(west, south, east, north)``: every location inside it (see :class:`SampleConfig`).
        centres: cities mode: the centres to draw around, ``(name, lon, lat)`` or a file for
            :func:`read_centres` (a CSV, or a catalog of a local archive).

    Returns:
        The path written.
    """
    if isinstance(end, str):
        try:
            end = dt.date.fromisoformat(end)
        except ValueError as e:
            raise ConfigError(f"end={end!r} is not a date; write it as YYYY-MM-DD") from e
    if Path(out).suffix.lower() not in (".parquet", ".geoparquet"):
        raise ConfigError(f"--out {str(out)!r} should end in .parquet (locations are written as GeoParquet)")
    if plot is not None and Path(plot).suffix.lower() != ".png":
        raise ConfigError(f"--plot {str(plot)!r} should end in .png")
    schedule = DateSchedule(n_dates=n_dates, step_weeks=step_weeks, window_days=window_days, end=end)
    if isinstance(centres, str | Path):
        centres = read_centres(centres)
    cfg = SampleConfig(n=n, mode=mode, seed=seed, sigma_km=sigma_km, top_cities=top_cities, land_only=land_only,
                       patch_km=patch_km, min_separation_km=min_separation_km, dates=schedule,
                       centres=None if centres is None else tuple(centres),
                       bbox=None if bbox is None else check_bbox(bbox))
    path = write_locations(sample(cfg), out)
    if plot is not None:
        plot_locations(path, plot)
    return path
