"""One simulated location: land cover, texture, phenology, snow, per-date effects, clouds, nodata, metadata.

The model, per pixel and date (reflectance in DN, bands b):

    ln rho_b = ln mean_{k,b} + jitter_{k,b} + (within_{k,b} / mean_{k,b}) * texture + structure
               + slope_b * amp * (cos(2 pi (doy - peak) / 365) + 0.35 * vigour)
               - wetness_t * k_b * bareness

with k the pixel's class (spectra.py), ``texture`` and ``vigour`` smooth random fields, ``structure`` the
parcel / block / road / hill-shade offsets and ``amp``, ``peak`` the class's (or parcel's) seasonal NDVI
amplitude and greenest day. Mountain pixels above the season's snow line blend to the snow spectrum; the
ground is then lit by the date's sun (terrain shading from the elevation field and an illumination gain),
seen through the date's haze (direct-beam loss plus path radiance), see :mod:`seco.synth.seasons`;
clouds blend to the cloud spectrum and darken their shadow; nodata pixels are 0. Land cover and class
spectra are the same at every date. Every location is drawn from its own generator ``default_rng([seed,
index])``, so a location does not depend on how many others are made or in which order; the per-date
effects come from a second stream ``default_rng([seed, index, SEASON_STREAM])``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from seco.bands import BY_NAME, L2A
from seco.synth import geo, seasons, spectra

K = len(spectra.CLASSES)
FOREST, CROPLAND, GRASSLAND, URBAN, WATER, MOUNTAIN = range(K)
STEP_DAYS = 84  # 12 weeks between dates
_FIRST = datetime(2017, 4, 1, tzinfo=UTC)  # both Sentinel-2 satellites flying


def _fields(rng: np.random.Generator, n: int, size: int, beta: float, cutoff: float = 0.5) -> np.ndarray:
    """(n, size, size) float32 Gaussian random fields with power spectrum ~ k^-beta, zero mean, unit std.

    Drawn directly in the frequency domain (white complex coefficients times the filter, one inverse FFT);
    only frequencies up to ``cutoff`` (cycles per pixel) are drawn, which is all a smooth field needs.
    """
    kc = min(size // 2, int(math.ceil(cutoff * size)))  # highest frequency index kept
    ky = np.fft.fftfreq(size)
    rows = np.flatnonzero(np.abs(ky) <= kc / size)
    kx = np.fft.rfftfreq(size)[: kc + 1]
    k = np.sqrt(kx[None, :] ** 2 + ky[rows, None] ** 2)
    k[k == 0] = 1.0 / size
    filt = (k ** (-beta / 2)).astype(np.float32)  # (rows, kc + 1)
    shape = (n, len(rows), kc + 1)
    coef = np.zeros((n, size, size // 2 + 1), np.complex64)
    coef[:, rows, : kc + 1] = (rng.standard_normal(shape, dtype=np.float32)
                               + 1j * rng.standard_normal(shape, dtype=np.float32)) * filt
    out = np.fft.irfft2(coef, s=(size, size)).astype(np.float32)
    out -= out.mean(axis=(1, 2), keepdims=True)
    out /= out.std(axis=(1, 2), keepdims=True) + 1e-6
    return out


def _rotated_grid(rng: np.random.Generator, size: int, widths: tuple[float, float]) -> tuple[np.ndarray, ...]:
    """A randomly rotated grid of strips of random widths: (cell id, distance to nearest cut) per pixel."""
    theta = rng.uniform(0, math.pi)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    u = x * math.cos(theta) + y * math.sin(theta)
    v = -x * math.sin(theta) + y * math.cos(theta)
    ids, dist = [], []
    for coord in (u, v):
        lo, hi = float(coord.min()) - 1, float(coord.max()) + 1
        cuts = lo + np.cumsum(rng.uniform(*widths, size=int((hi - lo) / widths[0]) + 2))
        i = np.searchsorted(cuts, coord)
        prev = np.concatenate([[lo], cuts])[i]
        ids.append(i)
        dist.append(np.minimum(coord - prev, cuts[np.minimum(i, len(cuts) - 1)] - coord))
    return ids[0] * 1000 + ids[1], np.minimum(dist[0], dist[1])


def _block_mean(x: np.ndarray, f: int) -> np.ndarray:
    """Means over f x f blocks of the last two axes (..., P, P) -> (..., ceil(P/f), ceil(P/f)); edge-padded."""
    if f == 1:
        return x
    P = x.shape[-1]
    n = -(-P // f)
    if n * f != P:
        pad = [(0, 0)] * (x.ndim - 2) + [(0, n * f - P), (0, n * f - P)]
        x = np.pad(x, pad, mode="edge")
    rows = x.reshape(*x.shape[:-2], n, f, n * f).sum(axis=-2)  # (..., n, P)
    return rows.reshape(*x.shape[:-2], n, n, f).sum(axis=-1) * np.float32(1.0 / (f * f))


def _upsample_into(dst: np.ndarray, idx: list[int], src: np.ndarray, f: int) -> None:
    """Write ``src`` (c, n, n) into the bands ``idx`` of ``dst`` (C, P, P), nearest-upsampled by ``f``."""
    P = dst.shape[-1]
    n = src.shape[-1]
    for k, c in enumerate(idx):
        if f == 1:
            dst[c] = src[k]
        elif n * f == P:
            dst[c].reshape(n, f, n, f)[...] = src[k][:, None, :, None]
        else:
            dst[c] = src[k].repeat(f, axis=0).repeat(f, axis=1)[:P, :P]


def _acquisitions(rng: np.random.Generator, lat: float, lon: float, num_dates: int) -> list[datetime]:
    start = _FIRST + timedelta(days=int(rng.integers(0, 4 * 365)))
    hour = 10.5 - lon / 15.0  # Sentinel-2 crosses the equator at 10:30 local solar time
    out = []
    for t in range(num_dates):
        day = start + timedelta(days=STEP_DAYS * t + int(rng.choice([-5, 0, 5])))
        out.append(day + timedelta(hours=hour, minutes=float(rng.uniform(-8, 8)), microseconds=int(rng.integers(0, 10**6))))
    return out


def _land_cover(rng: np.random.Generator, P: int, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dominant class with a blob of a secondary one, (P, P) intp; the random fields of the location:
    (3, P, P) textures (texture, vigour, cloud texture) and (2 + T, P, P) smooth ones (class blob, elevation,
    one cloud field per date)."""
    dominant = int(rng.integers(K))
    secondary = int(rng.choice([k for k in range(K) if k != dominant]))
    textures = _fields(rng, 3, P, 2.2)  # texture, vigour, cloud texture: (P, P) each
    smooth = _fields(rng, 2 + T, P, 3.2, cutoff=0.08)  # class blob, elevation, one cloud field per date
    blob = smooth[0]
    frac2 = float(rng.uniform(0.0, 0.4))
    cls = np.where(blob > np.quantile(blob, 1 - frac2), secondary, dominant).astype(np.intp)  # (P, P)
    return cls, textures, smooth


def _parcels(rng: np.random.Generator, cls: np.ndarray, peak: np.ndarray, amp_fac: np.ndarray,
             offset: np.ndarray) -> None:
    """Field parcels: each cropland parcel one crop calendar (greenest day, amplitude), grassland parcels their
    own vigour; in place of ``peak``, ``amp_fac`` and ``offset`` (P, P)."""
    P = cls.shape[0]
    parcel, _ = _rotated_grid(rng, P, (14.0, 50.0))
    uniq, inv = np.unique(parcel, return_inverse=True)
    inv = inv.reshape(P, P)
    cal = rng.choice(len(spectra.CROP_CALENDARS), size=len(uniq), p=[0.35, 0.3, 0.2, 0.15])
    cal_peak = np.array([c[0] for c in spectra.CROP_CALENDARS], np.float32)[cal]
    cal_amp = np.array([c[1] for c in spectra.CROP_CALENDARS], np.float32)[cal]
    crop = cls == CROPLAND
    grass = cls == GRASSLAND
    peak[crop] = cal_peak[inv[crop]]
    amp_fac[crop] = cal_amp[inv[crop]]
    offset[crop] += rng.normal(0, 0.08, len(uniq)).astype(np.float32)[inv[crop]]
    peak[grass] += rng.normal(0, 12, len(uniq)).astype(np.float32)[inv[grass]]
    amp_fac[grass] = rng.uniform(0.7, 1.3, len(uniq)).astype(np.float32)[inv[grass]]
    offset[grass] += rng.normal(0, 0.05, len(uniq)).astype(np.float32)[inv[grass]]


def _urban_blocks(rng: np.random.Generator, cls: np.ndarray, amp_fac: np.ndarray, offset: np.ndarray) -> None:
    """Urban blocks with roads (dark, no phenology) and parks (become grassland), in place."""
    P = cls.shape[0]
    block, dist = _rotated_grid(rng, P, (10.0, 28.0))
    uniq, inv = np.unique(block, return_inverse=True)
    inv = inv.reshape(P, P)
    urban = cls == URBAN
    park = (rng.random(len(uniq)) < 0.12)[inv] & urban & (dist >= 1.0)
    road = urban & (dist < 1.0)
    offset[urban] += rng.normal(0, 0.18, len(uniq)).astype(np.float32)[inv[urban]]
    cls[park] = GRASSLAND
    offset[road] = math.log(0.7)
    amp_fac[road] = 0.0


def _hill_shade(cls: np.ndarray, elevation: np.ndarray, offset: np.ndarray) -> None:
    """Mountain pixels shaded by their slope towards the light (in place of ``offset``)."""
    gy, gx = np.gradient(elevation)
    shade = gx - gy
    mountain = cls == MOUNTAIN
    offset[mountain] += 0.3 * (shade / (shade.std() + 1e-6))[mountain]


def _structure(rng: np.random.Generator, cls: np.ndarray, elevation: np.ndarray, peak: np.ndarray,
               lat: float) -> tuple[np.ndarray, np.ndarray]:
    """Parcels with their crop calendars, urban blocks with roads and parks, hill shade, in place of ``cls``
    (parks become grassland) and ``peak`` (greenest day); returns (offset, amp_fac), (P, P) float32 each."""
    P = cls.shape[0]
    offset = np.zeros((P, P), np.float32)  # structure, ln units
    amp_fac = np.ones((P, P), np.float32)
    present = set(np.unique(cls).tolist())
    if CROPLAND in present or GRASSLAND in present:
        _parcels(rng, cls, peak, amp_fac, offset)
    if URBAN in present:
        _urban_blocks(rng, cls, amp_fac, offset)
    if MOUNTAIN in present:
        _hill_shade(cls, elevation, offset)
    if lat < 0:
        peak += 182.0
    return offset, amp_fac


def _clouds(rng: np.random.Generator, field: np.ndarray, cloud_tex: np.ndarray,
            cloud_prob: float, cover: float | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A date's clouds (chance ``cloud_prob``, 3-60 % cover of the smooth ``field``, or ``cover`` when given) and
    their shadows, shifted up to 25 px: the maps ``alpha`` (opacity), ``shadow`` and ``cloud_tex`` ({} when
    clear), and (P, P) cloudy."""
    P = field.shape[0]
    if rng.random() >= cloud_prob:
        return {}, np.zeros((P, P), bool)
    cov = float(rng.uniform(0.03, 0.6))  # drawn even when ``cover`` is given: the stream stays the same
    if cover is not None:
        cov = cover
    alpha = np.clip((field - np.quantile(field, 1 - cov)) / 0.6 + 0.5, 0.0, 1.0)  # (P, P) opacity
    dy, dx = (int(v) for v in rng.integers(-25, 26, size=2))
    shadow = np.zeros_like(alpha)
    shadow[max(dy, 0) : P + min(dy, 0), max(dx, 0) : P + min(dx, 0)] = alpha[
        max(-dy, 0) : P - max(dy, 0), max(-dx, 0) : P - max(dx, 0)
    ]
    shadow *= 1.0 - alpha
    return {"alpha": alpha, "shadow": shadow, "cloud_tex": cloud_tex}, (alpha > 0.5) | (shadow > 0.5)


def _swath_edge(rng: np.random.Generator, P: int, nodata_prob: float) -> np.ndarray:
    """(P, P) bool nodata beyond a straight edge (5-50 % of the patch) with chance ``nodata_prob``."""
    if rng.random() >= nodata_prob:  # the edge of the satellite's swath or of the tile's data
        return np.zeros((P, P), bool)
    theta = rng.uniform(0, 2 * math.pi)
    y, x = np.mgrid[0:P, 0:P]
    u = x * math.cos(theta) + y * math.sin(theta)
    return u > np.quantile(u, 1 - rng.uniform(0.05, 0.5))


class _Surface:
    """What a location looks like at any date: classes, spectra, phenology, terrain and snow; renders a date.

    20 m and 60 m bands are rendered on their own coarser grid (as the sensor sees them) and nearest-upsampled
    into the 10 m store grid, like a real collection does.
    """

    def __init__(self, rng: np.random.Generator, bands: tuple[str, ...], tab: dict[str, np.ndarray],
                 cls: np.ndarray, tex: np.ndarray, vigour: np.ndarray, elevation: np.ndarray, offset: np.ndarray,
                 amp_fac: np.ndarray, peak: np.ndarray, lat: float) -> None:
        C = len(bands)
        self.bands, self.lat, self.peak, self.vigour = bands, lat, peak, vigour
        # per-location spread of each class's spectrum: a common brightness factor and a little per band
        rel_between = tab["between"] / tab["mean"]  # (K, C)
        jitter = 0.5 * rel_between * (rng.normal(size=(K, 1)) + 0.5 * rng.normal(size=(K, C)))
        ln_mean = (np.log(tab["mean"]) + jitter).astype(np.float32)  # (K, C)
        rel_within = (tab["within"] / tab["mean"]).astype(np.float32)  # (K, C)
        self.amp = tab["amp"][cls] * amp_fac  # (P, P)
        self.is_mountain = (cls == MOUNTAIN).astype(np.float32)
        self.elev01 = (elevation - elevation.min()) / (np.ptp(elevation) + 1e-6)
        self.zx, self.zy = seasons.slopes(elevation, float(self.is_mountain.mean()))  # (P, P) tan-slopes
        self.soil = np.isin(cls, (CROPLAND, GRASSLAND)).astype(np.float32)
        self.groups = []
        for f in (1, 2, 6):
            idx = [i for i, b in enumerate(bands) if BY_NAME[b].resolution_m == 10 * f]
            if idx:
                ln_base = ln_mean.T[idx][:, cls] + rel_within.T[idx][:, cls] * tex + offset  # (c, P, P)
                self.groups.append((f, idx, _block_mean(ln_base, f), _block_mean(tex, f)))
        self.spec = {name: tab[name][:, None, None] for name in ("slope", "snow", "cloud")}  # (C, 1, 1)

    def maps(self, doy: int, eff: seasons.DateEffects) -> dict[str, np.ndarray]:
        """(P, P) maps of a date: NDVI change ``dev``, terrain ``shade``, soil ``bare``-ness, ``snow`` if any."""
        maps = {"dev": self.amp * (np.cos((2 * math.pi / 365.0) * (doy - self.peak)) + 0.35 * self.vigour)}
        maps["shade"] = seasons.shading(self.zx, self.zy, eff)
        maps["bare"] = seasons.bareness(maps["dev"], self.soil)
        if self.is_mountain.any():
            south = 182 if self.lat < 0 else 0
            cover = 0.15 + 0.75 * (0.5 + 0.5 * math.cos(2 * math.pi * (doy - 15 + south) / 365.0))
            snow = np.clip((self.elev01 - (1.0 - cover)) / 0.04, 0.0, 1.0) * self.is_mountain
            if snow.any():
                maps["snow"] = snow
        return maps

    def render(self, out: np.ndarray, maps: dict[str, np.ndarray], eff: seasons.DateEffects) -> None:
        """Render a date with its ``maps`` (:meth:`maps`, plus clouds) into ``out`` (C, P, P) uint16 DN."""
        terms = seasons.band_terms(self.bands, eff)
        spec = self.spec
        for f, idx, ln_base, tex_f in self.groups:
            m = {k: _block_mean(v, f) for k, v in maps.items()}  # (n, n) each
            img = np.exp(ln_base + spec["slope"][idx] * m["dev"])  # (c, n, n)
            seasons.apply_moisture(img, eff, terms, idx, m["bare"])
            if "snow" in m:
                img += m["snow"] * (spec["snow"][idx] * (1 + 0.03 * tex_f) - img)
            seasons.apply_illumination(img, eff, m["shade"])
            if "alpha" in m:
                img *= 1.0 - 0.55 * m["shadow"]
            seasons.apply_atmosphere(img, terms, idx)
            if "alpha" in m:
                img += m["alpha"] * (spec["cloud"][idx] * (0.92 + 0.08 * m["cloud_tex"]) - img)
            np.clip(img, 1.0, 65535.0, out=img)  # 0 is reserved for nodata
            img += 0.5
            _upsample_into(out, idx, img.astype(np.uint16), f)


def _valid_dates(rng: np.random.Generator, T: int, missing_prob: float) -> np.ndarray:
    """(T,) bool: dates with a scene; each is missing with chance ``missing_prob``, at least 3 stay."""
    valid = rng.random(T) >= missing_prob
    need = min(3, T) - int(valid.sum())
    if need > 0:
        valid[rng.choice(np.flatnonzero(~valid), need, replace=False)] = True
    return valid


def simulate_location(
    seed: int,
    index: int,
    num_dates: int = 5,
    patch_size: int = 264,
    bands: tuple[str, ...] = L2A,
    *,
    cloud_prob: float = 0.3,
    nodata_prob: float = 0.1,
    missing_prob: float = 0.05,
    s1: str | None = None,
    s1_missing_prob: float = 0.15,
    cloud_cover: float | None = None,
) -> dict[str, Any]:
    """Simulate one location.

    Args:
        s1: also simulate Sentinel-1 of the same surface and season state (:mod:`seco.synth.sar`) as this
            product, ``"RTC"`` or ``"GRD"``; ``None`` = S2 only. S1 has its own generator stream: the S2
            outputs do not depend on it.
        s1_missing_prob: with ``s1``, the chance that a date has no S1 pass.
        cloud_cover: the share of a cloudy date under cloud (``None``: drawn in 3-60 %); with ``cloud_prob=1``
            and ``1.0`` every date is overcast (the cloudy-optics task of ``seco experiment compare``). Only the
            clouds change: the surface, S1 and the random stream are those of the default.

    Returns:
        ``key`` (str), ``images`` (T, C, H, W) uint16 DN, ``valid`` (T,) bool, ``dates_meta`` (T dicts in
        the store's metadata format, ``None`` for a missing date), ``label`` (dominant class index) and
        ``class_fractions`` (K,) the area share of each class, ``clear`` (T, H, W) bool the truth of which pixels
        are clear (no cloud, cloud shadow, snow or nodata; False on missing dates); with ``s1`` also ``s1``:
        ``db`` (T, 2, H, W) float32 dB (NaN = nodata), ``valid`` (T,), ``meta``
        (:func:`seco.synth.sar.simulate_dates`) and ``land_cover`` (H, W) uint8, the class of every pixel.
    """
    rng = np.random.default_rng([seed, index])
    P, T = patch_size, num_dates
    bands = tuple(bands)
    tab = spectra.table(bands)

    # ---- where and when
    lat, lon = float(rng.uniform(36.0, 60.0)), float(rng.uniform(-9.0, 28.0))
    zone = geo.utm_zone(lat, lon)
    east, north = geo.to_utm(lat, lon, zone)
    x0, y0 = math.floor((east - P * 5) / 10) * 10.0, math.floor((north + P * 5) / 10) * 10.0
    tile = geo.mgrs_tile(lat, lon)
    times = _acquisitions(rng, lat, lon, T)

    # ---- land cover and the surface it makes
    cls, (tex, vigour, cloud_tex), smooth = _land_cover(rng, P, T)
    elevation, clouds = smooth[1], smooth[2:]
    peak = tab["peak"][cls].copy()
    offset, amp_fac = _structure(rng, cls, elevation, peak, lat)
    surface = _Surface(rng, bands, tab, cls, tex, vigour, elevation, offset, amp_fac, peak, lat)
    srng = np.random.default_rng([seed, index, seasons.SEASON_STREAM])  # per-date effects, own stream
    effects = [seasons.draw(srng, lat, times[t].timetuple().tm_yday) for t in range(T)]

    # ---- dates
    images = np.zeros((T, len(bands), P, P), np.uint16)  # (T, C, H, W)
    valid = _valid_dates(rng, T, missing_prob)
    clear = np.zeros((T, P, P), bool)  # the simulator's own truth, for the store's clear-sky statistics
    metas: list[dict[str, Any] | None] = []
    for t in range(T):
        if not valid[t]:  # no scene found for this date: nothing stored
            metas.append(None)
            continue
        maps = surface.maps(times[t].timetuple().tm_yday, effects[t])
        cloud_maps, cloudy = _clouds(rng, clouds[t], cloud_tex, cloud_prob, cloud_cover)
        nodata = _swath_edge(rng, P, nodata_prob)
        surface.render(images[t], {**maps, **cloud_maps}, effects[t])
        images[t][:, nodata] = 0
        clear[t] = _clear_truth(cloudy, nodata, cloud_maps, maps)
        sat = "S2A" if rng.random() < 0.5 else "S2B"
        metas.append(
            {
                "item_id": f"{sat}_{tile}_{times[t]:%Y%m%d}_0_L2A",
                "datetime": times[t],
                "cloud_fraction": float((cloudy & ~nodata).mean()),
                "nodata_fraction": float(nodata.mean()),
                "crs": f"EPSG:{geo.utm_epsg(lat, lon)}",
                "transform": (10.0, 0.0, x0, 0.0, -10.0, y0),
                "lat": lat,
                "lon": lon,
            }
        )

    fractions = np.bincount(cls.ravel(), minlength=K) / cls.size
    out = {
        "key": f"synth-{seed}-{index:06d}",
        "images": images,
        "valid": valid,
        "dates_meta": metas,
        "label": int(np.argmax(fractions)),
        "class_fractions": fractions,
        "clear": clear,
    }
    if s1 is not None:
        out["s1"] = _simulate_s1(seed, index, surface, cls, tex, lat, lon, times, effects, s1, s1_missing_prob)
    return out


def _clear_truth(cloudy: np.ndarray, nodata: np.ndarray, cloud_maps: dict[str, Any], maps: dict[str, Any]) -> np.ndarray:
    """(H, W) bool: the clear pixels of a date: no cloud or shadow above 10 % opacity (thin edges too, as SCL's
    medium probability), no snow, no nodata."""
    seen = cloudy | nodata
    for m in (cloud_maps.get("alpha"), cloud_maps.get("shadow"), maps.get("snow")):
        if m is not None:
            seen |= m > 0.1
    return ~seen


def _simulate_s1(seed: int, index: int, surface: _Surface, cls: np.ndarray, tex: np.ndarray, lat: float,
                 lon: float, times: list[datetime], effects: list[seasons.DateEffects], product: str,
                 missing_prob: float) -> dict[str, Any]:
    """S1 of the location from the same surface, phenology, snow and soil wetness as its S2 dates."""
    from seco.synth import sar

    ground = sar.Ground(cls=cls, tex=tex, zx=surface.zx, zy=surface.zy, lat=lat, lon=lon)
    dates = []
    for t, when in enumerate(times):
        doy = when.timetuple().tm_yday
        maps = surface.maps(doy, effects[t])
        dates.append(sar.GroundDate(doy=doy, dev=maps["dev"], bare=maps["bare"], snow=maps.get("snow"),
                                    wetness=effects[t].wetness))
    out = sar.simulate_dates(seed, index, ground, dates, times, product=product, missing_prob=missing_prob)
    out["land_cover"] = cls.astype(np.uint8)  # (P, P) class per pixel, shared with the S2 images
    return out
