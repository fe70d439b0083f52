"""Sentinel-1 RTC scenes in the simulated scene archive (make_archive(..., s1=True))."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio

from seco.collect import cloud as scl_codes
from seco.errors import ConfigError
from seco.synth.archive import make_archive, read_manifest
from seco.synth.archive_s1 import COLLECTION, NODATA, SLICE_OVERLAP

REAL_ITEM = json.loads((Path(__file__).parent / "fixtures" / "pc_rtc_item_properties.json").read_text())
ARGS = dict(seed=3, zones=(31, 32), dates=("2021-09-14", "2022-06-20"), scene_px=120, corrupt=1, missing=0,
            progress=False)


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("arch")
    plain = make_archive(base / "plain", **ARGS)  # type: ignore[arg-type]
    with_s1 = make_archive(base / "s1", s1=True, s1_ew_sites=(1,), **ARGS)  # type: ignore[arg-type]
    return plain, with_s1


def _read(path: Path) -> tuple[np.ndarray, rasterio.Affine, float | None]:
    with rasterio.open(path) as src:
        return src.read(1), src.transform, src.nodata


def test_s2_part_is_the_archive_without_s1(pair) -> None:
    plain, with_s1 = pair
    man_plain, man = read_manifest(plain), read_manifest(with_s1)
    assert man_plain["scenes"] == man["scenes"]
    assert man_plain["faults"][0]["item"] == man["faults"][0]["item"]  # faults only on S2 assets, same draws
    assert "s1_scenes" not in man_plain and "s1" not in man_plain["config"]
    for scene in man_plain["scenes"]:
        for f in sorted((plain / scene["id"]).glob("*.tif")):
            assert f.read_bytes() == (with_s1 / scene["id"] / f.name).read_bytes()


def test_items_are_shaped_like_planetary_computer_rtc(pair) -> None:
    _, root = pair
    man = read_manifest(root)
    sites = {s["index"]: s for s in man["sites"]}
    iw = [s for s in man["s1_scenes"] if s["mode"] == "IW"]
    assert len(iw) == 2 * 2  # one site x 2 dates x 2 slices
    for rec in iw:
        item = json.loads((root / rec["dir"] / f"{rec['id']}.json").read_text())
        p = item["properties"]
        assert item["collection"] == COLLECTION and item["id"].endswith("_rtc")
        assert p["sar:instrument_mode"] == "IW" and p["sar:polarizations"] == ["VV", "VH"]
        assert p["sar:product_type"] == "GRD" and p["sar:looks_equivalent_number"] == 4.4  # as the PC items
        assert p["sat:orbit_state"] in ("ascending", "descending") and 1 <= p["sat:relative_orbit"] <= 175
        assert p["platform"] in ("SENTINEL-1A", "SENTINEL-1B") and p["proj:epsg"] == sites[rec["site"]]["epsg"]
        assert set(item["assets"]) == {"vv", "vh"}
        assert item["assets"]["vv"]["raster:bands"][0]["nodata"] == NODATA
        s2 = dt.datetime.fromisoformat(rec["s2_datetime"].replace("Z", "+00:00"))
        assert abs(dt.datetime.fromisoformat(p["datetime"].replace("Z", "+00:00")) - s2) <= dt.timedelta(days=5)
        vv, transform, nodata = _read(root / rec["dir"] / "vv.tif")
        assert vv.dtype == np.float32 and nodata == NODATA and transform.a == 10.0
        assert list(vv.shape) == p["proj:shape"] and list(transform)[:6] == p["proj:transform"]
        assert (vv > 0).all()  # linear power, no nodata in a full pass
        assert -18 < float(np.median(10 * np.log10(vv))) < -4
    assert len({r["orbit_state"] for r in iw}) == 1  # one orbit state per site


def test_constant_iw_properties_equal_the_recorded_pc_item(pair) -> None:
    _, root = pair
    rec = next(r for r in read_manifest(root)["s1_scenes"] if r["mode"] == "IW")
    props = json.loads((root / rec["dir"] / f"{rec['id']}.json").read_text())["properties"]
    real = REAL_ITEM["properties"]
    for key in real:
        if key in ("sat:orbit_state", "sat:platform_international_designator"):
            assert key in props  # per pass
        else:
            assert props[key] == real[key], key
    prefix = REAL_ITEM["id"].split("_2019")[0]
    assert rec["id"].startswith(prefix.replace("S1A", rec["id"][:3])) and len(rec["id"]) == len(REAL_ITEM["id"])


def test_slices_overlap_with_equal_values_and_cover_the_tile(pair) -> None:
    _, root = pair
    man = read_manifest(root)
    site = man["sites"][0]
    first = [r for r in man["s1_scenes"] if r["site"] == 0 and r["s2_datetime"][:10] == "2021-09-14"]
    assert len(first) == 2
    by_row = sorted(first, key=lambda r: r["rows"][0])
    (a0, a1), (b0, b1) = by_row[0]["rows"], by_row[1]["rows"]
    assert a0 == 0 and b1 == man["config"]["scene_px"] and a1 - b0 == SLICE_OVERLAP
    top, t_top, _ = _read(root / by_row[0]["dir"] / "vh.tif")
    bottom, t_bot, _ = _read(root / by_row[1]["dir"] / "vh.tif")
    assert t_top.f == site["y0"] and t_bot.f == site["y0"] - 10 * b0
    np.testing.assert_array_equal(top[b0:], bottom[: a1 - b0])


def test_coherent_with_the_s2_scene(pair) -> None:
    """Water (SCL 6 of the S2 scene of the same site and date) is dark in VV; the rest is not."""
    _, root = pair
    man = read_manifest(root)
    checked = 0
    for rec in (r for r in man["s1_scenes"] if r["mode"] == "IW"):
        s2 = next(s for s in man["scenes"] if s["site"] == rec["site"] and s["datetime"][:10] == rec["s2_datetime"][:10])
        scl, _, _ = _read(root / s2["id"] / "scl.tif")
        water = np.repeat(np.repeat(scl == scl_codes.SCL_WATER, 2, axis=0), 2, axis=1)[rec["rows"][0]:rec["rows"][1]]
        land = np.repeat(np.repeat(np.isin(scl, (scl_codes.SCL_VEGETATION, scl_codes.SCL_NOT_VEGETATED)), 2, axis=0),
                         2, axis=1)[rec["rows"][0]:rec["rows"][1]]
        vv, _, _ = _read(root / rec["dir"] / "vv.tif")
        if water.sum() >= 50 and land.sum() >= 50:
            db = 10 * np.log10(vv)
            assert np.median(db[water]) < np.median(db[land]) - 4
            checked += 1
    assert checked >= 1, "no S1 slice with both water and land; change the seed"


def test_ew_site_has_hh_hv_at_40_m_only(pair) -> None:
    _, root = pair
    recs = [r for r in read_manifest(root)["s1_scenes"] if r["site"] == 1]
    assert recs and all(r["mode"] == "EW" and r["polarizations"] == ["HH", "HV"] for r in recs)
    item = json.loads((root / recs[0]["dir"] / f"{recs[0]['id']}.json").read_text())
    assert set(item["assets"]) == {"hh", "hv"} and item["properties"]["sar:instrument_mode"] == "EW"
    hh, transform, _ = _read(root / recs[0]["dir"] / "hh.tif")
    assert transform.a == 40.0 and hh.shape[1] == 120 // 4


def test_index_holds_both_collections(pair) -> None:
    _, root = pair
    table = pq.read_table(root / "catalog.parquet")
    colls = table.column("collection").to_pylist()
    man = read_manifest(root)
    assert colls.count(COLLECTION) == len(man["s1_scenes"]) and colls.count("sentinel-2-l2a") == len(man["scenes"])
    meta = json.loads(table.schema.metadata[b"stac-geoparquet"])
    assert set(meta["collections"]) == {"sentinel-2-l2a", COLLECTION}
    lines = (root / "items.ndjson").read_text().splitlines()
    hrefs = [a["href"] for line in lines for a in json.loads(line)["assets"].values()]
    assert all(Path(h).is_file() for h in hrefs if "sentinel-1" in h) and any("sentinel-1-rtc" in h for h in hrefs)


def test_bad_s1_arguments(tmp_path) -> None:
    with pytest.raises(ConfigError, match="needs s1=True"):
        make_archive(tmp_path / "a", s1_ew_sites=(0,), **ARGS)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="site indexes"):
        make_archive(tmp_path / "b", s1=True, s1_ew_sites=(5,), **ARGS)  # type: ignore[arg-type]
