"""Faults on Sentinel-1 reads behave as on Sentinel-2: S1 COGs served by the loopback server of
tests/integration/faulty_http.py (real range semantics) that injects 503s, resets and stalls; an S1 asset that
stays broken is given up after --retries and its date keeps its S2 (kind ``transient``, then ``s1-none``); a
corrupt S1 COG is recorded as ``read``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from seco.cli import main
from seco.collect import patches
from seco.collect.build import write_stac_geoparquet
from seco.collect.journal import read_failures
from seco.store import open_store
from seco.synth.archive import make_archive
from tests.collect.test_collect_s1 import _s1_item, _s2_items
from tests.integration.faulty_http import FaultPlan, run_faulty_server
from tests.integration.servers import archive_locations

pytestmark = pytest.mark.integration
P = 32
ARGS = ["--patch-size", str(P), "--max-cloud", "none", "--max-patch-cloud", "0.9", "--max-nodata", "0.99",
        "--no-progress", "--workers", "2", "--retries", "3", "--backoff", "0.05", "--backoff-max", "0.2",
        "--timeout", "1", "--s1", "rtc"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("s1faults")
    root = make_archive(base / "a", seed=2, zones=(31,), dates=("2021-06-01", "2021-08-24"), scene_px=264,
                        blocksize=256, corrupt=0, missing=0, progress=False, cloud_probs=(1.0, 0.0, 0.0),
                        edge_prob=0.0)
    locs = archive_locations(root, base / "loc.parquet", per_side=1, patch_px=P)
    (base / "s1").mkdir()
    items = []
    for k, s2 in enumerate(sorted(_s2_items(root), key=lambda it: it["properties"]["datetime"])):
        items.append(_s1_item(f"S1A_ASC_{k}", s2["properties"]["datetime"] - dt.timedelta(days=1),
                              s2["assets"]["red"]["href"], base / "s1", seed=10 + k))
    with run_faulty_server(base) as srv:
        yield root, locs, srv, items, base


def _index(served, tag: str) -> Path:
    root, _, srv, items, base = served
    out = []
    for it in items:
        it = {**it, "assets": {k: {**a, "href": f"{srv.base}/~{tag}/s1/{Path(a['href']).name}"}
                               for k, a in it["assets"].items()}}
        out.append(it)
    return write_stac_geoparquet(out, base / f"{tag}.parquet")


def _collect(served, tag: str, out: Path) -> int:
    root, locs, *_ = served
    return main(["collect", "--locations", str(locs), "--catalog", str(root / "catalog.parquet"), "--out",
                 str(out), "--s1-catalog", str(_index(served, tag)), *ARGS])


@pytest.fixture
def no_gdal_retries(monkeypatch):
    monkeypatch.setitem(patches.GDAL_ENV, "GDAL_HTTP_MAX_RETRY", "0")


def test_s1_reads_recover_from_faults(served, tmp_path, no_gdal_retries):
    srv = served[2]
    srv.set_plan(FaultPlan())
    assert _collect(served, "clean", tmp_path / "clean.zarr") == 0
    assert not srv.faults and srv.requests > 0
    srv.set_plan(FaultPlan(share=0.3, seed=5, per_group=3, max_faults=12, stall_s=2.0))
    assert _collect(served, "faulty", tmp_path / "faulty.zarr") == 0
    assert srv.faults, "no fault was injected; the plan changed"
    a, b = open_store(tmp_path / "clean.zarr"), open_store(tmp_path / "faulty.zarr")
    assert a.keys() == b.keys() and b.s1.valid_mask().all()
    for i in range(len(a)):
        np.testing.assert_array_equal(a.s1.read_raw(i), b.s1.read_raw(i))
        assert a.s1.meta(i) == b.s1.meta(i)
    # libcurl re-sends a request whose reused connection was reset, so not every fault reaches seco; a 503 does
    retried = [r for r in read_failures(tmp_path / "faulty.zarr") if r["kind"] == "retried"]
    assert all(str(r["item_id"]).startswith("S1A_ASC_") for r in retried)
    if any(kind == "503" for _, kind in srv.faults):
        assert retried and any("503" in r["reason"] for r in retried)


def test_a_broken_s1_asset_is_given_up_and_its_date_keeps_s2(served, tmp_path, no_gdal_retries):
    srv, items = served[2], served[3]
    broken = f"s1/{Path(items[0]['assets']['vv']['href']).name}"
    srv.set_plan(FaultPlan(always=frozenset({broken})))
    assert _collect(served, "broken", tmp_path / "b.zarr") == 0
    s = open_store(tmp_path / "b.zarr")
    np.testing.assert_array_equal(s.s1.valid_mask(), np.tile([False, True], (len(s), 1)))
    assert s.valid_mask().all()  # S2 kept
    rows = read_failures(tmp_path / "b.zarr")
    gave_up = [r for r in rows if r["kind"] == "transient"]
    assert gave_up and {r["item_id"] for r in gave_up} == {"S1A_ASC_0"} and all("503" in r["reason"] for r in gave_up)
    assert {(r["date_index"]) for r in rows if r["kind"] == "s1-none"} == {0}


def test_a_corrupt_s1_cog_is_recorded_as_read(served, tmp_path):
    srv, items, base = served[2], served[3], served[4]
    srv.set_plan(FaultPlan())
    src = Path(items[1]["assets"]["vh"]["href"])
    bad = base / "s1" / f"corrupt_{src.name}"
    bad.write_bytes(src.read_bytes()[:3000])  # truncated: header, no tiles
    root, locs, *_ = served
    it = {**items[1], "assets": {**items[1]["assets"], "vh": {**items[1]["assets"]["vh"], "href": str(bad)}}}
    index = write_stac_geoparquet([items[0], it], base / "corrupt.parquet")
    assert main(["collect", "--locations", str(locs), "--catalog", str(root / "catalog.parquet"), "--out",
                 str(tmp_path / "c.zarr"), "--s1-catalog", str(index), *ARGS]) == 0
    s = open_store(tmp_path / "c.zarr")
    np.testing.assert_array_equal(s.s1.valid_mask(), np.tile([True, False], (len(s), 1)))
    rows = [r for r in read_failures(tmp_path / "c.zarr") if r["kind"] == "read"]
    assert rows and {r["item_id"] for r in rows} == {"S1A_ASC_1"}
