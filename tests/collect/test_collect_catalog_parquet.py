"""Local stac-geoparquet backend (pyarrow only), asset mapping and scene choice."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seco.collect.build import write_stac_geoparquet
from seco.collect.catalog import ParquetCatalog, open_catalog
from seco.collect.scene import SceneItem, choose_scene, map_assets
from seco.errors import CatalogError, ConfigError
from tests.collect.conftest import brute_force, make_items, random_queries


@pytest.fixture(scope="module")
def items():
    return make_items(400, seed=21, style="earth-search", collection="s2") + make_items(
        50, seed=22, style="pc", collection="pc")


@pytest.fixture(scope="module")
def geoparquet(items, tmp_path_factory):
    return write_stac_geoparquet(items, tmp_path_factory.mktemp("cat") / "items.parquet",
                                 {"s2": {"id": "s2"}, "pc": {"id": "pc"}})


def test_file_is_stac_geoparquet(geoparquet):
    meta = pq.read_schema(geoparquet).metadata
    geo = json.loads(meta[b"geo"])
    assert geo["version"] == "1.1.0"
    col = geo["columns"]["geometry"]
    assert col["encoding"] == "WKB" and col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    sg = json.loads(meta[b"stac-geoparquet"])
    assert sg["version"] == "1.1.0" and set(sg["collections"]) == {"s2", "pc"}
    schema = pq.read_schema(geoparquet)
    assert schema.field("datetime").type == pa.timestamp("us", tz="UTC")
    assert schema.field("eo:cloud_cover").type == pa.float64()
    assert pa.types.is_struct(schema.field("bbox").type) and pa.types.is_struct(schema.field("assets").type)


def test_search_matches_brute_force(items, geoparquet):
    cat = open_catalog(geoparquet, "s2")
    s2 = [it for it in items if it["collection"] == "s2"]
    hits = 0
    for bbox, t0, t1, cloud in random_queries(40, seed=5):
        got = cat.search(bbox, t0, t1, max_cloud=cloud)
        assert sorted(it.id for it in got) == brute_force(s2, bbox, t0, t1, cloud), (bbox, t0, t1, cloud)
        hits += len(got)
    assert hits > 20
    every = ParquetCatalog(geoparquet)  # no collection filter: both collections
    t0, t1 = dt.datetime(2019, 1, 1, tzinfo=dt.UTC), dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    assert len(every.search([-180, -90, 180, 90], t0, t1)) == len(items)
    assert len(every.search([-180, -90, 180, 90], t0, t1, limit=7)) == 7


def test_antimeridian_items_are_found_from_both_sides(items, geoparquet):
    crossing = [it for it in items if it["collection"] == "s2" and it["bbox"][0] > it["bbox"][2]]
    assert crossing, "fixture should contain antimeridian-crossing items"
    it = crossing[0]
    s, n = it["bbox"][1], it["bbox"][3]
    cat = open_catalog(geoparquet, "s2")
    for box in ([179.9, s, 179.95, n], [-179.99, s, it["bbox"][2] - 0.001, n]):
        assert it["id"] in {x.id for x in cat.search(box, "2019-01-01", "2022-12-31")}


def test_legacy_list_bbox(items, geoparquet, tmp_path):
    t = pq.read_table(geoparquet)
    bb = t["bbox"].combine_chunks()
    as_list = pa.array([[r["xmin"], r["ymin"], r["xmax"], r["ymax"]] for r in bb.to_pylist()], pa.list_(pa.float64()))
    legacy = tmp_path / "legacy.parquet"
    pq.write_table(t.set_column(t.column_names.index("bbox"), "bbox", as_list), legacy)
    new, old = open_catalog(geoparquet, "s2"), open_catalog(legacy, "s2")
    for bbox, t0, t1, cloud in random_queries(10, seed=6):
        assert [x.id for x in old.search(bbox, t0, t1, cloud)] == [x.id for x in new.search(bbox, t0, t1, cloud)]


def test_scene_fields_from_parquet(items, geoparquet):
    cat = open_catalog(geoparquet, "pc")
    got = cat.search([-180, -90, 180, 90], "2019-01-01", "2022-12-31")
    assert len(got) == 50
    src = {it["id"]: it for it in items}
    for it in got:
        d = src[it.id]
        assert it.assets["B8A"] == d["assets"]["B8A"]["href"] and it.assets["SCL"] == d["assets"]["SCL"]["href"]
        assert "?" not in it.assets["B02"]  # local catalogs never sign
        assert it.bbox == tuple(d["bbox"]) and it.collection == "pc"
        p = d["properties"]
        assert it.epsg == (p.get("proj:epsg") or int(p["proj:code"].split(":")[1]))
        assert it.cloud_cover == p["eo:cloud_cover"]
        assert it.datetime == dt.datetime.fromisoformat(p["datetime"].replace("Z", "+00:00"))


def test_open_errors(geoparquet, tmp_path, items):
    with pytest.raises(CatalogError, match="neither a preset"):
        open_catalog(tmp_path / "missing.parquet")
    with pytest.raises(CatalogError, match="'l1c' not in"):
        open_catalog(geoparquet, "l1c")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "plain.parquet")
    with pytest.raises(CatalogError, match="not stac-geoparquet"):
        open_catalog(tmp_path / "plain.parquet")
    rgb = [dict(it, assets={k: it["assets"][k] for k in ("red", "green", "blue")}) for it in items[:5]]
    path = write_stac_geoparquet(rgb, tmp_path / "rgb.parquet")
    with pytest.raises(CatalogError, match="lacks assets for band.*B01"):
        open_catalog(path)
    assert open_catalog(path, bands="RGB").search([-180, -90, 180, 90], "2019-01-01", "2022-12-31")


# ---------------------------------------------------------------------------------------------- mapping


def test_map_assets_prefers_cogs_and_skips_visual():
    assets = {
        "red-jp2": {"href": "r.jp2"}, "red": {"href": "r.tif"}, "green-jp2": {"href": "g.jp2"},
        "visual": {"href": "tci.tif", "roles": ["visual"], "eo:bands": [{"name": "B04"}, {"name": "B02"}]},
        "AOT": {"href": "aot.tif"}, "B8A": {"href": "b8a.tif"}, "thumbnail": {"href": "t.png", "roles": ["thumbnail"]},
    }
    m = map_assets(assets)
    assert m == {"B04": ("red", 1), "B03": ("green-jp2", 1), "B8A": ("B8A", 1)}


def test_map_assets_multiband_file():
    assets = {"data": {"href": "stack.tif", "roles": ["data"],
                       "eo:bands": [{"name": "B02"}, {"name": "B03"}, {"common_name": "red"}, {"name": "B8A"}]}}
    assert map_assets(assets) == {"B02": ("data", 1), "B03": ("data", 2), "B04": ("data", 3), "B8A": ("data", 4)}


# ---------------------------------------------------------------------------------------------- choice


def scene(i: str, day: int, cloud: float | None, bands=("B02", "B03", "B04")) -> SceneItem:
    return SceneItem(id=i, datetime=dt.datetime(2021, 1, day, tzinfo=dt.UTC), cloud_cover=cloud,
                     bbox=(0, 0, 1, 1), epsg=32631, assets={b: f"{i}/{b}" for b in bands})


def test_choose_scene_policies():
    xs = [scene("a", 1, 2.0), scene("b", 5, 8.0), scene("c", 9, 30.0), scene("d", 7, None), scene("e", 3, 2.0)]
    assert choose_scene(xs, "recent").id == "b"  # c is too cloudy, d unknown
    assert choose_scene(xs, "least-cloudy").id == "e"  # tie on 2 % -> the later one
    assert choose_scene(xs, "recent", max_cloud=None).id == "c"
    assert choose_scene(xs, "recent", max_cloud=1.0) is None
    assert choose_scene([*xs, scene("f", 8, 0.0, bands=("B02",))], "recent", bands=["B02", "B04"]).id == "b"
    assert choose_scene([], "recent") is None
    with pytest.raises(ConfigError, match="policy"):
        choose_scene(xs, "best")
