"""STAC API backend against a loopback STAC API, and SAS signing against a loopback token endpoint."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from seco.collect.catalog import PRESETS, SasSigner, StacApiCatalog, open_catalog
from seco.errors import CatalogError, ConfigError
from tests.collect.conftest import brute_force, random_queries


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_search_matches_brute_force_across_pages(stac_api, method):
    cat = StacApiCatalog(stac_api.base, "s2", ("B02", "B03", "B04"), method=method, page_size=3)
    items = stac_api.items["s2"]
    nonempty = 0
    everything = ([-180, -90, 180, 90], dt.datetime(2019, 1, 1, tzinfo=dt.UTC), dt.datetime(2023, 1, 1, tzinfo=dt.UTC), None)
    for bbox, t0, t1, cloud in [*random_queries(12, seed=9), everything]:
        got = cat.search(bbox, t0, t1, max_cloud=cloud)
        assert sorted(it.id for it in got) == brute_force(items, bbox, t0, t1, cloud)
        assert [it.datetime for it in got] == sorted(it.datetime for it in got)
        nonempty += bool(got)
    assert nonempty >= 2
    searches = [p for m, path, p in stac_api.log if path == "/search"]
    assert all(m == method for m, path, _ in stac_api.log if path == "/search")
    assert any("token" in p for p in searches)  # pagination was exercised
    assert any(p.get("query") == {"eo:cloud_cover": {"lte": 10.0}} for p in searches)


def test_items_are_mapped_to_canonical_bands(stac_api):
    cat = open_catalog(stac_api.base, "s2", bands="l2a,SCL")
    it = cat.search([-180, -90, 180, 90], "2019-01-01", "2023-01-01", limit=5)[0]
    src = next(d for d in stac_api.items["s2"] if d["id"] == it.id)
    assert set(it.assets) == {"B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
                              "SCL"}
    assert it.assets["B8A"] == src["assets"]["nir08"]["href"]  # the COG, not the jp2 duplicate
    assert it.assets["B02"].endswith("/B02.tif")
    assert it.scales["B04"] == 0.0001 and it.offsets["B04"] == -0.1 and "SCL" not in it.offsets
    assert it.processing_baseline == "05.09" and it.collection == "s2"
    props = src["properties"]
    assert it.epsg == (props.get("proj:epsg") or int(props["proj:code"].split(":")[1]))
    assert it.cloud_cover == props["eo:cloud_cover"]
    assert it.datetime.tzinfo is not None


def test_limit(stac_api):
    cat = StacApiCatalog(stac_api.base, "s2", page_size=2)
    assert len(cat.search([-180, -90, 180, 90], "2019-01-01", "2023-01-01", limit=5)) == 5


def test_unknown_collection_lists_available(stac_api):
    with pytest.raises(CatalogError, match="'nope' not found.*bare, pc, rgb, s2"):
        open_catalog(stac_api.base, "nope")


def test_collection_without_needed_assets(stac_api):
    with pytest.raises(CatalogError, match="B01.*lacks|lacks assets for band"):
        open_catalog(stac_api.base, "rgb")
    open_catalog(stac_api.base, "rgb", bands="RGB")  # enough for an RGB-only collection


def test_collection_without_item_assets_checks_an_item(stac_api):
    cat = open_catalog(stac_api.base, "bare")
    assert cat.search([-180, -90, 180, 90], "2019-01-01", "2023-01-01")
    stac_api.items["bare"] = [dict(it, assets={"red": it["assets"]["red"]}) for it in stac_api.items["bare"]]
    with pytest.raises(CatalogError, match="lacks assets"):
        open_catalog(stac_api.base, "bare")


def test_unreachable_api_fails_before_work():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CatalogError, match="cannot open the STAC API"):
        open_catalog(f"http://127.0.0.1:{port}/v1", timeout=2)


def test_api_without_item_search(stac_api):
    stac_api.conforms = ["https://api.stacspec.org/v1.0.0/core"]
    with pytest.raises(CatalogError, match="item search"):
        open_catalog(stac_api.base, "s2")


def test_bad_queries_are_config_errors(stac_api):
    cat = open_catalog(stac_api.base, "s2")
    with pytest.raises(ConfigError, match="bbox"):
        cat.search([0, 10, 1], "2020-01-01", "2020-02-01")
    with pytest.raises(ConfigError, match="after end"):
        cat.search([0, 0, 1, 1], "2020-03-01", "2020-02-01")
    with pytest.raises(ConfigError, match="max_cloud"):
        cat.search([0, 0, 1, 1], "2020-01-01", "2020-02-01", max_cloud=150)


# ---------------------------------------------------------------------------------------------- signing


def test_planetary_computer_style_signing(stac_api):
    signer = SasSigner(token_url=f"{stac_api.base}/api/sas/v1/token")
    cat = open_catalog(stac_api.base, "pc", signer=signer)
    got = cat.search([-180, -90, 180, 90], "2019-01-01", "2023-01-01")
    assert len(got) == len(stac_api.items["pc"])
    containers = set()
    for it in got:
        for band, href in it.assets.items():
            base, _, token = href.partition("?")
            assert base.endswith(f"/{band}.tif") and ".blob.core.windows.net/" in base
            container = base.split("/")[3]
            containers.add((base.split("//")[1].split(".")[0], container))
            assert token.startswith("sv=2021") and token.endswith(f"-{container}")
    # one token request per storage container, then cached
    assert stac_api.token_calls == len(containers)
    assert {p for m, path, p in stac_api.log if path == "token"} == containers
    # re-signing replaces the old token instead of appending a second one
    again = cat.sign(got[0])
    assert all(h.count("?") == 1 for h in again.assets.values())


def test_signer_refreshes_expiring_tokens_and_skips_other_hosts(stac_api):
    stac_api.token_ttl_s = 30  # below the refresh margin: every call fetches a fresh token
    signer = SasSigner(token_url=f"{stac_api.base}/api/sas/v1/token/", refresh_s=60)
    href = "https://acct.blob.core.windows.net/cont/a/b.tif"
    s1, s2 = signer(href), signer(href)
    assert s1 != s2 and stac_api.token_calls == 2
    assert signer(s1).count("?") == 1
    assert signer("https://example.com/x.tif") == "https://example.com/x.tif"
    assert signer("/local/file.tif") == "/local/file.tif"
    assert stac_api.token_calls == 3


def test_signer_error_is_a_catalog_error(stac_api):
    stac_api.token_fail = True
    signer = SasSigner(token_url=f"{stac_api.base}/api/sas/v1/token")
    with pytest.raises(CatalogError, match="SAS token"):
        signer("https://acct.blob.core.windows.net/cont/x.tif")


def test_presets_are_checked_without_network():
    assert PRESETS["earth-search"].url == "https://earth-search.aws.element84.com/v1"
    assert set(PRESETS["earth-search"].collections) == {"sentinel-2-l2a", "sentinel-2-c1-l2a"}
    assert PRESETS["planetary-computer"].sas_signing
    with pytest.raises(ConfigError, match="sentinel-2-l2a"):
        open_catalog("planetary-computer", "landsat-c2-l2")
    with pytest.raises(CatalogError, match="neither a preset"):
        open_catalog("no-such-thing")
