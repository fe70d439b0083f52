"""Provider harmonisation rules on real (and faithfully reconstructed) STAC items; the double-offset bug end to end."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from seco.collect.build import write_stac_geoparquet
from seco.collect.catalog import ParquetCatalog
from seco.collect.patches import dn_shift, read_patch, shift_decision
from seco.collect.scene import SceneItem, scene_from_stac
from seco.errors import ReadError
from seco.radiometry.providers import (
    CDSE,
    EARTH_SEARCH,
    LOCAL,
    PLANETARY_COMPUTER,
    UNKNOWN,
    baseline_of,
    decide_shift,
    provider_of,
)
from seco.synth.archive import make_archive, read_manifest

ITEMS = Path(__file__).parent / "fixtures" / "items"

# file stem prefix -> (provider, collection, baseline, shift of every band, rule)
EXPECTED = {
    "earth-search_sentinel-2-l2a_S2A_39QTA_20230628_0_L2A": (
        EARTH_SEARCH, "sentinel-2-l2a", "05.09", 0, "earth-search-l2a:boa-offset-applied"),
    "earth-search_sentinel-2-l2a_S2B_20EPT_20250731_0_L2A": (
        EARTH_SEARCH, "sentinel-2-l2a", "05.11", 0, "earth-search-l2a:boa-offset-applied"),
    "earth-search_sentinel-2-l2a_S2B_33UXP_20210305_0_L2A": (
        EARTH_SEARCH, "sentinel-2-l2a", "02.14", 0, "earth-search-l2a:baseline<04.00"),
    "earth-search_sentinel-2-c1-l2a_S2A_T33TWL_20250109T100401_L2A": (
        EARTH_SEARCH, "sentinel-2-c1-l2a", "05.11", -1000, "earth-search-c1-l2a:raster-offset"),
    "earth-search_sentinel-2-l1c_S2A_31UFU_20230701_0_L1C": (
        EARTH_SEARCH, "sentinel-2-l1c", "05.09", -1000, "earth-search-l1c:raster-offset"),
    "planetary-computer_sentinel-2-l2a_S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531": (
        PLANETARY_COMPUTER, "sentinel-2-l2a", "02.12", 0, "planetary-computer-l2a:baseline<04.00"),
    "planetary-computer_sentinel-2-l2a_S2B_MSIL2A_20230615T212529_R043_T06VVN_20230616T001742": (
        PLANETARY_COMPUTER, "sentinel-2-l2a", "05.09", -1000, "planetary-computer-l2a:baseline>=04.00"),
    "cdse_sentinel-2-l2a_S2C_MSIL2A_20250330T100051_N0511_R122_T33UWP_20250330T145914": (
        CDSE, "sentinel-2-l2a", "05.11", -1000, "cdse:raster-offset"),
}


def load(stem: str) -> dict:
    return json.loads((ITEMS / f"{stem}.json").read_text())


def test_every_fixture_is_covered_and_documented():
    stems = {p.stem for p in ITEMS.glob("*.json")}
    assert stems == set(EXPECTED)
    readme = (ITEMS / "README.md").read_text()
    assert all(f"`{s}.json`" in readme for s in stems)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_rule_per_real_item(stem):
    provider, collection, baseline, shift, rule = EXPECTED[stem]
    it = scene_from_stac(load(stem))
    assert (it.provider, it.collection, it.processing_baseline) == (provider, collection, baseline)
    assert it.bands, "no band mapped"
    for band in it.bands:
        d = shift_decision(it, band)
        assert (d.shift, d.rule, d.warning) == (shift, rule, None), band


def test_the_issue_item_is_not_shifted_twice():
    """Issue 7: S2B_20EPT_20250731_0_L2A (05.11) got -1000 on B02, B04 and B12 from raster:bands."""
    raw = load("earth-search_sentinel-2-l2a_S2B_20EPT_20250731_0_L2A")
    assert raw["properties"]["earthsearch:boa_offset_applied"] is True
    assert raw["assets"]["blue"]["raster:bands"][0]["offset"] == -0.1
    it = scene_from_stac(raw)
    assert it.offsets["B02"] == -0.1  # the metadata is still read...
    assert [dn_shift(it, b) for b in ("B02", "B04", "B12")] == [0, 0, 0]  # ...but the flag decides


def test_earth_search_flag_false_means_offset_in_the_dn():
    raw = load("earth-search_sentinel-2-l2a_S2A_39QTA_20230628_0_L2A")
    raw["properties"]["earthsearch:boa_offset_applied"] = False
    d = shift_decision(scene_from_stac(raw), "B04")
    assert (d.shift, d.rule) == (-1000, "earth-search-l2a:boa-offset-not-applied")
    # the former name of the flag is read too
    del raw["properties"]["earthsearch:boa_offset_applied"]
    raw["properties"]["sentinel:boa_offset_applied"] = True
    assert dn_shift(scene_from_stac(raw), "B04") == 0


def test_earth_search_without_flag_is_flagged():
    raw = load("earth-search_sentinel-2-l2a_S2A_39QTA_20230628_0_L2A")
    del raw["properties"]["earthsearch:boa_offset_applied"]
    d = shift_decision(scene_from_stac(raw), "B02")
    assert d.shift == -1000 and d.rule == "earth-search-l2a:no-flag:raster-offset" and "boa_offset_applied" in d.warning


def test_parquet_round_trip_keeps_the_provider(tmp_path):
    """Links survive stac-geoparquet, so a local copy of Earth Search items keeps Earth Search's rules."""
    items = [load(s) for s in EXPECTED if s.startswith("earth-search_sentinel-2-l2a")]
    write_stac_geoparquet(items, tmp_path / "c.parquet")
    found = ParquetCatalog(tmp_path / "c.parquet").search([-180, -90, 180, 90], "2015-01-01", "2026-01-01")
    assert len(found) == 3 and {it.provider for it in found} == {EARTH_SEARCH}
    assert {it.id: dn_shift(it, "B02") for it in found} == {
        "S2A_39QTA_20230628_0_L2A": 0, "S2B_20EPT_20250731_0_L2A": 0, "S2B_33UXP_20210305_0_L2A": 0}


def test_provider_detection():
    assert provider_of([], ["/data/a/B02.tif", "C:\\x\\B03.tif"], {}) == LOCAL
    assert provider_of([], ["https://example.com/B02.tif"], {}) == UNKNOWN
    assert provider_of([], ["https://example.com/B02.tif"], {"earthsearch:payload_id": "x"}) == EARTH_SEARCH
    # stac-geoparquet gives every row every property column, None where the item had none
    assert provider_of([], ["/a/B02.tif"], {"earthsearch:boa_offset_applied": None}) == LOCAL
    assert provider_of([], ["s3://eodata/Sentinel-2/MSI/L2A/x.jp2"], {}) == CDSE
    assert provider_of(["https://planetarycomputer.microsoft.com/api/stac/v1"], ["/local/B02.tif"], {}) == \
        PLANETARY_COMPUTER
    assert baseline_of({"s2:product_uri": "S2B_MSIL2A_20210305T095029_N0214_R079_T33UXP_x.SAFE"}) == "02.14"
    assert baseline_of({"product:type": "S2MSI2A", "processing:version": "05.11"}) == "05.11"
    assert baseline_of({"processing:version": "1.2"}) is None  # not a Sentinel-2 product: not a baseline


def _decide(**kw):
    base = dict(item_id="x", band="B02", provider=LOCAL, collection="local", processing_baseline=None,
                boa_offset_applied=None, offset=None, scale=None, datetime=dt.datetime(2023, 1, 1, tzinfo=dt.UTC))
    return decide_shift(**{**base, **kw})


def test_generic_rules_and_warnings():
    assert _decide(offset=-0.1, scale=0.0001).rule == "local:raster-offset"
    d = _decide(processing_baseline="05.09")
    assert (d.shift, d.rule) == (-1000, "local:baseline>=04.00") and "seco store check" in d.warning
    assert _decide(processing_baseline="03.01") == decide_shift(
        item_id="y", band="B03", provider=LOCAL, collection=None, processing_baseline="03.01",
        boa_offset_applied=None, offset=None, scale=None)
    d = _decide()  # nothing known, acquired after 04.00 appeared: 0, flagged
    assert (d.shift, d.rule) == (0, "local:no-metadata") and d.warning
    d = _decide(datetime=dt.datetime(2018, 5, 1, tzinfo=dt.UTC))
    assert (d.shift, d.warning) == (0, None)
    d = _decide(provider=EARTH_SEARCH, collection="sentinel-2-c1-l2a", offset=-0.1, boa_offset_applied=True)
    assert d.shift == -1000 and "not harmonised" in d.warning
    d = _decide(provider=PLANETARY_COMPUTER, collection="sentinel-2-l2a", processing_baseline="05.00", offset=0.0)
    assert d.shift == -1000 and "disagrees" in d.warning


@pytest.mark.parametrize("kw, match", [
    (dict(offset=-0.1, scale=0.001), "scale 0.001"),
    (dict(offset=-0.10005, scale=0.0001), "whole number"),
    (dict(processing_baseline="v4"), "processing_baseline 'v4'"),
])
def test_bad_metadata_is_a_typed_error(kw, match):
    with pytest.raises(ReadError, match=match):
        _decide(**kw)


# ---------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def post04(tmp_path_factory) -> tuple[Path, dict]:
    root = make_archive(tmp_path_factory.mktemp("prov") / "a", seed=11, zones=(31,), dates=("2022-06-01",),
                        scene_px=264, blocksize=256, corrupt=0, missing=0, progress=False)
    m = read_manifest(root)
    scene = m["scenes"][0]
    assert scene["dn_offset"] == 1000
    return root, scene | {"site": m["sites"][scene["site"]]}


def _as_earth_search(root: Path, scene: dict, flag: bool) -> SceneItem:
    """The real Earth Search item's metadata in front of the synthetic COGs of one post-04.00 scene."""
    raw = load("earth-search_sentinel-2-l2a_S2A_39QTA_20230628_0_L2A")
    raw["properties"]["earthsearch:boa_offset_applied"] = flag
    raw["assets"] = {k: {**a, "href": str(root / scene["id"] / f"{k}.tif")}
                     for k, a in raw["assets"].items() if (root / scene["id"] / f"{k}.tif").exists()}
    return scene_from_stac(raw)


def test_read_patch_applies_the_flag(post04):
    root, scene = post04
    lon, lat = scene["site"]["lon"], scene["site"]["lat"]
    applied, not_applied = _as_earth_search(root, scene, True), _as_earth_search(root, scene, False)
    assert applied.provider == EARTH_SEARCH and len(applied.bands) == 12
    raw = read_patch(applied, lon, lat, 64, harmonize=False)
    p = read_patch(applied, lon, lat, 64)
    np.testing.assert_array_equal(p.data, raw.data)  # offset already applied: DN untouched
    assert p.dn_shift == (0,) * 12 and set(p.dn_rule) == {"earth-search-l2a:boa-offset-applied"} and not p.warnings
    q = read_patch(not_applied, lon, lat, 64)
    valid = raw.data > 1000
    np.testing.assert_array_equal(q.data[valid].astype(int), raw.data[valid].astype(int) - 1000)
    assert q.dn_shift == (-1000,) * 12
    # the bug's behaviour, for the record: trusting raster:bands would have shifted the flagged scene as well
    assert dataclasses.replace(applied, provider=None).offsets["B02"] == -0.1
    assert dn_shift(dataclasses.replace(applied, provider=None), "B02") == -1000


def test_mixed_providers_and_collections_in_one_catalog(tmp_path):
    """One stac-geoparquet holding every fixture: each item keeps its own provider's rule."""
    write_stac_geoparquet([load(s) for s in EXPECTED], tmp_path / "m.parquet")
    found = ParquetCatalog(tmp_path / "m.parquet").search([-180, -90, 180, 90], "2015-01-01", "2026-01-01")
    assert len(found) == len(EXPECTED)
    want = {load(s)["id"]: (v[0], v[3], v[4]) for s, v in EXPECTED.items()}
    for it in found:
        provider, shift, rule = want[it.id]
        assert it.provider == provider
        assert {(shift_decision(it, b).shift, shift_decision(it, b).rule) for b in it.bands} == {(shift, rule)}
