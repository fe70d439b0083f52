"""Geodesy and geometry helpers for sampling and catalogs: spherical distances, tangent-plane offsets,
WKB encoding, GeoParquet metadata, and the bundled land mask.

Positions are WGS84 longitude/latitude in degrees, treated on a sphere of radius ``EARTH_RADIUS_KM``
(the mean radius); the error against the ellipsoid (< 0.5 %) is irrelevant at sampling scales.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from seco.errors import ConfigError

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius

#: PROJJSON of OGC:CRS84 (WGS84 longitude/latitude), the GeoParquet default CRS, written out explicitly.
CRS84_PROJJSON: dict[str, Any] = {
    "$schema": "https://proj.org/schemas/v0.7/projjson.schema.json",
    "type": "GeographicCRS",
    "name": "WGS 84 (CRS84)",
    "datum_ensemble": {
        "name": "World Geodetic System 1984 ensemble",
        "members": [
            {"name": "World Geodetic System 1984 (Transit)"},
            {"name": "World Geodetic System 1984 (G730)"},
            {"name": "World Geodetic System 1984 (G873)"},
            {"name": "World Geodetic System 1984 (G1150)"},
            {"name": "World Geodetic System 1984 (G1674)"},
            {"name": "World Geodetic System 1984 (G1762)"},
            {"name": "World Geodetic System 1984 (G2139)"},
        ],
        "ellipsoid": {"name": "WGS 84", "semi_major_axis": 6378137, "inverse_flattening": 298.257223563},
        "accuracy": "2.0",
        "id": {"authority": "EPSG", "code": 6326},
    },
    "coordinate_system": {
        "subtype": "ellipsoidal",
        "axis": [
            {"name": "Geodetic longitude", "abbreviation": "Lon", "direction": "east", "unit": "degree"},
            {"name": "Geodetic latitude", "abbreviation": "Lat", "direction": "north", "unit": "degree"},
        ],
    },
    "scope": "Not known.",
    "area": "World.",
    "bbox": {"south_latitude": -90, "west_longitude": -180, "north_latitude": 90, "east_longitude": 180},
    "id": {"authority": "OGC", "code": "CRS84"},
}

GEOPARQUET_VERSION = "1.1.0"


def resource_path(name: str) -> Any:
    """A bundled file under ``seco/resources`` (an importlib Traversable)."""
    return importlib.resources.files("seco").joinpath("resources", name)


# ---------------------------------------------------------------------------------------------- geodesy


def wrap_lon(lon: np.ndarray) -> np.ndarray:
    """Longitudes folded into [-180, 180)."""
    return (np.asarray(lon, dtype=np.float64) + 180.0) % 360.0 - 180.0


def haversine_km(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> np.ndarray:
    """Great-circle distance in km (broadcasting)."""
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dp = p2 - p1
    dl = np.deg2rad(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def offset_to_lonlat(lon0: Any, lat0: Any, east_km: Any, north_km: Any) -> tuple[np.ndarray, np.ndarray]:
    """Map tangent-plane offsets (km east, km north) at a centre to lon/lat (azimuthal equidistant inverse).

    The offset vector's length is the great-circle distance travelled and its direction the initial bearing,
    so an isotropic distribution on the tangent plane stays isotropic on the ground at any latitude
    (unlike adding ``km / 111`` to both degrees, which stretches east-west spreads by ``1 / cos(lat)``).
    """
    lat0r = np.deg2rad(lat0)
    d = np.hypot(east_km, north_km) / EARTH_RADIUS_KM  # angular distance
    theta = np.arctan2(east_km, north_km)  # bearing clockwise from north
    sin_lat = np.sin(lat0r) * np.cos(d) + np.cos(lat0r) * np.sin(d) * np.cos(theta)
    lat = np.arcsin(np.clip(sin_lat, -1.0, 1.0))
    dlon = np.arctan2(np.sin(theta) * np.sin(d) * np.cos(lat0r), np.cos(d) - np.sin(lat0r) * sin_lat)
    return wrap_lon(np.asarray(lon0) + np.rad2deg(dlon)), np.rad2deg(lat)


def lonlat_to_offset(lon0: Any, lat0: Any, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`offset_to_lonlat`: (km east, km north) of points seen from a centre."""
    lat0r, latr = np.deg2rad(lat0), np.deg2rad(lat)
    dl = np.deg2rad(np.asarray(lon) - np.asarray(lon0))
    d = haversine_km(lon0, lat0, lon, lat) / EARTH_RADIUS_KM
    theta = np.arctan2(np.sin(dl) * np.cos(latr), np.cos(lat0r) * np.sin(latr) - np.sin(lat0r) * np.cos(latr) * np.cos(dl))
    r = d * EARTH_RADIUS_KM
    return r * np.sin(theta), r * np.cos(theta)


def unit_vectors(lon: Any, lat: Any) -> np.ndarray:
    """(N, 3) unit vectors on the sphere (earth-centred, earth-fixed directions)."""
    lo, la = np.deg2rad(lon), np.deg2rad(lat)
    c = np.cos(la)
    return np.stack([c * np.cos(lo), c * np.sin(lo), np.sin(la)], axis=-1)


def chord_for_km(km: float) -> float:
    """Chord length on the unit sphere of a great-circle distance in km."""
    return 2.0 * np.sin(min(km / EARTH_RADIUS_KM, np.pi) / 2.0)


# ---------------------------------------------------------------------------------------------- WKB


def wkb_points(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Little-endian 2D WKB points for every (lon, lat), as (offsets (N+1,) int32, data bytes as uint8)."""
    n = len(lon)
    rec = np.empty(n, dtype=[("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    rec["order"], rec["type"], rec["x"], rec["y"] = 1, 1, lon, lat
    return np.arange(n + 1, dtype=np.int32) * 21, rec.view(np.uint8)


def wkb_polygon(ring: list[tuple[float, float]]) -> bytes:
    """Little-endian WKB of a polygon with one (closed) exterior ring."""
    if ring[0] != ring[-1]:
        ring = [*ring, ring[0]]
    out = struct.pack("<BII", 1, 3, 1) + struct.pack("<I", len(ring))
    return out + b"".join(struct.pack("<dd", x, y) for x, y in ring)


def wkb_point_xy(blob: bytes) -> tuple[float, float]:
    """(x, y) of a 2D WKB point (either byte order)."""
    order = "<" if blob[0] == 1 else ">"
    (gtype,) = struct.unpack(order + "I", blob[1:5])
    if gtype % 1000 != 1:
        raise ValueError(f"WKB geometry type {gtype} is not a point")
    return struct.unpack(order + "dd", blob[5:21])


def geo_metadata(column: str, geometry_types: list[str], bbox: list[float] | None,
                 covering_bbox: str | None = None) -> bytes:
    """GeoParquet 1.1.0 ``geo`` file metadata for one WKB column in OGC:CRS84."""
    col: dict[str, Any] = {"encoding": "WKB", "geometry_types": geometry_types, "crs": CRS84_PROJJSON}
    if bbox is not None:
        col["bbox"] = [float(v) for v in bbox]
    if covering_bbox is not None:
        col["covering"] = {"bbox": {k: [covering_bbox, k] for k in ("xmin", "ymin", "xmax", "ymax")}}
    meta = {"version": GEOPARQUET_VERSION, "primary_column": column, "columns": {column: col}}
    return json.dumps(meta).encode("utf-8")


# ---------------------------------------------------------------------------------------------- land mask


@dataclass(frozen=True)
class LandMask:
    """A global boolean land grid in plate carrée, row 0 at the north edge.

    Attributes:
        land: (rows, cols) bool.
        resolution_deg: cell size in degrees.
        source: provenance text.
    """

    land: np.ndarray
    resolution_deg: float
    source: str

    def contains(self, lon: Any, lat: Any) -> np.ndarray:
        """True where (lon, lat) falls in a land cell (broadcasting)."""
        rows, cols = self.land.shape
        r = np.clip(((90.0 - np.asarray(lat, dtype=np.float64)) / self.resolution_deg).astype(np.int64), 0, rows - 1)
        c = np.floor((wrap_lon(lon) + 180.0) / self.resolution_deg).astype(np.int64) % cols
        return self.land[r, c]

    def cell_lat_centres(self) -> np.ndarray:
        """(rows,) latitude of each row's centre."""
        return 90.0 - (np.arange(self.land.shape[0]) + 0.5) * self.resolution_deg

    def land_area_fraction(self, lat_min: float = -90.0, lat_max: float = 90.0) -> float:
        """Share of the sphere's area between two latitudes that is land (cell-centre rule)."""
        lat = self.cell_lat_centres()
        sel = (lat >= lat_min) & (lat <= lat_max)
        w = np.cos(np.deg2rad(lat[sel]))
        return float((self.land[sel].mean(axis=1) * w).sum() / w.sum())


@functools.lru_cache(maxsize=1)
def load_land_mask() -> LandMask:
    """The bundled 0.1 degree GLOBE-derived land mask (see ``seco/resources/README.md``)."""
    with importlib.resources.as_file(resource_path("land_mask.npz")) as path:
        if not path.exists():
            raise ConfigError(f"bundled land mask {path} is missing; rebuild it with scripts/make_landmask.py")
        with np.load(path) as z:
            rows, cols = int(z["rows"]), int(z["cols"])
            land = np.unpackbits(z["bits"], axis=1, count=cols).astype(bool)
            if land.shape != (rows, cols):
                raise ConfigError(f"land mask {path} has shape {land.shape}, expected {(rows, cols)}; rebuild it")
            mask = LandMask(land=land, resolution_deg=float(z["resolution_deg"]), source=str(z["source"]))
    mask.land.setflags(write=False)
    return mask


def open_raster(path: Any) -> Any:
    """``rasterio.open(path)`` with GDAL's not-georeferenced warning silenced: the caller decides what a raster
    without a CRS means (a GRD in radar geometry, a file to skip) and says so in its own words."""
    import warnings

    import rasterio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(path)
