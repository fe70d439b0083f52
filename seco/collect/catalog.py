"""One search interface over STAC APIs (pystac-client) and local stac-geoparquet files (pyarrow only).

``open_catalog`` checks, before any work, that the catalog can be reached and that its collection carries the
bands collection needs; ``Catalog.search`` returns :class:`SceneItem` records whose assets are keyed by the
canonical band names of :mod:`seco.bands` whatever the provider calls them:

- Earth Search (``sentinel-2-l2a``, ``sentinel-2-c1-l2a``): ``coastal, blue, green, red, rededge1..3, nir,
  nir08, nir09, swir16, swir22, scl`` (the ``*-jp2`` duplicates are used only when no COG exists);
- Planetary Computer (``sentinel-2-l2a``): ``B01 .. B12, B8A, SCL``; its Azure blob hrefs need a SAS token,
  fetched from the token endpoint and appended by :class:`SasSigner`;
- local stac-geoparquet (e.g. from :func:`build_catalog`): asset keys ``B01`` .., or any asset whose
  ``eo:bands``/``bands`` names Sentinel-2 bands (several bands in one file -> ``SceneItem.band_index``).

Cloud filters are inclusive (``eo:cloud_cover <= max_cloud``) and, as in STAC APIs, drop items whose cloud cover
is unknown; ``max_cloud=None`` keeps everything.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from seco.bands import BY_NAME, L1C, normalize_name, parse_bands
from seco.collect.geo import geo_metadata, wkb_polygon
from seco.errors import BandError, CatalogError, ConfigError

# ---------------------------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """A known public STAC API."""

    url: str
    collections: tuple[str, ...]
    sas_signing: bool = False


PRESETS: dict[str, Preset] = {
    "earth-search": Preset("https://earth-search.aws.element84.com/v1", ("sentinel-2-l2a", "sentinel-2-c1-l2a")),
    "planetary-computer": Preset("https://planetarycomputer.microsoft.com/api/stac/v1", ("sentinel-2-l2a",),
                                 sas_signing=True),
}
DEFAULT_COLLECTION = "sentinel-2-l2a"
PC_SAS_TOKEN_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"
POLICIES = ("recent", "least-cloudy")

#: Provider asset keys (lower case) -> canonical band.
ASSET_ALIASES: dict[str, str] = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05", "rededge2": "B06",
    "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09", "cirrus": "B10", "swir16": "B11",
    "swir22": "B12", "scl": "SCL",
}
SCL = "SCL"
_NOT_DATA_ROLES = {"visual", "overview", "thumbnail", "metadata"}


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

    @property
    def bands(self) -> tuple[str, ...]:
        """Spectral bands present, in registry order (``SCL`` excluded)."""
        return tuple(b for b in L1C if b in self.assets)

    def has(self, bands: Iterable[str]) -> bool:
        """Whether every band in ``bands`` has an asset."""
        return all(b in self.assets for b in bands)


def _band_of_key(key: str) -> str | None:
    k = key.lower().removesuffix("-jp2")
    if k in ASSET_ALIASES:
        return ASSET_ALIASES[k]
    try:
        return normalize_name(k)
    except BandError:
        return None


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

    Direct keys (``B02``, ``blue``, ``scl``) win over ``*-jp2`` duplicates, which win over assets whose
    ``eo:bands``/``bands`` name the band (multi-band files).
    """
    out: dict[str, tuple[str, int]] = {}
    items = [(k, a) for k, a in assets.items() if isinstance(a, dict) and _is_data_asset(k, a)]
    for jp2 in (False, True):
        for key, _ in items:
            if key.lower().endswith("-jp2") != jp2:
                continue
            band = _band_of_key(key)
            if band is not None and band not in out:
                out[band] = (key, 1)
    for key, asset in items:
        if _band_of_key(key) is not None:
            continue
        for i, entry in enumerate(_asset_bands(asset)):
            band = _band_of_entry(entry)
            if band is not None and band not in out:
                out[band] = (key, i + 1)
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
    pb = props.get("s2:processing_baseline")
    return SceneItem(
        id=str(item["id"]), datetime=when, cloud_cover=None if cloud is None else float(cloud),
        bbox=(float(w), float(s), float(e), float(n)), epsg=epsg, assets=assets, offsets=offsets, scales=scales,
        processing_baseline=None if pb is None else str(pb), collection=item.get("collection"), band_index=index,
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


# ---------------------------------------------------------------------------------------------- signing


class SasSigner:
    """Appends Planetary Computer SAS tokens to Azure blob hrefs.

    Tokens come from ``{token_url}/{account}/{container}`` (JSON ``{"msft:expiry": ..., "token": ...}``), are
    cached per container and refreshed when less than ``refresh_s`` seconds remain. Hrefs outside
    ``*.blob.core.windows.net`` are returned unchanged; a previous token on an href is replaced. Thread-safe.
    """

    BLOB_DOMAIN = ".blob.core.windows.net"

    def __init__(self, token_url: str = PC_SAS_TOKEN_URL, *, subscription_key: str | None = None,
                 timeout: float = 30.0, refresh_s: float = 300.0):
        self.token_url = token_url.rstrip("/")
        self.subscription_key = subscription_key
        self.timeout = timeout
        self.refresh_s = refresh_s
        self._cache: dict[str, tuple[str, dt.datetime]] = {}
        self._lock = threading.Lock()

    def token(self, account: str, container: str) -> str:
        """A valid token for one storage container (fetched or cached)."""
        import requests

        url = f"{self.token_url}/{account}/{container}"
        with self._lock:
            hit = self._cache.get(url)
            now = dt.datetime.now(dt.UTC)
            if hit is not None and (hit[1] - now).total_seconds() > self.refresh_s:
                return hit[0]
            headers = {"Ocp-Apim-Subscription-Key": self.subscription_key} if self.subscription_key else None
            try:
                r = requests.get(url, headers=headers, timeout=self.timeout)
                r.raise_for_status()
                body = r.json()
                token, expiry = str(body["token"]), _parse_time(body["msft:expiry"])
            except (requests.RequestException, ValueError, KeyError, TypeError) as e:
                raise CatalogError(
                    f"could not get a SAS token from {url} ({e}); check the network, or pass a subscription key "
                    "(SasSigner(subscription_key=...)) if the anonymous rate limit is hit"
                ) from e
            assert expiry is not None
            self._cache[url] = (token, expiry)
            return token

    def __call__(self, href: str) -> str:
        """The signed href."""
        u = urlparse(href)
        if u.scheme not in ("http", "https") or not u.netloc.endswith(self.BLOB_DOMAIN):
            return href
        parts = [p for p in u.path.split("/") if p]
        if not parts:
            return href
        account = u.netloc[: -len(self.BLOB_DOMAIN)]
        base = href.split("?", 1)[0]
        return f"{base}?{self.token(account, parts[0])}"


# ---------------------------------------------------------------------------------------------- catalogs


def _as_time(v: Any, end: bool = False) -> dt.datetime:
    """datetime / date / ISO string / numpy datetime64 -> aware UTC datetime (a bare date spans its day)."""
    if isinstance(v, np.datetime64):
        v = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            microseconds=int(v.astype("datetime64[us]").astype(np.int64)))
    if isinstance(v, str):
        try:
            if len(v) == 10:
                v = dt.date.fromisoformat(v)
            else:
                v = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError as e:
            raise ConfigError(f"time {v!r} is not ISO 8601; write e.g. 2024-05-01 or 2024-05-01T10:00:00Z") from e
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
    if isinstance(v, dt.date):
        t = dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)
        return t + dt.timedelta(days=1, microseconds=-1) if end else t
    raise ConfigError(f"time {v!r} must be a datetime, date or ISO string")


def _check_query(bbox: Sequence[float], start: Any, end: Any, max_cloud: float | None
                 ) -> tuple[tuple[float, float, float, float], dt.datetime, dt.datetime]:
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"bbox {bbox!r} must be 4 numbers (west, south, east, north)") from err
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= n <= 90):
        raise ConfigError(f"bbox {bbox!r} must be (west, south, east, north) in degrees with south <= north")
    t0, t1 = _as_time(start), _as_time(end, end=True)
    if t0 > t1:
        raise ConfigError(f"search start {t0.isoformat()} is after end {t1.isoformat()}; swap them")
    if max_cloud is not None and not 0 <= max_cloud <= 100:
        raise ConfigError(f"max_cloud={max_cloud!r} must be a percentage in [0, 100] or None")
    return (w, s, e, n), t0, t1


class Catalog(ABC):
    """A searchable source of Sentinel-2 scenes.

    Attributes:
        collection: the collection searched (``None``: every item of a local file).
        bands: the bands checked at opening.
    """

    collection: str | None
    bands: tuple[str, ...]

    @abstractmethod
    def search(self, bbox: Sequence[float], start: Any, end: Any, max_cloud: float | None = None,
               limit: int | None = None) -> list[SceneItem]:
        """Scenes whose bbox intersects ``bbox`` (west, south, east, north), acquired in ``[start, end]``.

        Args:
            bbox: query box in WGS84 degrees; west > east crosses the antimeridian.
            start: first time (datetime, date or ISO string; naive = UTC).
            end: last time, inclusive (a bare date means the end of that day).
            max_cloud: keep ``eo:cloud_cover <= max_cloud``; ``None`` = no cloud filter.
            limit: at most this many items.

        Returns:
            Scenes sorted by time, then id.
        """

    def sign(self, item: SceneItem) -> SceneItem:
        """The item with freshly signed hrefs (long runs outlive tokens); unsigned catalogs return it as is."""
        return item

    def describe(self) -> str:
        """One line saying what this catalog is."""
        return f"{type(self).__name__}({self.collection!r})"


def _missing_bands_error(where: str, need: Sequence[str], have: Iterable[str]) -> CatalogError:
    have = sorted(set(have))
    miss = [b for b in need if b not in have]
    return CatalogError(
        f"{where} lacks assets for band(s) {', '.join(miss)} (it has {', '.join(have) or 'none'}); choose another "
        "collection (e.g. sentinel-2-l2a) or ask for fewer bands"
    )


class StacApiCatalog(Catalog):
    """A STAC API searched with pystac-client.

    Args:
        url: the API landing page.
        collection: collection id.
        bands: bands that must be offered (checked on the collection's ``item_assets``, else one item).
        signer: called on every href (e.g. :class:`SasSigner`); ``None`` = no signing.
        headers: extra HTTP headers.
        timeout: seconds per request.
        method: ``"POST"`` or ``"GET"`` for /search.
        page_size: items per page requested.
    """

    def __init__(self, url: str, collection: str = DEFAULT_COLLECTION, bands: Sequence[str] = (), *,
                 signer: Any = None, headers: dict[str, str] | None = None, timeout: float = 30.0,
                 method: str = "POST", page_size: int = 100):
        from pystac_client import Client
        from pystac_client.conformance import ConformanceClasses

        if method not in ("POST", "GET"):
            raise ConfigError(f"method={method!r} must be 'POST' or 'GET'")
        self.url, self.bands = url, tuple(bands)
        self.collection: str = collection
        self.signer, self.method, self.page_size = signer, method, page_size
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._client = Client.open(url, headers=headers, timeout=timeout)
        except Exception as e:  # pystac-client raises APIError, requests and JSON errors alike
            raise CatalogError(
                f"cannot open the STAC API at {url} ({type(e).__name__}: {e}); check the URL and the network, "
                "or use a local stac-geoparquet file"
            ) from e
        if not self._client.conforms_to(ConformanceClasses.ITEM_SEARCH):
            raise CatalogError(f"{url} does not implement STAC API item search; give the API's landing page URL")
        self._query = self._client.conforms_to(ConformanceClasses.QUERY)
        try:
            coll = self._client.get_collection(collection)
        except Exception as e:
            raise CatalogError(f"cannot read collection {collection!r} from {url} ({e})") from e
        if coll is None:
            try:
                ids = sorted(c.id for c in self._client.get_collections())
            except Exception:
                ids = []
            raise CatalogError(
                f"collection {collection!r} not found at {url}; available: {', '.join(ids) or 'unknown'}"
            )
        if self.bands:
            self._check_bands(coll.to_dict())

    def _check_bands(self, coll: dict[str, Any]) -> None:
        where = f"collection {self.collection!r} at {self.url}"
        item_assets = coll.get("item_assets")
        if isinstance(item_assets, dict) and item_assets:
            fake = {k: {**v, "href": v.get("href") or "x"} for k, v in item_assets.items() if isinstance(v, dict)}
            have = map_assets(fake)
        else:
            first = next(iter(self._items_as_dicts(max_items=1)), None)
            if first is None:
                raise CatalogError(f"{where} has no items; choose another collection")
            have = map_assets(first.get("assets") or {})
        if any(b not in have for b in self.bands):
            raise _missing_bands_error(where, self.bands, have)

    def _items_as_dicts(self, max_items: int | None = None, **kw: Any) -> Iterable[dict[str, Any]]:
        from pystac_client.exceptions import APIError

        search = self._client.search(collections=[self.collection], max_items=max_items, limit=self.page_size,
                                     method=self.method, **kw)
        try:
            yield from search.items_as_dicts()
        except APIError as e:
            raise CatalogError(f"search at {self.url} failed ({e}); retry later or narrow the query") from e

    def search(self, bbox: Sequence[float], start: Any, end: Any, max_cloud: float | None = None,
               limit: int | None = None) -> list[SceneItem]:
        box, t0, t1 = _check_query(bbox, start, end, max_cloud)
        kw: dict[str, Any] = {"bbox": list(box), "datetime": [t0, t1]}
        if max_cloud is not None and self._query:
            kw["query"] = {"eo:cloud_cover": {"lte": max_cloud}}
        out = []
        for d in self._items_as_dicts(max_items=limit, **kw):
            it = scene_from_stac(d, self.signer)
            if max_cloud is not None and (it.cloud_cover is None or it.cloud_cover > max_cloud):
                continue
            out.append(it)
        return sorted(out, key=lambda it: (it.datetime, it.id))

    def sign(self, item: SceneItem) -> SceneItem:
        if self.signer is None:
            return item
        return replace(item, assets={b: self.signer(h) for b, h in item.assets.items()})

    def describe(self) -> str:
        return f"STAC API {self.url} collection {self.collection}"


_RESERVED = {"type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "links", "assets", "collection"}


class ParquetCatalog(Catalog):
    """A local stac-geoparquet file (or folder of them) searched with pyarrow.

    Args:
        path: the ``.parquet`` file or a folder of Parquet files.
        collection: keep only items of this collection (``None`` = every item).
        bands: bands that must be offered (checked on the assets schema and the first item).
    """

    def __init__(self, path: str | Path, collection: str | None = None, bands: Sequence[str] = ()):
        self.path, self.collection, self.bands = Path(path), collection, tuple(bands)
        if not self.path.exists():
            raise CatalogError(f"stac-geoparquet {str(self.path)!r} does not exist; build one with "
                               "`seco catalog build DIR --out FILE` or give a STAC API URL")
        try:
            self._ds = pads.dataset(self.path, format="parquet")
            schema = self._ds.schema
        except (pa.ArrowInvalid, OSError) as e:
            raise CatalogError(f"{self.path} is not a readable Parquet dataset ({e})") from e
        self._time_col = "datetime" if "datetime" in schema.names else (
            "start_datetime" if "start_datetime" in schema.names else None)
        missing = [c for c in ("id", "bbox", "assets") if c not in schema.names] + (
            ["datetime"] if self._time_col is None else [])
        if missing:
            raise CatalogError(f"{self.path} is not stac-geoparquet: no column(s) {', '.join(missing)}")
        self._schema = schema
        self._base = None
        if collection is not None:
            if "collection" not in schema.names:
                raise CatalogError(f"{self.path} has no 'collection' column; open it with collection=None")
            found = set(pc.unique(self._ds.to_table(columns=["collection"])["collection"]).to_pylist())
            if collection not in found:
                raise CatalogError(f"collection {collection!r} not in {self.path}; it has "
                                   f"{', '.join(sorted(str(c) for c in found))}")
            self._base = pc.field("collection") == collection
        first = self._ds.head(1, columns=["assets"], filter=self._base)
        if first.num_rows == 0:
            raise CatalogError(f"{self.path} has no items{'' if collection is None else f' in {collection!r}'}")
        if self.bands:
            have = map_assets(first["assets"][0].as_py() or {})
            if any(b not in have for b in self.bands):
                raise _missing_bands_error(f"stac-geoparquet {self.path}", self.bands, have)

    def _bbox_expr(self, box: tuple[float, float, float, float]) -> pc.Expression:
        t = self._schema.field("bbox").type
        if pa.types.is_struct(t):
            xmin, ymin, xmax, ymax = (pc.field("bbox", k) for k in ("xmin", "ymin", "xmax", "ymax"))
        else:  # legacy: a list of 4 (or, in 3-D, 6) numbers; the first item tells which
            first = self._ds.head(1, columns=["bbox"])["bbox"][0].as_py() or [0] * 4
            idx = (0, 1, 3, 4) if len(first) == 6 else (0, 1, 2, 3)
            xmin, ymin, xmax, ymax = (pc.list_element(pc.field("bbox"), i) for i in idx)
        w, s, e, n = box
        lat_ok = (ymin <= n) & (ymax >= s)
        # longitudes as unions of at most two plain intervals (an interval crossing the antimeridian splits)
        q = [(w, e)] if w <= e else [(w, 180.0), (-180.0, e)]
        plain = xmin <= xmax
        lon_ok = None
        for qw, qe in q:
            hit = (plain & (xmin <= qe) & (xmax >= qw)) | (~plain & ((xmax >= qw) | (xmin <= qe)))
            lon_ok = hit if lon_ok is None else (lon_ok | hit)
        assert lon_ok is not None
        return lat_ok & lon_ok

    def _time_scalar(self, t: dt.datetime) -> pa.Scalar:
        typ = self._schema.field(self._time_col).type
        if pa.types.is_timestamp(typ) and typ.tz is None:
            return pa.scalar(t.replace(tzinfo=None), type=typ)
        return pa.scalar(t, type=typ if pa.types.is_timestamp(typ) else pa.timestamp("us", tz="UTC"))

    def search(self, bbox: Sequence[float], start: Any, end: Any, max_cloud: float | None = None,
               limit: int | None = None) -> list[SceneItem]:
        box, t0, t1 = _check_query(bbox, start, end, max_cloud)
        tcol = pc.field(self._time_col)
        expr = self._bbox_expr(box) & (tcol >= self._time_scalar(t0)) & (tcol <= self._time_scalar(t1))
        if max_cloud is not None:
            if "eo:cloud_cover" not in self._schema.names:
                return []
            expr = expr & (pc.field("eo:cloud_cover") <= float(max_cloud))
        if self._base is not None:
            expr = expr & self._base
        table = self._ds.to_table(filter=expr)
        out = [scene_from_stac(_row_to_item(row)) for row in table.to_pylist()]
        out.sort(key=lambda it: (it.datetime, it.id))
        return out[:limit] if limit is not None else out

    def describe(self) -> str:
        return f"stac-geoparquet {self.path}" + ("" if self.collection is None else f" collection {self.collection}")


def _row_to_item(row: dict[str, Any]) -> dict[str, Any]:
    """A stac-geoparquet row (properties at top level) -> STAC item dict (bbox as a list)."""
    bbox = row.get("bbox")
    if isinstance(bbox, dict):
        bbox = [bbox["xmin"], bbox["ymin"], bbox["xmax"], bbox["ymax"]]
    assets = {k: {kk: vv for kk, vv in v.items() if vv is not None}
              for k, v in (row.get("assets") or {}).items() if v is not None}
    props = {k: v for k, v in row.items() if k not in _RESERVED}
    return {"id": row["id"], "bbox": bbox, "assets": assets, "properties": props, "collection": row.get("collection")}


def _needed_bands(bands: str | Sequence[str]) -> tuple[str, ...]:
    """A band spec plus optionally ``SCL`` (the L2A scene classification) -> names to require."""
    if isinstance(bands, str):
        parts = [p.strip() for p in bands.split(",")] if "," in bands else [bands]
    else:
        parts = list(bands)
    scl = any(p.strip().upper() == SCL for p in parts)
    rest = [p for p in parts if p.strip().upper() != SCL]
    spectral = parse_bands(rest[0] if len(rest) == 1 else rest) if rest else ()
    return (*spectral, SCL) if scl else spectral


def open_catalog(url_or_path: str | Path, collection: str | None = None, *,
                 bands: str | Sequence[str] = "l2a", signer: Any = None, headers: dict[str, str] | None = None,
                 timeout: float = 30.0, method: str = "POST") -> Catalog:
    """Open a catalog and check it before any work.

    Args:
        url_or_path: a preset (``earth-search``, ``planetary-computer``), a STAC API URL, or a local
            stac-geoparquet file / folder.
        collection: collection id; ``None`` = ``sentinel-2-l2a`` for APIs and every item of a local file.
        bands: bands the collection must offer: a :func:`seco.bands.parse_bands` spec, optionally with
            ``SCL`` (e.g. ``["B02", "B03", "SCL"]`` or ``"l2a,SCL"``); ``()`` = no check.
        signer: href signer; the ``planetary-computer`` preset uses :class:`SasSigner` by default.
        headers: extra HTTP headers (APIs).
        timeout: seconds per HTTP request (APIs).
        method: ``POST`` or ``GET`` for API searches.

    Raises:
        CatalogError: unreachable catalog, unknown collection, or missing band assets.
        ConfigError: an unusable argument.
    """
    need = _needed_bands(bands)
    target = str(url_or_path)
    if target in PRESETS:
        p = PRESETS[target]
        coll = collection or DEFAULT_COLLECTION
        if coll not in p.collections:
            raise ConfigError(f"collection {coll!r} is not a Sentinel-2 collection of {target}; choose one of "
                              f"{', '.join(p.collections)}")
        if signer is None and p.sas_signing:
            signer = SasSigner(timeout=timeout)
        return StacApiCatalog(p.url, coll, need, signer=signer, headers=headers, timeout=timeout, method=method)
    if target.startswith(("http://", "https://")):
        return StacApiCatalog(target, collection or DEFAULT_COLLECTION, need, signer=signer, headers=headers,
                              timeout=timeout, method=method)
    path = Path(url_or_path)
    if not path.exists():
        raise CatalogError(
            f"catalog {target!r} is neither a preset ({', '.join(PRESETS)}), an http(s) STAC API URL, nor an "
            "existing stac-geoparquet file"
        )
    return ParquetCatalog(path, collection, need)


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
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(out)
    return out


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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            src = rasterio.open(path)
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
            if src.count > 1 and len(known) == len(names) == len(set(known)):
                return [_BandFile(path, b, i + 1, **common) for i, b in enumerate(known)], None
            if token:
                return [], f"{src.count} bands in a file named like a single band"
            return [], ("no band token in the file name (e.g. _B02) and band descriptions "
                        f"{list(src.descriptions)} do not name Sentinel-2 bands")
    except rasterio.errors.RasterioError as e:
        return [], f"unreadable ({e})"


def build_catalog(root: str | Path, out: str | Path, *, collection: str = "local") -> BuildReport:
    """Index a folder of GeoTIFF/COG scenes into stac-geoparquet (``seco catalog build DIR --out FILE``).

    Scenes are either one file per band (``<prefix>_B02.tif`` or ``B2.tif``, as OSCD, SAFE granules and the
    official SeCo downloader lay them out; the files of a scene share a folder and a prefix) or multi-band files
    whose band descriptions are band names (``B02``, ``blue``...). The acquisition time comes, in this order,
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
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _TIF_SUFFIXES and p.is_file())
    for f in files:
        entries, reason = _read_band_files(f)
        if reason:
            skipped.append((str(f), reason))
            continue
        token = _BAND_TOKEN.search(f.stem)
        stem = f.stem[: token.start()].rstrip("_-. ") if (token and len(entries) == 1) else f.stem
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
    if not items:
        detail = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
        raise CatalogError(f"no scenes found under {root} ({len(files)} GeoTIFFs){': ' + detail if detail else ''}")
    t = sorted(it["properties"]["datetime"] for it in items)
    coll = {
        "type": "Collection", "stac_version": "1.0.0", "id": collection,
        "description": f"Sentinel-2 scenes indexed from {root} by seco catalog build", "license": "other",
        "extent": {"spatial": {"bbox": [_union([tuple(it["bbox"]) for it in items])]},
                   "temporal": {"interval": [[t[0], t[-1]]]}},
        "links": [],
    }
    write_stac_geoparquet(items, out, {collection: coll})
    return BuildReport(out=out, items=len(items), skipped=tuple(skipped))


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
