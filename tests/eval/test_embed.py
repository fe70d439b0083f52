"""``seco embed`` on small GeoTIFFs written here: rows, footprints, CRS, band matching, dense output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import shapely
import torch
from affine import Affine
from rasterio.crs import CRS

from seco.bands import L1C, RGB
from seco.eval.backbone import load_backbone
from seco.eval.embed import grid_positions
from tests.eval._helpers import make_export

H, W = 100, 130
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)


def write_scene(path: Path, bands=L1C, crs: str = "EPSG:32633", descriptions=True, nodata=None, seed=0) -> Path:
    """A (len(bands), 100, 130) uint16 GeoTIFF whose band k holds 1000 + 200 * L1C.index(band) + noise."""
    rng = np.random.default_rng(seed)
    data = np.stack([1000 + 200 * L1C.index(b) + rng.integers(0, 50, (H, W)) for b in bands]).astype(np.uint16)
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=len(bands), dtype="uint16", crs=crs,
                       transform=TRANSFORM, nodata=nodata) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(f"{b} (band {i})" if i % 2 else b for i, b in enumerate(bands))
    return path


def test_grid_positions_cover_the_raster() -> None:
    assert grid_positions(100, 32, 32) == [0, 32, 64, 96]
    assert grid_positions(96, 32, 32) == [0, 32, 64]
    assert grid_positions(20, 32, 32) == [0]
    assert grid_positions(100, 32, 16) == [0, 16, 32, 48, 64, 80]  # last one reaches 112 >= 100


def test_embed_to_geoparquet(run_cli, tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif")
    out = tmp_path / "emb.parquet"
    code, stdout, err = run_cli("embed", "--weights", "random", "--input", scene, "--out", out, "--patch", "32",
                                "--batch-size", "7", "--no-progress")
    assert code == 0, err
    assert "embedded 20 patches" in stdout
    t = pq.read_table(out)
    assert t.num_rows == 4 * 5  # ceil(100 / 32) x ceil(130 / 32)
    emb = np.stack(t["embedding"].to_numpy(zero_copy_only=False))
    assert emb.shape == (20, 512) and np.isfinite(emb).all()
    geo = json.loads(t.schema.metadata[b"geo"])
    col = geo["columns"]["geometry"]
    assert geo["primary_column"] == "geometry" and col["encoding"] == "WKB"
    assert CRS.from_user_input(json.dumps(col["crs"])) == CRS.from_epsg(32633)  # CRS preserved (PROJJSON)
    assert col["bbox"] == [500000.0, 4999000.0, 501300.0, 5000000.0]
    polys = shapely.from_wkb(t["geometry"].to_numpy(zero_copy_only=False))
    union = shapely.union_all(polys)
    assert union.equals(shapely.box(500000, 4999000, 501300, 5000000))  # the footprints tile the raster ...
    assert sum(p.area for p in polys) == pytest.approx(union.area)  # ... without overlap
    rows = t.to_pydict()
    k = rows["row"].index(3) + rows["col"][rows["row"].index(3):].index(4)  # the bottom-right corner patch
    assert (rows["x_off"][k], rows["y_off"][k], rows["width"][k], rows["height"][k]) == (128, 96, 2, 4)
    assert polys[k].equals(shapely.box(501280, 4999000, 501300, 4999040))
    seco_meta = json.loads(t.schema.metadata[b"seco"])
    assert seco_meta["bands"] == list(L1C) and seco_meta["patch"] == 32


def test_embeddings_match_the_model_on_the_weights_bands(run_cli, tmp_path: Path) -> None:
    """An RGB export on a 13-band file: the embedding of patch (0, 0) is the model's on B04, B03, B02."""
    weights = make_export(tmp_path / "rgb", RGB)
    scene = write_scene(tmp_path / "scene.tif")
    out = tmp_path / "emb.parquet"
    code, _, err = run_cli("embed", "--weights", weights, "--input", scene, "--out", out, "--patch", "64",
                           "--no-progress")
    assert code == 0, err
    t = pq.read_table(out).to_pydict()
    first = np.asarray(t["embedding"][t["row"].index(0)], np.float32)
    lb = load_backbone(str(weights), RGB)
    with rasterio.open(scene) as src:
        x = src.read([L1C.index(b) + 1 for b in RGB], window=((0, 64), (0, 64))).astype(np.float32) / 10000
    with torch.no_grad():
        ref = lb.model.eval().forward_features(lb.transform.apply(torch.from_numpy(x)[None]))[0].numpy()
    np.testing.assert_allclose(first, ref, rtol=1e-4, atol=1e-5)


def test_dense_output_shape_and_transform(run_cli, tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", crs="EPSG:3857")
    dense = tmp_path / "dense.tif"
    code, _, err = run_cli("embed", "--weights", "random", "--input", scene, "--dense", dense, "--patch", "32",
                           "--stride", "16", "--no-progress")
    assert code == 0, err
    with rasterio.open(dense) as d:
        assert (d.count, d.height, d.width) == (512, 6, 8)  # grid_positions(100|130, 32, 16)
        assert d.crs == CRS.from_epsg(3857) and d.dtypes[0] == "float32"
        # cell (r, c) is the 16 px square centred on the patch at (16 r, 16 c): origin shifted by 8 px
        assert d.transform == TRANSFORM @ Affine.translation(8, 8) @ Affine.scale(16)
        a = d.read()
    assert np.isfinite(a).all()
    with rasterio.open(scene) as src:  # its first pixel centre is the centre of patch (0, 0)
        assert d.transform @ (0.5, 0.5) == src.transform @ (16, 16)


def test_nodata_patches_are_skipped(run_cli, tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", nodata=0)
    with rasterio.open(scene, "r+") as dst:
        data = dst.read()
        data[:, :32, :32] = 0  # patch (0, 0) all nodata
        data[:, 32:40, 32:64] = 0  # a quarter of patch (1, 1) nodata
        dst.write(data)
    out, dense = tmp_path / "e.parquet", tmp_path / "d.tif"
    code, _, err = run_cli("embed", "--weights", "random", "--input", scene, "--out", out, "--dense", dense,
                           "--patch", "32", "--no-progress")
    assert code == 0, err
    t = pq.read_table(out).to_pydict()
    pos = list(zip(t["row"], t["col"], strict=True))
    assert len(pos) == 19 and (0, 0) not in pos
    assert t["valid_fraction"][pos.index((1, 1))] == pytest.approx(0.75)
    with rasterio.open(dense) as d:
        a = d.read(1)
    assert np.isnan(a[0, 0]) and np.isfinite(a[1, 1])


def test_band_names_from_flag_and_refusals(run_cli, tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "nodesc.tif", bands=RGB, descriptions=False)
    out = tmp_path / "e.parquet"
    code, _, err = run_cli("embed", "--weights", "random", "--input", scene, "--out", out, "--patch", "64",
                           "--no-progress")
    assert code == 2 and "--bands" in err and not out.exists()
    code, _, err = run_cli("embed", "--weights", "random", "--input", scene, "--out", out, "--patch", "64",
                           "--bands", "B04,B03", "--no-progress")
    assert code == 2 and "lists 2 band(s)" in err
    code, _, err = run_cli("embed", "--weights", "random", "--input", scene, "--out", out, "--patch", "64",
                           "--bands", "B04,B03,B02", "--no-progress")
    assert code == 0, err
    assert json.loads(pq.read_table(out).schema.metadata[b"seco"])["bands"] == list(RGB)
    nir = make_export(tmp_path / "nir", ("B08", "B04"))
    code, _, err = run_cli("embed", "--weights", nir, "--input", scene, "--out", tmp_path / "f.parquet",
                           "--bands", "B04,B03,B02", "--no-progress")
    assert code == 2 and "lacks band(s) B08" in err


def test_folder_input_needs_one_crs(run_cli, tmp_path: Path) -> None:
    folder = tmp_path / "scenes"
    folder.mkdir()
    write_scene(folder / "a.tif", bands=RGB)
    write_scene(folder / "b.tif", bands=RGB, seed=1)
    out = tmp_path / "e.parquet"
    code, stdout, err = run_cli("embed", "--weights", "random", "--input", folder, "--out", out, "--patch", "64",
                                "--no-progress")
    assert code == 0, err
    t = pq.read_table(out).to_pydict()
    assert len(t["source"]) == 2 * 2 * 3 and set(t["source"]) == {"a.tif", "b.tif"}
    write_scene(folder / "c.tif", bands=RGB, crs="EPSG:4326")
    code, _, err = run_cli("embed", "--weights", "random", "--input", folder, "--out", out, "--patch", "64",
                           "--no-progress")
    assert code == 2 and "one CRS" in err


def _write_dtype(path: Path, data: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=data.shape[0], dtype=data.dtype.name,
                       crs="EPSG:32633", transform=TRANSFORM) as dst:
        dst.write(data)
        dst.descriptions = tuple(RGB)
    return path


def test_values_that_cannot_be_reflectance_are_refused(run_cli, tmp_path: Path) -> None:
    """A float64 file of DN (median ~1500: reflectance x 10000 with the float default --scale 1) and an int8
    file are refused before any output, naming the flag; the DN file with --scale 10000 embeds."""
    rng = np.random.default_rng(0)
    dn = (1000 + rng.integers(0, 1000, (3, H, W))).astype(np.float64)
    f64 = _write_dtype(tmp_path / "dn_f64.tif", dn)
    out = tmp_path / "e.parquet"
    args = ("embed", "--weights", "random", "--input", f64, "--out", out, "--patch", "64", "--no-progress")
    code, _, err = run_cli(*args)
    assert code == 2 and "has a median of" in err and "pass --scale 10000" in err and not out.exists()
    code, _, err = run_cli(*args, "--scale", "10000")
    assert code == 0, err
    i8 = _write_dtype(tmp_path / "i8.tif", rng.integers(-100, 100, (3, H, W)).astype(np.int8))
    code, _, err = run_cli("embed", "--weights", "random", "--input", i8, "--out", tmp_path / "g.parquet",
                           "--no-progress")
    assert code == 2 and "8-bit data is no Sentinel-2 reflectance" in err and "--scale" in err
