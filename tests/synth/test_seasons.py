"""Per-date effects of the simulator (seco.synth.seasons) and their calibration against the real 5-date location."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seco.bands import L1C
from seco.synth import seasons, simulate_location
from seco.synth.scene import WATER

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
#: The simulator's date-to-date spread must stay within this factor of the real location's (docs/FIDELITY.md).
FACTOR = 3.0


@pytest.mark.parametrize("doy,elevation", [(172, 90 - 48 + 23.44), (355, 90 - 48 - 23.44), (80, 90 - 48)])
def test_noon_sun_elevation_and_morning_azimuth(doy: int, elevation: float) -> None:
    e, az = seasons.sun_position(48.0, doy, hour=12.0)
    assert e == pytest.approx(elevation, abs=1.0)
    assert az == pytest.approx(180.0, abs=1.0)
    e2, az2 = seasons.sun_position(48.0, doy)  # 10:30: lower, in the south-east
    assert e2 < e and 90 < az2 < 180


def _effects(elev: float, **kw: float) -> seasons.DateEffects:
    base = dict(sun_elevation=elev, sun_azimuth=180.0, gain=0.0, haze=0.0, angstrom=1.5, wetness=0.0)
    return seasons.DateEffects(**(base | kw))


def test_terrain_shading_flat_is_one_and_low_sun_deepens_it() -> None:
    zy = np.array([[0.0, 0.2, -0.2]], np.float32)  # flat, facing south (rises northwards), facing north
    zx = np.zeros_like(zy)
    high = seasons.shading(zx, zy, _effects(60.0))
    low = seasons.shading(zx, zy, _effects(15.0))
    assert high[0, 0] == pytest.approx(1.0) and low[0, 0] == pytest.approx(1.0)
    assert low[0, 1] > high[0, 1] > 1.0 > high[0, 2] > low[0, 2] >= seasons.DIFFUSE


def test_haze_is_strongest_in_the_blue_and_absent_in_the_cirrus_band() -> None:
    t = seasons.band_terms(L1C, _effects(45.0, haze=200.0, angstrom=2.0))
    path = dict(zip(L1C, t["path"].tolist(), strict=True))
    assert path["B02"] == pytest.approx(200.0 * (492.4 / 490.0) ** -2.0, rel=1e-4)
    assert path["B01"] > path["B02"] > path["B04"] > path["B08"] > path["B12"] > 0 == path["B10"]
    assert (np.delete(t["transmit"], L1C.index("B10")) < 1).all() and t["transmit"][L1C.index("B10")] == 1.0


def test_wet_soil_is_darker_most_in_the_swir_and_only_on_soil() -> None:
    eff = _effects(45.0, wetness=1.0)
    t = seasons.band_terms(L1C, eff)
    dev = np.array([[-0.3, 0.3, -0.3]], np.float32)
    soil = np.array([[1.0, 1.0, 0.0]], np.float32)
    bare = seasons.bareness(dev, soil)
    assert bare.tolist() == [[1.0, 0.0, 0.0]]  # bare field, green field, not soil
    img = np.full((len(L1C), 1, 3), 1000.0, np.float32)
    seasons.apply_moisture(img, eff, t, list(range(len(L1C))), bare)
    assert (img[:, 0, 1:] == 1000.0).all()
    assert img[L1C.index("B12"), 0, 0] < img[L1C.index("B04"), 0, 0] < 1000.0


def test_water_now_changes_between_dates_by_atmosphere_and_illumination_only() -> None:
    """Water has no phenology; its date-to-date change is the per-date effects, bluer than redder."""
    seen = 0
    for i in range(30):
        loc = simulate_location(5, i, 5, 48, L1C, cloud_prob=0.0, nodata_prob=0.0, missing_prob=0.0)
        if loc["class_fractions"][WATER] < 0.5:
            continue
        x = np.log(loc["images"].astype(np.float64))  # (T, C, H, W)
        med = np.median(x, axis=(2, 3))  # (T, C)
        spread = med.max(axis=0) - med.min(axis=0)  # (C,)
        assert spread[L1C.index("B02")] > 0.02  # water used to be identical at every date
        seen += 1
    assert seen >= 2


def test_effects_do_not_move_land_cover_or_clouds() -> None:
    """The per-date effects come from their own stream: clouds and metadata are those of the clear run."""
    a = simulate_location(8, 3, 5, 48, cloud_prob=1.0, nodata_prob=0.5)
    b = simulate_location(8, 3, 5, 48, cloud_prob=1.0, nodata_prob=0.5)
    assert np.array_equal(a["images"], b["images"])
    assert [m and m["cloud_fraction"] for m in a["dates_meta"]] == [m and m["cloud_fraction"] for m in b["dates_meta"]]
    c = simulate_location(8, 3, 5, 48, cloud_prob=0.0, nodata_prob=0.0)
    assert a["label"] == c["label"] and np.array_equal(a["class_fractions"], c["class_fractions"])
    assert [m and m["datetime"] for m in a["dates_meta"]] == [m and m["datetime"] for m in c["dates_meta"]]


@pytest.mark.skipif(not (DATA / "s2_multitemporal").is_dir(), reason="../shared/data/s2_multitemporal not present")
def test_date_to_date_spread_is_of_the_real_order() -> None:
    from seco.synth.calibrate import ATMOSPHERE_BANDS, real_date_spread, synth_date_spread

    real, sim = real_date_spread(DATA), synth_date_spread(24)
    for b in L1C:
        if b in ATMOSPHERE_BANDS:
            continue
        ratio = sim["median_abs_dlog"][b] / real["median_abs_dlog"][b]
        assert 1 / FACTOR <= ratio <= FACTOR, (b, sim["median_abs_dlog"][b], real["median_abs_dlog"][b])
    ratio = sim["blue_dark_range"] / real["blue_dark_range"]
    assert 1 / FACTOR <= ratio <= FACTOR, (sim["blue_dark_range"], real["blue_dark_range"])
