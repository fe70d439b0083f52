"""Seeded writers of tiny fake Sentinel-1 benchmark copies in their official layouts (reconstructed, not recorded).

Layouts as the reader docstrings cite them (torchgeo's BigEarthNet v1 / v2 fake-data scripts and test JSON,
Copernicus-Bench EuroSAT-S1); the values are fake. dB values encode the polarisation and the class so that
channel mistakes are visible: ``VV = -10 + 0.5 * signal + noise``, ``VH = -20 + 0.5 * signal + noise`` with
noise in ``[0, 0.5)``; :func:`pol_of` recovers the polarisation from a plane's mean.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import rasterio
from affine import Affine

try:
    from tests.data import fakes
except ImportError:  # pragma: no cover
    import fakes  # type: ignore[no-redef]

from seco.data.bigearthnet import TO_19

S1_BASE_DB = {"VV": -10.0, "VH": -20.0}


def s1_plane(pol: str, signal: int, rng: np.random.Generator, side: int) -> np.ndarray:
    return (S1_BASE_DB[pol] + 0.5 * signal + rng.uniform(0, 0.5, (side, side))).astype(np.float32)


def pol_of(plane: np.ndarray) -> str:
    """The polarisation a fake plane was written for (VV near -10 dB, VH near -20 dB)."""
    return "VV" if float(np.nanmean(plane)) > -15 else "VH"


def write_tif(path: Path, data: np.ndarray, nodata: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    c, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=c, dtype=data.dtype, crs="EPSG:32633",
                       transform=Affine(10.0, 0, 600000.0, 0, -10.0, 5000000.0), nodata=nodata) as dst:
        dst.write(data)


def s1_patch_name(i: int) -> str:
    return f"S1A_IW_GRDH_1SDV_20170613T165043_33UUP_{60 + i // 10}_{30 + i % 10}"


def write_bigearthnet_s1(root: str | Path, num_patches: int = 8, seed: int = 0, linear: bool = False) -> Path:
    """BigEarthNet v1.0 S2 (via :func:`fakes.write_bigearthnet`) and S1 beside it; S1 patch ``i`` names S2 patch
    ``i`` in ``corresponding_s2_patch``, in reversed order of S1 names so the pairing is not by sort order.

    ``linear`` writes linear power instead of dB (a wrong copy). Returns the S1 folder.
    """
    root = Path(root)
    s2 = fakes.write_bigearthnet(root, num_patches=num_patches, seed=seed, unlabeled=0)
    out = root / "BigEarthNet-S1-v1.0"
    rng = np.random.default_rng(seed + 1)
    for i in range(num_patches):
        s2_name = fakes.bigearthnet_patch_name(i)
        labels = json.loads((s2 / s2_name / f"{s2_name}_labels_metadata.json").read_text())["labels"]
        name = s1_patch_name(num_patches - 1 - i)
        signal = TO_19.get(labels[0], 0)
        for pol in ("VV", "VH"):
            plane = s1_plane(pol, signal, rng, 120)
            write_tif(out / name / f"{name}_{pol}.tif", (10 ** (plane / 10) if linear else plane)[None])
        meta = {"labels": labels, "coordinates": {"ulx": 0, "uly": 0, "lrx": 0, "lry": 0}, "projection": "",
                "corresponding_s2_patch": s2_name, "scene_source": "", "acquisition_time": ""}
        (out / name / f"{name}_labels_metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return out


REBEN_LABELS = [["Urban fabric", "Arable land"], ["Broad-leaved forest"], ["Inland waters", "Pastures"],
                ["Coniferous forest"], ["Arable land"], ["Marine waters"]]
REBEN_SPLITS = ["train", "train", "validation", "test", "train", "validation"]


def reben_names(i: int) -> tuple[str, str]:
    """(patch_id, s1_name) of fake reBEN row ``i``."""
    s2 = f"S2A_MSIL2A_201706{13 + i:02d}T101031_N9999_R022_T33UUP_26_{50 + i}"
    s1 = f"S1A_IW_GRDH_1SDV_201706{13 + i:02d}T165043_33UUP_61_{39 + i}"
    return s2, s1


def write_reben(root: str | Path, seed: int = 0, s2_native: bool = True) -> Path:
    """reBEN: metadata.parquet, BigEarthNet-S1/<tile>/<s1_name>/..., BigEarthNet-S2/<tile>/<patch_id>/...;
    row 4 is flagged for cloud. Returns root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in ("patch_id", "labels", "split", "country", "s1_name", "s2v1_name",
                                             "contains_seasonal_snow", "contains_cloud_or_shadow")}
    for i, labels in enumerate(REBEN_LABELS):
        s2, s1 = reben_names(i)
        signal = i
        s1_dir = root / "BigEarthNet-S1" / "_".join(s1.split("_")[:-3]) / s1
        for pol in ("VV", "VH"):
            write_tif(s1_dir / f"{s1}_{pol}.tif", s1_plane(pol, signal, rng, 120)[None])
        s2_dir = root / "BigEarthNet-S2" / "_".join(s2.split("_")[:-2]) / s2
        for band in fakes.L2A:
            res = fakes.BY_NAME[band].resolution_m
            side = {10: 120, 20: 60, 60: 20}[res] if s2_native else 120
            write_tif(s2_dir / f"{s2}_{band}.tif", fakes.band_dn(band, signal, rng.integers(0, 10, (side, side)))[None])
        for k, v in zip(rows, (s2, labels, REBEN_SPLITS[i], "Austria", s1, f"v1_{i}", False, i == 4), strict=True):
            rows[k].append(v)
    pq.write_table(pa.table(rows), root / "metadata.parquet")
    return root


def write_eurosat_sar(root: str | Path, per_class: int = 3, seed: int = 0, nested: bool = False) -> Path:
    """EuroSAT-SAR: ``<root>/<Class>/<Class>_<n>.tif`` (2 float32 bands VV, VH in dB, 64 x 64), or the
    Copernicus-Bench ``<root>/eurosat_s1/all_imgs/<Class>/...`` with ``nested``. Returns the class root."""
    base = Path(root) / "eurosat_s1" / "all_imgs" if nested else Path(root)
    rng = np.random.default_rng(seed)
    for label, cls in enumerate(fakes.EUROSAT_CLASSES):
        for n in range(1, per_class + 1):
            data = np.stack([s1_plane(p, label, rng, 64) for p in ("VV", "VH")])
            write_tif(base / cls / f"{cls}_{n}.tif", data)
    return base
