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

Sentinel-1 (``bands`` naming ``VV`` / ``VH``, e.g. ``"s1"`` or ``"s1+s2"``): the layout of the S1 extension of
OSCD by Hafner et al. (github.com/SebastianHafner/DS_UNet: ``data/sentinel1_<city>_<orbit>_t1.tif``, ``_t2``),
one GeoTIFF per city and date, looked for in ``<city>/sentinel1/`` or in ``s1_root`` (that repository's flat
``data/`` folder). Bands are named by their descriptions (``VV``, ``VH``), else taken as VV, VH in that order (a
one-band file: VV). Values are backscatter in **dB** (checked: linear power given as dB is refused); resampled to
the 10 m grid like the S2 bands; no-data (NaN) takes the band's mean over the image. With several orbits the
lowest orbit number present on both dates is used. Channel order: S2 bands first, then S1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seco.bands import L1C, S1_BANDS, TEN_M, normalize_name, parse_bands, sensor_of
from seco.data.raster import raster_shape, read_float, read_image, read_single_band, resize, to_reflectance
from seco.errors import BandError, ConfigError, DatasetError

IMAGES_DIR = "Onera Satellite Change Detection dataset - Images"
LABEL_DIRS: tuple[str, ...] = (
    "Onera Satellite Change Detection dataset - Train Labels",
    "Onera Satellite Change Detection dataset - Test Labels",
)
SPLITS: tuple[str, ...] = ("train", "test")
MASK_SOURCES: tuple[str, ...] = ("auto", "tif", "png")
_BAND_FILE = re.compile(r"_(B\d{1,2}|B8A)$", re.IGNORECASE)
#: Folder of a city's Sentinel-1 files, and their names (``sentinel1_<city>_<orbit>_t<date>.tif``).
S1_DIR = "sentinel1"
_S1_FILE = re.compile(r"^sentinel1_(?P<city>.+)_(?P<orbit>\d+)_t(?P<t>[12])$")


def find_s1_pair(city: str, folder: Path) -> tuple[Path, Path] | None:
    """The (date 1, date 2) S1 files of ``city`` in ``folder`` (the lowest orbit with both dates), or None."""
    if not folder.is_dir():
        return None
    found: dict[int, dict[int, Path]] = {}
    for p in folder.iterdir():
        m = _S1_FILE.match(p.stem) if p.suffix.lower() in (".tif", ".tiff") else None
        if m is not None and m.group("city") == city:
            found.setdefault(int(m.group("orbit")), {})[int(m.group("t"))] = p
    both = sorted(o for o, d in found.items() if set(d) == {1, 2})
    return (found[both[0]][1], found[both[0]][2]) if both else None


def has_s1(root: str | Path, city: str, s1_root: str | Path | None = None) -> bool:
    """Whether OSCD city ``city`` under ``root`` has a Sentinel-1 pair (``<city>/sentinel1/`` or ``s1_root``)."""
    folder = Path(s1_root) if s1_root is not None else Path(root) / IMAGES_DIR / city / S1_DIR
    return find_s1_pair(city, folder) is not None


def read_s1(path: Path, bands: Sequence[str], size: tuple[int, int]) -> torch.Tensor:
    """(len(bands), H, W) float32 dB of an S1 file on the 10 m grid ``size`` (see the module docstring).

    Raises:
        DatasetError: a band the file lacks, values that are no dB, or a band without any valid pixel.
    """
    import rasterio

    from seco.data.sar import check_db, s1_name

    with rasterio.open(path) as src:
        desc, count = list(src.descriptions), src.count
    names = [s1_name(d or "") for d in desc]
    order = names if all(names) else list(S1_BANDS[:count])
    missing = [b for b in bands if b not in order]
    if missing:
        raise DatasetError(f"{path} has no band {', '.join(missing)} (it holds {', '.join(map(str, order))}); "
                           "choose --bands among those")
    values = read_float(path, [order.index(b) for b in bands])  # (C, h, w) dB, NaN = no data
    check_db(values, str(path))
    for k, b in enumerate(bands):
        bad = ~np.isfinite(values[k])
        if bad.all():
            raise DatasetError(f"{path}: band {b} has no valid pixel; leave the city out or choose other bands")
        if bad.any():
            values[k][bad] = float(np.nanmean(values[k]))
    return resize(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)), size)


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
        s1_root: a flat folder of the cities' S1 files (None: ``<city>/sentinel1/``); only read when ``bands``
            names ``VV`` / ``VH``.

    Attributes:
        bands, cities, has_mask (``(N,)`` bool), dates (``(N,)`` pairs of ``YYYYMMDD`` or None); s2_bands,
        s1_bands (the channels of each sensor: S2 reflectance first, then S1 dB).

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
        s1_root: str | Path | None = None,
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
        self.bands: tuple[str, ...] = parse_bands(bands, (*L1C, *S1_BANDS))
        self.s2_bands = tuple(b for b in self.bands if sensor_of(b) == "s2")
        self.s1_bands = tuple(b for b in self.bands if sensor_of(b) == "s1")
        self.s1_root = Path(s1_root) if s1_root is not None else None
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
        self.s1_files: list[tuple[Path, Path] | None] = []
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
            self.s1_files.append(self._scan_s1(city, city_dir) if self.s1_bands else None)
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
        missing = [b for b in dict.fromkeys((*self.s2_bands, *TEN_M)) if b not in files]
        if missing:
            raise DatasetError(
                f"band file(s) {', '.join(missing)} missing in {folder} (expected *_<band>.tif); the copy is "
                "incomplete, or choose bands among those present"
            )
        return files

    def _scan_s1(self, city: str, city_dir: Path) -> tuple[Path, Path]:
        folder = self.s1_root if self.s1_root is not None else city_dir / S1_DIR
        pair = find_s1_pair(city, folder)
        if pair is None:
            raise DatasetError(
                f"no Sentinel-1 pair for OSCD city {city!r} in {folder} (expected sentinel1_{city}_<orbit>_t1.tif "
                "and _t2.tif); choose S2 bands only, or give the folder of the S1 files (s1_root)"
            )
        return pair

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

    def _load_date(self, files: dict[str, Path], size: tuple[int, int], s1: Path | None = None) -> torch.Tensor:
        planes = [resize(to_reflectance(read_single_band(files[b]))[None], size) for b in self.s2_bands]
        if s1 is not None:
            planes.append(read_s1(s1, self.s1_bands, size))
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
            s1 = self.s1_files[i] or (None, None)
            sample = {
                "image1": self._load_date(first, size, s1[0]),  # (C, H, W)
                "image2": self._load_date(second, size, s1[1]),  # (C, H, W)
                "mask": self.load_mask(i, size),  # (H, W) or None
                "city": self.cities[i],
                "dates": self.dates[i],
            }
            if self._cache is not None:
                self._cache[i] = dict(sample)
        return self.transform(sample) if self.transform is not None else sample
