"""Rendering of the simulated archive's scenes: sites (land-cover layout, texture, structure), per-scene
conditions (season, clouds, shadows, cirrus, swath edges), band images, the SCL, DN and COG writing.

The model is described in :mod:`seco.synth.archive`; :func:`seco.synth.archive.make_archive` drives it.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np

from seco.bands import L1C
from seco.collect import cloud as scl_codes
from seco.synth import geo, spectra
from seco.synth.scene import MOUNTAIN, WATER, _fields, _hill_shade, _parcels, _urban_blocks

K = len(spectra.CLASSES)
SITE_STREAM = 0xA5C1


# ---------------------------------------------------------------------------------------------- sites


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """(P, P) -> (P/f, P/f) float32 mean over f x f blocks."""
    a = np.asarray(a, dtype=np.float32)
    out = np.zeros((a.shape[0] // f, a.shape[1] // f), np.float32)
    for i in range(f):
        for j in range(f):
            out += a[i::f, j::f]
    out *= 1.0 / (f * f)
    return out


def _block_any(a: np.ndarray, f: int) -> np.ndarray:
    """(P, P) bool -> (P/f, P/f): any pixel of each f x f block."""
    out = np.zeros((a.shape[0] // f, a.shape[1] // f), bool)
    for i in range(f):
        for j in range(f):
            out |= a[i::f, j::f]
    return out


def _make_site(seed: int, index: int, zone: int, P: int) -> dict[str, Any]:
    """One site: where (UTM grid), and the static land cover, texture and phenology parameters."""
    rng = np.random.default_rng([seed, SITE_STREAM, index])
    lat = float(rng.uniform(42.0, 54.0))
    lon = float(6 * zone - 183 + rng.uniform(-1.5, 1.5))
    east, north = geo.to_utm(lat, lon, zone)
    x0 = math.floor((east - P * 5) / 60.0) * 60.0
    y0 = math.ceil((north + P * 5) / 60.0) * 60.0
    tab = spectra.table(L1C)

    blobs = _fields(rng, K, P, 3.2, cutoff=0.08)  # (K, P, P) one smooth field per class
    tex, vigour = _fields(rng, 2, P, 2.2)
    elevation = blobs[MOUNTAIN].copy()
    bias = rng.normal(0.0, 0.6, K).astype(np.float32)
    bias[MOUNTAIN] += 0.6 if rng.random() < 0.35 else -1.6
    bias[WATER] -= 0.8
    cls = np.argmax(blobs + bias[:, None, None], axis=0).astype(np.intp)  # (P, P)

    offset = np.zeros((P, P), np.float32)  # structure, ln units
    amp_fac = np.ones((P, P), np.float32)
    peak = tab["peak"][cls].copy()
    _parcels(rng, cls, peak, amp_fac, offset)
    _urban_blocks(rng, cls, amp_fac, offset)
    _hill_shade(cls, elevation, offset)

    rel_between = tab["between"] / tab["mean"]  # (K, 13)
    jitter = 0.5 * rel_between * (rng.normal(size=(K, 1)) + 0.5 * rng.normal(size=(K, 13)))
    return {
        "index": index, "zone": zone, "epsg": 32600 + zone, "lat": lat, "lon": lon, "x0": x0, "y0": y0,
        "tile": geo.mgrs_tile(lat, lon), "cls": cls, "tex": tex, "vigour": vigour, "offset": offset,
        "amp": (tab["amp"][cls] * amp_fac).astype(np.float32), "peak": peak.astype(np.float32),
        "elev01": ((elevation - elevation.min()) / (np.ptp(elevation) + 1e-6)).astype(np.float32),
        "ln_mean": (np.log(tab["mean"]) + jitter).astype(np.float32),  # (K, 13)
        "rel_within": (tab["within"] / tab["mean"]).astype(np.float32),  # (K, 13)
        "slope": tab["slope"], "snow": tab["snow"], "cloud": tab["cloud"],
    }


# ---------------------------------------------------------------------------------------------- scenes


def _scene_conditions(site: dict[str, Any], rng: np.random.Generator, P: int, when: dt.datetime,
                      regime: str, edge: bool) -> dict[str, Any]:
    """Per-date fields of one scene: phenology deviation, snow, cloud, shadow, cirrus, nodata (all (P, P))."""
    doy = when.timetuple().tm_yday
    dev = site["amp"] * (np.cos((2 * math.pi / 365.0) * (doy - site["peak"])) + 0.35 * site["vigour"])
    cover = 0.15 + 0.75 * (0.5 + 0.5 * math.cos(2 * math.pi * (doy - 15) / 365.0))
    snow = np.clip((site["elev01"] - (1.0 - cover)) / 0.04, 0.0, 1.0) * (site["cls"] == MOUNTAIN)
    cloud_field, cirrus_field, cloud_tex = _fields(rng, 3, P, 3.2, cutoff=0.08)
    alpha = np.zeros((P, P), np.float32)
    shadow = np.zeros((P, P), np.float32)
    cirrus = np.zeros((P, P), bool)
    if regime != "clear":
        cov = float(rng.uniform(0.02, 0.15) if regime == "scattered" else rng.uniform(0.4, 0.9))
        alpha = np.clip((cloud_field - np.quantile(cloud_field, 1 - cov)) / 0.6 + 0.5, 0.0, 1.0).astype(np.float32)
        length = float(rng.uniform(30, 120))  # shadow throw in px: cloud height x tan(sun zenith)
        az = math.radians(330.0 + rng.uniform(-15, 15))  # morning sun in the SSE: shadows fall NNW
        dr, dc = int(round(-length * math.cos(az))), int(round(length * math.sin(az)))
        src_r = slice(max(-dr, 0), P - max(dr, 0))
        src_c = slice(max(-dc, 0), P - max(dc, 0))
        dst_r = slice(max(dr, 0), P - max(-dr, 0))
        dst_c = slice(max(dc, 0), P - max(-dc, 0))
        shadow[dst_r, dst_c] = alpha[src_r, src_c]
        shadow *= 1.0 - alpha
        if rng.random() < 0.25:
            cirrus = cirrus_field > np.quantile(cirrus_field, 1 - float(rng.uniform(0.03, 0.15)))
    nodata = np.zeros((P, P), bool)
    edge_line = None
    if edge:
        theta = math.radians(float(rng.uniform(-14, -6)) + (180.0 if rng.random() < 0.5 else 0.0))
        frac = float(rng.uniform(0.1, 0.45))
        r, c = np.mgrid[0:P, 0:P].astype(np.float32) + 0.5
        u = c * math.cos(theta) + r * math.sin(theta)  # distance along the across-track axis
        thr = float(np.quantile(u, 1 - frac))
        nodata = u > thr
        edge_line = (math.cos(theta), math.sin(theta), thr)
    return {"doy": doy, "dev": dev, "snow": snow, "alpha": alpha, "shadow": shadow, "cirrus": cirrus,
            "cloud_tex": cloud_tex, "nodata": nodata, "edge_line": edge_line}


def _render_band(site: dict[str, Any], cond: dict[str, Any], band: str, surface_only: bool = False) -> np.ndarray:
    """(P, P) float32 reflectance x 10000 of one band at 10 m (clouds included unless ``surface_only``)."""
    b = L1C.index(band)
    cls = site["cls"]
    ln = site["ln_mean"][:, b][cls] + site["rel_within"][:, b][cls] * site["tex"] + site["offset"]
    ln += site["slope"][b] * cond["dev"]
    img = np.exp(ln, dtype=np.float32)
    snow = cond["snow"]
    if snow.any():
        img += snow * (site["snow"][b] * (1 + 0.03 * site["tex"]) - img)
    if surface_only:
        return img
    img *= 1.0 - 0.55 * cond["shadow"]
    if cond["cirrus"].any():
        img = np.where(cond["cirrus"], img + 0.25 * (site["cloud"][b] - img), img)
    alpha = cond["alpha"]
    img += alpha * (site["cloud"][b] * (0.92 + 0.08 * cond["cloud_tex"]) - img)
    return img


def _scl(site: dict[str, Any], cond: dict[str, Any]) -> np.ndarray:
    """(P/2, P/2) uint8 scene classification at 20 m, from the same fields as the bands."""
    red = _block_mean(_render_band(site, cond, "B04", surface_only=True), 2)
    nir = _block_mean(_render_band(site, cond, "B08", surface_only=True), 2)
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    water = _block_mean((site["cls"] == WATER).astype(np.float32), 2)
    snow = _block_mean(cond["snow"], 2)
    alpha = _block_mean(cond["alpha"], 2)
    shadow = _block_mean(cond["shadow"], 2)
    cirrus = _block_mean(cond["cirrus"].astype(np.float32), 2)
    out = np.full(red.shape, scl_codes.SCL_NOT_VEGETATED, np.uint8)
    out[ndvi > 0.4] = scl_codes.SCL_VEGETATION
    out[water > 0.5] = scl_codes.SCL_WATER
    out[snow > 0.5] = scl_codes.SCL_SNOW
    out[cirrus > 0.5] = scl_codes.SCL_CIRRUS
    out[shadow > 0.5] = scl_codes.SCL_CLOUD_SHADOW
    out[alpha > 0.5] = scl_codes.SCL_CLOUD_MEDIUM
    out[alpha > 0.8] = scl_codes.SCL_CLOUD_HIGH
    out[_block_any(cond["nodata"], 2)] = scl_codes.SCL_NODATA
    return out


def _to_dn(img: np.ndarray, nodata: np.ndarray, add: int) -> np.ndarray:
    out = np.clip(np.rint(img), 1, 65535 - 1000).astype(np.uint16)
    if add:
        out += np.uint16(add)
    out[nodata] = 0
    return out


def _write_cog(path: Path, arr: np.ndarray, epsg: int, transform: tuple[float, ...], *, blocksize: int,
               overviews: bool, resampling: str, description: str, nodata: float = 0) -> None:
    import rasterio
    from rasterio.transform import Affine

    with rasterio.open(
        path, "w", driver="COG", width=arr.shape[1], height=arr.shape[0], count=1, dtype=arr.dtype,
        crs=f"EPSG:{epsg}", transform=Affine(*transform), nodata=nodata, compress="ZSTD", level=3, predictor="YES",
        blocksize=blocksize, overviews="AUTO" if overviews else "NONE", overview_resampling=resampling,
    ) as dst:
        dst.write(arr, 1)
        dst.set_band_description(1, description)


def _footprint(site: dict[str, Any], P: int, edge_line: tuple[float, float, float] | None) -> dict[str, Any]:
    """GeoJSON polygon (WGS84) of the valid data: the tile square cut by the swath edge."""
    import shapely.geometry
    from rasterio.warp import transform_geom
    from shapely import affinity

    poly = shapely.geometry.box(0, 0, P, P)  # pixel (col, row)
    if edge_line is not None:
        cx, cy, thr = edge_line
        big = 4.0 * P  # half-plane u <= thr as a large polygon
        px, py = cx * thr, cy * thr  # foot of the edge line
        tx, ty = -cy, cx  # along the line
        half = shapely.geometry.Polygon([
            (px + tx * big, py + ty * big), (px - tx * big, py - ty * big),
            (px - tx * big - cx * big, py - ty * big - cy * big), (px + tx * big - cx * big, py + ty * big - cy * big),
        ])
        poly = poly.intersection(half)
    poly = affinity.affine_transform(poly, [10.0, 0.0, 0.0, -10.0, site["x0"], site["y0"]])
    poly = poly.segmentize(P * 10.0 / 8)
    return transform_geom(f"EPSG:{site['epsg']}", "EPSG:4326", shapely.geometry.mapping(poly))
