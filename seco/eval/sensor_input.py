"""Which sensors a classification run reads, and how they reach the backbone: S1-only, S2-only or S1 + S2.

``seco eval eurosat|bigearthnet --bands s1|s2|s1+s2``: the data is read in the backbone's channel order (S2
bands first, then S1, as every multi-sensor model of seco). Three cases:

- random init: the backbone is built for exactly the bands read (``--bands``, default every band of the data);
- trained weights, the bands read = the weights' bands: the usual case (``--bands s1+s2`` on an S1 + S2 backbone,
  ``--bands s2`` or no ``--bands`` on an optical one);
- an S1 + S2 backbone given one sensor (``--bands s2`` or ``--bands s1``): the data holds only that sensor's
  channels; the other sensor's channels are fed as **zeros after normalisation** (i.e. at their mean), exactly
  how seco-s12 shows a single-sensor view in pre-training (``seco.data.views.make_views``).

With trained weights the sensor words mean the weights' channels of that sensor: ``--bands s2`` of an export
trained on the 12 L2A bands reads those 12 bands from EuroSAT (which holds 13). Anything else the backbone has no
channels for (S1 input to an optical backbone, VH to a VV-only one) is refused in one line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from seco.bands import L2A, S1_BANDS, sensor_of
from seco.data.bigearthnet_s1 import S1_ARCHIVE_DIR, BigEarthNetMM
from seco.data.eurosat_sar import EuroSATSAR
from seco.data.reben import METADATA, BigEarthNetV2
from seco.data.sar import SensorBands, parse_sensor_bands, split_model_bands
from seco.errors import BandError, ConfigError
from seco.eval.backbone import check_band_set, resolve_bands
from seco.eval.config import ClassifyConfig

#: ``--bands`` values that name whole sensors.
SENSOR_WORDS = {"s1": ("s1",), "s2": ("s2",), "s1+s2": ("s2", "s1"), "s2+s1": ("s2", "s1")}
_NAMES = {"s1": "Sentinel-1", "s2": "Sentinel-2"}


@dataclass(frozen=True)
class InputPlan:
    """The channels read from the data and the backbone's input channels.

    Attributes:
        data_bands: channels read from the dataset, in the backbone's order.
        model_bands: the backbone's input channels (equal to ``data_bands`` unless a sensor is missing).
    """

    data_bands: tuple[str, ...]
    model_bands: tuple[str, ...]

    @property
    def zeroed(self) -> tuple[str, ...]:
        """The backbone channels the data does not provide (fed as zeros after normalisation)."""
        return tuple(b for b in self.model_bands if b not in self.data_bands)

    @property
    def positions(self) -> tuple[int, ...]:
        """Position of each data channel among the backbone's channels."""
        return tuple(self.model_bands.index(b) for b in self.data_bands)

    @property
    def sensors(self) -> tuple[str, ...]:
        """The sensors read (``"s2"``, ``"s1"``), S2 first."""
        present = {sensor_of(b) for b in self.data_bands}
        return tuple(s for s in ("s2", "s1") if s in present)

    def note(self) -> str | None:
        """The report's sentence on a missing sensor, or None."""
        if not self.zeroed:
            return None
        missing = sorted({sensor_of(b) for b in self.zeroed}, reverse=True)
        return (f"The backbone takes {' + '.join(_NAMES[s] for s in ('s2', 's1') if s in {sensor_of(b) for b in self.model_bands})}"
                f" but the evaluation reads only {' + '.join(_NAMES[s] for s in self.sensors)}: the "
                f"{' + '.join(_NAMES[s] for s in missing)} channels {', '.join(self.zeroed)} are fed as zeros after "
                "normalisation (their mean), as seco-s12 shows single-sensor views in pre-training.")


def _sensor_parts(model: SensorBands, sensors: Sequence[str]) -> tuple[str, ...]:
    return tuple(b for s in ("s2", "s1") if s in sensors for b in getattr(model, s))


def _refuse(model: SensorBands, wanted: SensorBands, source: str) -> None:
    """One line for wanted channels the backbone has no channel for (a whole sensor, or a polarisation)."""
    for s in ("s1", "s2"):
        lack = [b for b in getattr(wanted, s) if b not in getattr(model, s)]
        if not lack:
            continue
        has = getattr(model, s)
        other = "s2" if s == "s1" else "s1"
        if not has:
            raise BandError(
                f"weights {source!r} take only {_NAMES[other]} bands ({', '.join(getattr(model, other))}); they have "
                f"no channels for the {_NAMES[s]} input {', '.join(lack)}: use a backbone exported with "
                f"{'VV / VH' if s == 's1' else 'Sentinel-2 bands'} (seco pretrain --method seco-s12 --bands s1+s2), "
                f"or evaluate with --bands {other}"
            )
        raise BandError(
            f"weights {source!r} have no channel for {_NAMES[s]} band(s) {', '.join(lack)} (their {_NAMES[s]} "
            f"channels are {', '.join(has)}); drop --bands, or give --bands {'s1' if s == 's1' else 's2'}"
        )


def plan_inputs(
    weight_bands: Sequence[str] | None, requested: str | None, available: Sequence[str], source: str
) -> InputPlan:
    """Which channels to read and which backbone channels they feed (see the module docstring).

    Args:
        weight_bands: the weights' input bands (None: random init).
        requested: ``--bands`` (None: the weights' bands; every band of the data for random init).
        available: every band the data holds (S2 names, then ``VV``, ``VH`` where an S1 source is given).
        source: the ``--weights`` value, for messages.

    Raises:
        BandError: bands the backbone has no channels for, or that the data lacks.
    """
    s2_avail = tuple(b for b in available if sensor_of(b) == "s2")
    s1_avail = tuple(b for b in available if sensor_of(b) == "s1")
    word = requested.strip().lower() if requested is not None else None
    tokens = set(re.split(r"[+,\s]+", word)) if word else set()
    radar = bool(s1_avail) or bool(tokens & {"s1", "vv", "vh"}) or (
        weight_bands is not None and any(sensor_of(b) == "s1" for b in weight_bands))
    if not radar:  # optical only: exactly as before
        bands = resolve_bands(weight_bands, requested, available, source)
        return InputPlan(bands, bands)
    if weight_bands is None:
        bands = parse_sensor_bands(requested, s2_avail, s1_avail).names if requested else (*s2_avail, *s1_avail)
        return InputPlan(bands, bands)
    model = split_model_bands(weight_bands)
    if word is None:
        data = model.names
    elif word in SENSOR_WORDS:
        lacking = [s for s in SENSOR_WORDS[word] if not getattr(model, s)]
        if lacking:
            _refuse(model, SensorBands(s2=(s2_avail or L2A) if "s2" in lacking else (),
                                       s1=S1_BANDS if "s1" in lacking else ()), source)
        data = _sensor_parts(model, SENSOR_WORDS[word])
    else:
        wanted = parse_sensor_bands(requested, (*s2_avail, *(b for b in model.s2 if b not in s2_avail)),  # type: ignore[arg-type]
                                    (*s1_avail, *(b for b in model.s1 if b not in s1_avail)))
        _refuse(model, wanted, source)
        data = _sensor_parts(model, [s for s in ("s2", "s1") if getattr(wanted, s)])
        check_band_set(data, wanted.names, source)
    missing = [b for b in data if b not in available]
    if missing:
        hint = (" (give the Sentinel-1 data with --s1-root, or a reBEN --root)"
                if all(sensor_of(b) == "s1" for b in missing) else "")
        raise BandError(
            f"weights {source!r} need band(s) {', '.join(missing)} that this dataset does not have (it has "
            f"{', '.join(available) or 'none'}){hint}; evaluate them on data with those bands"
            + (", or feed only one sensor with --bands s1 / --bands s2" if model.s1 and model.s2 else "")
        )
    return InputPlan(tuple(b for b in model.names if b in data), model.names)


# ---------------------------------------------------------------- the datasets of one run


def is_reben(root: str | Path | None) -> bool:
    """Whether ``root`` is a reBEN (BigEarthNet v2.0) folder: it holds ``metadata.parquet``."""
    return root is not None and (Path(root) / METADATA).is_file()


def has_s1_source(cfg: ClassifyConfig) -> bool:
    """Whether the run can read Sentinel-1: ``--s1-root``, or a reBEN ``--root``."""
    return cfg.s1_root is not None or (cfg.task == "bigearthnet" and is_reben(cfg.root))


def available_bands(cfg: ClassifyConfig, s2_bands: Callable[[], tuple[str, ...]]) -> tuple[str, ...]:
    """Every band the run's data holds: the S2 release's (``s2_bands()``, when there is a ``--root``), then VV, VH
    where there is an S1 source."""
    s2 = s2_bands() if cfg.root is not None else ()
    return (*s2, *(S1_BANDS if has_s1_source(cfg) else ()))


def open_multisensor(cfg: ClassifyConfig, bands: tuple[str, ...], split: str) -> Dataset:
    """One split of a run with an S1 source (:func:`has_s1_source`): EuroSAT-SAR (paired with EuroSAT MS for S2
    bands), BigEarthNet-S1 + S2 v1.0, or reBEN. S1-only, S2-only and S1 + S2 runs of one source see the same
    patches and splits (the S1 release enumerates them).

    Raises:
        ConfigError: options a source does not have (reBEN: --split-file, --exclude, 43 classes).
        DatasetError, BandError: from the readers.
    """
    kw: dict[str, Any] = dict(split=split, split_file=cfg.split_files.get(split), seed=cfg.seed)
    if cfg.task == "eurosat":
        assert cfg.s1_root is not None
        return EuroSATSAR(cfg.s1_root, bands=list(bands), s2_root=cfg.root, **kw)
    if cfg.s1_root is None:  # reBEN: both sensors under root, its own split column
        bad = [f for f, on in (("--split-file", bool(cfg.split_files)), ("--exclude", bool(cfg.exclude)),
                                ("--num-classes 43", cfg.num_classes == 43)) if on]
        if bad:
            raise ConfigError(f"{', '.join(bad)} do(es) not apply to reBEN {cfg.root} (its metadata.parquet holds the "
                              "official 19-class split); drop them")
        return BigEarthNetV2(cfg.root, bands=list(bands), split=split, size=cfg.size)  # type: ignore[arg-type]
    s1 = Path(cfg.s1_root)
    s1 = s1 / S1_ARCHIVE_DIR if (s1 / S1_ARCHIVE_DIR).is_dir() else s1  # the archive folder, or the one holding it
    return BigEarthNetMM(cfg.root or s1, bands=list(bands), s1_root=s1, num_classes=cfg.num_classes, size=cfg.size,
                         exclude=cfg.exclude, **kw)
