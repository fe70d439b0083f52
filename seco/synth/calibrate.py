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

``--s1`` prints the simulated Sentinel-1 statistics (dB, :mod:`seco.synth.sar`) of GRD sigma0 and RTC
gamma0 beside the published ones (SSL4EO-S12 / TerraMind) and the calibration offsets that meet the
published means (:func:`s1_table`).

``--spread`` measures the date-to-date spread the per-date effects of :mod:`seco.synth.seasons` are sized
against, on the real 5-date location and on simulated locations, with one rule (:func:`date_spread`):

* per band, the median over pixels of |ln rho_t2 - ln rho_t1|, pooled over every pair of dates and the
  pixels clear on both (clear: B02 < 0.2 reflectance and, when present, B10 < 0.01; this drops clouds and
  snow alike, and drops a date that is mostly cloud);
* the blue dark-object offset of each mostly clear date (1st percentile of B02 over its clear pixels) and
  its range over the dates: how much path radiance (haze) varies from date to date.
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


#: Bands left out of the spread summary: B09 (water vapour) and B10 (cirrus) see the atmosphere, not the ground.
ATMOSPHERE_BANDS = ("B09", "B10")


def date_spread(x: np.ndarray, order: tuple[str, ...], min_clear: float = 0.5) -> dict[str, Any]:
    """Date-to-date spread of one location's stack, by the rule in the module docstring.

    Args:
        x: (T, C, H, W) reflectance (not DN); 0 marks nodata, a date of all zeros is missing.
        order: the band names of axis 1 (must hold B02).
        min_clear: a date counts for the dark-object offset when at least this share of it is clear.

    Returns:
        ``median_abs_dlog`` {band: value}, ``blue_dark`` (per counted date), ``blue_dark_range`` (max - min,
        reflectance; None with fewer than two counted dates), ``pairs`` (date pairs used).
    """
    x = np.asarray(x, dtype=np.float64)
    blue = x[:, order.index("B02")]  # (T, H, W)
    clear = (blue < 0.2) & (x > 0).all(axis=1)
    if "B10" in order:
        clear &= x[:, order.index("B10")] < 0.01
    logs = np.log(np.maximum(x, 1e-4))
    diffs: list[np.ndarray] = []
    pairs = []
    for t1 in range(len(x)):
        for t2 in range(t1 + 1, len(x)):
            both = clear[t1] & clear[t2]
            if both.sum() >= 16:
                diffs.append(np.abs(logs[t2] - logs[t1])[:, both])  # (C, n)
                pairs.append((t1, t2))
    pooled = np.concatenate(diffs, axis=1) if diffs else np.zeros((len(order), 0))
    med = {b: float(np.median(pooled[i])) if pooled.shape[1] else float("nan") for i, b in enumerate(order)}
    dark = [float(np.percentile(blue[t][clear[t]], 1)) for t in range(len(x)) if clear[t].mean() >= min_clear]
    return {"median_abs_dlog": med, "blue_dark": dark,
            "blue_dark_range": max(dark) - min(dark) if len(dark) >= 2 else None, "pairs": pairs}


def real_date_spread(data: Path) -> dict[str, Any]:
    """:func:`date_spread` of the real 5-date location (s2_multitemporal, L1C reflectance)."""
    a = np.load(data / "s2_multitemporal" / "eolearn_reference_scenes.npy")  # (T, H, W, 13)
    return date_spread(np.moveaxis(a, -1, 1), MULTITEMPORAL_ORDER)


def synth_date_spread(n: int = 24, patch: int = 64, seed: int = 77) -> dict[str, Any]:
    """:func:`date_spread` of ``n`` simulated locations (all 13 bands, the store's default clouds and dates).

    Returns:
        ``median_abs_dlog`` {band: median over locations}, ``median_abs_dlog_p10`` / ``_p90`` (spread over
        locations), ``blue_dark_range`` (median over locations) and ``blue_dark_range_p90``.
    """
    from seco.synth.scene import simulate_location

    per: list[dict[str, Any]] = []
    for i in range(n):
        loc = simulate_location(seed, i, 5, patch, L1C)
        per.append(date_spread(loc["images"][loc["valid"]].astype(np.float64) / 10000.0, L1C))
    med = np.array([[p["median_abs_dlog"][b] for b in L1C] for p in per])  # (n, 13)
    ranges = [p["blue_dark_range"] for p in per if p["blue_dark_range"] is not None]
    return {
        "median_abs_dlog": dict(zip(L1C, np.nanmedian(med, axis=0).tolist(), strict=True)),
        "median_abs_dlog_p10": dict(zip(L1C, np.nanpercentile(med, 10, axis=0).tolist(), strict=True)),
        "median_abs_dlog_p90": dict(zip(L1C, np.nanpercentile(med, 90, axis=0).tolist(), strict=True)),
        "blue_dark_range": float(np.median(ranges)),
        "blue_dark_range_p90": float(np.percentile(ranges, 90)),
    }


def spread_table(data: Path, n: int = 24) -> str:
    """Markdown table of the real and simulated date-to-date spread (docs/FIDELITY.md)."""
    real, sim = real_date_spread(data), synth_date_spread(n)
    bands = [b for b in L1C if b not in ATMOSPHERE_BANDS]
    rows = ["| | " + " | ".join(bands) + " |", "|---|" + "---:|" * len(bands)]
    rows.append("| real: median \\|Δ ln ρ\\| | " + " | ".join(f"{real['median_abs_dlog'][b]:.3f}" for b in bands) + " |")
    rows.append("| simulated (median of locations) | "
                + " | ".join(f"{sim['median_abs_dlog'][b]:.3f}" for b in bands) + " |")
    rows.append("| simulated, 10-90 % of locations | " + " | ".join(
        f"{sim['median_abs_dlog_p10'][b]:.2f}-{sim['median_abs_dlog_p90'][b]:.2f}" for b in bands) + " |")
    rows.append("")
    rows.append(f"blue dark-object offset per clear date, real: "
                f"{', '.join(f'{v:.4f}' for v in real['blue_dark'])} (range {real['blue_dark_range']:.4f}); "
                f"simulated range: median {sim['blue_dark_range']:.4f}, 90th percentile {sim['blue_dark_range_p90']:.4f}")
    return "\n".join(rows)


def s1_statistics(product: str, n: int = 48, patch: int = 64, seed: int = 5) -> dict[str, tuple[float, float]]:
    """Mean and std (dB) per polarisation of simulated S1 over every valid pixel of every date of ``n``
    locations (:mod:`seco.synth.sar`, the store's class mix, one band of S2 to keep it quick)."""
    from seco.synth.sar import POLS
    from seco.synth.scene import simulate_location

    vals: list[list[np.ndarray]] = [[] for _ in POLS]
    for i in range(n):
        s1 = simulate_location(seed, i, 5, patch, ("B04",), s1=product, s1_missing_prob=0.0)["s1"]
        for p in range(len(POLS)):
            v = s1["db"][:, p]
            vals[p].append(v[np.isfinite(v)])
    out = {}
    for p, pol in enumerate(POLS):
        v = np.concatenate(vals[p]).astype(np.float64)
        out[pol] = (float(v.mean()), float(v.std()))
    return out


def s1_table(n: int = 96) -> str:
    """Markdown table of simulated vs published S1 statistics (dB) per product, and the calibration offsets
    (:data:`seco.synth.sar.CALIBRATION_DB`) that would put each simulated mean on the published one."""
    from seco.synth.sar import CALIBRATION_DB, POLS, PUBLISHED

    rows = ["| product | pol | simulated mean | published mean | simulated std | published std |",
            "|---|---|---:|---:|---:|---:|"]
    fitted = {}
    for product, pub in PUBLISHED.items():
        sim = s1_statistics(product, n)
        fitted[product] = tuple(round(CALIBRATION_DB[product][p] + pub[pol][0] - sim[pol][0], 2)
                                for p, pol in enumerate(POLS))
        for pol in POLS:
            rows.append(f"| {product} | {pol} | {sim[pol][0]:.2f} | {pub[pol][0]:.1f} | {sim[pol][1]:.2f} | "
                        f"{pub[pol][1]:.1f} |")
    rows.append("")
    rows.append(f"CALIBRATION_DB fitted on {n} locations: {fitted} (in use: {CALIBRATION_DB})")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description="Recompute the synth spectra table from the real samples")
    ap.add_argument("--data", default=os.environ.get("SECO_SHARED_DATA", str(DEFAULT_DATA)))
    ap.add_argument("--spread", action="store_true",
                    help="print the real vs simulated date-to-date spread instead of the spectra table")
    ap.add_argument("--s1", action="store_true",
                    help="print simulated vs published Sentinel-1 statistics (dB) and the fitted offsets")
    args = ap.parse_args()
    if args.s1:
        print(s1_table())
        return
    if args.spread:
        print(spread_table(Path(args.data)))
        return
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
