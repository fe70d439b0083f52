"""Per-date effects beyond phenology and snow: illumination, terrain shading, haze, soil moisture.

Each date of a location (and each date of a simulated OSCD pair) draws its own effects from a generator of
its own stream, ``default_rng([seed, index, SEASON_STREAM])``, so the land cover, clouds and nodata of a
location stay what they were and the effects do not change when clouds are switched off. Land cover and class
spectra are persistent; only these (and phenology / snow) change from date to date. In one line each, with
their size (``assumed``: from physics and typical published values; ``measured``: sized against the real
5-date location by ``python -m seco.synth.calibrate --spread``, docs/FIDELITY.md):

- **illumination**: the sun's elevation follows latitude and day of year (10:30 local solar time). Sentinel-2
  reflectance is already divided by cos(sun zenith), so a flat Lambertian surface does not change; what
  remains is canopy shadowing / BRDF, ``ln g = 0.15 ln(sin e / sin 45 deg) + N(0, 0.03)`` per date, all
  bands (-15 % at a 12 deg winter sun, +3 % at 60 deg; assumed);
- **terrain shading**: slopes from the location's elevation field (RMS tan-slope 0.08, up to 0.38 with
  mountains) lit by that sun: ``d + (1 - d) max(cos i, 0) / cos(zenith)`` with diffuse share d = 0.15 (a
  flat pixel keeps 1; sun-facing slopes brighten and shaded ones darken, most at a low winter sun);
- **haze**: additive path radiance, ``H (lambda / 490 nm)^-a`` with H ~ 100 DN x Exponential(1) and
  a ~ U(0.5, 2.5) per date (fine aerosol to a flatter veil), plus the matching loss of the direct beam
  ``exp(-path / 1250 DN)``; not in B10 (cirrus band: the surface is not seen). The size H is measured: the
  real location's blue dark-object offset ranges over 0.030 reflectance (300 DN) between its clear dates;
- **soil moisture**: on a wet date (35 %, wetness ~ U(0.3, 1)), bare soil and sparse vegetation darken,
  ``ln rho -= wetness x bareness x k_b`` with k 0.35 up to 1 um, 0.55 in B11 and 0.6 in B12 (water absorbs
  most in the SWIR: wet soil is 30-45 % darker; assumed). Bareness is 1 at an NDVI deviation of -0.15 or
  less and 0 above +0.1, on cropland, grassland and bare soil only.

The store's and the OSCD pairs' spectra come from L1C (top-of-atmosphere) samples, and so does the haze: in a
store labelled L2A it stands for residual haze that an atmospheric correction would mostly remove (the
residual was not measured here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seco.bands import BY_NAME

#: Generator stream of the per-date effects (kept apart from a location's land-cover / cloud stream).
SEASON_STREAM = 0x5EA5
LOCAL_TIME = 10.5  # Sentinel-2 descending node: 10:30 local solar time
DIFFUSE = 0.15  # share of skylight in the illumination of a pixel in full shade
SLOPE_STD = 0.08  # tan-slope std of lowland terrain
MOUNTAIN_SLOPE_STD = 0.3  # added, times the mountain share of a location
GAIN_PER_LN_SIN = 0.15
GAIN_STD = 0.03
HAZE_DN = 100.0
WET_PROB = 0.35
WET_K_VNIR, WET_K = 0.35, {"B11": 0.55, "B12": 0.6, "B10": 0.0}
#: Transmittance loss per DN of path radiance: exp(-path / TRANSMIT_DN).
TRANSMIT_DN = 1250.0


@dataclass(frozen=True)
class DateEffects:
    """The per-date draws of one date.

    Attributes:
        sun_elevation, sun_azimuth: degrees (azimuth clockwise from north).
        gain: ln illumination factor of every band.
        haze: path radiance at 490 nm, DN.
        angstrom: wavelength exponent of the haze.
        wetness: soil moisture darkening, 0 (dry) .. 1.
    """

    sun_elevation: float
    sun_azimuth: float
    gain: float
    haze: float
    angstrom: float
    wetness: float


def sun_position(lat: float, doy: int, hour: float = LOCAL_TIME) -> tuple[float, float]:
    """(elevation, azimuth) of the sun in degrees at ``hour`` local solar time."""
    decl = math.radians(-23.44) * math.cos(2 * math.pi * (doy + 10) / 365.0)
    phi, h = math.radians(lat), math.radians(15.0 * (hour - 12.0))
    sin_e = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(h)
    e = math.asin(max(-1.0, min(1.0, sin_e)))
    cos_a = (math.sin(decl) - sin_e * math.sin(phi)) / max(math.cos(e) * math.cos(phi), 1e-9)
    az = math.degrees(math.acos(max(-1.0, min(1.0, cos_a))))
    return math.degrees(e), (az if h < 0 else 360.0 - az)


def draw(rng: np.random.Generator, lat: float, doy: int) -> DateEffects:
    """One date's effects (the order of draws is fixed: gain, haze, exponent, wet?, wetness)."""
    elev, az = sun_position(lat, doy)
    elev = max(elev, 8.0)  # no acquisitions below ~8 deg (polar winter)
    gain = GAIN_PER_LN_SIN * math.log(math.sin(math.radians(elev)) / math.sin(math.radians(45.0)))
    gain += float(rng.normal(0.0, GAIN_STD))
    haze = HAZE_DN * float(rng.exponential(1.0))
    angstrom = float(rng.uniform(0.5, 2.5))
    wet = rng.random() < WET_PROB
    wetness = float(rng.uniform(0.3, 1.0))
    return DateEffects(elev, az, gain, haze, angstrom, wetness if wet else 0.0)


def slopes(elevation: np.ndarray, mountain_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(dz/d east, dz/d north) tan-slopes (P, P) of an elevation field, scaled to the location's relief.

    The RMS tan-slope is ``SLOPE_STD + MOUNTAIN_SLOPE_STD * mountain_share`` (0.08 lowland, 0.38 all mountain).
    """
    grad = np.gradient(elevation.astype(np.float32))  # (d/d row, d/d col); rows run south
    zx, zy = np.asarray(grad[1]), -np.asarray(grad[0])
    scale = (SLOPE_STD + MOUNTAIN_SLOPE_STD * mountain_share) / (float(np.sqrt((zx**2 + zy**2).mean())) + 1e-9)
    return (zx * scale).astype(np.float32), (zy * scale).astype(np.float32)


def shading(zx: np.ndarray, zy: np.ndarray, eff: DateEffects) -> np.ndarray:
    """(P, P) illumination factor of the terrain relative to a flat pixel (1 on flat ground)."""
    zen = math.radians(90.0 - eff.sun_elevation)
    az = math.radians(eff.sun_azimuth)
    cos_i = (math.cos(zen) - zx * math.sin(zen) * math.sin(az) - zy * math.sin(zen) * math.cos(az)) / np.sqrt(
        1.0 + zx**2 + zy**2)
    f = DIFFUSE + (1.0 - DIFFUSE) * np.maximum(cos_i, 0.0) / math.cos(zen)
    return np.minimum(f, 3.0).astype(np.float32)


def bareness(dev: np.ndarray, soil: np.ndarray) -> np.ndarray:
    """(P, P) share of bare soil: 1 at an NDVI deviation <= -0.15, 0 at >= +0.1, only where ``soil``."""
    return (np.clip((0.1 - dev) / 0.25, 0.0, 1.0) * soil).astype(np.float32)


def band_terms(bands: tuple[str, ...], eff: DateEffects) -> dict[str, np.ndarray]:
    """Per-band terms (C,): ``path`` (DN), ``transmit`` (factor), ``wet_k`` (ln darkening per unit wetness)."""
    lam = np.array([BY_NAME[b].wavelength_nm for b in bands], np.float32)
    path = eff.haze * (lam / 490.0) ** (-eff.angstrom)
    path[[i for i, b in enumerate(bands) if b == "B10"]] = 0.0
    wet_k = np.array([WET_K.get(b, WET_K_VNIR) for b in bands], np.float32)
    return {"path": path.astype(np.float32), "transmit": np.exp(-path / TRANSMIT_DN).astype(np.float32),
            "wet_k": (eff.wetness * wet_k).astype(np.float32)}


def apply_moisture(img: np.ndarray, eff: DateEffects, terms: dict[str, np.ndarray], idx: list[int],
                   bare: np.ndarray) -> np.ndarray:
    """Soil moisture on ground reflectance ``img`` (c, n, n) with bareness ``bare`` (n, n), in place."""
    if eff.wetness > 0:
        img *= np.exp(-terms["wet_k"][idx][:, None, None] * bare[None])
    return img


def apply_illumination(img: np.ndarray, eff: DateEffects, shade: np.ndarray) -> np.ndarray:
    """Terrain shading ``shade`` (n, n) and the date's illumination gain on ``img`` (c, n, n), in place."""
    img *= shade[None] * np.float32(math.exp(eff.gain))
    return img


def apply_atmosphere(img: np.ndarray, terms: dict[str, np.ndarray], idx: list[int]) -> np.ndarray:
    """Haze on ``img`` (c, n, n) seen from above: direct-beam loss and added path radiance, in place."""
    img *= terms["transmit"][idx][:, None, None]
    img += terms["path"][idx][:, None, None]
    return img
