"""``seco import`` end to end on fake corpora written in the published layouts (tests/imports/fakes.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from fakes import RES, make_seco

from seco.bands import L1C, L2A
from seco.cli import main
from seco.errors import ConfigError, CorpusError
from seco.imports import ImportConfig, run_import
from seco.imports.layouts import file_band_name
from seco.radiometry.corpora import seco_uint8_lut
from seco.store import open_store


def _file(root: Path, loc: str, pid: str, band: str) -> np.ndarray:
    with rasterio.open(root / loc / pid / f"{file_band_name(band)}.tif") as f:
        return f.read(1)


def _up(a: np.ndarray, band: str) -> np.ndarray:
    k = RES.get(file_band_name(band), 10) // 10
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1)


def _same_store(a_path: Path, b_path: Path) -> None:
    a, b = open_store(a_path), open_store(b_path)
    assert a.keys() == b.keys() and len(a) > 0
    np.testing.assert_array_equal(a.valid_mask(), b.valid_mask())
    np.testing.assert_array_equal(a.histogram(), b.histogram())
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        assert a.meta(i) == b.meta(i)


def test_seco_pixels_are_the_files_through_the_lut_on_the_10m_grid(seco_fake, seco_store):
    s = open_store(seco_store)
    lut = seco_uint8_lut()
    assert s.bands == L2A and s.num_dates == 5 and s.patch_size == seco_fake.patch
    want_keys = [f"seco/s2a/{n}" for n in sorted(seco_fake.dates) if n not in seco_fake.skipped]
    assert s.keys() == want_keys
    for i, key in enumerate(s.keys()):
        loc = key.rsplit("/", 1)[1]
        good = sorted(seco_fake.good[loc])  # product ids start with the time: sorted = chronological
        assert s.valid(i).tolist() == [t < len(good) for t in range(5)]
        img, meta = s.read(i), s.meta(i)
        for t, pid in enumerate(good):
            assert meta[t]["item_id"] == pid
            for c, band in enumerate(L2A):
                a = _file(seco_fake.root, loc, pid, band)
                n = seco_fake.patch // (RES.get(file_band_name(band), 10) // 10)
                if a.shape[0] > n:  # the one-pixel-too-large B8A of location 4: the downloader's centre crop
                    o = (a.shape[0] - n + 1) // 2
                    a = a[o:o + n, o:o + n]
                np.testing.assert_array_equal(img[t, c], _up(lut[a], band), err_msg=f"{key} {pid} {band}")
        assert not img[len(good):].any()  # invalid slots hold nothing
    # no dark pixel became nodata: every valid pixel of every band is > 0 (the uint8 0 is DN 20)
    for i in range(len(s)):
        assert (s.read(i)[s.valid(i)] > 0).all()


def test_seco_metadata(seco_fake, seco_store):
    s = open_store(seco_store)
    for i, key in enumerate(s.keys()):
        loc = key.rsplit("/", 1)[1]
        lon, lat = seco_fake.centre[loc]
        for m in s.meta(i):
            if not m["valid"]:
                assert m["item_id"] is None
                continue
            pid = m["item_id"]
            meta_file = seco_fake.root / loc / pid / "metadata.json"
            if meta_file.is_file():
                ms = json.loads(meta_file.read_text())["system:time_start"]
                want = datetime.fromtimestamp(ms / 1000, tz=UTC)
            else:  # location 5, date 0: the product id's time
                want = datetime.strptime(pid[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
            assert datetime.fromisoformat(m["datetime"].replace("Z", "+00:00")) == want
            assert m["lat"] == pytest.approx(lat, abs=1e-6) and m["lon"] == pytest.approx(lon, abs=1e-6)
            assert m["cloud_fraction"] == 0.0 and m["nodata_fraction"] == 0.0
            assert "4326" in m["crs"] or "longlat" in m["crs"] or "WGS" in m["crs"]
        times = [m["datetime"] for m in s.meta(i) if m["valid"]]
        assert times == sorted(times)


def test_seco_report_and_attributes(seco_fake, seco_store):
    rep = json.loads((seco_store / "_import" / "report.json").read_text())
    assert {r["location"] for r in rep["skipped"]} == seco_fake.skipped == {"000001"}
    assert rep["skip_kinds"] == {"fewer dates than needed": 1}
    assert rep["date_problems"] == {"missing band": 1, "unreadable file": 1}
    assert rep["notes"]["band size fixed (crop/pad)"] == 5  # location 4's B8A, every date
    assert rep["imported"] == 7 and rep["locations_found"] == 8
    assert set(rep["stats"]) == set(L2A) and all(v["mean"] > 0 for v in rep["stats"].values())
    user = json.loads((seco_store / "zarr.json").read_text())["attributes"]["user_attrs"]
    rad = user["import"]["radiometry"]
    assert rad["source_scale"] == 255.0 and rad["lossy"] is True and rad["source_dtype"] == "uint8"
    assert user["import"]["corpus"] == "seco" and user["source"] == "seco.imports"


@pytest.mark.parametrize("modality,bands", [("s2c", L1C), ("s2a", L2A)])
def test_ssl4eo_pixels_are_the_dn(ssl4eo_fake, tmp_path, modality, bands):
    from fakes import make_ssl4eo

    fake = ssl4eo_fake if modality == "s2c" else make_ssl4eo(tmp_path / "c", locations=7, modality="s2a", seed=5)
    out = tmp_path / "s.zarr"
    rep = run_import(ImportConfig("ssl4eo-s12", str(fake.root.parent), str(out), modality=modality, workers=0,
                                  patch_size=fake.patch, progress=False))
    s = open_store(out)
    assert s.bands == bands and s.num_dates == 4 and len(s) == len(fake.dates) - len(fake.skipped)
    assert {n for n, _ in rep.skipped} == fake.skipped
    for i, key in enumerate(s.keys()):
        loc = key.rsplit("/", 1)[1]
        good = sorted(fake.good[loc])
        img = s.read(i)
        for t, pid in enumerate(good[:2]):
            for c, band in enumerate(bands):
                a = _file(fake.root, loc, pid, band).astype(np.int32)
                n = fake.patch // (RES.get(file_band_name(band), 10) // 10)
                if a.shape[0] > n:
                    o = (a.shape[0] - n + 1) // 2
                    a = a[o:o + n, o:o + n]
                if loc == "0000006":  # PROCESSING_BASELINE 04.00 in its metadata: -1000 DN, valid pixels stay >= 1
                    a = np.maximum(a - 1000, 1)
                np.testing.assert_array_equal(img[t, c], _up(a.astype(np.uint16), band), err_msg=f"{key} {band}")


def test_process_pool_gives_the_same_store(seco_fake, seco_store, tmp_path):
    run_import(ImportConfig("seco", str(seco_fake.root), str(tmp_path / "p.zarr"), workers=2,
                            patch_size=seco_fake.patch, progress=False))
    _same_store(seco_store, tmp_path / "p.zarr")


def test_resume_after_a_partial_run_gives_the_same_store(seco_fake, seco_store, tmp_path):
    out = tmp_path / "r.zarr"
    cfg = ImportConfig("seco", str(seco_fake.root), str(out), workers=0, patch_size=seco_fake.patch, progress=False)
    first = run_import(cfg, stop_after=3)
    assert first.imported == 2 and first.skipped == [("000001", first.skipped[0][1])]
    second = run_import(cfg)
    assert second.resumed_from == 2 and second.imported_this_run == 5 and second.skipped_this_run == 0
    assert [n for n, _ in second.skipped] == ["000001"]  # decided once, not re-read
    _same_store(seco_store, out)
    third = run_import(cfg)  # nothing left
    assert third.imported_this_run == 0 and third.imported == 7


def test_dask_cluster_gives_the_same_store(seco_fake, seco_store, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert main(["import", "seco", str(seco_fake.root), "--out", str(tmp_path / "d.zarr"), "--dask",
                     cluster.scheduler_address, "--patch-size", str(seco_fake.patch), "--no-progress"]) == 0
    _same_store(seco_store, tmp_path / "d.zarr")


def test_min_dates_one_keeps_the_short_location(seco_fake, tmp_path):
    rep = run_import(ImportConfig("seco", str(seco_fake.root), str(tmp_path / "m.zarr"), workers=0, min_dates=1,
                                  patch_size=seco_fake.patch, progress=False, limit=3))
    s = open_store(tmp_path / "m.zarr")
    assert rep.skipped == [] and len(s) == 3 and s.valid_mask()[1].tolist() == [True, True, False, False, False]


def test_lowering_min_dates_on_a_rerun_imports_what_was_skipped(seco_fake, tmp_path):
    out = tmp_path / "m.zarr"
    first = run_import(ImportConfig("seco", str(seco_fake.root), str(out), workers=0, patch_size=48, progress=False,
                                    limit=3))
    assert [n for n, _ in first.skipped] == ["000001"] and first.imported == 2
    again = run_import(ImportConfig("seco", str(seco_fake.root), str(out), workers=0, patch_size=48,
                                    progress=False, limit=3))
    assert again.imported_this_run == 0 and again.skipped_this_run == 0  # the skip stands at the same setting
    lower = run_import(ImportConfig("seco", str(seco_fake.root), str(out), workers=0, patch_size=48,
                                    progress=False, limit=3, min_dates=2))
    assert lower.imported_this_run == 1 and lower.skipped == [] and lower.imported == 3
    assert open_store(out).keys()[-1] == "seco/s2a/000001"


# ------------------------------------------------------------------------------------------ bad input


def test_wrong_root_explains_the_expected_layout(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_text("x")
    assert main(["import", "seco", str(tmp_path / "photos"), "--out", str(tmp_path / "s.zarr")]) == 2
    err = capsys.readouterr().err
    assert "does not have the seco layout" in err and "found: a.jpg" in err
    assert "000000/" in err and "B8A.tif" in err  # the expected tree
    assert not (tmp_path / "s.zarr").exists()
    with pytest.raises(CorpusError, match="does not exist"):
        run_import(ImportConfig("seco", str(tmp_path / "nope"), str(tmp_path / "s.zarr")))


def test_seco_tree_given_as_ssl4eo_and_back(seco_fake, ssl4eo_fake, tmp_path):
    with pytest.raises(CorpusError, match="no s2c/ folder"):
        run_import(ImportConfig("ssl4eo-s12", str(seco_fake.root), str(tmp_path / "a.zarr")))
    with pytest.raises(CorpusError, match=r"is uint16, but the seco corpus is uint8.*ssl4eo-s12"):
        run_import(ImportConfig("seco", str(ssl4eo_fake.root), str(tmp_path / "b.zarr")))
    assert not (tmp_path / "b.zarr").exists()


def test_sentinel1_alone_points_to_with_s1(ssl4eo_fake, tmp_path, capsys):
    rc = main(["import", "ssl4eo-s12", str(ssl4eo_fake.root.parent), "--modality", "s1", "--out",
               str(tmp_path / "s.zarr")])
    assert rc == 2 and "--with-s1" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--modality s2c --with-s1"):
        ImportConfig("ssl4eo-s12", "x", "y", modality="s1")
    with pytest.raises(ConfigError, match="Level-2A only"):
        ImportConfig("seco", "x", "y", modality="s2c")
    with pytest.raises(ConfigError, match="no Sentinel-1"):
        ImportConfig("seco", "x", "y", with_s1=True)


@pytest.mark.parametrize("kw,msg", [
    ({"workers": -1}, "--workers"), ({"patch_size": 50}, "multiple of 6"), ({"min_dates": 6}, "1..5"),
    ({"limit": 0}, "--limit"),
])
def test_bad_settings(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        ImportConfig("seco", "x", "y", **kw)


def test_a_store_of_another_corpus_is_refused(seco_store, tmp_path):
    from fakes import make_ssl4eo

    fake = make_ssl4eo(tmp_path / "c", locations=1, modality="s2a", broken=False)  # same bands (L2A) as SeCo
    before = len(open_store(seco_store))
    with pytest.raises(ConfigError, match="holds an import of seco s2a, not ssl4eo-s12 s2a"):
        run_import(ImportConfig("ssl4eo-s12", str(fake.root.parent), str(seco_store), modality="s2a",
                                patch_size=48, progress=False))
    assert len(open_store(seco_store)) == before


def test_band_too_far_off_size_leaves_the_date_out(tmp_path):
    fake = make_seco(tmp_path / "c", locations=1, seed=9, broken=False)
    pid = sorted(fake.dates["000000"])[0]
    p = fake.root / "000000" / pid / "B5.tif"
    with rasterio.open(p) as f:
        prof, a = f.profile, f.read(1)
    prof.update(width=a.shape[1] - 3, height=a.shape[0] - 3)
    with rasterio.open(p, "w", **prof) as f:
        f.write(a[None, :-3, :-3])
    rep = run_import(ImportConfig("seco", str(fake.root), str(tmp_path / "s.zarr"), workers=0, patch_size=48,
                                  progress=False))
    assert rep.date_problems == {"wrong band size": 1} and rep.imported == 1
    assert open_store(tmp_path / "s.zarr").valid(0).tolist() == [True, True, True, True, False]


def test_unreachable_dask_scheduler_is_a_clear_error(seco_fake, tmp_path, capsys):
    import socket

    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rc = main(["import", "seco", str(seco_fake.root), "--out", str(tmp_path / "s.zarr"), "--dask",
               f"tcp://127.0.0.1:{port}", "--patch-size", "48", "--no-progress"])
    assert rc == 2 and "cannot connect to the Dask scheduler" in capsys.readouterr().err
    assert not (tmp_path / "s.zarr").exists()  # refused before the store was created
