"""UTM coordinates and Sentinel-2 (MGRS) tile names for the simulated acquisition metadata, without PROJ."""

from __future__ import annotations

import math

_A = 6378137.0  # WGS 84 semi-major axis
_F = 1 / 298.257223563
_K0 = 0.9996
_N = _F / (2 - _F)
_AA = _A / (1 + _N) * (1 + _N**2 / 4 + _N**4 / 64)
_ALPHA = (
    _N / 2 - 2 * _N**2 / 3 + 5 * _N**3 / 16,
    13 * _N**2 / 48 - 3 * _N**3 / 5,
    61 * _N**3 / 240,
)
_LAT_BANDS = "CDEFGHJKLMNPQRSTUVWX"
_COL_SETS = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")  # by zone % 3
_ROWS = "ABCDEFGHJKLMNPQRSTUV"


def utm_zone(lat: float, lon: float) -> int:
    """UTM zone number, with the Norway and Svalbard exceptions."""
    if 56 <= lat < 64 and 3 <= lon < 12:
        return 32
    if 72 <= lat < 84 and 0 <= lon < 42:
        return 31 if lon < 9 else 33 if lon < 21 else 35 if lon < 33 else 37
    return int((lon + 180) // 6) % 60 + 1


def utm_epsg(lat: float, lon: float) -> int:
    """EPSG code of the WGS 84 / UTM zone holding the point (326xx north, 327xx south)."""
    return (32600 if lat >= 0 else 32700) + utm_zone(lat, lon)


def to_utm(lat: float, lon: float, zone: int | None = None) -> tuple[float, float]:
    """(easting, northing) in metres (Krüger series, mm accuracy within the zone)."""
    zone = utm_zone(lat, lon) if zone is None else zone
    phi = math.radians(lat)
    dlam = math.radians(lon - (6 * zone - 183))
    c = 2 * math.sqrt(_N) / (1 + _N)
    t = math.sinh(math.atanh(math.sin(phi)) - c * math.atanh(c * math.sin(phi)))
    xi = math.atan2(t, math.cos(dlam))
    eta = math.atanh(math.sin(dlam) / math.sqrt(1 + t * t))
    e = eta + sum(a * math.cos(2 * j * xi) * math.sinh(2 * j * eta) for j, a in enumerate(_ALPHA, 1))
    n = xi + sum(a * math.sin(2 * j * xi) * math.cosh(2 * j * eta) for j, a in enumerate(_ALPHA, 1))
    return 500000.0 + _K0 * _AA * e, (0.0 if lat >= 0 else 10000000.0) + _K0 * _AA * n


def mgrs_tile(lat: float, lon: float) -> str:
    """The Sentinel-2 tile name (MGRS 100 km square), e.g. ``33UXP`` for Vienna."""
    zone = utm_zone(lat, lon)
    e, n = to_utm(lat, lon, zone)
    band = _LAT_BANDS[min(max(int((lat + 80) // 8), 0), len(_LAT_BANDS) - 1)]
    col = _COL_SETS[zone % 3][min(max(int(e // 100000) - 1, 0), 7)]
    row = _ROWS[(int(n // 100000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{col}{row}"
