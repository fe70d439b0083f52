"""The simulated OSCD: planted changes are exactly the change map, seasons differ elsewhere, the layout loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from seco.bands import L1C
from seco.data.oscd import IMAGES_DIR, OSCD, read_city_list
from seco.errors import ConfigError, DatasetError
from seco.synth.changes import (
    BARE,
    MANIFEST,
    TEST_LABELS_DIR,
    TRAIN_LABELS_DIR,
    make_change_dataset,
    native_shape,
    simulate_change_pair,
)
from seco.synth.scene import CROPLAND, FOREST, GRASSLAND, URBAN, WATER

#: (date-1 cover, date-2 cover) a planted change may make.
ALLOWED = {(CROPLAND, URBAN), (GRASSLAND, URBAN), (CROPLAND, WATER), (GRASSLAND, WATER), (FOREST, BARE)}


@pytest.fixture(scope="module")
def city() -> dict:
    return simulate_change_pair(seed=0, index=0, size=192)


def test_mask_is_exactly_the_planted_cover_change(city: dict) -> None:
    mask, c1, c2 = city["mask"], city["cover1"], city["cover2"]
    assert mask.dtype == bool and mask.shape == c1.shape == c2.shape
    assert np.array_equal(mask, c1 != c2)
    assert sum(ch["pixels"] for ch in city["changes"]) == int(mask.sum())  # plantings never overlap
    assert {ch["kind"] for ch in city["changes"]} == {"construction", "water", "clearing"}
    assert set(zip(c1[mask].tolist(), c2[mask].tolist(), strict=True)) <= ALLOWED
    assert 0.05 <= city["target_fraction"] <= 0.1
    assert abs(mask.mean() - city["target_fraction"]) < 0.03
    for b in L1C:  # every band at its native size
        assert city["planes1"][b].shape == city["planes2"][b].shape == native_shape(*mask.shape, b)
        assert city["planes1"][b].dtype == np.uint16 and city["planes1"][b].min() >= 1


def test_seasons_differ_outside_the_changes_and_planted_water_looks_like_water(city: dict) -> None:
    d1, d2 = city["dates"]
    gap = (d2 - d1).days
    assert 365 + 90 <= gap <= 365 + 275
    doy = abs(d1.timetuple().tm_yday - d2.timetuple().tm_yday)
    assert min(doy, 365 - doy) >= 80  # another season
    n1, n2, mask, c1 = city["ndvi1"], city["ndvi2"], city["mask"], city["cover1"]
    veg = ~mask & np.isin(c1, (FOREST, CROPLAND, GRASSLAND))
    assert np.abs(n2 - n1)[veg].mean() > 0.05  # unlabelled seasonal change
    stable = ~mask & (c1 == WATER)
    g1, g2 = city["surface_ndvi1"], city["surface_ndvi2"]
    assert np.abs(g2 - g1)[stable].mean() < 0.05  # water has no season on the ground ...
    assert np.abs(n2 - n1)[stable].mean() < 0.15  # ... only the haze of each date moves it from above
    assert np.abs(g2 - g1)[veg].mean() > 0.05
    pond = city["cover2"] == WATER
    pond &= mask
    assert pond.any() and n2[pond].mean() < 0 < n1[pond].mean()


def test_seeded() -> None:
    a, b = simulate_change_pair(3, 1, 64), simulate_change_pair(3, 1, 64)
    c = simulate_change_pair(4, 1, 64)
    assert np.array_equal(a["mask"], b["mask"]) and np.array_equal(a["planes2"]["B8A"], b["planes2"]["B8A"])
    assert a["dates"] == b["dates"] and a["dates"] != c["dates"]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_dataset_layout_loads_with_the_oscd_reader(tmp_path: Path) -> None:
    root = make_change_dataset(tmp_path / "oscd", num_cities=3, size=96, seed=1)
    images = root / IMAGES_DIR
    assert read_city_list(images / "train.txt") == ["synth00", "synth01"]
    assert read_city_list(images / "test.txt") == ["synth02"]
    assert (images / "train.txt").read_text() == "synth00,synth01"  # as the real file: commas, no newline
    man = json.loads((root / MANIFEST).read_text())
    ds = OSCD(root, split=None)
    assert ds.cities == ["synth00", "synth01", "synth02"] and ds.bands == L1C
    for i, name in enumerate(ds.cities):
        sim = simulate_change_pair(1, i, 96)
        s = ds[i]
        h, w = sim["mask"].shape
        assert s["image1"].shape == s["image2"].shape == (13, h, w)
        assert np.array_equal(s["mask"].numpy(), sim["mask"].astype(np.uint8))
        assert s["dates"] == tuple(f"{d:%Y%m%d}" for d in sim["dates"])
        b02 = L1C.index("B02")
        assert np.allclose(s["image2"][b02].numpy(), sim["planes2"]["B02"] / 10000.0)
        assert man["cities"][name]["changed_fraction"] == pytest.approx(float(sim["mask"].mean()))
        labels = root / (TEST_LABELS_DIR if name == "synth02" else TRAIN_LABELS_DIR) / name / "cm"
        with rasterio.open(labels / f"{name}-cm.tif") as src:
            cm = src.read(1)
        assert cm.dtype == np.uint8 and set(np.unique(cm).tolist()) == {1, 2}
        png = OSCD(root, split=None, cities=[name], mask_source="png")[0]["mask"]
        assert np.array_equal(png.numpy(), s["mask"].numpy())
        files = sorted(p.name for p in (images / name / "imgs_1").iterdir())
        assert len(files) == 13 and files[0].startswith("S2A_OPER_MSI_L1C_TL_EPA__") and files[0].endswith("_B01.tif")
        second = sorted(p.name for p in (images / name / "imgs_2").iterdir())
        assert second[-1].startswith("T") and second[-1].endswith("_B8A.tif")
        with rasterio.open(next((images / name / "imgs_1").glob("*_B01.tif"))) as src:
            assert (src.height, src.width) == native_shape(h, w, "B01") and src.crs.to_epsg() == 4326
        assert (images / name / "pair" / "img2.png").is_file()


def test_reuse_refusal_and_bad_arguments(tmp_path: Path) -> None:
    root = make_change_dataset(tmp_path / "o", num_cities=2, size=64, bands="B02,B03,B04,B08")
    stamp = (root / MANIFEST).stat().st_mtime_ns
    assert make_change_dataset(tmp_path / "o", num_cities=2, size=64, bands="B02,B03,B04,B08") == root
    assert (root / MANIFEST).stat().st_mtime_ns == stamp  # reused, not rewritten
    with pytest.raises(DatasetError, match="other settings"):
        make_change_dataset(tmp_path / "o", num_cities=2, size=64, seed=5, bands="B02,B03,B04,B08")
    make_change_dataset(tmp_path / "o", num_cities=2, size=64, seed=5, bands="B02,B03,B04,B08", overwrite=True)
    assert json.loads((root / MANIFEST).read_text())["config"]["seed"] == 5
    with pytest.raises(ConfigError, match="num_cities"):
        make_change_dataset(tmp_path / "x", num_cities=1)
    with pytest.raises(ConfigError, match="B08"):
        make_change_dataset(tmp_path / "x", bands="B02,B03,B04")
