"""``seco import ssl4eo-s12 --with-s1``: S2 and S1 of the same locations and seasons in one store (fake v1 tree
in the real layout, tests/imports/fakes.py ``make_s1``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from fakes import make_ssl4eo

from seco.bands import S1_BANDS
from seco.cli import main
from seco.errors import ConfigError, CorpusError
from seco.imports import ImportConfig, run_import
from seco.radiometry.corpora import S1_SSL4EO_RULE
from seco.store import open_store


@pytest.fixture(scope="module")
def s1_fake(tmp_path_factory):
    return make_ssl4eo(tmp_path_factory.mktemp("s1corpus") / "ssl4eo-s12", locations=8, seed=6, s1=True)


@pytest.fixture(scope="module")
def s1_store(s1_fake, tmp_path_factory):
    out = tmp_path_factory.mktemp("s1store") / "s.zarr"
    assert main(["import", "ssl4eo-s12", str(s1_fake.root.parent), "--modality", "s2c", "--with-s1", "--out",
                 str(out), "--workers", "0", "--patch-size", str(s1_fake.patch), "--no-progress"]) == 0
    return out


def _db(fake, loc, sid, band):
    with rasterio.open(fake.root.parent / "s1" / loc / sid / f"{band}.tif") as f:
        a = f.read(1).astype(np.float64)
    return np.where(a == 0.0, np.nan, a)


def test_s1_sits_on_the_date_of_its_s2_season(s1_fake, s1_store):
    s = open_store(s1_store)
    assert s.sensors == ("s2", "s1") and s.s1.bands == S1_BANDS and s.s1.units == "dB"
    assert len(s) == len(s1_fake.dates) - len(s1_fake.skipped)
    for i, key in enumerate(s.keys()):
        loc = key.rsplit("/", 1)[1]
        slots = sorted(s1_fake.good[loc])
        want = {s2: sid for sid, s2, ok in s1_fake.s1[loc] if s2 is not None and ok}
        assert s.s1.valid(i).tolist() == [t < len(slots) and slots[t] in want for t in range(4)]
        assert s.valid(i).tolist() == [t < len(slots) for t in range(4)]  # S2 unchanged by S1 gaps
        db, raw, meta = s.s1.read(i), s.s1.read_raw(i), s.s1.meta(i)
        for t, pid in enumerate(slots):
            if pid not in want:
                assert np.isnan(db[t]).all()
                continue
            for c, band in enumerate(S1_BANDS):
                a = _db(s1_fake, loc, want[pid], band)
                assert np.array_equal(np.isnan(db[t, c]), np.isnan(a))
                code = raw[t, c].astype(np.float64)
                assert (code[np.isnan(a)] == 0).all()  # no data is code 0
                assert np.nanmax(np.abs(np.where(code > 0, code, np.nan) - (a * 100 + 32768))) <= 0.5 + 1e-6
                assert np.nanmax(np.abs(db[t, c] - a)) <= 0.005 + 1e-4  # 0.01 dB steps (+ float32 decoding)
            m = meta[t]
            assert m["item_id"] == want[pid] and m["product"] == "GRD" and m["quantity"] == "sigma0"
            assert m["rule"] == S1_SSL4EO_RULE and m["orbit_state"] in ("ascending", "descending")


def test_report_counts_s1_coverage_and_what_was_left_out(s1_fake, s1_store):
    rep = json.loads((s1_store / "_import" / "report.json").read_text())
    s = open_store(s1_store)
    assert rep["s1"]["dates"] == int(s.s1.valid_mask().sum()) and rep["s1"]["s2_dates"] == int(s.valid_mask().sum())
    assert 0 < rep["s1"]["coverage"] < 1
    left = rep["s1"]["left_out"]
    assert left.get("unreadable file") == 1 and left.get("S1 without an S2 date", 0) >= 1
    assert set(rep["s1"]["stats_db"]) == set(S1_BANDS)
    assert -25 < rep["s1"]["stats_db"]["VH"]["mean"] < rep["s1"]["stats_db"]["VV"]["mean"] < -5
    attrs = json.loads((s1_store / "zarr.json").read_text())["attributes"]["user_attrs"]["import"]
    assert attrs["with_s1"] is True and attrs["s1"]["rule"] == S1_SSL4EO_RULE


def test_processes_and_rerun_give_the_same_store(s1_fake, s1_store, tmp_path):
    out = tmp_path / "p.zarr"
    cfg = ImportConfig("ssl4eo-s12", str(s1_fake.root.parent), str(out), modality="s2c", workers=2,
                       patch_size=s1_fake.patch, progress=False, with_s1=True)
    first = run_import(cfg, stop_after=3)
    assert first.imported_this_run + first.skipped_this_run == 3
    rest = run_import(cfg)
    assert rest.resumed_from == first.imported
    a, b = open_store(s1_store), open_store(out)
    assert a.keys() == b.keys()
    np.testing.assert_array_equal(a.s1.valid_mask(), b.s1.valid_mask())
    for i in range(len(a)):
        np.testing.assert_array_equal(a.s1.read_raw(i), b.s1.read_raw(i))
        assert a.s1.meta(i) == b.s1.meta(i)


def test_s1_flags_that_do_not_fit_are_refused(s1_fake, s1_store, tmp_path):
    with pytest.raises(ConfigError, match="holds an import with Sentinel-1; rerun with --with-s1"):
        run_import(ImportConfig("ssl4eo-s12", str(s1_fake.root.parent), str(s1_store), modality="s2c",
                                patch_size=s1_fake.patch, progress=False))
    bare = make_ssl4eo(tmp_path / "bare" / "ssl4eo-s12", locations=1, broken=False)
    import shutil

    shutil.rmtree(bare.root.parent / "s1")
    with pytest.raises(CorpusError, match="no s1/ folder"):
        run_import(ImportConfig("ssl4eo-s12", str(bare.root.parent), str(tmp_path / "x.zarr"), modality="s2c",
                                patch_size=bare.patch, progress=False, with_s1=True))
    assert not (tmp_path / "x.zarr").exists()
