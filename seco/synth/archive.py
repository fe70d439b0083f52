"""A simulated Sentinel-2 scene archive on disk: COG band assets with SCL, STAC items, a stac-geoparquet index.

What :func:`make_archive` writes under ``out_dir``::

    collection.json              pystac Collection (self-contained: relative links to the items)
    <item id>/<item id>.json     one STAC item per scene; asset hrefs relative (``./blue.tif``)
    <item id>/<asset>.tif        one COG per band at its native resolution (10/20/60 m), plus ``scl.tif``
    catalog.parquet              stac-geoparquet of the items (hrefs: absolute paths, or ``href_base`` URLs)
    items.ndjson                 the same items, one JSON object per line (what ``pypgstac load items`` reads)
    manifest.json                the configuration, sites, scenes and the deliberately broken assets

The scenes: one *site* (an ``scene_px`` x ``scene_px`` tile at 10 m) per UTM zone in ``zones``, imaged on
every date of ``dates``; scenes beyond ``len(zones) * len(dates)`` are revisits 5 days after a date (the
second satellite). All scenes of a site share one grid, origin on a 60 m multiple, so the 10, 20 and 60 m
grids nest exactly as in real Sentinel-2 tiles.

The surface follows the model of :mod:`seco.synth.scene` (spectra calibrated on real samples in
:mod:`seco.synth.spectra`): per pixel and date ``ln rho_b = ln mean_{k,b} + (within/mean)_{k,b} * texture +
structure + slope_b * amp * (cos(2 pi (doy - peak) / 365) + 0.35 * vigour)``, with classes laid out as
smooth blobs, crop parcels with their calendars, urban blocks with roads and parks, hill-shaded mountains
with a seasonal snow line. Bands are rendered at 10 m and block-averaged to 20 and 60 m.

Each scene then gets clouds (opacity from a smooth field, brightening every band towards a cloud
spectrum), their shadows (the cloud field shifted away from the sun, darkening), sometimes thin cirrus, and
sometimes a swath edge (a straight line beyond which every band and the SCL are 0). The SCL (20 m) is
derived from the same fields: 0 nodata, 3 shadow, 4 vegetation (NDVI > 0.4), 5 not vegetated, 6 water,
8/9 cloud medium/high (opacity > 0.5 / > 0.8), 10 cirrus, 11 snow. ``eo:cloud_cover`` is the share of
valid SCL pixels in classes 8, 9, 10 (ESA's CLOUDY_PIXEL_PERCENTAGE; shadow is reported apart).

DN are ``round(reflectance * 10000)`` clipped to 1..64535 (0 is nodata); scenes with processing baseline
04.00 or later store ``DN + 1000`` (the BOA_ADD_OFFSET / RADIO_ADD_OFFSET of -1000) and, in the Earth
Search style, say so with ``raster:bands`` ``offset: -0.1, scale: 0.0001``; earlier scenes carry no offset.
The baseline of a scene follows the real history by acquisition date (:func:`processing_baseline`) unless
forced.

A *mislabeled* scene (``mislabel``, listed in ``manifest.json["mislabeled"]``) reproduces the known Earth
Search flag errors (Element84/earth-search#66, #71): a >= 04.00 scene whose item says
``earthsearch:boa_offset_applied: true`` while its DN still carry the +1000 (``"flag-true"``), or ``false``
while the DN are already harmonised (``"flag-false"``). Harmonised by the item's own metadata, that date is
1000 DN off the same site's other dates; :mod:`seco.radiometry.consistency` is tested on it.

Broken on purpose (listed in ``manifest.json["faults"]``): ``corrupt`` assets, alternately *truncated*
(cut inside the first full-resolution tile: the header and overviews read, every full-resolution tile
fails) and *garbage* (random bytes), and ``missing`` assets whose file is deleted while the item still
lists it; each on a different scene.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seco.bands import BY_NAME, L1C, L2A, parse_bands
from seco.collect import cloud as scl_codes
from seco.collect.build import write_stac_geoparquet
from seco.collect.scene import ASSET_ALIASES
from seco.errors import ConfigError
from seco.synth.render import (
    _block_any,
    _block_mean,
    _footprint,
    _make_site,
    _render_band,
    _scene_conditions,
    _scl,
    _to_dn,
    _write_cog,
)

#: Default acquisition dates: five dates 12 weeks apart across the 04.00 baseline change (25 Jan 2022).
DEFAULT_DATES: tuple[dt.date, ...] = tuple(dt.date(2021, 9, 14) + dt.timedelta(weeks=12 * i) for i in range(5))
REVISIT_DAYS = 5
ASSET_STYLES = ("earth-search", "band")
MISLABELS = (None, "flag-true", "flag-false")
MANIFEST = "manifest.json"
PARQUET = "catalog.parquet"
NDJSON = "items.ndjson"
#: Asset key per band, Earth Search style (``blue``, ``nir08``, ``scl``).
EARTH_SEARCH_KEYS: dict[str, str] = {band: key for key, band in ASSET_ALIASES.items()}
#: (first acquisition day, baseline): approximate history of the Sentinel-2 processing baselines.
BASELINES: tuple[tuple[dt.date, str], ...] = (
    (dt.date(2015, 6, 23), "02.01"),
    (dt.date(2020, 1, 28), "02.14"),
    (dt.date(2021, 6, 30), "03.00"),
    (dt.date(2021, 11, 23), "03.01"),
    (dt.date(2022, 1, 25), "04.00"),
    (dt.date(2022, 12, 6), "05.09"),
    (dt.date(2023, 7, 18), "05.10"),
)
_SCENE_STREAM, _FAULT_STREAM = 0xA5C2, 0xA5C3
_FWHM_UM = {"B01": 0.027, "B02": 0.098, "B03": 0.045, "B04": 0.038, "B05": 0.019, "B06": 0.018, "B07": 0.028,
            "B08": 0.145, "B8A": 0.033, "B09": 0.026, "B10": 0.075, "B11": 0.143, "B12": 0.242}


def processing_baseline(when: dt.date | dt.datetime) -> str:
    """The Sentinel-2 processing baseline in force on an acquisition day (approximate history)."""
    day = when.date() if isinstance(when, dt.datetime) else when
    out = BASELINES[0][1]
    for start, pb in BASELINES:
        if day >= start:
            out = pb
    return out


def baseline_offset(pb: str) -> int:
    """The DN added to reflectance x 10000 by a baseline: 1000 from 04.00 on, else 0."""
    return 1000 if _baseline_tuple(pb) >= (4, 0) else 0


def _baseline_tuple(pb: str) -> tuple[int, int]:
    try:
        major, minor = pb.split(".")
        return int(major), int(minor)
    except ValueError:
        raise ConfigError(f"processing baseline {pb!r} is not like '04.00'") from None


# ---------------------------------------------------------------------------------------------- items


def _asset_key(band: str, style: str) -> str:
    if band == "SCL":
        return "scl" if style == "earth-search" else "SCL"
    return EARTH_SEARCH_KEYS[band] if style == "earth-search" else band


def _item(scene: dict[str, Any], site: dict[str, Any], bands: Sequence[str], style: str, level: str,
          raster_offsets: bool, P: int, geometry: dict[str, Any], scl_counts: dict[str, float]) -> Any:
    import pystac
    import shapely.geometry

    when: dt.datetime = scene["datetime"]
    pb: str = scene["processing_baseline"]
    props: dict[str, Any] = {
        "platform": scene["platform"], "constellation": "sentinel-2", "instruments": ["msi"],
        "gsd": 10, "eo:cloud_cover": round(scl_counts["cloud"], 4),
        "s2:processing_baseline": pb, "s2:product_type": "S2MSI2A" if level == "L2A" else "S2MSI1C",
        "s2:nodata_pixel_percentage": round(scl_counts["nodata"], 4),
        "s2:cloud_shadow_percentage": round(scl_counts["shadow"], 4),
        "s2:boa_add_offset" if level == "L2A" else "s2:radio_add_offset": -baseline_offset(pb),
        "mgrs:utm_zone": site["zone"], "mgrs:latitude_band": site["tile"][2], "mgrs:grid_square": site["tile"][3:],
        "seco:site": site["index"],
    }
    if style == "earth-search":
        props["proj:epsg"] = site["epsg"]
        proj_ext = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
    else:
        props["proj:code"] = f"EPSG:{site['epsg']}"
        proj_ext = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
    bbox = list(shapely.geometry.shape(geometry).bounds)
    item = pystac.Item(
        id=scene["id"], geometry=geometry, bbox=bbox, datetime=when, properties=props,
        collection=scene["collection"],
        stac_extensions=["https://stac-extensions.github.io/eo/v1.1.0/schema.json", proj_ext,
                         "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
    )
    offset = baseline_offset(pb)
    for band in (*bands, *(("SCL",) if level == "L2A" else ())):
        res = 20 if band == "SCL" else BY_NAME[band].resolution_m
        n = P * 10 // res
        extra: dict[str, Any] = {
            "proj:shape": [n, n], "proj:transform": [float(res), 0.0, site["x0"], 0.0, -float(res), site["y0"]],
            "gsd": res,
        }
        if band == "SCL":
            extra["raster:bands"] = [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20, "unit": "class"}]
            roles, title = ["data"], "Scene classification map (SCL)"
        else:
            info = BY_NAME[band]
            extra["eo:bands"] = [{"name": _asset_key(band, style), "common_name": info.common_name,
                                  "description": f"{info.common_name} ({band})",
                                  "center_wavelength": round(info.wavelength_nm / 1000.0, 4),
                                  "full_width_half_max": _FWHM_UM[band]}]
            rb: dict[str, Any] = {"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                                  "spatial_resolution": res}
            if offset and raster_offsets:
                rb.update(scale=0.0001, offset=-offset / 10000.0)
            extra["raster:bands"] = [rb]
            roles, title = ["data", "reflectance"], f"{band} ({info.common_name}) - {res}m"
        key = _asset_key(band, style)
        item.add_asset(key, pystac.Asset(
            href=str(scene["dir"] / f"{key}.tif"), media_type=pystac.MediaType.COG, roles=roles, title=title,
            extra_fields=extra,
        ))
    return item


# ---------------------------------------------------------------------------------------------- archive


def _check_args(zones: Sequence[int], dates: Sequence[Any], scene_px: int, num_scenes: int, corrupt: int,
                missing: int, asset_keys: str, level: str, blocksize: int, baseline: str | None,
                mislabel: str | None) -> None:
    if not zones or any(isinstance(z, bool) or not isinstance(z, int) or not 1 <= z <= 60 for z in zones):
        raise ConfigError(f"zones={tuple(zones)!r} must be UTM zone numbers 1..60, e.g. (31, 32, 33)")
    if len(set(zones)) != len(zones):
        raise ConfigError(f"zones={tuple(zones)!r} lists a zone twice; give each zone once")
    if not dates:
        raise ConfigError("dates is empty; give at least one acquisition date")
    if isinstance(scene_px, bool) or not isinstance(scene_px, int) or scene_px < 60 or scene_px % 6:
        raise ConfigError(f"scene_px={scene_px!r} must be a multiple of 6 (so 20 and 60 m grids nest) and >= 60, "
                          "e.g. 1098")
    if num_scenes < 1:
        raise ConfigError(f"num_scenes={num_scenes!r} must be >= 1")
    if corrupt < 0 or missing < 0 or corrupt + missing > num_scenes:
        raise ConfigError(f"corrupt={corrupt} and missing={missing} must be >= 0 and together at most "
                          f"num_scenes={num_scenes} (one broken asset per scene)")
    if asset_keys not in ASSET_STYLES:
        raise ConfigError(f"asset_keys={asset_keys!r} must be one of {', '.join(ASSET_STYLES)}")
    if level not in ("L2A", "L1C"):
        raise ConfigError(f"level={level!r} must be 'L2A' or 'L1C'")
    if blocksize not in (256, 512, 1024):
        raise ConfigError(f"blocksize={blocksize!r} must be 256, 512 or 1024")
    if baseline is not None:
        _baseline_tuple(baseline)
    if mislabel not in MISLABELS:
        raise ConfigError(f"mislabel={mislabel!r} must be one of {', '.join(map(str, MISLABELS))}")


def _as_date(d: Any) -> dt.date:
    if isinstance(d, dt.datetime):
        return d.date()
    if isinstance(d, dt.date):
        return d
    if isinstance(d, str):
        try:
            return dt.date.fromisoformat(d[:10])
        except ValueError:
            pass
    raise ConfigError(f"date {d!r} is not a date; give datetime.date objects or ISO strings like '2022-03-01'")


@dataclass(frozen=True)
class _Options:
    """The settled arguments of :func:`make_archive` that shape every scene."""

    seed: int
    scene_px: int
    bands: tuple[str, ...]
    level: str
    asset_keys: str
    raster_offsets: bool
    baseline: str | None
    blocksize: int
    overviews: bool

    @property
    def collection_id(self) -> str:
        return "sentinel-2-l2a" if self.level == "L2A" else "sentinel-2-l1c"


def _scene_plan(rng: np.random.Generator, n_scenes: int, n_zones: int, dates: Sequence[dt.date],
                cloud_probs: tuple[float, float, float], edge_prob: float) -> list[dict[str, Any]]:
    """Site, day, cloud regime and swath edge of every scene; with 3 scenes or more, at least one is cloudy
    and one has an edge."""
    plan: list[dict[str, Any]] = []
    for i in range(n_scenes):
        rep, rest = divmod(i, n_zones * len(dates))
        d_idx, s_idx = divmod(rest, n_zones)
        regime = str(rng.choice(["clear", "scattered", "overcast"], p=list(cloud_probs)))
        plan.append({"i": i, "site": s_idx, "date": dates[d_idx] + dt.timedelta(days=REVISIT_DAYS * rep),
                     "regime": regime, "edge": bool(rng.random() < edge_prob)})
    if n_scenes >= 3:
        if all(p["regime"] == "clear" for p in plan):
            plan[1]["regime"] = "scattered"
        if not any(p["edge"] for p in plan):
            plan[2]["edge"] = True
    return plan


def _acquisition(opts: _Options, p: dict[str, Any], site: dict[str, Any],
                 ids: set[str]) -> tuple[np.random.Generator, dt.datetime, str, str, str]:
    """The scene's generator (its conditions are drawn from it next), acquisition time, platform, processing
    baseline and item id (unique among ``ids``, which it joins)."""
    srng = np.random.default_rng([opts.seed, _SCENE_STREAM, p["i"]])
    hour = 10.5 - site["lon"] / 15.0
    when = dt.datetime.combine(p["date"], dt.time(0), tzinfo=dt.UTC) + dt.timedelta(
        hours=hour, minutes=float(srng.uniform(-3, 3)), microseconds=int(srng.integers(0, 10**6)))
    platform = "sentinel-2a" if srng.random() < 0.5 else "sentinel-2b"
    pb = opts.baseline or processing_baseline(when)
    level = opts.level
    base_id = f"S2{platform[-1].upper()}_{site['tile']}_{when:%Y%m%d}_0_{level}"
    iid, k = base_id, 1
    while iid in ids:
        iid, k = f"{base_id[:-4]}_{k}_{level}", k + 1
    ids.add(iid)
    return srng, when, platform, pb, iid


def _write_assets(opts: _Options, sdir: Path, site: dict[str, Any], cond: dict[str, Any],
                  add: int) -> dict[str, float]:
    """Write the scene's band COGs (DN + ``add``) and, for L2A, its SCL; the SCL percentages of cloud,
    shadow and nodata."""
    for band in opts.bands:
        img = _render_band(site, cond, band)
        f = BY_NAME[band].resolution_m // 10
        nod = cond["nodata"]
        if f > 1:
            img, nod = _block_mean(img, f), _block_any(nod, f)
        res = 10 * f
        _write_cog(sdir / f"{_asset_key(band, opts.asset_keys)}.tif", _to_dn(img, nod, add), site["epsg"],
                   (float(res), 0.0, site["x0"], 0.0, -float(res), site["y0"]), blocksize=opts.blocksize,
                   overviews=opts.overviews, resampling="AVERAGE", description=band)
    scl = _scl(site, cond)
    valid = scl != scl_codes.SCL_NODATA
    nvalid = max(int(valid.sum()), 1)
    counts = {
        "cloud": 100.0 * float(np.isin(scl, (8, 9, 10)).sum()) / nvalid,
        "shadow": 100.0 * float((scl == scl_codes.SCL_CLOUD_SHADOW).sum()) / nvalid,
        "nodata": 100.0 * float((~valid).mean()),
    }
    if opts.level == "L2A":
        _write_cog(sdir / f"{_asset_key('SCL', opts.asset_keys)}.tif", scl, site["epsg"],
                   (20.0, 0.0, site["x0"], 0.0, -20.0, site["y0"]), blocksize=opts.blocksize,
                   overviews=opts.overviews, resampling="MODE", description="SCL")
    return counts


def _make_scene(opts: _Options, out: Path, p: dict[str, Any], site: dict[str, Any], ids: set[str],
                lie: str | None) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """Render and write one scene of the plan: (its STAC item, its manifest record, the mislabel record when
    the lying flag ``lie`` was planted on it, else ``None``); a lie is planted on a >= 04.00 scene only."""
    srng, when, platform, pb, iid = _acquisition(opts, p, site, ids)
    sdir = out / iid
    sdir.mkdir()
    cond = _scene_conditions(site, srng, opts.scene_px, when, p["regime"], p["edge"])
    add = baseline_offset(pb)
    lie = lie if add else None
    if lie == "flag-false":
        add = 0  # flag-false: DN already harmonised, the flag says not
    counts = _write_assets(opts, sdir, site, cond, add)
    geometry = _footprint(site, opts.scene_px, cond["edge_line"])
    scene = {"id": iid, "datetime": when, "processing_baseline": pb, "platform": platform,
             "collection": opts.collection_id, "dir": sdir}
    item = _item(scene, site, opts.bands, opts.asset_keys, opts.level, opts.raster_offsets, opts.scene_px,
                 geometry, counts)
    mislabeled = None
    if lie is not None:
        item.properties["earthsearch:boa_offset_applied"] = lie == "flag-true"
        mislabeled = {"item": iid, "kind": lie, "dn_offset": add}
    item.set_self_href(str(sdir / f"{iid}.json"))
    item.make_asset_hrefs_relative()
    record = {
        "id": iid, "site": site["index"], "zone": site["zone"], "epsg": site["epsg"], "tile": site["tile"],
        "datetime": when.isoformat().replace("+00:00", "Z"), "processing_baseline": pb, "dn_offset": add,
        "cloud_regime": p["regime"], "cloud_cover": counts["cloud"], "shadow_percentage": counts["shadow"],
        "nodata_percentage": counts["nodata"], "swath_edge": p["edge"], "bbox": item.bbox,
    }
    return item, record, mislabeled


def _save_collection(out: Path, items: Sequence[Any], opts: _Options) -> None:
    """The self-contained pystac Collection of the items (``collection.json``, item JSONs beside their assets)."""
    import pystac

    coll = pystac.Collection(
        id=opts.collection_id,
        description=f"Simulated Sentinel-2 {opts.level} archive (seco.synth.archive, seed {opts.seed})",
        extent=pystac.Extent(
            pystac.SpatialExtent([_union([it.bbox for it in items])]),
            pystac.TemporalExtent([[min(it.datetime for it in items), max(it.datetime for it in items)]]),
        ),
        license="CC0-1.0",
    )
    for it in items:
        coll.add_item(it)
    coll.normalize_hrefs(str(out))
    coll.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)


def make_archive(
    out_dir: str | Path,
    seed: int = 0,
    num_scenes: int | None = None,
    zones: Sequence[int] = (31, 32, 33),
    dates: Sequence[dt.date | str] = DEFAULT_DATES,
    scene_px: int = 1098,
    bands: str | Sequence[str] | None = None,
    corrupt: int = 2,
    progress: bool = True,
    *,
    missing: int = 1,
    level: str = "L2A",
    asset_keys: str = "earth-search",
    raster_offsets: bool = True,
    baseline: str | None = None,
    href_base: str | None = None,
    blocksize: int = 512,
    overviews: bool = False,
    cloud_probs: tuple[float, float, float] = (0.55, 0.35, 0.1),
    edge_prob: float = 0.3,
    mislabel: str | None = None,
    s1: bool = False,
    s1_ew_sites: Sequence[int] = (),
) -> Path:
    """Write a simulated Sentinel-2 scene archive (see the module docstring for the layout and model).

    Args:
        out_dir: folder to create (must not exist or be empty).
        seed: the seed; sites depend on (seed, site), scenes on (seed, scene index).
        num_scenes: scenes to write; ``None`` = ``len(zones) * len(dates)``; more adds revisits.
        zones: UTM zones (northern hemisphere), one site each.
        dates: acquisition days (site scenes at about 10:30 local solar time).
        scene_px: tile side in 10 m pixels (multiple of 6).
        bands: bands to write (a :func:`seco.bands.parse_bands` spec); ``None`` = the level's 12 / 13 bands.
        corrupt: assets to break (alternately truncated and garbage bytes).
        progress: print one line per scene to stderr.
        missing: assets whose file is deleted (the item still lists them).
        level: ``"L2A"`` (with SCL) or ``"L1C"`` (no SCL, B10 included by default).
        asset_keys: ``"earth-search"`` (``blue``, ``nir08``, ``scl``; ``proj:epsg``) or ``"band"`` (``B02``,
            ``SCL``; ``proj:code``, as Planetary Computer).
        raster_offsets: write ``raster:bands`` ``offset``/``scale`` on >= 04.00 scenes (Earth Search does;
            Planetary Computer does not, leaving only ``s2:processing_baseline``).
        baseline: force this processing baseline on every scene (e.g. ``"03.01"``); ``None`` = by date.
        href_base: http(s) URL the root is served at, for the hrefs of catalog.parquet and items.ndjson;
            ``None`` = absolute local paths. :func:`write_index` rewrites them later.
        blocksize: COG tile size.
        overviews: add internal overviews (real Sentinel-2 COGs have them; patch reads never use them).
        cloud_probs: chances of a clear, scattered (2-15 % cloud, sometimes thin cirrus) and overcast (40-90 %) scene.
        edge_prob: chance that a scene has a swath edge (nodata beyond a line, 10-45 % of it).
        mislabel: plant one scene whose Earth Search flag lies (module docstring): ``"flag-true"`` or
            ``"flag-false"``; the first >= 04.00 scene of the first site that is not its first date.
        s1: also write Sentinel-1 RTC passes of every site and date (:mod:`seco.synth.archive_s1`: collection
            ``sentinel-1-rtc`` under ``sentinel-1-rtc/``, indexed in the same catalog.parquet / items.ndjson).
            ``False`` writes exactly the archive it always did.
        s1_ew_sites: with ``s1``, sites (indexes into ``zones``) whose passes are EW mode (HH/HV, 40 m) only.

    At least one scene has clouds and one has a swath edge whenever there are 3 scenes or more, so tests
    always find both.

    Returns:
        ``out_dir`` as a Path.
    """
    out = Path(out_dir).resolve()  # item and asset hrefs are resolved against it
    dates_ = [_as_date(d) for d in dates]
    n_scenes = len(zones) * len(dates_) if num_scenes is None else int(num_scenes)
    _check_args(tuple(zones), dates_, scene_px, n_scenes, corrupt, missing, asset_keys, level, blocksize, baseline,
                mislabel)
    if s1_ew_sites and not s1:
        raise ConfigError("s1_ew_sites needs s1=True (EW passes are Sentinel-1 scenes)")
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(zones) for i in s1_ew_sites):
        raise ConfigError(f"s1_ew_sites={tuple(s1_ew_sites)!r} must be site indexes 0..{len(zones) - 1} (one per zone)")
    band_list = parse_bands(bands if bands is not None else (L2A if level == "L2A" else L1C))
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty; give a new folder for the archive")
    out.mkdir(parents=True, exist_ok=True)
    opts = _Options(seed, scene_px, tuple(band_list), level, asset_keys, raster_offsets, baseline, blocksize,
                    overviews)

    sites = [_make_site(seed, i, z, scene_px) for i, z in enumerate(zones)]
    plan = _scene_plan(np.random.default_rng([seed, _SCENE_STREAM]), n_scenes, len(zones), dates_, cloud_probs,
                       edge_prob)
    items, scenes_meta, mislabeled = _write_scenes(opts, out, plan, sites, dates_[0], mislabel, progress)
    _save_collection(out, items, opts)

    faults = _break_assets(out, items, seed, corrupt, missing)
    manifest: dict[str, Any] = {
        "version": 1,
        "config": {"seed": seed, "num_scenes": n_scenes, "zones": list(zones), "dates": [d.isoformat() for d in dates_],
                   "scene_px": scene_px, "bands": list(band_list), "corrupt": corrupt, "missing": missing,
                   "level": level, "asset_keys": asset_keys, "raster_offsets": raster_offsets, "baseline": baseline,
                   "blocksize": blocksize, "overviews": overviews, "cloud_probs": list(cloud_probs),
                   "edge_prob": edge_prob, "mislabel": mislabel},
        "collection": opts.collection_id,
        "sites": [{k: s[k] for k in ("index", "zone", "epsg", "lat", "lon", "x0", "y0", "tile")} for s in sites],
        "scenes": scenes_meta,
        "faults": faults,
        "mislabeled": mislabeled,
    }
    if s1:
        from seco.synth.archive_s1 import add_s1_scenes

        add_s1_scenes(manifest, out, seed, sites, dates_, plan, scenes_meta, tuple(s1_ew_sites),
                      blocksize=blocksize, overviews=overviews, progress=progress)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    write_index(out, href_base)
    return out


def _write_scenes(opts: _Options, out: Path, plan: list[dict[str, Any]], sites: list[dict[str, Any]],
                  first_date: dt.date, mislabel: str | None, progress: bool,
                  ) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any] | None]:
    """Every planned S2 scene: (STAC items, their manifest records, the mislabeled scene's record or None)."""
    items, scenes_meta = [], []
    ids: set[str] = set()
    mislabeled: dict[str, Any] | None = None
    for p in plan:
        eligible = mislabeled is None and p["site"] == 0 and p["date"] != first_date  # the first such scene only
        item, record, planted = _make_scene(opts, out, p, sites[p["site"]], ids, mislabel if eligible else None)
        mislabeled = mislabeled or planted
        items.append(item)
        scenes_meta.append(record)
        if progress:
            print(f"synth archive: scene {p['i'] + 1}/{len(plan)} {record['id']} cloud {record['cloud_cover']:.1f}% "
                  f"nodata {record['nodata_percentage']:.1f}%", file=sys.stderr)
    return items, scenes_meta, mislabeled


def _union(boxes: Sequence[Sequence[float]]) -> list[float]:
    a = np.asarray(boxes, dtype=np.float64)
    return [float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 2].max()), float(a[:, 3].max())]


def _break_assets(root: Path, items: Sequence[Any], seed: int, corrupt: int, missing: int) -> list[dict[str, Any]]:
    """Truncate / garble / delete assets on distinct scenes; the faults as manifest records."""
    import rasterio

    if corrupt + missing == 0:
        return []
    rng = np.random.default_rng([seed, _FAULT_STREAM])
    chosen = rng.choice(len(items), size=corrupt + missing, replace=False)
    kinds = ["truncated" if j % 2 == 0 else "garbage" for j in range(corrupt)] + ["missing"] * missing
    faults = []
    for idx, kind in zip(chosen, kinds, strict=True):
        item = items[int(idx)]
        keys = sorted(item.assets)
        key = keys[int(rng.integers(len(keys)))]
        path = root / item.id / f"{key}.tif"
        size = path.stat().st_size
        if kind == "truncated":
            with rasterio.open(path) as src:
                bw, bh = src.block_shapes[0]
                nbx, nby = -(-src.width // bw), -(-src.height // bh)
                offs = [int(src.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=1))
                        for y in range(nby) for x in range(nbx)]
                first = min(offs)
                first_size = int(src.get_tag_item(f"BLOCK_SIZE_{offs.index(first) % nbx}_{offs.index(first) // nbx}",
                                                  "TIFF", bidx=1))
            with open(path, "r+b") as fh:
                fh.truncate(first + first_size // 2)
        elif kind == "garbage":
            path.write_bytes(rng.bytes(size))
        else:
            path.unlink()
        band = "SCL" if key.lower() == "scl" else ASSET_ALIASES.get(key.lower(), key)
        faults.append({"item": item.id, "asset": key, "band": band, "kind": kind, "path": str(path.resolve())})
    return faults


# ---------------------------------------------------------------------------------------------- index


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of an archive."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{Path(root)} is not a synth archive (no {MANIFEST}); make one with make_archive")
    return json.loads(path.read_text())


def archive_items(root: str | Path, href_base: str | None = None) -> list[dict[str, Any]]:
    """The STAC items of an archive as dicts, asset hrefs absolute paths or under ``href_base`` (a URL).

    Links are dropped (they are relative to the item files); everything else is as in the item JSON.
    """
    root = Path(root).resolve()
    out = []
    man = read_manifest(root)
    for scene in [*man["scenes"], *man.get("s1_scenes", ())]:
        folder = scene.get("dir", scene["id"])  # S1 items live under sentinel-1-rtc/
        d = json.loads((root / folder / f"{scene['id']}.json").read_text())
        for a in d["assets"].values():
            rel = a["href"].removeprefix("./")
            a["href"] = (f"{href_base.rstrip('/')}/{folder}/{rel}" if href_base
                         else str(root / folder / rel))
        d["links"] = []
        out.append(d)
    return out


def write_index(root: str | Path, href_base: str | None = None, parquet: str = PARQUET,
                ndjson: str = NDJSON) -> Path:
    """(Re)write the stac-geoparquet and NDJSON indexes of an archive with hrefs for ``href_base``.

    Args:
        root: the archive.
        href_base: e.g. ``"http://127.0.0.1:8080/archive"`` when nginx serves ``root`` there; ``None`` =
            absolute local paths.
        parquet: file name of the stac-geoparquet under ``root``.
        ndjson: file name of the NDJSON under ``root``.

    Returns:
        The path of the stac-geoparquet file.
    """
    root = Path(root).resolve()
    items = archive_items(root, href_base)
    colls = {}
    for f in (root / "collection.json", root / "sentinel-1-rtc" / "collection.json"):
        if f.is_file():
            coll = json.loads(f.read_text())
            coll["links"] = []
            colls[coll["id"]] = coll
    path = write_stac_geoparquet(items, root / parquet, colls)
    (root / ndjson).write_text("".join(json.dumps(it) + "\n" for it in items))
    return path
