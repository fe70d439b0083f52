"""The multi-sensor comparison (``seco experiment compare --sensors s1+s2``): radar beside optics.

An *arm* is a (method, bands) pair written ``method@bands`` (``seco@s2``, ``seco@s1+s2``, ``seco-s12@s1+s2``,
``seco@s1``) or ``random`` (a seeded random init built for each input's own bands). Every arm pre-trains on one
simulated S1 + S2 store (``make_store(s1=True)``) and is scored, frozen, on:

- ``landcover:<inputs>``: the land-cover linear probe of :mod:`seco.experiment.evaluate` on a labelled S1 + S2
  simulated store, with S2-only (``s2``), S1-only (``s1``) and S1 + S2 (``s1+s2``) inputs, wherever the arm's
  bands cover the input's sensors. A multi-sensor backbone given one sensor gets zeros for the other sensor's
  channels *after* normalisation (as seco-s12's single-sensor views): the ``data`` policy centres a constant
  channel and leaves it 0;
- ``cloudy<P>:<inputs>``: the same probe on other simulated scenes where ``P`` % of the locations' S2 dates
  (in every split) are overcast with the simulator's own clouds (``simulate_location(cloud_cover=1.0)``: the
  same surface and S1, only the clouds differ), on the arm's own inputs, at ``P`` = 0, 50 and 100.

Radar pixels without data (NaN) are filled with their channel's mean in dB, which normalises to about 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seco.bands import L2A, S1_BANDS, parse_bands, sensor_of
from seco.errors import ConfigError
from seco.experiment.config import RANDOM, S12_METHODS, SENSOR_MODES

__all__ = ["S12_METHODS", "SENSOR_MODES", "arm_bands", "evaluate_cell", "load_data"]
#: Input sets of the probes, in report order.
INPUTS = ("s2", "s1", "s1+s2")
#: Shares of the cloudy-optics task's S2 dates that are overcast.
CLOUD_FRACTIONS = (0.0, 0.5, 1.0)
#: Target share of a city flooded on the second date in the change-detection task (radar sees floods).
CHANGE_FLOODS = 0.04
#: Names of the inputs in reports.
INPUT_NAMES = {"s2": "S2 only", "s1": "S1 only", "s1+s2": "S1+S2"}


def split_arm(arm: str) -> tuple[str, str | None]:
    """``"seco@s1+s2"`` -> ``("seco", "s1+s2")``; ``"seco"`` -> ``("seco", None)`` (the experiment's bands)."""
    method, at, bands = arm.partition("@")
    return method, (bands if at else None)


def cell_name(arm: str, seed: int) -> str:
    """The cell folder of an arm and seed (``seco@s1+s2-seed0``; a bare method keeps ``seco-seed0``)."""
    return f"{arm}-seed{seed}"


def input_sensors(inputs: str) -> set[str]:
    return set(inputs.split("+"))


def covers(bands: tuple[str, ...], inputs: str) -> bool:
    """Whether a backbone of ``bands`` can take ``inputs`` (every input sensor among its channels)."""
    return input_sensors(inputs) <= {sensor_of(b) for b in bands}


def native(bands: tuple[str, ...]) -> str:
    """The input set a backbone of ``bands`` was made for (``s2``, ``s1`` or ``s1+s2``)."""
    have = {sensor_of(b) for b in bands}
    return "s1+s2" if have == {"s1", "s2"} else have.pop()


def arm_bands(cfg: Any, have: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Every pre-trained arm's band tuple (resolved as ``seco pretrain --bands`` does); refusals first.

    Raises:
        ConfigError: an arm with ``@`` outside ``--sensors s1+s2``, or a multi-sensor method given one sensor.
        BandError: bands the store lacks.
    """
    from seco.methods import get_method

    out: dict[str, tuple[str, ...]] = {}
    for arm in cfg.methods:
        method, bands = split_arm(arm)
        if bands is not None and cfg.sensors != "s1+s2":
            raise ConfigError(f"--methods {arm}: method@bands arms need --sensors s1+s2; drop '@{bands}' or add "
                              "--sensors s1+s2")
        if method == RANDOM:
            if bands is not None:
                raise ConfigError(f"--methods {arm}: random init is built for each input's own bands; give random")
            continue
        sel = tuple(parse_bands(bands or cfg.bands, have))
        need = set(get_method(method).sensors) - {sensor_of(b) for b in sel}
        if need:
            raise ConfigError(f"--methods {arm}: {method} needs {' and '.join(sorted(need))} bands too; use "
                              f"{method}@s1+s2")
        out[arm] = sel
    return out


@dataclass
class Images:
    """Probe images of every band (S2 reflectance, then VV, VH in dB), their names and labels."""

    x: torch.Tensor  # (N, C, H, W) float32
    names: tuple[str, ...]
    y: np.ndarray

    def select(self, bands: tuple[str, ...], inputs: str) -> torch.Tensor:
        """(N, len(bands), H, W) in ``bands`` order; channels of a sensor outside ``inputs`` are 0."""
        keep = input_sensors(inputs)
        chans = [self.x[:, self.names.index(b)] if sensor_of(b) in keep else torch.zeros_like(self.x[:, 0])
                 for b in bands]
        return torch.stack(chans, dim=1)


def names_of(inputs: str) -> tuple[str, ...]:
    """The channels of an input set, S2 first (as ``--bands s1+s2``)."""
    s = input_sensors(inputs)
    return (*(L2A if "s2" in s else ()), *(S1_BANDS if "s1" in s else ()))


def _fill_radar(x: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Radar NaN (no data) -> the channel's mean in dB (in place); returns ``x``."""
    for k, b in enumerate(names):
        if sensor_of(b) == "s1":
            ch = x[:, k]
            bad = np.isnan(ch)
            if bad.any():
                ch[bad] = float(np.nanmean(ch)) if (~bad).any() else 0.0
    return x


def _crop(a: np.ndarray, crop: int) -> np.ndarray:
    off = (a.shape[-1] - crop) // 2
    return a[..., off : off + crop, off : off + crop]


def store_images(store: Any, crop: int, seed: int) -> Images:
    """One date per location of an S1 + S2 store, with S1 where possible, centre-cropped: every band."""
    rng = np.random.default_rng(seed)
    names = (*store.bands, *S1_BANDS)
    xs = []
    for i in range(len(store)):
        both = store.valid(i) & store.s1.valid(i)
        d = int(rng.choice(np.flatnonzero(both if both.any() else store.valid(i))))
        s2 = _crop(store.read(i, dates=[d], bands=list(store.bands))[0], crop).astype(np.float32) / 10000.0
        s1 = _crop(store.s1.read(i, dates=[d])[0], crop).astype(np.float32)
        xs.append(np.concatenate([s2, s1]))
    x = _fill_radar(np.stack(xs), names)
    return Images(torch.from_numpy(x), names, np.asarray(store.labels()))


def cloudy_images(n: int, patch: int, crop: int, seed: int) -> tuple[Images, Images]:
    """``n`` simulated locations, clear and overcast (same surface and S1; the first date): every band."""
    from seco.synth.scene import simulate_location

    names = (*L2A, *S1_BANDS)
    views: dict[bool, list[np.ndarray]] = {False: [], True: []}
    labels = []
    for i in range(n):
        for overcast in (False, True):
            loc = simulate_location(seed, i, 3, patch, L2A, cloud_prob=1.0 if overcast else 0.0, nodata_prob=0.0,
                                    missing_prob=0.0, s1="RTC", s1_missing_prob=0.0,
                                    cloud_cover=1.0 if overcast else None)
            s2 = _crop(loc["images"][0], crop).astype(np.float32) / 10000.0
            views[overcast].append(np.concatenate([s2, _crop(loc["s1"]["db"][0], crop).astype(np.float32)]))
        labels.append(loc["label"])
    x_clear = _fill_radar(np.stack(views[False]), names)
    x_cloud = _fill_radar(np.stack(views[True]), names)
    y = np.asarray(labels)
    return Images(torch.from_numpy(x_clear), names, y), Images(torch.from_numpy(x_cloud), names, y)


def with_clouds(clear: Images, overcast: Images, fraction: float, seed: int) -> Images:
    """The cloudy-optics scenes: ``fraction`` of the locations of every class overcast, chosen by ``seed``."""
    rng = np.random.default_rng([seed, 17])
    pick = np.zeros(len(clear.y), bool)
    for c in np.unique(clear.y):
        idx = rng.permutation(np.flatnonzero(clear.y == c))
        pick[idx[: int(round(fraction * len(idx)))]] = True
    x = torch.where(torch.from_numpy(pick)[:, None, None, None], overcast.x, clear.x)
    return Images(x, clear.names, clear.y)


@dataclass
class Data:
    """Everything the tasks need, made once per invocation."""

    probe: Images
    cloudy: dict[int, Images]  # percent overcast -> scenes


def load_data(probe_store: Path, cfg: Any) -> Data:
    """The probe images of the labelled S1 + S2 store and the cloudy-optics scenes."""
    from seco.store import open_store

    crop = min(cfg.crop, cfg.probe_patch)
    probe = store_images(open_store(probe_store), crop, cfg.seed0)
    clear, overcast = cloudy_images(cfg.probe_locations, cfg.probe_patch, crop, 4000 + cfg.seed0)
    cloudy = {int(round(100 * f)): with_clouds(clear, overcast, f, cfg.seed0) for f in CLOUD_FRACTIONS}
    return Data(probe, cloudy)


def evaluate_cell(weights: str, bands: tuple[str, ...] | None, seed: int, data: Data,
                  split_seed: int) -> dict[str, Any]:
    """Every task of one backbone (``bands`` None: random init, built for each input's own bands)."""
    from seco.experiment import evaluate as ev

    tasks: dict[str, Any] = {}
    for inputs in INPUTS:
        b = bands if bands is not None else names_of(inputs)
        if covers(b, inputs):
            tasks[f"landcover:{inputs}"] = ev.probe(weights, b, seed, data.probe.select(b, inputs), data.probe.y,
                                                    split_seed)
    for inputs in INPUTS:
        if bands is not None and native(bands) != inputs:
            continue
        b = bands if bands is not None else names_of(inputs)
        for pct, scenes in data.cloudy.items():
            tasks[f"cloudy{pct}:{inputs}"] = ev.probe(weights, b, seed, scenes.select(b, inputs), scenes.y,
                                                      split_seed)
    return tasks
