"""Per-band input normalisation, in reflectance units, stored with the data and with exported weights.

Units: the store holds uint16 digital numbers; ``reflectance = DN / 10000`` (``to_reflectance``). A
``Normalization`` maps reflectance to model input as ``(x - mean) / std`` per band, and is always applied
*after* the augmentations (which work on reflectance, see ``seco.data.transforms``).

Two ways to derive it from a store's statistics (``Store.stats()``, per band, in DN):

- ``"meanstd"`` (default): ``mean`` and ``std`` of the band: zero-mean, unit-variance inputs, what the batch
  norms of a ResNet trained from scratch expect, and what SSL4EO-S12 derives its scaling from
  (mean +- 2 std). Used for pre-training and exported with the weights.
- ``"percentile"``: ``mean = p2`` and ``std = p98 - p2``, mapping the 2nd..98th percentile range to [0, 1].
  This is the official SeCo recipe's first step (per-band quantile stretch, then uint8 and ImageNet
  statistics, RGB only); kept for comparison with it. No clipping is applied here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seco.bands import REFLECTANCE_SCALE, UNITS, BandSelection, canonical_name, parse_bands, sensor_of
from seco.errors import BandError, ConfigError, StoreError
from seco.store.source import ImageSource

__all__ = ["METHODS", "Normalization", "to_reflectance"]

METHODS = ("meanstd", "percentile")


def to_reflectance(x: Tensor) -> Tensor:
    """Digital numbers (any integer dtype, e.g. torch.uint16) -> float32 reflectance ``DN / 10000``.

    A float tensor is taken to be reflectance already and returned unchanged. Works on any device, so a
    uint16 batch can travel to the GPU at half the bytes and be converted there.
    """
    if x.is_floating_point():
        return x
    # by a 0-d tensor on x's device: CUDA divides by a Python scalar as x * (1 / 10000), which differs from
    # the CPU's x / 10000 in the last bit for ~30 % of DN values (issue 19)
    return x.to(torch.float32).div_(torch.full((), REFLECTANCE_SCALE, dtype=torch.float32, device=x.device))


@dataclass(frozen=True)
class Normalization:
    """Per-band ``(x - mean) / std`` on reflectance.

    Attributes:
        bands: canonical band names, in channel order.
        mean: per-band offset, reflectance units.
        std: per-band scale, reflectance units, > 0.
        method: how the numbers were derived: ``"meanstd"``, ``"percentile"`` or ``"custom"``.
        pixels: over which pixels the statistics were computed (``Store.stats_method()``, e.g. "clear pixels
            ... SCL on 100.0 %"); ``None`` when unknown. Not compared.
        s1: the Sentinel-1 statistics of the same store, when it has an S1 group (``bands`` VV/VH, ``units`` "dB",
            ``mean``, ``std``, ``pixels``, ``products``); recorded for the export, not applied here. Not compared.
    """

    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    method: str = "custom"
    pixels: str | None = field(default=None, compare=False)
    s1: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        bands = tuple(canonical_name(b) for b in self.bands)  # Sentinel-2 and Sentinel-1 (VV, VH) names
        dup = sorted({b for b in bands if bands.count(b) > 1})
        if dup:
            raise BandError(f"band(s) {', '.join(dup)} listed twice in the normalisation bands {bands}")
        object.__setattr__(self, "bands", bands)
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if not (len(self.bands) == len(self.mean) == len(self.std)) or not self.bands:
            raise ConfigError(
                f"normalisation has {len(self.bands)} bands, {len(self.mean)} means and {len(self.std)} stds; "
                "give one mean and one std per band"
            )
        bad = [b for b, s in zip(self.bands, self.std, strict=True) if not (math.isfinite(s) and s > 0)]
        bad += [b for b, m in zip(self.bands, self.mean, strict=True) if not math.isfinite(m)]
        if bad:
            raise ConfigError(
                f"normalisation of band(s) {', '.join(bad)} has a non-finite mean or a std <= 0; "
                "recompute the statistics on data where those bands vary"
            )
        if self.method not in (*METHODS, "custom"):
            raise ConfigError(f"normalisation method {self.method!r} unknown; use one of {METHODS + ('custom',)}")

    @classmethod
    def from_stats(
        cls, stats: Mapping[str, Any], bands: Sequence[str], method: str = "meanstd"
    ) -> Normalization:
        """From per-band statistics in DN (keys ``mean, std`` or ``p2, p98``, each of length ``len(bands)``)."""
        if method not in METHODS:
            raise ConfigError(f"normalisation method {method!r} unknown; use one of {METHODS}")
        keys = ("mean", "std") if method == "meanstd" else ("p2", "p98")
        missing = [k for k in keys if k not in stats]
        if missing:
            raise ConfigError(f"statistics lack {missing} needed by method {method!r}; they have {sorted(stats)}")
        a = np.asarray(stats[keys[0]], dtype=np.float64) / REFLECTANCE_SCALE  # (C,)
        b = np.asarray(stats[keys[1]], dtype=np.float64) / REFLECTANCE_SCALE  # (C,)
        if a.shape != (len(bands),) or b.shape != (len(bands),):
            raise ConfigError(
                f"statistics have shapes {a.shape} and {b.shape} for {len(bands)} bands {tuple(bands)}; "
                "pass the statistics of exactly those bands"
            )
        mean, std = (a, b) if method == "meanstd" else (a, b - a)
        return cls(tuple(bands), tuple(mean.tolist()), tuple(std.tolist()), method=method)

    @classmethod
    def from_store(
        cls, store: ImageSource, bands: BandSelection | str | Sequence[str] = "all", method: str = "meanstd"
    ) -> Normalization:
        """From the statistics of a ``seco.store.Store``; ``bands`` a ``BandSelection`` resolved for the store (used
        as is) or a specification as ``seco.bands.parse_bands``.

        Sentinel-2 bands: ``store.stats(bands)`` (DN -> reflectance), over the clear pixels where the store records
        clear masks (``pixels`` records ``store.stats_method``). Sentinel-1 bands (``VV``, ``VH`` of a store with an
        S1 group): ``store.s1.stats`` in dB, the units ``seco.data.units.to_units`` gives the radar channels. ``s1``
        records the store's S1 statistics whatever the bands (for the export).

        Raises:
            BandError: if a band is not in the store.
            StoreError: no pixel to compute a band's statistics from.
        """
        names = parse_bands(bands, available=getattr(store, "readable_bands", store.bands))
        optical = [b for b in names if sensor_of(b) == "s2"]
        radar = [b for b in names if sensor_of(b) == "s1"]
        values: dict[str, tuple[float, float]] = {}
        pixels = None
        if optical:
            n2 = cls.from_stats(store.stats(bands=optical), optical, method=method)
            values |= {b: (m, sd) for b, m, sd in zip(n2.bands, n2.mean, n2.std, strict=True)}
            how = getattr(store, "stats_method", None)  # a seco Store: clear pixels where it records clear masks
            pixels = how(bands=optical) if callable(how) else None
        if radar:
            st = store.s1.stats(bands=radar)  # type: ignore[attr-defined]  # dB
            a, b = (st["mean"], st["std"]) if method == "meanstd" else (st["p2"], st["p98"] - st["p2"])
            values |= {name: (float(x), float(y)) for name, x, y in zip(radar, a, b, strict=True)}
        return cls(tuple(names), tuple(values[b][0] for b in names), tuple(values[b][1] for b in names),
                   method=method, pixels=pixels, s1=s1_statistics(store))

    def select(self, bands: str | Sequence[str]) -> Normalization:
        """The normalisation of a subset (or reordering) of the bands, by name (``"all"``: every band).

        Raises:
            BandError: if a band is not in this normalisation.
        """
        all_ = isinstance(bands, str) and bands.strip().lower() == "all"
        names = self.bands if all_ else parse_bands(bands)
        missing = [n for n in names if n not in self.bands]
        if missing:
            raise BandError(
                f"band(s) {', '.join(missing)} not in this normalisation ({', '.join(self.bands)}); "
                "recompute it with Normalization.from_store for those bands"
            )
        pos = [self.bands.index(n) for n in names]
        return Normalization(
            names, tuple(self.mean[i] for i in pos), tuple(self.std[i] for i in pos), method=self.method,
            pixels=self.pixels, s1=self.s1,
        )

    @property
    def units(self) -> tuple[str, ...]:
        """The units of each band's statistics: ``"reflectance"`` (Sentinel-2) or ``"dB"`` (Sentinel-1)."""
        return tuple(UNITS[sensor_of(b)] for b in self.bands)

    def apply(self, x: Tensor) -> Tensor:
        """``(x - mean) / std`` over the band axis of (..., C, H, W) float reflectance, on x's device."""
        mean, std = self._tensors(x)
        return (x - mean) / std

    def apply_(self, x: Tensor) -> Tensor:
        """In-place ``apply`` (one pass, no new tensor); returns ``x``."""
        mean, std = self._tensors(x)
        return x.sub_(mean).div_(std)

    def invert(self, x: Tensor) -> Tensor:
        """Back from model input to reflectance (..., C, H, W)."""
        mean, std = self._tensors(x)
        return x * std + mean

    def _tensors(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim < 3 or x.shape[-3] != len(self.bands):
            raise BandError(
                f"input has shape {tuple(x.shape)} but the normalisation is for {len(self.bands)} band(s) "
                f"{', '.join(self.bands)}; select the same bands on both (Normalization.select)"
            )
        if not x.is_floating_point():
            raise ConfigError(f"normalise float reflectance, got dtype {x.dtype}; call to_reflectance first")
        return _cached_tensors(self.mean, self.std, x.device, x.dtype)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-friendly dict (``pixels`` and ``s1`` only when known)."""
        d: dict[str, Any] = {"bands": list(self.bands), "mean": list(self.mean), "std": list(self.std),
                             "method": self.method}
        if "dB" in self.units:  # the units of each band, where they differ (Sentinel-1 beside Sentinel-2)
            d["units"] = list(self.units)
        if self.pixels is not None:
            d["pixels"] = self.pixels
        if self.s1 is not None:
            d["s1"] = dict(self.s1)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Normalization:
        """Inverse of ``to_dict``.

        Raises:
            ConfigError: on a missing key.
        """
        missing = [k for k in ("bands", "mean", "std") if k not in d]
        if missing:
            raise ConfigError(f"normalisation dict lacks {missing}; it has {sorted(d)}")
        s1 = d.get("s1")
        return cls(tuple(d["bands"]), tuple(d["mean"]), tuple(d["std"]), method=d.get("method", "custom"),
                   pixels=d.get("pixels"), s1=dict(s1) if isinstance(s1, Mapping) else None)


def s1_statistics(store: Any) -> dict[str, Any] | None:
    """The Sentinel-1 statistics of a store with an S1 group (``store.s1.stats()``: exact, dB, over the valid
    pixels of valid dates), as the export records them; ``None`` without S1 or without any S1 pixel."""
    s1 = getattr(store, "s1", None)
    if s1 is None:
        return None
    try:
        st = s1.stats()
    except StoreError:  # a group without any S1 pixel yet
        return None
    valid = s1.valid_mask()
    products, counts = np.unique(s1.meta_array("product")[valid].astype(str), return_counts=True)
    return {"bands": list(s1.bands), "units": s1.units, "mean": [float(v) for v in st["mean"]],
            "std": [float(v) for v in st["std"]],
            "pixels": "valid S1 pixels of valid dates (dB; no cloud test needed for radar)",
            "products": {str(p): int(c) for p, c in zip(products, counts, strict=True)}}


@functools.lru_cache(maxsize=64)
def _cached_tensors(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    m = torch.tensor(mean, dtype=torch.float64).to(device, dtype)[:, None, None]  # (C, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).to(device, dtype)[:, None, None]  # (C, 1, 1)
    return m, s
