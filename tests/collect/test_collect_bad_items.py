"""Bad catalog input on the collection side: malformed stac-geoparquet rows (no datetime, no geometry,
unparsable fields), items with unknown asset keys, catalogs that mix collections.

Each is either a typed error before any work or a skip recorded in the failures table (which item, why),
and the search goes on: the store equals the one collected from the clean catalog.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seco.cli import main
from seco.collect.build import write_stac_geoparquet
from seco.collect.catalog import ParquetCatalog, SearchResult
from seco.collect.journal import read_failures
from seco.store import open_store
from seco.synth.archive import archive_items
from tests.integration.servers import archive_locations, make_test_archive

ARGS = ["--patch-size", "32", "--max-cloud", "60", "--no-progress", "--workers", "2", "--retries", "0"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return make_test_archive(tmp_path_factory.mktemp("bad") / "archive", scene_px=180)


@pytest.fixture(scope="module")
def locs(archive, tmp_path_factory) -> Path:
    """3 locations (one per site) with windows around the archive's 5 dates."""
    return archive_locations(archive, tmp_path_factory.mktemp("badloc") / "loc.parquet", per_side=1, patch_px=32)


def _null_row(table: pa.Table, i: int, new_id: str, column: str) -> pa.Table:
    """Row ``i`` of ``table`` under a new id with ``column`` set to null."""
    row = table.slice(i, 1)
    row = row.set_column(row.schema.get_field_index("id"), "id", pa.array([new_id], pa.string()))
    k = row.schema.get_field_index(column)
    return row.set_column(k, row.schema.field(k), pa.nulls(1, row.schema.field(k).type))


@pytest.fixture(scope="module")
def bad_catalog(archive, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The archive's items plus malformed copies; returns the file and {bad id: what is wrong}."""
    items = archive_items(archive, None)
    coll = json.loads((archive / "collection.json").read_text())
    base = items[0]
    unknown = copy.deepcopy(base)
    unknown["id"] = "bad-unknown-asset-keys"
    unknown["assets"] = {f"band_{i}": a for i, a in enumerate(base["assets"].values())}  # no Sentinel-2 names
    for a in unknown["assets"].values():
        a.pop("eo:bands", None)
    unparsable = copy.deepcopy(items[1])
    unparsable["id"] = "bad-proj-code"
    unparsable["properties"].pop("proj:epsg", None)
    unparsable["properties"]["proj:code"] = "EPSG:not-a-number"
    for a in unparsable["assets"].values():
        a.pop("proj:epsg", None)
    path = tmp_path_factory.mktemp("badcat") / "bad.parquet"
    write_stac_geoparquet([*items, unknown, unparsable], path, {coll["id"]: coll})
    t = pq.read_table(path)
    extra = [_null_row(t, 2, "bad-no-datetime", "datetime"), _null_row(t, 3, "bad-no-geometry", "geometry"),
             _null_row(t, 4, "bad-no-bbox", "bbox")]
    pq.write_table(pa.concat_tables([t, *extra]), path)
    return path, {"bad-unknown-asset-keys": "missing-asset", "bad-proj-code": "malformed-item",
                  "bad-no-datetime": "malformed-item", "bad-no-geometry": "malformed-item",
                  "bad-no-bbox": "malformed-item"}


def test_unlocatable_rows_are_listed_when_opening(bad_catalog):
    path, _ = bad_catalog
    cat = ParquetCatalog(path)
    got = {s.id: s.reason for s in cat.skipped}
    assert set(got) == {"bad-no-datetime", "bad-no-geometry", "bad-no-bbox"}
    assert "no datetime" in got["bad-no-datetime"] and "no geometry" in got["bad-no-geometry"]
    assert "no bbox" in got["bad-no-bbox"] and str(path) in got["bad-no-bbox"]
    assert cat.collections == ("sentinel-2-l2a",)


def test_a_row_that_does_not_parse_is_skipped_and_the_search_goes_on(bad_catalog):
    path, _ = bad_catalog
    cat = ParquetCatalog(path)
    t = pq.read_table(path, columns=["id", "bbox", "datetime"]).to_pylist()
    bad = next(r for r in t if r["id"] == "bad-proj-code")
    b = bad["bbox"]
    box = ((b["xmin"] + b["xmax"]) / 2, (b["ymin"] + b["ymax"]) / 2) * 2
    when = bad["datetime"]
    found = cat.search(box, when.replace(hour=0), when.replace(hour=23, minute=59))
    assert isinstance(found, SearchResult)
    assert [s.id for s in found.skipped] == ["bad-proj-code"]
    assert "ValueError" in found.skipped[0].reason and "not-a-number" in found.skipped[0].reason
    assert found and all(it.id != "bad-proj-code" for it in found)  # the good items of that day are there


def test_collect_skips_and_records_malformed_items(archive, locs, bad_catalog, tmp_path, capsys):
    path, bad = bad_catalog
    clean, dirty = tmp_path / "clean.zarr", tmp_path / "dirty.zarr"
    assert main(["collect", "--locations", str(locs), "--catalog", str(archive / "catalog.parquet"),
                 "--out", str(clean), *ARGS]) == 0
    capsys.readouterr()
    assert main(["collect", "--locations", str(locs), "--catalog", str(path), "--out", str(dirty), *ARGS]) == 0
    out = capsys.readouterr().out
    assert "3 malformed item(s) of the catalog skipped" in out

    a, b = open_store(clean), open_store(dirty)
    assert len(a) == len(b) > 0 and a.keys() == b.keys()
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        assert a.meta(i) == b.meta(i)

    rows = read_failures(dirty)
    by_item: dict[str, list[dict]] = {}
    for r in rows:
        by_item.setdefault(str(r["item_id"]), []).append(r)
    for iid, kind in bad.items():
        assert iid in by_item, f"{iid} not recorded"
        assert {r["kind"] for r in by_item[iid]} == {kind}, by_item[iid]
    for iid in ("bad-no-datetime", "bad-no-geometry", "bad-no-bbox"):  # found on opening: recorded once
        assert [(r["location_id"], r["date_index"]) for r in by_item[iid]] == [(-1, -1)]
    assert all(r["location_id"] >= 0 for r in by_item["bad-proj-code"])  # found by a search: where
    assert "B02" in by_item["bad-unknown-asset-keys"][0]["reason"]


def test_a_catalog_mixing_collections_needs_collection(archive, locs, tmp_path, capsys):
    items = archive_items(archive, None)
    coll = json.loads((archive / "collection.json").read_text())
    l1c = copy.deepcopy(items[:4])
    for it in l1c:
        it["id"] += "-l1c"
        it["collection"] = "sentinel-2-l1c"
    path = write_stac_geoparquet([*items, *l1c], tmp_path / "mixed.parquet",
                                 {coll["id"]: coll, "sentinel-2-l1c": {**coll, "id": "sentinel-2-l1c"}})
    args = ["collect", "--locations", str(locs), "--catalog", str(path), "--out", str(tmp_path / "s.zarr"), *ARGS]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "mixes collections (sentinel-2-l1c, sentinel-2-l2a)" in err and "--collection" in err
    assert not (tmp_path / "s.zarr").exists()  # refused before any work
    assert main([*args, "--collection", "sentinel-2-l2a"]) == 0
    assert {str(r["item_id"]) for r in read_failures(tmp_path / "s.zarr")}.isdisjoint(it["id"] for it in l1c)


def test_a_malformed_item_from_a_stac_api_is_skipped_and_the_search_goes_on(stac_api):
    from seco.collect.catalog import StacApiCatalog

    good = stac_api.items["s2"]
    bad = copy.deepcopy(good[0])
    bad["id"] = "bad-from-api"
    bad["properties"].pop("proj:epsg", None)
    bad["properties"]["proj:code"] = "EPSG:not-a-number"
    for a in bad["assets"].values():
        a.pop("proj:epsg", None)
    stac_api.items["s2"] = [*good, bad]
    cat = StacApiCatalog(stac_api.base, "s2", page_size=5)
    found = cat.search([-180, -90, 180, 90], "2019-01-01", "2023-01-01")
    assert isinstance(found, SearchResult)
    assert [s.id for s in found.skipped] == ["bad-from-api"] and "not-a-number" in found.skipped[0].reason
    assert sorted(it.id for it in found) == sorted(it["id"] for it in good)
