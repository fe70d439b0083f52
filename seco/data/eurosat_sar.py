"""EuroSAT-SAR / EuroSAT-S1 (Wang et al. 2024, Copernicus-Bench 2025): the Sentinel-1 twin of EuroSAT, alone or
paired with the EuroSAT multispectral release.

Layouts read (the kind is found from the folders)::

    EuroSAT-SAR (hf.co/datasets/wangyi111/EuroSAT-SAR; read by zhu-xlab/FGMAE
    ``src/transfer_classification/datasets/EuroSat/eurosat_dataset_s1.py``):
        <root>/<Class>/<Class>_<n>.tif
    Copernicus-Bench EuroSAT-S1 ("functionally identical to EuroSAT-SAR"; torchgeo
    ``torchgeo/datasets/copernicus/eurosat_s1.py`` and its fake ``tests/data/copernicus/l2_eurosat_s1s2/data.py``):
        <root>/eurosat_s1/all_imgs/<Class>/<Class>_<n>.tif   (root may also be eurosat_s1/ or all_imgs/)
        <root>/eurosat_s1/eurosat-train.txt, -val.txt, -test.txt   (file names as .jpg, one per line)

Each file is a 64 x 64 GeoTIFF of 2 float32 bands, **VV then VH, backscatter in dB** (FGMAE reads them as
``vv, vh`` and normalises with dB statistics, mean -12.59 / -20.26), on the grid of the EuroSAT image of the same
name: ``<Class>_<n>`` is the same place in both releases (Copernicus-Bench writes the S1 and S2 twins under one
file name). The first files are range-checked for dB when the dataset is built.

Bands: ``"s1"`` (default), or with ``s2_root`` (the 13-band EuroSAT MS release, read by
:class:`seco.data.eurosat.EuroSAT`) ``"s2"`` / ``"s1+s2"`` / ``"rgb+s1"`` ...; S2 channels first (reflectance),
then S1 (dB). Only names present in both releases are kept when S2 bands are asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seco.bands import L1C
from seco.data.eurosat import CLASSES, PATCH_SIZE, EuroSAT
from seco.data.sar import SensorBands, check_db, parse_sensor_bands, read_s1_db
from seco.data.splits import DEFAULT_FRACTIONS, check_fractions, select_indices
from seco.errors import DatasetError

#: Sub-folders searched for the class folders (Copernicus-Bench layout).
NESTED_ROOTS: tuple[str, ...] = ("all_imgs", "eurosat_s1/all_imgs")
#: Polarisations inside each file, in order.
FILE_POLS: tuple[str, ...] = ("VV", "VH")
_CHECKED_FILES = 5


def _class_root(root: Path) -> Path:
    for cand in (root, *(root / n for n in NESTED_ROOTS)):
        if any((cand / c).is_dir() for c in CLASSES):
            return cand
    raise DatasetError(
        f"no EuroSAT-SAR class folders under {root}; expected <root>/<Class>/<Class>_<n>.tif (EuroSAT-SAR) or "
        f"<root>/eurosat_s1/all_imgs/<Class>/... (Copernicus-Bench EuroSAT-S1) with classes {', '.join(CLASSES)}"
    )


def scan(class_root: Path) -> tuple[list[Path], np.ndarray]:
    """Every ``<Class>/<Class>_<n>.tif`` sorted by (class, n), and its class index.

    Raises:
        DatasetError: a missing class folder, a file whose name contradicts its folder, or no files.
    """
    files: list[Path] = []
    labels: list[int] = []
    missing = [c for c in CLASSES if not (class_root / c).is_dir()]
    if missing:
        raise DatasetError(f"EuroSAT-SAR class folder(s) {', '.join(missing)} missing in {class_root}; re-extract it")
    for label, cls in enumerate(CLASSES):
        found = [p for p in (class_root / cls).iterdir() if p.suffix.lower() in (".tif", ".tiff")]
        for p in found:
            prefix, _, number = p.stem.rpartition("_")
            if prefix != cls or not number.isdigit():
                raise DatasetError(f"file {p} does not follow <Class>/<Class>_<n>.tif; its class is ambiguous")
        found.sort(key=lambda p: int(p.stem.rpartition("_")[2]))
        files += found
        labels += [label] * len(found)
    if not files:
        raise DatasetError(f"no .tif files in the class folders of {class_root}; expected <Class>/<Class>_<n>.tif")
    return files, np.asarray(labels, dtype=np.int64)


class EuroSATSAR(Dataset):
    """EuroSAT-SAR (S1 dB), optionally with the EuroSAT MS bands of the same places.

    Args:
        root: the EuroSAT-SAR folder (layouts in the module docstring).
        bands: ``"s1"``, ``"VV"``, or with ``s2_root`` any spec of :func:`seco.data.sar.parse_sensor_bands`.
        s2_root: the EuroSAT multispectral release, for S2 bands.
        split, split_file, seed, fractions, transform: as :class:`seco.data.eurosat.EuroSAT`; a Copernicus-Bench
            list (``eurosat-train.txt``, ``.jpg`` names) matches by stem.

    Attributes:
        sensor_bands, bands, units; classes; names ``(N,)`` file stems; labels ``(N,)`` int64.

    Samples: ``{"image": (C, 64, 64) float32 (S2 reflectance, then S1 dB), "label": () int64, "name": str}``.
    """

    def __init__(
        self,
        root: str | Path,
        bands: str | Sequence[str] = "s1",
        s2_root: str | Path | None = None,
        split: str | None = None,
        split_file: str | Path | None = None,
        seed: int = 0,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"EuroSAT-SAR root {self.root} is not a folder; expected <root>/<Class>/<Class>_<n>.tif")
        check_fractions(fractions)
        self.sensor_bands: SensorBands = parse_sensor_bands(bands, L1C if s2_root is not None else ())
        self.bands = self.sensor_bands.names
        self.units = self.sensor_bands.units
        self.classes = CLASSES
        self.class_root = _class_root(self.root)
        files, labels = scan(self.class_root)
        self.s2: EuroSAT | None = None
        self._s2_index: dict[str, int] = {}
        if self.sensor_bands.s2:
            self.s2 = EuroSAT(s2_root, bands=list(self.sensor_bands.s2))  # type: ignore[arg-type]
            if self.s2.kind != "ms":
                raise DatasetError(f"s2_root {s2_root} holds the RGB JPEG release; pair EuroSAT-SAR with the MS release")
            self._s2_index = {n: i for i, n in enumerate(self.s2.names)}
            paired = [i for i, f in enumerate(files) if f.stem in self._s2_index]
            if not paired:
                raise DatasetError(f"no file of {self.class_root} has a twin of the same name in {s2_root}")
            files, labels = [files[i] for i in paired], labels[paired]
        all_names = [f.stem for f in files]
        keep = select_indices(all_names, labels, split, split_file, seed, fractions, self.class_root)
        self.split = split
        self.files: list[Path] = [files[i] for i in keep]
        self.names: list[str] = [all_names[i] for i in keep]
        self.labels: np.ndarray = labels[keep]  # (N,)
        self.transform = transform
        self._pol_index = [FILE_POLS.index(p) for p in self.sensor_bands.s1]
        if self._pol_index and self.files:
            picks = self.files[:_CHECKED_FILES]
            check_db(np.concatenate([read_s1_db(p, check=False).ravel() for p in picks]),
                     f"EuroSAT-SAR files under {self.class_root}", "EuroSAT-SAR ships VV/VH in dB; re-download it")

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` as ``(C, 64, 64)`` float32: S2 reflectance channels, then S1 dB channels."""
        planes = []
        if self.s2 is not None:
            planes.append(self.s2.load(self._s2_index[self.names[i]]))  # (c2, 64, 64)
        if self._pol_index:
            path = self.files[i]
            a = read_s1_db(path, check=False)  # (2, 64, 64)
            if a.shape != (len(FILE_POLS), PATCH_SIZE, PATCH_SIZE):
                raise DatasetError(f"{path} has shape {a.shape}; EuroSAT-SAR files are (2, 64, 64): VV, VH")
            planes.append(torch.from_numpy(a[self._pol_index]))
        return torch.cat(planes, dim=0)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = {"image": self.load(i), "label": torch.tensor(int(self.labels[i])), "name": self.names[i]}
        return self.transform(sample) if self.transform is not None else sample
