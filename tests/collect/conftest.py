"""Fixtures for seco.collect tests: seeded STAC items, and a tiny STAC API + SAS token endpoint on loopback."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

EARTH_SEARCH_KEYS = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05", "rededge2": "B06",
    "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09", "swir16": "B11", "swir22": "B12",
    "scl": "SCL",
}
PC_KEYS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12", "SCL"]
T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_items(n: int, seed: int, style: str = "earth-search", collection: str = "s2") -> list[dict[str, Any]]:
    """Seeded STAC items with random footprints (some across the antimeridian), times and cloud cover."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        w = float(rng.uniform(-180, 180))
        width = float(rng.uniform(0.2, 3.0))
        e = w + width
        if e > 180:
            e -= 360  # crosses the antimeridian: west > east
        s = float(rng.uniform(-60, 75))
        nn = s + float(rng.uniform(0.2, 2.0))
        t = T0 + dt.timedelta(seconds=float(rng.uniform(0, 2 * 365 * 86400)))
        cloud = None if rng.random() < 0.1 else round(float(rng.uniform(0, 100)), 2)
        props: dict[str, Any] = {"datetime": iso(t), "eo:cloud_cover": cloud, "s2:processing_baseline": "05.09"}
        if i % 2:
            props["proj:epsg"] = 32600 + int(rng.integers(1, 61))
        else:
            props["proj:code"] = f"EPSG:{32700 + int(rng.integers(1, 61))}"
        if style == "earth-search":
            assets = {}
            for key, band in EARTH_SEARCH_KEYS.items():
                a = {"href": f"https://example.com/{i}/{band}.tif", "type": "image/tiff", "roles": ["data"]}
                if band != "SCL":
                    a["raster:bands"] = [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}]
                assets[key] = a
                assets[f"{key}-jp2"] = {"href": f"s3://jp2/{i}/{band}.jp2", "type": "image/jp2", "roles": ["data"]}
            assets["visual"] = {"href": f"https://example.com/{i}/TCI.tif", "roles": ["visual"],
                                "eo:bands": [{"name": "B04"}, {"name": "B03"}, {"name": "B02"}]}
        else:
            assets = {k: {"href": f"https://acct{i % 2}.blob.core.windows.net/cont{i % 3}/{i}/{k}.tif",
                          "type": "image/tiff", "roles": ["data"]} for k in PC_KEYS}
            assets["preview"] = {"href": "https://example.com/p.png", "roles": ["overview"]}
        items.append({
            "type": "Feature", "stac_version": "1.0.0", "stac_extensions": [], "id": f"{collection}-{i:04d}",
            "collection": collection, "bbox": [w, s, e, nn], "geometry": None, "properties": props,
            "assets": assets, "links": [],
        })
    return items


# ---------------------------------------------------------------------------------------------- brute force


def lon_intervals(w: float, e: float) -> list[tuple[float, float]]:
    return [(w, e)] if w <= e else [(w, 180.0), (-180.0, e)]


def brute_force(items: list[dict[str, Any]], bbox, start: dt.datetime, end: dt.datetime,
                max_cloud: float | None) -> list[str]:
    """Ids of items matching a query, by direct reading of the item dicts."""
    out = []
    qw, qs, qe, qn = bbox
    for it in items:
        w, s, e, n = it["bbox"]
        if n < qs or s > qn:
            continue
        if not any(a <= d and c <= b for a, b in lon_intervals(w, e) for c, d in lon_intervals(qw, qe)):
            continue
        t = dt.datetime.fromisoformat(it["properties"]["datetime"].replace("Z", "+00:00"))
        if not start <= t <= end:
            continue
        cc = it["properties"].get("eo:cloud_cover")
        if max_cloud is not None and (cc is None or cc > max_cloud):
            continue
        out.append(it["id"])
    return sorted(out)


def random_queries(n: int, seed: int) -> list[tuple[list[float], dt.datetime, dt.datetime, float | None]]:
    rng = np.random.default_rng(seed)
    qs = []
    for i in range(n):
        w = float(rng.uniform(-180, 180))
        e = w + float(rng.uniform(1, 60))
        if e > 180:
            e -= 360
        s = float(rng.uniform(-60, 60))
        t0 = T0 + dt.timedelta(days=float(rng.uniform(0, 600)))
        t1 = t0 + dt.timedelta(days=float(rng.uniform(5, 300)))
        cloud = [None, 10.0, 50.0, 100.0][i % 4]
        qs.append(([w, s, e, s + float(rng.uniform(1, 40))], t0, t1, cloud))
    return qs


# ---------------------------------------------------------------------------------------------- STAC API


@dataclass
class StacServer:
    """State of the loopback STAC API."""

    base: str = ""
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    conforms: list[str] = field(default_factory=list)
    log: list[tuple[str, str, Any]] = field(default_factory=list)
    token_calls: int = 0
    token_ttl_s: float = 3600.0
    token_fail: bool = False


def _collection(cid: str, item_assets: dict[str, Any] | None) -> dict[str, Any]:
    c = {"type": "Collection", "stac_version": "1.0.0", "id": cid, "description": cid, "license": "proprietary",
         "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[iso(T0), None]]}},
         "links": []}
    if item_assets is not None:
        c["item_assets"] = item_assets
    return c


def _filter(state: StacServer, params: dict[str, Any]) -> list[dict[str, Any]]:
    colls = params.get("collections") or list(state.items)
    feats = [it for c in colls for it in state.items.get(c, [])]
    ids = params.get("ids")  # a list (POST) or a comma-separated string (GET)
    if ids:
        wanted = set(ids.split(",") if isinstance(ids, str) else ids)
        feats = [it for it in feats if it["id"] in wanted]
    if params.get("bbox"):
        qw, qs, qe, qn = (float(v) for v in params["bbox"])
    else:
        qw, qs, qe, qn = -180.0, -90.0, 180.0, 90.0
    a, _, b = (params.get("datetime") or "../..").partition("/")
    t0 = dt.datetime.fromisoformat(a.replace("Z", "+00:00")) if a not in ("..", "") else None
    t1 = dt.datetime.fromisoformat(b.replace("Z", "+00:00")) if b not in ("..", "") else None
    lte = ((params.get("query") or {}).get("eo:cloud_cover") or {}).get("lte")
    out = []
    for it in feats:
        w, s, e, n = it["bbox"]
        if n < qs or s > qn:
            continue
        if not any(x <= d and c <= y for x, y in lon_intervals(w, e) for c, d in lon_intervals(qw, qe)):
            continue
        t = dt.datetime.fromisoformat(it["properties"]["datetime"].replace("Z", "+00:00"))
        if (t0 and t < t0) or (t1 and t > t1):
            continue
        cc = it["properties"].get("eo:cloud_cover")
        if lte is not None and (cc is None or cc > lte):
            continue
        out.append(it)
    return out


def _handler(state: StacServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _search(self, params: dict[str, Any], method: str) -> None:
            state.log.append((method, "/search", params))
            feats = _filter(state, params)
            limit = int(params.get("limit") or 10)
            start = int(params.get("token") or 0)
            page = feats[start : start + limit]
            links = []
            if start + limit < len(feats):
                if method == "POST":
                    links.append({"rel": "next", "href": f"{state.base}/search", "method": "POST",
                                  "body": {**params, "token": str(start + limit)}})
                else:
                    q = {k: (",".join(map(str, v)) if isinstance(v, list) else
                             (json.dumps(v) if isinstance(v, dict) else v)) for k, v in params.items()}
                    q["token"] = str(start + limit)
                    qs = "&".join(f"{k}={v}" for k, v in q.items())
                    links.append({"rel": "next", "href": f"{state.base}/search?{qs}", "method": "GET"})
            self._send(200, {"type": "FeatureCollection", "features": page, "links": links,
                             "numberMatched": len(feats)})

        def do_GET(self) -> None:  # noqa: N802
            u = urlparse(self.path)
            path = u.path.rstrip("/")
            if path == "":
                self._send(200, {
                    "type": "Catalog", "id": "loopback", "description": "test API", "stac_version": "1.0.0",
                    "conformsTo": state.conforms,
                    "links": [
                        {"rel": "self", "href": f"{state.base}/", "type": "application/json"},
                        {"rel": "root", "href": f"{state.base}/", "type": "application/json"},
                        {"rel": "data", "href": f"{state.base}/collections", "type": "application/json"},
                        {"rel": "search", "href": f"{state.base}/search", "type": "application/geo+json",
                         "method": "GET"},
                        {"rel": "search", "href": f"{state.base}/search", "type": "application/geo+json",
                         "method": "POST"},
                    ],
                })
            elif path == "/collections":
                self._send(200, {"collections": list(state.collections.values()), "links": []})
            elif path.startswith("/collections/"):
                cid = path.split("/")[2]
                if cid in state.collections:
                    self._send(200, state.collections[cid])
                else:
                    self._send(404, {"code": "NotFound", "description": f"collection {cid} not found"})
            elif path == "/search":
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                params: dict[str, Any] = dict(q)
                if "collections" in q:
                    params["collections"] = q["collections"].split(",")
                if "bbox" in q:
                    params["bbox"] = [float(v) for v in q["bbox"].split(",")]
                if "query" in q:
                    params["query"] = json.loads(q["query"])
                self._search(params, "GET")
            elif path.startswith("/api/sas/v1/token/"):
                state.token_calls += 1
                account, container = path.split("/")[-2:]
                state.log.append(("GET", "token", (account, container)))
                if state.token_fail:
                    self._send(500, {"detail": "boom"})
                    return
                exp = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=state.token_ttl_s)
                self._send(200, {"msft:expiry": iso(exp),
                                 "token": f"sv=2021&se=x&sr=c&sp=rl&sig=tok{state.token_calls}-{container}"})
            else:
                self._send(404, {"code": "NotFound"})

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            if urlparse(self.path).path.rstrip("/") == "/search":
                self._search(body, "POST")
            else:
                self._send(404, {"code": "NotFound"})

    return Handler


CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
]


@pytest.fixture
def stac_api():
    """A STAC API on 127.0.0.1 with collections ``s2`` (Earth Search style), ``pc`` (Planetary Computer style,
    blob hrefs), ``rgb`` (item_assets lacking most bands) and ``bare`` (no item_assets)."""
    state = StacServer(conforms=list(CONFORMS))
    state.items["s2"] = make_items(60, seed=1, style="earth-search", collection="s2")
    state.items["pc"] = make_items(12, seed=2, style="pc", collection="pc")
    state.items["bare"] = make_items(3, seed=3, style="earth-search", collection="bare")
    state.items["rgb"] = []
    es_assets = {k: {"type": "image/tiff", "roles": ["data"]} for k in EARTH_SEARCH_KEYS}
    state.collections = {
        "s2": _collection("s2", es_assets),
        "pc": _collection("pc", {k: {"type": "image/tiff", "roles": ["data"]} for k in PC_KEYS}),
        "rgb": _collection("rgb", {k: {"type": "image/tiff"} for k in ("red", "green", "blue")}),
        "bare": _collection("bare", None),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
