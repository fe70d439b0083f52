"""The paper's SeCo data path, re-implemented as the in-run reference of ``bench.bench_loader``.

What the official code (ServiceNow/seasonal-contrast, commit 411e37e) does, and what this module re-creates
with rasterio + PIL + numpy only (no torchvision, no pl_bolts):

On disk (``datasets/seco_downloader.py``): one folder per location (``000000/``), one sub-folder per
acquisition (named by the Earth Engine ``system:index``) holding **one single-band GeoTIFF per band**
(``B2.tif``, ``B3.tif``, ``B4.tif`` ... at their native 10/20/60 m sizes 264/132/44 px) and a
``metadata.json``. Pixels are **uint8**: reflectance ``DN / 10000`` rescaled from ``[0, 1]`` to ``[0, 255]``
(``skimage.exposure.rescale_intensity``); the profile is ``GTiff``, ``crs='+proj=latlong'``, ``compress='JPEG'``
and otherwise GDAL's defaults (strips, no tiling). ``export_paper_layout`` writes that tree from a seco store
(``compress=None`` writes uncompressed files instead).

Per sample (``datasets/seco_dataset.py``, ``SeasonalContrastMultiAug``):

1. list the location's date folders, draw 3 **with replacement** (``np.random.choice(paths, 3)``);
2. ``read_image``: for each RGB band (``B4, B3, B2``) ``rasterio.open(B?.tif).read(1)``, quantile stretch
   ``clip((x - min_q) / (max_q - min_q) * 255, 0, 255).astype(uint8)`` with the official ``QUANTILES``,
   ``np.dstack`` and ``PIL.Image.fromarray``;
3. views ``q = t0, k0 = augment(t1), k1 = t2, k2 = augment(t0)`` where ``augment`` = torchvision
   ``RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8)``, ``RandomGrayscale(p=0.2)``,
   ``RandomApply([GaussianBlur([.1, 2.])], p=0.5)`` (PIL ``ImageFilter.GaussianBlur(radius=sigma)``),
   ``RandomHorizontalFlip()``, all on the full 264 px PIL image;
4. every view through ``preprocess`` = ``RandomResizedCrop(224, scale=(0.2, 1.))`` (PIL crop + bilinear
   resize), ``ToTensor()``, ImageNet ``Normalize``;
5. ``__getitem__`` returns ``(q, [k0, k1, k2])``; the data module batches 32 with the default collate.

The torchvision ops are re-implemented with the same PIL calls torchvision's PIL backend makes
(``ImageEnhance.Brightness/Contrast/Color``, HSV hue shift, ``convert("L")`` for grayscale,
``Image.crop`` + ``Image.resize(BILINEAR)``) and the same parameter sampling (random op order of ColorJitter,
``RandomResizedCrop.get_params`` with its central-crop fallback). Randomness comes from one numpy generator
per sample seeded from ``(seed, epoch, index)`` instead of torch's and Python's global generators, so the
same seed gives the same output and worker processes need no seeding.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "ALL_BANDS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "QUANTILES",
    "RGB_BANDS",
    "PaperSeCoDataset",
    "augment",
    "color_jitter",
    "export_paper_layout",
    "paper_loader",
    "preprocess",
    "random_resized_crop_params",
    "read_image",
]

#: The paper's band names (no zero padding) and its RGB order.
ALL_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")
RGB_BANDS = ("B4", "B3", "B2")
#: Per-band uint8 stretch limits of the official ``seco_dataset.py`` (RGB only).
QUANTILES = {
    "min_q": {"B2": 3.0, "B3": 2.0, "B4": 0.0},
    "max_q": {"B2": 88.0, "B3": 103.0, "B4": 129.0},
}
#: pl_bolts ``imagenet_normalization()``.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Native size of each band in the downloader's 2.64 km patch (``crop10/20/60``).
_NATIVE_PX = {10: 264, 20: 132, 60: 44}


def paper_name(seco_band: str) -> str:
    """``B02`` -> ``B2``, ``B8A`` -> ``B8A``: seco's band names to the paper's file names."""
    return seco_band if seco_band == "B8A" else f"B{int(seco_band[1:])}"


# ---------------------------------------------------------------------------------------------- on disk
def export_paper_layout(
    store: Any,
    out: str | os.PathLike[str],
    bands: Sequence[str] | str = "RGB",
    locations: Sequence[int] | None = None,
    compress: str | None = "JPEG",
) -> Path:
    """Write locations of a seco store as the paper's downloader laid them out on disk.

    ``out/<location:06d>/<date id>/<band>.tif`` for each *valid* date (the downloader only saved found
    scenes), single-band uint8 GeoTIFFs at the band's native size, plus ``metadata.json``.

    Args:
        store: an open ``seco.store.Store`` whose grid is 10 m (20/60 m bands nearest-upsampled: the native
            pixels are every 2nd / 6th one).
        out: root folder (created).
        bands: seco band names or a set name (``"RGB"``, ``"all"``).
        locations: store indices to export (default: all).
        compress: GeoTIFF compression; ``"JPEG"`` as the downloader, ``None`` for uncompressed.

    Returns:
        ``out`` as a Path.
    """
    import rasterio
    from rasterio.transform import Affine

    from seco.bands import BY_NAME, parse_bands

    names = parse_bands(bands, available=store.bands)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    valid = store.valid_mask()  # (N, T)
    idx = range(len(store)) if locations is None else locations
    for i in idx:
        pixels = store.read(int(i), bands=list(names))  # (T, C, H, W) uint16 DN
        meta = store.meta(int(i))
        for t in np.flatnonzero(valid[int(i)]):
            m = meta[int(t)]
            when = datetime.fromisoformat(m["datetime"].replace("Z", "+00:00")).astimezone(UTC)
            date_dir = root / f"{int(i):06d}" / f"{when:%Y%m%dT%H%M%S}_{m['item_id']}"
            date_dir.mkdir(parents=True, exist_ok=True)
            lat, lon = float(m["lat"]), float(m["lon"])
            for c, name in enumerate(names):
                res = BY_NAME[name].resolution_m
                step = res // 10
                band = pixels[t, c, ::step, ::step]  # native pixels of the nearest-upsampled grid
                px = _NATIVE_PX.get(res, band.shape[0])
                band = band[:px, :px]
                # downloader: image.divide(10000) -> rescale_intensity(in_range=(0, 1), out_range=uint8)
                img = (np.clip(band.astype(np.float64) / 10000.0, 0.0, 1.0) * 255.0).astype(np.uint8)
                deg = 1325.0 / 111_320.0  # the downloader's 1325 m radius in degrees (latitude)
                xres = yres = 2 * deg / img.shape[1]
                transform = Affine.translation(lon - deg - xres / 2, lat + deg + yres / 2) @ Affine.scale(xres, -yres)
                profile: dict[str, Any] = {
                    "driver": "GTiff", "width": img.shape[1], "height": img.shape[0], "count": 1,
                    "crs": "+proj=latlong", "transform": transform, "dtype": "uint8",
                }
                if compress:
                    profile["compress"] = compress
                with rasterio.open(date_dir / f"{paper_name(name)}.tif", "w", **profile) as f:
                    f.write(img[None])
            (date_dir / "metadata.json").write_text(json.dumps({"system:index": date_dir.name, **m}))
    return root


def _stretch(img: np.ndarray, min_q: float, max_q: float) -> np.ndarray:
    """The official ``normalize``: quantile stretch of a uint8 band to uint8 (float64 in between)."""
    x = (img - min_q) / (max_q - min_q)
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def read_image(path: Path, bands: Sequence[str] = RGB_BANDS, quantiles: dict | None = QUANTILES) -> Image.Image:
    """One acquisition as a PIL image: each band file opened and read on its own, stretched, stacked."""
    import rasterio

    channels = []
    for b in bands:
        with rasterio.open(path / f"{b}.tif") as src:
            ch = src.read(1)  # (H, W) uint8
        if quantiles is not None:
            ch = _stretch(ch, quantiles["min_q"][b], quantiles["max_q"][b])
        channels.append(ch)
    return Image.fromarray(np.dstack(channels))  # (H, W, 3) -> RGB


# ---------------------------------------------------------------------------------------------- augment
def _adjust_hue(img: Image.Image, hue: float) -> Image.Image:
    """torchvision's PIL ``adjust_hue``: shift the H channel of HSV by ``hue * 255`` with uint8 wrap-around."""
    h, s, v = img.convert("HSV").split()
    np_h = np.array(h, dtype=np.uint8)
    shift = int(hue * 255) % 256  # C cast toward zero, then modulo-256 as the uint8 addition wraps
    np_h = (np_h + np.uint8(shift)).astype(np.uint8)  # uint8 + uint8 wraps
    return Image.merge("HSV", (Image.fromarray(np_h, "L"), s, v)).convert(img.mode)


def color_jitter(
    img: Image.Image,
    rng: np.random.Generator,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
) -> Image.Image:
    """torchvision ``ColorJitter``: a random order of the four ops, each with a uniform factor."""
    order = rng.permutation(4)
    b = rng.uniform(1 - brightness, 1 + brightness)
    c = rng.uniform(1 - contrast, 1 + contrast)
    s = rng.uniform(1 - saturation, 1 + saturation)
    h = rng.uniform(-hue, hue)
    for fn in order:
        if fn == 0:
            img = ImageEnhance.Brightness(img).enhance(b)
        elif fn == 1:
            img = ImageEnhance.Contrast(img).enhance(c)
        elif fn == 2:
            img = ImageEnhance.Color(img).enhance(s)
        else:
            img = _adjust_hue(img, h)
    return img


def _grayscale3(img: Image.Image) -> Image.Image:
    """torchvision ``RandomGrayscale`` on RGB: ``convert("L")`` replicated to 3 channels."""
    g = np.array(img.convert("L"), dtype=np.uint8)
    return Image.fromarray(np.dstack([g, g, g]), "RGB")


def augment(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The official ``SeasonalContrastMultiAug.augment`` (on the full patch, before the crop)."""
    if rng.random() <= 0.8:  # RandomApply: skipped when p < rand
        img = color_jitter(img, rng, 0.4, 0.4, 0.4, 0.1)
    if rng.random() < 0.2:
        img = _grayscale3(img)
    if rng.random() <= 0.5:
        img = img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.1, 2.0)))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img


# ---------------------------------------------------------------------------------------------- preprocess
def random_resized_crop_params(
    rng: np.random.Generator,
    width: int,
    height: int,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """torchvision ``RandomResizedCrop.get_params``: ``(top, left, h, w)``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


_MEAN = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]  # (3, 1, 1)
_STD = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]


def preprocess(img: Image.Image, rng: np.random.Generator, size: int = 224) -> Tensor:
    """The official ``preprocess``: RandomResizedCrop(size, scale 0.2-1) + ToTensor + ImageNet Normalize.

    Returns:
        (3, size, size) float32.
    """
    top, left, h, w = random_resized_crop_params(rng, img.width, img.height)
    img = img.crop((left, top, left + w, top + h)).resize((size, size), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(size, size, 3)  # ToTensor
    x = x.permute(2, 0, 1).contiguous().to(torch.float32).div(255)  # (3, S, S) in [0, 1]
    return x.sub_(_MEAN).div_(_STD)


# ---------------------------------------------------------------------------------------------- dataset
class PaperSeCoDataset(Dataset):
    """``SeasonalContrastMultiAug`` over a tree written by ``export_paper_layout`` (or the real download).

    ``dataset[i]`` is ``(q, [k0, k1, k2])``, each (3, size, size) float32, ImageNet-normalised.

    Args:
        root: the folder holding one sub-folder per location.
        bands: the paper's band names (RGB: ``("B4", "B3", "B2")``; PIL needs 3 bands).
        seed: the per-sample generator is seeded from ``(seed, epoch, index)``.
        size: crop size.
    """

    def __init__(self, root: str | os.PathLike[str], bands: Sequence[str] = RGB_BANDS, seed: int = 0,
                 size: int = 224) -> None:
        self.root = Path(root)
        self.bands = tuple(bands)
        self.seed, self.size, self.epoch = int(seed), int(size), 0
        self.samples = sorted(p for p in self.root.glob("*") if p.is_dir())
        if not self.samples:
            raise FileNotFoundError(f"no location folders under {self.root}; write them with export_paper_layout")

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> tuple[Tensor, list[Tensor]]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        root = self.samples[index]
        # as the official code: list the date folders on every call, draw 3 with replacement
        paths = sorted((p for p in root.glob("*") if p.is_dir()), reverse=True)
        t0, t1, t2 = (read_image(paths[int(j)], self.bands, QUANTILES) for j in rng.integers(0, len(paths), 3))
        q, k0, k1, k2 = t0, augment(t1, rng), t2, augment(t0, rng)
        return preprocess(q, rng, self.size), [preprocess(k, rng, self.size) for k in (k0, k1, k2)]


def paper_loader(root: str | os.PathLike[str], batch_size: int = 32, seed: int = 0, num_workers: int = 0) -> DataLoader:
    """The official data module's loader: shuffle, drop_last, default collate -> (B, 3, S, S), [3 x same]."""
    g = torch.Generator().manual_seed(seed)
    return DataLoader(PaperSeCoDataset(root, seed=seed), batch_size=batch_size, shuffle=True, drop_last=True,
                      num_workers=num_workers, generator=g)
