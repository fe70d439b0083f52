"""Radar, floods and overcast dates of the simulated OSCD: planted floods and clearings are where the label says
and change the backscatter as documented; an overcast S2 date is under cloud while its S1 is not; the OSCD
reader reads the S1 pairs; without the new settings nothing changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seco.data.oscd import OSCD, S1_DIR, find_s1_pair, read_s1
from seco.errors import ConfigError, DatasetError
from seco.synth.changes import BARE, IMAGES_DIR, MANIFEST, make_change_dataset, simulate_change_pair
from seco.synth.changes_io import write_s1
from seco.synth.changes_s1 import overcast_cities
from seco.synth.scene import CROPLAND, FOREST, GRASSLAND, WATER

#: Cities of seed 0 at 96 px with clearings (and, with floods, floods).
CITIES = (3, 5, 7)


@pytest.fixture(scope="module")
def pairs() -> list[dict]:
    return [simulate_change_pair(0, i, 96, s1=True, flood_fraction=0.05) for i in CITIES]


def _median_change(city: dict, where: np.ndarray) -> np.ndarray:
    d = city["s1"]["db"][1] - city["s1"]["db"][0]  # (2, H, W) dB, VV / VH
    return np.median(d[:, where], axis=1)


def test_floods_and_clearings_are_the_label_and_change_db_as_documented(pairs: list[dict]) -> None:
    for city in pairs:
        c1, c2, mask = city["cover1"], city["cover2"], city["mask"]
        assert np.array_equal(mask, c1 != c2)
        kinds = {ch["kind"] for ch in city["changes"]}
        assert {"flood", "clearing"} <= kinds
        fields = np.isin(c1, (CROPLAND, GRASSLAND))
        flood = city["flooded"]
        assert np.all(fields[flood] & (c2[flood] == WATER))
        assert sum(ch["pixels"] for ch in city["changes"] if ch["kind"] == "flood") == int(flood.sum()) > 0
        assert abs(flood.mean() - city["flood_target"]) < 0.02
        # the flood starts at the river: flooded fields lie nearer the date-1 water than the other fields
        from scipy.ndimage import distance_transform_edt

        dist = distance_transform_edt(c1 != WATER)
        assert dist[flood].mean() < 0.5 * dist[fields & ~mask].mean()
        assert city["surface_ndvi2"][flood].mean() < 0 < city["surface_ndvi1"][flood].mean()  # S2 sees the water
        dry = _median_change(city, fields & ~mask)  # the season's change of the unflooded fields
        vv, vh = _median_change(city, flood) - dry
        assert -16 < vv < -6 and -16 < vh < -6, (vv, vh)
        clearing = (c1 == FOREST) & (c2 == BARE)
        standing = _median_change(city, (c1 == FOREST) & ~mask)
        vv, vh = _median_change(city, clearing) - standing
        assert -12 < vh < -4 and -7 < vv < -1 and vh < vv - 2, (vv, vh)  # VH drops most
        assert city["s1"]["meta"][0]["relative_orbit"] == city["s1"]["meta"][1]["relative_orbit"] == city["s1"]["orbit"]


def test_overcast_second_date_is_cloud_while_s1_and_date_one_are_not(pairs: list[dict]) -> None:
    clear = pairs[0]
    cloudy = simulate_change_pair(0, CITIES[0], 96, s1=True, flood_fraction=0.05, overcast="second")
    assert cloudy["cloud_cover"][0] == 0.0 and cloudy["cloud_alpha"][0] is None
    assert cloudy["cloud_cover"][1] >= 0.9 and float(cloudy["cloud_alpha"][1].mean()) > 0.85
    for b in cloudy["planes1"]:  # date 1 and every label untouched
        assert np.array_equal(cloudy["planes1"][b], clear["planes1"][b])
    assert np.array_equal(cloudy["mask"], clear["mask"])
    blue = cloudy["planes2"]["B02"].astype(np.float32) / 10000
    assert np.median(blue) > 0.45 > np.median(clear["planes2"]["B02"].astype(np.float32) / 10000)
    assert np.abs(cloudy["ndvi2"]).mean() < 0.1  # the cloud hides the land's NDVI
    assert np.array_equal(cloudy["s1"]["db"], clear["s1"]["db"])  # radar sees through
    both = simulate_change_pair(0, CITIES[0], 96, overcast="both")
    assert min(both["cloud_cover"]) >= 0.9


def test_radar_does_not_change_the_optical_pair() -> None:
    plain = simulate_change_pair(2, 1, 64)
    radar = simulate_change_pair(2, 1, 64, s1=True)
    for b in plain["planes2"]:
        assert np.array_equal(plain["planes1"][b], radar["planes1"][b])
        assert np.array_equal(plain["planes2"][b], radar["planes2"][b])
    assert radar["s1"]["db"].shape == (2, 2, *plain["mask"].shape) and np.isfinite(radar["s1"]["db"]).all()
    with pytest.raises(ConfigError, match="overcast"):
        simulate_change_pair(2, 1, 64, overcast="third")


def test_overcast_cities_per_split_and_nested() -> None:
    names = [f"c{i}" for i in range(8)]
    test = names[-2:]
    half = overcast_cities(names, test, 0, 0.5, "all")
    assert len(half & set(test)) == 1 and len(half - set(test)) == 3
    assert half <= overcast_cities(names, test, 0, 1.0, "all") == set(names)
    assert overcast_cities(names, test, 0, 1.0, "test") == set(test)
    assert overcast_cities(names, test, 0, 0.0, "all") == set()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_dataset_with_s1_floods_and_clouds_loads_with_the_reader(tmp_path: Path) -> None:
    root = make_change_dataset(tmp_path / "cd", num_cities=4, size=64, seed=1, bands="10m", s1=True,
                               flood_fraction=0.04, cloud_fraction=1.0, cloud_splits="test")
    man = json.loads((root / MANIFEST).read_text())
    assert man["config"]["s1"] is True and man["config"]["cloud_splits"] == "test"
    assert man["cities"]["synth03"]["cloud_cover"][1] >= 0.9 and man["cities"]["synth00"]["cloud_cover"] == [0.0, 0.0]
    city_dir = root / IMAGES_DIR / "synth03"
    pair = find_s1_pair("synth03", city_dir / S1_DIR)
    assert pair is not None and pair[0].name == f"sentinel1_synth03_{man['cities']['synth03']['s1']['orbit']}_t1.tif"
    ds = OSCD(root, bands="10m+s1", split="test")
    s = ds[0]
    assert ds.bands == ("B02", "B03", "B04", "B08", "VV", "VH") and s["image1"].shape[0] == 6
    sim = simulate_change_pair(1, 3, 64, ("B02", "B03", "B04", "B08"), s1=True, flood_fraction=0.04, overcast="second")
    assert np.allclose(s["image2"][4:].numpy(), sim["s1"]["db"][1], atol=1e-4)  # dB as written, on the grid
    assert np.allclose(s["image2"][:4].numpy(), OSCD(root, bands="10m", split="test")[0]["image2"].numpy())
    assert OSCD(root, bands="VH", split="test")[0]["image1"].shape[0] == 1
    plain = make_change_dataset(tmp_path / "plain", num_cities=2, size=64, seed=1, bands="10m")
    assert set(json.loads((plain / MANIFEST).read_text())["config"]) == {
        "num_cities", "size", "seed", "bands", "change_fraction"}
    with pytest.raises(DatasetError, match="no Sentinel-1 pair"):
        OSCD(plain, bands="s1", split="train")


def test_s1_files_in_linear_power_are_refused(tmp_path: Path) -> None:
    db = np.full((2, 8, 8), -12.0, np.float32)
    db[1] = -19.0
    path = tmp_path / "sentinel1_x_1_t1.tif"
    write_s1(path, db, 45.0, 5.0)
    assert np.allclose(read_s1(path, ("VH", "VV"), (16, 16)).numpy()[:, 4, 4], [-19.0, -12.0])
    write_s1(path, 10 ** (db / 10), 45.0, 5.0)
    with pytest.raises(DatasetError, match="linear power"):
        read_s1(path, ("VV",), (8, 8))
