"""``seco collect --s1 rtc`` on a local archive: S2 from a synth archive, S1 RTC COGs written here (linear gamma0
float32, nodata -32768, PC-RTC-like properties) into a stac-geoparquet catalog of their own or the archive's."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest
import rasterio
from rasterio.transform import from_origin

from seco.cli import main
from seco.collect.build import write_stac_geoparquet
from seco.collect.catalog import _row_to_item
from seco.collect.config import CollectConfig
from seco.collect.journal import read_failures
from seco.collect.pipeline import run_collect
from seco.collect.plan import plan_collect
from seco.store import open_store
from seco.synth.archive import make_archive
from tests.integration.servers import archive_locations

P = 32
DATES = ("2021-06-01", "2021-08-24")


def _s2_items(root: Path) -> list[dict]:
    return [_row_to_item(r) for r in pads.dataset(root / "catalog.parquet").to_table().to_pylist()]


def _s1_item(iid: str, when: dt.datetime, ref: str, folder: Path, *, state: str = "ascending", seed: int = 0,
             mode: str = "IW", pols: tuple[str, ...] = ("vv", "vh"), drop: str | None = None) -> dict:
    """One S1 RTC item whose COGs cover the S2 reference raster ``ref`` on the same 10 m grid."""
    with rasterio.open(ref) as r:
        crs, t, w, h, bounds = r.crs, r.transform, r.width, r.height, r.bounds
        from rasterio.warp import transform_bounds

        bbox = list(transform_bounds(crs, "EPSG:4326", *bounds))
    rng = np.random.default_rng(seed)
    assets = {}
    for k, pol in enumerate(pols):
        lin = rng.gamma(4.4, (0.1 if k == 0 else 0.02) / 4.4, size=(h, w)).astype(np.float32)
        lin[:2, :] = -32768.0  # a nodata border
        path = folder / f"{iid}_{pol}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32", crs=crs,
                           transform=from_origin(t.c, t.f, t.a, -t.e), nodata=-32768.0, tiled=True,
                           blockxsize=256, blockysize=256) as ds:
            ds.write(lin, 1)
        assets[pol] = {"href": str(path), "type": "image/tiff; application=geotiff", "roles": ["data"]}
    props = {"datetime": when.isoformat(), "platform": "sentinel-1a", "constellation": "sentinel-1",
             "sar:instrument_mode": mode, "sar:polarizations": [p.upper() for p in pols], "sar:product_type": "RTC",
             "sar:looks_equivalent_number": 4.4, "sat:orbit_state": state, "sat:relative_orbit": 88,
             "proj:epsg": crs.to_epsg()}
    if drop:
        del props[drop]
    return {"type": "Feature", "stac_version": "1.0.0", "id": iid, "collection": "sentinel-1-rtc", "bbox": bbox,
            "geometry": None, "properties": props, "assets": assets, "links": []}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> dict:
    """One site, two dates; S1: an ascending pass 1 day before date 0, a descending one 2 days after date 1."""
    d = tmp_path_factory.mktemp("s1")
    root = make_archive(d / "a", seed=2, zones=(31,), dates=DATES, scene_px=264, blocksize=256, corrupt=0,
                        missing=0, progress=False, cloud_probs=(1.0, 0.0, 0.0), edge_prob=0.0)
    locs = archive_locations(root, d / "loc.parquet", per_side=2, patch_px=P)
    s2 = _s2_items(root)
    by_day = {it["properties"]["datetime"].date().isoformat(): it for it in s2}
    ref0, ref1 = (by_day[x]["assets"]["red"]["href"] for x in DATES)
    t0 = by_day[DATES[0]]["properties"]["datetime"]
    t1 = by_day[DATES[1]]["properties"]["datetime"]
    s1dir = d / "s1"
    s1dir.mkdir()
    s1 = [_s1_item("S1A_ASC_0", t0 - dt.timedelta(days=1), ref0, s1dir, seed=1),
          _s1_item("S1A_DSC_1", t1 + dt.timedelta(days=2), ref1, s1dir, state="descending", seed=2)]
    write_stac_geoparquet(s1, d / "s1.parquet")
    ew = [_s1_item("S1A_EW_0", t0 - dt.timedelta(days=1), ref0, s1dir, mode="EW", pols=("hh", "hv"), seed=3)]
    write_stac_geoparquet(ew, d / "s1_ew.parquet")
    bare = [_s1_item("S1A_BARE_0", t0 - dt.timedelta(days=1), ref0, s1dir, seed=4, drop="sat:orbit_state")]
    write_stac_geoparquet(bare, d / "s1_bare.parquet")
    write_stac_geoparquet([json.loads(json.dumps(x, default=str)) for x in s2] + s1, d / "both.parquet")
    return {"root": root, "locs": locs, "dir": d, "s1": s1, "t": (t0, t1)}


def _args(a: dict, out: Path, *extra: str, catalog: str | None = None) -> list[str]:
    return ["collect", "--locations", str(a["locs"]), "--catalog", catalog or str(a["root"] / "catalog.parquet"),
            "--out", str(out), "--patch-size", str(P), "--max-cloud", "none", "--max-patch-cloud", "0.9",
            "--max-nodata", "0.99", "--workers", "2", "--no-progress", *extra]


def _expected(a: dict, href: str, meta: dict) -> np.ndarray:
    """dB of an S1 COG on the grid of an S2 patch record (same 10 m grid: the average is the pixel itself)."""
    a_, _, c, _, e, f = meta["transform"]
    with rasterio.open(href) as ds:
        col, row = ~ds.transform * (c + a_ / 2, f + e / 2)
        lin = ds.read(1, window=((int(row), int(row) + P), (int(col), int(col) + P))).astype(np.float64)
    lin[lin <= 0] = np.nan
    return 10 * np.log10(lin)


def test_collect_s1_same_orbit(archive, tmp_path, capsys) -> None:
    out = tmp_path / "s.zarr"
    assert main(_args(archive, out, "--s1", "rtc", "--s1-catalog", str(archive["dir"] / "s1.parquet"))) == 0
    text = capsys.readouterr().out
    s = open_store(out)
    assert s.sensors == ("s2", "s1") and s.s1 is not None
    n = len(s)
    assert n == 4
    # orbit policy 'same': ascending (1 date, offset 1 d) beats descending (1 date, offset 2 d); date 1 has none
    np.testing.assert_array_equal(s.s1.valid_mask(), np.tile([True, False], (n, 1)))
    for i in range(n):
        m0 = s.s1.meta(i)[0]
        assert (m0["item_id"], m0["orbit_state"], m0["product"], m0["quantity"], m0["relative_orbit"]) == \
            ("S1A_ASC_0", "ascending", "RTC", "gamma0", 88)
        assert m0["rule"] == "local-rtc:gamma0-linear-to-db"
        assert m0["time_offset_days"] == pytest.approx(-1.0, abs=1e-6)
        db = s.s1.read(i)
        assert db.shape == (2, 2, P, P) and np.isnan(db[1]).all()
        s2meta = s.meta(i)[0]
        for c, pol in enumerate(("vv", "vh")):
            want = _expected(archive, archive["s1"][0]["assets"][pol]["href"], s2meta)
            np.testing.assert_allclose(db[0, c], want, atol=0.0051)
    rows = [r for r in read_failures(out) if r["kind"] == "s1-none"]
    assert sorted((r["location_id"], r["date_index"]) for r in rows) == sorted((int(s.key(i)), 1) for i in range(n))
    assert f"S1: {n}/{2 * n} collected dates" in text
    # the S2 side is untouched: the same S2 as a run without --s1
    assert main(_args(archive, tmp_path / "s2.zarr")) == 0
    s2 = open_store(tmp_path / "s2.zarr")
    assert s2.sensors == ("s2",) and s2.s1 is None
    for i in range(n):
        np.testing.assert_array_equal(s.read(i), s2.read(i))


def test_collect_s1_any_orbit_from_the_archives_own_catalog(archive, tmp_path) -> None:
    out = tmp_path / "any.zarr"
    both = str(archive["dir"] / "both.parquet")  # S2 and S1 items in one file: S2 search ignores the S1 ones
    assert main(_args(archive, out, "--s1", "rtc", "--s1-orbit", "any", catalog=both)) == 0
    s = open_store(out)
    assert s.s1.valid_mask().all()
    assert [m["orbit_state"] for m in s.s1.meta(0)] == ["ascending", "descending"]
    assert s.s1.meta(0)[1]["time_offset_days"] == pytest.approx(2.0, abs=1e-6)


def test_resume_gives_the_uninterrupted_store(archive, tmp_path) -> None:
    s1cat = str(archive["dir"] / "s1.parquet")

    def cfg(out: Path) -> CollectConfig:
        return CollectConfig(locations=str(archive["locs"]), catalog=str(archive["root"] / "catalog.parquet"),
                             out=str(out), patch_size=P, max_cloud=None, max_patch_cloud=0.9, max_nodata=0.99,
                             workers=2, progress=False, s1="rtc", s1_catalog=s1cat)

    run_collect(plan_collect(cfg(tmp_path / "full.zarr")))
    run_collect(plan_collect(cfg(tmp_path / "part.zarr")), stop_after=1)
    assert len(open_store(tmp_path / "part.zarr")) == 1
    run_collect(plan_collect(cfg(tmp_path / "part.zarr")))
    a, b = open_store(tmp_path / "full.zarr"), open_store(tmp_path / "part.zarr")
    assert a.keys() == b.keys()
    for i in range(len(a)):
        np.testing.assert_array_equal(a.s1.read_raw(i), b.s1.read_raw(i))
        assert a.s1.meta(i) == b.s1.meta(i)


@pytest.mark.parametrize(("extra", "catalog_key", "words"), [
    (("--s1", "grd"), None, "GRD"),
    (("--s1", "rtc", "--s1-window", "0.1"), "s1.parquet", "can never match"),
    (("--s1", "rtc"), None, "sentinel-1-rtc"),
    (("--s1", "rtc"), "s1_ew.parquet", "EW HH+HV"),
    (("--s1", "rtc"), "s1_bare.parquet", "sat:orbit_state"),
])
def test_bad_s1_input_stops_before_any_work(archive, tmp_path, capsys, extra, catalog_key, words) -> None:
    out = tmp_path / "bad.zarr"
    more = ("--s1-catalog", str(archive["dir"] / catalog_key)) if catalog_key else ()
    assert main(_args(archive, out, *extra, *more)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any(words in line for line in err), err
    assert not out.exists()


def test_collect_a_synth_archive_with_s1(tmp_path) -> None:
    """The simulator's own S1 passes (seco.synth.archive_s1) in the archive's catalog.parquet: every date gets
    S1, from one orbit state, in a plausible dB range; its EW-only site is refused before any work."""
    root = make_archive(tmp_path / "a", seed=3, zones=(31, 32), dates=DATES, scene_px=264, blocksize=256,
                        corrupt=0, missing=0, progress=False, cloud_probs=(1.0, 0.0, 0.0), edge_prob=0.0, s1=True,
                        s1_ew_sites=(1,))
    locs = archive_locations(root, tmp_path / "loc.parquet", per_side=1, patch_px=P)
    cat = str(root / "catalog.parquet")
    out = tmp_path / "s.zarr"
    # the EW site is location 1 (site order); location 0 is IW: probed first, so the run starts, and the EW
    # site's dates are counted as without S1
    assert main(_args({"root": root, "locs": locs}, out, "--s1", "rtc", catalog=cat)) == 0
    s = open_store(out)
    ok = [i for i in range(len(s)) if s.s1.valid(i).all()]
    assert len(ok) == 1 and len(s) == 2, s.s1.valid_mask()  # the IW site; the EW site's dates have none
    none = {(r["location_id"], r["date_index"]) for r in read_failures(out) if r["kind"] == "s1-none"}
    assert none == {(int(s.key(i)), t) for i in range(len(s)) if i not in ok for t in range(len(DATES))}
    for i in ok:
        states = {m["orbit_state"] for m in s.s1.meta(i)}
        assert len(states) == 1
        db = s.s1.read(i)
        vv, vh = np.nanmedian(db[:, 0]), np.nanmedian(db[:, 1])
        assert -30 < vh < vv < 5, (vv, vh)
