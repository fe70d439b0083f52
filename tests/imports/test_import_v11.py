"""``seco import ssl4eo-s12-v1.1``: Zarr-zip files (tests/imports/fakes_v11.py, the release's layout) -> store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fakes_v11 import make_v11

from seco.cli import main
from seco.errors import ConfigError
from seco.imports import ImportConfig, run_import
from seco.radiometry.corpora import S1_SSL4EO_V11_RULE, v11_offset, v11_to_dn
from seco.store import open_store


@pytest.fixture(scope="module")
def v11(tmp_path_factory):
    return make_v11(tmp_path_factory.mktemp("v11") / "ssl4eo-s12", seed=3)


@pytest.fixture(scope="module")
def v11_store(v11, tmp_path_factory):
    out = tmp_path_factory.mktemp("v11store") / "s.zarr"
    assert main(["import", "ssl4eo-s12-v1.1", str(v11.root), "--modality", "s2c", "--with-s1", "--out", str(out),
                 "--workers", "0", "--patch-size", str(v11.patch), "--min-dates", "1", "--no-progress"]) == 0
    return out


def test_s2_is_the_v1_dn_with_the_offset_removed_and_s1_on_its_season(v11, v11_store):
    s = open_store(v11_store)
    assert s.sensors == ("s2", "s1") and len(s) == len(v11.dn)
    for i, key in enumerate(s.keys()):
        name = key.rsplit("/", 1)[1]
        order = sorted((w, t) for t, w in enumerate(v11.times[name]) if w is not None)
        img, meta, s1, s1meta = s.read(i), s.meta(i), s.s1.read(i), s.s1.meta(i)
        assert s.valid(i).sum() == len(order)
        for slot, (when, t) in enumerate(order):
            np.testing.assert_array_equal(img[slot], v11.dn[name][t], err_msg=f"{key} t={t}")
            assert meta[slot]["datetime"] == f"{when:%Y-%m-%dT%H:%M:%S}Z" and meta[slot]["crs"].startswith("EPSG:32")
            if np.isnan(v11.s1[name][t].astype(np.float32)).all():
                assert not s.s1.valid(i)[slot]
                continue
            assert s.s1.valid(i)[slot] and s1meta[slot]["rule"] == S1_SSL4EO_V11_RULE
            assert np.nanmax(np.abs(s1[slot] - v11.s1[name][t].astype(np.float32))) <= 0.005 + 1e-4
            assert s1meta[slot]["datetime"] == f"{v11.s1_times[name][t]:%Y-%m-%dT%H:%M:%S}Z"
            assert s1meta[slot]["orbit_state"] in ("ascending", "descending")
    rep = json.loads((v11_store / "_import" / "report.json").read_text())
    assert rep["notes"].get("v1.1 +1000 DN removed") == len(s) and 0 < rep["s1"]["coverage"] < 1


def test_auto_offset_reads_the_dark_objects(tmp_path):
    plain = make_v11(tmp_path / "plain", files=1, offset=0, seed=4, with_s1=False)  # the webdataset's scale
    out = tmp_path / "p.zarr"
    rep = run_import(ImportConfig("ssl4eo-s12-v1.1", str(plain.root / "train"), str(out), modality="s2c",
                                  workers=0, patch_size=plain.patch, min_dates=1, progress=False))
    s = open_store(out)
    assert "v1.1 +1000 DN removed" not in rep.notes
    for i, key in enumerate(s.keys()):
        name = key.rsplit("/", 1)[1]
        first = min((w, t) for t, w in enumerate(plain.times[name]) if w is not None)[1]
        np.testing.assert_array_equal(s.read(i)[0], plain.dn[name][first])


def test_forced_offset_and_the_rule_itself(v11, tmp_path):
    out = tmp_path / "f.zarr"
    run_import(ImportConfig("ssl4eo-s12-v1.1", str(v11.root), str(out), modality="s2c", workers=0,
                            patch_size=v11.patch, min_dates=1, progress=False, v11_offset="0"))
    s = open_store(out)
    name = s.keys()[0].rsplit("/", 1)[1]
    first = min((w, t) for t, w in enumerate(v11.times[name]) if w is not None)[1]
    want = v11.dn[name][first].astype(np.int32)
    np.testing.assert_array_equal(s.read(0)[0], np.where(want > 0, want + 1000, 0))  # kept as the file holds it
    v = np.array([0, 1000, 1001, 1022, 5000], dtype=np.int16)
    assert v11_to_dn(v, 1000).tolist() == [0, 0, 1, 22, 4000] and v11_to_dn(v, 0).tolist() == v.tolist()
    assert v11_offset(v) == (0, 1000) and v11_offset(v[2:]) == (1000, 1001)
    with pytest.raises(ConfigError, match="--v11-offset"):
        ImportConfig("ssl4eo-s12-v1.1", "x", "y", v11_offset="500")
