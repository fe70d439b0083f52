"""Patch-level cloud and nodata checks.

L2A scenes carry the Sen2Cor scene classification layer (SCL, 20 m, read onto the patch's 10 m grid by
:func:`seco.collect.patches.read_patch`). Its classes::

    0 no data            4 vegetation        8 cloud, medium probability
    1 saturated/defect   5 not vegetated     9 cloud, high probability
    2 dark area          6 water            10 thin cirrus
    3 cloud shadow       7 unclassified     11 snow / ice

A pixel is *cloudy* when its class is 3, 8, 9 or 10 (shadow, medium, high, cirrus), as SSL4EO-S12 and most
L2A pipelines count it; a pixel is *nodata* when any band is 0 (the Sentinel-2 nodata value) or the SCL is 0.

L1C scenes have no SCL. For them :func:`cloud_fraction` falls back to a documented brightness test
(:func:`l1c_cloud_mask`): thick cloud is bright in the blue band (B02 > 0.20 reflectance) but, unlike snow,
also bright in the short-wave infrared (NDSI = (B03 - B11) / (B03 + B11) < 0.4, applied when B03 and B11 were
read); cirrus shows in the 1375 nm band (B10 > 0.012) when it was read. Bright roofs and soil are its false
positives: under 5 % of the pixels of each of the ten clear OSCD scenes (tested). Without B02 the cloud fraction is
unknown (NaN) and :func:`patch_ok` does not judge cloud; the scene-level ``eo:cloud_cover`` filter of
``choose_scene`` is then the only cloud check, as in the original SeCo downloader.

Fractions are over all pixels of the patch (the store's ``cloud_fraction`` / ``nodata_fraction`` fields).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from seco.collect.patches import Patch
from seco.errors import ConfigError

SCL_NODATA = 0
SCL_SATURATED = 1
SCL_DARK = 2
SCL_CLOUD_SHADOW = 3
SCL_VEGETATION = 4
SCL_NOT_VEGETATED = 5
SCL_WATER = 6
SCL_UNCLASSIFIED = 7
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_CIRRUS = 10
SCL_SNOW = 11
#: SCL classes counted as cloud: shadow, cloud medium / high probability, thin cirrus.
CLOUD_CLASSES: tuple[int, ...] = (SCL_CLOUD_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS)

#: L1C fallback thresholds in DN (reflectance x 10000), see the module docstring.
L1C_BLUE_CLOUD_DN = 2000
L1C_NDSI_SNOW = 0.4
L1C_CIRRUS_DN = 120

_CLOUD_LUT = np.zeros(256, dtype=bool)
_CLOUD_LUT[list(CLOUD_CLASSES)] = True


def scl_cloud_mask(scl: np.ndarray) -> np.ndarray:
    """(H, W) bool: SCL pixels of a cloud class (3, 8, 9, 10)."""
    scl = np.asarray(scl)
    if scl.dtype != np.uint8:
        scl = scl.astype(np.uint8)
    return _CLOUD_LUT[scl]


def scl_cloud_fraction(scl: np.ndarray) -> float:
    """Fraction of the pixels of an SCL array (any shape, uint8 codes) in a cloud class (3, 8, 9, 10).

    Raises:
        ConfigError: an empty array.
    """
    scl = np.asarray(scl)
    if scl.size == 0:
        raise ConfigError("scl_cloud_fraction got an empty SCL array; pass the (H, W) SCL of a patch")
    return float(scl_cloud_mask(scl).mean())


def nodata_mask(data: np.ndarray, scl: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: pixels where any band of ``data`` (C, H, W) is 0, or the SCL is 0."""
    data = np.asarray(data)
    if data.ndim != 3:
        raise ConfigError(f"nodata_mask expects data of shape (C, H, W), got {data.shape}")
    mask = (data == 0).any(axis=0)
    if scl is not None:
        mask |= np.asarray(scl) == SCL_NODATA
    return mask


def nodata_fraction(data: np.ndarray, scl: np.ndarray | None = None) -> float:
    """Fraction of pixels where any band of ``data`` (C, H, W) is 0, or the SCL is 0."""
    mask = nodata_mask(data, scl)
    if mask.size == 0:
        raise ConfigError(f"nodata_fraction got an empty patch of shape {np.shape(data)}")
    return float(mask.mean())


def l1c_cloud_mask(data: np.ndarray, bands: Sequence[str]) -> np.ndarray | None:
    """(H, W) bool cloud mask of an L1C patch by the brightness test of the module docstring.

    Args:
        data: (C, H, W) DN, harmonised (no +1000 offset).
        bands: the band names of the channel axis.

    Returns:
        The mask, or ``None`` when B02 is not among ``bands`` (no test possible).
    """
    pos = {b: i for i, b in enumerate(bands)}
    if "B02" not in pos:
        return None
    x = np.asarray(data)
    blue = x[pos["B02"]].astype(np.int32)
    cloud = blue > L1C_BLUE_CLOUD_DN
    if "B03" in pos and "B11" in pos:
        g, s = x[pos["B03"]].astype(np.float32), x[pos["B11"]].astype(np.float32)
        ndsi = (g - s) / np.maximum(g + s, 1.0)
        cloud &= ndsi < L1C_NDSI_SNOW
    if "B10" in pos:
        cloud |= x[pos["B10"]].astype(np.int32) > L1C_CIRRUS_DN
    cloud &= ~(x == 0).any(axis=0)
    return cloud


def cloud_fraction(patch: Patch) -> float:
    """Cloud fraction of a patch: from the SCL when read, else the L1C brightness test; NaN when unknown."""
    if patch.scl is not None:
        return scl_cloud_fraction(patch.scl)
    mask = l1c_cloud_mask(patch.data, patch.bands)
    return math.nan if mask is None else float(mask.mean())


def patch_ok(patch: Patch, max_cloud: float = 0.1, max_nodata: float = 0.0) -> tuple[bool, str]:
    """Whether a patch is clear and complete enough to store.

    Args:
        patch: a patch from :func:`seco.collect.patches.read_patch`.
        max_cloud: largest accepted cloud fraction (0..1); an unknown fraction (L1C without B02) passes.
        max_nodata: largest accepted nodata fraction (0..1); 0 rejects any nodata pixel.

    Returns:
        ``(True, "")``, or ``(False, reason)`` with the measured fraction in the reason.
    """
    for name, v in (("max_cloud", max_cloud), ("max_nodata", max_nodata)):
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"{name}={v!r} must be a fraction in [0, 1] (e.g. 0.1 for 10 %)")
    if patch.nodata_fraction > max_nodata:
        return False, f"nodata {patch.nodata_fraction:.3f} > {max_nodata:g}"
    cf = cloud_fraction(patch)
    if not math.isnan(cf) and cf > max_cloud:
        source = "SCL" if patch.scl is not None else "L1C brightness test"
        return False, f"cloud {cf:.3f} > {max_cloud:g} ({source})"
    return True, ""
