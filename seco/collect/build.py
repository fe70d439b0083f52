"""Writing stac-geoparquet, and indexing a local folder of GeoTIFF/COG scenes into it (``seco catalog build``)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from seco.bands import BY_NAME, L1C
from seco.collect.geo import geo_metadata, open_raster, wkb_polygon
from seco.collect.scene import _RESERVED, SCL, _band_of_key, _parse_time
from seco.errors import CatalogError, ConfigError
from seco.fileutil import atomic_write

# ---------------------------------------------------------------------------------------------- writing


_PROPERTY_TYPES = {
    "datetime": pa.timestamp("us", tz="UTC"),
    "start_datetime": pa.timestamp("us", tz="UTC"),
    "end_datetime": pa.timestamp("us", tz="UTC"),
    "eo:cloud_cover": pa.float64(),
    "proj:epsg": pa.int64(),
    "platform": pa.string(),
    "s2:processing_baseline": pa.string(),
}
_LINK_TYPE = pa.list_(pa.struct([("href", pa.string()), ("rel", pa.string()), ("type", pa.string()),
                                 ("title", pa.string())]))
STAC_GEOPARQUET_VERSION = "1.1.0"


def _geometry_wkb(item: dict[str, Any]) -> tuple[bytes, str]:
    g = item.get("geometry")
    if g is None:
        w, s, e, n = item["bbox"][:4]
        return wkb_polygon([(w, s), (e, s), (e, n), (w, n)]), "Polygon"
    import shapely.geometry

    geom = shapely.geometry.shape(g)
    return geom.wkb, geom.geom_type


def write_stac_geoparquet(items: Sequence[dict[str, Any]], out: str | Path,
                          collections: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write STAC item dicts as stac-geoparquet 1.1.0 (GeoParquet 1.1.0 geometry with a bbox covering).

    Properties become top-level columns (time columns as ``timestamp[us, UTC]``), ``bbox`` a struct, ``assets``
    a struct of asset structs; ``collections`` (id -> Collection JSON) go into the ``stac-geoparquet`` metadata.
    """
    if not items:
        raise CatalogError(f"no items to write to {out}")
    rows, types = [], set()
    for it in items:
        wkb, gtype = _geometry_wkb(it)
        types.add(gtype)
        w, s, e, n = (float(v) for v in (it["bbox"] if len(it["bbox"]) == 4 else
                                         [it["bbox"][i] for i in (0, 1, 3, 4)]))
        row = {
            "type": "Feature", "stac_version": it.get("stac_version", "1.0.0"),
            "stac_extensions": list(it.get("stac_extensions", [])), "id": it["id"], "geometry": wkb,
            "bbox": {"xmin": w, "ymin": s, "xmax": e, "ymax": n}, "links": list(it.get("links", [])),
            "assets": it.get("assets", {}), "collection": it.get("collection"),
        }
        for k, v in (it.get("properties") or {}).items():
            if k in _RESERVED:
                raise CatalogError(f"item {it['id']!r} has a property {k!r} that collides with a top-level field")
            row[k] = _parse_time(v) if k in ("datetime", "start_datetime", "end_datetime") else v
        rows.append(row)
    # one column per key seen in any row (Table.from_pylist would keep only the first row's keys)
    known = {**_PROPERTY_TYPES, "links": _LINK_TYPE, "stac_extensions": pa.list_(pa.string())}
    names = list(dict.fromkeys(k for r in rows for k in r))
    try:
        table = pa.table({k: pa.array([r.get(k) for r in rows], type=known.get(k)) for k in names})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise CatalogError(f"items have fields of inconsistent types for stac-geoparquet ({e}); make each "
                           "property and asset field one type across items") from e
    bb = table["bbox"].combine_chunks()
    extent = [pc.min(bb.field("xmin")).as_py(), pc.min(bb.field("ymin")).as_py(),
              pc.max(bb.field("xmax")).as_py(), pc.max(bb.field("ymax")).as_py()]
    meta = {
        b"geo": geo_metadata("geometry", sorted(types), extent, covering_bbox="bbox"),
        b"stac-geoparquet": json.dumps({"version": STAC_GEOPARQUET_VERSION,
                                        "collections": collections or {}}).encode("utf-8"),
    }
    table = table.replace_schema_metadata(meta)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(out, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


# ---------------------------------------------------------------------------------------------- build


_BAND_TOKEN = re.compile(r"(?i)(?:^|[_\-. ])(B(?:0?[1-9]|1[0-2]|8A)|SCL)(?:_(?:10|20|60)m)?$")
#: File/folder name patterns whose date is the sensing time (not the processing time).
_SENSING_PATTERNS = (
    re.compile(r"T\d{2}[A-Z]{3}_(\d{8}T\d{6})"),  # tile + sensing time: T33TUH_20171018T100031
    re.compile(r"MSIL[12][AC]_(\d{8}T\d{6})"),  # SAFE product: S2A_MSIL2A_20200101T105441_...
    re.compile(r"_V(\d{8}T\d{6})"),  # old product names: validity start
    re.compile(r"^(\d{8}T\d{6})_\d{8}T\d{6}_T\d{2}[A-Z]{3}$"),  # Earth Engine index (official SeCo layout)
)
_TIF_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class BuildReport:
    """What :func:`build_catalog` did.

    Attributes:
        out: the file written.
        items: number of scenes indexed.
        skipped: (path, reason) for every file or scene left out.
    """

    out: Path
    items: int
    skipped: tuple[tuple[str, str], ...]


@dataclass
class _BandFile:
    path: Path
    band: str
    index: int  # 1-based band in the file
    epsg: int | None
    bounds_wgs84: tuple[float, float, float, float]
    shape: tuple[int, int]
    transform: tuple[float, ...]
    res: float


def _sidecar(scene_dir: Path, stem: str) -> dict[str, Any] | None:
    for cand in ([scene_dir / f"{stem}.json"] if stem else []) + [scene_dir / "metadata.json"]:
        if cand.is_file():
            try:
                d = json.loads(cand.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise CatalogError(f"sidecar {cand} is not valid JSON ({e}); fix or remove it") from e
            if isinstance(d, dict):
                return {**d, **(d.get("properties") or {})} if isinstance(d.get("properties"), dict) else d
    return None


def _dates_txt(scene_dir: Path) -> dt.datetime | None:
    m = re.match(r"imgs_(\d+)", scene_dir.name)
    f = scene_dir.parent / "dates.txt"
    if not m or not f.is_file():
        return None
    for line in f.read_text().splitlines():
        k, _, v = line.partition(":")
        if k.strip() == f"date_{m.group(1)}":
            return dt.datetime.strptime(v.strip(), "%Y%m%d").replace(tzinfo=dt.UTC)
    return None


def _name_time(*names: str) -> dt.datetime | None:
    for name in names:
        for pat in _SENSING_PATTERNS:
            m = pat.search(name)
            if m:
                return dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    return None


def _scene_time(scene_dir: Path, stem: str, side: dict[str, Any] | None) -> tuple[dt.datetime | None, str]:
    if side:
        if side.get("datetime"):
            try:
                return _parse_time(side["datetime"]), "sidecar"
            except (ValueError, TypeError) as e:
                raise CatalogError(f"sidecar datetime {side['datetime']!r} of {scene_dir / stem} is not ISO 8601 "
                                   "(e.g. 2020-06-01T10:30:00Z); fix the sidecar") from e
        if side.get("system:time_start") is not None:  # Earth Engine metadata (official SeCo downloader)
            ms = int(side["system:time_start"])
            return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms), "sidecar"
    t = _dates_txt(scene_dir)
    if t is not None:
        return t, "dates.txt"
    return _name_time(stem, scene_dir.name), "file name"


def _read_band_files(path: Path) -> tuple[list[_BandFile], str | None]:
    """Band entries of one GeoTIFF, or a reason to skip it."""
    import rasterio
    from rasterio.warp import transform_bounds

    try:
        src = open_raster(path)
        with src:
            if src.crs is None:
                return [], "no CRS"
            epsg = src.crs.to_epsg()
            w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
            common = dict(epsg=epsg, bounds_wgs84=(w, s, e, n), shape=(src.height, src.width),
                          transform=tuple(src.transform)[:6], res=float(abs(src.res[0])))
            token = _BAND_TOKEN.search(path.stem)
            if token and src.count == 1:
                return [_BandFile(path, str(_band_of_key(token.group(1))), 1, **common)], None
            names = [_band_of_key(d.strip()) if d else None for d in src.descriptions]
            known = [b for b in names if b is not None]
            if len(known) == len(names) == len(set(known)):  # one band or several, each described
                return [_BandFile(path, b, i + 1, **common) for i, b in enumerate(known)], None
            if token:
                return [], f"{src.count} bands in a file named like a single band"
            unnamed = [i + 1 for i, b in enumerate(names) if b is None]
            what = (f"band(s) {unnamed} have descriptions {[src.descriptions[i - 1] for i in unnamed]} that are no "
                    "Sentinel-2 band name" if unnamed else f"descriptions {list(src.descriptions)} repeat a band")
            return [], (f"no band token in the file name (e.g. _B02), and {what}; name the file <scene>_B02.tif or "
                        "set each band's description to its band (B02...)")
    except rasterio.errors.RasterioError as e:
        return [], f"unreadable ({e})"


def _scene_prefix(f: Path, entries: list[_BandFile]) -> str:
    """The scene a file belongs to, within its folder: the name before its band token (``T33_20200601_B02``
    -> ``T33_20200601``); for a single-band file named without one (band from its description), the name before
    its last ``_`` / ``-`` / ``.`` part (``T33_20200601_blue`` -> ``T33_20200601``; ``blue`` -> the folder's
    scene); a multi-band file is a scene of its own."""
    token = _BAND_TOKEN.search(f.stem)
    if token and len(entries) == 1:
        return f.stem[: token.start()].rstrip("_-. ")
    if len(entries) == 1:
        head, sep, _ = max((f.stem.rpartition(c) for c in "_-."), key=lambda t: len(t[0]))
        return head.rstrip("_-. ") if sep else ""
    return f.stem


def build_catalog(root: str | Path, out: str | Path, *, collection: str = "local") -> BuildReport:
    """Index a folder of GeoTIFF/COG scenes into stac-geoparquet (``seco catalog build DIR --out FILE``).

    Scenes are either one file per band (``<prefix>_B02.tif`` or ``B2.tif``, as OSCD, SAFE granules and the
    official SeCo downloader lay them out, or any name when the band's description names it, ``<prefix>_blue.tif``
    described ``B02``; the files of a scene share a folder and a prefix) or multi-band files whose band
    descriptions are band names (``B02``, ``blue``...). The acquisition time comes, in this order,
    from a sidecar JSON (``<prefix>.json`` or ``metadata.json`` with ``datetime`` or Earth Engine's
    ``system:time_start``), from OSCD's ``dates.txt`` (``date_1`` for ``imgs_1``...), or from a sensing time in
    the file or folder name (``T33TUH_20171018T100031``). Note that the old Sentinel-2 product names
    (``S2A_OPER_MSI_L1C_TL_EPA__20160811T174848...``) carry a *processing* time and are not used.
    ``eo:cloud_cover`` comes from the sidecar (``eo:cloud_cover`` or ``CLOUDY_PIXEL_PERCENTAGE``), else null.
    Hrefs are absolute paths.

    Returns:
        A :class:`BuildReport` listing skipped files with the reason.

    Raises:
        ConfigError: ``root`` is not a folder or ``out`` not a .parquet path.
        CatalogError: nothing could be indexed.
    """
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise ConfigError(f"{str(root)!r} is not a folder of GeoTIFF scenes")
    if out.suffix.lower() != ".parquet":
        raise ConfigError(f"--out {str(out)!r} should end in .parquet")
    skipped: list[tuple[str, str]] = []
    groups: dict[tuple[Path, str], dict[str, _BandFile]] = {}
    from seco.collect.s1build import s1_items, s1_polarization

    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _TIF_SUFFIXES and p.is_file())
    s1_files = [f for f in files if s1_polarization(f) is not None]  # Sentinel-1 RTC COGs: items of their own
    s1, s1_skipped = (s1_items(s1_files, root, collection, sidecar=_sidecar, scene_time=_scene_time, union=_union)
                      if s1_files else ([], []))
    skipped += s1_skipped
    for f in (f for f in files if s1_polarization(f) is None):
        entries, reason = _read_band_files(f)
        if reason:
            skipped.append((str(f), reason))
            continue
        stem = _scene_prefix(f, entries)
        g = groups.setdefault((f.parent, stem), {})
        for e in entries:
            if e.band in g:
                skipped.append((str(f), f"band {e.band} already given by {g[e.band].path.name}"))
            else:
                g[e.band] = e
    items, ids = [], set()
    for (scene_dir, stem), bands in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        side = _sidecar(scene_dir, stem)
        when, _ = _scene_time(scene_dir, stem, side)
        if when is None:
            skipped.append((str(scene_dir / (stem or "*")),
                            "no acquisition date: add a sidecar <prefix>.json with {\"datetime\": \"...\"}, "
                            "a dates.txt, or a sensing time in the name"))
            continue
        rel = scene_dir.relative_to(root).parts
        base = re.sub(r"[^A-Za-z0-9_.\-]+", "-", "_".join([*rel, stem] if stem else rel) or root.name)
        iid, k = base, 2
        while iid in ids:
            iid, k = f"{base}-{k}", k + 1
        ids.add(iid)
        items.append(_scene_item(iid, bands, when, side, collection))
    if not items and not s1:
        detail = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
        raise CatalogError(f"no scenes found under {root} ({len(files)} GeoTIFFs){': ' + detail if detail else ''}")
    colls = {c: _collection(c, root, [it for it in items + s1 if it["collection"] == c])
             for c in dict.fromkeys(it["collection"] for it in items + s1)}
    write_stac_geoparquet(items + s1, out, colls)
    return BuildReport(out=out, items=len(items) + len(s1), skipped=tuple(skipped))


def _collection(collection: str, root: Path, items: list[dict[str, Any]]) -> dict[str, Any]:
    t = sorted(it["properties"]["datetime"] for it in items)
    return {
        "type": "Collection", "stac_version": "1.0.0", "id": collection,
        "description": f"{'Sentinel-1 RTC' if collection.lower().startswith('sentinel-1') else 'Sentinel-2'} scenes "
                       f"indexed from {root} by seco catalog build", "license": "other",
        "extent": {"spatial": {"bbox": [_union([tuple(it["bbox"]) for it in items])]},
                   "temporal": {"interval": [[t[0], t[-1]]]}},
        "links": [],
    }


def _union(boxes: Sequence[tuple[float, ...]]) -> list[float]:
    a = np.array(boxes, dtype=np.float64)
    return [float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 2].max()), float(a[:, 3].max())]


def _scene_item(iid: str, bands: dict[str, _BandFile], when: dt.datetime, side: dict[str, Any] | None,
                collection: str) -> dict[str, Any]:
    order = [b for b in (*L1C, SCL) if b in bands]
    finest = min(bands.values(), key=lambda b: b.res)
    bbox = _union([bands[b].bounds_wgs84 for b in order])
    assets = {}
    for b in order:
        e = bands[b]
        a: dict[str, Any] = {
            "href": str(e.path.resolve()), "type": "image/tiff; application=geotiff", "roles": ["data"],
            "proj:epsg": e.epsg, "proj:shape": list(e.shape), "proj:transform": list(e.transform),
        }
        if b in BY_NAME:
            a["eo:bands"] = [{"name": b, "common_name": BY_NAME[b].common_name}]
        if sum(x.path == e.path for x in bands.values()) > 1:  # a multi-band file
            a["seco:band_index"] = e.index
        assets[b] = a
    side = side or {}
    cloud = side.get("eo:cloud_cover", side.get("CLOUDY_PIXEL_PERCENTAGE"))
    pb = side.get("s2:processing_baseline", side.get("PROCESSING_BASELINE"))
    m = re.search(r"_N(\d{2})(\d{2})_", " ".join(x.path.name for x in bands.values()))
    if pb is None and m:
        pb = f"{m.group(1)}.{m.group(2)}"
    sat = re.match(r"(?i)(S2[ABCD])_", finest.path.name)
    props = {
        "datetime": when.isoformat(), "eo:cloud_cover": None if cloud is None else float(cloud),
        "proj:epsg": finest.epsg, "s2:processing_baseline": None if pb is None else str(pb),
        "platform": f"sentinel-{sat.group(1)[1:].lower()}" if sat else None,
    }
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": iid, "collection": collection,
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/projection/v1.1.0/schema.json"],
        "bbox": bbox, "geometry": None, "properties": props, "assets": assets, "links": [],
    }
