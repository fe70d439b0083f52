"""Files of the simulated OSCD (:mod:`seco.synth.changes`): band GeoTIFFs, change maps, previews, S1 GeoTIFFs."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from seco.errors import DatasetError
from seco.synth.sar import POLS

MANIFEST = "synth_oscd.json"
IMAGES_DIR = "Onera Satellite Change Detection dataset - Images"
TRAIN_LABELS_DIR = "Onera Satellite Change Detection dataset - Train Labels"
TEST_LABELS_DIR = "Onera Satellite Change Detection dataset - Test Labels"



def write_band(path: Path, plane: np.ndarray, lat: float, lon: float, shape10: tuple[int, int]) -> None:
    """One uint16 band in EPSG:4326, its pixels spanning the extent of the 10 m grid (as the real files)."""
    import rasterio
    from rasterio.transform import Affine

    h, w = plane.shape
    ext_x = shape10[1] * 10.0 / (111320.0 * math.cos(math.radians(lat)))
    ext_y = shape10[0] * 10.0 / 110574.0
    transform = Affine(ext_x / w, 0.0, lon - ext_x / 2, 0.0, -ext_y / h, lat + ext_y / 2)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="uint16", crs="EPSG:4326",
                       transform=transform) as dst:
        dst.write(plane[None])


def write_change_map(folder: Path, city: str, mask: np.ndarray) -> None:
    import rasterio
    from PIL import Image
    from rasterio.errors import NotGeoreferencedWarning

    folder.mkdir(parents=True, exist_ok=True)
    h, w = mask.shape
    with warnings.catch_warnings():  # no CRS, no transform: as the real files
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(folder / f"{city}-cm.tif", "w", driver="GTiff", width=w, height=h, count=1,
                           dtype="uint8") as dst:
            dst.write((1 + mask).astype(np.uint8)[None])
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = 255 * mask[..., None]
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(folder / "cm.png")


def preview(planes: dict[str, np.ndarray], path: Path) -> None:
    from PIL import Image

    rgb = np.stack([planes[b] for b in ("B04", "B03", "B02")], axis=-1).astype(np.float32)
    lo, hi = float(np.percentile(rgb, 2)), float(np.percentile(rgb, 98))
    Image.fromarray((255 * np.clip((rgb - lo) / max(hi - lo, 1.0), 0, 1)).astype(np.uint8)).save(path)


def write_s1(path: Path, db: np.ndarray, lat: float, lon: float) -> None:
    """One date's (2, H, W) dB as a float32 GeoTIFF in EPSG:4326 over the city's 10 m extent, bands VV, VH."""
    import rasterio
    from rasterio.transform import Affine

    _, h, w = db.shape
    ext_x = w * 10.0 / (111320.0 * math.cos(math.radians(lat)))
    ext_y = h * 10.0 / 110574.0
    transform = Affine(ext_x / w, 0.0, lon - ext_x / 2, 0.0, -ext_y / h, lat + ext_y / 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=2, dtype="float32", crs="EPSG:4326",
                       transform=transform) as dst:
        dst.write(db.astype(np.float32))
        dst.descriptions = POLS


def _ours(path: Path) -> list[Path]:
    return [path / n for n in (IMAGES_DIR, TRAIN_LABELS_DIR, TEST_LABELS_DIR, MANIFEST)]


def reusable(path: Path, city_names: list[str], want: dict[str, Any], overwrite: bool) -> bool:
    """Whether ``path`` already holds the finished dataset ``want``; else clear our own folders there.

    Raises:
        DatasetError: a dataset of other settings (without ``overwrite``), or foreign OSCD folders.
    """
    manifest = path / MANIFEST
    if manifest.is_file():
        try:
            have = json.loads(manifest.read_text(encoding="utf-8")).get("config")
        except ValueError:
            have = None
        if have == want:
            return True
        if not overwrite:
            raise DatasetError(
                f"{path} holds a synthetic OSCD made with other settings ({have}); choose another folder (or "
                "another --out of the command that made it), or remove it"
            )
    elif (path / IMAGES_DIR).exists() and not overwrite and not any(
        (path / IMAGES_DIR / c).is_dir() for c in city_names
    ):
        raise DatasetError(
            f"{path / IMAGES_DIR} exists but was not written by make_change_dataset; choose another folder"
        )
    for p in _ours(path):  # an interrupted or replaced dataset: only our own folders go
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    return False
