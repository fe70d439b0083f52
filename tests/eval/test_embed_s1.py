"""``seco embed`` on Sentinel-1 GeoTIFFs and S1 + S2 pairs: units, range checks, grids, exports with VV / VH."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import torch
from affine import Affine

from seco.backbones import build_backbone
from seco.bands import L1C, RGB
from seco.data.normalize import Normalization
from seco.data.sar import check_db, linear_to_db, parse_sensor_bands
from seco.errors import DatasetError
from seco.eval.backbone import load_weights
from seco.models.export import export_backbone, load_exported
from tests.eval._helpers import make_export

H, W = 64, 96
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)


def write_s1(path: Path, linear: bool = False, transform: Affine = TRANSFORM, seed: int = 0,
             nodata_cols: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    db = np.stack([-10 + rng.normal(0, 2, (H, W)), -20 + rng.normal(0, 2, (H, W))]).astype(np.float32)
    if nodata_cols:
        db[:, :, :nodata_cols] = np.nan
    data = (10 ** (db / 10)).astype(np.float32) if linear else db
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=2, dtype="float32", crs="EPSG:32633",
                       transform=transform, nodata=float("nan")) as dst:
        dst.write(data)
        dst.descriptions = ("VV", "VH")
    return path


def write_s2(path: Path, bands=RGB, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    data = np.stack([1000 + 200 * L1C.index(b) + rng.integers(0, 50, (H, W)) for b in bands]).astype(np.uint16)
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=len(bands), dtype="uint16",
                       crs="EPSG:32633", transform=TRANSFORM) as dst:
        dst.write(data)
        dst.descriptions = tuple(bands)
    return path


def s1_export(out: Path, bands: tuple[str, ...]) -> Path:
    torch.manual_seed(0)
    net = build_backbone("resnet18", len(bands), num_classes=0)
    norm = Normalization(bands, tuple(-10.0 if b == "VV" else -20.0 if b == "VH" else 0.1 for b in bands),
                                (2.0,) * len(bands), "meanstd")
    meta = {"bands": list(bands), "normalization": norm.to_dict(), "input_size": 64, "method": "seco",
            "training_steps": 0}
    return next(p for p in export_backbone(net.state_dict(), out, meta) if p.suffix == ".safetensors")


def embeddings(path: Path) -> np.ndarray:
    t = pq.read_table(path)
    return np.stack(t["embedding"].to_numpy(zero_copy_only=False))


# ---- units and checks ------------------------------------------------------------------------


def test_linear_to_db_and_nodata() -> None:
    out = linear_to_db(np.array([1.0, 0.1, 0.0, -1.0, np.nan]))
    np.testing.assert_allclose(out[:2], [0.0, -10.0], atol=1e-6)
    assert np.isnan(out[2:]).all()


def test_check_db_catches_linear_power_and_codes() -> None:
    rng = np.random.default_rng(0)
    db = -12 + rng.normal(0, 3, 1000)
    check_db(db, "x")
    with pytest.raises(DatasetError, match="--s1-units linear"):
        check_db(10 ** (db / 10), "x", "For linear power pass --s1-units linear")
    with pytest.raises(DatasetError, match="median"):
        check_db(np.round(db * 100) + 32768, "x")


def test_sensor_bands_expose_units() -> None:
    b = parse_sensor_bands("s1+s2", L1C)
    assert b.names[-2:] == ("VV", "VH") and b.units[-1] == "dB" and b.units[0] == "reflectance"
    assert b.channels("s1") == [13, 14]


# ---- exports with S1 bands -------------------------------------------------------------------


def test_export_with_s1_bands_round_trips(tmp_path: Path) -> None:
    st = s1_export(tmp_path / "m", (*RGB, "VV", "VH"))
    _, meta = load_exported(st)
    assert meta["bands"] == [*RGB, "VV", "VH"]
    spec = load_weights(str(st))
    assert spec.bands == (*RGB, "VV", "VH")
    assert isinstance(spec.normalization, Normalization)
    assert spec.normalization.units == ("reflectance",) * 3 + ("dB", "dB")


def test_older_s2_sidecar_still_loads(tmp_path: Path) -> None:
    spec = load_weights(str(make_export(tmp_path / "old", RGB)))
    assert spec.bands == RGB and type(spec.normalization).__name__ == "Normalization"


# ---- seco embed --------------------------------------------------------------------------------


def test_embed_s1_file_in_db_equals_linear_file_converted(run_cli, tmp_path: Path) -> None:
    st = s1_export(tmp_path / "m", ("VV", "VH"))
    db, lin = write_s1(tmp_path / "db.tif"), write_s1(tmp_path / "lin.tif", linear=True)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for src, out, extra in ((db, a, ()), (lin, b, ("--s1-units", "linear"))):
        code, _, err = run_cli("embed", "--weights", st, "--input", src, "--out", out, "--patch", "32",
                               "--device", "cpu", "--no-progress", *extra)
        assert code == 0, err
    ea, eb = embeddings(a), embeddings(b)
    assert ea.shape == (6, 512)
    np.testing.assert_allclose(ea, eb, rtol=1e-4, atol=1e-4)


def test_linear_values_given_as_db_are_refused(run_cli, tmp_path: Path) -> None:
    st = s1_export(tmp_path / "m", ("VV", "VH"))
    lin = write_s1(tmp_path / "lin.tif", linear=True)
    code, _, err = run_cli("embed", "--weights", st, "--input", lin, "--out", tmp_path / "o.parquet",
                           "--no-progress", "--device", "cpu")
    assert code == 2 and "--s1-units linear" in err
    assert not (tmp_path / "o.parquet").exists()
    db = write_s1(tmp_path / "db.tif")
    code, _, err = run_cli("embed", "--weights", st, "--input", db, "--s1-units", "linear",
                           "--out", tmp_path / "o.parquet", "--no-progress", "--device", "cpu")
    assert code == 2 and "already in dB" in err


def test_embed_s1_s2_pair_matches_the_model_by_hand(run_cli, tmp_path: Path) -> None:
    bands = (*RGB, "VV", "VH")
    st = s1_export(tmp_path / "m", bands)
    s2, s1 = write_s2(tmp_path / "s2.tif"), write_s1(tmp_path / "s1.tif", nodata_cols=40)
    out = tmp_path / "e.parquet"
    code, _, err = run_cli("embed", "--weights", st, "--input", s2, "--s1-input", s1, "--out", out, "--patch", "32",
                           "--device", "cpu", "--no-progress")
    assert code == 0, err
    emb = embeddings(out)
    # the patch at row 0, col 2 (x 64..96) by hand: S2 reflectance then S1 dB, normalised with the export's stats
    with rasterio.open(s2) as a, rasterio.open(s1) as b:
        x = np.concatenate([a.read()[:, :32, 64:96] / 10000.0, b.read()[:, :32, 64:96]]).astype(np.float32)
    sd, meta = load_exported(st)
    net = build_backbone("resnet18", 5, num_classes=0)
    net.load_state_dict(sd, strict=False)
    norm = Normalization.from_dict(meta["normalization"])
    ref = net.eval().forward_features(norm.apply(torch.from_numpy(x)[None])).detach().numpy()[0]
    np.testing.assert_allclose(emb[2], ref, rtol=1e-4, atol=1e-4)
    assert np.isfinite(emb).all()  # S1 nodata in cols 0..40 is filled, never NaN
    seco_meta = json.loads(pq.read_table(out).schema.metadata[b"seco"])
    assert seco_meta["units"] == ["reflectance"] * 3 + ["dB"] * 2 and seco_meta["bands"] == list(bands)


def test_pair_off_grid_is_refused(run_cli, tmp_path: Path) -> None:
    st = s1_export(tmp_path / "m", (*RGB, "VV", "VH"))
    s2 = write_s2(tmp_path / "s2.tif")
    s1 = write_s1(tmp_path / "s1.tif", transform=Affine(10.0, 0.0, 500010.0, 0.0, -10.0, 5000000.0))
    code, _, err = run_cli("embed", "--weights", st, "--input", s2, "--s1-input", s1, "--out",
                           tmp_path / "e.parquet", "--no-progress", "--device", "cpu")
    assert code == 2 and "not on the grid" in err and "transform" in err


def test_s2_weights_refuse_s1_input(run_cli, tmp_path: Path) -> None:
    st = make_export(tmp_path / "s2only", RGB)
    s2, s1 = write_s2(tmp_path / "s2.tif"), write_s1(tmp_path / "s1.tif")
    for args in (("--input", s1), ("--input", s2, "--s1-input", s1)):
        code, _, err = run_cli("embed", "--weights", st, *args, "--out", tmp_path / "e.parquet", "--no-progress",
                               "--device", "cpu")
        assert code == 2 and "Sentinel-2 bands only" in err, err


def test_s1_weights_without_s1_input_name_the_flag(run_cli, tmp_path: Path) -> None:
    st = s1_export(tmp_path / "m", (*RGB, "VV", "VH"))
    s2 = write_s2(tmp_path / "s2.tif")
    code, _, err = run_cli("embed", "--weights", st, "--input", s2, "--out", tmp_path / "e.parquet",
                           "--no-progress", "--device", "cpu")
    assert code == 2 and "--s1-input" in err


def test_random_weights_on_a_pair_use_per_sensor_input_statistics(run_cli, tmp_path: Path) -> None:
    s2, s1 = write_s2(tmp_path / "s2.tif"), write_s1(tmp_path / "s1.tif")
    out = tmp_path / "e.parquet"
    code, _, err = run_cli("embed", "--weights", "random", "--input", s2, "--s1-input", s1, "--out", out,
                           "--patch", "32", "--device", "cpu", "--no-progress")
    assert code == 0, err
    meta = json.loads(pq.read_table(out).schema.metadata[b"seco"])
    norm = meta["transform"]["normalization"]
    assert norm["bands"] == [*RGB, "VV", "VH"] and norm["units"][-1] == "dB"
    assert -11 < norm["mean"][3] < -9 and -21 < norm["mean"][4] < -19  # dB statistics of the S1 file
