"""Seeded writers of tiny fake copies of EuroSAT, BigEarthNet and OSCD in their official layouts.

For tests of the loaders and of the ``seco eval`` CLI: each writer lays out files exactly as the
official archive does (see the loader module docstrings), small enough to build in well under a second.

Pixel values encode the band so that band-order mistakes are visible:
``DN = 1000 + 200 * L1C.index(band) + 10 * class_signal + noise`` with ``noise`` in ``[0, 10)``; so
``(DN - 1000) // 200`` recovers the band's canonical position (:func:`band_code`). ``class_signal``
is the EuroSAT class index or the first 19-class label of a BigEarthNet patch, giving a linear probe
something to learn.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning

from seco.bands import BY_NAME, L1C, L2A
from seco.data.bigearthnet import CLASSES_43, TO_19

# Layout facts written out here rather than imported from the loaders, so a loader mistake cannot
# hide behind a fake built from the same mistake.
EUROSAT_CLASSES: tuple[str, ...] = (
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
#: Band order inside the EuroSAT MS TIFFs: B8A is the last plane.
# fmt: off
EUROSAT_MS_FILE_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)
# fmt: on
BEN_ARCHIVE_DIR = "BigEarthNet-v1.0"
OSCD_IMAGES_DIR = "Onera Satellite Change Detection dataset - Images"
OSCD_TRAIN_LABELS_DIR = "Onera Satellite Change Detection dataset - Train Labels"
OSCD_TEST_LABELS_DIR = "Onera Satellite Change Detection dataset - Test Labels"

BASE_DN = 1000
BAND_STEP = 200


def band_dn(band: str, signal: int, noise: np.ndarray) -> np.ndarray:
    """The fake DN plane of ``band``: ``1000 + 200 * L1C.index(band) + 10 * signal + noise`` (uint16)."""
    return (BASE_DN + BAND_STEP * L1C.index(band) + 10 * signal + noise).astype(np.uint16)


def band_code(reflectance: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`band_dn` on reflectance (``DN / 10000``): the canonical band position."""
    return (np.round(np.asarray(reflectance) * 10000) - BASE_DN) // BAND_STEP


def _write_tif(path: Path, data: np.ndarray, crs: str | None = "EPSG:32631", res: float = 10.0) -> None:
    """Write ``(C, H, W)`` as a GeoTIFF (no geotransform when ``crs`` is None, like OSCD change maps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c, h, w = data.shape
    kw = {"crs": crs, "transform": Affine(res, 0.0, 500000.0, 0.0, -res, 5000000.0)} if crs else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", height=h, width=w, count=c, dtype=data.dtype, **kw
        ) as dst:
            dst.write(data)


def write_eurosat_ms(root: str | Path, per_class: int = 3, seed: int = 0) -> Path:
    """EuroSAT multispectral: ``<root>/<Class>/<Class>_<n>.tif``, 13 uint16 bands (B8A last), 64 x 64.

    Returns:
        ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label, cls in enumerate(EUROSAT_CLASSES):
        for n in range(1, per_class + 1):
            planes = [band_dn(b, label, rng.integers(0, 10, (64, 64))) for b in EUROSAT_MS_FILE_BANDS]
            _write_tif(root / cls / f"{cls}_{n}.tif", np.stack(planes))  # (13, 64, 64), file band order
    return root


def write_eurosat_rgb(root: str | Path, per_class: int = 3, seed: int = 0) -> Path:
    """EuroSAT RGB: ``<root>/<Class>/<Class>_<n>.jpg``, 64 x 64 RGB JPEG (channels B04, B03, B02).

    Channel means differ (red ~40, green ~120, blue ~200, plus ``5 * class``) so channel order is testable.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label, cls in enumerate(EUROSAT_CLASSES):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for n in range(1, per_class + 1):
            base = np.array([40, 120, 200]) + 5 * label  # (3,)
            pixels = base[None, None, :] + rng.integers(0, 6, (64, 64, 3))  # (64, 64, 3)
            Image.fromarray(pixels.astype(np.uint8), "RGB").save(root / cls / f"{cls}_{n}.jpg", quality=95)
    return root


#: 43-class names that map to no 19-class label (used for "unlabeled" patches).
UNMAPPED_43: tuple[str, ...] = tuple(n for n in CLASSES_43 if n not in TO_19)
MAPPED_43: tuple[str, ...] = tuple(n for n in CLASSES_43 if n in TO_19)


def bigearthnet_patch_name(i: int) -> str:
    """A patch name in the official pattern, e.g. ``S2A_MSIL2A_20170613T101031_3_7``."""
    return f"S2A_MSIL2A_20170613T101031_{i // 10}_{i % 10}"


def write_bigearthnet(
    root: str | Path,
    num_patches: int = 12,
    seed: int = 0,
    unlabeled: int = 1,
    labels: Sequence[Sequence[str]] | None = None,
) -> Path:
    """BigEarthNet v1.0 S2: ``<root>/BigEarthNet-v1.0/<patch>/<patch>_<band>.tif`` + labels JSON.

    The 12 L2A bands are written at their native sizes (120 / 60 / 20 px for 10 / 20 / 60 m).

    Args:
        root: parent folder; the patches go to ``root/BigEarthNet-v1.0``.
        num_patches: number of patches.
        seed: seed of labels and pixel noise.
        unlabeled: how many of the last patches get only labels with no 19-class equivalent.
        labels: explicit 43-class label lists per patch (overrides the random draw).

    Returns:
        The ``BigEarthNet-v1.0`` folder.
    """
    out = Path(root) / BEN_ARCHIVE_DIR
    rng = np.random.default_rng(seed)
    for i in range(num_patches):
        name = bigearthnet_patch_name(i)
        if labels is not None:
            names = list(labels[i])
        elif i >= num_patches - unlabeled:
            names = [UNMAPPED_43[j] for j in sorted(rng.choice(len(UNMAPPED_43), 2, replace=False))]
        else:
            pick = sorted(rng.choice(len(MAPPED_43), int(rng.integers(1, 4)), replace=False))
            names = [MAPPED_43[j] for j in pick]
        signal = TO_19.get(names[0], 0)
        folder = out / name
        for band in L2A:
            res = BY_NAME[band].resolution_m
            side = {10: 120, 20: 60, 60: 20}[res]
            plane = band_dn(band, signal, rng.integers(0, 10, (side, side)))
            _write_tif(folder / f"{name}_{band}.tif", plane[None], crs="EPSG:32633", res=float(res))
        meta = {
            "labels": names,
            "coordinates": {
                "ulx": 600000,
                "uly": 5000000 + 1200 * i,
                "lrx": 601200,
                "lry": 4998800 + 1200 * i,
            },
            "projection": "EPSG:32633",
            "tile_source": "S2A_MSIL1C_20170613T101031_N0205_R022_T33UUP_20170613T101608.SAFE",
            "acquisition_date": "2017-06-13 10:10:31",
        }
        (folder / f"{name}_labels_metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return out


def write_name_list(
    path: str | Path, names: Sequence[str], style: str = "lines", header: bool = False
) -> Path:
    """Write a split/exclusion list: ``"lines"`` (one name per line) or ``"csv"`` (name, second column)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"{n},{n.replace('S2', 'S1')}_extra" if style == "csv" else n for n in names]
    if header:
        rows.insert(0, "name,other" if style == "csv" else "name")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


OSCD_TRAIN: tuple[str, ...] = ("abudhabi", "beirut", "cupertino")
OSCD_TEST: tuple[str, ...] = ("dubai", "lasvegas")


def oscd_city_size(k: int) -> tuple[int, int]:
    """10 m grid of the ``k``-th fake city: odd sizes so 20 m / 60 m sizes need rounding, as in OSCD."""
    return 37 + 4 * k, 41 + 3 * k


def write_oscd(
    root: str | Path,
    train: Sequence[str] = OSCD_TRAIN,
    test: Sequence[str] = OSCD_TEST,
    seed: int = 0,
    test_labels: bool = False,
) -> Path:
    """OSCD in the official layout under ``root`` (see :mod:`seco.data.oscd`).

    Each city has 13 band files per date at 10 / 20 / 60 m sizes (``ceil(H/2)``, ``ceil(H/6)``, as in the
    real files), ``dates.txt``, and change maps as ``<city>-cm.tif`` (1 / 2) and RGBA ``cm.png`` (0 / 255)
    in the Train Labels folder (and Test Labels with ``test_labels=True``). The second date is brighter
    by 800 DN inside the changed rectangle.

    Returns:
        ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    images = root / OSCD_IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    (images / "train.txt").write_text(",".join(train), encoding="utf-8")
    (images / "test.txt").write_text(",".join(test), encoding="utf-8")
    for k, city in enumerate((*train, *test)):
        h, w = oscd_city_size(k)
        change = np.zeros((h, w), dtype=bool)
        top, left = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        change[top : top + h // 3, left : left + w // 3] = True
        city_dir = images / city
        prefixes = ("S2A_OPER_MSI_L1C_TL_EPA__20160706T155721_A000849_T30UWU", "T30UWU_20170621T110651")
        for date, (folder, prefix) in enumerate(zip(("imgs_1", "imgs_2"), prefixes, strict=True)):
            for band in L1C:
                f = BY_NAME[band].resolution_m // 10
                bh, bw = math.ceil(h / f), math.ceil(w / f)
                plane = band_dn(band, 0, rng.integers(0, 10, (bh, bw))).astype(np.int64)
                if date == 1:
                    plane += 800 * change[::f, ::f][:bh, :bw]
                _write_tif(
                    city_dir / folder / f"{prefix}_{band}.tif",
                    plane.astype(np.uint16)[None],
                    crs="EPSG:4326",
                    res=0.0001 * f,
                )
        (city_dir / "dates.txt").write_text("date_1: 20160706\ndate_2: 20170621\n", encoding="utf-8")
        label_dirs = (
            [OSCD_TRAIN_LABELS_DIR] if city in train else ([OSCD_TEST_LABELS_DIR] if test_labels else [])
        )
        for label_dir in label_dirs:
            cm = root / label_dir / city / "cm"
            _write_tif(cm / f"{city}-cm.tif", (1 + change).astype(np.uint8)[None], crs=None)
            rgba = np.zeros((h, w, 4), dtype=np.uint8)
            rgba[..., :3] = 255 * change[..., None]
            rgba[..., 3] = 255
            Image.fromarray(rgba, "RGBA").save(cm / "cm.png")
    return root
