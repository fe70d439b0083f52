"""One search interface over STAC APIs (pystac-client) and local stac-geoparquet files (pyarrow only).

``open_catalog`` checks, before any work, that the catalog can be reached and that its collection carries the
bands collection needs; ``Catalog.search`` returns :class:`~seco.collect.scene.SceneItem` records whose assets are keyed by the
canonical band names of :mod:`seco.bands` whatever the provider calls them:

- Earth Search (``sentinel-2-l2a``, ``sentinel-2-c1-l2a``): ``coastal, blue, green, red, rededge1..3, nir,
  nir08, nir09, swir16, swir22, scl`` (the ``*-jp2`` duplicates are used only when no COG exists);
- Planetary Computer (``sentinel-2-l2a``): ``B01 .. B12, B8A, SCL``; its Azure blob hrefs need a SAS token,
  fetched from the token endpoint and appended by :class:`SasSigner`;
- local stac-geoparquet (e.g. from :func:`seco.collect.build.build_catalog`): asset keys ``B01`` .., or any asset whose
  ``eo:bands``/``bands`` names Sentinel-2 bands (several bands in one file -> ``SceneItem.band_index``).

Cloud filters are inclusive (``eo:cloud_cover <= max_cloud``) and, as in STAC APIs, drop items whose cloud cover
is unknown; ``max_cloud=None`` keeps everything.

Scene records (:class:`~seco.collect.scene.SceneItem`, ``choose_scene``) live in :mod:`seco.collect.scene`,
stac-geoparquet writing and ``build_catalog`` in :mod:`seco.collect.build`.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from seco.bands import parse_bands
from seco.collect.scene import _RESERVED, SCL, SceneItem, _parse_time, map_assets, scene_from_stac
from seco.errors import CatalogError, ConfigError

__all__ = ["DEFAULT_COLLECTION", "PC_SAS_TOKEN_URL", "PRESETS", "Catalog", "ParquetCatalog", "Preset", "SasSigner",
           "SearchResult", "SkippedItem", "StacApiCatalog", "open_catalog"]

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
    #: STAC item dict (+ signer) -> record; Sentinel-1 catalogs (:mod:`seco.collect.s1catalog`) swap it.
    parse: Any = staticmethod(scene_from_stac)

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
        out, skipped = [], []
        for d in self._items_as_dicts(max_items=limit, **kw):
            try:
                it = self.parse(d, self.signer)
            except (CatalogError, KeyError, TypeError, ValueError, AttributeError) as e:  # one bad item, not the search
                why = str(e) if isinstance(e, CatalogError) else f"{type(e).__name__}: {e}"
                iid = d.get("id") if isinstance(d, dict) else None
                skipped.append(SkippedItem(None if iid is None else str(iid), f"malformed item from {self.url}: {why}"))
                continue
            if max_cloud is not None and (getattr(it, "cloud_cover", None) is None or it.cloud_cover > max_cloud):
                continue
            out.append(it)
        return SearchResult(sorted(out, key=lambda it: (it.datetime, it.id)), skipped)

    def sign(self, item: SceneItem) -> SceneItem:
        if self.signer is None:
            return item
        return replace(item, assets={b: self.signer(h) for b, h in item.assets.items()})

    def describe(self) -> str:
        return f"STAC API {self.url} collection {self.collection}"




@dataclass(frozen=True)
class SkippedItem:
    """A catalog item that could not be used (malformed): its id (``None`` when it has none) and why."""

    id: str | None
    reason: str


class SearchResult(list[SceneItem]):
    """The hits of a search (a plain list of :class:`SceneItem`) and the malformed items skipped on the way."""

    def __init__(self, items: Iterable[SceneItem] = (), skipped: Iterable[SkippedItem] = ()):
        super().__init__(items)
        self.skipped: tuple[SkippedItem, ...] = tuple(skipped)


class ParquetCatalog(Catalog):
    """A local stac-geoparquet file (or folder of them) searched with pyarrow.

    Malformed items never stop a search: rows that no search can find (no id, no datetime, no bbox, no
    geometry) are listed once, when the file is opened, in :attr:`skipped`; rows a search finds but that do
    not parse as STAC items are left out of that search's result and listed in its
    :attr:`SearchResult.skipped`.

    Args:
        path: the ``.parquet`` file or a folder of Parquet files.
        collection: keep only items of this collection (``None`` = every item).
        bands: bands that must be offered (checked on the assets schema and the first item).

    Attributes:
        collections: the distinct collection ids of the items kept (empty when the file has no
            ``collection`` column).
        skipped: the malformed items found when opening (see above).
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
        self.collections: tuple[str, ...] = ()
        if "collection" in schema.names:
            self.collections = (collection,) if collection is not None else tuple(sorted(
                str(c) for c in pc.unique(self._ds.to_table(columns=["collection"])["collection"]).to_pylist()
                if c is not None))
            s1 = tuple(c for c in self.collections if is_s1_collection(c))
            if collection is None and s1:  # a local archive's S1 items (seco synth): not Sentinel-2 scenes
                self.collections = tuple(c for c in self.collections if c not in s1)
                self._base = ~pc.field("collection").isin(list(s1)) | pc.is_null(pc.field("collection"))
        self.skipped: tuple[SkippedItem, ...] = self._unlocatable()
        first = self._ds.head(1, columns=["assets"], filter=self._base)
        if first.num_rows == 0:
            raise CatalogError(f"{self.path} has no items{'' if collection is None else f' in {collection!r}'}")
        if self.bands:
            have = map_assets(first["assets"][0].as_py() or {})
            if any(b not in have for b in self.bands):
                raise _missing_bands_error(f"stac-geoparquet {self.path}", self.bands, have)

    def _unlocatable(self) -> tuple[SkippedItem, ...]:
        """Rows no search can return: no id, no datetime, no bbox (or one with a missing side), no geometry."""
        names, tcol = self._schema.names, self._time_col
        assert tcol is not None
        cols = ["id", *(c for c in (tcol, "bbox", "geometry") if c in names)]
        tests = [pc.is_null(pc.field(c)) for c in cols]
        btype = self._schema.field("bbox").type
        if pa.types.is_struct(btype):
            tests += [pc.is_null(pc.field("bbox", f.name)) for f in btype]
        bad = functools.reduce(operator.or_, tests)
        if self._base is not None:
            bad = bad & self._base
        why_of = {"id": "no id", tcol: f"no {tcol} (it fits no date window)", "bbox": "no bbox (it has no place)",
                  "geometry": "no geometry (a STAC item without one has no location)"}
        out = []
        for row in self._ds.to_table(filter=bad, columns=cols).to_pylist():
            why = [why_of[c] for c in cols if row.get(c) is None]
            if isinstance(row.get("bbox"), dict) and any(v is None for v in row["bbox"].values()):
                why.append("a bbox with a missing side")
            out.append(SkippedItem(None if row.get("id") is None else str(row["id"]),
                                   f"malformed item in {self.path}: {'; '.join(why)}; fix or drop the row"))
        return tuple(out)

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
        out, skipped = [], []
        for row in table.to_pylist():
            try:
                out.append(self.parse(_row_to_item(row)))
            except (CatalogError, KeyError, TypeError, ValueError, AttributeError) as e:  # one bad row, not the search
                why = str(e) if isinstance(e, CatalogError) else f"{type(e).__name__}: {e}"
                skipped.append(SkippedItem(None if row.get("id") is None else str(row["id"]),
                                           f"malformed item in {self.path}: {why}"))
        out.sort(key=lambda it: (it.datetime, it.id))
        return SearchResult(out[:limit] if limit is not None else out, skipped)

    def describe(self) -> str:
        return f"stac-geoparquet {self.path}" + ("" if self.collection is None else f" collection {self.collection}")


def is_s1_collection(collection: str | None) -> bool:
    """Whether a collection id names Sentinel-1 data (``sentinel-1-rtc``, ``sentinel-1-grd``, ``sentinel1-rtc-aws``)."""
    c = (collection or "").lower()
    return c.startswith(("sentinel-1", "sentinel1"))


def _row_to_item(row: dict[str, Any]) -> dict[str, Any]:
    """A stac-geoparquet row (properties at top level) -> STAC item dict (bbox as a list)."""
    bbox = row.get("bbox")
    if isinstance(bbox, dict):
        bbox = [bbox["xmin"], bbox["ymin"], bbox["xmax"], bbox["ymax"]]
    assets = {k: {kk: vv for kk, vv in v.items() if vv is not None}
              for k, v in (row.get("assets") or {}).items() if v is not None}
    props = {k: v for k, v in row.items() if k not in _RESERVED}
    links = [ln for ln in row.get("links") or () if isinstance(ln, dict)]  # they tell the provider
    return {"id": row["id"], "bbox": bbox, "assets": assets, "properties": props, "collection": row.get("collection"),
            "links": links}


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
