"""A simulated OSCD: city pairs of Sentinel-2 L1C-like images with planted changes, in the official layout.

Each city is one land-cover map (an urban core of blocks, roads and parks; crop and grass parcels; forest;
a river) rendered with the spectra, texture and phenology of :mod:`seco.synth.scene` on two dates 1.25-1.75
years apart, so the seasons differ. Between the dates, besides the seasons, come changes that are **not**
labelled, as in OSCD: crop rotation (half the crop parcels follow another calendar), the per-date effects of
:mod:`seco.synth.seasons` (sun elevation and terrain shading of gently rolling ground, haze, soil moisture),
a per-date, per-band calibration gain and sensor noise. The labelled changes are planted on the second date only:

- ``construction``: crop / grass parcels, preferably near the town, become urban blocks and roads;
- ``water``: a new pond or reservoir dug into fields;
- ``clearing``: forest parcels cut to bare soil.

The change map is exactly the union of the planted pixels (``cover1 != cover2``); its share of a city is
drawn around ``change_fraction``. Written in the layout :class:`seco.data.oscd.OSCD` reads (see its
docstring): per-band uint16 GeoTIFFs in EPSG:4326 at native sizes (20 m and 60 m bands about 1/2 and 1/6 of
the 10 m grid, area-averaged over the same extent), ``dates.txt``, ``train.txt`` / ``test.txt``,
``<city>-cm.tif`` (1 = no change, 2 = change) and an RGBA ``cm.png`` (0 / 255) under Train Labels / Test
Labels, ``pair/img{1,2}.png`` previews, and ``synth_oscd.json`` (config and what was planted where).

Radar, floods and clouds (:mod:`seco.synth.changes_s1`, each from its own generator stream, so that without
them every output is what it was): ``s1=True`` adds Sentinel-1 VV / VH of both dates
(``<city>/sentinel1/sentinel1_<city>_<orbit>_t{1,2}.tif``, dB), ``flood_fraction`` plants ``flood`` changes
(fields by the river under water on date 2), ``cloud_fraction`` puts the second (or both) S2 dates of that
share of the cities under an overcast sky.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from seco.bands import BY_NAME, L1C, TEN_M, parse_bands
from seco.errors import ConfigError, DatasetError
from seco.fileutil import atomic_write
from seco.synth import changes_s1, geo, seasons, spectra
from seco.synth.changes_io import (
    IMAGES_DIR,
    MANIFEST,
    TEST_LABELS_DIR,
    TRAIN_LABELS_DIR,
    preview,
    reusable,
    write_band,
    write_change_map,
    write_s1,
)
from seco.synth.scene import CROPLAND, FOREST, GRASSLAND, URBAN, WATER, _fields, _rotated_grid

#: Land-cover codes of the change maps: the simulator's classes plus bare soil (cleared forest).
BARE = len(spectra.CLASSES)
COVER: tuple[str, ...] = (*spectra.CLASSES, "bare soil")
#: Kinds of planted change and their share of a city's change budget.
CHANGE_KINDS: dict[str, float] = {"construction": 0.6, "water": 0.15, "clearing": 0.25}
#: NDVI offset of bare soil, relative to the cropland spectrum (ploughed field, NDVI about 0.1).
BARE_DEV = -0.15
_FIRST = date(2015, 7, 1)  # Sentinel-2A in orbit


@dataclass(frozen=True)
class ChangeDatasetConfig:
    """Everything that determines a simulated OSCD (saved in ``synth_oscd.json``).

    Attributes:
        num_cities: cities to simulate; a quarter of them (at least one) are the test split.
        size: nominal side of a city's 10 m grid; each city draws its own height and width within +-12 %.
        seed: the seed; city ``i`` depends only on (seed, i).
        bands: bands written per date (must include the 10 m bands, which define the grid).
        change_fraction: target share of changed pixels; each city draws its own in [2/3, 4/3] of it.
        s1: also write Sentinel-1 VV / VH of both dates (:mod:`seco.synth.changes_s1`).
        flood_fraction: target share of a city flooded on the second date (each city draws its own in [2/3, 4/3]
            of it), labelled as change besides ``change_fraction``; 0 = no floods.
        cloud_fraction: share of the cities (of each split) whose S2 dates are overcast, 0..1.
        cloud_dates: ``"second"`` (the second date of an overcast city) or ``"both"``.
        cloud_splits: ``"all"`` (train and test cities) or ``"test"`` (test cities only).
    """

    num_cities: int = 4
    size: int = 192
    seed: int = 0
    bands: tuple[str, ...] = L1C
    change_fraction: float = 0.075
    s1: bool = False
    flood_fraction: float = 0.0
    cloud_fraction: float = 0.0
    cloud_dates: str = "second"
    cloud_splits: str = "all"

    def __post_init__(self) -> None:
        if isinstance(self.num_cities, bool) or not isinstance(self.num_cities, int) or self.num_cities < 2:
            raise ConfigError(f"num_cities={self.num_cities!r}: need an integer >= 2 (one train and one test city)")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 64:
            raise ConfigError(f"size={self.size!r}: give an integer of at least 64 px (a 96 px tile needs ~that)")
        if not 0.005 <= self.change_fraction <= 0.3:
            raise ConfigError(f"change_fraction={self.change_fraction!r} must be in 0.005..0.3, e.g. 0.075")
        if not 0.0 <= self.flood_fraction <= 0.2:
            raise ConfigError(f"flood_fraction={self.flood_fraction!r} must be in 0..0.2, e.g. 0.04 (0 = no floods)")
        if not 0.0 <= self.cloud_fraction <= 1.0:
            raise ConfigError(f"cloud_fraction={self.cloud_fraction!r} must be in 0..1 (0.5: half the cities overcast)")
        if self.cloud_dates not in changes_s1.CLOUD_DATES:
            raise ConfigError(f"cloud_dates={self.cloud_dates!r} must be one of {', '.join(changes_s1.CLOUD_DATES)}")
        if self.cloud_splits not in changes_s1.CLOUD_SPLITS:
            raise ConfigError(f"cloud_splits={self.cloud_splits!r} must be one of {', '.join(changes_s1.CLOUD_SPLITS)}")
        missing = [b for b in TEN_M if b not in self.bands]
        if missing:
            raise ConfigError(
                f"bands {', '.join(self.bands)} lack the 10 m band(s) {', '.join(missing)}, which OSCD readers "
                "use as the grid; include B02, B03, B04 and B08"
            )

    def manifest_config(self) -> dict[str, Any]:
        """The config as ``synth_oscd.json`` records it; the radar / flood / cloud settings only where they are not
        the defaults, so an S2-only dataset's manifest is what it was before they existed."""
        d = {**asdict(self), "bands": list(self.bands)}
        return {k: v for k, v in d.items() if k not in _EXTRA_DEFAULTS or v != _EXTRA_DEFAULTS[k]}

    @property
    def test_cities(self) -> int:
        return max(1, self.num_cities // 4)

    def city_names(self) -> list[str]:
        return [f"synth{i:02d}" for i in range(self.num_cities)]


#: The settings added with Sentinel-1 (recorded in the manifest only when they differ from these).
_EXTRA_DEFAULTS: dict[str, Any] = {"s1": False, "flood_fraction": 0.0, "cloud_fraction": 0.0, "cloud_dates": "second",
                                   "cloud_splits": "all"}

# ---------------------------------------------------------------------------------------------- simulation


def _area_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) weights of area-averaging ``n_in`` cells onto ``n_out`` cells over the same extent."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    j = np.arange(n_in)
    lo = np.maximum(edges[:-1, None], j[None, :])
    hi = np.minimum(edges[1:, None], j[None, :] + 1)
    w = np.clip(hi - lo, 0.0, None)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def native_shape(height: int, width: int, band: str) -> tuple[int, int]:
    """(rows, cols) of ``band``'s file for a 10 m grid of (height, width): about 1/2 (20 m) and 1/6 (60 m)."""
    f = BY_NAME[band].resolution_m // 10
    return max(1, round(height / f)), max(1, round(width / f))


def _river(rng: np.random.Generator, S: int) -> np.ndarray:
    """(S, S) bool: a meandering river 3-7 px wide across the canvas."""
    theta = rng.uniform(0, math.pi)
    y, x = np.mgrid[0:S, 0:S].astype(np.float32)
    u = x * math.cos(theta) + y * math.sin(theta)
    v = -x * math.sin(theta) + y * math.cos(theta)
    c = float(rng.uniform(0.3, 0.7)) * (u.max() + u.min())
    meander = sum(rng.uniform(2, 8) * np.sin(2 * math.pi * v / rng.uniform(40, 160) + rng.uniform(0, 2 * math.pi))
                  for _ in range(3))
    return np.abs(u - c - meander) < rng.uniform(1.5, 3.5)


@dataclass
class _City:
    """One simulated city on its (H, W) grid: date-1 land cover and the per-pixel and per-parcel structure.

    Per-parcel arrays are indexed by ``pinv`` (the parcel of each pixel); ``*2`` are the calendars of date 2
    (crop rotation, not a change).
    """

    cover: np.ndarray  # (H, W) intp land cover of date 1 (COVER codes)
    pinv: np.ndarray  # (H, W) parcel index
    n_parcels: int
    urban: np.ndarray  # (H, W) bool
    town: np.ndarray  # (H, W) smooth field, high in the town
    pond_noise: np.ndarray  # (H, W) smooth field roughening pond shores
    tex: np.ndarray  # (H, W) texture field
    vigour: np.ndarray  # (H, W) vigour field
    hinv: np.ndarray  # (H, W) cell of the fine block grid of new construction
    hdist: np.ndarray  # (H, W) distance to that grid's nearest cut
    n_houses: int
    offset: np.ndarray  # (H, W) float32 structure, ln units
    amp_fac: np.ndarray  # (H, W) float32 factor on the seasonal amplitude
    crop_cal: np.ndarray  # (n_parcels,) index into spectra.CROP_CALENDARS, date 1
    crop_off: np.ndarray  # (n_parcels,) float32
    crop_cal2: np.ndarray  # (n_parcels,) date 2
    crop_off2: np.ndarray  # (n_parcels,) date 2
    grass_peak: np.ndarray  # (n_parcels,) float32 days
    grass_amp: np.ndarray  # (n_parcels,) float32
    grass_off: np.ndarray  # (n_parcels,) float32


_P_CAL = [0.35, 0.3, 0.2, 0.15]  # chances of the crop calendars of spectra.CROP_CALENDARS


def _draw_city(rng: np.random.Generator, H: int, W: int) -> _City:
    """The land cover of date 1 (an urban core of blocks, roads and parks; crop and grass parcels; forest; a
    river) and its structure and crop calendars, drawn on an (S, S) canvas and cut to (H, W)."""
    S = max(H, W)  # the random fields are square; everything is cut to (H, W) at the end
    tex, vigour = _fields(rng, 2, S, 2.2)
    smooth = _fields(rng, 3, S, 3.2, cutoff=0.08)
    town, wild, pond_noise = smooth[0], smooth[1], smooth[2]
    cover = np.full((S, S), CROPLAND, np.intp)
    urban = town > np.quantile(town, 1 - rng.uniform(0.2, 0.4))
    forest = ~urban & (wild > np.quantile(wild, 1 - rng.uniform(0.12, 0.3)))
    cover[forest] = FOREST
    cover[urban] = URBAN
    parcel, _ = _rotated_grid(rng, S, (14.0, 50.0))
    pid, pinv = np.unique(parcel, return_inverse=True)
    pinv = pinv.reshape(S, S)
    grass_parcel = rng.random(len(pid)) < 0.3
    cover[(cover == CROPLAND) & grass_parcel[pinv]] = GRASSLAND
    block, bdist = _rotated_grid(rng, S, (10.0, 28.0))
    bid, binv = np.unique(block, return_inverse=True)
    binv = binv.reshape(S, S)
    road = urban & (bdist < 1.0)
    park = urban & ~road & (rng.random(len(bid)) < 0.12)[binv]
    cover[park] = GRASSLAND
    cover[_river(rng, S)] = WATER
    house, hdist = _rotated_grid(rng, S, (6.0, 14.0))  # the block grid of new construction
    hid, hinv = np.unique(house[:H, :W], return_inverse=True)

    offset = np.zeros((S, S), np.float32)  # structure, ln units
    offset[urban] += rng.normal(0, 0.18, len(bid)).astype(np.float32)[binv[urban]]
    offset[road] = math.log(0.7)
    amp_fac = np.ones((S, S), np.float32)
    amp_fac[road] = 0.0
    n_cal = len(spectra.CROP_CALENDARS)
    crop_cal = rng.choice(n_cal, size=len(pid), p=_P_CAL)
    crop_off = rng.normal(0, 0.08, len(pid)).astype(np.float32)
    grass_peak = rng.normal(0, 12, len(pid)).astype(np.float32)
    grass_amp = rng.uniform(0.7, 1.3, len(pid)).astype(np.float32)
    grass_off = rng.normal(0, 0.05, len(pid)).astype(np.float32)
    # crop rotation (not a change): half the parcels follow another calendar on date 2
    rotated = rng.random(len(pid)) < 0.5
    crop_cal2 = np.where(rotated, rng.choice(n_cal, size=len(pid), p=_P_CAL), crop_cal)
    crop_off2 = np.where(rotated, rng.normal(0, 0.08, len(pid)).astype(np.float32), crop_off)

    sl = (slice(0, H), slice(0, W))
    return _City(
        cover=cover[sl].copy(), pinv=pinv[sl], n_parcels=len(pid), urban=urban[sl], town=town[sl],
        pond_noise=pond_noise[sl], tex=tex[sl], vigour=vigour[sl], hinv=hinv.reshape(H, W), hdist=hdist[:H, :W],
        n_houses=len(hid), offset=offset[sl], amp_fac=amp_fac[sl], crop_cal=crop_cal, crop_off=crop_off,
        crop_cal2=crop_cal2, crop_off2=crop_off2, grass_peak=grass_peak, grass_amp=grass_amp, grass_off=grass_off,
    )


class _Planter:
    """The planted changes of date 2: land cover, structure and amplitude copied from date 1, then changed."""

    def __init__(self, rng: np.random.Generator, city: _City) -> None:
        self.rng = rng
        self.city = city
        self.cover2 = city.cover.copy()
        self.offset2 = city.offset.copy()
        self.amp_fac2 = city.amp_fac.copy()
        self.changes: list[dict[str, Any]] = []

    def unchanged(self) -> np.ndarray:
        """(H, W) bool: pixels no change has taken yet."""
        return self.cover2 == self.city.cover

    def plant(self, kind: str, where: np.ndarray, new: int) -> int:
        n = int(where.sum())
        self.cover2[where] = new
        self.changes.append({"kind": kind, "pixels": n})
        return n

    def parcels(self, kind: str, eligible: np.ndarray, order: np.ndarray, new: int, budget_px: float) -> float:
        """Convert whole parcels (their eligible pixels) in ``order`` until ``budget_px`` is used; the rest."""
        city, rng = self.city, self.rng
        done = 0
        counts = np.bincount(city.pinv[eligible], minlength=city.n_parcels)
        totals = np.bincount(city.pinv.ravel(), minlength=city.n_parcels)
        for p in order:
            if done >= 0.9 * budget_px:
                break
            n = int(counts[p])
            if n < 40 or n < 0.6 * totals[p] or done + n > 1.15 * budget_px:
                continue
            where = eligible & (city.pinv == p) & self.unchanged()
            if new == URBAN:  # new houses on a fine block grid, with access roads
                self.offset2[where] = 0.1 + rng.normal(0, 0.18, city.n_houses).astype(np.float32)[city.hinv[where]]
                new_road = where & (city.hdist < 1.0)
                self.offset2[new_road] = math.log(0.7)
                self.amp_fac2[where] = np.where(new_road[where], 0.0, 0.3)
            else:
                self.offset2[where] = float(rng.normal(0, 0.05))
            done += self.plant(kind, where, new)
        return budget_px - done

    def ponds(self, fields_: np.ndarray, budget_px: float) -> float:
        """Dig ponds (irregular ellipses in fields) until about ``budget_px`` is used; the rest (may be < 0)."""
        rng = self.rng
        H, W = fields_.shape
        left = budget_px
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        for _ in range(20):
            if left <= 0.3 * budget_px:
                break
            cand = np.flatnonzero(fields_ & self.unchanged())
            if not len(cand):
                break
            cy, cx = np.unravel_index(int(rng.choice(cand)), (H, W))
            r = min(math.sqrt(max(left, 60.0) / math.pi), 16.0) * rng.uniform(0.8, 1.1)
            ang, ecc = rng.uniform(0, math.pi), rng.uniform(0.6, 1.0)
            du = (xx - cx) * math.cos(ang) + (yy - cy) * math.sin(ang)
            dv = -(xx - cx) * math.sin(ang) + (yy - cy) * math.cos(ang)
            rr = np.sqrt(du**2 + (dv / ecc) ** 2) / r
            where = (rr < 1 + 0.25 * self.city.pond_noise) & fields_ & self.unchanged()
            if where.sum() < 30:
                continue
            self.offset2[where] = 0.0
            left -= self.plant("water", where, WATER)
        return left


def _plant_changes(rng: np.random.Generator, city: _City, change_fraction: float) -> tuple[_Planter, float]:
    """Plant the labelled changes of date 2 (clearing, then ponds, then construction near the town, each within
    its share of the budget, a budget left over passing on to construction); the planter and the target."""
    H, W = city.cover.shape
    target = float(change_fraction * rng.uniform(2 / 3, 4 / 3))
    budget = {k: share * target * H * W for k, share in CHANGE_KINDS.items()}
    planter = _Planter(rng, city)
    fields_ = np.isin(city.cover, (CROPLAND, GRASSLAND))
    pinv, n = city.pinv.ravel(), city.n_parcels
    near_town = np.bincount(pinv, weights=city.town.ravel(), minlength=n) / np.maximum(
        np.bincount(pinv, minlength=n), 1)
    left = planter.parcels("clearing", city.cover == FOREST, rng.permutation(n), BARE, budget["clearing"])
    left += max(planter.ponds(fields_, budget["water"]), 0.0)
    order = np.argsort(-(near_town + 0.5 * rng.standard_normal(n)))  # sprawl: near the town first
    planter.parcels("construction", fields_ & planter.unchanged(), order, URBAN, budget["construction"] + left)
    return planter, target


class _Renderer:
    """Renders a city's date: ln rho = ln mean + within * texture + structure + slope * NDVI deviation, then
    the date's sun, moisture and haze, area-averaged to 20 / 60 m, with a calibration gain and sensor noise.

    The per-city spread of the class spectra is drawn when it is made.
    """

    def __init__(self, rng: np.random.Generator, bands: tuple[str, ...], city: _City, zx: np.ndarray,
                 zy: np.ndarray) -> None:
        tab = spectra.table(bands)
        self.rng, self.bands, self.city, self.zx, self.zy, self.tab = rng, bands, city, zx, zy, tab
        ln_mean = np.log(tab["mean"])  # (K, C)
        ln_mean += (0.5 * tab["between"] / tab["mean"]) * (rng.normal(size=(len(ln_mean), 1))
                                                           + 0.5 * rng.normal(size=ln_mean.shape))
        self.ln_mean = np.vstack([ln_mean, ln_mean[CROPLAND] + tab["slope"] * BARE_DEV]).astype(np.float32)  # + bare
        self.rel_within = np.vstack([tab["within"] / tab["mean"], tab["within"][CROPLAND] / tab["mean"][CROPLAND]])
        self.amp_k = np.append(tab["amp"], 0.0).astype(np.float32)
        self.peak_k = np.append(tab["peak"], 190.0).astype(np.float32)
        H, W = city.cover.shape
        self.area = {f: (_area_matrix(round(H / f), H), _area_matrix(round(W / f), W)) for f in (2, 6)}

    def ndvi_deviation(self, cv: np.ndarray, afac: np.ndarray, cal_idx: np.ndarray, doy: int) -> np.ndarray:
        """(H, W) seasonal NDVI change of land cover ``cv`` on day of year ``doy``."""
        city = self.city
        cal = np.array(spectra.CROP_CALENDARS, np.float32)  # (n, 2): peak doy, amplitude factor
        peak = self.peak_k[cv].copy()
        amp = self.amp_k[cv] * afac
        crop, grass = cv == CROPLAND, cv == GRASSLAND
        peak[crop] = cal[cal_idx[city.pinv[crop]], 0]
        amp[crop] *= cal[cal_idx[city.pinv[crop]], 1]
        peak[grass] += city.grass_peak[city.pinv[grass]]
        amp[grass] *= city.grass_amp[city.pinv[grass]]
        return amp * (np.cos((2 * math.pi / 365.0) * (doy - peak)) + 0.35 * city.vigour)

    def render(self, cv: np.ndarray, off: np.ndarray, afac: np.ndarray, cal_idx: np.ndarray, c_off: np.ndarray,
               doy: int, eff: seasons.DateEffects, cloud: tuple[np.ndarray, np.ndarray] | None = None,
               ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """(band -> uint16 plane at its native shape, NDVI as written (H, W), surface NDVI (H, W)); ``cloud``:
        (opacity, cloud-top texture), both (H, W), blended over the hazy image towards the cloud spectrum."""
        rng, tab, bands, city = self.rng, self.tab, self.bands, self.city
        crop, grass = cv == CROPLAND, cv == GRASSLAND
        off = off + np.where(crop, c_off[city.pinv], 0.0) + np.where(grass, city.grass_off[city.pinv], 0.0)
        dev = self.ndvi_deviation(cv, afac, cal_idx, doy)  # (H, W) NDVI change
        gain = rng.normal(0, 0.04) + rng.normal(0, 0.015, len(bands))  # calibration / residual gain of this date
        terms = seasons.band_terms(bands, eff)
        ln_sun = np.log(seasons.shading(self.zx, self.zy, eff)) + eff.gain  # (H, W) terrain shading, illumination
        bare = seasons.bareness(dev, np.isin(cv, (CROPLAND, GRASSLAND, BARE)).astype(np.float32))  # (H, W)
        planes: dict[str, np.ndarray] = {}
        refl, surface = {}, {}
        for c, b in enumerate(bands):
            ln = self.ln_mean[cv, c] + self.rel_within[cv, c] * city.tex + off + tab["slope"][c] * dev + gain[c]
            ln += ln_sun - terms["wet_k"][c] * bare
            img = np.exp(ln.astype(np.float32))  # (H, W) DN at 10 m
            if b in ("B04", "B08"):
                surface[b] = img
            img = img * terms["transmit"][c] + terms["path"][c]  # haze
            if cloud is not None:
                img = img + cloud[0] * (self.tab["cloud"][c] * (0.92 + 0.08 * cloud[1]) - img)
            f = BY_NAME[b].resolution_m // 10
            if f > 1:
                ah, aw = self.area[f]
                img = ah @ img @ aw.T  # area average over the same extent
            img *= np.exp(rng.normal(0, 0.01, img.shape)).astype(np.float32)  # sensor noise
            planes[b] = (np.clip(img, 1.0, 65535.0) + 0.5).astype(np.uint16)
            if b in ("B04", "B08"):
                refl[b] = planes[b].astype(np.float32)
        ndvi = (refl["B08"] - refl["B04"]) / (refl["B08"] + refl["B04"])
        ground = (surface["B08"] - surface["B04"]) / (surface["B08"] + surface["B04"])
        return planes, ndvi, ground.astype(np.float32)


def simulate_change_pair(
    seed: int,
    index: int,
    size: int = 192,
    bands: Sequence[str] = L1C,
    change_fraction: float = 0.075,
    *,
    s1: bool = False,
    flood_fraction: float = 0.0,
    overcast: str | None = None,
) -> dict[str, Any]:
    """Simulate one city pair (see the module docstring), drawn from ``default_rng([seed, index])``.

    ``s1``, ``flood_fraction`` and ``overcast`` (``None``, ``"second"`` or ``"both"``: which S2 dates are under
    an overcast sky) add radar, floods and clouds (:mod:`seco.synth.changes_s1`), each from its own generator
    stream: without them the outputs are what they always were.

    Returns:
        ``planes1``, ``planes2`` (band -> uint16 DN array at the band's native shape), ``mask`` (H, W) bool,
        ``cover1``, ``cover2`` (H, W) uint8 land cover (:data:`COVER` codes), ``ndvi1``, ``ndvi2`` (H, W)
        float32 of the 10 m bands as written (haze included), ``surface_ndvi1``, ``surface_ndvi2`` the same
        before the atmosphere, ``effects`` (the two dates' :class:`seco.synth.seasons.DateEffects` as dicts),
        ``dates`` (date, date), ``changes`` (one dict per planted change: kind, pixels), ``target_fraction``,
        ``lat``, ``lon``, ``tile``; ``flood_target`` (share of the city to flood, 0 without floods), ``flooded`` (H, W) bool,
        ``cloud_cover`` (per date, the share under opacity > 0.5; 0 when clear) and ``cloud_alpha`` (per date,
        (H, W) float32 opacity or None); with ``s1`` also ``s1``: ``db`` (2, 2, H, W) float32 dB (date, VV / VH),
        ``meta`` per date, ``orbit``.
    """
    rng = np.random.default_rng([seed, index])
    jit = max(1, size // 8)
    H, W = (int(size + v) for v in rng.integers(-jit, jit + 1, size=2))

    # ---- where and when
    lat, lon = float(rng.uniform(40.0, 55.0)), float(rng.uniform(-5.0, 20.0))
    d1 = _FIRST + timedelta(days=int(rng.integers(0, 365)))
    d2 = d1 + timedelta(days=int(rng.integers(365 + 90, 365 + 276)))  # another season, 1.25-1.75 years on
    doys = (d1.timetuple().tm_yday, d2.timetuple().tm_yday)
    srng = np.random.default_rng([seed, index, seasons.SEASON_STREAM])  # per-date effects, own stream
    zx, zy = seasons.slopes(_fields(srng, 1, max(H, W), 3.2, cutoff=0.08)[0], 0.0)  # gently rolling ground
    effects = [seasons.draw(srng, lat, d) for d in doys]

    city = _draw_city(rng, H, W)
    planter, target = _plant_changes(rng, city, change_fraction)
    flooded, flood_target = changes_s1.plant_floods(seed, index, planter, flood_fraction)
    clouds = changes_s1.overcast_dates(seed, index, H, W, overcast)
    renderer = _Renderer(rng, tuple(bands), city, zx[:H, :W], zy[:H, :W])
    planes1, ndvi1, ground1 = renderer.render(city.cover, city.offset, city.amp_fac, city.crop_cal, city.crop_off,
                                              doys[0], effects[0], clouds[0][:2] if clouds[0] else None)
    planes2, ndvi2, ground2 = renderer.render(planter.cover2, planter.offset2, planter.amp_fac2, city.crop_cal2,
                                              city.crop_off2, doys[1], effects[1], clouds[1][:2] if clouds[1] else None)
    extra: dict[str, Any] = {
        "flood_target": flood_target, "flooded": flooded, "cloud_cover": [c[2] if c else 0.0 for c in clouds],
        "cloud_alpha": [c[0] if c else None for c in clouds],
    }
    if s1:
        devs = (renderer.ndvi_deviation(city.cover, city.amp_fac, city.crop_cal, doys[0]),
                renderer.ndvi_deviation(planter.cover2, planter.amp_fac2, city.crop_cal2, doys[1]))
        extra["s1"] = changes_s1.simulate_s1_pair(seed, index, (city.cover, planter.cover2), city.tex, zx, zy, lat, lon,
                                                  (d1, d2), devs, effects, BARE, flooded)
    return {**extra,
        "planes1": planes1, "planes2": planes2, "mask": city.cover != planter.cover2,
        "cover1": city.cover.astype(np.uint8), "cover2": planter.cover2.astype(np.uint8),
        "ndvi1": ndvi1, "ndvi2": ndvi2, "surface_ndvi1": ground1, "surface_ndvi2": ground2,
        "effects": [asdict(e) for e in effects], "dates": (d1, d2), "changes": planter.changes,
        "target_fraction": target, "lat": lat, "lon": lon, "tile": geo.mgrs_tile(lat, lon),
    }


# ---------------------------------------------------------------------------------------------- writing


def _write_city(path: Path, cfg: ChangeDatasetConfig, i: int, city: str, test: bool,
                overcast: bool = False) -> dict[str, Any]:
    """Simulate city ``i`` and write its two dates, previews, change map (and S1); its manifest record."""
    sim = simulate_change_pair(cfg.seed, i, cfg.size, cfg.bands, cfg.change_fraction, s1=cfg.s1,
                               flood_fraction=cfg.flood_fraction, overcast=cfg.cloud_dates if overcast else None)
    d1, d2 = sim["dates"]
    shape10 = sim["mask"].shape
    orbit = int(np.random.default_rng([cfg.seed, i, 1]).integers(1, 20000))
    prefixes = (f"S2A_OPER_MSI_L1C_TL_EPA__{d1:%Y%m%d}T103021_A{orbit:06d}_T{sim['tile']}",
                f"T{sim['tile']}_{d2:%Y%m%d}T103021")
    city_dir = path / IMAGES_DIR / city
    for folder, prefix, planes in zip(("imgs_1", "imgs_2"), prefixes, (sim["planes1"], sim["planes2"]),
                                      strict=True):
        (city_dir / folder).mkdir(parents=True)
        for b in cfg.bands:
            write_band(city_dir / folder / f"{prefix}_{b}.tif", planes[b], sim["lat"], sim["lon"], shape10)
    (city_dir / "dates.txt").write_text(f"date_1: {d1:%Y%m%d}\ndate_2: {d2:%Y%m%d}\n", encoding="utf-8")
    (city_dir / "pair").mkdir()
    preview(sim["planes1"], city_dir / "pair" / "img1.png")
    preview(sim["planes2"], city_dir / "pair" / "img2.png")
    write_change_map(path / (TEST_LABELS_DIR if test else TRAIN_LABELS_DIR) / city / "cm", city, sim["mask"])
    extra: dict[str, Any] = {}
    if cfg.s1:
        s1 = sim["s1"]
        for t in (1, 2):
            write_s1(changes_s1.s1_file(city_dir, city, s1["orbit"], t), s1["db"][t - 1], sim["lat"], sim["lon"])
        extra["s1"] = {"orbit": s1["orbit"], "passes": s1["meta"]}
    if cfg.flood_fraction > 0:
        extra["flood_target"] = sim["flood_target"]
    if cfg.cloud_fraction > 0:
        extra["cloud_cover"] = sim["cloud_cover"]
    return {**extra,
        "split": "test" if test else "train",
        "dates": [d1.isoformat(), d2.isoformat()],
        "shape": list(shape10),
        "lat": sim["lat"], "lon": sim["lon"], "tile": sim["tile"],
        "target_fraction": sim["target_fraction"],
        "changed_fraction": float(sim["mask"].mean()),
        "changes": sim["changes"],
        "cover_fractions": {
            COVER[k]: float(np.mean(sim["cover1"] == k)) for k in range(len(COVER)) if (sim["cover1"] == k).any()
        },
    }


def make_change_dataset(
    out: str | os.PathLike[str],
    num_cities: int = 4,
    size: int = 192,
    seed: int = 0,
    bands: str | Sequence[str] = L1C,
    change_fraction: float = 0.075,
    progress: bool = False,
    *,
    overwrite: bool = False,
    s1: bool = False,
    flood_fraction: float = 0.0,
    cloud_fraction: float = 0.0,
    cloud_dates: str = "second",
    cloud_splits: str = "all",
) -> Path:
    """Simulate an OSCD-layout change dataset into ``out`` (see the module docstring) and return ``out``.

    ``s1``, ``flood_fraction``, ``cloud_fraction``, ``cloud_dates`` and ``cloud_splits`` as
    :class:`ChangeDatasetConfig` (radar, floods, overcast S2 dates: :mod:`seco.synth.changes_s1`).

    A finished dataset made with the same arguments is reused as it is; an interrupted one is rewritten.

    Raises:
        ConfigError / BandError: bad arguments.
        DatasetError: ``out`` holds a dataset made with other settings (pass ``overwrite=True``), or other
            files where the OSCD folders go.
    """
    cfg = ChangeDatasetConfig(num_cities=num_cities, size=size, seed=seed, bands=parse_bands(bands, L1C),
                              change_fraction=float(change_fraction), s1=bool(s1), flood_fraction=float(flood_fraction),
                              cloud_fraction=float(cloud_fraction), cloud_dates=cloud_dates, cloud_splits=cloud_splits)
    want = cfg.manifest_config()
    path = Path(os.fspath(out)).expanduser().absolute()
    manifest = path / MANIFEST
    if reusable(path, cfg.city_names(), want, overwrite):
        return path

    names = cfg.city_names()
    test = names[-cfg.test_cities :]
    train = names[: -cfg.test_cities]
    images = path / IMAGES_DIR
    images.mkdir(parents=True)
    (images / "train.txt").write_text(",".join(train), encoding="utf-8")
    (images / "test.txt").write_text(",".join(test), encoding="utf-8")
    cities: dict[str, Any] = {}
    cloudy = changes_s1.overcast_cities(names, test, cfg.seed, cfg.cloud_fraction, cfg.cloud_splits)
    it: Any = enumerate(names)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=len(names), desc="synth oscd", unit="city")
    for i, city in it:
        cities[city] = _write_city(path, cfg, i, city, city in test, city in cloudy)
    atomic_write(manifest, json.dumps({"config": want, "cities": cities}, indent=2))  # last: marks a finished dataset
    return path


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``synth_oscd.json`` of a dataset made by :func:`make_change_dataset`.

    Raises:
        DatasetError: when there is none (not made by it, or interrupted).
    """
    p = Path(os.fspath(path)) / MANIFEST
    if not p.is_file():
        raise DatasetError(f"{p} not found: {path} is not a finished make_change_dataset output; rerun it")
    return json.loads(p.read_text(encoding="utf-8"))
