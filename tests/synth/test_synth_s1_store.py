"""`seco synth --s1`: simulated Sentinel-1 written through the store's S1 group."""

from __future__ import annotations

import numpy as np
import pytest

from seco.bands import L2A, S1_BANDS
from seco.cli import main
from seco.errors import ConfigError, StoreError
from seco.store import open_store
from seco.synth import make_store, nodata_on_band_grids, simulate_location


def test_store_with_s1_holds_the_simulation(tmp_path) -> None:
    out = make_store(tmp_path / "s.zarr", num_locations=5, num_dates=4, patch_size=40, seed=2, progress=False,
                     s1=True, s1_missing_prob=0.3)
    s = open_store(out)
    assert s.sensors == ("s2", "s1") and s.s1 is not None and s.s1.bands == S1_BANDS
    assert s.attrs["synth"]["s1"] == {"product": "RTC", "missing_prob": 0.3}
    valid = s.s1.valid_mask()
    assert valid.shape == (5, 4) and valid.any() and not valid.all()  # some dates without S1
    for i in range(5):
        loc = simulate_location(2, i, 4, 40, L2A, s1="RTC", s1_missing_prob=0.3)
        nodata_on_band_grids(loc["images"], loc["valid"], loc["dates_meta"], L2A)
        np.testing.assert_array_equal(s.read(i), loc["images"])  # S2 unchanged by S1
        db = s.s1.read(i)
        np.testing.assert_array_equal(np.isnan(db), np.isnan(loc["s1"]["db"]))
        np.testing.assert_allclose(db, loc["s1"]["db"], atol=0.0051)  # 0.01 dB codes
        np.testing.assert_array_equal(s.s1.valid(i), loc["s1"]["valid"])
        for t, m in enumerate(s.s1.meta(i)):
            want = loc["s1"]["meta"][t]
            assert m["valid"] == (want is not None)
            if want is not None:
                assert m["item_id"] == want["item_id"] and m["relative_orbit"] == want["relative_orbit"]
                assert m["product"] == "RTC" and m["quantity"] == "gamma0" and m["rule"] == "synth"
                assert m["time_offset_days"] == pytest.approx(want["time_offset_days"])
    states = s.s1.meta_array("orbit_state")
    assert all(len({v for v, ok in zip(row, vrow, strict=True) if ok}) <= 1 for row, vrow in zip(states, valid,
                                                                                                   strict=True))
    st = s.s1.stats()
    assert (np.asarray(st["mean"]) > -25).all() and (np.asarray(st["mean"]) < -5).all()
    assert np.asarray(st["mean"])[0] > np.asarray(st["mean"])[1]  # VV above VH


def test_default_store_has_no_s1_and_the_same_attrs(tmp_path) -> None:
    out = make_store(tmp_path / "a.zarr", num_locations=2, num_dates=3, patch_size=32, seed=1, progress=False)
    s = open_store(out)
    assert s.sensors == ("s2",) and s.s1 is None and "s1" not in s.attrs["synth"]


def test_continuing_with_or_without_s1_is_refused(tmp_path) -> None:
    path = tmp_path / "b.zarr"
    make_store(path, num_locations=2, num_dates=3, patch_size=32, seed=1, progress=False)
    with pytest.raises(StoreError, match="other settings"):
        make_store(path, num_locations=2, num_dates=3, patch_size=32, seed=1, progress=False, s1=True)
    with pytest.raises(ConfigError, match="s1_missing_prob"):
        make_store(tmp_path / "c.zarr", num_locations=2, progress=False, s1=True, s1_missing_prob=1.5)


def test_cli_flag(tmp_path, capsys) -> None:
    out = tmp_path / "cli.zarr"
    rc = main(["synth", "--out", str(out), "--locations", "2", "--dates", "2", "--patch-size", "32", "--s1",
               "--no-progress"])
    assert rc == 0 and "with Sentinel-1" in capsys.readouterr().out
    s = open_store(out)
    assert s.s1 is not None and s.s1.read(0).shape == (2, 2, 32, 32)
