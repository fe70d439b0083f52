"""Reading one Sentinel-1 acquisition onto a location's Sentinel-2 10 m grid, in dB.

For each polarisation (VV, VH) and each item of the acquisition (slices of one pass, in order): the source
window covering the patch (plus a 2-pixel margin) is read, invalid pixels (nodata, non-positive, non-finite)
set to NaN, and the **linear power** resampled onto the S2 patch grid with ``rasterio.warp.reproject``
(``Resampling.average``: each 10 m S2 pixel is the area-weighted mean of the linear S1 pixels under it, NaN
ignored); then ``dB = 10 log10``. Never nearest on dB, never an average of dB. A later slice fills only the
pixels an earlier one left empty (mosaic). Read errors raise :class:`~seco.errors.ReadError` (transient ones
:class:`~seco.collect.patches.TransientReadError`), as for Sentinel-2, so collect retries and records them alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from seco.collect.geo import open_raster
from seco.collect.patches import (
    GDAL_ENV,
    TransientReadError,
    _is_transient,
    _rasterio_errors,
    clear_http_cache,
)
from seco.collect.s1scene import S1_BANDS, Acquisition
from seco.errors import ReadError
from seco.radiometry.s1 import linear_to_db, mask_linear


@dataclass(frozen=True)
class S1Patch:
    """One S1 acquisition on the S2 patch grid.

    Attributes:
        db: (2, H, W) float32 dB, bands VV, VH; NaN = nodata.
        nodata_fraction: share of pixels where either band is NaN.
        rule: the provider rule applied.
    """

    db: np.ndarray
    nodata_fraction: float
    rule: str


def _error(item_id: str, pol: str, href: str, e: BaseException) -> ReadError:
    cause = f"{type(e).__name__}: {e}".strip()
    clear_http_cache(href)
    cls = TransientReadError if _is_transient(cause) else ReadError
    err = cls(f"cannot read {pol} of S1 item {item_id!r} from {href} ({cause}); the asset is missing, corrupt, "
              "truncated or unreachable: collect records it and tries the next acquisition")
    err.href = href  # type: ignore[attr-defined]
    return err


def _read_linear(href: str, nodata: float | None, dst: np.ndarray, epsg: int,
                 transform: tuple[float, ...]) -> None:
    """Resample one asset's linear power onto ``dst`` (H, W) float32 (filled where NaN)."""
    from affine import Affine
    from rasterio.warp import Resampling, reproject, transform_bounds
    from rasterio.windows import Window, from_bounds

    a, _, c, _, e, f = transform[:6]
    size_y, size_x = dst.shape
    left, right = sorted((c, c + a * size_x))
    bottom, top = sorted((f, f + e * size_y))
    ds = open_raster(href)
    with ds:
        if ds.crs is None:
            raise ReadError(f"S1 asset {href} has no CRS (GRD in radar geometry?); seco reads map-projected RTC")
        box = transform_bounds(f"EPSG:{epsg}", ds.crs, left, bottom, right, top, densify_pts=21)
        win = from_bounds(*box, transform=ds.transform)
        col0, row0 = max(0, math.floor(win.col_off) - 2), max(0, math.floor(win.row_off) - 2)
        col1 = min(ds.width, math.ceil(win.col_off + win.width) + 2)
        row1 = min(ds.height, math.ceil(win.row_off + win.height) + 2)
        if col1 <= col0 or row1 <= row0:
            return  # the slice does not reach the patch
        w = Window(col0, row0, col1 - col0, row1 - row0)
        src = mask_linear(ds.read(1, window=w), ds.nodata if nodata is None else nodata)
        src_transform, src_crs = ds.window_transform(w), ds.crs
    out = np.full(dst.shape, np.nan, dtype=np.float32)
    reproject(src, out, src_transform=src_transform, src_crs=src_crs, src_nodata=np.nan,
              dst_transform=Affine(a, 0.0, c, 0.0, e, f), dst_crs=f"EPSG:{epsg}", dst_nodata=np.nan,
              resampling=Resampling.average)
    fill = np.isnan(dst) & np.isfinite(out)
    dst[fill] = out[fill]


def read_s1(acq: Acquisition, epsg: int, transform: tuple[float, ...], size: int, *,
            gdal_env: Mapping[str, Any] | None = None, nodata: float | None = None, rule: str = "") -> S1Patch:
    """Read an acquisition (its items mosaicked in order) onto the S2 patch grid.

    Args:
        acq: the pass (:func:`seco.collect.s1scene.acquisitions`).
        epsg: the S2 patch CRS.
        transform: the S2 patch affine ``(a, b, c, d, e, f)`` (10 m).
        size: patch side in pixels.
        gdal_env: GDAL options over :data:`seco.collect.patches.GDAL_ENV`.
        nodata: the provider's nodata value (``None``: each file's own).
        rule: the rule name recorded with the patch.

    Returns:
        :class:`S1Patch` with (2, size, size) dB.

    Raises:
        ReadError: an unreadable asset (``TransientReadError`` for network faults).
    """
    import rasterio

    lin = np.full((len(S1_BANDS), size, size), np.nan, dtype=np.float32)  # (2, H, W) linear power
    with rasterio.Env(**{**GDAL_ENV, **(gdal_env or {})}):
        for i, pol in enumerate(S1_BANDS):
            for it in acq.items:
                href = it.assets[pol]
                try:
                    _read_linear(href, nodata, lin[i], epsg, transform)
                except ReadError:
                    raise
                except _rasterio_errors() as e:
                    raise _error(it.id, pol, href, e) from e
                if not np.isnan(lin[i]).any():
                    break
    db = linear_to_db(lin)
    return S1Patch(db=db, nodata_fraction=float(np.isnan(db).any(axis=0).mean()), rule=rule)
