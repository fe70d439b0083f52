"""read_patch(align=k): patch origins snapped to the 20 m / 60 m grids, so a native-resolution store keeps them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
from rasterio.warp import transform as warp_transform

from seco.bands import L2A
from seco.collect.catalog import ParquetCatalog
from seco.collect.patches import read_patch, snap
from seco.collect.scene import SceneItem
from seco.errors import ConfigError
from seco.store.packing import NotNativeError, PackSpec
from seco.synth.archive import make_archive, read_manifest

X0, Y0 = 600000.0, 5000040.0


def test_snap_moves_at_most_half_the_alignment():
    for align in (1, 2, 3, 6):
        for i in range(-20, 40):
            s = snap(i, align)
            assert s % align == 0 and abs(s - i) <= align / 2
            if align == 1:
                assert s == i
    assert snap(3, 6) == 6 and snap(2, 6) == 0 and snap(-3, 6) == 0 and snap(9, 6) == 12  # ties upwards


def _gradient_item(tmp_path: Path) -> SceneItem:
    """10/20/60 m COGs sharing one origin; each pixel's value encodes its (row, col) on its own grid."""
    assets = {}
    for band, res, n in (("B02", 10, 120), ("B05", 20, 60), ("B01", 60, 20)):
        arr = (1 + np.arange(n)[:, None] * n + np.arange(n)[None, :]).astype(np.uint16)
        path = tmp_path / f"{band}.tif"
        with rasterio.open(path, "w", driver="COG", width=n, height=n, count=1, dtype="uint16", crs="EPSG:32631",
                           transform=Affine(res, 0, X0, 0, -res, Y0), nodata=0, blocksize=256) as dst:
            dst.write(arr, 1)
        assets[band] = str(path)
    return SceneItem(id="gradient", datetime=dt.datetime(2020, 6, 1, tzinfo=dt.UTC), cloud_cover=0.0,
                     bbox=(2.0, 45.0, 4.0, 46.0), epsg=32631, assets=assets)


def _lonlat(x: float, y: float, epsg: int) -> tuple[float, float]:
    lon, lat = warp_transform(f"EPSG:{epsg}", "EPSG:4326", [x], [y])
    return float(lon[0]), float(lat[0])


@pytest.mark.parametrize(("col0", "row0"), [(0, 0), (7, 3), (13, 29), (3, 9), (41, 50)])
def test_align_snaps_the_origin_and_records_the_real_patch(tmp_path, col0, row0):
    item = _gradient_item(tmp_path)
    size = 30
    lon, lat = _lonlat(X0 + (col0 + size / 2) * 10, Y0 - (row0 + size / 2) * 10, 32631)
    bands = ("B02", "B05", "B01")
    plain = read_patch(item, lon, lat, size_px=size, bands=bands, scl=False)
    assert plain.transform[2] == X0 + col0 * 10 and plain.transform[5] == Y0 - row0 * 10  # align=1: as before
    p = read_patch(item, lon, lat, size_px=size, bands=bands, scl=False, align=6)
    c0, r0 = snap(col0, 6), snap(row0, 6)
    assert p.transform == (10.0, 0.0, X0 + c0 * 10, 0.0, -10.0, Y0 - r0 * 10)
    assert abs(c0 - col0) <= 3 and abs(r0 - row0) <= 3  # the centre moved by at most 30 m per axis
    assert p.bbox == (X0 + c0 * 10, Y0 - (r0 + size) * 10, X0 + (c0 + size) * 10, Y0 - r0 * 10)
    assert (p.lon, p.lat) == pytest.approx(_lonlat(X0 + (c0 + size / 2) * 10, Y0 - (r0 + size / 2) * 10, 32631))
    r = r0 + np.arange(size)[:, None]
    c = c0 + np.arange(size)[None, :]
    np.testing.assert_array_equal(p.data[0], 1 + r * 120 + c)
    np.testing.assert_array_equal(p.data[1], 1 + (r // 2) * 60 + c // 2)
    np.testing.assert_array_equal(p.data[2], 1 + (r // 6) * 20 + c // 6)
    spec = PackSpec.build(bands, size)
    parts = spec.split(p.data[None])  # whole blocks: the native store takes it
    np.testing.assert_array_equal(parts[1][0, 0], 1 + (r0 // 2 + np.arange(15))[:, None] * 60
                                  + (c0 // 2 + np.arange(15))[None, :])
    if col0 % 6 or row0 % 6:
        with pytest.raises(NotNativeError, match="--grid 10m"):
            spec.split(plain.data[None])


def test_bad_align_is_a_config_error(tmp_path):
    item = _gradient_item(tmp_path)
    lon, lat = _lonlat(X0 + 300, Y0 - 300, 32631)
    for bad in (0, -6, 2.0, True, 61):
        with pytest.raises(ConfigError, match="align"):
            read_patch(item, lon, lat, size_px=30, bands=("B02",), scl=False, align=bad)


# ---------------------------------------------------------------------------------------------- a real COG archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return make_archive(tmp_path_factory.mktemp("align") / "a", seed=3, zones=(31,), dates=("2021-06-01",),
                        scene_px=240, blocksize=256, corrupt=0, missing=0, edge_prob=0.0, progress=False)


def test_sentinel2_archive_patch_with_align_6_is_native(archive):
    """12 L2A bands from 10/20/60 m COGs (tile grids nesting as in Sentinel-2): align=6 gives whole blocks at an
    odd requested origin, align=1 there does not (the check can fail)."""
    m = read_manifest(archive)
    site, scene = m["sites"][0], m["scenes"][0]
    item = ParquetCatalog(archive / "catalog.parquet").search([-180, -90, 180, 90], "2020-01-01", "2024-01-01")[0]
    assert item.id == scene["id"]
    size = 48
    spec = PackSpec.build(L2A, size)
    for col0, row0 in ((37, 41), (61, 95), (100, 19)):
        lon, lat = _lonlat(site["x0"] + (col0 + size / 2) * 10, site["y0"] - (row0 + size / 2) * 10, site["epsg"])
        plain = read_patch(item, lon, lat, size_px=size)
        assert plain.transform[2] == site["x0"] + col0 * 10  # the natural window starts on an odd pixel
        with pytest.raises(NotNativeError):
            spec.split(plain.data[None])
        aligned = read_patch(item, lon, lat, size_px=size, align=6)
        assert (aligned.transform[2] - site["x0"]) % 60 == 0 and (site["y0"] - aligned.transform[5]) % 60 == 0
        parts = spec.split(aligned.data[None])
        np.testing.assert_array_equal(spec.unpack_numpy(spec.pack(aligned.data[None]))[0], aligned.data)
        assert [p.shape[-1] for p in parts] == [48, 24, 8]


OSCD_CITY = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "oscd" / (
    "Onera Satellite Change Detection dataset - Images") / "bercy"


def test_real_oscd_rasters_do_not_nest_so_the_native_check_refuses_them(tmp_path):
    """Real Sentinel-2 L1C in EPSG:4326 (OSCD): 10/20/60 m rasters whose grids do not nest; even an aligned
    read leaves 20 m bands that are not whole blocks, and the native store's check says so."""
    if not OSCD_CITY.is_dir():
        pytest.skip(f"OSCD sample not found at {OSCD_CITY}; it lives in ../shared/data beside the repository")
    from seco.collect.build import build_catalog

    build_catalog(OSCD_CITY, tmp_path / "bercy.parquet")
    item = ParquetCatalog(tmp_path / "bercy.parquet").search([-180, -90, 180, 90], "2015-01-01", "2020-01-01")[0]
    w, s, e, n = item.bbox
    p = read_patch(item, (w + e) / 2, (s + n) / 2, size_px=120, bands="l1c", align=6)
    with pytest.raises(NotNativeError, match="not constant on"):
        PackSpec.build(p.bands, 120).split(p.data[None])
