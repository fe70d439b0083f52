"""The Sentinel-1 group of a store: dB round trip, records, statistics, resume, check, migrate, plain zarr."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import zarr
from store_helpers import BANDS, P, T, location, s1_location

from seco.cli import main
from seco.errors import StoreCorruptError, StoreError
from seco.store import S1Patch, StoreLayout, create_store, open_store, open_writer
from seco.store.check import check_store
from seco.store.migrate import migrate_store
from seco.store.s1 import decode_db, encode_db


def _write(path, n=5, *, close=True, **kw):
    w = create_store(path, BANDS, T, P, sensors=("s2", "s1"), **kw)
    for i in range(n):
        loc = location(i)
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], loc["label"], s1=s1_location(i))
    if close:
        w.close()
    return w


def test_db_round_trips_within_half_a_step_and_nodata_stays_nan(tmp_path):
    _write(tmp_path / "s.zarr")
    s = open_store(tmp_path / "s.zarr")
    assert s.sensors == ("s2", "s1") and s.config.schema_version == 3
    for i in range(len(s)):
        want = s1_location(i)
        got = s.s1.read(i)
        assert got.dtype == np.float32 and got.shape == (T, 2, P, P)
        for t in range(T):
            if not want.valid[t]:
                assert np.isnan(got[t]).all()
                continue
            w = want.db[t]
            assert np.array_equal(np.isnan(got[t]), np.isnan(w))
            assert np.nanmax(np.abs(got[t] - w)) <= 0.005 + 1e-5
    vh_first = s.s1.read(1, dates=[2, 0], bands="VH")
    assert np.array_equal(vh_first, s.s1.read(1)[[2, 0]][:, 1:], equal_nan=True)
    assert s.s1.valid_mask().shape == (5, T) and s.s1.valid(0).tolist() == s1_location(0).valid.tolist()


def test_records_round_trip_and_missing_dates_read_as_none(tmp_path):
    _write(tmp_path / "s.zarr")
    s = open_store(tmp_path / "s.zarr")
    m = s.s1.meta(3)
    want = s1_location(3).meta
    assert m[0]["product"] == "RTC" and m[0]["relative_orbit"] == want[0]["relative_orbit"]
    assert m[0]["datetime"].startswith(want[0]["datetime"][:19]) and m[0]["looks"] == 4.4
    gap = s.s1.meta(0)[0]  # location 0 has no S1 on date 0
    assert gap["valid"] is False and gap["product"] is None and gap["relative_orbit"] is None
    assert s.s1.meta_array("orbit_state").shape == (5, T)
    assert s.s1.meta_array("datetime").dtype == np.dtype("datetime64[us]")
    # what meta() hands out appends again (a store copied location by location)
    with create_store(tmp_path / "copy.zarr", BANDS, T, P, sensors=("s2", "s1")) as w:
        loc = location(3)
        w.append("x", loc["images"], loc["valid"], loc["dates_meta"], s1=S1Patch(s.s1.read(3), s.s1.valid(3), m))
    assert open_store(tmp_path / "copy.zarr").s1.meta(0) == m


def test_statistics_are_exact_over_valid_pixels_of_valid_dates(tmp_path):
    _write(tmp_path / "s.zarr", n=6)
    s = open_store(tmp_path / "s.zarr")
    vals = [[], []]
    for i in range(len(s)):
        x = s.s1.read(i)
        for c in range(2):
            v = x[s.s1.valid(i), c]
            vals[c].append(v[np.isfinite(v)].astype(np.float64))
    st = s.s1.stats()
    for c in range(2):
        v = np.concatenate(vals[c])
        assert st["mean"][c] == pytest.approx(v.mean(), abs=1e-4)
        assert st["std"][c] == pytest.approx(v.std(), abs=1e-4)
        assert st["p98"][c] == pytest.approx(np.percentile(v, 98), abs=1e-3)
    assert st["mean"][0] > st["mean"][1]  # VV brighter than VH, as generated
    cov = s.s1.coverage()
    assert cov["s2_dates"] == int(s.valid_mask().sum()) and 0 < cov["with_s1"] < cov["s2_dates"]


def test_a_killed_writer_resumes_with_exact_s1_statistics(tmp_path):
    path = tmp_path / "s.zarr"
    w = _write(path, n=3, close=False, hist_every=100)  # committed, histogram never saved: as after a kill
    del w
    w = open_writer(path)
    for i in range(3, 5):
        loc = location(i)
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], s1=s1_location(i))
    w.close()
    _write(tmp_path / "ref.zarr", n=5)
    a, b = open_store(path).s1, open_store(tmp_path / "ref.zarr").s1
    assert np.array_equal(a.histogram(), b.histogram())


def test_bad_s1_input_is_refused_before_anything_is_written(tmp_path):
    w = create_store(tmp_path / "s.zarr", BANDS, T, P, sensors=("s2", "s1"))
    loc = location(0)
    args = (loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    good = s1_location(0)
    cases = {
        "float array": S1Patch(good.db[:, :1], good.valid, good.meta),
        "327.67": S1Patch(np.full_like(good.db, 400.0), good.valid, good.meta),
        "NaN = no": S1Patch(np.where(good.db < -15, -np.inf, good.db), good.valid, good.meta),
        "needs": S1Patch(good.db, np.ones(T, bool), good.meta),  # date 0 valid without a record
        "not one of": S1Patch(good.db, good.valid, [m and {**m, "product": "SLC"} for m in good.meta]),
        "unknown S1 metadata": S1Patch(good.db, good.valid, [m and {**m, "polarisation": "VV"} for m in good.meta]),
    }
    for needle, patch in cases.items():
        with pytest.raises(StoreError, match=needle):
            w.append(*args, s1=patch)
    w.close()
    assert len(open_store(tmp_path / "s.zarr")) == 0
    with create_store(tmp_path / "s2.zarr", BANDS, T, P) as w2:
        with pytest.raises(StoreError, match="no Sentinel-1 group"):
            w2.append(*args, s1=good)


def test_a_location_without_any_s1_keeps_its_s2(tmp_path):
    with create_store(tmp_path / "s.zarr", BANDS, T, P, sensors=("s2", "s1")) as w:
        loc = location(0)
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    s = open_store(tmp_path / "s.zarr")
    assert not s.s1.valid(0).any() and np.isnan(s.s1.read(0)).all()
    assert np.array_equal(s.read(0), np.where(loc["valid"][:, None, None, None], loc["images"], 0))
    with pytest.raises(StoreError, match="no S1 statistics"):
        s.s1.stats()


def test_stores_without_s1_are_written_as_before(tmp_path):
    loc = location(0)
    with create_store(tmp_path / "s.zarr", BANDS, T, P) as w:
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    g = zarr.open_group(tmp_path / "s.zarr", mode="r")
    assert g.attrs["seco_store_version"] == 1 and "sensors" not in g.attrs["seco_store"] and "s1" not in g
    s = open_store(tmp_path / "s.zarr")
    assert s.s1 is None and s.sensors == ("s2",) and "sensors" not in s.identity()
    with pytest.raises(StoreError, match="other settings: sensors"):
        create_store(tmp_path / "s.zarr", BANDS, T, P, sensors=("s2", "s1"), exist_ok=True)


def test_pickled_store_reads_s1_in_another_process_state(tmp_path):
    _write(tmp_path / "s.zarr", n=2)
    s = open_store(tmp_path / "s.zarr")
    s.s1.valid_mask()
    t = pickle.loads(pickle.dumps(s))
    assert np.array_equal(t.s1.read(1), s.s1.read(1), equal_nan=True)


def test_plain_zarr_reads_the_documented_encoding(tmp_path):
    _write(tmp_path / "s.zarr", n=2)
    g = zarr.open_group(tmp_path / "s.zarr", mode="r")  # the docs/STORE.md example
    arr = g["s1/images"]
    code = arr[1]  # (T, 2, H, W) uint16
    db = np.where(code == 0, np.nan, code * arr.attrs["scale_factor"] + arr.attrs["add_offset"])
    assert np.allclose(db, open_store(tmp_path / "s.zarr").s1.read(1), equal_nan=True, atol=1e-4)
    assert arr.attrs["units"] == "dB" and list(arr.attrs["bands"]) == ["VV", "VH"]


def test_encoding_edges():
    x = np.array([-327.67, -0.004, 0.0, 0.006, 327.67, np.nan], np.float32)
    code = encode_db(x)
    assert code[-1] == 0 and code[:-1].min() >= 1
    back = decode_db(code)
    assert np.isnan(back[-1]) and np.allclose(back[:-1], [-327.67, 0.0, 0.0, 0.01, 327.67], atol=1e-4)


def test_check_finds_a_damaged_s1_shard(tmp_path, capsys):
    _write(tmp_path / "s.zarr", n=3)
    shard = tmp_path / "s.zarr" / "s1" / "images" / "c" / "1" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[40] ^= 0xFF
    shard.write_bytes(bytes(data))
    report = check_store(tmp_path / "s.zarr", workers=1, progress=False)
    assert report.bad_locations == [1] and "s1/images" in report.findings[0].path
    with pytest.raises(StoreCorruptError, match="s1/images"):
        open_store(tmp_path / "s.zarr").s1.read(1)
    assert np.isfinite(open_store(tmp_path / "s.zarr").s1.read(2)).any()


@pytest.mark.parametrize("grid", ["10m", "native"])
def test_migrate_keeps_the_s1_group_code_for_code(tmp_path, grid):
    _write(tmp_path / "s.zarr", n=4)
    migrate_store(tmp_path / "s.zarr", tmp_path / "m.zarr", layout=StoreLayout(grid=grid), progress=False)
    a, b = open_store(tmp_path / "s.zarr"), open_store(tmp_path / "m.zarr")
    assert b.sensors == ("s2", "s1")
    for i in range(4):
        assert np.array_equal(a.s1.read_raw(i), b.s1.read_raw(i))
        assert a.s1.meta(i) == b.s1.meta(i)
    assert np.array_equal(a.s1.histogram(), b.s1.histogram())


def test_store_info_reports_s1(tmp_path, capsys):
    _write(tmp_path / "s.zarr", n=4)
    assert main(["store", "info", str(tmp_path / "s.zarr"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sensors"] == ["s2", "s1"] and info["schema_version"] == 3
    s1 = info["s1"]
    assert set(s1["products"]) == {"RTC"} and s1["products"]["RTC"] >= s1["with_s1"] > 0
    assert set(s1["band_stats_db"]) == {"VV", "VH"} and s1["band_stats_db"]["VV"]["mean"] < 0


@pytest.mark.parametrize("grid", ["10m", "native"])
def test_s1_bands_read_beside_s2_bands_as_their_codes(tmp_path, grid):
    """What pre-training reads: VV / VH as channels after the S2 ones (stored codes), packed or on the grid."""
    from seco.bands import L2A
    from seco.store.packing import PackSpec

    rng = np.random.default_rng(3)
    path = tmp_path / "s.zarr"
    spec = PackSpec.build(L2A, P)
    with create_store(path, "all", T, P, sensors=("s2", "s1"), layout=StoreLayout(grid=grid)) as w:
        for i in range(3):
            packed = rng.integers(1, 5000, (T, spec.length)).astype(np.uint16)
            images = spec.unpack_numpy(packed)  # 20/60 m bands whole blocks: fits either grid
            loc = location(i, bands=12)
            w.append(loc["key"], images, loc["valid"], loc["dates_meta"], s1=s1_location(i))
    s = open_store(path)
    assert s.readable_bands == (*L2A, "VV", "VH") and s.bands == L2A
    want = np.concatenate([s.read(1, [2, 0], ["B04", "B11"]), s.s1.read_raw(1, [2, 0], ["VH"])], axis=1)
    got = s.read(1, [2, 0], "B04,VH,B11")  # S2 bands first, then S1: (2, 3, P, P)
    assert np.array_equal(got, want)
    spec = s.pack_spec("s1+s2")
    assert spec.bands == (*L2A, "VV", "VH")
    packed = s.read_packed(2, [1], "s1+s2")
    assert np.array_equal(spec.unpack_numpy(packed), s.read(2, [1], "s1+s2"))
    assert np.array_equal(s.read(2, [1], "s1"), s.s1.read_raw(2, [1]))
    with pytest.raises(Exception, match="not available"):
        open_store(tmp_path / "s.zarr").stats("VV")
