"""Reading S1 RTC COGs onto the S2 10 m grid: average of linear power, nodata ignored, slices mosaicked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp
from rasterio.transform import from_origin

from seco.collect.s1read import read_s1
from seco.collect.s1scene import Acquisition, S1Item
from seco.errors import ReadError

EPSG = 32631
T0 = dt.datetime(2024, 6, 1, 6, tzinfo=dt.UTC)


def cog(path: Path, data: np.ndarray, x0: float, y0: float, res: float, nodata: float = -32768.0) -> str:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype="float32", crs=f"EPSG:{EPSG}", transform=from_origin(x0, y0, res, res),
                       nodata=nodata, tiled=True, blockxsize=16, blockysize=16) as ds:
        ds.write(data.astype(np.float32), 1)
    return str(path)


def item(name: str, vv: str, vh: str) -> S1Item:
    return S1Item(id=name, datetime=T0, bbox=(0, 0, 1, 1), collection="sentinel-1-rtc", provider="local",
                  assets={"VV": vv, "VH": vh}, mode="IW", polarizations=("VV", "VH"), orbit_state="ascending",
                  relative_orbit=1, platform="sentinel-1a")


def test_linear_power_is_averaged_then_converted(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lin = rng.gamma(4.4, 0.1 / 4.4, size=(32, 32)).astype(np.float32)  # speckled linear gamma0 at 5 m
    lin[3, 5] = -32768.0  # nodata: left out of its 10 m pixel's mean
    p = cog(tmp_path / "vv.tif", lin, 500000.0, 4000000.0, 5.0)
    acq = Acquisition((item("a", p, p),), 0.0)
    out = read_s1(acq, EPSG, (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0), 16)
    assert out.db.shape == (2, 16, 16) and out.db.dtype == np.float32
    blocks = np.where(lin == -32768.0, np.nan, lin).reshape(16, 2, 16, 2)
    want = 10 * np.log10(np.nanmean(blocks, axis=(1, 3)))
    np.testing.assert_allclose(out.db[0], want, atol=1e-4)
    mean_of_db = np.nanmean(10 * np.log10(blocks), axis=(1, 3))
    assert np.abs(out.db[0] - mean_of_db).max() > 0.1  # the other (wrong) order differs measurably
    assert out.nodata_fraction == 0.0


def test_slices_of_one_pass_are_mosaicked(tmp_path: Path) -> None:
    top = np.full((8, 16), 0.1, np.float32)
    bottom = np.full((8, 16), 0.01, np.float32)
    a = cog(tmp_path / "a.tif", top, 500000.0, 4000000.0, 10.0)
    b = cog(tmp_path / "b.tif", bottom, 500000.0, 4000000.0 - 80.0, 10.0)
    acq = Acquisition((item("a", a, a), item("b", b, b)), 0.0)
    out = read_s1(acq, EPSG, (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0), 16)
    np.testing.assert_allclose(out.db[:, :8], -10.0, atol=1e-5)
    np.testing.assert_allclose(out.db[:, 8:], -20.0, atol=1e-5)
    one = read_s1(Acquisition((item("a", a, a),), 0.0), EPSG, (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0), 16)
    assert one.nodata_fraction == pytest.approx(0.5)


def test_a_corrupt_cog_is_a_read_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage" * 10)
    with pytest.raises(ReadError, match="bad.tif"):
        read_s1(Acquisition((item("x", str(bad), str(bad)),), 0.0), EPSG,
                (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0), 8)


def test_catalog_build_indexes_s1_cogs(tmp_path: Path) -> None:
    import json

    from seco.collect.build import build_catalog
    from seco.collect.s1catalog import open_s1_catalog
    from seco.radiometry.s1 import S1RuleError

    scene = tmp_path / "arch" / "S1A_20240601"
    scene.mkdir(parents=True)
    lin = np.full((16, 16), 0.05, np.float32)
    for pol in ("vv", "vh"):
        cog(scene / f"S1A_20240601_{pol}.tif", lin, 500000.0, 4000000.0, 10.0)
    (scene / "S1A_20240601.json").write_text(json.dumps({
        "datetime": "2024-06-01T06:00:00Z", "platform": "sentinel-1a", "sar:instrument_mode": "IW",
        "sar:polarizations": ["VV", "VH"], "sat:orbit_state": "ascending", "sat:relative_orbit": 88}))
    bare = tmp_path / "arch" / "bare"
    bare.mkdir()
    cog(bare / "S1A_20240602T060000_vv.tif", lin, 500000.0, 4000000.0, 10.0)
    cog(bare / "S1A_20240602T060000_vh.tif", lin, 500000.0, 4000000.0, 10.0)
    (bare / "metadata.json").write_text(json.dumps({"datetime": "2024-06-02T06:00:00Z", "platform": "sentinel-1a"}))
    rep = build_catalog(tmp_path / "arch", tmp_path / "c.parquet")
    assert rep.items == 2 and not rep.skipped
    cat = open_s1_catalog(tmp_path / "c.parquet", "sentinel-1-rtc")
    lon, lat = rasterio.warp.transform(f"EPSG:{EPSG}", "EPSG:4326", [500080.0], [3999920.0])
    found = {it.id: it for it in cat.search((lon[0] - 1e-4, lat[0] - 1e-4, lon[0] + 1e-4, lat[0] + 1e-4),
                                            "2024-05-30", "2024-06-05")}
    assert set(found) == {"S1A_20240601_S1A_20240601", "bare_S1A_20240602T060000"}
    it = found["S1A_20240601_S1A_20240601"]
    assert (set(it.assets), it.orbit_state, it.relative_orbit, it.rule().rule) == \
        ({"VV", "VH"}, "ascending", 88, "local-rtc:gamma0-linear-to-db")
    with pytest.raises(S1RuleError, match="sat:orbit_state"):
        found["bare_S1A_20240602T060000"].rule()
