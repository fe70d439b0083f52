"""Derive the spectra table of ``seco.synth.spectra`` from the real samples in ../shared/data.

    .venv/bin/python -m seco.synth.calibrate [--data ../shared/data]

prints the table (paste it into spectra.py when the samples change). What it computes:

* per synth class, from the EuroSAT MS GeoTIFFs (Sentinel-2 L1C, 13 bands, 64 x 64 px) of the EuroSAT
  classes mapped to it (``EUROSAT_CLASSES``): the band means over all pixels (each EuroSAT class weighted
  equally), the within-patch std (median over patches: the texture of a typical patch; a few shoreline
  patches would dominate a mean), the between-patch std of patch means
  (location-to-location spread) and the between-patch std of patch NDVI (both pooled within each EuroSAT
  class, RMS over the classes mapped to one synth class, so that merging two classes adds no spread);
* from the 5-date Slovenian location (s2_multitemporal), the *greenness slope* of every band: the
  least-squares slope of ln(reflectance) against NDVI across the pixels of the clearest date (the one with
  the darkest coastal band B01, i.e. least haze). It says how each band moves when vegetation greens up
  (red -3 per unit NDVI, NIR +0.8, SWIR -1..-2) and, being measured within one date, is free of haze.

The seasonal NDVI half-amplitude of a class is taken as sqrt(2) x its between-patch NDVI std (EuroSAT
patches were acquired throughout the year; a sinusoid of amplitude a has std a / sqrt(2)).
"""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path
from typing import Any

import numpy as np

from seco.bands import L1C

#: EuroSAT MS band order inside each TIFF (B8A last).
EUROSAT_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
#: s2_multitemporal band order (the registry's L1C order).
MULTITEMPORAL_ORDER = L1C
#: Synth class -> EuroSAT folders its spectra are derived from (mountain has none: literature values).
EUROSAT_CLASSES = {
    "forest": ("Forest",),
    "cropland": ("AnnualCrop", "PermanentCrop"),
    "grassland": ("Pasture", "HerbaceousVegetation"),
    "urban": ("Residential", "Industrial"),
    "water": ("SeaLake",),
}

DEFAULT_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _ndvi(x: np.ndarray, order: tuple[str, ...]) -> np.ndarray:
    nir, red = x[..., order.index("B08")], x[..., order.index("B04")]
    return (nir - red) / np.maximum(nir + red, 1e-6)


def eurosat_class_stats(root: Path) -> dict[str, dict[str, Any]]:
    """Per synth class: mean, within, between (13 bands, L1C registry order, DN) and ndvi_std."""
    import rasterio

    perm = [EUROSAT_ORDER.index(b) for b in L1C]
    out: dict[str, dict[str, Any]] = {}
    for synth, folders in EUROSAT_CLASSES.items():
        means, withins, betweens, ndvi_vars = [], [], [], []
        for folder in folders:
            files = sorted(glob.glob(str(root / folder / "*.tif")))
            if not files:
                raise FileNotFoundError(f"no EuroSAT MS files in {root / folder}")
            xs = []
            for f in files:
                with rasterio.open(f) as r:
                    xs.append(r.read().astype(np.float64)[perm])  # (13, 64, 64)
            x = np.stack(xs)  # (N, 13, 64, 64)
            means.append(x.mean(axis=(0, 2, 3)))
            withins.append(x.std(axis=(2, 3)))  # (N, 13)
            pm = x.mean(axis=(2, 3))  # (N, 13)
            betweens.append(pm.var(axis=0))
            ndvi_vars.append(_ndvi(pm, L1C).var())
        out[synth] = {
            "mean": np.mean(means, axis=0),
            "within": np.median(np.concatenate(withins), axis=0),
            "between": np.sqrt(np.mean(betweens, axis=0)),
            "ndvi_std": float(np.sqrt(np.mean(ndvi_vars))),
        }
    return out


def greenness_slopes(npy: Path) -> tuple[np.ndarray, int]:
    """d ln(reflectance) / d NDVI per band (L1C order) across the pixels of the clearest date, and that date."""
    a = np.load(npy).astype(np.float64)  # (T, H, W, 13) reflectance
    clearest = int(np.argmin(np.median(a[..., L1C.index("B01")], axis=(1, 2))))
    x = a[clearest].reshape(-1, a.shape[-1])
    nd = _ndvi(x, MULTITEMPORAL_ORDER)
    design = np.stack([np.ones_like(nd), nd], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.log(np.maximum(x, 1e-4)), rcond=None)
    return coef[1], clearest


def derive(data: Path) -> dict[str, object]:
    """Everything spectra.py holds that comes from data, rounded as stored there."""
    stats = eurosat_class_stats(data / "eurosat_ms")
    slope, clearest = greenness_slopes(data / "s2_multitemporal" / "eolearn_reference_scenes.npy")
    slope[L1C.index("B10")] = 0.0  # cirrus (1375 nm) sees the atmosphere, not the surface
    return {
        "CLASS_MEAN": {k: tuple(int(round(v)) for v in s["mean"]) for k, s in stats.items()},
        "CLASS_WITHIN": {k: tuple(int(round(v)) for v in s["within"]) for k, s in stats.items()},
        "CLASS_BETWEEN": {k: tuple(int(round(v)) for v in s["between"]) for k, s in stats.items()},
        "NDVI_AMPLITUDE": {k: round(float(np.sqrt(2) * s["ndvi_std"]), 3) for k, s in stats.items()},
        "GREENNESS_SLOPE": tuple(round(float(v), 3) for v in slope),
        "_clearest_date": clearest,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="Recompute the synth spectra table from the real samples")
    ap.add_argument("--data", default=os.environ.get("SECO_SHARED_DATA", str(DEFAULT_DATA)))
    args = ap.parse_args()
    table = derive(Path(args.data))
    print(f"# bands (L1C registry order): {', '.join(L1C)}; greenness from date {table.pop('_clearest_date')}")
    for name, value in table.items():
        if isinstance(value, dict):
            print(f"{name} = {{")
            for k, v in value.items():
                print(f"    {k!r}: {v},")
            print("}")
        else:
            print(f"{name} = {value}")


if __name__ == "__main__":
    main()
