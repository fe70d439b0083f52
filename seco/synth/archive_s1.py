"""Sentinel-1 RTC scenes in the simulated scene archive (``make_archive(..., s1=True)``).

For every site and every date of the archive, one S1 pass a few days (up to 4) from the site's S2 scene of that
date, simulated by :mod:`seco.synth.sar` from the same land cover, texture, terrain, phenology and snow line
as the S2 scenes (soil wetness is drawn per pass: the S2 archive has no soil moisture), written as items
shaped like Planetary Computer ``sentinel-1-rtc`` items::

    sentinel-1-rtc/collection.json                   the S1 collection (self-contained)
    sentinel-1-rtc/<item id>/<item id>.json          one item per slice
    sentinel-1-rtc/<item id>/vv.tif, vh.tif          float32 linear gamma0 power COGs, nodata -32768

Each pass is cut into two consecutive along-track *slices* (north and south half of the site's tile, 25 s
apart, overlapping by ``SLICE_OVERLAP`` rows with equal values), as consecutive GRD slices are, so a patch on
the seam needs a mosaic of two items. The grid is the site's UTM tile at 10 m (origin on the S2 tile's,
a 60 m multiple). Items follow the real PC items: ``sar:product_type`` is ``"GRD"`` (the source product;
that the pixels are RTC gamma0 is said by the collection), ids end in ``_rtc``, ``platform`` is upper case.

``ew_sites`` lists sites that get EW-mode passes instead (HH/HV, 40 m pixels, assets ``hh``/``hv``): a location
there has no IW VV+VH at all, which ``seco collect --s1`` must refuse.

Everything here draws from its own generator ``default_rng([seed, S1_STREAM, site])``: the S2 scenes,
their faults and the default archive do not change.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seco.synth import sar, seasons
from seco.synth.render import _write_cog
from seco.synth.scene import MOUNTAIN

S1_STREAM = 0xA5C4
COLLECTION = "sentinel-1-rtc"
FOLDER = COLLECTION
NODATA = -32768.0
SLICE_OVERLAP = 12
SLICE_SECONDS = 25
MAX_OFFSET_DAYS = 4
#: EW GRD-M pixel spacing (m) and equivalent number of looks (assumed: ESA's figure for EW GRDM is ~12).
EW_PIXEL_M, EW_ENL = 40, 12.0
_DESIGNATOR = {"sentinel-1a": "2014-016A", "sentinel-1b": "2016-025A"}
_TITLES = {"vv": "VV: vertical transmit, vertical receive", "vh": "VH: vertical transmit, horizontal receive",
           "hh": "HH: horizontal transmit, horizontal receive", "hv": "HV: horizontal transmit, vertical receive"}


def site_ground(site: dict[str, Any]) -> sar.Ground:
    """The S1 view of an archive site: its classes, texture and terrain slopes."""
    cls = site["cls"]
    zx, zy = seasons.slopes(site["elev01"], float((cls == MOUNTAIN).mean()))
    return sar.Ground(cls=cls, tex=site["tex"], zx=zx, zy=zy, lat=site["lat"], lon=site["lon"])


def site_date(site: dict[str, Any], when: dt.datetime, wetness: float) -> sar.GroundDate:
    """The site's surface on a day: phenology and snow line exactly as its S2 scenes (render.py)."""
    doy = when.timetuple().tm_yday
    dev = site["amp"] * (np.cos((2 * math.pi / 365.0) * (doy - site["peak"])) + 0.35 * site["vigour"])
    cover = 0.15 + 0.75 * (0.5 + 0.5 * math.cos(2 * math.pi * (doy - 15) / 365.0))
    snow = np.clip((site["elev01"] - (1.0 - cover)) / 0.04, 0.0, 1.0) * (site["cls"] == MOUNTAIN)
    soil = np.isin(site["cls"], (sar.CROPLAND, sar.GRASSLAND)).astype(np.float32)
    return sar.GroundDate(doy=doy, dev=dev.astype(np.float32), bare=seasons.bareness(dev, soil),
                          snow=snow.astype(np.float32) if snow.any() else None, wetness=wetness)


def write_s1_scenes(out: Path, seed: int, sites: Sequence[dict[str, Any]], dates: Sequence[dt.date],
                    times: dict[tuple[int, int], dt.datetime], *, blocksize: int, overviews: bool,
                    ew_sites: Sequence[int] = (), progress: bool = False) -> list[dict[str, Any]]:
    """Write the S1 passes of every site and date under ``out/sentinel-1-rtc`` and save their collection.

    Args:
        times: (site index, date index) -> the S2 scene's acquisition time (the pass is a few days off).

    Returns:
        One manifest record per item (``dir`` is the item folder relative to ``out``).
    """
    items, records = [], []
    for site in sites:
        rng = np.random.default_rng([seed, S1_STREAM, site["index"]])
        draw = sar.draw_site(rng)
        ground = site_ground(site)
        ew = site["index"] in ew_sites
        for d_idx in range(len(dates)):
            s2_time = times[(site["index"], d_idx)]
            wet = seasons.draw(rng, site["lat"], s2_time.timetuple().tm_yday).wetness
            lin, meta = sar.simulate_date(rng, draw, ground, site_date(site, s2_time, wet), s2_time,
                                          product="RTC", nodata_prob=0.0, max_offset_days=MAX_OFFSET_DAYS)
            meta["s2_datetime"] = s2_time
            for k, (r0, r1) in enumerate(_slices(ground.cls.shape[0], draw.orbit_state)):
                item, rec = _write_slice(out, site, lin[:, r0:r1], r0, meta, k, ew, blocksize, overviews)
                items.append(item)
                records.append(rec)
                if progress:
                    print(f"synth archive: S1 {rec['id']}", flush=True)
    _save_collection(out, items, seed)
    return records


def s2_times(plan: Sequence[dict[str, Any]], scenes: Sequence[dict[str, Any]], sites: Sequence[dict[str, Any]],
              dates: Sequence[dt.date]) -> dict[tuple[int, int], dt.datetime]:
    """(site, date index) -> acquisition time of the site's first S2 scene of that date (10:30 local solar
    time when ``num_scenes`` left it out)."""
    out = {}
    for s in sites:
        for d_idx, day in enumerate(dates):
            hour = 10.5 - s["lon"] / 15.0
            out[(s["index"], d_idx)] = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(hours=hour)
    for p, rec in zip(plan, scenes, strict=True):
        if p["date"] in dates:
            key = (p["site"], list(dates).index(p["date"]))
            if p["i"] < len(sites) * len(dates):  # the first pass, not a revisit
                out[key] = dt.datetime.fromisoformat(rec["datetime"].replace("Z", "+00:00"))
    return out


def _slices(P: int, orbit_state: str) -> list[tuple[int, int]]:
    """Row ranges of the two slices in acquisition order (ascending passes fly north: the south half first)."""
    north, south = (0, P // 2 + SLICE_OVERLAP // 2), (P // 2 - SLICE_OVERLAP // 2, P)
    return [south, north] if orbit_state == "ascending" else [north, south]


def _write_slice(out: Path, site: dict[str, Any], lin: np.ndarray, row0: int, meta: dict[str, Any], k: int,
                 ew: bool, blocksize: int, overviews: bool) -> tuple[Any, dict[str, Any]]:
    """Write one slice (2, rows, P) of linear power as COGs with its item; (item, manifest record)."""
    start: dt.datetime = meta["datetime"] + dt.timedelta(seconds=SLICE_SECONDS * k)
    mode, pols = ("EW", ("HH", "HV")) if ew else ("IW", ("VV", "VH"))
    iid = sar.item_id(meta["platform"], start, meta["relative_orbit"], mode=mode, pol="DH" if ew else "DV")
    if ew:
        iid = iid.replace("_GRDH_", "_GRDM_")
    res = EW_PIXEL_M if ew else 10
    data = _block_mean_nan(lin, res // 10)  # (2, rows', cols')
    y0 = site["y0"] - 10.0 * row0
    transform = (float(res), 0.0, float(site["x0"]), 0.0, -float(res), y0)
    sdir = out / FOLDER / iid
    sdir.mkdir(parents=True)
    for p, pol in enumerate(pols):
        arr = np.where(np.isfinite(data[p]), data[p], NODATA).astype(np.float32)
        _write_cog(sdir / f"{pol.lower()}.tif", arr, site["epsg"], transform, blocksize=blocksize,
                   overviews=overviews, resampling="AVERAGE", description=pol, nodata=NODATA)
    item = _item(iid, site, meta, start, mode, pols, data.shape[1:], transform, sdir)
    rec = {"id": iid, "dir": f"{FOLDER}/{iid}", "site": site["index"], "mode": mode, "polarizations": list(pols),
           "datetime": _iso(start), "s2_datetime": _iso(meta["s2_datetime"]), "orbit_state": meta["orbit_state"],
           "relative_orbit": meta["relative_orbit"], "platform": meta["platform"], "slice": k,
           "rows": [row0, row0 + lin.shape[1]], "incidence": round(meta["incidence"], 3),
           "time_offset_days": (start - meta["s2_datetime"]).total_seconds() / 86400.0}
    return item, rec


def _block_mean_nan(lin: np.ndarray, f: int) -> np.ndarray:
    """(2, h, w) -> (2, ceil(h/f), ceil(w/f)) mean linear power over f x f blocks (NaN where any is NaN: a
    partial block at the edge is nodata)."""
    if f == 1:
        return lin
    c, h, w = lin.shape
    H, W = -(-h // f) * f, -(-w // f) * f
    pad = np.full((c, H, W), np.nan, np.float32)
    pad[:, :h, :w] = lin
    return pad.reshape(c, H // f, f, W // f, f).mean(axis=(2, 4))


def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _item(iid: str, site: dict[str, Any], meta: dict[str, Any], start: dt.datetime, mode: str,
          pols: tuple[str, str], shape: tuple[int, ...], transform: tuple[float, ...], sdir: Path) -> Any:
    """A pystac Item shaped like a Planetary Computer ``sentinel-1-rtc`` item."""
    import pystac
    import shapely.geometry
    from rasterio.warp import transform_geom

    h, w = shape
    res = transform[0]
    x0, y0 = transform[2], transform[5]
    box = shapely.geometry.box(x0, y0 - res * h, x0 + res * w, y0).segmentize(res * max(h, w) / 8)
    geometry = transform_geom(f"EPSG:{site['epsg']}", "EPSG:4326", shapely.geometry.mapping(box))
    platform = meta["platform"]
    ew = mode == "EW"
    props: dict[str, Any] = {
        "platform": platform.upper(), "constellation": "Sentinel-1", "instruments": ["c-sar"],
        "start_datetime": _iso(start), "end_datetime": _iso(start + dt.timedelta(seconds=SLICE_SECONDS)),
        "sar:frequency_band": "C", "sar:center_frequency": 5.405, "sar:observation_direction": "right",
        "sar:instrument_mode": mode, "sar:polarizations": list(pols), "sar:product_type": "GRD",
        "sar:resolution_range": 93 if ew else 20, "sar:resolution_azimuth": 87 if ew else 22,
        "sar:pixel_spacing_range": res, "sar:pixel_spacing_azimuth": res,
        "sar:looks_range": 6 if ew else 5, "sar:looks_azimuth": 2 if ew else 1,
        "sar:looks_equivalent_number": EW_ENL if ew else sar.ENL,
        "sat:orbit_state": meta["orbit_state"], "sat:relative_orbit": meta["relative_orbit"],
        "sat:absolute_orbit": sar.start_orbit(platform, start, meta["relative_orbit"]),
        "sat:platform_international_designator": _DESIGNATOR[platform],
        "s1:instrument_configuration_ID": "7", "s1:product_timeliness": "Fast-24h", "s1:processing_level": "1",
        "s1:resolution": "medium" if ew else "high", "s1:orbit_source": "RESORB",
        "proj:epsg": site["epsg"], "proj:shape": [h, w], "proj:transform": list(transform),
        "proj:bbox": [x0, y0 - res * h, x0 + res * w, y0], "seco:site": site["index"],
    }
    item = pystac.Item(
        id=iid, geometry=geometry, bbox=list(shapely.geometry.shape(geometry).bounds), datetime=start,
        properties=props, collection=COLLECTION,
        stac_extensions=["https://stac-extensions.github.io/sar/v1.0.0/schema.json",
                         "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
                         "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                         "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
    )
    for pol in pols:
        key = pol.lower()
        item.add_asset(key, pystac.Asset(
            href=str(sdir / f"{key}.tif"), media_type=pystac.MediaType.COG, roles=["data"], title=_TITLES[key],
            description=f"Terrain-corrected gamma naught, {_TITLES[key].split(': ')[1]}, linear power",
            extra_fields={"raster:bands": [{"nodata": NODATA, "data_type": "float32", "spatial_resolution": res,
                                            "scale": 1.0, "offset": 0.0}]},
        ))
    item.set_self_href(str(sdir / f"{iid}.json"))
    item.make_asset_hrefs_relative()
    return item


def _save_collection(out: Path, items: Sequence[Any], seed: int) -> None:
    import pystac

    boxes = np.asarray([it.bbox for it in items], np.float64)
    coll = pystac.Collection(
        id=COLLECTION,
        description=f"Simulated Sentinel-1 RTC (gamma0, linear power) scenes (seco.synth.archive_s1, seed {seed})",
        extent=pystac.Extent(
            pystac.SpatialExtent([[float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()),
                                   float(boxes[:, 3].max())]]),
            pystac.TemporalExtent([[min(it.datetime for it in items), max(it.datetime for it in items)]]),
        ),
        license="CC0-1.0",
    )
    for it in items:
        coll.add_item(it)
    coll.normalize_hrefs(str(out / FOLDER))
    coll.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)


def add_s1_scenes(manifest: dict[str, Any], out: Path, seed: int, sites: list[dict[str, Any]], dates: list[dt.date],
                  plan: list[dict[str, Any]], scenes_meta: list[dict[str, Any]], ew_sites: tuple[int, ...], *,
                  blocksize: int, overviews: bool, progress: bool) -> None:
    """The S1 passes of every site and date of an archive (``make_archive(s1=True)``), recorded in its manifest."""
    manifest["config"].update(s1=True, s1_ew_sites=list(ew_sites))
    manifest["s1_collection"] = COLLECTION
    manifest["s1_scenes"] = write_s1_scenes(
        out, seed, sites, dates, s2_times(plan, scenes_meta, sites, dates), blocksize=blocksize,
        overviews=overviews, ew_sites=ew_sites, progress=progress)
