"""Normalization.from_store on a real store: clear-pixel statistics, how they were computed, and the S1 half."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from seco.data.normalize import Normalization
from seco.store import create_store, open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from store_helpers import BANDS, P, T, location, s1_location  # noqa: E402


def _store(path: Path, s1: bool) -> Path:
    w = create_store(path, BANDS, T, P, sensors=("s2", "s1") if s1 else ("s2",))
    for i in range(4):
        loc = location(i)
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], s1=s1_location(i) if s1 else None)
    w.close()
    return path


def test_from_store_uses_clear_statistics_records_how_and_the_s1_half(tmp_path: Path) -> None:
    s = open_store(_store(tmp_path / "s.zarr", s1=True))
    n = Normalization.from_store(s, "all")
    clear, valid = s.stats(pixels="clear"), s.stats(pixels="valid")
    np.testing.assert_allclose(n.mean, clear["mean"] / 1e4, rtol=1e-12)
    assert not np.allclose(n.mean, valid["mean"] / 1e4)
    assert n.pixels == s.stats_method() and n.pixels.startswith("clear pixels")
    st1 = s.s1.stats()
    assert n.s1 is not None and n.s1["bands"] == ["VV", "VH"] and n.s1["units"] == "dB"
    np.testing.assert_allclose(n.s1["mean"], st1["mean"], rtol=1e-12)
    np.testing.assert_allclose(n.s1["std"], st1["std"], rtol=1e-12)
    assert sum(n.s1["products"].values()) == int(s.s1.valid_mask().sum())
    back = Normalization.from_dict(n.to_dict())
    assert back == n and back.pixels == n.pixels and back.s1 == n.s1
    assert n.select("B04,B02").pixels == n.pixels  # a subset keeps the record


def test_store_without_s1_records_no_s1_and_plain_dicts_still_load(tmp_path: Path) -> None:
    n = Normalization.from_store(open_store(_store(tmp_path / "s.zarr", s1=False)), "all")
    assert n.s1 is None and "s1" not in n.to_dict()
    old = {"bands": list(BANDS), "mean": [0.1] * 4, "std": [0.2] * 4, "method": "meanstd"}  # an older run's
    o = Normalization.from_dict(old)
    assert o.pixels is None and o.s1 is None and o.to_dict() == old


def test_radar_bands_get_their_db_statistics_and_the_export_splits_them_per_sensor(tmp_path: Path) -> None:
    from seco.bands import parse_bands
    from seco.models.export import sensor_statistics

    s = open_store(_store(tmp_path / "s.zarr", s1=True))
    n = Normalization.from_store(s, parse_bands("s1+s2", s.readable_bands))
    assert n.bands == (*BANDS, "VV", "VH")
    st1, st2 = s.s1.stats(), s.stats()
    np.testing.assert_allclose(n.mean[-2:], st1["mean"], rtol=1e-12)  # dB, as to_units feeds the radar channels
    np.testing.assert_allclose(n.std[-2:], st1["std"], rtol=1e-12)
    np.testing.assert_allclose(n.mean[:4], st2["mean"] / 1e4, rtol=1e-12)
    stats = sensor_statistics({"bands": list(n.bands), "normalization": n.to_dict()})
    assert stats["s2"]["bands"] == list(BANDS) and stats["s2"]["units"] == "reflectance"
    assert stats["s1"]["bands"] == ["VV", "VH"] and stats["s1"]["units"] == "dB"
    assert stats["s1"]["mean"] == list(n.mean[-2:])
    p = Normalization.from_store(s, parse_bands("s1", s.readable_bands), method="percentile")
    np.testing.assert_allclose(p.std, st1["p98"] - st1["p2"], rtol=1e-12)
