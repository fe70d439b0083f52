"""Sentinel-1 inputs of the benchmark readers and ``seco embed``: band selection across sensors, units, value checks.

Band selection (``parse_sensor_bands``) for readers that hold both sensors (BigEarthNet-S1/S2, reBEN,
EuroSAT-SAR paired with EuroSAT-MS):

- ``"s1"``: the Sentinel-1 polarisations ``VV, VH`` (:data:`seco.bands.S1_BANDS`);
- ``"s2"``: every Sentinel-2 band the source holds (what ``"all"`` means for its S2-only reader);
- ``"s1+s2"`` (or ``"s2+s1"``): both; parts joined by ``+`` may also be any S2 spec of
  :func:`seco.bands.parse_bands` (``"rgb+s1"``, ``"B02,B03,B04,B08+VV"``) or S1 names (``"VV"``);
- a comma list mixing names (``"B04,B03,B02,VV"``).

Channel order is always the S2 bands first (in the order given), then the S1 bands (in the order given). Units
stay per sensor: S2 channels are reflectance (``DN / 10000``), S1 channels backscatter in **dB**
(``10 log10`` of linear power); :class:`SensorBands` says which channel is which, so that a caller normalises
each sensor with its own statistics (``seco.data.normalize.Normalization`` holds both, each in its units).

Value checks: :func:`check_db` refuses an array that cannot be dB backscatter (linear power, amplitude or
integer codes given as dB), :func:`check_linear` one that cannot be linear power; both name the flag or fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seco.bands import S1_BANDS, UNITS, parse_bands, sensor_of
from seco.data.normalize import Normalization
from seco.data.raster import read_float
from seco.errors import BandError, DatasetError

#: Valid dB backscatter of land and water lies well inside this range (dB); a median outside it is no dB.
PLAUSIBLE_DB_MEDIAN = (-45.0, 15.0)
#: Share of negative values below which an array "given as dB" is taken for linear power or amplitude.
_MIN_NEGATIVE_SHARE = 0.01


def s1_name(name: str) -> str | None:
    """Canonical S1 polarisation name (``"vv"`` -> ``"VV"``), or None when ``name`` is no S1 band."""
    n = name.strip().upper()
    return n if n in S1_BANDS else None


@dataclass(frozen=True)
class SensorBands:
    """A band selection across sensors: S2 channels first, then S1.

    Attributes:
        s2: canonical S2 band names (may be empty).
        s1: S1 polarisations, a subset of ``("VV", "VH")`` (may be empty).
    """

    s2: tuple[str, ...]
    s1: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Channel names in channel order (S2, then S1)."""
        return self.s2 + self.s1

    @property
    def sensors(self) -> tuple[str, ...]:
        """``"s2"`` or ``"s1"`` per channel."""
        return ("s2",) * len(self.s2) + ("s1",) * len(self.s1)

    @property
    def units(self) -> tuple[str, ...]:
        """``"reflectance"`` or ``"dB"`` per channel."""
        return tuple(UNITS[s] for s in self.sensors)

    def channels(self, sensor: str) -> list[int]:
        """Channel positions of one sensor (``"s2"`` or ``"s1"``)."""
        return [i for i, s in enumerate(self.sensors) if s == sensor]

    def __len__(self) -> int:
        return len(self.s2) + len(self.s1)


def parse_sensor_bands(
    spec: str | Sequence[str], s2_available: Sequence[str], s1_available: Sequence[str] = S1_BANDS
) -> SensorBands:
    """Resolve a band spec over both sensors (``seco.bands.parse_bands`` against the source's bands of both).

    Args:
        spec: ``"s1"``, ``"s2"``, ``"s1+s2"``, ``"+"``-joined parts, or names (string or sequence).
        s2_available: the S2 bands the source holds (``"s2"`` means all of them).
        s1_available: the S1 bands the source holds.

    Raises:
        BandError: an unknown name, a duplicate, an empty selection, or a band the source lacks.
    """
    names = parse_bands(spec, available=(*s2_available, *s1_available))
    return SensorBands(tuple(n for n in names if sensor_of(n) == "s2"), tuple(n for n in names if sensor_of(n) == "s1"))


def split_model_bands(bands: Sequence[str]) -> SensorBands:
    """The sensors of a model's input band list (e.g. an export sidecar's ``bands``), S2 before S1.

    Raises:
        BandError: an unknown name, or an S2 band listed after an S1 band (channel order S2 then S1).
    """
    s1 = [s1_name(b) for b in bands]
    first_s1 = next((i for i, n in enumerate(s1) if n is not None), len(bands))
    if any(n is None for n in s1[first_s1:]):
        raise BandError(
            f"bands {list(bands)} put a Sentinel-2 band after a Sentinel-1 band; the channel order is S2 first, then S1"
        )
    names = parse_bands(list(bands))  # names, duplicates
    return SensorBands(tuple(names[:first_s1]), tuple(names[first_s1:]))


# ---------------------------------------------------------------- units


def linear_to_db(power: np.ndarray) -> np.ndarray:
    """Linear backscatter power -> dB (``10 log10``); non-positive or non-finite values -> NaN (no data)."""
    p = np.asarray(power, dtype=np.float64)
    out = np.full(p.shape, np.nan, dtype=np.float32)
    ok = np.isfinite(p) & (p > 0)
    out[ok] = (10.0 * np.log10(p[ok])).astype(np.float32)
    return out


def check_db(values: np.ndarray, source: str, fix: str = "convert the file to dB (10 * log10 of linear power)") -> None:
    """Refuse values that cannot be dB backscatter: nearly no negative value (linear power or amplitude given
    as dB), or a median outside :data:`PLAUSIBLE_DB_MEDIAN` (e.g. integer codes). NaN are ignored.

    Args:
        values: any shape; the valid (finite) values of one patch or file.
        source: what the values are, for the message (a path, a patch name).
        fix: what the user should do (a flag such as ``--s1-units linear``).

    Raises:
        DatasetError: naming ``source``, what was seen and ``fix``.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return
    med = float(np.median(v))
    negative = float((v < 0).mean())
    if negative < _MIN_NEGATIVE_SHARE and med < 50:
        raise DatasetError(
            f"{source}: {100 * negative:.2g} % of the values are negative (median {med:.4g}); dB backscatter "
            "of land is nearly all negative (VV ~ -12 dB, VH ~ -19 dB), so these look like linear power or "
            f"amplitude, not dB. {fix}"
        )
    lo, hi = PLAUSIBLE_DB_MEDIAN
    if not lo <= med <= hi:
        raise DatasetError(
            f"{source}: median {med:.4g} is no dB backscatter (median {lo:g} to {hi:g} dB expected); the values "
            f"are scaled or encoded (e.g. integer codes). {fix}"
        )


def check_linear(values: np.ndarray, source: str, fix: str) -> None:
    """Refuse values that cannot be linear power: a share of negative values (dB given as linear).

    Raises:
        DatasetError: naming ``source`` and ``fix``.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size and float((v < 0).mean()) > 0.05:
        raise DatasetError(
            f"{source}: {100 * float((v < 0).mean()):.3g} % of the values are negative, which linear power never "
            f"is (median {float(np.median(v)):.4g}); the values are already in dB. {fix}"
        )


# ---------------------------------------------------------------- statistics of mixed channels


def channel_stats(values: Sequence[np.ndarray], bands: Sequence[str]) -> Normalization:
    """Mean / std per channel over every finite value of ``values`` (each ``(C, ...)``), float64 sums.

    A channel without finite values, or constant, gets std 1 (only centred).
    """
    c = len(bands)
    n = np.zeros(c)
    s = np.zeros(c)
    s2 = np.zeros(c)
    for a in values:
        flat = np.asarray(a, dtype=np.float64).reshape(c, -1)  # (C, pixels)
        ok = np.isfinite(flat)
        n += ok.sum(axis=1)
        s += np.where(ok, flat, 0.0).sum(axis=1)
        s2 += np.where(ok, flat * flat, 0.0).sum(axis=1)
    mean = s / np.maximum(n, 1)
    std = np.sqrt(np.maximum(s2 / np.maximum(n, 1) - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    return Normalization(tuple(bands), tuple(mean.tolist()), tuple(std.tolist()), method="meanstd")


def read_s1_db(path: Path, indexes: Sequence[int] | None = None, check: bool = True) -> np.ndarray:
    """A Sentinel-1 GeoTIFF stored in dB (BigEarthNet-S1, reBEN, EuroSAT-SAR) as ``(C, H, W)`` float32 dB.

    NaN where the file has nodata (or NaN). With ``check``, :func:`check_db` refuses values that are no dB.

    Raises:
        DatasetError: a missing / unreadable file, or values that are no dB backscatter.
    """
    a = read_float(path, indexes)  # (C, H, W)
    if check:
        check_db(a, str(path), "The dataset copy is not the dB release this reader expects; re-extract it")
    return a
