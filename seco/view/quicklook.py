"""Quicklooks: one location's dates as small colour images, with one stretch per location.

**Optical stretch (RGB and the false colour).** For each of the three bands, each valid date's 2nd and 98th
percentile of its valid pixels (non-zero DN; every second pixel in each direction) are taken, and their
*medians over the location's valid dates* map linearly to 0 and 255, clipped. One stretch per location, shared
by its dates: a date that is brighter or darker than the others (haze, snow, a wrong DN offset) stays visibly
brighter or darker instead of being normalised away, and the median keeps one cloudy date from darkening the
others. Nodata (a zero DN in any of the three bands) is transparent.

**Sentinel-1 composite.** Red = VV, green = VH, blue = VV - VH (the polarisation ratio in dB), with fixed
ranges (:data:`S1_RANGES`): backscatter in dB is calibrated, so the same colour means the same dB everywhere.
NaN (no S1 data) is transparent.

Images are written as lossy WebP with alpha (``thumb`` px a side, box-filtered), which Chromium, Firefox and
Safari display; a quicklook is a picture to look at, never data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seco.fileutil import atomic_write

#: Fixed display ranges of the S1 composite, in dB: (low, high) for red = VV, green = VH, blue = VV - VH.
S1_RANGES: tuple[tuple[float, float], ...] = ((-25.0, 0.0), (-30.0, -5.0), (0.0, 15.0))
#: Percentiles of the per-location optical stretch.
STRETCH_PERCENTILES = (2.0, 98.0)
#: File suffix of the quicklooks.
SUFFIX = ".webp"


def location_stretch(images: np.ndarray, valid: np.ndarray) -> list[tuple[float, float]]:
    """The per-location stretch of three bands.

    Args:
        images: (T, 3, H, W) uint16 DN, 0 = nodata.
        valid: (T,) bool, which dates hold imagery.

    Returns:
        Per band (low, high) DN: the medians over the valid dates of each date's 2nd and 98th percentile of
        its non-zero pixels (every second pixel); ``(0, 1)`` for a band without any.
    """
    sub = images[np.asarray(valid, bool), :, ::2, ::2]  # (t, 3, h, w)
    out = []
    for c in range(images.shape[1]):
        per = [np.percentile(v[v > 0], STRETCH_PERCENTILES) for v in sub[:, c] if (v > 0).any()]
        if not per:
            out.append((0.0, 1.0))
            continue
        lo, hi = np.median(np.asarray(per), axis=0)  # (2,)
        out.append((float(lo), float(max(hi, lo + 1))))
    return out


def to_rgba(image: np.ndarray, ranges: Sequence[tuple[float, float]], nodata: np.ndarray) -> np.ndarray:
    """Three bands scaled linearly from ``ranges`` to 0..255, alpha 0 where ``nodata``.

    Args:
        image: (3, H, W) numbers.
        ranges: per band (low, high).
        nodata: (H, W) bool.

    Returns:
        (H, W, 4) uint8.
    """
    out = np.empty((*image.shape[1:], 4), np.uint8)
    for c, (lo, hi) in enumerate(ranges):
        x = (image[c].astype(np.float32) - lo) * (255.0 / (hi - lo))
        out[..., c] = np.clip(np.nan_to_num(x, nan=0.0), 0, 255).astype(np.uint8)
    out[..., 3] = np.where(nodata, 0, 255)
    return out


def optical_rgba(image: np.ndarray, stretch: Sequence[tuple[float, float]]) -> np.ndarray:
    """One date's three bands (3, H, W) uint16 DN under the location's stretch -> (H, W, 4) uint8."""
    return to_rgba(image, stretch, (image == 0).any(axis=0))


def s1_rgba(db: np.ndarray) -> np.ndarray:
    """One date's S1 backscatter (2, H, W) float32 dB (VV, VH; NaN = nodata) -> (H, W, 4) uint8 composite."""
    vv, vh = db[0], db[1]
    comp = np.stack([vv, vh, vv - vh])  # (3, H, W)
    return to_rgba(comp, S1_RANGES, ~np.isfinite(vv) | ~np.isfinite(vh))


def write_image(rgba: np.ndarray, path: Path, thumb: int) -> None:
    """Write (H, W, 4) uint8 as a ``thumb``-px WebP (box-filtered when larger), through a temporary file."""
    from PIL import Image

    img = Image.fromarray(rgba, "RGBA")
    if max(img.size) > thumb:
        img = img.resize((thumb, thumb), Image.Resampling.BOX)
    atomic_write(path, lambda tmp: img.save(tmp, format="WEBP", quality=80, method=4), durable=False)

