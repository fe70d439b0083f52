"""BigEarthNet v2.0 (reBEN, Clasen et al. 2024): S1-only, S2-only or S1 + S2 patches with the 19-class labels.

Official file layout read (``BigEarthNet-S1.tar.zst``, ``BigEarthNet-S2.tar.zst`` and ``metadata.parquet``
unpacked side by side; as torchgeo's ``BigEarthNetV2`` reads them)::

    <root>/metadata.parquet
        one row per patch: patch_id (S2 patch name), labels (list of 19-class names), split ("train",
        "validation", "test"), country, s1_name, s2v1_name, contains_seasonal_snow, contains_cloud_or_shadow
    <root>/BigEarthNet-S1/<s1 tile>/<s1_name>/<s1_name>_VV.tif, <s1_name>_VH.tif
        <s1 tile> is s1_name without its last three "_" fields:
        S1A_IW_GRDH_1SDV_20170613T165043/S1A_IW_GRDH_1SDV_20170613T165043_33UUP_61_39/
    <root>/BigEarthNet-S2/<s2 tile>/<patch_id>/<patch_id>_B01.tif ... _B12.tif, _B8A.tif
        <s2 tile> is patch_id without its last two "_" fields:
        S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57/

Sources: torchgeo ``torchgeo/datasets/bigearthnet.py`` (``BigEarthNetV2._load_image``: the folder rule and the
``s1_name`` / ``patch_id`` columns) and its fake-data script ``tests/data/bigearthnet/v2/data.py``; the column
list and the split value ``"validation"`` from reBEN's own loaders (configilm ``BENv2`` utilities: "Order:
'patch_id', 'labels', 'split', 'country', 's1_name', 's2v1_name', 'contains_seasonal_snow',
'contains_cloud_or_shadow'"). torchgeo's fake writes ``"val"``; both are accepted for ``split="val"``.

Units: S1 as the files hold it, backscatter in dB (reBEN keeps BigEarthNet-S1's dB values), range-checked on
the first patches when the dataset is built; S2 ``DN / 10000``. Each band is resampled to ``size`` (default
120, the 10 m grid); S2 bands may be stored at their native size (60 / 20 px) or already at 120 px.

Bands and channel order as :mod:`seco.data.bigearthnet_s1` (S2 first, then S1; :attr:`BigEarthNetV2.sensor_bands`
gives each channel's sensor and unit). ``drop_flagged`` leaves out the patches the metadata flags for seasonal
snow or cloud / shadow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset

from seco.bands import BY_NAME
from seco.data.bigearthnet import CLASSES_19, FILE_BANDS, NATIVE_SIZE
from seco.data.raster import read_single_band, resize, to_reflectance
from seco.data.sar import SensorBands, check_db, parse_sensor_bands, read_s1_db
from seco.data.splits import check_split
from seco.errors import ConfigError, DatasetError

METADATA = "metadata.parquet"
S1_DIR = "BigEarthNet-S1"
S2_DIR = "BigEarthNet-S2"
#: Values of the ``split`` column per split name (reBEN writes "validation"; torchgeo's fake "val").
SPLIT_VALUES: dict[str, tuple[str, ...]] = {"train": ("train",), "val": ("validation", "val"), "test": ("test",)}
FLAG_COLUMNS = ("contains_seasonal_snow", "contains_cloud_or_shadow")
_REQUIRED = ("patch_id", "labels", "split", "s1_name")
S1_SIZE = 120
_CHECKED_PATCHES = 3


def s1_folder(s1_name: str) -> str:
    """The tile folder of an S1 patch: its name without the last three ``_`` fields."""
    return "_".join(s1_name.split("_")[:-3])


def s2_folder(patch_id: str) -> str:
    """The tile folder of an S2 patch: its name without the last two ``_`` fields."""
    return "_".join(patch_id.split("_")[:-2])


def read_metadata(path: Path) -> dict[str, list[Any]]:
    """The columns of ``metadata.parquet`` as lists (pyarrow, no pandas).

    Raises:
        DatasetError: a missing or unreadable file, or a required column missing.
    """
    if not path.is_file():
        raise DatasetError(
            f"{path} not found; reBEN (BigEarthNet v2.0) ships metadata.parquet beside BigEarthNet-S1/ and "
            "BigEarthNet-S2/, give root holding all three"
        )
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types on a damaged file
        raise DatasetError(f"cannot read {path} as parquet: {e}; download metadata.parquet again") from e
    missing = [c for c in _REQUIRED if c not in table.column_names]
    if missing:
        raise DatasetError(
            f"{path} lacks column(s) {', '.join(missing)} (it has {', '.join(table.column_names)}); it is not reBEN's "
            "metadata.parquet"
        )
    return {c: table.column(c).to_pylist() for c in table.column_names}


class BigEarthNetV2(Dataset):
    """reBEN (BigEarthNet v2.0) patches with multi-hot 19-class targets, S1, S2 or both.

    Args:
        root: the folder holding ``metadata.parquet``, ``BigEarthNet-S1/`` and (for S2 bands) ``BigEarthNet-S2/``.
        bands: ``"s1"``, ``"s2"``, ``"s1+s2"``, ... (:func:`seco.data.sar.parse_sensor_bands`).
        split: ``None`` (every row), ``"train"``, ``"val"`` or ``"test"``: the official split column.
        size: output side in pixels (120 = 10 m).
        drop_flagged: leave out rows flagged for seasonal snow or cloud / shadow.
        drop_unlabeled: leave out rows with no label.
        transform: optional callable applied to each sample dict.

    Attributes:
        sensor_bands, bands, units: as :class:`seco.data.bigearthnet_s1.BigEarthNetMM`.
        names: ``(N,)`` patch_id (S2 names); ``s1_names``; ``targets``: ``(N, 19)`` uint8.

    Samples: ``{"image": (C, size, size) float32, "label": (19,) float32, "name": str, "s1_name": str}``.
    """

    def __init__(
        self,
        root: str | Path,
        bands: str | Sequence[str] = "s1",
        split: str | None = None,
        size: int = 120,
        drop_flagged: bool = False,
        drop_unlabeled: bool = True,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        check_split(split)
        if int(size) < 1:
            raise ConfigError(f"size={size!r}; give the output side in pixels, e.g. 120 for the 10 m grid")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"reBEN root {self.root} is not a folder; give the folder holding {METADATA}")
        self.sensor_bands: SensorBands = parse_sensor_bands(bands, FILE_BANDS)
        self.bands = self.sensor_bands.names
        self.units = self.sensor_bands.units
        self.classes = CLASSES_19
        self.num_classes = len(CLASSES_19)
        self.size = int(size)
        self.split = split
        self.transform = transform
        for sub, needed in ((S1_DIR, bool(self.sensor_bands.s1)), (S2_DIR, bool(self.sensor_bands.s2))):
            if needed and not (self.root / sub).is_dir():
                raise DatasetError(f"{self.root / sub} not found; bands {bands!r} need reBEN's {sub}/ under root")
        meta = read_metadata(self.root / METADATA)
        keep = list(range(len(meta["patch_id"])))
        if split is not None:
            values = SPLIT_VALUES[split]
            keep = [i for i in keep if meta["split"][i] in values]
        if drop_flagged:
            flags = [c for c in FLAG_COLUMNS if c in meta]
            keep = [i for i in keep if not any(bool(meta[c][i]) for c in flags)]
        targets = np.stack([self._target(meta["labels"][i], meta["patch_id"][i]) for i in keep]) if keep else (
            np.zeros((0, self.num_classes), np.uint8))
        if drop_unlabeled and len(keep):
            labeled = np.asarray(targets.any(axis=1), dtype=bool)  # (N,)
            keep = [i for i, ok in zip(keep, labeled.tolist(), strict=True) if ok]
            targets = targets[labeled]
        if not keep:
            raise DatasetError(f"no rows of {self.root / METADATA} for split {split!r}; check the split name")
        self.names: list[str] = [str(meta["patch_id"][i]) for i in keep]
        self.s1_names: list[str] = [str(meta["s1_name"][i]) for i in keep]
        self.targets: np.ndarray = targets  # (N, 19)
        if self.sensor_bands.s1:
            values_db = np.concatenate([self._read_s1(i).ravel() for i in range(min(_CHECKED_PATCHES, len(self)))])
            check_db(values_db, f"reBEN S1 patches under {self.root / S1_DIR}",
                     "reBEN ships S1 backscatter in dB; re-extract the official archive")

    def _target(self, labels: Any, name: str) -> np.ndarray:
        target = np.zeros(self.num_classes, np.uint8)
        unknown = [n for n in (labels or []) if n not in CLASSES_19]
        if unknown:
            raise DatasetError(
                f"unknown reBEN label(s) {unknown} of {name}; expected the 19-class names (e.g. 'Arable land')"
            )
        for n in labels or []:
            target[CLASSES_19.index(n)] = 1
        return target

    def __len__(self) -> int:
        return len(self.names)

    def _read_s1(self, i: int) -> np.ndarray:
        name = self.s1_names[i]
        folder = self.root / S1_DIR / s1_folder(name) / name
        planes = []
        for pol in self.sensor_bands.s1:
            path = folder / f"{name}_{pol}.tif"
            a = read_s1_db(path, check=False)  # (1, h, w)
            if a.shape != (1, S1_SIZE, S1_SIZE):
                raise DatasetError(f"{path} is {a.shape[1]} x {a.shape[2]} px; reBEN S1 patches are 120 x 120")
            planes.append(a)
        return np.concatenate(planes)  # (c1, 120, 120)

    def load(self, i: int) -> torch.Tensor:
        """Patch ``i`` as ``(C, size, size)`` float32: S2 reflectance channels, then S1 dB channels."""
        planes = []
        name = self.names[i]
        folder = self.root / S2_DIR / s2_folder(name) / name
        for band in self.sensor_bands.s2:
            path = folder / f"{name}_{band}.tif"
            dn = read_single_band(path)  # (h, w)
            native = NATIVE_SIZE[BY_NAME[band].resolution_m]
            if dn.shape not in ((native, native), (S1_SIZE, S1_SIZE)):
                raise DatasetError(
                    f"{path} is {dn.shape[0]} x {dn.shape[1]} px; reBEN {band} patches are {native} px (native) or 120"
                )
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
