"""SSL4EO-S12 v1 Sentinel-1 read beside the S2 dates (numpy out; tests/imports/fakes.py ``make_s1``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import rasterio
from fakes import S1_INFO, make_ssl4eo

from seco.imports.layouts import CORPORA, find_locations
from seco.imports.readers import ReadJob, read_location
from seco.imports.s1 import orbit_state_from_time, pair_s1, relative_orbit
from seco.radiometry.corpora import S1_SSL4EO_RULE


@pytest.fixture(scope="module")
def s1_fake(tmp_path_factory):
    return make_ssl4eo(tmp_path_factory.mktemp("s1corpus") / "ssl4eo-s12", locations=8, seed=4, s1=True)


def _reads(fake):
    corpus = CORPORA[("ssl4eo-s12", "s2c")]
    _, refs = find_locations(corpus, fake.root.parent)
    job = ReadJob(corpus=corpus, patch_size=fake.patch, min_dates=1, s1_base=str(fake.root.parent / "s1"))
    return {r.name: read_location(r, job) for r in refs}


def _db(fake, loc: str, sid: str, band: str) -> np.ndarray:
    with rasterio.open(fake.root.parent / "s1" / loc / sid / f"{band}.tif") as f:
        a = f.read(1)
    return np.where(a == 0.0, np.nan, a).astype(np.float32)


def test_each_s2_date_gets_the_s1_of_its_season(s1_fake):
    reads = _reads(s1_fake)
    for loc, res in reads.items():
        assert res.status == "ok" and res.s1 is not None
        slots = sorted(s1_fake.good[loc])  # chronological: product ids start with the time
        want = {s2: sid for sid, s2, ok in s1_fake.s1[loc] if s2 is not None and ok}
        assert res.s1.valid.tolist() == [t < len(slots) and slots[t] in want for t in range(4)], loc
        for t, pid in enumerate(slots):
            if pid not in want:
                assert np.isnan(res.s1.db[t]).all() and res.s1.meta[t] is None
                continue
            sid = want[pid]
            for c, band in enumerate(("VV", "VH")):
                np.testing.assert_array_equal(res.s1.db[t, c], _db(s1_fake, loc, sid, band), err_msg=f"{loc} {sid}")
            m = res.s1.meta[t]
            s2_time = datetime.strptime(pid[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
            assert m["item_id"] == sid and m["product"] == "GRD" and m["quantity"] == "sigma0"
            assert m["rule"] == S1_SSL4EO_RULE and m["platform"] == f"sentinel-1{sid[2].lower()}"
            meta_file = s1_fake.root.parent / "s1" / loc / sid / "metadata.json"
            props = json.loads(meta_file.read_text())["properties"] if meta_file.is_file() else {}
            if props:
                assert m["orbit_state"] == props["orbitProperties_pass"].lower()
            assert m["relative_orbit"] == props.get("relativeOrbitNumber_start", m["relative_orbit"])
            assert 1 <= m["relative_orbit"] <= 175
            assert abs(m["time_offset_days"] - (m["datetime"] - s2_time).total_seconds() / 86400) < 1e-9
            assert abs(m["time_offset_days"]) <= 14.0 + 1e-6 and 0.0 <= m["nodata_fraction"] < 1.0


def test_broken_s1_leaves_the_s2_date_and_says_why(s1_fake):
    reads = _reads(s1_fake)
    # 0: a no-data stripe of 5 columns of 48 is NaN and counted
    first = reads["0000000"].s1
    t = [m["item_id"] if m else None for m in first.meta].index(s1_fake.s1["0000000"][0][0])
    assert np.isnan(first.db[t, :, :, :5]).all() and abs(first.meta[t]["nodata_fraction"] - 5 / 48) < 1e-9
    assert not np.isnan(first.db[t, :, :, 5:]).any()
    # 5: corrupt VV.tif -> the S2 date stays valid, without S1
    r5 = reads["0000005"]
    assert r5.valid.all() and r5.s1.valid.sum() == 3
    assert any("unreadable VV.tif" in p for p in r5.s1.problems)
    # 7: a missing S1 season -> 3 of 4
    assert reads["0000007"].valid.all() and reads["0000007"].s1.valid.sum() == 3
    # 2: the S1 of the S2 date that was left out pairs with nothing and is reported
    r2 = reads["0000002"]
    assert r2.valid.sum() == 3 and r2.s1.valid.sum() == 3
    assert any("no S2 date within 30 days" in p for p in r2.s1.problems)


def test_without_metadata_the_product_id_gives_time_and_relative_orbit(s1_fake):
    res = _reads(s1_fake)["0000006"].s1
    sid = s1_fake.s1["0000006"][1][0]
    t = next(t for t in range(4) if res.meta[t] and res.meta[t]["item_id"] == sid)
    m = res.meta[t]
    assert m["datetime"] == datetime.strptime(sid[17:32], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    assert m["relative_orbit"] == relative_orbit(sid[2], int(sid[49:55]))
    lon = s1_fake.centre["0000006"][0]
    local = (m["datetime"].hour + m["datetime"].minute / 60 + lon / 15) % 24
    assert m["orbit_state"] == ("ascending" if local >= 12 else "descending")
    assert any("relative orbit from the product id" in n for n in res.notes)
    assert any("orbit state from the local solar time" in n for n in res.notes)


def test_orbit_state_from_local_time_on_the_recorded_scene():
    props = json.loads(Path(S1_INFO).read_text())["properties"]  # footprint 16.9..20.7 E, 16:34:55 UTC
    when = datetime.fromtimestamp(props["system:time_start"] / 1000, tz=UTC)
    assert orbit_state_from_time(when, 18.8) == props["orbitProperties_pass"].lower() == "ascending"
    # the same place 12 hours later is on the other side of the orbit
    assert orbit_state_from_time(when + timedelta(hours=12), 18.8) == "descending"


def test_relative_orbit_matches_the_recorded_earth_engine_scene():
    props = json.loads(Path(S1_INFO).read_text())["properties"]
    assert relative_orbit(props["platform_number"], props["orbitNumber_start"]) == props["relativeOrbitNumber_start"]


def test_pairing_is_closest_within_the_window_and_one_to_one():
    base = datetime(2021, 3, 20, tzinfo=UTC)
    s2 = [base, base + timedelta(days=90), None, base + timedelta(days=180)]
    s1 = [base + timedelta(days=5), base - timedelta(days=2), base + timedelta(days=130), base + timedelta(days=170)]
    # both 0 and 1 fit slot 0: the closer (1) wins, 0 is left; 2 is 40 days from slot 1: outside the window
    assert pair_s1(s1, s2) == {1: 0, 3: 3}
