"""The input side of ``seco embed``: band names in a file, Sentinel-1 files and S1 + S2 pairs, value checks.

A model's input channels come from one GeoTIFF (S2 bands, or S1 ``VV`` / ``VH``), or from an S2 GeoTIFF and an
S1 GeoTIFF on the same grid (CRS, transform, shape: checked, never resampled). S2 channels are reflectance
``(DN + offset) / scale``; S1 channels are backscatter in **dB**, the units seco's stores and models use. S1
values given in linear power (``--s1-units linear``) are converted with ``10 log10``; non-positive values become
no data. A pixel is valid where any of its sensors has data; an S1 value with no data inside a valid patch is
fed as the channel's normalisation mean (0 after normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from seco.bands import S1_BANDS, normalize_name
from seco.data.sar import check_db, check_linear, linear_to_db, s1_name
from seco.errors import BandError, ConfigError


def band_name(text: str) -> str:
    """Canonical name of one band: an S2 band (``b2`` -> ``B02``) or an S1 polarisation (``vv`` -> ``VV``).

    Raises:
        BandError: neither.
    """
    pol = s1_name(text)
    if pol is not None:
        return pol
    try:
        return normalize_name(text)
    except BandError as e:
        raise BandError(f"{e} (or the Sentinel-1 polarisations {', '.join(S1_BANDS)})") from e


def check_same_grid(a: Any, b: Any, path_a: Path, path_b: Path) -> None:
    """Refuse an S1 file that is not on the grid of its S2 file (CRS, transform, shape).

    Raises:
        ConfigError: naming what differs and the fix.
    """
    diffs = []
    if a.crs != b.crs:
        diffs.append(f"CRS {a.crs} vs {b.crs}")
    if (a.height, a.width) != (b.height, b.width):
        diffs.append(f"shape {a.height} x {a.width} vs {b.height} x {b.width}")
    if not a.transform.almost_equals(b.transform):
        diffs.append(f"transform {tuple(a.transform)[:6]} vs {tuple(b.transform)[:6]}")
    if diffs:
        raise ConfigError(
            f"--s1-input {path_b} is not on the grid of --input {path_a} ({'; '.join(diffs)}); the pair must share "
            "CRS, transform and shape: resample the S1 file onto the S2 grid first (e.g. gdalwarp -tr/-te/-t_srs)"
        )


@dataclass
class Part:
    """One open file and the model channels it gives.

    Attributes:
        src: the open raster.
        indexes: 1-based band indexes in the file, one per channel.
        sensor: ``"s2"`` or ``"s1"``.
        scale, offset: S2 scaling to reflectance.
        linear: S1 values are linear power (converted to dB).
    """

    src: Any
    indexes: list[int]
    sensor: str
    scale: float = 1.0
    offset: float = 0.0
    linear: bool = False

    def convert(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw ``(c, h, w)`` values -> (model units float32 (NaN = S1 no data), valid ``(h, w)`` bool)."""
        nodata = self.src.nodata
        if self.sensor == "s2":
            valid = np.ones(raw.shape[1:], bool) if nodata is None else ~np.all(raw == nodata, axis=0)
            return (raw.astype(np.float32) + self.offset) / self.scale, valid
        v = raw.astype(np.float32)
        if nodata is not None and not np.isnan(nodata):
            v[raw == nodata] = np.nan
        if self.linear:
            v = linear_to_db(v)
        return v, np.any(np.isfinite(v), axis=0)


@dataclass
class ChannelReader:
    """Strips of the model's channels from one file or an S2 + S1 pair on one grid.

    Attributes:
        parts: the files, S2 part first.
        fill: per-channel value for S1 no data inside a valid pixel (model units).
    """

    parts: list[Part]
    fill: np.ndarray | None = field(default=None)

    @property
    def height(self) -> int:
        return int(self.parts[0].src.height)

    @property
    def width(self) -> int:
        return int(self.parts[0].src.width)

    def read(self, window: Window, out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(C, h, w)`` float32 in model units and the ``(h, w)`` valid mask of a window (decimated with
        ``out_shape``, nearest)."""
        values, valid = [], None
        for part in self.parts:
            kw: dict[str, Any] = {"window": window}
            if out_shape is not None:
                kw.update(out_shape=(len(part.indexes), *out_shape), resampling=Resampling.nearest)
            v, ok = part.convert(part.src.read(part.indexes, **kw))
            values.append(v)
            valid = ok if valid is None else valid | ok
        out = np.concatenate(values) if len(values) > 1 else values[0]
        assert valid is not None  # at least one part, by construction
        if self.fill is not None and any(p.sensor == "s1" for p in self.parts):
            bad = ~np.isfinite(out)
            if bad.any():
                out = np.where(bad, self.fill[:, None, None], out).astype(np.float32)
        return out, valid

    def close(self) -> None:
        for p in self.parts:
            p.src.close()


def check_s1_values(reader: ChannelReader, source: str, units: str) -> None:
    """Refuse S1 values in other units than ``units`` (decimated read of at most 256 x 256 px), before any work.

    Raises:
        DatasetError: naming the file, what was seen and the ``--s1-units`` value to use.
    """
    for part in reader.parts:
        if part.sensor != "s1":
            continue
        oh, ow = min(reader.height, 256), min(reader.width, 256)
        raw = part.src.read(part.indexes, out_shape=(len(part.indexes), oh, ow), resampling=Resampling.nearest)
        v = raw.astype(np.float64)
        if part.src.nodata is not None and not np.isnan(part.src.nodata):
            v[raw == part.src.nodata] = np.nan
        if units == "linear":
            check_linear(v, source, "Drop --s1-units linear (dB is the default)")
        else:
            check_db(v, source, "For linear power pass --s1-units linear")


def open_parts(
    path: Path, fb: tuple[str, ...], s1_path: Path | None, s1_fb: tuple[str, ...], bands: tuple[str, ...],
    scale: float, offset: float, linear: bool,
) -> ChannelReader:
    """Open the file(s) holding ``bands`` (the model's order: S2 names, then S1) and map each channel."""
    s2 = [b for b in bands if s1_name(b) is None]
    s1 = [b for b in bands if s1_name(b) is not None]
    parts: list[Part] = []
    if s2:
        parts.append(Part(rasterio.open(path), [fb.index(b) + 1 for b in s2], "s2", scale, offset))
    if s1:
        src_path, names = (s1_path, s1_fb) if s1_path is not None else (path, fb)
        parts.append(Part(rasterio.open(src_path), [names.index(b) + 1 for b in s1], "s1", linear=linear))
    return ChannelReader(parts)
