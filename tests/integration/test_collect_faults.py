"""``seco collect`` through a real HTTP server on 127.0.0.1 that injects 503s, connection resets and stalls.

The server (tests/integration/faulty_http.py) serves a synth archive's COGs with real range semantics;
faults hit a seeded, bounded share of the requests (at most ``per_group`` per item, ``max_faults`` in all).
GDAL's own HTTP retries are turned off here (``GDAL_HTTP_MAX_RETRY=0``) so that every fault reaches seco's
retry layer, the one under test, which must recover and say so: the store equals the fault-free run's
(pixels, keys, metadata) and the failures table names every read that needed a retry. A server that stays
broken for one asset is given up on after ``--retries`` and recorded as ``transient``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seco.cli import main
from seco.collect import patches
from seco.collect.journal import read_failures
from seco.store import open_store
from seco.synth.archive import write_index
from tests.integration.faulty_http import FaultPlan, run_faulty_server
from tests.integration.servers import archive_locations, make_test_archive

pytestmark = pytest.mark.integration

RETRIES = 3
ARGS = ["--patch-size", "32", "--max-cloud", "60", "--no-progress", "--workers", "3", "--retries", str(RETRIES),
        "--backoff", "0.05", "--backoff-max", "0.2", "--timeout", "1"]
PLAN = FaultPlan(share=0.12, seed=3, per_group=2, max_faults=24, stall_s=2.0)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("faulty")
    archive = make_test_archive(base / "archive", scene_px=180)
    locs = archive_locations(archive, base / "loc.parquet", per_side=1, patch_px=32)
    with run_faulty_server(base) as srv:
        yield archive, locs, srv


def _index(archive: Path, srv, tag: str) -> Path:
    """An index whose hrefs are fresh URLs (``/~tag/...``): GDAL caches reads per URL within a process."""
    return write_index(archive, f"{srv.base}/~{tag}/archive", parquet=f"{tag}.parquet", ndjson=f"{tag}.ndjson")


@pytest.fixture
def no_gdal_retries(monkeypatch):
    monkeypatch.setitem(patches.GDAL_ENV, "GDAL_HTTP_MAX_RETRY", "0")


def _collect(locs: Path, index: Path, out: Path) -> int:
    return main(["collect", "--locations", str(locs), "--catalog", str(index), "--out", str(out), *ARGS])


def _same_store(a_path: Path, b_path: Path) -> int:
    a, b = open_store(a_path), open_store(b_path)
    assert a.keys() == b.keys()
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        assert a.meta(i) == b.meta(i)
    return len(a)


def _data_faults(store: Path) -> list[tuple]:
    """The archive's own faults (corrupt, missing assets) and the rejected dates, whatever the network did."""
    return sorted((r["location_id"], r["date_index"], str(r["item_id"]), r["kind"]) for r in read_failures(store)
                  if r["kind"] in ("read", "missing", "window", "outside", "patch"))


def test_collect_recovers_from_503_resets_and_stalls(served, tmp_path, no_gdal_retries):
    archive, locs, srv = served
    srv.set_plan(FaultPlan())
    assert _collect(locs, _index(archive, srv, "clean1"), tmp_path / "clean.zarr") == 0
    clean_requests = srv.requests
    assert not srv.faults and clean_requests > 0

    srv.set_plan(PLAN)
    assert _collect(locs, _index(archive, srv, "faulty"), tmp_path / "faulty.zarr") == 0
    injected = list(srv.faults)
    kinds = {k for _, k in injected}
    assert len(injected) >= 6 and kinds == {"503", "reset", "stall"}, injected  # the seed hits all three

    assert _same_store(tmp_path / "clean.zarr", tmp_path / "faulty.zarr") > 0
    assert _data_faults(tmp_path / "faulty.zarr") == _data_faults(tmp_path / "clean.zarr")
    rows = read_failures(tmp_path / "faulty.zarr")
    assert not [r for r in rows if r["kind"] in ("transient", "error")], "nothing may be given up"
    retried = [r for r in rows if r["kind"] == "retried"]
    assert retried and all(2 <= r["attempts"] <= RETRIES + 1 for r in retried)
    assert all(r["href"] and r["href"].startswith(srv.base) for r in retried)
    # every retry named is one of the injected faults, on the item it hit. Not every fault needs
    # a retry of seco's: libcurl silently re-sends a request whose reused keep-alive connection was reset,
    # and GDAL falls back to a GET when its first size probe fails; the store above shows none was lost
    faulted = {p.split("/")[1]: set() for p, _ in injected}  # archive/<item>/<band>.tif
    for p, k in injected:
        faulted[p.split("/")[1]].add(k)
    for r in retried:
        kinds_hit = faulted.get(str(r["item_id"]))
        assert kinds_hit, f"retry of {r['item_id']} without an injected fault"
        text = r["reason"].lower()
        said = {k for k, words in (("503", ("503",)), ("reset", ("reset",)), ("stall", ("timed out", "timeout")))
                if any(w in text for w in words)}
        if not said:  # GDAL loses the cause when the first request of a file fails: retried all the same
            assert "not recognized as being in a supported file format" in r["reason"], r["reason"]
        assert said <= kinds_hit, (r["reason"], kinds_hit)
    assert len(retried) >= 3 and len({k for r in retried for k in faulted[str(r["item_id"])]}) >= 2


def test_a_server_that_stays_broken_is_given_up_and_recorded(served, tmp_path, no_gdal_retries):
    archive, locs, srv = served
    srv.set_plan(FaultPlan())
    assert _collect(locs, _index(archive, srv, "clean2"), tmp_path / "clean.zarr") == 0
    s = open_store(tmp_path / "clean.zarr")
    item = s.meta(0)[0]["item_id"]  # the scene the clean run chose for location 0, date 0
    broken = f"archive/{item}/blue.tif"
    srv.set_plan(FaultPlan(always=frozenset({broken})))
    assert _collect(locs, _index(archive, srv, "broken"), tmp_path / "broken.zarr") == 0
    rows = [r for r in read_failures(tmp_path / "broken.zarr") if r["kind"] == "transient"]
    assert rows, "the broken asset must be recorded"
    assert {str(r["item_id"]) for r in rows} == {item}
    assert all(r["attempts"] == RETRIES + 1 and r["href"] == f"{srv.base}/~broken/{broken}" for r in rows)
    assert all("503" in r["reason"] for r in rows)
    b = open_store(tmp_path / "broken.zarr")
    assert item not in {m["item_id"] for i in range(len(b)) for m in b.meta(i) if m["valid"]}
