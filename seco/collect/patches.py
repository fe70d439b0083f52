"""Windowed patch reads from Sentinel-2 band assets (COGs, local or over HTTP) onto one 10 m grid.

**Grid.** A patch lives on the grid of the scene's bands at ``resolution`` metres (the 10 m bands B02, B03,
B04, B08 by default), in the scene's own CRS (UTM for Sentinel-2 tiles): the requested lon/lat is projected
into that CRS (``rasterio.warp.transform``, i.e. PROJ), the ``size_px`` x ``size_px`` window centred there is
snapped to whole pixels of the grid, and it must lie entirely inside the raster, else
:class:`PatchOutsideScene`. Scenes of one tile share the grid, so a location read at several dates gives
pixel-aligned patches.

**Alignment (native-resolution stores).** With ``align=k`` the window origin (``col0``, ``row0``, counted
from the reference raster's origin) is moved to the nearest multiple of ``k`` pixels (ties upwards). The
20 m and 60 m rasters of a Sentinel-2 tile share the tile's origin, so with ``k = 6`` (``k = 2`` without 60 m
bands) every 20 m band arrives as whole 2 x 2 blocks and every 60 m band as whole 6 x 6 blocks counted from
the patch origin: what a native-resolution store (``seco collect --grid native``) keeps once per source
pixel. The patch centre then moves by at most ``k / 2`` pixels per axis from the requested point (30 m for
``k = 6``); ``Patch.lon``, ``lat``, ``transform`` and ``bbox`` are always those of the patch actually read.
``align=1`` is the plain nearest-pixel window. Grids that do not nest (non-Sentinel-2 assets, OSCD's
EPSG:4326 rasters) gain nothing from it; the native store's writer refuses their patches
(:class:`seco.store.packing.NotNativeError`).

**Resampling.** Every band is sampled at the centres of the patch pixels by nearest neighbour: a 20 m band
on a nested grid has each source pixel repeated 2 x 2 (60 m: 6 x 6), exactly aligned with the 10 m pixels
it covers; the same rule works for grids that do not nest (e.g. OSCD's EPSG:4326 rasters). Only the source
window covering the patch is read, so a COG delivers just the tiles it touches. The SCL (20 m) is sampled
the same way.

**Harmonisation.** Since processing baseline 04.00 (25 January 2022) Sentinel-2 DN carry an offset of -1000
(``reflectance = (DN - 1000) / 10000``). With ``harmonize=True`` every band is returned on the older scale,
``DN' = DN + shift``, so one reflectance has one DN across the whole archive. The shift of each band is decided
by the provider rules of :mod:`seco.radiometry.providers` from the item's own metadata (Earth Search's
``earthsearch:boa_offset_applied``, ``raster:bands`` offset/scale, ``s2:processing_baseline``, the collection and
the provider); :func:`shift_decision` returns it with the name of the rule. Valid pixels are clipped at 1 after
the shift (0 stays the nodata value), so dark water under the offset does not turn into nodata.
``Patch.dn_shift`` and ``Patch.dn_rule`` record what was applied per band and why; ``Patch.warnings`` what the
metadata could not decide.

**HTTP.** Hrefs starting with ``http(s)://`` are read through GDAL's ``/vsicurl/`` with range requests.
:data:`GDAL_ENV` (overridable per call with ``gdal_env``) avoids directory listings, reads the COG header
in one request, merges and parallelises the tile ranges, caches per file handle, and retries 429/5xx
responses with back-off (``GDAL_HTTP_MAX_RETRY``, ``GDAL_HTTP_RETRY_DELAY``). ``GDAL_CACHEMAX`` (GDAL's block
cache, process-wide; rasterio sets it when the environment is entered) is 128 MiB: patches never share
tiles, and GDAL's default (5 % of RAM) would let the resident memory of a long collection grow for nothing.

**Errors.** A missing asset, a missing, unreadable, corrupt or truncated file, or an asset that is not
Sentinel-2 DN raises :class:`~seco.errors.ReadError` naming the href and the cause (collect records it and
tries the next scene); :class:`TransientReadError` (a ReadError) marks timeouts, refused connections and
HTTP 429/5xx that survived GDAL's retries (worth retrying later). GDAL remembers a failed URL for the rest
of the process, so a failed remote href is dropped from GDAL's cache (:func:`clear_http_cache`) before the
error is raised: a later retry really goes back to the server.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seco.bands import BY_NAME, L1C, L2A, parse_bands
from seco.collect.geo import open_raster
from seco.collect.scene import SCL, SceneItem
from seco.errors import CollectError, ConfigError, ReadError
from seco.radiometry.providers import ShiftDecision, decide_shift

#: GDAL configuration used around every read (see the module docstring).
GDAL_ENV: dict[str, str | int] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_INGESTED_BYTES_AT_OPEN": "32768",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(4 * 2**20),
    "GDAL_CACHEMAX": 128 * 2**20,  # bytes (rasterio passes an int to GDALSetCacheMax64)
    "GDAL_HTTP_MAX_RETRY": "4",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_TIMEOUT": "30",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
}
RESOLUTIONS = (10, 20, 60)
_TRANSIENT = re.compile(r"(?i)(HTTP (response )?code:? *(429|5\d\d))|timed? ?out|timeout|connection (refused|reset)"
                        r"|could not resolve|couldn't connect|failed to connect")


class PatchOutsideScene(CollectError):
    """The patch window is not entirely inside the scene raster (try another scene or location)."""


class TransientReadError(ReadError):
    """A read that failed on a timeout, a refused connection or HTTP 429/5xx after GDAL's retries."""


@dataclass(frozen=True, eq=False)
class Patch:
    """One patch of one scene on the 10 m grid (arrays are read-only).

    Attributes:
        data: (C, H, W) uint16 DN, harmonised when read with ``harmonize=True``; 0 = nodata.
        bands: band names of the channel axis.
        scl: (H, W) uint8 scene classification, ``None`` when the scene has none (L1C) or it was not asked.
        crs: EPSG code of the grid (the scene's CRS).
        transform: affine ``(a, b, c, d, e, f)`` of the patch grid: ``x = a*col + b*row + c``,
            ``y = d*col + e*row + f``.
        bbox: (left, bottom, right, top) of the patch in the scene CRS.
        nodata_fraction: share of pixels where any band is 0 or the SCL is 0.
        item_id: STAC item id of the scene.
        datetime: acquisition time (UTC).
        lon: longitude of the patch centre (WGS84 degrees; within half a pixel of the requested point, within
            ``align / 2`` pixels per axis when read with ``align``).
        lat: latitude of the patch centre.
        dn_shift: per band, the DN added by harmonisation (e.g. -1000), 0 when none.
        dn_rule: per band, the name of the rule that decided the shift (``"off"`` when not harmonised).
        warnings: what the radiometry rules could not decide from the metadata (one line each, deduplicated).
    """

    data: np.ndarray = field(repr=False)
    bands: tuple[str, ...]
    scl: np.ndarray | None = field(repr=False)
    crs: int
    transform: tuple[float, float, float, float, float, float]
    bbox: tuple[float, float, float, float]
    nodata_fraction: float
    item_id: str
    datetime: dt.datetime
    lon: float
    lat: float
    dn_shift: tuple[int, ...] = ()
    dn_rule: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        c, h, w = self.data.shape
        return c, h, w

    def meta(self, cloud_fraction: float) -> dict[str, Any]:
        """The store's per-date metadata (``seco.store.schema.DATE_FIELDS`` and ``RADIOMETRY_FIELDS``).

        Args:
            cloud_fraction: the patch's cloud fraction (:func:`seco.collect.cloud.cloud_fraction`, or the
                scene's figure where the patch cannot tell).
        """
        return {
            "item_id": self.item_id, "datetime": self.datetime, "cloud_fraction": float(cloud_fraction),
            "nodata_fraction": self.nodata_fraction, "crs": f"EPSG:{self.crs}", "transform": self.transform,
            "lat": self.lat, "lon": self.lon,
            # the radiometry record (optional store fields): what harmonisation did, and which rule said so
            "dn_shift": self.dn_shift or None, "dn_rule": ";".join(dict.fromkeys(self.dn_rule)) or None,
            "dn_warning": "; ".join(self.warnings) or None,
        }


# ---------------------------------------------------------------------------------------------- harmonisation


def shift_decision(item: SceneItem, band: str) -> ShiftDecision:
    """The harmonisation of ``band`` of ``item`` and the rule that decided it (:mod:`seco.radiometry.providers`).

    Raises:
        ReadError: a ``raster:bands`` scale other than 0.0001, or a malformed processing baseline.
    """
    return decide_shift(
        item_id=item.id, band=band, provider=item.provider, collection=item.collection,
        processing_baseline=item.processing_baseline, boa_offset_applied=item.boa_offset_applied,
        offset=item.offsets.get(band), scale=item.scales.get(band), datetime=item.datetime,
    )


def dn_shift(item: SceneItem, band: str) -> int:
    """The DN to add to ``band`` of ``item`` so that ``reflectance = DN / 10000`` (:func:`shift_decision`)."""
    return shift_decision(item, band).shift


def harmonize_dn(data: np.ndarray, shift: int) -> np.ndarray:
    """Add ``shift`` to the valid (non-zero) DN of a uint16 array, clipping valid pixels to 1..65535."""
    if shift == 0:
        return data
    out = data.astype(np.int32) + shift
    np.clip(out, 1, 65535, out=out)
    out[data == 0] = 0
    return out.astype(np.uint16)


# ---------------------------------------------------------------------------------------------- reading


def _is_transient(cause: str) -> bool:
    return bool(_TRANSIENT.search(cause))


_VSI_PREFIXES = (("http://", "/vsicurl/http://"), ("https://", "/vsicurl/https://"), ("s3://", "/vsis3/"),
                 ("gs://", "/vsigs/"), ("az://", "/vsiaz/"))


@functools.lru_cache(maxsize=1)
def _gdal_library() -> Any:
    """The GDAL shared library rasterio loaded (found in /proc/self/maps), or None."""
    import rasterio  # noqa: F401  (loads libgdal)

    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({ln.split()[-1] for ln in fh if "/libgdal" in ln})
    except OSError:
        paths = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.VSICurlPartialClearCache.argtypes = [ctypes.c_char_p]
            lib.VSICurlPartialClearCache.restype = None
            return lib
        except (OSError, AttributeError):
            continue
    return None


def clear_http_cache(href: str) -> bool:
    """Forget what GDAL cached about a remote href (including a failure), so the next read asks the server.

    Returns:
        True when the cache was cleared; False for a local path or when GDAL's library cannot be reached
        (then a failed URL stays failed until the process ends).
    """
    for scheme, prefix in _VSI_PREFIXES:
        if href.startswith(scheme):
            lib = _gdal_library()
            if lib is None:
                return False
            lib.VSICurlPartialClearCache((prefix + href[len(scheme):]).encode("utf-8"))
            return True
    if href.startswith("/vsi"):
        lib = _gdal_library()
        if lib is not None:
            lib.VSICurlPartialClearCache(href.encode("utf-8"))
            return True
    return False


def _read_error(item: SceneItem, band: str, href: str, e: BaseException) -> ReadError:
    cause = f"{type(e).__name__}: {e}".strip()
    clear_http_cache(href)
    cls = TransientReadError if _is_transient(cause) else ReadError
    return cls(f"cannot read band {band} of item {item.id!r} from {href} ({cause}); the asset is missing, "
               "corrupt, truncated or unreachable: skip this scene (collect records it) or fix the file")


class _Sources:
    """Datasets of one item, opened on first use and closed together."""

    def __init__(self, item: SceneItem):
        self.item = item
        self._open: dict[str, Any] = {}

    def get(self, band: str) -> Any:

        href = self.item.assets[band]
        if href not in self._open:
            try:
                self._open[href] = open_raster(href)
            except _rasterio_errors() as e:
                raise _read_error(self.item, band, href, e) from e
        return self._open[href]

    def close(self) -> None:
        for ds in self._open.values():
            ds.close()
        self._open.clear()


def _rasterio_errors() -> tuple[type[BaseException], ...]:
    import rasterio.errors
    from rasterio._err import CPLE_BaseError

    return (rasterio.errors.RasterioError, CPLE_BaseError, OSError)


def _reference(item: SceneItem, names: Sequence[str], resolution: int) -> tuple[str, float]:
    """The band whose grid (scaled by the returned factor) is the patch grid."""
    have = [b for b in dict.fromkeys((*names, *L1C)) if b in item.assets]
    for b in have:
        if BY_NAME[b].resolution_m == resolution:
            return b, 1.0
    if not have:
        raise ReadError(f"item {item.id!r} has no band assets ({', '.join(item.assets) or 'none'})")
    finest = min(have, key=lambda b: BY_NAME[b].resolution_m)
    return finest, resolution / BY_NAME[finest].resolution_m


def _axis_aligned(t: Any, item: SceneItem, band: str) -> None:
    if t.b != 0 or t.d != 0 or t.a == 0 or t.e == 0:
        raise ReadError(f"band {band} of item {item.id!r} has a rotated or degenerate geotransform {tuple(t)[:6]}; "
                        "only north-up rasters are supported")


def _sample(ds: Any, bidx: int, xs: np.ndarray, ys: np.ndarray, item: SceneItem, band: str,
            lonlat: tuple[float, float]) -> np.ndarray:
    href = item.assets[band]
    """Nearest-neighbour values of band ``bidx`` of ``ds`` at the pixel centres ``xs`` (W,), ``ys`` (H,)."""
    from rasterio.windows import Window

    t = ds.transform
    _axis_aligned(t, item, band)
    ci = np.floor((xs - t.c) / t.a).astype(np.int64)  # (W,)
    ri = np.floor((ys - t.f) / t.e).astype(np.int64)  # (H,)
    c0, c1, r0, r1 = int(ci.min()), int(ci.max()), int(ri.min()), int(ri.max())
    if c0 < 0 or r0 < 0 or c1 >= ds.width or r1 >= ds.height:
        raise PatchOutsideScene(
            f"patch at lon {lonlat[0]:.5f}, lat {lonlat[1]:.5f} needs rows {r0}..{r1}, cols {c0}..{c1} of band "
            f"{band} of item {item.id!r}, which has {ds.height} x {ds.width}; choose a scene covering it"
        )
    if bidx > ds.count:
        raise ReadError(f"band {band} of item {item.id!r} is band {bidx} of {href}, which has {ds.count}")
    try:
        arr = ds.read(bidx, window=Window(c0, r0, c1 - c0 + 1, r1 - r0 + 1))  # (h, w)
    except _rasterio_errors() as e:
        raise _read_error(item, band, href, e) from e
    if arr.shape != (len(ri), len(ci)) or not (
            np.array_equal(ci, np.arange(c0, c0 + len(ci))) and np.array_equal(ri, np.arange(r0, r0 + len(ri)))):
        arr = arr[np.ix_(ri - r0, ci - c0)]
    nod = ds.nodatavals[bidx - 1]
    if nod is not None and not math.isnan(nod) and nod != 0:
        arr = np.where(arr == nod, 0, arr)
    return arr


def snap(index: int, align: int) -> int:
    """The multiple of ``align`` nearest to ``index`` (ties upwards): moves it by at most ``align / 2``."""
    return ((2 * index + align) // (2 * align)) * align


def _project(lon: float, lat: float, crs: Any) -> tuple[float, float]:
    from rasterio.warp import transform

    xs, ys = transform("EPSG:4326", crs, [lon], [lat])
    return float(xs[0]), float(ys[0])


def _unproject(x: float, y: float, crs: Any) -> tuple[float, float]:
    from rasterio.warp import transform

    lons, lats = transform(crs, "EPSG:4326", [x], [y])
    return float(lons[0]), float(lats[0])


def _check_read_args(size_px: Any, resolution: int, align: Any, lon: float, lat: float) -> None:
    if isinstance(size_px, bool) or not isinstance(size_px, int | np.integer) or size_px < 1:
        raise ConfigError(f"size_px={size_px!r} must be a positive integer (SeCo uses 264)")
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution={resolution!r} must be one of {RESOLUTIONS} (metres)")
    if isinstance(align, bool) or not isinstance(align, int | np.integer) or not 1 <= align <= 60:
        raise ConfigError(f"align={align!r} must be an integer in 1..60 pixels (6 for native-resolution "
                          "Sentinel-2 stores, 1 for none)")
    if not (math.isfinite(lon) and math.isfinite(lat) and -90 <= lat <= 90):
        raise ConfigError(f"lon/lat ({lon!r}, {lat!r}) is not a WGS84 position in degrees")


@dataclass(frozen=True)
class _Grid:
    """The patch grid in the scene CRS: ``x = c + a * col``, ``y = f + e * row``, ``size`` x ``size`` pixels."""

    epsg: int
    crs: Any
    a: float
    e: float
    c: float
    f: float
    size: int

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(W,), (H,) x and y of the pixel centres."""
        steps = np.arange(self.size, dtype=np.float64) + 0.5
        return self.c + steps * self.a, self.f + steps * self.e


def _patch_grid(item: SceneItem, names: Sequence[str], sources: _Sources, lon: float, lat: float, size: int,
                resolution: int, align: int) -> _Grid:
    """The ``size`` px window centred at (lon, lat) on the scene's ``resolution`` m grid, its origin snapped to
    ``align`` pixels (module docstring).

    Raises:
        ReadError: a rotated grid or one without an EPSG CRS.
        PatchOutsideScene: the window is not inside the raster.
    """
    ref_band, scale = _reference(item, names, resolution)
    ref = sources.get(ref_band)
    t = ref.transform
    _axis_aligned(t, item, ref_band)
    if ref.crs is None or ref.crs.to_epsg() is None:
        raise ReadError(f"band {ref_band} of item {item.id!r} ({item.assets[ref_band]}) has no EPSG CRS "
                        f"({ref.crs}); Sentinel-2 assets are in UTM (EPSG:326xx/327xx)")
    a, e = t.a * scale, t.e * scale
    width, height = int(ref.width / scale), int(ref.height / scale)
    x, y = _project(lon, lat, ref.crs)
    col0 = math.floor((x - t.c) / a - size / 2 + 0.5)
    row0 = math.floor((y - t.f) / e - size / 2 + 0.5)
    if align > 1:
        col0, row0 = snap(col0, int(align)), snap(row0, int(align))
    if col0 < 0 or row0 < 0 or col0 + size > width or row0 + size > height:
        raise PatchOutsideScene(
            f"a {size} px patch at lon {lon:.5f}, lat {lat:.5f} spans rows {row0}..{row0 + size - 1}, cols "
            f"{col0}..{col0 + size - 1} of item {item.id!r}, whose {resolution} m grid is {height} x "
            f"{width}; it must lie inside one scene: choose a scene covering it or move the location"
        )
    return _Grid(int(ref.crs.to_epsg()), ref.crs, a, e, t.c + col0 * a, t.f + row0 * e, size)


def _read_bands(item: SceneItem, names: Sequence[str], sources: _Sources, grid: _Grid, shifts: Sequence[int],
                lonlat: tuple[float, float]) -> np.ndarray:
    """(C, H, W) uint16 DN of ``names`` sampled at the grid's pixel centres, each shifted by its harmonisation.

    Raises:
        ReadError: a band that is not uint16 DN (or any read error).
    """
    xs, ys = grid.centres()
    data = np.empty((len(names), grid.size, grid.size), np.uint16)  # (C, H, W)
    for i, band in enumerate(names):
        arr = _sample(sources.get(band), item.band_index.get(band, 1), xs, ys, item, band, lonlat)
        if arr.dtype != np.uint16:
            raise ReadError(f"band {band} of item {item.id!r} ({item.assets[band]}) is {arr.dtype}, not "
                            "uint16 Sentinel-2 DN; convert the archive to uint16 DN")
        data[i] = harmonize_dn(arr, shifts[i])
    return data


def _read_scl(item: SceneItem, sources: _Sources, grid: _Grid, lonlat: tuple[float, float]) -> np.ndarray:
    """(H, W) uint8 scene classification sampled at the grid's pixel centres.

    Raises:
        ReadError: values above 255 (not an SCL).
    """
    xs, ys = grid.centres()
    scl = _sample(sources.get(SCL), item.band_index.get(SCL, 1), xs, ys, item, SCL, lonlat)
    if scl.dtype != np.uint8:
        if scl.max(initial=0) > 255:
            raise ReadError(f"SCL of item {item.id!r} holds values above 255; it is not a scene "
                            "classification layer")
        scl = scl.astype(np.uint8)
    return scl


def read_patch(
    item: SceneItem,
    lon: float,
    lat: float,
    size_px: int = 264,
    bands: str | Sequence[str] = L2A,
    *,
    resolution: int = 10,
    harmonize: bool = True,
    scl: bool = True,
    gdal_env: Mapping[str, Any] | None = None,
    align: int = 1,
) -> Patch:
    """Read one patch of a scene: every band on one grid, windowed, harmonised.

    Args:
        item: the scene (e.g. from ``Catalog.search`` / ``choose_scene``).
        lon: longitude of the patch centre, WGS84 degrees.
        lat: latitude of the patch centre.
        size_px: patch side in pixels of the grid.
        bands: a :func:`seco.bands.parse_bands` spec (default the 12 L2A bands; ``"l1c"`` for 13).
        resolution: grid resolution in metres (10, 20 or 60); bands are sampled onto it by nearest neighbour.
        harmonize: remove the processing-baseline DN offset (module docstring).
        scl: also read the SCL asset when the item has one.
        gdal_env: GDAL options overriding :data:`GDAL_ENV` for this read.
        align: snap the window origin to a multiple of this many grid pixels from the raster origin (module
            docstring, "Alignment"); 6 for a native-resolution store of Sentinel-2 bands, 1 (default) for none.

    Returns:
        A :class:`Patch`.

    Raises:
        BandError: an unknown band name.
        ConfigError: a bad ``size_px`` or ``resolution``.
        ReadError: a missing asset or an unreadable, corrupt or truncated file (TransientReadError: network).
        PatchOutsideScene: the window is not inside the scene raster.
    """
    import rasterio

    names = parse_bands(bands)
    _check_read_args(size_px, resolution, align, lon, lat)
    missing = [b for b in names if b not in item.assets]
    if missing:
        raise ReadError(f"item {item.id!r} has no asset for band(s) {', '.join(missing)} (it has "
                        f"{', '.join(item.assets) or 'none'}); choose scenes with choose_scene(bands=...)")
    decisions = [shift_decision(item, b) if harmonize else ShiftDecision(0, "off") for b in names]
    shifts = tuple(d.shift for d in decisions)
    size = int(size_px)
    env = {**GDAL_ENV, **(gdal_env or {})}
    sources = _Sources(item)
    try:
        with rasterio.Env(**env):
            grid = _patch_grid(item, names, sources, lon, lat, size, resolution, int(align))
            data = _read_bands(item, names, sources, grid, shifts, (lon, lat))
            scl_arr = _read_scl(item, sources, grid, (lon, lat)) if scl and SCL in item.assets else None
            clon, clat = _unproject(grid.c + size * grid.a / 2, grid.f + size * grid.e / 2, grid.crs)
    finally:
        sources.close()
    nod = (data == 0).any(axis=0)
    if scl_arr is not None:
        nod |= scl_arr == 0
        scl_arr.setflags(write=False)
    data.setflags(write=False)
    a, e, c, f = grid.a, grid.e, grid.c, grid.f
    xs_edge, ys_edge = (c, c + size * a), (f, f + size * e)
    return Patch(
        data=data, bands=names, scl=scl_arr, crs=grid.epsg, transform=(a, 0.0, c, 0.0, e, f),
        bbox=(min(xs_edge), min(ys_edge), max(xs_edge), max(ys_edge)), nodata_fraction=float(nod.mean()),
        item_id=item.id, datetime=item.datetime, lon=clon, lat=clat, dn_shift=shifts,
        dn_rule=tuple(d.rule for d in decisions),
        warnings=tuple(dict.fromkeys(d.warning for d in decisions if d.warning)),
    )
