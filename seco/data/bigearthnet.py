"""BigEarthNet v1.0, Sentinel-2 part (Sumbul et al. 2019): 590,326 multi-label patches of 1.2 x 1.2 km.

Official file layout read (``BigEarthNet-S2-v1.0.tar.gz`` unpacks to ``BigEarthNet-v1.0/``)::

    <root>/<patch>/<patch>_B01.tif ... <patch>_B12.tif, <patch>_B8A.tif
        12 single-band uint16 GeoTIFFs (L2A, no B10): 120 x 120 px for the 10 m bands (B02, B03, B04,
        B08), 60 x 60 for the 20 m bands (B05, B06, B07, B8A, B11, B12), 20 x 20 for the 60 m bands
        (B01, B09)
    <root>/<patch>/<patch>_labels_metadata.json
        {"labels": [43-class CORINE Land Cover names], "coordinates": ..., "acquisition_date": ...}

``<root>`` may also be the folder holding ``BigEarthNet-v1.0/``. ``<patch>`` is e.g.
``S2A_MSIL2A_20170613T101031_0_45``.

Bands are resampled to one ``size x size`` grid (default 120, the 10 m grid) with extent-aligned
bilinear interpolation (:func:`seco.data.raster.resize`; anti-aliased when a band is down-sampled).
Values are reflectance, ``DN / 10000``.

Labels: ``num_classes=19`` (default) uses the nomenclature of Sumbul et al. 2021 ("BigEarthNet-MM",
the ``label_indices.json`` of the official 19-class models); 11 of the 43 classes (roads, ports,
airports, mines, dumps, construction, green urban, sport, bare rock, burnt areas, intertidal flats) map
to no 19-class label. A patch whose labels all map to nothing is dropped by default (``drop_unlabeled``;
the names are kept in :attr:`BigEarthNet.dropped`); with ``drop_unlabeled=False`` it is kept with an
all-zero target, as torchgeo does. ``num_classes=43`` keeps the original classes. A label name outside
the 43 is an error.

``exclude`` takes the official lists of patches to leave out (``patches_with_seasonal_snow.csv``,
``patches_with_cloud_and_shadow.csv``: one patch name per line); names in them that are not in
``root`` are ignored, since the lists cover the whole archive.

Labels of the selected patches are read when the dataset is built (one small JSON per patch, needed
to drop unlabeled patches and for the stratified split). For the full archive that is ~590k files;
with a published ``split_file`` only the listed patches are read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seco.bands import BY_NAME, L2A, parse_bands
from seco.data.raster import read_single_band, resize, to_reflectance
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

ARCHIVE_DIR = "BigEarthNet-v1.0"
#: The Sentinel-2 bands of every patch (BigEarthNet is L2A: no B10), canonical order.
FILE_BANDS: tuple[str, ...] = L2A
#: Native patch side in pixels per band resolution (metres).
NATIVE_SIZE: dict[int, int] = {10: 120, 20: 60, 60: 20}

#: The 43 CORINE Land Cover level-3 classes of BigEarthNet v1.0, in CLC code order.
CLASSES_43: tuple[str, ...] = (
    "Continuous urban fabric",
    "Discontinuous urban fabric",
    "Industrial or commercial units",
    "Road and rail networks and associated land",
    "Port areas",
    "Airports",
    "Mineral extraction sites",
    "Dump sites",
    "Construction sites",
    "Green urban areas",
    "Sport and leisure facilities",
    "Non-irrigated arable land",
    "Permanently irrigated land",
    "Rice fields",
    "Vineyards",
    "Fruit trees and berry plantations",
    "Olive groves",
    "Pastures",
    "Annual crops associated with permanent crops",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland",
    "Moors and heathland",
    "Sclerophyllous vegetation",
    "Transitional woodland/shrub",
    "Beaches, dunes, sands",
    "Bare rock",
    "Sparsely vegetated areas",
    "Burnt areas",
    "Inland marshes",
    "Peatbogs",
    "Salt marshes",
    "Salines",
    "Intertidal flats",
    "Water courses",
    "Water bodies",
    "Coastal lagoons",
    "Estuaries",
    "Sea and ocean",
)

#: The 19-class nomenclature (Sumbul et al. 2021) and the 43-class names each one merges.
NOMENCLATURE_19: dict[str, tuple[str, ...]] = {
    "Urban fabric": ("Continuous urban fabric", "Discontinuous urban fabric"),
    "Industrial or commercial units": ("Industrial or commercial units",),
    "Arable land": ("Non-irrigated arable land", "Permanently irrigated land", "Rice fields"),
    "Permanent crops": (
        "Vineyards",
        "Fruit trees and berry plantations",
        "Olive groves",
        "Annual crops associated with permanent crops",
    ),
    "Pastures": ("Pastures",),
    "Complex cultivation patterns": ("Complex cultivation patterns",),
    "Land principally occupied by agriculture, with significant areas of natural vegetation": (
        "Land principally occupied by agriculture, with significant areas of natural vegetation",
    ),
    "Agro-forestry areas": ("Agro-forestry areas",),
    "Broad-leaved forest": ("Broad-leaved forest",),
    "Coniferous forest": ("Coniferous forest",),
    "Mixed forest": ("Mixed forest",),
    "Natural grassland and sparsely vegetated areas": ("Natural grassland", "Sparsely vegetated areas"),
    "Moors, heathland and sclerophyllous vegetation": ("Moors and heathland", "Sclerophyllous vegetation"),
    "Transitional woodland, shrub": ("Transitional woodland/shrub",),
    "Beaches, dunes, sands": ("Beaches, dunes, sands",),
    "Inland wetlands": ("Inland marshes", "Peatbogs"),
    "Coastal wetlands": ("Salt marshes", "Salines"),
    "Inland waters": ("Water courses", "Water bodies"),
    "Marine waters": ("Coastal lagoons", "Estuaries", "Sea and ocean"),
}
CLASSES_19: tuple[str, ...] = tuple(NOMENCLATURE_19)
#: 43-class name -> 19-class index, for the 32 names that map to one.
TO_19: dict[str, int] = {old: i for i, new in enumerate(CLASSES_19) for old in NOMENCLATURE_19[new]}


def label_names_to_target(names: Sequence[str], num_classes: int = 19, source: str = "labels") -> np.ndarray:
    """Multi-hot target of a patch from its 43-class label names.

    Args:
        names: the ``"labels"`` list of a ``*_labels_metadata.json``.
        num_classes: 19 (Sumbul et al. 2021 nomenclature) or 43 (original classes).
        source: where the names came from, for the error message.

    Returns:
        ``(num_classes,)`` uint8 multi-hot; all zero when no name maps to a 19-class label.

    Raises:
        DatasetError: on a name that is not one of the 43 classes.
    """
    unknown = [n for n in names if n not in CLASSES_43]
    if unknown:
        raise DatasetError(
            f"unknown BigEarthNet label(s) {unknown} in {source}; expected the 43 CORINE names of "
            "BigEarthNet v1.0 (e.g. 'Pastures', 'Coniferous forest')"
        )
    target = np.zeros(num_classes, dtype=np.uint8)
    for n in names:
        if num_classes == 43:
            target[CLASSES_43.index(n)] = 1
        elif n in TO_19:
            target[TO_19[n]] = 1
    return target


def read_labels_metadata(path: Path, release: str) -> dict[str, Any]:
    """A BigEarthNet v1.0 ``<patch>_labels_metadata.json`` (S2 or S1 release): a dict with a ``labels`` list.

    Raises:
        DatasetError: a missing, unreadable or foreign file, naming it and the fix.
    """
    if not path.is_file():
        raise DatasetError(
            f"missing label file {path}; every {release} patch folder holds <patch>_labels_metadata.json. "
            "Re-extract the archive or remove the folder."
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot parse {path}: {e}; re-extract the archive") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("labels"), list):
        raise DatasetError(f"{path} has no 'labels' list; it is not a {release} v1.0 label file")
    return meta


def _find_patch_root(root: Path) -> Path:
    if not root.is_dir():
        raise DatasetError(
            f"BigEarthNet root {root} is not a folder; expected <root>/<patch>/<patch>_B02.tif and "
            "<patch>_labels_metadata.json (or <root>/BigEarthNet-v1.0/<patch>/...)"
        )
    nested = root / ARCHIVE_DIR
    return nested if nested.is_dir() else root


class BigEarthNet(Dataset):
    """BigEarthNet v1.0 Sentinel-2 patches with multi-hot 19- or 43-class targets.

    Args:
        root: the ``BigEarthNet-v1.0`` folder or its parent (layout in the module docstring).
        bands: ``"all"`` (the 12 L2A bands, canonical order), a named set or band names.
        split: ``None`` (every patch), ``"train"``, ``"val"`` or ``"test"``.
        split_file: published list of patch names (e.g. ``bigearthnet-train.csv``: S2 name first);
            overrides the seeded split.
        seed: seed of the split, stratified by each patch's rarest label
            (:func:`seco.data.splits.rarest_label_strata`).
        fractions: train / val / test fractions of the seeded split.
        num_classes: 19 or 43.
        size: side of the output grid in pixels (120 = 10 m).
        exclude: paths of lists of patch names to leave out (snow, cloud and shadow lists).
        drop_unlabeled: drop patches with no 19-class label (else keep them with a zero target).
        transform: optional callable applied to each sample dict.

    Attributes:
        bands, classes, names (``(N,)`` patch names), targets (``(N, K)`` uint8),
        excluded (names removed by ``exclude``), dropped (names removed by ``drop_unlabeled``).

    Samples: ``{"image": (C, size, size) float32, "label": (K,) float32 multi-hot, "name": str}``.
    """

    def __init__(
        self,
        root: str | Path,
        bands: str | Sequence[str] = "all",
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
            raise ConfigError(
                f"num_classes={num_classes!r}; BigEarthNet has 19 (Sumbul et al. 2021) or 43 classes"
            )
        if int(size) < 1:
            raise ConfigError(f"size={size!r}; give the output side in pixels, e.g. 120 for the 10 m grid")
        check_split(split)
        check_fractions(fractions)
        self.root = Path(root)
        self.patch_root = _find_patch_root(self.root)
        self.bands: tuple[str, ...] = parse_bands(bands, FILE_BANDS)
        self.num_classes = num_classes
        self.classes = CLASSES_19 if num_classes == 19 else CLASSES_43
        self.size = int(size)
        self.split = split
        self.transform = transform

        with os.scandir(self.patch_root) as entries:  # d_type: no stat per patch on 590k folders
            all_names = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith((".", "_")))
        if not all_names:
            raise DatasetError(
                f"no patch folders in {self.patch_root}; expected <root>/<patch>/<patch>_B02.tif and "
                "<patch>_labels_metadata.json (BigEarthNet-S2 v1.0 layout)"
            )
        excluded: set[str] = set()
        for path in exclude:
            excluded.update(read_name_list(path))
        if split_file is not None:
            candidates = [
                all_names[i]
                for i in match_names(read_name_list(split_file), all_names, split_file, self.patch_root)
            ]
        else:
            candidates = all_names
        self.excluded = [n for n in candidates if n in excluded]
        candidates = [n for n in candidates if n not in excluded]
        targets = np.zeros((len(candidates), num_classes), dtype=np.uint8)  # (N, K)
        for row, name in enumerate(candidates):
            targets[row] = self._read_target(name)
        self.dropped: list[str] = []
        if drop_unlabeled and num_classes == 19:
            labeled = np.asarray(targets.any(axis=1), dtype=bool)  # (N,)
            self.dropped = [n for n, ok in zip(candidates, labeled.tolist(), strict=True) if not ok]
            candidates = [n for n, ok in zip(candidates, labeled.tolist(), strict=True) if ok]
            targets = targets[labeled]
        if split_file is None and split is not None:
            keep = stratified_split(rarest_label_strata(targets), seed=seed, fractions=fractions)[split]
        else:
            keep = np.arange(len(candidates))
        self.names: list[str] = [candidates[i] for i in keep]
        self.targets: np.ndarray = targets[keep]  # (N, K)

    def _read_target(self, name: str) -> np.ndarray:
        path = self.patch_root / name / f"{name}_labels_metadata.json"
        meta = read_labels_metadata(path, "BigEarthNet")
        return label_names_to_target(meta["labels"], self.num_classes, str(path))

    def __len__(self) -> int:
        return len(self.names)

    def load(self, i: int) -> torch.Tensor:
        """Patch ``i`` as ``(C, size, size)`` float32 reflectance, every band on one grid."""
        name = self.names[i]
        planes = []
        for band in self.bands:
            path = self.patch_root / name / f"{name}_{band}.tif"
            dn = read_single_band(path)  # (h, w) uint16
            native = NATIVE_SIZE[BY_NAME[band].resolution_m]
            if dn.shape != (native, native):
                raise DatasetError(
                    f"{path} is {dn.shape[0]} x {dn.shape[1]} px; BigEarthNet {band} "
                    f"({BY_NAME[band].resolution_m} m) patches are {native} x {native}"
                )
            planes.append(resize(to_reflectance(dn)[None], (self.size, self.size)))  # (1, size, size)
        return torch.cat(planes, dim=0)  # (C, size, size)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = {
            "image": self.load(i),  # (C, size, size)
            "label": torch.from_numpy(self.targets[i].astype(np.float32)),  # (K,)
            "name": self.names[i],
        }
        return self.transform(sample) if self.transform is not None else sample
