"""The simulated scene archive: COG layout, STAC metadata, SCL consistency, offsets, nodata edges, faults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely.geometry

from seco.bands import BY_NAME, L2A
from seco.collect.catalog import ParquetCatalog
from seco.errors import ConfigError
from seco.synth.archive import (
    archive_items,
    baseline_offset,
    make_archive,
    processing_baseline,
    read_manifest,
    write_index,
)

DATES = ("2021-12-07", "2022-03-01", "2022-05-24")  # across the 04.00 baseline change (2022-01-25)
KW = dict(zones=(31, 32), dates=DATES, scene_px=396, progress=False)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return make_archive(tmp_path_factory.mktemp("arch") / "a", seed=5, corrupt=2, missing=1, **KW)


def _broken(root: Path) -> set[str]:
    return {f["item"] for f in read_manifest(root)["faults"]}


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_layout_and_cog_profile(archive):
    m = read_manifest(archive)
    assert len(m["scenes"]) == 6 and {s["zone"] for s in m["scenes"]} == {31, 32}
    assert (archive / "collection.json").is_file() and (archive / "catalog.parquet").is_file()
    assert len((archive / "items.ndjson").read_text().splitlines()) == 6
    scene = next(s for s in m["scenes"] if s["id"] not in _broken(archive))
    d = archive / scene["id"]
    assert sorted(p.name for p in d.glob("*.tif")) == sorted(
        ["coastal.tif", "blue.tif", "green.tif", "red.tif", "rededge1.tif", "rededge2.tif", "rededge3.tif",
         "nir.tif", "nir08.tif", "nir09.tif", "swir16.tif", "swir22.tif", "scl.tif"])
    site = m["sites"][scene["site"]]
    for name, res, dtype in (("blue", 10, "uint16"), ("swir16", 20, "uint16"), ("nir09", 60, "uint16"),
                             ("scl", 20, "uint8")):
        with rasterio.open(d / f"{name}.tif") as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert src.profile["tiled"] and src.block_shapes[0] == (512, 512)
            assert src.compression.name.lower() == "zstd"
            assert src.dtypes[0] == dtype and src.nodata == 0
            assert src.crs.to_epsg() == 32600 + scene["zone"]
            assert src.res == (res, res) and src.width == 396 * 10 // res
            assert (src.transform.c, src.transform.f) == (site["x0"], site["y0"])
    assert site["x0"] % 60 == 0 and site["y0"] % 60 == 0  # 10/20/60 m grids nest


def test_items_metadata_matches_files(archive):
    m = read_manifest(archive)
    for it in archive_items(archive):
        scene = next(s for s in m["scenes"] if s["id"] == it["id"])
        p = it["properties"]
        assert p["proj:epsg"] == scene["epsg"]
        pb = p["s2:processing_baseline"]
        assert pb == processing_baseline(np.datetime64(p["datetime"][:10]).astype(object))
        for key, a in it["assets"].items():
            assert Path(a["href"]).is_absolute()
            rb = a["raster:bands"][0]
            if key == "scl":
                assert rb["data_type"] == "uint8" and "offset" not in rb
            elif pb >= "04.00":
                assert (rb["offset"], rb["scale"]) == (-0.1, 0.0001)
            else:
                assert "offset" not in rb and "scale" not in rb
            if not Path(a["href"]).exists() or it["id"] in _broken(archive):
                continue
            with rasterio.open(a["href"]) as src:
                assert list(a["proj:shape"]) == [src.height, src.width]
                assert tuple(a["proj:transform"]) == tuple(src.transform)[:6]
        # bbox is the WGS84 bounds of the geometry, which lies in the scene's UTM zone
        geom = shapely.geometry.shape(it["geometry"])
        assert np.allclose(geom.bounds, it["bbox"])
        lon0 = 6 * scene["zone"] - 183
        assert lon0 - 3 < it["bbox"][0] < it["bbox"][2] < lon0 + 3


def test_cloud_cover_and_nodata_recomputed_from_scl(archive):
    m = read_manifest(archive)
    for scene in m["scenes"]:
        if scene["id"] in _broken(archive):
            continue
        scl = _read(archive / scene["id"] / "scl.tif")
        valid = scl != 0
        cloud = 100 * np.isin(scl[valid], (8, 9, 10)).mean()
        assert scene["cloud_cover"] == pytest.approx(cloud)
        assert scene["nodata_percentage"] == pytest.approx(100 * (~valid).mean())


def test_clouds_and_shadows_in_the_bands_match_the_scl(archive):
    m = read_manifest(archive)
    checked = 0
    for scene in m["scenes"]:
        if scene["id"] in _broken(archive):
            continue
        scl = _read(archive / scene["id"] / "scl.tif")
        if (scl == 9).sum() < 50 or (scl == 3).sum() < 50:
            continue
        off = scene["dn_offset"]
        swir = _read(archive / scene["id"] / "swir16.tif").astype(float) - off  # a 20 m band, on the SCL grid
        surface = np.isin(scl, (4, 5))
        assert swir[scl == 9].mean() > 1.5 * swir[surface].mean()  # clouds are bright
        assert swir[scl == 3].mean() < 0.8 * swir[surface].mean()  # shadows are dark
        checked += 1
    assert checked >= 1, "no scene with both clouds and shadows; change the seed"


def test_swath_edge_is_nodata_in_every_band_and_outside_the_footprint(archive):
    m = read_manifest(archive)
    edge = [s for s in m["scenes"] if s["swath_edge"] and s["id"] not in _broken(archive)]
    assert edge, "no clean scene with a swath edge; change the seed"
    s = edge[0]
    scl = _read(archive / s["id"] / "scl.tif")
    b11 = _read(archive / s["id"] / "swir16.tif")
    assert 0.05 < (scl == 0).mean() < 0.6
    np.testing.assert_array_equal(scl == 0, b11 == 0)  # same 20 m grid, same nodata
    b02 = _read(archive / s["id"] / "blue.tif")
    assert (b02 == 0).any() and not (b02 == 0).all()
    item = next(it for it in archive_items(archive) if it["id"] == s["id"])
    footprint = shapely.geometry.shape(item["geometry"])
    full = shapely.geometry.box(*item["bbox"])
    assert footprint.area < 0.97 * full.area  # the nodata side is cut off


def test_post_04_scenes_store_dn_plus_1000(tmp_path, archive):
    """Same seed, baseline forced to 03.01: the files differ by exactly +1000 on valid pixels."""
    old = make_archive(tmp_path / "old", seed=5, corrupt=0, missing=0, baseline="03.01", **KW)
    m = read_manifest(archive)
    post = [s for s in m["scenes"] if s["dn_offset"] == 1000 and s["id"] not in _broken(archive)]
    assert post
    for s in post[:2]:
        new_dn = _read(archive / s["id"] / "red.tif").astype(np.int32)
        old_dn = _read(old / s["id"] / "red.tif").astype(np.int32)
        valid = old_dn != 0
        np.testing.assert_array_equal(new_dn[valid] - old_dn[valid], 1000)
        np.testing.assert_array_equal(new_dn[~valid], 0)
        assert new_dn[valid].min() >= 1001
    pre = next(s for s in read_manifest(old)["scenes"])
    assert pre["processing_baseline"] == "03.01" and pre["dn_offset"] == 0


def test_faults_are_listed_and_broken(archive):
    faults = read_manifest(archive)["faults"]
    assert sorted(f["kind"] for f in faults) == ["garbage", "missing", "truncated"]
    assert len({f["item"] for f in faults}) == 3
    items = {it["id"]: it for it in archive_items(archive)}
    for f in faults:
        path = Path(f["path"])
        assert f["asset"] in items[f["item"]]["assets"]  # the item still lists the asset
        if f["kind"] == "missing":
            assert not path.exists()
        elif f["kind"] == "garbage":
            with pytest.raises(rasterio.errors.RasterioIOError):
                rasterio.open(path)
        else:
            with rasterio.open(path) as src, pytest.raises(rasterio.errors.RasterioIOError):
                src.read(1)  # the header opens, the tiles are gone


def test_parquet_index_and_http_rewrite(archive):
    cat = ParquetCatalog(archive / "catalog.parquet")
    items = cat.search([-180, -90, 180, 90], "2021-01-01", "2023-01-01")
    assert len(items) == 6
    it = items[0]
    assert set(it.assets) == {*L2A, "SCL"} and it.epsg in (32631, 32632)
    assert Path(it.assets["B02"]).is_file() or it.id in _broken(archive)
    post = [i for i in items if i.processing_baseline >= "04.00"]
    assert post and all(i.offsets["B02"] == -0.1 and i.scales["B02"] == 0.0001 for i in post)
    assert all(not i.offsets for i in items if i.processing_baseline < "04.00")
    write_index(archive, "http://127.0.0.1:8080/arch", parquet="http.parquet", ndjson="http.ndjson")
    http = ParquetCatalog(archive / "http.parquet").search([-180, -90, 180, 90], "2021-01-01", "2023-01-01")
    assert http[0].assets["B8A"] == f"http://127.0.0.1:8080/arch/{http[0].id}/nir08.tif"
    line = json.loads((archive / "http.ndjson").read_text().splitlines()[0])
    assert line["assets"]["scl"]["href"].startswith("http://127.0.0.1:8080/arch/")


def test_band_style_l1c_and_determinism(tmp_path):
    kw = dict(zones=(33,), dates=("2022-06-01",), scene_px=120, corrupt=0, missing=0, progress=False)
    a = make_archive(tmp_path / "a", seed=1, level="L1C", asset_keys="band", raster_offsets=False, **kw)
    b = make_archive(tmp_path / "b", seed=1, level="L1C", asset_keys="band", raster_offsets=False, **kw)
    (it,) = archive_items(a)
    assert set(it["assets"]) == {b for b in BY_NAME}  # 13 bands, B02-style keys, no SCL
    assert it["properties"]["proj:code"] == "EPSG:32633" and "proj:epsg" not in it["properties"]
    assert it["properties"]["s2:product_type"] == "S2MSI1C"
    assert all("offset" not in a_["raster:bands"][0] for a_ in it["assets"].values())
    (scene,) = ParquetCatalog(a / "catalog.parquet").search([-180, -90, 180, 90], "2022-01-01", "2023-01-01")
    assert scene.processing_baseline == "04.00" and not scene.offsets and scene.epsg == 32633
    for name in ("B10", "B02"):
        np.testing.assert_array_equal(_read(a / it["id"] / f"{name}.tif"), _read(b / it["id"] / f"{name}.tif"))
    assert read_manifest(a)["scenes"] == read_manifest(b)["scenes"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="multiple of 6"):
        make_archive(tmp_path / "x", scene_px=100, progress=False)
    with pytest.raises(ConfigError, match="UTM zone"):
        make_archive(tmp_path / "x", zones=(0,), progress=False)
    with pytest.raises(ConfigError, match="at most"):
        make_archive(tmp_path / "x", zones=(31,), dates=("2022-01-01",), corrupt=2, progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        make_archive(tmp_path / "full", progress=False)


def test_baselines_follow_history():
    import datetime as dt

    assert processing_baseline(dt.date(2021, 12, 31)) == "03.01"
    assert processing_baseline(dt.date(2022, 1, 25)) == "04.00"
    assert processing_baseline(dt.datetime(2023, 1, 1, tzinfo=dt.UTC)) == "05.09"
    assert baseline_offset("05.09") == 1000 and baseline_offset("03.01") == 0


def test_relative_output_path_gives_readable_hrefs(tmp_path, monkeypatch):
    """`make demo` passes a relative folder: every asset href in the index must point at a real file."""
    import pyarrow.parquet as pq

    from seco.synth.archive import make_archive

    monkeypatch.chdir(tmp_path)
    root = make_archive("rel/archive", seed=1, num_scenes=1, scene_px=120, corrupt=0, missing=0, progress=False)
    table = pq.read_table(Path(root) / "catalog.parquet")
    hrefs = [a["href"] for assets in table.column("assets").to_pylist() for a in assets.values() if a]
    assert hrefs and all(Path(h).is_file() for h in hrefs), hrefs[:2]
