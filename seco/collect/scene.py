"""Scene records: STAC item dicts -> :class:`SceneItem` (bands keyed by canonical name), and the choice of one
scene per date window.

Provider asset keys are mapped to :mod:`seco.bands` names (``blue`` -> ``B02``, ``B02`` -> ``B02``, multi-band
assets through ``eo:bands``/``bands``); see :mod:`seco.collect.catalog` for the providers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from seco.bands import BY_NAME, L1C, normalize_name
from seco.errors import BandError, CatalogError, ConfigError
from seco.radiometry.providers import baseline_of, boa_flag, provider_of

POLICIES = ("recent", "least-cloudy")

#: Provider asset keys (lower case) -> canonical band.
ASSET_ALIASES: dict[str, str] = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05", "rededge2": "B06",
    "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09", "cirrus": "B10", "swir16": "B11",
    "swir22": "B12", "scl": "SCL",
}
SCL = "SCL"
_NOT_DATA_ROLES = {"visual", "overview", "thumbnail", "metadata"}
#: Top-level fields of a STAC item (everything else of a stac-geoparquet row is a property).
_RESERVED = {"type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "links", "assets", "collection"}


# ---------------------------------------------------------------------------------------------- scene


@dataclass(frozen=True)
class SceneItem:
    """One Sentinel-2 scene as found in a catalog.

    Attributes:
        id: item id.
        datetime: acquisition time (timezone-aware, UTC).
        cloud_cover: scene cloud percentage (``eo:cloud_cover``), ``None`` when unknown.
        bbox: (west, south, east, north) in WGS84 degrees; west > east when crossing the antimeridian.
        epsg: EPSG code of the rasters (``proj:epsg`` / ``proj:code``), ``None`` when unknown.
        assets: band name (``B01``..``B12``, ``B8A``, ``SCL``) -> href (signed when the catalog signs).
        offsets: band -> ``raster:bands`` offset, where given (Earth Search L2A: -0.1 from baseline 04.00).
        scales: band -> ``raster:bands`` scale, where given.
        processing_baseline: ``s2:processing_baseline`` (e.g. ``"05.09"``), ``None`` when absent.
        collection: the collection id.
        band_index: band -> 1-based band number inside a multi-band asset; bands not listed are band 1.
        provider: where the item comes from (:data:`seco.radiometry.providers.PROVIDERS`), read from its links
            and hrefs; decides the harmonisation rule.
        boa_offset_applied: Earth Search's ``earthsearch:boa_offset_applied`` flag, ``None`` when absent.
    """

    id: str
    datetime: dt.datetime
    cloud_cover: float | None
    bbox: tuple[float, float, float, float]
    epsg: int | None
    assets: dict[str, str] = field(hash=False)
    offsets: dict[str, float] = field(default_factory=dict, hash=False)
    scales: dict[str, float] = field(default_factory=dict, hash=False)
    processing_baseline: str | None = None
    collection: str | None = None
    band_index: dict[str, int] = field(default_factory=dict, hash=False)
    provider: str | None = None
    boa_offset_applied: bool | None = None

    @property
    def bands(self) -> tuple[str, ...]:
        """Spectral bands present, in registry order (``SCL`` excluded)."""
        return tuple(b for b in L1C if b in self.assets)

    def has(self, bands: Iterable[str]) -> bool:
        """Whether every band in ``bands`` has an asset."""
        return all(b in self.assets for b in bands)


_RES_SUFFIX = re.compile(r"(?i)_(10|20|60)m$")


def _band_of_key(key: str) -> str | None:
    k = _RES_SUFFIX.sub("", key.lower().removesuffix("-jp2"))  # CDSE: B02_10m, B02_20m, SCL_20m
    if k in ASSET_ALIASES:
        return ASSET_ALIASES[k]
    try:
        return normalize_name(k)
    except BandError:
        return None


def _native(band: str, key: str, asset: dict[str, Any]) -> bool:
    """Whether an asset holds ``band`` at its native resolution (as far as its key suffix or gsd tells)."""
    native = 20 if band == SCL else BY_NAME[band].resolution_m
    m = _RES_SUFFIX.search(key)
    if m:
        return int(m.group(1)) == native
    gsd = asset.get("gsd")
    return not isinstance(gsd, int | float) or float(gsd) == native


def _asset_bands(asset: dict[str, Any]) -> list[dict[str, Any]]:
    for k in ("eo:bands", "bands", "raster:bands"):
        v = asset.get(k)
        if isinstance(v, list) and v:
            return [b if isinstance(b, dict) else {} for b in v]
    return []


def _band_of_entry(entry: dict[str, Any]) -> str | None:
    for k in ("name", "eo:common_name", "common_name"):
        v = entry.get(k)
        if isinstance(v, str):
            b = _band_of_key(v)
            if b is not None:
                return b
    return None


def _is_data_asset(key: str, asset: dict[str, Any]) -> bool:
    roles = set(asset.get("roles") or ())
    return bool(asset.get("href")) and key.lower() not in ("visual", "tci", "preview") and not roles & _NOT_DATA_ROLES


def map_assets(assets: dict[str, dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """Canonical band -> (asset key, 1-based band number in that asset) for a STAC ``assets`` mapping.

    Direct keys (``B02``, ``blue``, ``scl``, CDSE's ``B02_10m``) win over ``*-jp2`` duplicates, which win over
    assets whose ``eo:bands``/``bands`` name the band (multi-band files); among equals, the asset at the band's
    native resolution (key suffix ``_10m``/``_20m``/``_60m`` or ``gsd``) wins, then the catalog's order.
    """
    items = [(k, a) for k, a in assets.items() if isinstance(a, dict) and _is_data_asset(k, a)]
    # (band, rank, position, key, index): lowest rank wins; ties keep the catalog's order
    cands: list[tuple[str, tuple[int, int, int], int, str, int]] = []
    for pos, (key, asset) in enumerate(items):
        band = _band_of_key(key)
        if band is not None:
            cands.append((band, (0, int(key.lower().endswith("-jp2")), int(not _native(band, key, asset))),
                          pos, key, 1))
            continue
        for i, entry in enumerate(_asset_bands(asset)):
            band = _band_of_entry(entry)
            if band is not None:
                cands.append((band, (1, 0, int(not _native(band, key, asset))), pos, key, i + 1))
    out: dict[str, tuple[str, int]] = {}
    for band, _, _, key, i in sorted(cands, key=lambda c: (c[1], c[2])):
        out.setdefault(band, (key, i))
    return out


def _scale_offset(asset: dict[str, Any], index: int) -> tuple[float | None, float | None]:
    scale = asset.get("raster:scale")
    offset = asset.get("raster:offset")
    rb = asset.get("raster:bands")
    if isinstance(rb, list) and len(rb) >= index and isinstance(rb[index - 1], dict):
        scale = rb[index - 1].get("scale", scale)
        offset = rb[index - 1].get("offset", offset)
    b = asset.get("bands")
    if isinstance(b, list) and len(b) >= index and isinstance(b[index - 1], dict):
        scale = b[index - 1].get("raster:scale", scale)
        offset = b[index - 1].get("raster:offset", offset)
    return (None if scale is None else float(scale)), (None if offset is None else float(offset))


def _epsg(obj: dict[str, Any]) -> int | None:
    v = obj.get("proj:epsg")
    if v is not None:
        return int(v)
    code = obj.get("proj:code")
    if isinstance(code, str) and code.upper().startswith("EPSG:"):
        return int(code.split(":", 1)[1])
    return None


def _parse_time(v: Any) -> dt.datetime | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
    if isinstance(v, str):
        return _parse_time(dt.datetime.fromisoformat(v.replace("Z", "+00:00")))
    raise ValueError(f"not a datetime: {v!r}")


def scene_from_stac(item: dict[str, Any], sign: Any = None) -> SceneItem:
    """A :class:`SceneItem` from a STAC item dict (``properties`` nested), signing hrefs with ``sign(href)``."""
    props = item.get("properties") or {}
    when = _parse_time(props.get("datetime")) or _parse_time(props.get("start_datetime"))
    if when is None:
        raise CatalogError(f"STAC item {item.get('id')!r} has no datetime; the catalog is not usable for dates")
    raw_assets = item.get("assets") or {}
    mapping = map_assets(raw_assets)
    assets, offsets, scales, index = {}, {}, {}, {}
    for band, (key, i) in mapping.items():
        a = raw_assets[key]
        i = int(a.get("seco:band_index") or i)  # written by build_catalog for multi-band files
        assets[band] = sign(a["href"]) if sign is not None else a["href"]
        scale, offset = _scale_offset(a, i)
        if scale is not None:
            scales[band] = scale
        if offset is not None:
            offsets[band] = offset
        if i != 1 or len(_asset_bands(a)) > 1 or "seco:band_index" in a:
            index[band] = i
    epsg = _epsg(props)
    if epsg is None:
        for band in ("B02", *mapping):
            if band in mapping and (epsg := _epsg(raw_assets[mapping[band][0]])) is not None:
                break
    raw_bbox = list(item.get("bbox") or ())
    if len(raw_bbox) not in (4, 6):
        raise CatalogError(f"STAC item {item.get('id')!r} has no valid bbox ({item.get('bbox')!r})")
    w, s, e, n = (raw_bbox[i] for i in ((0, 1, 3, 4) if len(raw_bbox) == 6 else (0, 1, 2, 3)))
    cloud = props.get("eo:cloud_cover")
    links = [str(ln.get("href", "")) for ln in item.get("links") or () if isinstance(ln, dict)]
    provider = provider_of(links, [raw_assets[k]["href"] for k, _ in mapping.values()], props)
    return SceneItem(
        id=str(item["id"]), datetime=when, cloud_cover=None if cloud is None else float(cloud),
        bbox=(float(w), float(s), float(e), float(n)), epsg=epsg, assets=assets, offsets=offsets, scales=scales,
        processing_baseline=baseline_of(props), collection=item.get("collection"), band_index=index,
        provider=provider, boa_offset_applied=boa_flag(props),
    )


# ---------------------------------------------------------------------------------------------- choice


def choose_scene(items: Sequence[SceneItem], policy: str = "recent", max_cloud: float | None = 10.0,
                 bands: Iterable[str] | None = None) -> SceneItem | None:
    """Pick one scene of a window.

    Args:
        items: candidates (e.g. one ``Catalog.search`` result).
        policy: ``"recent"`` (latest acquisition, as the official downloader) or ``"least-cloudy"`` (lowest
            cloud cover, latest first among ties).
        max_cloud: drop scenes above this cloud percentage and those with unknown cover; ``None`` keeps all.
        bands: drop scenes lacking any of these bands.

    Returns:
        The chosen scene, or ``None`` when no candidate qualifies.
    """
    if policy not in POLICIES:
        raise ConfigError(f"scene policy {policy!r} is unknown; choose one of {', '.join(POLICIES)}")
    need = tuple(bands or ())
    ok = [it for it in items if (max_cloud is None or (it.cloud_cover is not None and it.cloud_cover <= max_cloud))
          and it.has(need)]
    if not ok:
        return None
    if policy == "recent":
        return max(ok, key=lambda it: (it.datetime, -(it.cloud_cover if it.cloud_cover is not None else 101), it.id))
    return min(ok, key=lambda it: (it.cloud_cover if it.cloud_cover is not None else 101.0,
                                   -it.datetime.timestamp(), it.id))


#: Half-size in degrees (about 1 m) of the box searched around a location: a degenerate point box
#: (west == east, south == north) makes stac-fastapi-pgstac 7.2 / pgstac 0.10 miss intersecting items.
POINT_EPS_DEG = 1e-5


def point_box(lon: float, lat: float) -> tuple[float, float, float, float]:
    """The search box of a location: its point, widened by :data:`POINT_EPS_DEG` (clipped to the globe)."""
    return (max(lon - POINT_EPS_DEG, -180.0), max(lat - POINT_EPS_DEG, -90.0), min(lon + POINT_EPS_DEG, 180.0),
            min(lat + POINT_EPS_DEG, 90.0))
