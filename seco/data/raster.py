"""Small raster helpers shared by the benchmark loaders (EuroSAT, BigEarthNet, OSCD).

Every reader turns a missing or unreadable file into a :class:`~seco.errors.DatasetError` that names the
path, so a broken download fails with the file to fix instead of a GDAL traceback.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from seco.bands import REFLECTANCE_SCALE
from seco.errors import DatasetError


def _open(path: Path):
    if not path.is_file():
        raise DatasetError(f"missing raster file {path}; the dataset copy is incomplete, re-extract it")
    try:
        with warnings.catch_warnings():
            # OSCD change maps carry no geotransform; that is expected, not worth a warning.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioError as e:
        raise DatasetError(f"cannot read raster {path}: {e}; the file is corrupt, re-extract it") from e


def raster_shape(path: Path) -> tuple[int, int, int]:
    """``(count, height, width)`` of a raster, read from its header only."""
    with _open(path) as src:
        return src.count, src.height, src.width


def read_raster(path: Path, indexes: Sequence[int] | None = None) -> np.ndarray:
    """Read bands of a raster as stored (e.g. uint16 DN).

    Args:
        path: a GeoTIFF (or any GDAL-readable raster).
        indexes: 0-based band positions in the file; ``None`` reads every band.

    Returns:
        ``(C, H, W)`` array in the file's dtype.
    """
    with _open(path) as src:
        if indexes is not None:
            bad = [i for i in indexes if not 0 <= i < src.count]
            if bad:
                raise DatasetError(
                    f"{path} has {src.count} band(s); band position(s) {bad} do not exist. "
                    "The file is not in the layout this loader expects."
                )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                if indexes is None:
                    return src.read()
                return src.read([i + 1 for i in indexes])
        except RasterioError as e:
            raise DatasetError(f"cannot read raster {path}: {e}; the file is corrupt, re-extract it") from e


def read_single_band(path: Path) -> np.ndarray:
    """Read a one-band raster (one band per file, as in BigEarthNet and OSCD) as ``(H, W)``."""
    array = read_raster(path)  # (C, H, W)
    if array.shape[0] != 1:
        raise DatasetError(f"{path} has {array.shape[0]} bands; expected a single-band file")
    return array[0]


def read_image(path: Path) -> np.ndarray:
    """Read a JPEG/PNG with Pillow as ``(H, W)`` or ``(H, W, C)`` uint8."""
    if not path.is_file():
        raise DatasetError(f"missing image file {path}; the dataset copy is incomplete, re-extract it")
    try:
        with Image.open(path) as im:
            return np.asarray(im).copy()
    except OSError as e:
        raise DatasetError(f"cannot read image {path}: {e}; the file is corrupt, re-extract it") from e


def to_reflectance(dn: np.ndarray) -> torch.Tensor:
    """Sentinel-2 digital numbers -> float32 reflectance (``DN / 10000``), same shape."""
    return torch.from_numpy(dn.astype(np.float32)) / REFLECTANCE_SCALE


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample ``(C, h, w)`` to ``(C, H, W)`` so that both grids cover the same extent.

    Bilinear with ``align_corners=False``: the outer pixel edges of the two grids coincide, which is
    how a 20 m or 60 m band lines up with the 10 m grid of the same tile. Down-sampling adds an
    anti-aliasing filter. A band already at ``size`` is returned unchanged.
    """
    h, w = image.shape[-2:]
    if (h, w) == tuple(size):
        return image
    down = size[0] < h or size[1] < w
    out = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=down)
    return out[0]  # (C, H, W)


def read_float(path: Path, indexes: Sequence[int] | None = None) -> np.ndarray:
    """Read bands as ``(C, H, W)`` float32 with NaN where the file's nodata value (if any) or NaN stands.

    For files whose values are physical quantities already (Sentinel-1 backscatter in dB).
    """
    with _open(path) as src:
        nodata = src.nodata
    a = read_raster(path, indexes).astype(np.float32)  # (C, H, W)
    if nodata is not None and not np.isnan(nodata):
        a[a == np.float32(nodata)] = np.nan
    return a
