"""Location sampling: determinism, Gaussian spread, uniform land, overlap rejection, GeoParquet round trip."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely

from seco.collect.geo import haversine_km, load_land_mask, lonlat_to_offset, offset_to_lonlat
from seco.collect.sampling import (
    PATCH_KM,
    Cities,
    SampleConfig,
    load_cities,
    plot_locations,
    read_locations,
    run_sample,
    sample_cities,
    sample_uniform_land,
)
from seco.errors import CollectError, ConfigError


def one_city(lon: float, lat: float, name: str = "X") -> Cities:
    return Cities.from_records([{"name": name, "country_code": "ZZ", "lon": lon, "lat": lat, "population": 1}])


def min_pair_km(lon: np.ndarray, lat: np.ndarray) -> float:
    d = haversine_km(lon[:, None], lat[:, None], lon[None, :], lat[None, :])  # (N, N)
    np.fill_diagonal(d, np.inf)
    return float(d.min())


# ---------------------------------------------------------------------------------------------- bundled data


def test_bundled_cities_are_the_top_10000_by_population():
    c = load_cities()
    assert len(c) == 10000
    assert np.all(np.diff(c.population) <= 0)
    assert c.name[0] == "Shanghai" and c.country[0] == "CN"
    assert np.all(np.abs(c.lat) <= 90) and np.all(np.abs(c.lon) <= 180)
    assert len(set(c.geonameid.tolist())) == 10000


def test_land_mask_is_sane():
    m = load_land_mask()
    assert m.land.shape == (1800, 3600) and m.resolution_deg == pytest.approx(0.1)
    lon = np.array([2.35, -60.0, 25.0, 140.0, -100.0])  # Paris, Amazon, Sahara, Australia, USA
    lat = np.array([48.85, -3.0, 25.0, -25.0, 40.0])
    assert m.contains(lon, lat).all()
    lon = np.array([-30.0, -150.0, 80.0, 0.0, 170.0])  # Atlantic, Pacific, Indian Ocean, Gulf of Guinea, Tasman
    lat = np.array([30.0, 0.0, -20.0, 0.0, -40.0])
    assert not m.contains(lon, lat).any()
    assert 0.27 < m.land_area_fraction() < 0.31  # Earth: ~29 % land


# ---------------------------------------------------------------------------------------------- cities


def test_cities_sampling_is_seeded_and_prefix_stable():
    a = sample_cities(600, seed=7)
    b = sample_cities(600, seed=7)
    np.testing.assert_array_equal(a.lon, b.lon)
    np.testing.assert_array_equal(a.lat, b.lat)
    assert list(a.city) == list(b.city)
    c = sample_cities(50, seed=7)
    np.testing.assert_array_equal(c.lon, a.lon[:50])
    d = sample_cities(600, seed=8)
    assert not np.allclose(d.lon, a.lon)
    assert set(a.city) <= set(load_cities().name)


@pytest.mark.parametrize("lat0", [0.0, 60.0, -70.0])
def test_gaussian_spread_is_isotropic_in_km(lat0):
    sigma, n = 50.0, 4000
    loc = sample_cities(n, seed=1, sigma_km=sigma, top_cities=1, cities=one_city(10.0, lat0), min_separation_km=0)
    east, north = lonlat_to_offset(10.0, lat0, loc.lon, loc.lat)
    # std error of a std estimate ~ sigma / sqrt(2n) ~ 1.1 %; 5 % leaves > 4 standard errors
    assert np.std(east) == pytest.approx(sigma, rel=0.05)
    assert np.std(north) == pytest.approx(sigma, rel=0.05)
    assert abs(np.mean(east)) < 4 * sigma / np.sqrt(n) and abs(np.mean(north)) < 4 * sigma / np.sqrt(n)
    r = haversine_km(10.0, lat0, loc.lon, loc.lat)
    assert np.sqrt(np.mean(r**2) / 2) == pytest.approx(sigma, rel=0.05)  # Rayleigh: E[r^2] = 2 sigma^2


def test_tangent_plane_mapping_round_trips():
    rng = np.random.default_rng(0)
    lon0, lat0 = rng.uniform(-180, 180, 500), rng.uniform(-85, 85, 500)
    e, n = rng.normal(0, 80, 500), rng.normal(0, 80, 500)
    lon, lat = offset_to_lonlat(lon0, lat0, e, n)
    e2, n2 = lonlat_to_offset(lon0, lat0, lon, lat)
    np.testing.assert_allclose(e2, e, atol=1e-6)
    np.testing.assert_allclose(n2, n, atol=1e-6)
    np.testing.assert_allclose(haversine_km(lon0, lat0, lon, lat), np.hypot(e, n), rtol=1e-9)


def test_land_only_cities_sampling_stays_on_land():
    loc = sample_cities(300, seed=2, land_only=True)
    assert load_land_mask().contains(loc.lon, loc.lat).all()


# ---------------------------------------------------------------------------------------------- uniform


def test_uniform_land_points_are_on_land_and_area_uniform():
    mask = load_land_mask()
    n = 4000
    loc = sample_uniform_land(n, seed=3)
    assert mask.contains(loc.lon, loc.lat).all()
    assert loc.lat.min() >= -56 and loc.lat.max() <= 84
    assert all(c is None for c in loc.city)
    # share of points per latitude band == share of land area per band (area weights, not degrees)
    lat_c = mask.cell_lat_centres()
    w = np.cos(np.deg2rad(lat_c)) * mask.land.mean(axis=1)
    inside = (lat_c >= -56) & (lat_c <= 84)
    for lo, hi in [(-56, 0), (0, 30), (30, 60), (60, 84)]:
        sel = inside & (lat_c >= lo) & (lat_c < hi)
        expected = w[sel].sum() / w[inside].sum()
        observed = np.mean((loc.lat >= lo) & (loc.lat < hi))
        assert observed == pytest.approx(expected, abs=0.03), (lo, hi)
    assert np.array_equal(sample_uniform_land(n, seed=3).lon, loc.lon)


def test_uniform_latitude_limits_are_validated():
    with pytest.raises(ConfigError, match="lat_min"):
        sample_uniform_land(10, seed=0, lat_min=10, lat_max=-10)


# ---------------------------------------------------------------------------------------------- overlap


def test_overlap_rejection_keeps_patches_apart():
    kw = dict(seed=4, sigma_km=15.0, top_cities=5)
    loose = sample_cities(800, min_separation_km=0, **kw)
    assert min_pair_km(loose.lon, loose.lat) < PATCH_KM  # without the check, patches do collide here
    loc = sample_cities(800, **kw)
    assert min_pair_km(loc.lon, loc.lat) >= PATCH_KM * np.sqrt(2) - 1e-6
    loc = sample_cities(800, min_separation_km=PATCH_KM, **kw)
    assert min_pair_km(loc.lon, loc.lat) >= PATCH_KM - 1e-6


@pytest.mark.parametrize("lon0,lat0", [(179.999, 0.0), (-180.0, 30.0), (0.0, 89.99)])
def test_overlap_rejection_across_antimeridian_and_pole(lon0, lat0):
    loc = sample_cities(300, seed=5, sigma_km=30.0, top_cities=1, cities=one_city(lon0, lat0))
    assert np.all((loc.lon >= -180) & (loc.lon < 180))
    assert min_pair_km(loc.lon, loc.lat) >= PATCH_KM * np.sqrt(2) - 1e-6


def test_impossible_density_raises_collect_error():
    with pytest.raises(CollectError, match="non-overlapping"):
        sample_cities(300, seed=0, sigma_km=1.0, top_cities=1, cities=one_city(0.0, 0.0))


def test_100k_locations_scale():
    # speed is measured in bench/, not here: this checks the large run completes with distinct locations
    loc = sample_cities(100_000, seed=0)
    assert len(loc) == 100_000
    assert len(set(zip(loc.lon.round(6).tolist(), loc.lat.round(6).tolist(), strict=True))) == 100_000


# ---------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize("kw,match", [
    (dict(n=0), "n=0"), (dict(n=5, mode="grid"), "mode"), (dict(n=5, sigma_km=-1), "sigma_km"),
    (dict(n=5, seed=-1), "seed"), (dict(n=5, patch_km=0), "patch_km"),
])
def test_config_validation(kw, match):
    with pytest.raises(ConfigError, match=match):
        SampleConfig(**kw)


def test_top_cities_beyond_the_list_is_rejected():
    with pytest.raises(ConfigError, match="top_cities"):
        sample_cities(5, top_cities=20000)


def test_run_sample_validates_paths_and_dates(tmp_path):
    with pytest.raises(ConfigError, match=r"\.parquet"):
        run_sample(tmp_path / "x.csv", 5)
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        run_sample(tmp_path / "x.parquet", 5, end="2024-13-01")
    with pytest.raises(ConfigError, match="png"):
        run_sample(tmp_path / "x.parquet", 5, plot=tmp_path / "x.jpg")
    with pytest.raises(ConfigError, match="window_days"):
        run_sample(tmp_path / "x.parquet", 5, window_days=0)


# ---------------------------------------------------------------------------------------------- files


def test_geoparquet_round_trip(tmp_path):
    out = run_sample(tmp_path / "loc.parquet", 300, mode="cities", seed=11, window_days=15,
                     end=dt.date(2024, 6, 1), plot=tmp_path / "loc.png")
    meta = pq.read_schema(out).metadata
    geo = json.loads(meta[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    col = geo["columns"]["geometry"]
    assert col["encoding"] == "WKB" and col["geometry_types"] == ["Point"]
    assert col["crs"]["id"] == {"authority": "OGC", "code": "CRS84"}
    table = pq.read_table(out)
    pts = shapely.from_wkb(table["geometry"].to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(shapely.get_x(pts), table["lon"].to_numpy())
    np.testing.assert_array_equal(shapely.get_y(pts), table["lat"].to_numpy())
    assert str(table.schema.field("window_start").type) == "list<element: timestamp[ms, tz=UTC]>"

    loc = read_locations(out)
    again = sample_cities(300, seed=11)
    np.testing.assert_array_equal(loc.lon, again.lon)
    assert list(loc.city) == list(again.city)
    assert loc.windows is not None and loc.windows.start.shape == (300, 5)
    half = (loc.windows.end - loc.windows.start) / 2
    assert np.all(half == np.timedelta64(15, "D"))
    assert loc.config is not None and loc.config.dates.end == dt.date(2024, 6, 1) and loc.config.seed == 11
    w = loc.windows.for_location(0)
    assert w[0][0].tzinfo is not None and w[0][0] < w[-1][0]

    png = (tmp_path / "loc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_uniform_file_has_null_cities(tmp_path):
    out = run_sample(tmp_path / "u.parquet", 50, mode="uniform", seed=1, end="2023-01-01")
    table = pq.read_table(out)
    assert table["city"].null_count == 50
    loc = read_locations(out)
    assert loc.config is not None and loc.config.mode == "uniform"
    p = plot_locations(out, tmp_path / "u.png")
    assert p.stat().st_size > 0


def test_read_locations_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_locations(tmp_path / "missing.parquet")
    import pyarrow as pa

    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "other.parquet")
    with pytest.raises(CollectError, match="not a seco locations"):
        read_locations(tmp_path / "other.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(CollectError, match="not a readable"):
        read_locations(tmp_path / "junk.parquet")
