"""Cloud and nodata fractions on hand-made SCL and bands; patch_ok; the L1C fallback on real OSCD data."""

from __future__ import annotations

import datetime as dt
import glob
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio

from seco.bands import L1C
from seco.collect.cloud import (
    CLOUD_CLASSES,
    cloud_fraction,
    l1c_cloud_mask,
    nodata_fraction,
    patch_ok,
    scl_cloud_fraction,
)
from seco.collect.patches import Patch
from seco.errors import ConfigError

OSCD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "oscd" / (
    "Onera Satellite Change Detection dataset - Images")


def _patch(data: np.ndarray, bands: tuple[str, ...], scl: np.ndarray | None) -> Patch:
    nod = (data == 0).any(axis=0) | (scl == 0 if scl is not None else False)
    return Patch(data=data, bands=bands, scl=scl, crs=32631, transform=(10.0, 0.0, 0.0, 0.0, -10.0, 0.0),
                 bbox=(0.0, -10.0 * data.shape[1], 10.0 * data.shape[2], 0.0), nodata_fraction=float(nod.mean()),
                 item_id="x", datetime=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), lon=0.0, lat=0.0)


def test_scl_cloud_fraction_counts_shadow_medium_high_cirrus():
    assert CLOUD_CLASSES == (3, 8, 9, 10)
    scl = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [4, 4, 4, 4]], np.uint8)
    assert scl_cloud_fraction(scl) == pytest.approx(4 / 16)
    assert scl_cloud_fraction(np.full((5, 5), 11, np.uint8)) == 0.0  # snow is not cloud
    assert scl_cloud_fraction(np.full((5, 5), 9, np.int32)) == 1.0
    with pytest.raises(ConfigError):
        scl_cloud_fraction(np.zeros((0, 0), np.uint8))


def test_nodata_fraction_any_band_zero_or_scl_zero():
    data = np.full((3, 4, 4), 500, np.uint16)
    data[1, 0, 0] = 0  # one band of one pixel
    data[:, 3, :] = 0  # a whole row
    assert nodata_fraction(data) == pytest.approx(5 / 16)
    scl = np.full((4, 4), 4, np.uint8)
    scl[1, 1] = 0
    assert nodata_fraction(data, scl) == pytest.approx(6 / 16)
    with pytest.raises(ConfigError, match="C, H, W"):
        nodata_fraction(np.zeros((4, 4), np.uint16))


def test_patch_ok_thresholds_and_reasons():
    data = np.full((2, 10, 10), 800, np.uint16)
    scl = np.full((10, 10), 4, np.uint8)
    ok = _patch(data, ("B02", "B03"), scl)
    assert patch_ok(ok) == (True, "")
    cloudy = scl.copy()
    cloudy[:2] = 9  # 20 %
    ok_flag, reason = patch_ok(_patch(data, ("B02", "B03"), cloudy))
    assert not ok_flag and "cloud 0.200 > 0.1 (SCL)" in reason
    assert patch_ok(_patch(data, ("B02", "B03"), cloudy), max_cloud=0.2) == (True, "")
    holes = data.copy()
    holes[0, 0, :5] = 0  # 5 % nodata
    ok_flag, reason = patch_ok(_patch(holes, ("B02", "B03"), scl))
    assert not ok_flag and reason.startswith("nodata 0.050")
    assert patch_ok(_patch(holes, ("B02", "B03"), scl), max_nodata=0.05)[0]
    with pytest.raises(ConfigError, match="max_cloud"):
        patch_ok(ok, max_cloud=10)


def test_l1c_fallback_brightness_test():
    bands = ("B02", "B03", "B10", "B11")
    clear = np.array([900, 800, 15, 1500], np.uint16)  # vegetation-like
    cloud = np.array([6300, 6200, 900, 4200], np.uint16)  # thick cloud: bright everywhere
    snow = np.array([8600, 8400, 30, 900], np.uint16)  # bright in the visible, dark in the SWIR
    cirrus = np.array([1100, 1000, 300, 1600], np.uint16)  # only the 1375 nm band sees it
    data = np.stack([clear, cloud, snow, cirrus], axis=1)[:, None, :]  # (C, 1, 4)
    np.testing.assert_array_equal(l1c_cloud_mask(data, bands)[0], [False, True, False, True])
    p = _patch(np.repeat(data, 4, axis=1), bands, None)
    assert cloud_fraction(p) == pytest.approx(0.5)
    assert patch_ok(p)[0] is False and "L1C brightness test" in patch_ok(p)[1]
    assert l1c_cloud_mask(data[1:], bands[1:]) is None  # no B02: unknown
    unknown = _patch(np.repeat(data[1:], 4, axis=1), bands[1:], None)
    assert math.isnan(cloud_fraction(unknown)) and patch_ok(unknown) == (True, "")


def test_l1c_fallback_on_clear_real_oscd_scenes():
    """The five OSCD cities are cloud-free at both dates; bright roofs and soil must stay under 5 %."""
    if not OSCD.is_dir():
        pytest.skip(f"OSCD sample not found at {OSCD}; it lives in ../shared/data beside the repository")
    for d in sorted(glob.glob(str(OSCD / "*" / "imgs_*"))):
        bands = {}
        for f in glob.glob(f"{d}/*_B*.tif"):
            name = Path(f).stem[-3:]
            if name in ("B02", "B03"):
                with rasterio.open(f) as src:
                    bands[name] = src.read(1)
        for name in ("B10", "B11"):  # 60 / 20 m: nearest-upsample onto the 10 m raster for the test
            (f,) = glob.glob(f"{d}/*_{name}.tif")
            with rasterio.open(f) as src:
                small = src.read(1)
            h, w = bands["B02"].shape
            r = np.minimum((np.arange(h) * small.shape[0]) // h, small.shape[0] - 1)
            c = np.minimum((np.arange(w) * small.shape[1]) // w, small.shape[1] - 1)
            bands[name] = small[np.ix_(r, c)]
        order = tuple(b for b in L1C if b in bands)
        frac = l1c_cloud_mask(np.stack([bands[b] for b in order]), order).mean()
        assert frac < 0.05, f"{d}: {frac:.3f} of a clear scene flagged as cloud"
