"""Simulated Sentinel-1 backscatter (VV, VH), coherent with the simulated Sentinel-2 scene of a location.

The model works in linear power and reports dB. Per pixel of class k, date t and polarisation p:

    gamma0_p = veg/soil/water/urban/rock term of class k (dB, at the reference incidence 37 deg)
               + jitter_{k,p} (per location) + texture_{k} * tex (the S2 texture field)
               + slope_{k,p} * (theta_local - 37)             (incidence-angle dependence)
    measured = (gamma0 [RTC] or gamma0 * cos(theta_ell) * A [GRD sigma0] + noise floor) * Gamma(L, 1/L)

with the class terms (``CLASS_DB``, all *assumed*: typical C-band values from the literature, then tuned as a
whole against the published dataset statistics, see :func:`calibration_table`):

- **water**: specular, dark; roughened by the date's wind ``U ~ 6 m/s x Weibull(2)``:
  ``VV = -27 + 11 log10(1 + U)`` dB (-27 calm, -17.7 at 6 m/s), VH 8.5 dB lower; steep incidence slope;
- **urban**: bright from double bounce (VV -5, VH -11.5) with a wide texture;
- **forest**: volume scattering, high VH (VV -7, VH -12.5), a little leaf-off drop in winter (the S2 NDVI
  deviation ``dev``: +/-0.3 dB);
- **cropland / grassland**: a canopy over soil mixed by the S2 vegetation cover ``g = 1 - bareness``
  (:func:`seco.synth.seasons.bareness` of the S2 NDVI deviation, so crops follow their own calendars):
  ``sigma = g sigma_canopy + (1 - 0.6 g) sigma_soil``;
- **bare soil** (and the soil under sparse canopies): ``VV = -15.5 + 0.22 (mv - 15)`` dB with soil moisture
  ``mv = 12 + 22 x wetness`` vol-% from the S2 season model's wetness (:mod:`seco.synth.seasons`) and 4 % on a
  frozen date; VH 7.5 dB below VV;
- **mountain**: rock (VV -8.5, VH -15.5) with the strongest terrain effects; under the S2 snow line the snow
  is *wet* (VV -21, VH -28: absorbing) unless the date is frozen (dry snow: transparent; frozen ground).

A date is frozen with chance ``clip((lat - 38) / 20, 0, 1) * max(0, cos(2 pi (doy - 20) / 365))^3`` (none in
summer, most likely in January in the north); frozen ground and canopies lose 1.5 (VV) / 2 (VH) dB.

Geometry: each location has one orbit state (ascending looks east-north-east, descending west-north-west) and
two relative orbits whose centre incidence angles are drawn from the IW swath (30-45 deg; the swath spans
29-46); a date uses one of them, and the angle grows across the patch by 0.064 deg/km towards far range. The
local incidence angle comes from the terrain slopes of the S2 elevation field. An RTC product (gamma0,
terrain-flattened) reports gamma0 at the local angle; a GRD product (sigma0 on the ellipsoid) multiplies by
``cos(theta_ell)`` and the area factor ``sin(theta_ell) / sin(theta_local)`` (slopes facing the radar brighten).
A residual noise floor of -28 dB is added, then multiplicative speckle ``Gamma(L, 1/L)`` per pixel and
polarisation with the equivalent number of looks ``L = 4.4`` (``sar:looks_equivalent_number`` of the real
Planetary Computer ``sentinel-1-rtc`` items and of GRD-H IW); speckle is drawn independently per 10 m pixel
(real GRD speckle is correlated over ~2 pixels at 20 x 22 m resolution).

Everything S1 draws comes from its own generator ``default_rng([seed, index, S1_STREAM])``, so the S2 images,
metadata and hashes of a location do not change when S1 is simulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from seco.synth import spectra

K = len(spectra.CLASSES)
FOREST, CROPLAND, GRASSLAND, URBAN, WATER, MOUNTAIN = range(K)
#: Generator stream of everything S1 draws (kept apart from a location's S2 streams).
S1_STREAM = 0x51A1
POLS = ("VV", "VH")
#: Equivalent number of looks of IW GRD-H / PC RTC (``sar:looks_equivalent_number``).
ENL = 4.4
REF_INCIDENCE = 37.0
INCIDENCE_RANGE = (30.0, 45.0)
INCIDENCE_PER_KM = 16.0 / 250.0  # the IW swath spans 29-46 deg over 250 km
NOISE_FLOOR_DB = -32.0
#: gamma0 at 37 deg, dB (VV, VH): canopies (forest, crop, grass), urban, rock; water and soil have formulas.
CLASS_DB: dict[str, tuple[float, float]] = {
    "forest": (-7.0, -12.5), "cropland": (-9.0, -14.5), "grassland": (-9.5, -15.5),
    "urban": (-6.5, -12.5), "water": (-24.0, -30.0), "mountain": (-8.5, -15.0),
}
#: dB per degree of incidence (VV, VH).
CLASS_SLOPE: dict[str, tuple[float, float]] = {
    "forest": (-0.08, -0.06), "cropland": (-0.15, -0.12), "grassland": (-0.18, -0.14),
    "urban": (-0.10, -0.10), "water": (-0.35, -0.30), "mountain": (-0.15, -0.12),
}
#: Within-class texture (dB per unit of the S2 texture field) and between-location spread (dB std).
CLASS_TEXTURE = {"forest": 0.8, "cropland": 0.8, "grassland": 0.8, "urban": 1.5, "water": 0.5, "mountain": 1.2}
CLASS_SPREAD = {"forest": 0.8, "cropland": 1.0, "grassland": 1.0, "urban": 1.2, "water": 1.0, "mountain": 1.0}
SOIL_VV_AT_15 = -15.5  # bare soil VV at 15 vol-% moisture, dB
SOIL_DB_PER_PCT = 0.22
SOIL_VH_BELOW_VV = 7.0
WET_SNOW_DB = (-18.0, -25.0)
FROZEN_DB = (-1.5, -2.0)
CANOPY_TRANSMISSION = 0.4  # two-way, of the soil under a full canopy
WIND_SCALE = 6.0  # m/s, Weibull(2) scale of the surface wind over water
#: Published normalisation statistics (dB): mean, std per polarisation (SSL4EO-S12 GRD; TerraMind RTC).
PUBLISHED = {
    "GRD": {"VV": (-12.6, 5.2), "VH": (-20.3, 5.9)},
    "RTC": {"VV": (-10.9, 4.4), "VH": (-17.3, 4.5)},
}
PRODUCTS = ("RTC", "GRD")
#: Calibration offsets (dB; VV, VH) added per product so that the simulated means meet ``PUBLISHED``; fitted
#: by ``python -m seco.synth.calibrate --s1``. They absorb what the model does not describe: the land-cover
#: mix of the published samples and the processing differences between SSL4EO-S12's Earth Engine GRD and
#: TerraMind's Planetary Computer RTC (physics alone puts RTC ~1 dB above GRD in both polarisations; the
#: published statistics differ by 1.7 dB in VV and 3.0 dB in VH).
CALIBRATION_DB: dict[str, tuple[float, float]] = {"RTC": (0.69, 0.22), "GRD": (-0.05, -2.05)}
#: Look azimuth (deg from north) of a right-looking radar on the ascending / descending pass.
LOOK_AZIMUTH = {"ascending": 78.0, "descending": 282.0}
#: Local solar hour of the pass (S1 dawn-dusk orbit: descending ~06:00, ascending ~18:00).
PASS_HOUR = {"ascending": 18.0, "descending": 6.0}
S1B_END = datetime(2021, 12, 23, tzinfo=UTC)  # Sentinel-1B failed
_LAUNCH = {"sentinel-1a": (datetime(2014, 4, 3, tzinfo=UTC), 73), "sentinel-1b": (datetime(2016, 4, 25, tzinfo=UTC), 27)}


@dataclass(frozen=True)
class Ground:
    """The static surface of a location, shared with its S2 simulation.

    Attributes:
        cls: (P, P) intp class per pixel.
        tex: (P, P) float32 texture field (zero mean, unit std).
        zx, zy: (P, P) float32 tan-slopes towards east and north.
        lat, lon: the centre, degrees.
    """

    cls: np.ndarray
    tex: np.ndarray
    zx: np.ndarray
    zy: np.ndarray
    lat: float
    lon: float


@dataclass(frozen=True)
class GroundDate:
    """The state of the surface on one date, shared with the S2 simulation of that date.

    Attributes:
        doy: day of year.
        dev: (P, P) NDVI deviation from the class mean (phenology).
        bare: (P, P) bare-soil share 0..1 (:func:`seco.synth.seasons.bareness`).
        snow: (P, P) snow cover 0..1, or None.
        wetness: soil wetness of the date, 0 (dry) .. 1.
    """

    doy: int
    dev: np.ndarray
    bare: np.ndarray
    snow: np.ndarray | None
    wetness: float


@dataclass(frozen=True)
class Orbit:
    """One relative orbit over a location: its number and the incidence angle at the patch centre."""

    relative: int
    incidence: float


@dataclass(frozen=True)
class Site:
    """Per-location S1 draws: the orbit state, its relative orbits, class jitter (K, 2) dB and soil roughness."""

    orbit_state: str
    orbits: tuple[Orbit, ...]
    jitter: np.ndarray
    roughness: float


def draw_site(rng: np.random.Generator) -> Site:
    """The per-location S1 draws (order fixed: orbit state, two orbits, jitter, roughness)."""
    state = "ascending" if rng.random() < 0.5 else "descending"
    rel = rng.choice(np.arange(1, 176), size=2, replace=False)
    inc = rng.uniform(*INCIDENCE_RANGE, size=2)
    spread = np.array([CLASS_SPREAD[c] for c in spectra.CLASSES], np.float32)[:, None]
    jitter = (spread * rng.normal(size=(K, 2))).astype(np.float32)
    return Site(state, tuple(Orbit(int(r), float(i)) for r, i in zip(rel, inc, strict=True)), jitter,
                float(rng.normal(0.0, 1.0)))


def frozen_chance(lat: float, doy: int) -> float:
    """Chance that the ground is frozen on a day of year at a latitude (northern seasons; mirrored south)."""
    south = 182 if lat < 0 else 0
    c = max(0.0, math.cos(2 * math.pi * (doy - 20 - south) / 365.0))
    return float(np.clip((abs(lat) - 38.0) / 20.0, 0.0, 1.0)) * c**3


def local_incidence(ground: Ground, orbit: Orbit, orbit_state: str) -> tuple[np.ndarray, np.ndarray]:
    """(ellipsoid, local) incidence angles in degrees, (P, P) each, of the patch seen from ``orbit``."""
    P = ground.cls.shape[0]
    az = math.radians(LOOK_AZIMUTH[orbit_state])
    le, ln = math.sin(az), math.cos(az)  # horizontal look direction (east, north)
    cols = np.arange(P, dtype=np.float32) - P / 2
    rows = np.arange(P, dtype=np.float32)[:, None] - P / 2
    ground_range_km = (cols[None, :] * le - rows * ln) * 0.01  # along the look direction; rows run south
    ell = (orbit.incidence + INCIDENCE_PER_KM * ground_range_km).astype(np.float32)  # (P, P)
    th = np.radians(ell)
    # unit vector from the ground to the satellite, and the surface normal (-zx, -zy, 1) / |.|
    cos_loc = (ground.zx * le * np.sin(th) + ground.zy * ln * np.sin(th) + np.cos(th)) / np.sqrt(
        1.0 + ground.zx**2 + ground.zy**2)
    loc = np.degrees(np.arccos(np.clip(cos_loc, 0.05, 1.0))).astype(np.float32)
    return ell, loc


def _to_lin(db: np.ndarray | float) -> np.ndarray:
    return np.power(np.float32(10.0), np.asarray(db, np.float32) / np.float32(10.0))


def _class_param(table: dict[str, tuple[float, float]], p: int) -> np.ndarray:
    return np.array([table[c][p] for c in spectra.CLASSES], np.float32)


def gamma0(ground: Ground, date: GroundDate, site: Site, theta_loc: np.ndarray, wind: float,
           frozen: bool) -> np.ndarray:
    """(2, P, P) float32 noise-free gamma0 in linear power (VV, VH) of one date."""
    cls = ground.cls
    texture = np.array([CLASS_TEXTURE[c] for c in spectra.CLASSES], np.float32)[cls] * ground.tex
    mv = 4.0 if frozen else 12.0 + 22.0 * date.wetness
    soil_vv = SOIL_VV_AT_15 + SOIL_DB_PER_PCT * (mv - 15.0) + site.roughness
    water_vv = -24.0 + 8.0 * math.log10(1.0 + wind)
    canopy = np.isin(cls, (CROPLAND, GRASSLAND))
    g = np.where(canopy, 1.0 - date.bare, 0.0).astype(np.float32)  # vegetation cover of soil classes
    out = np.empty((2, *cls.shape), np.float32)
    for p in range(2):
        base = _class_param(CLASS_DB, p)[cls] + site.jitter[:, p][cls] + texture  # (P, P) dB
        base += _class_param(CLASS_SLOPE, p)[cls] * (theta_loc - REF_INCIDENCE)
        base = np.where(cls == WATER, base + (water_vv - CLASS_DB["water"][0]), base)
        base = np.where(cls == FOREST, base + (1.0 if p == 0 else 2.5) * date.dev, base)
        if frozen:
            base = np.where(cls != WATER, base + FROZEN_DB[p], base)
        lin = _to_lin(base)
        if canopy.any():
            soil_db = soil_vv - (SOIL_VH_BELOW_VV if p == 1 else 0.0)
            soil = _to_lin(soil_db + _class_param(CLASS_SLOPE, p)[cls] * (theta_loc - REF_INCIDENCE)
                           + 0.5 * ground.tex)
            lin = np.where(canopy, g * lin + (1.0 - (1.0 - CANOPY_TRANSMISSION) * g) * soil, lin)
        if date.snow is not None and not frozen:  # wet snow absorbs; dry (frozen) snow is transparent
            lin += date.snow * (_to_lin(WET_SNOW_DB[p] + 0.5 * ground.tex) - lin)
        out[p] = lin
    return out


def measure(rng: np.random.Generator, g0: np.ndarray, theta_ell: np.ndarray, theta_loc: np.ndarray,
            product: str, looks: float = ENL) -> np.ndarray:
    """(2, P, P) float32 measured backscatter in linear power: the product's quantity, noise floor, speckle."""
    if product == "GRD":
        te, tl = np.radians(theta_ell), np.radians(theta_loc)
        area = np.clip(np.sin(te) / np.maximum(np.sin(tl), 1e-3), 0.25, 4.0)
        g0 = g0 * (np.cos(te) * area)[None]
    elif product != "RTC":
        raise ValueError(f"product {product!r} is not one of {PRODUCTS}")
    g0 = g0 * _to_lin(np.array(CALIBRATION_DB[product], np.float32))[:, None, None]
    lin = g0 + np.float32(10.0 ** (NOISE_FLOOR_DB / 10.0))
    lin *= rng.gamma(looks, 1.0 / looks, size=lin.shape).astype(np.float32)
    return lin.astype(np.float32)


def to_db(lin: np.ndarray) -> np.ndarray:
    """dB of linear power (NaN stays NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (10.0 * np.log10(lin)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- dates


def platform_on(rng: np.random.Generator, when: datetime) -> str:
    """sentinel-1a or -1b (both flying from 2016-09 until 23 Dec 2021, then 1a alone)."""
    if when >= S1B_END or when < datetime(2016, 9, 26, tzinfo=UTC):
        return "sentinel-1a"
    return "sentinel-1a" if rng.random() < 0.5 else "sentinel-1b"


def pass_time(rng: np.random.Generator, s2_time: datetime, lon: float, orbit_state: str,
              max_offset_days: int) -> datetime:
    """An S1 pass within ``max_offset_days`` whole days of ``s2_time`` at the orbit state's local solar hour."""
    day = s2_time.date() + timedelta(days=int(rng.integers(-max_offset_days, max_offset_days + 1)))
    hour = PASS_HOUR[orbit_state] - lon / 15.0
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        hours=hour, seconds=float(rng.uniform(-600, 600)))


def item_id(platform: str, when: datetime, relative_orbit: int, suffix: str = "rtc", mode: str = "IW",
            pol: str = "DV") -> str:
    """A Planetary Computer style id, e.g. ``S1A_IW_GRDH_1SDV_20191215T004249_20191215T004314_030352_0378DC_rtc``."""
    start, _ = _LAUNCH[platform]
    absolute = start_orbit(platform, when, relative_orbit)
    take = (absolute * 37 + int((when - start).total_seconds()) // 1000) % 0xFFFFFF  # a datatake id
    end = when + timedelta(seconds=25)
    return (f"S1{platform[-1].upper()}_{mode}_GRDH_1S{pol}_{when:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}_"
            f"{absolute:06d}_{take:06X}_{suffix}")


def start_orbit(platform: str, when: datetime, relative_orbit: int) -> int:
    """The absolute orbit number of a pass on ``relative_orbit`` at ``when`` (175 orbits per 12-day cycle)."""
    start, first = _LAUNCH[platform]
    cycle = int((when - start).days // 12)
    return first + 175 * cycle + (relative_orbit - first) % 175


def simulate_dates(seed: int, index: int, ground: Ground, dates: list[GroundDate], s2_times: list[datetime], *,
                   product: str = "RTC", missing_prob: float = 0.15, nodata_prob: float = 0.05,
                   max_offset_days: int = 3) -> dict[str, Any]:
    """S1 of every date of one location.

    Args:
        ground, dates: the location's surface and its state on each date (from the S2 simulation).
        s2_times: the S2 acquisition time of each date (a missing S2 date keeps its planned time).
        product: ``"RTC"`` (gamma0) or ``"GRD"`` (sigma0).
        missing_prob: chance that a date has no S1 pass.
        nodata_prob: chance that a date's pass ends inside the patch (NaN beyond a straight edge, 5-40 %).
        max_offset_days: the pass is within this many days of the S2 time.

    Returns:
        ``db`` (T, 2, P, P) float32 dB, NaN = nodata; ``valid`` (T,) bool; ``meta`` T dicts (None when missing)
        with the keys of the store's S1 metadata.
    """
    if product not in PRODUCTS:
        raise ValueError(f"product {product!r} is not one of {PRODUCTS}")
    rng = np.random.default_rng([seed, index, S1_STREAM])
    site = draw_site(rng)
    P, T = ground.cls.shape[0], len(dates)
    db = np.full((T, 2, P, P), np.nan, np.float32)
    valid = np.zeros(T, bool)
    metas: list[dict[str, Any] | None] = []
    for t, date in enumerate(dates):
        present = rng.random() >= missing_prob
        lin, meta = simulate_date(rng, site, ground, date, s2_times[t], product=product, nodata_prob=nodata_prob,
                                  max_offset_days=max_offset_days)
        if not present:
            metas.append(None)
            continue
        db[t] = to_db(lin)
        valid[t] = True
        metas.append({k: v for k, v in meta.items() if k != "incidence"})  # the store's fields only
    return {"db": db, "valid": valid, "meta": metas}


def simulate_date(rng: np.random.Generator, site: Site, ground: Ground, date: GroundDate, s2_time: datetime, *,
                  product: str = "RTC", nodata_prob: float = 0.05,
                  max_offset_days: int = 3) -> tuple[np.ndarray, dict[str, Any]]:
    """One S1 pass over a location: (2, P, P) float32 linear power (NaN = nodata) and its store metadata (plus
    ``incidence``: the mean ellipsoid incidence angle, degrees).

    The draws, in order: relative orbit, wind, frozen?, pass time, platform, slice edge, speckle.
    """
    orbit = site.orbits[int(rng.integers(len(site.orbits)))]
    wind = WIND_SCALE * float(rng.weibull(2.0))
    frozen = bool(rng.random() < frozen_chance(ground.lat, date.doy))
    when = pass_time(rng, s2_time, ground.lon, site.orbit_state, max_offset_days)
    platform = platform_on(rng, when)
    edge = _edge(rng, ground.cls.shape[0]) if rng.random() < nodata_prob else None
    ell, loc = local_incidence(ground, orbit, site.orbit_state)
    lin = measure(rng, gamma0(ground, date, site, loc, wind, frozen), ell, loc, product)
    if edge is not None:
        lin[:, edge] = np.nan
    meta = {
        "item_id": item_id(platform, when, orbit.relative), "datetime": when, "product": product,
        "quantity": "gamma0" if product == "RTC" else "sigma0", "platform": platform,
        "orbit_state": site.orbit_state, "relative_orbit": orbit.relative,
        "time_offset_days": (when - s2_time).total_seconds() / 86400.0, "rule": "synth",
        "nodata_fraction": float(edge.mean()) if edge is not None else 0.0, "looks": ENL,
        "incidence": float(np.mean(ell)),
    }
    return lin, meta


def _edge(rng: np.random.Generator, P: int) -> np.ndarray:
    """(P, P) bool beyond a straight slice edge (across the track), 5-40 % of the patch."""
    theta = math.radians(float(rng.uniform(-10, 10)) + (90.0 if rng.random() < 0.5 else 270.0))
    r, c = np.mgrid[0:P, 0:P].astype(np.float32) + 0.5
    u = c * math.cos(theta) + r * math.sin(theta)
    return u > float(np.quantile(u, 1.0 - float(rng.uniform(0.05, 0.4))))
