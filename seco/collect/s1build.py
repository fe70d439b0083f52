"""Indexing Sentinel-1 RTC COGs of a local folder (``seco catalog build``): one item per scene.

A scene is the files ``<prefix>_vv.tif`` and ``<prefix>_vh.tif`` (also ``_hh``/``_hv``; ``-``/``.`` separators)
of one folder: float32 **linear** gamma0 in a map projection (RTC), as ``seco synth`` writes them and as
Planetary Computer RTC COGs are. The acquisition time and the geometry come from a sidecar (``<prefix>.json``
or ``metadata.json``: ``datetime``, ``platform``, ``sar:instrument_mode``, ``sar:polarizations``,
``sat:orbit_state``, ``sat:relative_orbit``, ``sar:looks_equivalent_number``; every ``sar:``/``sat:`` key is
copied), else the time from a sensing time in the name. An item without the orbit metadata is still indexed;
``seco catalog inspect`` and ``seco collect --s1`` then name what it lacks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seco.collect.geo import open_raster

S1_COLLECTION = "sentinel-1-rtc"
_S1_TOKEN = re.compile(r"(?i)[_\-.](vv|vh|hh|hv)$")


def s1_polarization(path: Path) -> str | None:
    """The polarisation a file name ends with (``scene_vv.tif`` -> ``vv``), else ``None``."""
    m = _S1_TOKEN.search(path.stem)
    return m.group(1).lower() if m else None


def _read(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    import rasterio
    from rasterio.warp import transform_bounds

    try:
        src = open_raster(path)
        with src:
            if src.crs is None:
                return None, "no CRS (GRD in radar geometry?); index map-projected RTC COGs"
            if src.count != 1 or src.dtypes[0] != "float32":
                return None, (f"{src.count} band(s) of {src.dtypes[0]}: an S1 RTC file holds one float32 band "
                              "of linear power")
            w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
            return {"epsg": src.crs.to_epsg(), "bbox": (w, s, e, n), "shape": [src.height, src.width],
                    "transform": list(src.transform)[:6], "nodata": src.nodata}, None
    except rasterio.errors.RasterioError as e:
        return None, f"unreadable ({e})"


def s1_items(files: list[Path], root: Path, collection: str | None, *, sidecar: Callable[..., Any],
             scene_time: Callable[..., Any], union: Callable[..., Any]
             ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """STAC items of the S1 files (see the module docstring) and the skipped files with the reason.

    ``sidecar``, ``scene_time`` and ``union`` are :mod:`seco.collect.build`'s (the sidecar and time rules are
    the same for both sensors; passed in so that imports go one way).
    """
    coll = collection if collection and collection.lower().startswith(("sentinel-1", "sentinel1")) else S1_COLLECTION
    groups: dict[tuple[Path, str], dict[str, tuple[Path, dict[str, Any]]]] = {}
    skipped: list[tuple[str, str]] = []
    for f in files:
        pol = s1_polarization(f)
        assert pol is not None
        info, why = _read(f)
        if why or info is None:
            skipped.append((str(f), why or "unreadable"))
            continue
        prefix = _S1_TOKEN.sub("", f.stem).rstrip("_-. ")
        groups.setdefault((f.parent, prefix), {})[pol] = (f, info)
    items = []
    for (folder, prefix), pols in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        side = sidecar(folder, prefix) or {}
        when, _ = scene_time(folder, prefix, side)
        if when is None:
            skipped.append((str(folder / prefix), "no acquisition date: add a sidecar <prefix>.json with "
                                                  "{\"datetime\": ...}"))
            continue
        rel = folder.relative_to(root).parts
        iid = re.sub(r"[^A-Za-z0-9_.\-]+", "-", "_".join([*rel, prefix]) or root.name)
        props = {k: v for k, v in side.items() if str(k).startswith(("sar:", "sat:"))}
        props.update(datetime=when.isoformat(), platform=side.get("platform"), constellation="sentinel-1",
                     **{"proj:epsg": next(iter(pols.values()))[1]["epsg"]})
        props.setdefault("sar:polarizations", [p.upper() for p in ("vv", "vh", "hh", "hv") if p in pols])
        assets = {p: {"href": str(f.resolve()), "type": "image/tiff; application=geotiff", "roles": ["data"],
                      "proj:epsg": i["epsg"], "proj:shape": i["shape"], "proj:transform": i["transform"],
                      "raster:bands": [{"data_type": "float32", "nodata": i["nodata"]}]}
                  for p, (f, i) in sorted(pols.items())}
        items.append({"type": "Feature", "stac_version": "1.0.0", "id": iid, "collection": coll,
                      "bbox": union([i["bbox"] for _, i in pols.values()]), "geometry": None, "properties": props,
                      "assets": assets, "links": []})
    return items, skipped
