"""BigEarthNet v1.0 with its Sentinel-1 part (BigEarthNet-MM, Sumbul et al. 2021): S1-only, S2-only or S1 + S2.

Official file layout read (``BigEarthNet-S1-v1.0.tar.gz`` unpacks to ``BigEarthNet-S1-v1.0/``, beside the S2
archive's ``BigEarthNet-v1.0/``; as torchgeo's ``BigEarthNet(bands="s1"|"all")`` reads it)::

    <root>/BigEarthNet-S1-v1.0/<s1 patch>/<s1 patch>_VV.tif, <s1 patch>_VH.tif
        single-band float32 GeoTIFFs, 120 x 120 px on the 10 m grid of the matching S2 patch
    <root>/BigEarthNet-S1-v1.0/<s1 patch>/<s1 patch>_labels_metadata.json
        {"labels": [43-class CORINE names], "coordinates": {...}, "projection": ...,
         "corresponding_s2_patch": "<s2 patch>", "scene_source": ..., "acquisition_time": ...}
    <root>/BigEarthNet-v1.0/<s2 patch>/...       the S2 patch (see :mod:`seco.data.bigearthnet`)

``<s1 patch>`` is e.g. ``S1A_IW_GRDH_1SDV_20170613T165043_33UUP_61_39``. The S1 patch's JSON names its S2 patch
(``corresponding_s2_patch``) and carries the same labels. Sources of this layout: torchgeo
``torchgeo/datasets/bigearthnet.py`` (``BigEarthNet``, ``bands="s1"``/``"all"``) and its fake-data script
``tests/data/bigearthnet/v1/data.py``; the S1 JSON fields from torchgeo's recorded test JSON
(``tests/data/bigearthnet/v1/BigEarthNet-S1-v1.0/.../..._labels_metadata.json``).

Units: the S1 values are **sigma0 backscatter in dB** as the files hold them: the BigEarthNet-S1 processing
(jiankang1991/BigEarthNet-Sen1, README: border and thermal noise removal, radiometric calibration, speckle
filtering, terrain correction, "transform into decibels (dB)") writes dB, and the published BigEarthNet-S1
normalisation statistics are dB (VV mean ~ -12.6, VH ~ -19 to -20). They are read as float32 dB without any
conversion; the first patches are range-checked (:func:`seco.data.sar.check_db`) when the dataset is built, so
a copy in other units (linear power, integer codes) fails before any work.

Bands: ``"s1"`` (VV, VH), ``"s2"`` (the 12 L2A bands), ``"s1+s2"`` and the other specs of
:func:`seco.data.sar.parse_sensor_bands`; S2 channels come first, then S1. :attr:`BigEarthNetMM.sensor_bands`
says which channel is which sensor and unit (S2 reflectance, S1 dB), so each is normalised with its own
statistics. Patches are enumerated from the S1 folders (every S1 patch has its S2 patch) whatever the bands,
so S1-only, S2-only and S1 + S2 runs see the same patches and splits; :attr:`BigEarthNetMM.names` are the S2
patch names (the first column of the published split files and of the snow / cloud lists).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seco.bands import BY_NAME
from seco.data.bigearthnet import (
    ARCHIVE_DIR,
    CLASSES_19,
    CLASSES_43,
    FILE_BANDS,
    NATIVE_SIZE,
    label_names_to_target,
    read_labels_metadata,
)
from seco.data.raster import read_single_band, resize, to_reflectance
from seco.data.sar import SensorBands, check_db, parse_sensor_bands, read_s1_db
from seco.data.splits import (
    DEFAULT_FRACTIONS,
    check_fractions,
    check_split,
    match_names,
    rarest_label_strata,
    read_name_list,
    stratified_split,
)
from seco.errors import ConfigError, DatasetError

S1_ARCHIVE_DIR = "BigEarthNet-S1-v1.0"
#: S1 patch side in pixels (10 m grid).
S1_SIZE = 120
#: Patches range-checked for dB when the dataset is built.
_CHECKED_PATCHES = 3


def _dir(root: Path, given: str | Path | None, name: str, what: str) -> Path:
    if given is not None:
        p = Path(given)
    elif root.name == name:
        p = root
    else:
        p = root / name
    if not p.is_dir():
        raise DatasetError(
            f"BigEarthNet {what} folder {p} not found; give root holding {name}/ (or the folder itself)"
        )
    return p


class BigEarthNetMM(Dataset):
    """BigEarthNet v1.0 S1 (and matched S2) patches with multi-hot 19- or 43-class targets.

    Args:
        root: the folder holding ``BigEarthNet-S1-v1.0/`` (and ``BigEarthNet-v1.0/`` when S2 bands are read),
            or the ``BigEarthNet-S1-v1.0`` folder itself for S1-only.
        bands: ``"s1"``, ``"s2"``, ``"s1+s2"``, ... (:func:`seco.data.sar.parse_sensor_bands`).
        s1_root, s2_root: the two archive folders when they are not under ``root``.
        split, split_file, seed, fractions, num_classes, size, exclude, drop_unlabeled, transform: as
            :class:`seco.data.bigearthnet.BigEarthNet` (names in ``split_file`` / ``exclude`` are S2 names).

    Attributes:
        sensor_bands: the selection by sensor; ``bands`` its channel names; ``units`` per channel.
        names: ``(N,)`` S2 patch names; ``s1_names``: the matching S1 patch names; ``targets``: ``(N, K)``.

    Samples: ``{"image": (C, size, size) float32 (S2 reflectance, then S1 dB; NaN = S1 nodata),
    "label": (K,) float32, "name": str (S2 name), "s1_name": str}``.
    """

    def __init__(
        self,
        root: str | Path,
        bands: str | Sequence[str] = "s1",
        s1_root: str | Path | None = None,
        s2_root: str | Path | None = None,
        split: str | None = None,
        split_file: str | Path | None = None,
        seed: int = 0,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        num_classes: int = 19,
        size: int = 120,
        exclude: Sequence[str | Path] = (),
        drop_unlabeled: bool = True,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        if num_classes not in (19, 43):
            raise ConfigError(f"num_classes={num_classes!r}; BigEarthNet has 19 (Sumbul et al. 2021) or 43 classes")
        if int(size) < 1:
            raise ConfigError(f"size={size!r}; give the output side in pixels, e.g. 120 for the 10 m grid")
        check_split(split)
        check_fractions(fractions)
        self.root = Path(root)
        self.sensor_bands: SensorBands = parse_sensor_bands(bands, FILE_BANDS)
        self.bands = self.sensor_bands.names
        self.units = self.sensor_bands.units
        self.s1_root = _dir(self.root, s1_root, S1_ARCHIVE_DIR, "S1")
        self.s2_root = _dir(self.root, s2_root, ARCHIVE_DIR, "S2") if self.sensor_bands.s2 else None
        self.num_classes = num_classes
        self.classes = CLASSES_19 if num_classes == 19 else CLASSES_43
        self.size = int(size)
        self.split = split
        self.transform = transform

        s1_all, s2_all, targets = self._scan()
        excluded: set[str] = set()
        for path in exclude:
            excluded.update(read_name_list(path))
        keep = np.arange(len(s2_all))
        if split_file is not None:
            keep = np.asarray(match_names(read_name_list(split_file), s2_all, split_file, self.s1_root), np.int64)
        self.excluded = [s2_all[i] for i in keep if s2_all[i] in excluded]
        keep = np.asarray([i for i in keep if s2_all[i] not in excluded], np.int64)
        self.dropped: list[str] = []
        if drop_unlabeled and num_classes == 19:
            self.dropped = [s2_all[i] for i in keep if not targets[i].any()]
            keep = np.asarray([i for i in keep if targets[i].any()], np.int64)
        if split_file is None and split is not None:
            keep = keep[stratified_split(rarest_label_strata(targets[keep]), seed=seed, fractions=fractions)[split]]
        self.names: list[str] = [s2_all[i] for i in keep]
        self.s1_names: list[str] = [s1_all[i] for i in keep]
        self.targets: np.ndarray = targets[keep]  # (N, K)
        if self.sensor_bands.s1 and self.names:
            self._check_units()

    def _scan(self) -> tuple[list[str], list[str], np.ndarray]:
        """(S1 names, their S2 names, (N, K) targets), sorted by S2 name."""
        with os.scandir(self.s1_root) as entries:
            s1 = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith((".", "_")))
        if not s1:
            raise DatasetError(
                f"no patch folders in {self.s1_root}; expected <s1 patch>/<s1 patch>_VV.tif, _VH.tif and "
                "_labels_metadata.json (BigEarthNet-S1 v1.0 layout)"
            )
        rows = []
        for name in s1:
            s2_name, labels = self._read_meta(name)
            rows.append((s2_name, name, label_names_to_target(labels, self.num_classes, name)))
        rows.sort(key=lambda r: r[0])
        dup = sorted(n for n, k in Counter(r[0] for r in rows).items() if k > 1)
        if dup:
            raise DatasetError(
                f"S2 patch(es) {', '.join(dup[:3])} named by several S1 patches in {self.s1_root}; the copy mixes releases"
            )
        targets = np.stack([r[2] for r in rows]) if rows else np.zeros((0, self.num_classes), np.uint8)
        return [r[1] for r in rows], [r[0] for r in rows], targets

    def _read_meta(self, name: str) -> tuple[str, list[str]]:
        path = self.s1_root / name / f"{name}_labels_metadata.json"
        meta = read_labels_metadata(path, "BigEarthNet-S1")
        s2 = meta.get("corresponding_s2_patch")
        if not isinstance(s2, str) or not s2:
            raise DatasetError(
                f"{path} has no 'corresponding_s2_patch'; BigEarthNet-S1 v1.0 label files name their S2 patch"
            )
        return s2, meta["labels"]

    def _check_units(self) -> None:
        picks = range(min(_CHECKED_PATCHES, len(self.names)))
        values = np.concatenate([self._read_s1(i, check=False).ravel() for i in picks])
        check_db(values, f"BigEarthNet-S1 patches under {self.s1_root}",
                 "BigEarthNet-S1 v1.0 ships sigma0 in dB; re-extract the official archive")

    def __len__(self) -> int:
        return len(self.names)

    def _read_s1(self, i: int, check: bool = False) -> np.ndarray:
        name = self.s1_names[i]
        planes = []
        for pol in self.sensor_bands.s1:
            path = self.s1_root / name / f"{name}_{pol}.tif"
            a = read_s1_db(path, check=check)  # (1, h, w)
            if a.shape != (1, S1_SIZE, S1_SIZE):
                raise DatasetError(f"{path} is {a.shape[1]} x {a.shape[2]} px; BigEarthNet-S1 patches are 120 x 120")
            planes.append(a)
        return np.concatenate(planes)  # (c1, 120, 120)

    def load(self, i: int) -> torch.Tensor:
        """Patch ``i`` as ``(C, size, size)`` float32: S2 reflectance channels, then S1 dB channels."""
        planes = []
        if self.s2_root is not None:
            name = self.names[i]
            for band in self.sensor_bands.s2:
                path = self.s2_root / name / f"{name}_{band}.tif"
                dn = read_single_band(path)  # (h, w) uint16
                native = NATIVE_SIZE[BY_NAME[band].resolution_m]
                if dn.shape != (native, native):
                    raise DatasetError(f"{path} is {dn.shape[0]} x {dn.shape[1]} px; BigEarthNet {band} is {native} px")
                planes.append(resize(to_reflectance(dn)[None], (self.size, self.size)))
        if self.sensor_bands.s1:
            planes.append(resize(torch.from_numpy(self._read_s1(i)), (self.size, self.size)))
        return torch.cat(planes, dim=0)  # (C, size, size)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = {
            "image": self.load(i),
            "label": torch.from_numpy(self.targets[i].astype(np.float32)),
            "name": self.names[i],
            "s1_name": self.s1_names[i],
        }
        return self.transform(sample) if self.transform is not None else sample
