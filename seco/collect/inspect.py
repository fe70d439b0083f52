"""``seco catalog inspect``: what seco will do with one STAC item, band by band, before collecting anything.

The item comes from a JSON file (an Item, or a FeatureCollection holding it), an http(s) URL, or an id looked up
in a catalog (a preset, a STAC API URL or a stac-geoparquet file). The report names, per band, the provider's
asset key and href, the resolution, the DN shift harmonisation will apply and the rule of
:mod:`seco.radiometry.providers` that decided it; plus the scene's cloud cover, SCL presence, EPSG and
processing baseline, the assets seco ignores and every warning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seco.bands import BY_NAME, L1C, L2A
from seco.collect.scene import SCL, map_assets, scene_from_stac
from seco.errors import CatalogError, ConfigError, ReadError


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CatalogError(f"{where} is not JSON ({e}); give a STAC item (.json) or its URL") from e


def _pick(doc: Any, where: str, item_id: str | None) -> dict[str, Any]:
    """The item of a parsed document: an Item, or the one (or ``item_id``) feature of a FeatureCollection."""
    if not isinstance(doc, dict):
        raise CatalogError(f"{where} holds a JSON {type(doc).__name__}, not a STAC item")
    if doc.get("type") == "FeatureCollection" or "features" in doc:
        feats = [f for f in doc.get("features") or () if isinstance(f, dict)]
        if item_id is not None:
            feats = [f for f in feats if f.get("id") == item_id]
        if len(feats) != 1:
            ids = ", ".join(str(f.get("id")) for f in feats[:5])
            raise CatalogError(f"{where} holds {len(feats)} matching items ({ids}); name one with --id")
        return feats[0]
    if "assets" not in doc or "id" not in doc:
        raise CatalogError(f"{where} is not a STAC item (it has no 'id' and 'assets'); give an item's JSON")
    if item_id is not None and doc.get("id") != item_id:
        raise CatalogError(f"{where} is item {doc.get('id')!r}, not {item_id!r}")
    return doc


def load_item(source: str | None = None, *, item_id: str | None = None, catalog: str | None = None,
              collection: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """The STAC item dict to inspect.

    Args:
        source: a JSON file or an http(s) URL of an item (``None`` with ``item_id`` + ``catalog``).
        item_id: the item id (required with ``catalog``; with ``source``, picks a feature of a collection file).
        catalog: a preset (``earth-search``...), a STAC API URL or a stac-geoparquet file.
        collection: the collection searched in ``catalog`` (default ``sentinel-2-l2a`` for APIs).
        timeout: seconds per HTTP request.

    Raises:
        ConfigError: neither or both of ``source`` and ``catalog``; ``catalog`` without ``item_id``.
        CatalogError: unreadable, not an item, or not found.
    """
    if (source is None) == (catalog is None):
        raise ConfigError("give either an item (a JSON file or URL) or --id ID --catalog NAME, not both or neither")
    if source is not None:
        if source.startswith(("http://", "https://")):
            import requests

            try:
                r = requests.get(source, timeout=timeout, headers={"Accept": "application/geo+json, application/json"})
                r.raise_for_status()
            except requests.RequestException as e:
                raise CatalogError(f"cannot fetch {source} ({e}); check the URL and the network") from e
            return _pick(_load_json(r.text, source), source, item_id)
        path = Path(source)
        if not path.is_file():
            raise CatalogError(f"{source!r} is neither an http(s) URL nor an existing JSON file")
        return _pick(_load_json(path.read_text(), str(path)), str(path), item_id)
    assert catalog is not None
    if not item_id:
        raise ConfigError("--catalog needs --id ID (the item to inspect)")
    return _from_catalog(catalog, item_id, collection, timeout)


def _from_catalog(catalog: str, item_id: str, collection: str | None, timeout: float) -> dict[str, Any]:
    from seco.collect.catalog import DEFAULT_COLLECTION, PRESETS

    if catalog in PRESETS or catalog.startswith(("http://", "https://")):
        url = PRESETS[catalog].url if catalog in PRESETS else catalog
        coll = collection or DEFAULT_COLLECTION
        from pystac_client import Client
        from pystac_client.conformance import ConformanceClasses

        found: dict[str, Any] | None = None
        try:
            client = Client.open(url, timeout=timeout)
            if client.conforms_to(ConformanceClasses.ITEM_SEARCH):  # the item exactly as the API serves it
                hits = client.search(ids=[item_id], collections=[coll], max_items=2, method="GET")
                found = next((d for d in hits.items_as_dicts() if d.get("id") == item_id), None)
            else:
                client_coll = client.get_collection(coll)
                item = None if client_coll is None else client_coll.get_item(item_id)
                found = None if item is None else item.to_dict()
        except Exception as e:  # pystac-client raises APIError, requests and JSON errors alike
            raise CatalogError(f"cannot look up item {item_id!r} in collection {coll!r} at {url} "
                               f"({type(e).__name__}: {e})") from e
        if found is None:
            raise CatalogError(f"item {item_id!r} not found in collection {coll!r} at {url}")
        return found
    path = Path(catalog)
    if not path.exists():
        raise CatalogError(f"catalog {catalog!r} is neither a preset, an http(s) STAC API URL, nor a "
                           "stac-geoparquet file")
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    from seco.collect.catalog import _row_to_item

    try:
        expr = pc.field("id") == item_id
        if collection is not None:
            expr = expr & (pc.field("collection") == collection)
        rows = pads.dataset(path, format="parquet").to_table(filter=expr).to_pylist()
    except (pa.ArrowInvalid, OSError) as e:
        raise CatalogError(f"{path} is not a readable stac-geoparquet file ({e})") from e
    if len(rows) != 1:
        raise CatalogError(f"{len(rows)} items with id {item_id!r} in {path}; give an id from "
                           "`seco catalog search --catalog ...`")
    return _row_to_item(rows[0])


def _resolution(asset: dict[str, Any], index: int, band: str) -> tuple[float | None, str]:
    rb = asset.get("raster:bands")
    if isinstance(rb, list) and len(rb) >= index and isinstance(rb[index - 1], dict):
        r = rb[index - 1].get("spatial_resolution")
        if r is not None:
            return float(r), "raster:bands"
    if asset.get("gsd") is not None:
        return float(asset["gsd"]), "gsd"
    t = asset.get("proj:transform")
    if isinstance(t, list) and t:
        return abs(float(t[0])), "proj:transform"
    if band in BY_NAME:
        return float(BY_NAME[band].resolution_m), "band registry (not stated by the item)"
    return None, "unknown"


def inspect_item(item: dict[str, Any]) -> dict[str, Any]:
    """The inspection report of one STAC item dict (what ``seco catalog inspect --json`` prints).

    Raises:
        CatalogError: the item has no datetime or no bbox (seco cannot search it).
    """
    scene = scene_from_stac(item)
    raw_assets = item.get("assets") or {}
    mapping = map_assets(raw_assets)
    warnings: list[str] = []
    if not item.get("geometry"):
        warnings.append("the item has no geometry: searches use its bbox only")
    bands = []
    for band in (*L1C, SCL):
        if band not in mapping:
            continue
        key, index = mapping[band]
        asset = raw_assets[key]
        res, res_from = _resolution(asset, index, band)
        row: dict[str, Any] = {"band": band, "asset": key, "band_index": index, "href": asset.get("href"),
                               "resolution_m": res, "resolution_from": res_from}
        if band != SCL:
            from seco.collect.patches import shift_decision

            row["offset"] = scene.offsets.get(band)
            row["scale"] = scene.scales.get(band)
            try:
                d = shift_decision(scene, band)
                row.update(dn_shift=d.shift, rule=d.rule, warning=d.warning)
                if d.warning and d.warning not in warnings:
                    warnings.append(d.warning)
            except ReadError as e:
                row.update(dn_shift=None, rule="error", warning=str(e))
                warnings.append(f"band {band}: {e}")
        bands.append(row)
    used = {k for k, _ in mapping.values()}
    ignored = sorted(k for k in raw_assets if k not in used)
    have = {r["band"] for r in bands}
    missing_l2a = [b for b in L2A if b not in have]
    if missing_l2a:
        warnings.append(f"no asset for band(s) {', '.join(missing_l2a)} of the 12 L2A bands: collect with "
                        "--bands l2a would skip this scene")
    return {
        "id": scene.id, "collection": scene.collection, "provider": scene.provider,
        "datetime": scene.datetime.isoformat().replace("+00:00", "Z"), "cloud_cover": scene.cloud_cover,
        "epsg": scene.epsg, "processing_baseline": scene.processing_baseline,
        "boa_offset_applied": scene.boa_offset_applied, "scl": SCL in mapping, "bbox": list(scene.bbox),
        "bands": bands, "ignored_assets": ignored, "warnings": warnings,
    }


def format_report(rep: dict[str, Any]) -> str:
    """The report as the text ``seco catalog inspect`` prints."""
    cc = "?" if rep["cloud_cover"] is None else f"{rep['cloud_cover']:.1f} %"
    flag = rep["boa_offset_applied"]
    lines = [
        f"item {rep['id']}  provider {rep['provider']}  collection {rep['collection']}",
        f"  acquired {rep['datetime']}  cloud {cc}  EPSG:{rep['epsg'] or '?'}  "
        f"baseline {rep['processing_baseline'] or '?'}  "
        f"boa_offset_applied {'?' if flag is None else str(flag).lower()}  SCL {'yes' if rep['scl'] else 'no'}",
        f"  {'band':4}  {'asset':10} {'res m':>5}  {'shift':>5}  {'rule':44} href",
    ]
    for r in rep["bands"]:
        res = "?" if r["resolution_m"] is None else f"{r['resolution_m']:g}"
        shift = "" if r["band"] == SCL else ("err" if r.get("dn_shift") is None else str(r["dn_shift"]))
        rule = "" if r["band"] == SCL else str(r.get("rule"))
        lines.append(f"  {r['band']:4}  {r['asset'][:10]:10} {res:>5}  {shift:>5}  {rule:44} {r['href']}")
    if rep["ignored_assets"]:
        lines.append(f"  ignored assets: {', '.join(rep['ignored_assets'])}")
    for w in rep["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- Sentinel-1


def is_s1_item(item: dict[str, Any]) -> bool:
    """Whether a STAC item is Sentinel-1 (its collection, constellation, platform or ``sar:`` properties)."""
    from seco.collect.catalog import is_s1_collection

    props = item.get("properties") or {}
    return (is_s1_collection(item.get("collection")) or str(props.get("constellation", "")).lower() == "sentinel-1"
            or str(props.get("platform", "")).lower().startswith("sentinel-1")
            or any(str(k).startswith("sar:") for k in props))


def inspect_s1_item(item: dict[str, Any]) -> dict[str, Any]:
    """The inspection report of one Sentinel-1 STAC item: assets, product, mode, polarisations, orbit, platform
    and the rule ``seco collect --s1`` applies (or why it refuses the item)."""
    from seco.collect.s1scene import S1_BANDS, s1_assets, s1_from_stac
    from seco.radiometry.s1 import S1RuleError

    s1 = s1_from_stac(item)
    raw = item.get("assets") or {}
    pols = s1_assets(raw)
    warnings: list[str] = []
    try:
        r = s1.rule()
        rule: dict[str, Any] = {"rule": r.rule, "product": r.product, "quantity": r.quantity, "nodata": r.nodata,
                                "error": None}
    except S1RuleError as e:
        rule = {"rule": "refused", "product": None, "quantity": None, "nodata": None, "error": str(e)}
    if not s1.dual_vv_vh:
        warnings.append(f"mode {s1.mode or '?'} with {'+'.join(sorted(s1.assets)) or 'no'} polarisation assets: "
                        f"collect --s1 stores IW {'+'.join(S1_BANDS)} and passes this item over")
    if s1.properties.get("storage:requester_pays") or any(str(h).startswith("s3://sentinel-s1-l1c")
                                                           for h in s1.assets.values()):
        from seco.radiometry.s1 import requester_pays_error

        warnings.append(str(requester_pays_error(next(iter(s1.assets.values()), "the assets"))))
    assets = [{"polarization": p, "asset": k, "href": a.get("href")} for p, (k, a) in sorted(pols.items())]
    used = {k for k, _ in pols.values()}
    return {
        "id": s1.id, "sensor": "s1", "collection": s1.collection, "provider": s1.provider,
        "datetime": s1.datetime.isoformat().replace("+00:00", "Z"), "product_type": s1.product_type,
        "mode": s1.mode, "polarizations": list(s1.polarizations), "orbit_state": s1.orbit_state,
        "relative_orbit": s1.relative_orbit, "platform": s1.platform, "looks": s1.looks, "bbox": list(s1.bbox),
        "assets": assets, "ignored_assets": sorted(k for k in raw if k not in used), **rule, "warnings": warnings,
    }


def format_s1_report(rep: dict[str, Any]) -> str:
    """The S1 report as the text ``seco catalog inspect`` prints."""
    lines = [
        f"item {rep['id']}  provider {rep['provider']}  collection {rep['collection']}  sensor Sentinel-1",
        f"  acquired {rep['datetime']}  platform {rep['platform'] or '?'}  product {rep['product_type'] or '?'}  "
        f"mode {rep['mode'] or '?'}  polarisations {'+'.join(rep['polarizations']) or '?'}",
        f"  orbit {rep['orbit_state'] or '?'}  relative orbit {rep['relative_orbit'] if rep['relative_orbit'] is not None else '?'}"
        f"  looks {rep['looks'] if rep['looks'] is not None else '?'}",
        f"  rule {rep['rule']}" + (f" ({rep['quantity']} linear power -> dB, nodata {rep['nodata']})"
                                   if rep['error'] is None else ""),
        f"  {'pol':4}  {'asset':12} href",
    ]
    lines += [f"  {a['polarization']:4}  {a['asset'][:12]:12} {a['href']}" for a in rep["assets"]]
    if rep["ignored_assets"]:
        lines.append(f"  ignored assets: {', '.join(rep['ignored_assets'])}")
    if rep["error"]:
        lines.append(f"  refused: {rep['error']}")
    lines += [f"  warning: {w}" for w in rep["warnings"]]
    return "\n".join(lines)
