"""The simulated physics: calibrated spectra, phenology, snow, clouds, nodata, UTM/MGRS metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seco.bands import L2A
from seco.synth import CLASSES, simulate_location, spectra
from seco.synth.geo import mgrs_tile, to_utm, utm_epsg

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
B = {b: i for i, b in enumerate(L2A)}


@pytest.fixture(scope="module")
def sample():
    """40 small clear-sky locations: every class appears, no cloud or nodata to confuse the signal."""
    return [simulate_location(9, i, 5, 48, cloud_prob=0.0, nodata_prob=0.0, missing_prob=0.0) for i in range(40)]


def _ndvi(x):
    nir, red = x[B["B08"]].astype(float), x[B["B04"]].astype(float)
    return float(np.mean((nir - red) / (nir + red)))


def _season(m):
    doy = m["datetime"].timetuple().tm_yday
    return "summer" if 150 <= doy <= 240 else "winter" if doy >= 320 or doy <= 50 else None


def test_every_class_appears_and_label_is_dominant(sample):
    assert {loc["label"] for loc in sample} == set(range(len(CLASSES)))
    for loc in sample:
        assert loc["class_fractions"][loc["label"]] == loc["class_fractions"].max() >= 0.5


def test_vegetation_greens_up_in_summer_water_stays(sample):
    by = {c: {"summer": [], "winter": []} for c in ("cropland", "grassland", "forest", "water")}
    for loc in sample:
        name = CLASSES[loc["label"]]
        if name in by:
            for x, m in zip(loc["images"], loc["dates_meta"], strict=True):
                if _season(m):
                    by[name][_season(m)].append(_ndvi(x))
    for name in ("cropland", "grassland", "forest"):
        s, w = by[name]["summer"], by[name]["winter"]
        assert s and w, name
        assert np.mean(s) > np.mean(w) + 0.05, (name, np.mean(s), np.mean(w))
    water = by["water"]["summer"] + by["water"]["winter"]
    assert water and max(water) < 0.3  # water has a low NDVI whatever the season


def test_mountains_are_snowy_in_winter(sample):
    mountains = [loc for loc in sample if CLASSES[loc["label"]] == "mountain"]
    assert mountains
    for loc in mountains:
        vis = {}
        for x, m in zip(loc["images"], loc["dates_meta"], strict=True):
            if _season(m):
                vis.setdefault(_season(m), []).append(x[B["B03"]].mean())
        if "summer" in vis and "winter" in vis:
            assert np.mean(vis["winter"]) > 1.5 * np.mean(vis["summer"])


def test_clouds_are_bright_shadows_dark_and_reported():
    checked = 0
    for i in range(6):
        cloudy = simulate_location(4, i, 5, 64, cloud_prob=1.0, nodata_prob=0.0)
        clear = simulate_location(4, i, 5, 64, cloud_prob=0.0, nodata_prob=0.0)  # the same ground
        for x, y, m in zip(cloudy["images"], clear["images"], cloudy["dates_meta"], strict=True):
            if m is None:
                continue
            assert 0.0 < m["cloud_fraction"] < 1.0
            blue, ground = x[B["B02"]].astype(float), y[B["B02"]].astype(float)
            bright = (blue > np.maximum(4500, 1.5 * ground)).mean()
            changed = (np.abs(blue - ground) > 0.1 * ground).mean()
            assert (blue < 0.9 * ground).any()  # some shadow
            assert bright <= m["cloud_fraction"] + 0.02  # every bright cloud pixel is counted
            assert changed >= m["cloud_fraction"] - 0.02  # every counted pixel is cloud or shadow
            checked += 1
    assert checked >= 20


def test_nodata_edges_are_zero_in_every_band():
    seen = 0
    for i in range(20):
        loc = simulate_location(6, i, 5, 48, nodata_prob=0.5, cloud_prob=0.0)
        for x, m in zip(loc["images"], loc["dates_meta"], strict=True):
            if m is None:
                continue
            zero = (x == 0).all(axis=0)
            assert ((x == 0).any(axis=0) == zero).all()  # nodata in one band is nodata in all
            assert zero.mean() == pytest.approx(m["nodata_fraction"])
            seen += m["nodata_fraction"] > 0
    assert seen > 5


def test_20m_and_60m_bands_are_blocky():
    x = simulate_location(1, 0, 1, 48, cloud_prob=0.0, nodata_prob=0.0)["images"][0]
    b05, b01, b04 = x[B["B05"]], x[B["B01"]], x[B["B04"]]
    assert (b05[0::2, 0::2] == b05[1::2, 1::2]).all()
    assert (b01[0:6, 0:6] == b01[0, 0]).all()
    assert not (b04[0::2, 0::2] == b04[1::2, 1::2]).all()


@pytest.mark.skipif(not (DATA / "eurosat_ms").is_dir(), reason="../shared/data not present")
def test_spectra_table_is_what_the_calibration_derives():
    from seco.synth.calibrate import derive

    table = derive(DATA)
    assert table["CLASS_MEAN"] == {k: v for k, v in spectra.CLASS_MEAN.items() if k != "mountain"}
    assert table["CLASS_WITHIN"] == {k: v for k, v in spectra.CLASS_WITHIN.items() if k != "mountain"}
    assert table["CLASS_BETWEEN"] == {k: v for k, v in spectra.CLASS_BETWEEN.items() if k != "mountain"}
    assert table["GREENNESS_SLOPE"] == spectra.GREENNESS_SLOPE
    for k in ("forest", "cropland", "grassland", "urban"):
        assert table["NDVI_AMPLITUDE"][k] == spectra.NDVI_AMPLITUDE[k]


def test_calibrated_spectra_are_physically_sensible():
    m = {k: dict(zip(spectra.L1C, v, strict=True)) for k, v in spectra.CLASS_MEAN.items()}
    assert m["forest"]["B08"] > 4 * m["forest"]["B04"]  # vegetation: NIR >> red
    assert m["water"]["B08"] < m["water"]["B03"]  # water: dark in the NIR
    assert spectra.GREENNESS_SLOPE[spectra.L1C.index("B04")] < -2 < 0 < spectra.GREENNESS_SLOPE[spectra.L1C.index("B08")]
    assert spectra.SNOW[spectra.L1C.index("B11")] < 0.2 * spectra.SNOW[spectra.L1C.index("B03")]


@pytest.mark.parametrize("lat,lon", [(48.2082, 16.3738), (51.5, -0.12), (40.4, -3.7), (59.9, 10.75), (-33.9, 18.4)])
def test_utm_matches_proj(lat, lon):
    from rasterio.crs import CRS
    from rasterio.warp import transform

    epsg = utm_epsg(lat, lon)
    (e,), (n,) = transform(CRS.from_epsg(4326), CRS.from_epsg(epsg), [lon], [lat])
    ours = to_utm(lat, lon, epsg % 100)
    assert ours == pytest.approx((e, n), abs=1e-3)


def test_mgrs_tiles():
    assert mgrs_tile(48.2082, 16.3738) == "33UXP"  # Vienna
    assert mgrs_tile(48.8566, 2.3522) == "31UDQ"  # Paris
    assert utm_epsg(60.0, 5.3) == 32632  # the Norway exception (Bergen)
