"""Stored values -> physical units, per channel: Sentinel-2 reflectance and Sentinel-1 dB.

A store hands pre-training uint16 values: Sentinel-2 DN (``reflectance = DN / 10000``) and, for VV / VH, the S1
group's codes (``dB = code * 0.01 - 327.68``, code 0 = no data; ``seco.store.s1``). The augmentations and the
normalisation work in physical units, so a batch with radar channels is converted whole, on the training
device, before the views are made. Radar pixels without data take a per-band fill value (the band's mean, which
the normalisation then maps to 0), so a swath edge is "nothing" to the model instead of -327 dB.

An all-optical batch is left to ``seco.data.normalize.to_reflectance`` (bit for bit what it always was).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from seco.bands import sensor_of
from seco.data.normalize import to_reflectance
from seco.errors import ConfigError
from seco.store.schema import S1_OFFSET, S1_SCALE

__all__ = ["has_radar", "to_units"]


def has_radar(bands: Sequence[str]) -> bool:
    """Whether a band list has Sentinel-1 channels."""
    return any(sensor_of(b) == "s1" for b in bands)


def to_units(x: Tensor, bands: Sequence[str], fill: Sequence[float] | None = None) -> Tensor:
    """(..., C, H, W) stored uint16 values -> float32: reflectance for S2 channels, dB for S1 channels.

    Args:
        x: integer tensor on any device; a float tensor is taken to be in units already and returned as is.
        bands: the channel names (``seco.bands``), ``len(bands) == C``.
        fill: per channel, the value of a radar pixel without data (e.g. the band's mean in dB, so that it
            normalises to 0); only the radar channels' entries are used. ``None``: NaN.

    Raises:
        ConfigError: ``bands`` or ``fill`` of another length than the channel axis.
    """
    if x.is_floating_point():
        return x
    c = x.shape[-3]
    if len(bands) != c or (fill is not None and len(fill) != c):
        raise ConfigError(f"to_units: {len(bands)} band names / {None if fill is None else len(fill)} fill values "
                          f"for {c} channels")
    out = to_reflectance(x)  # (..., C, H, W) float32; the radar channels are overwritten below
    for k, b in enumerate(bands):
        if sensor_of(b) != "s1":
            continue
        code = x[..., k, :, :]
        db = code.to(torch.float32).mul_(S1_SCALE).add_(S1_OFFSET)
        value = float("nan") if fill is None else float(fill[k])
        out[..., k, :, :] = torch.where(code == 0, torch.full((), value, device=x.device), db)
    return out
