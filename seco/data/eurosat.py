"""EuroSAT (Helber et al. 2019): 27,000 Sentinel-2 patches of 64 x 64 px in 10 land-cover classes.

Official file layouts read (either release; the kind is detected from the files):

RGB release (``EuroSAT.zip``, unpacks to ``2750/``)::

    <root>/<Class>/<Class>_<n>.jpg      64 x 64 RGB JPEG, 8 bit

Multispectral release (``EuroSATallBands.zip``)::

    <root>/<Class>/<Class>_<n>.tif      64 x 64 GeoTIFF, 13 uint16 bands (L1C DN, UTM CRS)

``<root>`` may also be the folder the archive unpacked into: ``<root>/2750/<Class>/...`` (RGB) and
``<root>/ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/...`` (MS) are found too.
``<n>`` runs from 1 per class; the class is the folder name and must prefix the file name.

Band order inside each multispectral TIFF is B01, B02, B03, B04, B05, B06, B07, B08, B09, B10, B11, B12,
**B8A** (B8A last, not after B08). Bands are selected by name, so ``bands="B8A"`` returns the 13th
plane of the file, and ``bands="all"`` returns the 13 bands in seco's canonical order
(:data:`seco.bands.L1C`: B8A after B08). Values are reflectance, ``DN / 10000``.

The JPEGs are a display product: bands B04, B03, B02 (red, green, blue) linearly stretched to 0-255
by the dataset authors. They are *not* reflectance and no fixed factor recovers it. This loader returns
``pixel / 255`` in [0, 1]; normalisation statistics for RGB must be computed on the EuroSAT RGB images
themselves (never reuse multispectral ``DN / 10000`` statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seco.bands import L1C, RGB, indices, parse_bands
from seco.data.raster import read_image, read_raster, to_reflectance
from seco.data.splits import DEFAULT_FRACTIONS, check_fractions, select_indices
from seco.errors import DatasetError

#: The 10 classes in the canonical (alphabetical) order; the label is the position here.
CLASSES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)
#: Band order inside the multispectral TIFFs (B8A last).
# fmt: off
MS_FILE_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)
# fmt: on
#: Band order of the RGB JPEG channels.
RGB_FILE_BANDS: tuple[str, ...] = RGB
PATCH_SIZE = 64
#: Sub-folders the official archives unpack to, searched when ``root`` does not hold the classes.
NESTED_ROOTS: tuple[str, ...] = ("2750", "ds/images/remote_sensing/otherDatasets/sentinel_2/tif")
_KINDS = {".jpg": "rgb", ".jpeg": "rgb", ".tif": "ms", ".tiff": "ms"}


def _find_class_root(root: Path) -> Path:
    for cand in (root, *(root / n for n in NESTED_ROOTS)):
        if any((cand / c).is_dir() for c in CLASSES):
            return cand
    raise DatasetError(
        f"no EuroSAT class folders under {root}; expected <root>/<Class>/<Class>_<n>.jpg (RGB) or .tif "
        f"(13-band MS) with classes {', '.join(CLASSES)}. Point root at the folder holding them."
    )


class EuroSAT(Dataset):
    """EuroSAT RGB or multispectral, detected from the files (``.jpg`` -> RGB, ``.tif`` -> MS).

    Args:
        root: the dataset folder (see the module docstring for the layouts).
        bands: ``"all"``, a named set (``"rgb"``, ``"10m"``, ``"l2a"``, ...) or band names; ``"all"``
            is every band of the release (13 for MS in canonical order, B04/B03/B02 for RGB).
        split: ``None`` (every image), ``"train"``, ``"val"`` or ``"test"``.
        split_file: a published list of file names (e.g. ``eurosat-train.txt``); overrides the seeded
            split. Names are matched by stem, so a list of ``.jpg`` names also serves the MS release.
        seed: seed of the stratified (by class) split.
        fractions: train / val / test fractions of the seeded split.
        transform: optional callable applied to each sample dict.

    Attributes:
        kind: ``"rgb"`` or ``"ms"``.
        bands: the canonical names of the returned channels, in order.
        classes: :data:`CLASSES`.
        names: ``(N,)`` file stems of this split; ``labels``: ``(N,)`` int64 class indices.

    Samples: ``{"image": (C, 64, 64) float32, "label": () int64, "name": str}``.
    """

    def __init__(
        self,
        root: str | Path,
        bands: str | Sequence[str] = "all",
        split: str | None = None,
        split_file: str | Path | None = None,
        seed: int = 0,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(
                f"EuroSAT root {self.root} is not a folder; expected <root>/<Class>/<Class>_<n>.jpg or .tif"
            )
        check_fractions(fractions)
        self.class_root = _find_class_root(self.root)
        files, labels = self._scan()
        self.kind = _KINDS[files[0].suffix.lower()]
        self.file_bands = MS_FILE_BANDS if self.kind == "ms" else RGB_FILE_BANDS
        available = L1C if self.kind == "ms" else RGB  # canonical order for "all"
        self.bands: tuple[str, ...] = parse_bands(bands, available)
        self._file_index = indices(self.bands, self.file_bands)
        self.classes = CLASSES
        all_names = [f.stem for f in files]
        keep = select_indices(all_names, labels, split, split_file, seed, fractions, self.class_root)
        self.split = split
        self.files: list[Path] = [files[i] for i in keep]
        self.names: list[str] = [all_names[i] for i in keep]
        self.labels: np.ndarray = labels[keep]  # (N,)
        self.transform = transform

    def _scan(self) -> tuple[list[Path], np.ndarray]:
        """Every image file, sorted by (class, number), and its class index."""
        extra = sorted(
            p.name
            for p in self.class_root.iterdir()
            if p.is_dir() and p.name not in CLASSES and not p.name.startswith((".", "_"))
        )
        if extra:
            raise DatasetError(
                f"unknown class folder(s) {', '.join(extra)} in {self.class_root}; EuroSAT has exactly "
                f"{', '.join(CLASSES)}. Remove them or point root at a clean copy."
            )
        missing = [c for c in CLASSES if not (self.class_root / c).is_dir()]
        if missing:
            raise DatasetError(
                f"EuroSAT class folder(s) {', '.join(missing)} missing in {self.class_root}; "
                "the copy is incomplete, re-extract the archive"
            )
        files: list[Path] = []
        labels: list[int] = []
        for label, cls in enumerate(CLASSES):
            found = [p for p in (self.class_root / cls).iterdir() if p.suffix.lower() in _KINDS]
            for p in found:
                prefix, _, number = p.stem.rpartition("_")
                if prefix != cls or not number.isdigit():
                    raise DatasetError(
                        f"file {p} does not follow <Class>/<Class>_<n>: its name says class {prefix!r} "
                        f"but it lies in folder {cls!r}; the label cannot be assigned"
                    )
            found.sort(key=lambda p: int(p.stem.rpartition("_")[2]))
            files += found
            labels += [label] * len(found)
        if not files:
            raise DatasetError(
                f"no .jpg or .tif images in the class folders of {self.class_root}; "
                "expected <Class>/<Class>_<n>.jpg or .tif"
            )
        kinds = {_KINDS[p.suffix.lower()] for p in files}
        if len(kinds) > 1:
            raise DatasetError(
                f"{self.class_root} mixes RGB .jpg and multispectral .tif files; point root at one release"
            )
        return files, np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` as ``(C, 64, 64)`` float32: reflectance for MS, ``pixel / 255`` for RGB."""
        path = self.files[i]
        if self.kind == "ms":
            dn = read_raster(path)  # (13, 64, 64) uint16, file band order
            if dn.shape != (len(MS_FILE_BANDS), PATCH_SIZE, PATCH_SIZE):
                raise DatasetError(
                    f"{path} has shape {dn.shape}; EuroSAT MS files are ({len(MS_FILE_BANDS)}, {PATCH_SIZE}, "
                    f"{PATCH_SIZE}). The file is not from the 13-band release."
                )
            return to_reflectance(dn[self._file_index])  # (C, 64, 64)
        pixels = read_image(path)  # (64, 64, 3) uint8
        if pixels.shape != (PATCH_SIZE, PATCH_SIZE, 3):
            raise DatasetError(
                f"{path} has shape {pixels.shape}; EuroSAT RGB images are ({PATCH_SIZE}, {PATCH_SIZE}, 3)"
            )
        chw = pixels.transpose(2, 0, 1)[self._file_index]  # (C, 64, 64)
        return torch.from_numpy(chw.astype(np.float32)) / 255.0

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = {
            "image": self.load(i),  # (C, 64, 64)
            "label": torch.tensor(int(self.labels[i]), dtype=torch.int64),
            "name": self.names[i],
        }
        return self.transform(sample) if self.transform is not None else sample
