"""seco synth: a seeded simulated archive written through the store writer."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from seco.bands import L2A
from seco.errors import BandError, ConfigError, StoreError
from seco.store import create_store, open_store
from seco.synth import CLASSES, STEP_DAYS, make_store, nodata_on_band_grids, simulate_location


def test_make_store_small(tmp_path):
    out = make_store(tmp_path / "s.zarr", num_locations=6, num_dates=4, patch_size=48, seed=3, progress=False)
    s = open_store(out)
    assert len(s) == 6 and s.bands == L2A and s.num_dates == 4 and s.patch_size == 48
    assert s.label_names == list(CLASSES)
    assert s.attrs["synth"]["seed"] == 3 and s.attrs["synth"]["num_locations"] == 6
    labels = s.labels()
    assert labels is not None and ((labels >= 0) & (labels < len(CLASSES))).all()
    assert s.keys() == [f"synth-3-{i:06d}" for i in range(6)]
    assert (s.valid_mask().sum(axis=1) >= 3).all()
    for i in range(6):
        loc = simulate_location(3, i, 4, 48)
        nodata_on_band_grids(loc["images"], loc["valid"], loc["dates_meta"], L2A)  # each band nodata on its grid
        np.testing.assert_array_equal(s.read(i), loc["images"])  # the store holds exactly the simulation
        assert labels[i] == loc["label"]
    stats = s.stats()
    assert (stats["p2"] < stats["mean"]).all() and (stats["mean"] < stats["p98"]).all()
    # clear-sky statistics from the simulator's own cloud / shadow / snow truth
    v = s.valid_mask()
    assert (s.meta_array("clear_rule")[v] == "truth:synth").all() and "truth:synth on 100.0 %" in s.stats_method()
    for i in range(6):
        loc = simulate_location(3, i, 4, 48)
        want = loc["clear"] & ~(s.read(i) == 0).any(axis=1)
        np.testing.assert_array_equal(s.clear_mask(i), want)
    valid = s.stats(pixels="valid")
    assert stats["std"][L2A.index("B02")] < valid["std"][L2A.index("B02")]  # bright clouds and snow left out


def test_metadata_is_what_a_collection_records(tmp_path):
    loc = simulate_location(0, 5, num_dates=5, patch_size=32)
    metas = [m for m in loc["dates_meta"] if m is not None]
    assert len(metas) >= 3
    for m in metas:
        assert m["item_id"].startswith(("S2A_", "S2B_")) and m["item_id"].endswith("_0_L2A")
        assert m["item_id"].split("_")[2] == f"{m['datetime']:%Y%m%d}"
        assert m["crs"].startswith("EPSG:326")
        a, b, c, d, e, f = m["transform"]
        assert (a, b, d, e) == (10.0, 0.0, 0.0, -10.0) and c % 10 == 0 and f % 10 == 0
        assert 0 <= m["cloud_fraction"] <= 1 and 0 <= m["nodata_fraction"] <= 1
        assert 36 <= m["lat"] <= 60 and -9 <= m["lon"] <= 28
        assert 8 <= m["datetime"].hour <= 12  # a morning overpass in UTC over Europe
    days = np.diff([m["datetime"] for m in loc["dates_meta"] if m is not None])
    assert all(abs(d.days % STEP_DAYS) <= 10 or abs(d.days % STEP_DAYS - STEP_DAYS) <= 10 for d in days)
    assert all(isinstance(m["datetime"], datetime) for m in metas)


def test_deterministic_and_independent_of_order():
    a = simulate_location(11, 4, 3, 40)
    b = simulate_location(11, 4, 3, 40)
    c = simulate_location(12, 4, 3, 40)
    np.testing.assert_array_equal(a["images"], b["images"])
    assert a["dates_meta"] == b["dates_meta"]
    assert not np.array_equal(a["images"], c["images"])


def test_rerun_is_a_no_op_and_other_settings_are_refused(tmp_path):
    path = tmp_path / "s.zarr"
    make_store(path, num_locations=3, patch_size=32, seed=1, progress=False)
    before = open_store(path).read(2)
    make_store(path, num_locations=3, patch_size=32, seed=1, progress=False)  # nothing left to do
    s = open_store(path)
    assert len(s) == 3
    np.testing.assert_array_equal(s.read(2), before)
    with pytest.raises(StoreError, match="other settings"):
        make_store(path, num_locations=3, patch_size=32, seed=2, progress=False)
    make_store(path, num_locations=2, patch_size=32, seed=2, progress=False, overwrite=True)
    assert open_store(path).keys() == ["synth-2-000000", "synth-2-000001"]


def test_resume_after_partial_write(tmp_path):
    path = tmp_path / "s.zarr"
    from dataclasses import asdict

    from seco.synth import SynthConfig

    cfg = SynthConfig(num_locations=4, patch_size=32, seed=5)
    attrs = {"synth": {**asdict(cfg), "bands": list(cfg.bands)}, "source": "seco.synth"}
    with create_store(path, cfg.bands, cfg.num_dates, cfg.patch_size, attrs=attrs, label_names=CLASSES) as w:
        loc = simulate_location(5, 0, 5, 32)
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], label=loc["label"])
    make_store(path, num_locations=4, patch_size=32, seed=5, progress=False)
    s = open_store(path)
    assert s.keys() == [f"synth-5-{i:06d}" for i in range(4)]


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="num_locations"):
        make_store(tmp_path / "a", num_locations=0, progress=False)
    with pytest.raises(ConfigError, match="patch_size"):
        make_store(tmp_path / "b", patch_size=8, progress=False)
    with pytest.raises(BandError, match="B99"):
        make_store(tmp_path / "c", bands="B02,B99", progress=False)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    with pytest.raises(StoreError, match="not a seco store"):
        make_store(tmp_path / "d", num_locations=1, patch_size=32, progress=False)


def test_any_band_subset(tmp_path):
    s = open_store(make_store(tmp_path / "s.zarr", num_locations=2, patch_size=36, bands="RGB", progress=False))
    assert s.bands == ("B04", "B03", "B02") and s.read(0).shape == (5, 3, 36, 36)


@pytest.mark.slow
def test_full_size_store(tmp_path):
    """64 locations x 5 dates x 12 bands x 264 px (its speed is in bench/bench_store.py, not here)."""
    make_store(tmp_path / "s.zarr", progress=False)
    s = open_store(tmp_path / "s.zarr")
    assert len(s) == 64 and s.read(63).shape == (5, 12, 264, 264)
