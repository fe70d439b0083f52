"""Radar and clouds for the simulated OSCD (:mod:`seco.synth.changes`): Sentinel-1 pairs, floods, overcast dates.

- **Sentinel-1** (``s1=True``): VV / VH of both dates from the S1 model of :mod:`seco.synth.sar` on the city's
  own surface (land cover of each date, the S2 texture, terrain slopes, the S2 phenology and soil wetness of
  the date). Both dates come from the **same relative orbit** (change detection pairs same-track passes, so
  the incidence geometry cancels). Planted changes as radar sees them:

  - ``flood`` (land -> open water): flood water in fields is sheltered, so its surface roughness is that of a
    wind ``CALM_WIND_FACTOR`` times the date's: VV / VH drop by about 7-13 dB (median ~10) against the change of
    the unflooded fields (S2 sees the water too, unless clouded);
  - ``clearing`` (forest -> bare soil): the soil term of the S1 model plus the brightening of logging slash and
    rough ground (``SLASH_DB``): against the change of the standing forest, VH drops by about 7-10 dB, VV by
    3-6 dB (the volume scattering of the canopy goes, VH loses most);
  - ``water`` (a new pond): open water roughened by the date's full wind, 0-9 dB down;
  - ``construction``: the urban term (double bounce) replaces the canopy-over-soil mix: -3 to +5 dB, often
    barely visible (docs/SYNTH.md).

  Everything radar draws comes from ``default_rng([seed, index, S1_STREAM])``: the S2 images of a city do not
  change when S1 is simulated. Files (the layout of the Sentinel-1 extension of OSCD by Hafner et al.,
  github.com/SebastianHafner/DS_UNet, ``data/sentinel1_<city>_<orbit>_t<1|2>.tif``) are written per city as
  ``<city>/sentinel1/sentinel1_<city>_<orbit>_t1.tif`` and ``_t2.tif``: float32 dB, two bands described ``VV``
  and ``VH``, on the 10 m grid of the city's S2 images.
- **Floods** (``flood_fraction``): fields next to the river go under water on the second date, from the river
  outwards along a rough shoreline; drawn from ``default_rng([seed, index, FLOOD_STREAM])`` after the other
  changes, on pixels no other change took, so without floods nothing else moves.
- **Overcast dates** (``cloud_fraction``): the simulator's own clouds (opacity from a smooth field blending every
  band towards the cloud spectrum of :mod:`seco.synth.spectra`, as :mod:`seco.synth.scene` renders them) over
  90-100 % of a city on the second (or both) S2 dates; drawn from ``default_rng([seed, index, CLOUD_STREAM])``.
  S1 sees through them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from seco.errors import ConfigError
from seco.synth import sar, seasons
from seco.synth.scene import CROPLAND, GRASSLAND, WATER, _fields

#: Generator streams of floods and overcast dates (apart from every S2 and S1 stream of a city).
FLOOD_STREAM = 0xF100D
CLOUD_STREAM = 0xC10D
#: Folder of a city's S1 files and their name pattern (DS_UNet's ``sentinel1_<city>_<orbit>_t<date>.tif``).
S1_DIR = "sentinel1"
S1_PRODUCT = "RTC"
#: Brightening of a clear-cut (logging slash, stumps, rough soil) over the S1 model's bare soil, dB (VV, VH).
SLASH_DB = (4.0, 1.5)
#: Flood water in fields is sheltered: the wind that roughens it is this share of the date's wind.
CALM_WIND_FACTOR = 0.2
#: Cloud cover of an overcast date: the share of the city under opacity > 0.5.
OVERCAST_COVER = (0.9, 1.0)
CLOUD_DATES = ("second", "both")
CLOUD_SPLITS = ("all", "test")


def s1_file(city_dir: Path, city: str, orbit: int, t: int) -> Path:
    """``<city_dir>/sentinel1/sentinel1_<city>_<orbit>_t<t>.tif``."""
    return city_dir / S1_DIR / f"sentinel1_{city}_{orbit}_t{t}.tif"


# ---------------------------------------------------------------------------------------------- floods


def flood_pixels(rng: np.random.Generator, cover: np.ndarray, free: np.ndarray, budget_px: float) -> np.ndarray:
    """(H, W) bool: about ``budget_px`` crop / grass pixels of ``free`` nearest the river (date-1 water), along a
    rough shoreline (distance plus a smooth field); none when no field is free."""
    from scipy.ndimage import distance_transform_edt

    H, W = cover.shape
    eligible = np.isin(cover, (CROPLAND, GRASSLAND)) & free
    n = min(int(round(budget_px)), int(eligible.sum()))
    rough = _fields(rng, 1, max(H, W), 3.2, cutoff=0.08)[0][:H, :W]
    if n <= 0:
        return np.zeros((H, W), bool)
    water = cover == WATER
    dist = distance_transform_edt(~water) if water.any() else np.zeros((H, W))
    score = dist + 12.0 * rough  # px: the flood reaches further where the ground is lower
    order = np.argsort(score[eligible], kind="stable")[:n]
    out = np.zeros(int(eligible.sum()), bool)
    out[order] = True
    flood = np.zeros((H, W), bool)
    flood[eligible] = out
    return flood


# ---------------------------------------------------------------------------------------------- clouds


def overcast_cities(names: list[str], test: list[str], seed: int, fraction: float, splits: str) -> set[str]:
    """The cities whose S2 dates are overcast: ``round(fraction * n)`` (halves up) of each split's ``n`` cities
    (only the test split with ``splits="test"``), chosen by a seeded order, so that the overcast cities of a
    smaller fraction are among those of a larger one."""
    if fraction <= 0:
        return set()
    order = np.random.default_rng([seed, CLOUD_STREAM]).permutation(len(names))
    ranked = [names[i] for i in order]
    out: set[str] = set()
    groups = [test] if splits == "test" else [[c for c in names if c not in test], test]
    for group in groups:
        k = math.floor(fraction * len(group) + 0.5)
        out |= set([c for c in ranked if c in group][:k])
    return out


def overcast(rng: np.random.Generator, H: int, W: int) -> tuple[np.ndarray, np.ndarray, float]:
    """An overcast sky over (H, W): opacity ``alpha`` (as :func:`seco.synth.scene._clouds` makes it, cover drawn
    in :data:`OVERCAST_COVER`), the cloud-top texture, and the cover (share of opacity > 0.5)."""
    S = max(H, W)
    field = _fields(rng, 1, S, 3.2, cutoff=0.08)[0][:H, :W]
    tex = _fields(rng, 1, S, 2.2)[0][:H, :W]
    cov = float(rng.uniform(*OVERCAST_COVER))
    alpha = np.clip((field - np.quantile(field, 1 - cov)) / 0.6 + 0.5, 0.0, 1.0).astype(np.float32)
    return alpha, tex.astype(np.float32), float((alpha > 0.5).mean())


# ---------------------------------------------------------------------------------------------- planting


def plant_floods(seed: int, index: int, planter: Any, fraction: float) -> tuple[np.ndarray, float]:
    """Flood fields next to the river on date 2 (own generator stream; nothing without ``fraction``): the (H, W)
    flood pixels and the target share."""
    H, W = planter.cover2.shape
    if fraction <= 0:
        return np.zeros((H, W), bool), 0.0
    rng = np.random.default_rng([seed, index, FLOOD_STREAM])
    target = float(fraction * rng.uniform(2 / 3, 4 / 3))
    flooded = flood_pixels(rng, planter.city.cover, planter.unchanged(), target * H * W)
    if flooded.any():
        planter.offset2[flooded] = 0.0
        planter.plant("flood", flooded, WATER)
    return flooded, target


def overcast_dates(seed: int, index: int, H: int, W: int,
                    which: str | None) -> list[tuple[np.ndarray, np.ndarray, float] | None]:
    """Per date, an overcast sky (:func:`seco.synth.overcast`) or None (own generator stream)."""
    if which is None:
        return [None, None]
    if which not in CLOUD_DATES:
        raise ConfigError(f"overcast={which!r} must be None or one of {', '.join(CLOUD_DATES)}")
    rng = np.random.default_rng([seed, index, CLOUD_STREAM])
    skies = [overcast(rng, H, W) for _ in range(2)]
    return [skies[0] if which == "both" else None, skies[1]]


# ---------------------------------------------------------------------------------------------- radar


def _square(a: np.ndarray, S: int) -> np.ndarray:
    """Edge-pad an (H, W) array to (S, S) (the S1 geometry works on square patches)."""
    H, W = a.shape
    return np.pad(a, ((0, S - H), (0, S - W)), mode="edge")


def _pass(rng: np.random.Generator, site: sar.Site, ground: sar.Ground, gdate: sar.GroundDate, when: datetime,
          cleared: np.ndarray, flooded: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """One pass over the city (the draws of :func:`seco.synth.sar.simulate_date`, without a slice edge): (2, S, S)
    linear power, with clear-cuts brightened by :data:`SLASH_DB` and flood water calmed, and its metadata."""
    orbit = site.orbits[0]
    wind = sar.WIND_SCALE * float(rng.weibull(2.0))
    frozen = bool(rng.random() < sar.frozen_chance(ground.lat, gdate.doy))
    t = sar.pass_time(rng, when, ground.lon, site.orbit_state, 3)
    platform = sar.platform_on(rng, t)
    ell, loc = sar.local_incidence(ground, orbit, site.orbit_state)
    g0 = sar.gamma0(ground, gdate, site, loc, wind, frozen)
    if cleared.any():
        g0 = np.where(cleared[None], g0 * sar._to_lin(np.array(SLASH_DB, np.float32))[:, None, None], g0)
    if flooded.any():
        calm = sar.gamma0(ground, gdate, site, loc, CALM_WIND_FACTOR * wind, frozen)
        g0 = np.where(flooded[None], calm, g0)
    lin = sar.measure(rng, g0, ell, loc, S1_PRODUCT)
    meta = {"item_id": sar.item_id(platform, t, orbit.relative), "datetime": t.isoformat(),
            "product": S1_PRODUCT, "platform": platform, "orbit_state": site.orbit_state,
            "relative_orbit": orbit.relative, "incidence": round(float(np.mean(ell)), 3), "frozen": frozen,
            "wind_m_s": round(wind, 3)}
    return lin, meta


def simulate_s1_pair(seed: int, index: int, covers: tuple[np.ndarray, np.ndarray], tex: np.ndarray,
                     zx: np.ndarray, zy: np.ndarray, lat: float, lon: float, dates: tuple[date, date],
                     devs: tuple[np.ndarray, np.ndarray], effects: list[seasons.DateEffects], bare_code: int,
                     flooded: np.ndarray) -> dict[str, Any]:
    """S1 of both dates of a city.

    Args:
        covers: the land cover of each date (:data:`seco.synth.changes.COVER` codes), (H, W).
        tex: the S2 texture field (H, W); ``zx``, ``zy``: tan-slopes on the square canvas (S, S), S >= H, W.
        devs: the S2 NDVI deviation of each date (H, W); ``effects``: the S2 per-date effects (soil wetness).
        bare_code: the cover code of bare soil (cleared forest), seen as a canopy-free field.
        flooded: (H, W) bool, the flood pixels of date 2.

    Returns:
        ``db`` (2, 2, H, W) float32 dB (date, VV / VH), ``meta`` (one dict per date), ``orbit`` (relative orbit).
    """
    H, W = covers[0].shape
    S = zx.shape[0]
    rng = np.random.default_rng([seed, index, sar.S1_STREAM])
    site = sar.draw_site(rng)
    site = replace(site, orbits=site.orbits[:1])  # both dates from one track
    db = np.empty((2, 2, H, W), np.float32)
    metas = []
    for t, (cover, dev) in enumerate(zip(covers, devs, strict=True)):
        bare_px = cover == bare_code
        cls = np.where(bare_px, CROPLAND, cover).astype(np.intp)
        soil = np.isin(cover, (CROPLAND, GRASSLAND, bare_code)).astype(np.float32)
        bare = np.where(bare_px, 1.0, seasons.bareness(dev, soil)).astype(np.float32)
        ground = sar.Ground(cls=_square(cls, S), tex=_square(tex, S), zx=zx, zy=zy, lat=lat, lon=lon)
        gdate = sar.GroundDate(doy=dates[t].timetuple().tm_yday, dev=_square(dev, S), bare=_square(bare, S),
                               snow=None, wetness=effects[t].wetness)
        when = datetime(dates[t].year, dates[t].month, dates[t].day, 10, 30, tzinfo=UTC)
        fl = _square(flooded if t == 1 else np.zeros((H, W), bool), S)
        lin, meta = _pass(rng, site, ground, gdate, when, _square(bare_px, S), fl)
        db[t] = sar.to_db(lin)[:, :H, :W]
        metas.append(meta)
    return {"db": db, "meta": metas, "orbit": site.orbits[0].relative}
