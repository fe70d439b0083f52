"""OSCD, the Onera Satellite Change Detection dataset (Caye Daudt et al. 2018): 24 city pairs of
Sentinel-2 L1C images with pixel-wise urban change maps.

Official file layout read (the three archives unpacked side by side in ``<root>``)::

    <root>/Onera Satellite Change Detection dataset - Images/
        train.txt, test.txt              city names of each split, comma-separated ("bercy,paris,rennes")
        <city>/dates.txt                 "date_1: 20161130" / "date_2: 20170829"
        <city>/imgs_1/*_B01.tif ... *_B12.tif, *_B8A.tif
                                         13 single-band uint16 GeoTIFFs of the first date; the 10 m
                                         bands (B02, B03, B04, B08) share one size, 20 m and 60 m bands
                                         are about 1/2 and 1/6 of it (rounding differs per city)
        <city>/imgs_2/*_Bxx.tif          the same for the second date (file prefixes differ per date)
        <city>/imgs_1_rect, imgs_2_rect  (full release only) the co-registered copies; ``rectified=True``
    <root>/Onera Satellite Change Detection dataset - Train Labels/<city>/cm/<city>-cm.tif, cm.png
    <root>/Onera Satellite Change Detection dataset - Test Labels/<city>/cm/<city>-cm.tif, cm.png

Every band of both dates is resampled to the 10 m grid of the first date (the size of its B02, B03, B04
and B08 files, which must agree) with extent-aligned bilinear interpolation
(:func:`seco.data.raster.resize`). The README of the dataset says the older image's 10 m grid is the
reference when sizes disagree. Values are reflectance, ``DN / 10000``.

Change maps, checked on the real files: ``<city>-cm.tif`` holds **1 = no change, 2 = change** (the
dataset README says 0 / 1, the files say otherwise); ``cm.png`` is an RGBA (or grey) picture with
0 = no change and 255 = change in every colour channel. Both are mapped to 0 / 1; any other value is an
error, never clipped. ``mask_source="auto"`` reads the ``.tif`` and falls back to ``cm.png``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seco.bands import L1C, TEN_M, normalize_name, parse_bands
from seco.data.raster import raster_shape, read_image, read_single_band, resize, to_reflectance
from seco.errors import BandError, ConfigError, DatasetError

IMAGES_DIR = "Onera Satellite Change Detection dataset - Images"
LABEL_DIRS: tuple[str, ...] = (
    "Onera Satellite Change Detection dataset - Train Labels",
    "Onera Satellite Change Detection dataset - Test Labels",
)
SPLITS: tuple[str, ...] = ("train", "test")
MASK_SOURCES: tuple[str, ...] = ("auto", "tif", "png")
_BAND_FILE = re.compile(r"_(B\d{1,2}|B8A)$", re.IGNORECASE)


def read_city_list(path: Path) -> list[str]:
    """City names of an OSCD ``train.txt`` / ``test.txt`` (comma- or whitespace-separated)."""
    if not path.is_file():
        raise DatasetError(f"missing OSCD city list {path}; the Images archive ships train.txt and test.txt")
    cities = [c for c in re.split(r"[,\s]+", path.read_text(encoding="utf-8")) if c]
    if not cities:
        raise DatasetError(f"OSCD city list {path} is empty; expected e.g. 'bercy,paris,rennes'")
    return cities


def decode_change_map(values: np.ndarray, path: Path) -> np.ndarray:
    """Official change-map values -> ``(H, W)`` uint8 with 0 = no change, 1 = change.

    ``.tif``: 1 / 2; ``.png``: 0 / 255 (grey, or RGB/RGBA with equal colour channels).

    Raises:
        DatasetError: on any other value or on colour channels that disagree.
    """
    if path.suffix.lower() == ".png":
        if values.ndim == 3:
            rgb = values[..., :3]  # alpha, if any, carries no label
            if not (rgb == rgb[..., :1]).all():
                raise DatasetError(
                    f"{path} is not a grey change map (its colour channels differ); expected 0 / 255"
                )
            values = rgb[..., 0]
        codes, change = (0, 255), 255
    else:
        if values.ndim == 3:
            values = values[0]
        codes, change = (1, 2), 2
    found = np.unique(values)
    bad = [int(v) for v in found if v not in codes]
    if bad:
        raise DatasetError(
            f"unexpected change-map value(s) {bad} in {path} (found {found.tolist()}); OSCD {path.suffix} maps "
            f"hold {codes[0]} = no change and {codes[1]} = change. The file is damaged or from another "
            "release; try mask_source='png' or 'tif'."
        )
    return (values == change).astype(np.uint8)


class OSCD(Dataset):
    """OSCD city pairs, one sample per city, both dates on the 10 m grid of the first.

    Args:
        root: the folder holding the three ``Onera Satellite Change Detection dataset - ...`` folders.
        bands: ``"all"`` (13 L1C bands, canonical order), a named set or band names.
        split: ``"train"`` or ``"test"`` (cities from ``train.txt`` / ``test.txt``), or ``None`` for both.
        cities: explicit city names; overrides ``split`` (e.g. a validation subset of the train cities).
        require_labels: raise when a city has no change map; with ``False`` such cities load with
            ``mask=None`` (the test labels ship as a separate archive).
        mask_source: ``"auto"`` (``<city>-cm.tif``, else ``cm.png``), ``"tif"`` or ``"png"``.
        rectified: read ``imgs_1_rect`` / ``imgs_2_rect`` instead of ``imgs_1`` / ``imgs_2``.
        cache: keep loaded cities in memory (per process; each DataLoader worker holds its own). The
            cached tensors are returned as they are, so a transform must not modify them in place.
        transform: optional callable applied to each sample dict.

    Attributes:
        bands, cities, has_mask (``(N,)`` bool), dates (``(N,)`` pairs of ``YYYYMMDD`` or None).

    Samples: ``{"image1": (C, H, W) float32, "image2": (C, H, W) float32, "mask": (H, W) uint8 0/1 or
    None, "city": str, "dates": (str, str) | None}``; ``H, W`` differ per city.
    """

    def __init__(
        self,
        root: str | Path,
        bands: str | Sequence[str] = "all",
        split: str | None = "train",
        cities: Sequence[str] | None = None,
        require_labels: bool = True,
        mask_source: str = "auto",
        rectified: bool = False,
        cache: bool = False,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        if split is not None and split not in SPLITS:
            raise ConfigError(f"unknown OSCD split {split!r}; use 'train', 'test' or None (both)")
        if mask_source not in MASK_SOURCES:
            raise ConfigError(f"mask_source={mask_source!r}; use one of {', '.join(MASK_SOURCES)}")
        self.root = Path(root)
        self.images_dir = self.root / IMAGES_DIR
        if not self.images_dir.is_dir():
            raise DatasetError(
                f"OSCD root {self.root} has no folder {IMAGES_DIR!r}; expected "
                f"<root>/{IMAGES_DIR}/<city>/imgs_1/*_B02.tif and <root>/{LABEL_DIRS[0]}/<city>/cm/<city>-cm.tif. "
                "Point root at the folder holding the unpacked archives."
            )
        self.bands: tuple[str, ...] = parse_bands(bands, L1C)
        self.split = split
        self.mask_source = mask_source
        self.date_dirs = ("imgs_1_rect", "imgs_2_rect") if rectified else ("imgs_1", "imgs_2")
        self.transform = transform
        self._cache: dict[int, dict[str, Any]] | None = {} if cache else None

        if cities is None:
            splits = [split] if split is not None else list(SPLITS)
            cities = [c for s in splits for c in read_city_list(self.images_dir / f"{s}.txt")]
        self.cities: list[str] = list(dict.fromkeys(cities))
        if not self.cities:
            raise ConfigError("no OSCD cities selected; give split='train'/'test' or a non-empty cities list")
        self._band_files: list[tuple[dict[str, Path], dict[str, Path]]] = []
        self.mask_paths: list[Path | None] = []
        self.dates: list[tuple[str, str] | None] = []
        for city in self.cities:
            city_dir = self.images_dir / city
            if not city_dir.is_dir():
                raise DatasetError(
                    f"OSCD city {city!r} has no folder {city_dir}; the city lists and the images disagree, "
                    "or the copy is incomplete"
                )
            self._band_files.append(
                (self._scan_date(city_dir / self.date_dirs[0]), self._scan_date(city_dir / self.date_dirs[1]))
            )
            self.dates.append(self._read_dates(city_dir / "dates.txt"))
            mask = self._find_mask(city)
            if mask is None and require_labels:
                expected = " or ".join(
                    str(self.root / d / city / "cm" / f"{city}-cm.tif") for d in LABEL_DIRS
                )
                raise DatasetError(
                    f"no change map for OSCD city {city!r} (looked for {expected}, and cm.png beside it); "
                    "unpack the labels archive, or leave the city out (`seco eval oscd --train-cities/--test-cities`; "
                    "in Python, require_labels=False loads images only)"
                )
            self.mask_paths.append(mask)
        self.has_mask: list[bool] = [m is not None for m in self.mask_paths]

    def _scan_date(self, folder: Path) -> dict[str, Path]:
        """Band name -> file for one date folder; every requested and every 10 m band must be there."""
        if not folder.is_dir():
            raise DatasetError(
                f"missing OSCD date folder {folder}; each city holds {self.date_dirs[0]}/ and "
                f"{self.date_dirs[1]}/ with one *_Bxx.tif per band"
            )
        files: dict[str, Path] = {}
        for p in sorted(folder.iterdir()):
            m = _BAND_FILE.search(p.stem) if p.suffix.lower() in (".tif", ".tiff") else None
            if m is None:
                continue
            try:
                band = normalize_name(m.group(1))
            except BandError:
                continue
            if band in files:
                raise DatasetError(f"two files for band {band} in {folder}: {files[band].name}, {p.name}")
            files[band] = p
        missing = [b for b in dict.fromkeys((*self.bands, *TEN_M)) if b not in files]
        if missing:
            raise DatasetError(
                f"band file(s) {', '.join(missing)} missing in {folder} (expected *_<band>.tif); the copy is "
                "incomplete, or choose bands among those present"
            )
        return files

    @staticmethod
    def _read_dates(path: Path) -> tuple[str, str] | None:
        if not path.is_file():
            return None
        found = dict(re.findall(r"(date_[12])\s*:\s*(\d{8})", path.read_text(encoding="utf-8")))
        if set(found) != {"date_1", "date_2"}:
            raise DatasetError(f"{path} does not hold 'date_1: YYYYMMDD' and 'date_2: YYYYMMDD'")
        return found["date_1"], found["date_2"]

    def _find_mask(self, city: str) -> Path | None:
        names = {"tif": [f"{city}-cm.tif"], "png": ["cm.png"], "auto": [f"{city}-cm.tif", "cm.png"]}
        for name in names[self.mask_source]:
            for label_dir in LABEL_DIRS:
                path = self.root / label_dir / city / "cm" / name
                if path.is_file():
                    return path
        return None

    def __len__(self) -> int:
        return len(self.cities)

    def grid(self, i: int) -> tuple[int, int]:
        """``(H, W)`` of city ``i``: the shared size of the first date's 10 m band files."""
        first = self._band_files[i][0]
        sizes = {b: raster_shape(first[b])[1:] for b in TEN_M}
        if len(set(sizes.values())) != 1:
            detail = ", ".join(f"{b}: {h}x{w}" for b, (h, w) in sizes.items())
            raise DatasetError(
                f"the 10 m bands of {first[TEN_M[0]].parent} differ in size ({detail}); they must share one grid"
            )
        return next(iter(sizes.values()))

    def _load_date(self, files: dict[str, Path], size: tuple[int, int]) -> torch.Tensor:
        planes = [resize(to_reflectance(read_single_band(files[b]))[None], size) for b in self.bands]
        return torch.cat(planes, dim=0)  # (C, H, W)

    def load_mask(self, i: int, size: tuple[int, int] | None = None) -> torch.Tensor | None:
        """Change map of city ``i`` as ``(H, W)`` uint8 0/1, or ``None`` when the city has none."""
        path = self.mask_paths[i]
        if path is None:
            return None
        raw = read_image(path) if path.suffix.lower() == ".png" else read_single_band(path)
        mask = decode_change_map(raw, path)  # (H, W)
        size = size or self.grid(i)
        if mask.shape != tuple(size):
            raise DatasetError(
                f"change map {path} is {mask.shape[0]} x {mask.shape[1]} px but the 10 m grid of "
                f"{self.cities[i]!r} is {size[0]} x {size[1]}; labels and images do not belong together"
            )
        return torch.from_numpy(mask)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self._cache is not None and i in self._cache:
            sample = dict(self._cache[i])
        else:
            size = self.grid(i)
            first, second = self._band_files[i]
            sample = {
                "image1": self._load_date(first, size),  # (C, H, W)
                "image2": self._load_date(second, size),  # (C, H, W)
                "mask": self.load_mask(i, size),  # (H, W) or None
                "city": self.cities[i],
                "dates": self.dates[i],
            }
            if self._cache is not None:
                self._cache[i] = dict(sample)
        return self.transform(sample) if self.transform is not None else sample
