"""``build_catalog``: the real OSCD sample and small synthetic layouts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from seco.bands import L1C, L2A
from seco.collect.build import build_catalog
from seco.collect.catalog import open_catalog
from seco.errors import CatalogError, ConfigError
from tests.collect.conftest import SHARED_DATA

OSCD_IMAGES = SHARED_DATA / "oscd" / "Onera Satellite Change Detection dataset - Images"


@pytest.mark.skipif(not OSCD_IMAGES.is_dir(), reason=f"OSCD sample not found at {OSCD_IMAGES} (../shared/data)")
def test_build_over_oscd(tmp_path):
    report = build_catalog(SHARED_DATA / "oscd", tmp_path / "oscd.parquet", collection="oscd")
    cities = sorted(p.name for p in OSCD_IMAGES.iterdir() if (p / "dates.txt").is_file())
    assert report.items == 2 * len(cities)
    # the change-map label rasters carry no CRS and no band: reported, not indexed
    assert report.skipped and all("-cm.tif" in p for p, _ in report.skipped)

    cat = open_catalog(report.out)  # default check: the 12 L2A bands (OSCD is L1C with 13)
    with pytest.raises(CatalogError, match="SCL"):
        open_catalog(report.out, bands="l2a,SCL")  # L1C has no scene classification
    everything = cat.search([-180, -90, 180, 90], "2015-01-01", "2018-12-31")
    assert len(everything) == report.items
    for city in cities:
        dates = dict(line.split(": ") for line in (OSCD_IMAGES / city / "dates.txt").read_text().split("\n") if line)
        gj = json.loads((OSCD_IMAGES / city / f"{city}.geojson").read_text())
        ring = np.array(gj["features"][0]["geometry"]["coordinates"][0])
        box = (ring[:, 0].min(), ring[:, 1].min(), ring[:, 0].max(), ring[:, 1].max())
        mine = [it for it in everything if f"_{city}_imgs_" in it.id]
        assert len(mine) == 2
        for it in mine:
            k = it.id.split("_imgs_")[1][0]
            assert it.datetime == dt.datetime.strptime(dates[f"date_{k}"], "%Y%m%d").replace(tzinfo=dt.UTC)
            np.testing.assert_allclose(it.bbox, box, atol=1e-6)
            assert it.epsg == 4326 and it.cloud_cover is None
            assert it.bands == L1C and it.has(L2A)
            for band, href in it.assets.items():
                assert Path(href).is_file() and href.endswith(f"_{band}.tif")
                assert f"/{city}/imgs_{k}/" in href
        # a search around the city finds exactly its two dates (cities do not overlap in this sample)
        inner = (box[0] + 1e-4, box[1] + 1e-4, box[2] - 1e-4, box[3] - 1e-4)
        assert {it.id for it in cat.search(inner, "2015-01-01", "2018-12-31")} == {it.id for it in mine}
    first_dates = {it.datetime for it in everything}
    assert min(first_dates).year == 2015
    # a cloud filter drops scenes with unknown cloud cover
    assert cat.search([-180, -90, 180, 90], "2015-01-01", "2018-12-31", max_cloud=50) == []


def write_tif(path: Path, count: int, crs: str, origin: tuple[float, float], res: float, size: int = 8,
              descriptions: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=count, dtype="uint16", crs=crs,
                       transform=Affine(res, 0, origin[0], 0, -res, origin[1])) as dst:
        dst.write(np.arange(count * size * size, dtype=np.uint16).reshape(count, size, size))
        if descriptions:
            for i, d in enumerate(descriptions, start=1):
                dst.set_band_description(i, d)


def test_build_synthetic_layouts(tmp_path):
    root = tmp_path / "scenes"
    # (a) one multi-band UTM file with band descriptions and a sidecar
    write_tif(root / "stack" / "scene_a.tif", 4, "EPSG:32631", (500000, 5000000), 10.0,
              descriptions=["B02", "B03", "red", "B8A"])
    (root / "stack" / "scene_a.json").write_text(json.dumps({"datetime": "2021-06-01T10:30:00Z",
                                                             "eo:cloud_cover": 12.5}))
    # (b) one file per band, sensing time in the name
    for b, res in (("B02", 10.0), ("B03", 10.0), ("B11", 20.0)):
        write_tif(root / "tiles" / f"T31UDQ_20200105T105431_{b}.tif", 1, "EPSG:32631", (600000, 5400000), res)
    # (c) official SeCo downloader layout: B1.tif.. + metadata.json from Earth Engine
    gee = root / "000001" / "20200611T083609_20200611T084728_T34HCH"
    for b in ("B2", "B3", "B4"):
        write_tif(gee / f"{b}.tif", 1, "EPSG:4326", (20.0, -33.0), 0.0001)
    ms = int(dt.datetime(2020, 6, 11, 8, 36, 9, tzinfo=dt.UTC).timestamp() * 1000)
    (gee / "metadata.json").write_text(json.dumps({"system:time_start": ms, "CLOUDY_PIXEL_PERCENTAGE": 3.25,
                                                   "PROCESSING_BASELINE": "02.14"}))
    # (d) a scene without any date, and a tif that is not a band
    write_tif(root / "nodate" / "whatever_B04.tif", 1, "EPSG:32631", (500000, 5000000), 10.0)
    write_tif(root / "misc" / "mask.tif", 1, "EPSG:32631", (500000, 5000000), 10.0)

    report = build_catalog(root, tmp_path / "cat.parquet")
    assert report.items == 3
    reasons = dict(report.skipped)
    assert any("no acquisition date" in r for r in reasons.values())
    assert any("mask.tif" in p and "no band token" in r for p, r in reasons.items())

    cat = open_catalog(report.out, bands=["B02", "B03"])
    items = {it.id: it for it in cat.search([-180, -90, 180, 90], "2019-01-01", "2022-01-01")}
    a = items["stack_scene_a"]
    assert a.band_index == {"B02": 1, "B03": 2, "B04": 3, "B8A": 4}
    assert len(set(a.assets.values())) == 1 and a.cloud_cover == 12.5 and a.epsg == 32631
    assert a.datetime == dt.datetime(2021, 6, 1, 10, 30, tzinfo=dt.UTC)
    # UTM 31N easting 500000 is the 3 E central meridian; northing 5000000 is ~45.1 N
    assert a.bbox[0] == pytest.approx(3.0, abs=1e-6) and a.bbox[3] == pytest.approx(45.15, abs=0.05)

    b = items["tiles_T31UDQ_20200105T105431"]
    assert set(b.assets) == {"B02", "B03", "B11"} and b.band_index == {}
    assert b.datetime == dt.datetime(2020, 1, 5, 10, 54, 31, tzinfo=dt.UTC) and b.cloud_cover is None

    c = items["000001_20200611T083609_20200611T084728_T34HCH"]
    assert set(c.assets) == {"B02", "B03", "B04"} and c.cloud_cover == 3.25
    assert c.processing_baseline == "02.14" and c.epsg == 4326
    assert c.datetime == dt.datetime(2020, 6, 11, 8, 36, 9, tzinfo=dt.UTC)
    np.testing.assert_allclose(c.bbox, (20.0, -33.0008, 20.0008, -33.0), atol=1e-9)
    assert [it.id for it in cat.search([-180, -90, 180, 90], "2019-01-01", "2022-01-01", max_cloud=5)] == [c.id]


def test_build_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        build_catalog(tmp_path / "missing", tmp_path / "x.parquet")
    with pytest.raises(ConfigError, match=r"\.parquet"):
        build_catalog(tmp_path, tmp_path / "x.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="no scenes found"):
        build_catalog(tmp_path / "empty", tmp_path / "x.parquet")
    write_tif(tmp_path / "bad" / "scene_B02.tif", 1, "EPSG:32631", (500000, 5000000), 10.0)
    (tmp_path / "bad" / "scene.json").write_text(json.dumps({"datetime": "yesterday"}))
    with pytest.raises(CatalogError, match="not ISO 8601"):
        build_catalog(tmp_path / "bad", tmp_path / "x.parquet")
