"""seco.collect.pipeline: scene choice, faults, retries, replacement, in-order exactly-once commits, resumption,
Dask, bad input.

Most tests run the real pipeline, store and sampler against a seeded in-process catalog and a stand-in
``read_patch`` that returns real :class:`~seco.collect.patches.Patch` objects (checked by the real
``patch_ok``), so every fault can be placed exactly; test_commands.py and tests/integration run the real
reader on a simulated COG archive.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seco.bands import L2A
from seco.collect.catalog import Catalog
from seco.collect.config import CollectConfig
from seco.collect.dates import DateWindows
from seco.collect.estimate import estimate
from seco.collect.journal import STATE_DIR, read_failures
from seco.collect.patches import Patch, PatchOutsideScene, TransientReadError
from seco.collect.pipeline import run_collect
from seco.collect.plan import plan_collect, remaining
from seco.collect.retry import RetryPolicy, is_transient, with_retries
from seco.collect.sampling import Locations, read_locations, run_sample, write_locations
from seco.collect.scene import SceneItem
from seco.errors import CatalogError, CollectError, ConfigError, ReadError, StoreError
from seco.store import open_store

P = 16  # patch side of the fake reads
END = "2024-06-01"


# ---------------------------------------------------------------------------------------------- fakes


def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


class FakeCatalog(Catalog):
    """Three scenes per search, inside the window, with seeded cloud cover; ids say where and when.

    ``fail_searches``: the first N searches raise an HTTP 503 (a transient fault); ``-1``: every search does.
    """

    def __init__(self, fail_searches: int = 0):
        self.collection, self.bands = "fake", L2A
        self.fail_searches = fail_searches
        self.searches = 0
        self._lock = threading.Lock()

    def search(self, bbox, start, end, max_cloud=None, limit=None) -> list[SceneItem]:
        with self._lock:
            self.searches += 1
            fail = self.fail_searches < 0 or self.searches <= self.fail_searches
        if fail:
            cause = ConnectionError("HTTP 503 Service Unavailable")
            raise CatalogError("search at fake failed (503)") from cause
        lon, lat = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
        out = []
        for k in range(3):
            when = start + (end - start) * (k + 1) / 4
            iid = f"S{k}_{lon:.5f}_{lat:.5f}_{when:%Y%m%d}"
            cloud = round(random.Random(_seed(iid)).uniform(0, 9), 2)
            if max_cloud is not None and cloud > max_cloud:
                continue
            assets = {b: f"fake://{iid}/{b}.tif" for b in (*L2A, "SCL")}
            out.append(SceneItem(id=iid, datetime=when, cloud_cover=cloud, bbox=(lon - 1, lat - 1, lon + 1, lat + 1),
                                 epsg=32631, assets=assets))
        return sorted(out, key=lambda it: (it.datetime, it.id))

    def __getstate__(self) -> dict[str, Any]:  # pickled to Dask workers: the counters stay here
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def fake_patch(item: SceneItem, lon: float, lat: float, size_px: int, bands, scl_class: int = 4) -> Patch:
    rng = np.random.default_rng(_seed(item.id, size_px))
    data = rng.integers(1, 5000, size=(len(bands), size_px, size_px)).astype(np.uint16)
    scl = np.full((size_px, size_px), scl_class, np.uint8)
    return Patch(data=data, bands=tuple(bands), scl=scl, crs=32631, transform=(10.0, 0, 500000.0, 0, -10.0, 5e6),
                 bbox=(500000.0, 5e6 - 10 * size_px, 500000.0 + 10 * size_px, 5e6), nodata_fraction=0.0,
                 item_id=item.id, datetime=item.datetime, lon=lon, lat=lat)


class FakeReader:
    """``read_patch`` stand-in. ``rules(item_id) -> None | behaviour``: ``corrupt``, ``missing``, ``outside``,
    ``cloudy``, ``boom`` (an unexpected exception) or ``flaky`` (TransientReadError on the first 2 tries)."""

    def __init__(self, rules=None, jitter_s: float = 0.0):
        self.rules = rules or (lambda iid: None)
        self.jitter_s = jitter_s
        self.calls: list[str] = []
        self._tries: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, item, lon, lat, size_px=264, bands=L2A, resolution=10, harmonize=True, gdal_env=None,
                 align=1) -> Patch:
        with self._lock:
            self.calls.append(item.id)
            self._tries[item.id] = self._tries.get(item.id, 0) + 1
            tries = self._tries[item.id]
        if self.jitter_s:
            time.sleep(random.uniform(0, self.jitter_s))  # completion order differs from submission order
        rule = self.rules(item.id)
        href = item.assets["B04"]
        if rule == "corrupt":
            raise ReadError(f"cannot read band B04 of item {item.id!r} from {href} (TIFFReadEncodedTile failed)")
        if rule == "missing":
            raise ReadError(f"cannot read band B04 of item {item.id!r} from {href} (No such file or directory)")
        if rule == "outside":
            raise PatchOutsideScene(f"patch not inside {item.id}")
        if rule == "boom":
            raise ZeroDivisionError("a bug in a reader")
        if rule == "flaky" and tries <= 2:
            raise TransientReadError(f"cannot read {href} (HTTP response code: 503)")
        return fake_patch(item, lon, lat, size_px, bands, scl_class=9 if rule == "cloudy" else 4)

    __getstate__ = FakeCatalog.__getstate__
    __setstate__ = FakeCatalog.__setstate__


@pytest.fixture(scope="module")
def locations(tmp_path_factory) -> Path:
    """6 seeded city locations with 3 date windows each (and a sampling config, so spares can be drawn)."""
    path = tmp_path_factory.mktemp("loc") / "loc.parquet"
    run_sample(path, 6, seed=5, end=END, n_dates=3)
    return path


def config(locations: Path, out: Path, **kw: Any) -> CollectConfig:
    base = dict(locations=str(locations), catalog="fake", out=str(out), patch_size=P, workers=3, progress=False,
                retries=3, backoff_s=0.001, backoff_max_s=0.01)
    return CollectConfig(**{**base, **kw})


def run(cfg: CollectConfig, reader: FakeReader | None = None, catalog: Catalog | None = None, **kw: Any):
    plan = plan_collect(cfg, catalog=catalog or FakeCatalog())
    return run_collect(plan, reader=reader or FakeReader(), share_catalog=True, **kw)


def store_arrays(path: Path) -> dict[str, Any]:
    """Everything a reader sees in a store, for equality checks."""
    s = open_store(path)
    return {
        "keys": list(s.keys()),
        "images": [s.read(i) for i in range(len(s))],
        "valid": s.valid_mask(),
        "meta": [s.meta(i) for i in range(len(s))],
        "hist": s.histogram(),
    }


def assert_same_store(a: Path, b: Path) -> None:
    x, y = store_arrays(a), store_arrays(b)
    assert x["keys"] == y["keys"]
    assert len(x["images"]) == len(y["images"])
    for i, j in zip(x["images"], y["images"], strict=True):
        np.testing.assert_array_equal(i, j)
    np.testing.assert_array_equal(x["valid"], y["valid"])
    assert x["meta"] == y["meta"]
    np.testing.assert_array_equal(x["hist"], y["hist"])


# ---------------------------------------------------------------------------------------------- retries


def test_transient_errors_are_recognised_through_wrappers():
    class APIError(Exception):
        status_code = 502

    wrapped = CatalogError("search failed")
    wrapped.__cause__ = APIError("bad gateway")
    assert is_transient(wrapped)
    assert is_transient(TimeoutError("read timed out"))
    assert is_transient(TransientReadError("x"))
    assert is_transient(ReadError("cannot read /vsicurl/http://h/a.tif (HTTP response code: 504)"))
    assert not is_transient(ReadError("cannot read a.tif (HTTP response code: 404)"))
    assert not is_transient(ReadError("TIFFReadEncodedTile() failed"))
    assert not is_transient(ValueError("bad value"))


def test_with_retries_backs_off_exponentially_then_gives_up():
    sleeps: list[float] = []
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("connection reset")
        return "ok"

    policy = RetryPolicy(retries=3, backoff_s=1.0, backoff_max_s=3.0)
    assert with_retries(flaky, policy, sleep=sleeps.append) == ("ok", 3)
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0

    def down():
        raise TimeoutError("timed out")

    sleeps.clear()
    with pytest.raises(Exception) as e:
        with_retries(down, policy, sleep=sleeps.append)
    assert e.value.attempts == 4 and e.value.transient and len(sleeps) == 3
    assert all(s <= 3.0 for s in sleeps)

    def broken():
        raise ReadError("corrupt")

    with pytest.raises(Exception) as e:
        with_retries(broken, policy, sleep=sleeps.append)
    assert e.value.attempts == 1 and not e.value.transient


# ---------------------------------------------------------------------------------------------- collect


def test_collects_every_location_in_order_with_the_recent_scene(locations, tmp_path):
    reader = FakeReader()
    summary = run(config(locations, tmp_path / "s.zarr"), reader)
    assert summary.complete and summary.committed == 6 and not summary.rejected
    s = open_store(tmp_path / "s.zarr")
    loc = read_locations(locations)
    assert s.keys() == [str(i) for i in loc.id]
    assert s.bands == L2A and s.num_dates == 3 and s.patch_size == P
    cat = FakeCatalog()
    for i in range(len(s)):
        meta = s.meta(i)
        for t, (start, end) in enumerate(loc.windows.for_location(i)):
            newest = cat.search((loc.lon[i], loc.lat[i]) * 2, start, end, max_cloud=10.0)[-1]
            assert meta[t]["item_id"] == newest.id  # the paper's policy: the most recent scene
            np.testing.assert_array_equal(s.read(i)[t], fake_patch(newest, 0, 0, P, L2A).data)
            assert meta[t]["cloud_fraction"] == 0.0 and meta[t]["crs"] == "EPSG:32631"
    assert len(reader.calls) == 6 * 3  # one read per date: nothing wasted
    assert (s.meta_array("clear_rule") == "scl").all() and "SCL on 100.0 %" in s.stats_method()  # from the SCL
    assert s.attrs["seco_collect"]["config"]["patch_size"] == P


def test_least_cloudy_policy_and_scene_cloud_limit(locations, tmp_path):
    run(config(locations, tmp_path / "s.zarr", policy="least-cloudy", max_cloud=5.0))
    s = open_store(tmp_path / "s.zarr")
    loc = read_locations(locations)
    cat = FakeCatalog()
    for t, (start, end) in enumerate(loc.windows.for_location(0)):
        items = cat.search((loc.lon[0], loc.lat[0]) * 2, start, end)
        ok = [it for it in items if it.cloud_cover <= 5.0]
        if ok:
            best = min(ok, key=lambda it: (it.cloud_cover, -it.datetime.timestamp()))
            assert s.meta(0)[t]["item_id"] == best.id


def test_faults_are_recorded_and_the_next_scene_is_tried(locations, tmp_path):
    # newest scene of every window is corrupt for location 0, missing for 1, outside for 2, flaky for 3,
    # raises an unexpected exception for 4; cloudy for 5 (a patch-level rejection)
    loc = read_locations(locations)
    tag = {f"{loc.lon[i]:.5f}_{loc.lat[i]:.5f}": r
           for i, r in enumerate(["corrupt", "missing", "outside", "flaky", "boom", "cloudy"])}

    def rules(iid: str) -> str | None:
        k, rest = iid.split("_", 1)
        return tag.get(rest.rsplit("_", 1)[0]) if k == "S2" else None

    reader = FakeReader(rules)
    summary = run(config(locations, tmp_path / "s.zarr", max_cloud=None), reader)
    assert summary.complete and not summary.rejected
    s = open_store(tmp_path / "s.zarr")
    for i in range(6):
        used = [m["item_id"] for m in s.meta(i)]
        expect = "S2" if i == 3 else "S1"  # the flaky one succeeds on its third try
        assert all(u.startswith(expect) for u in used), (i, used)
    rows = read_failures(tmp_path / "s.zarr")
    by_loc: dict[int, set[str]] = {}
    for r in rows:
        by_loc.setdefault(r["location_id"], set()).add(r["kind"])
    ids = [int(x) for x in loc.id]
    assert by_loc[ids[0]] == {"read"} and by_loc[ids[1]] == {"missing"} and by_loc[ids[2]] == {"outside"}
    assert by_loc[ids[4]] == {"error"} and by_loc[ids[5]] == {"patch"}
    assert by_loc[ids[3]] == {"retried"}  # the flaky reads came through: named, with their attempts
    flaky = [r for r in rows if r["kind"] == "retried"]
    assert len(flaky) == 3 and all(r["attempts"] == 3 and r["item_id"].startswith("S2") for r in flaky)
    assert all("succeeded at attempt 3" in r["reason"] for r in flaky)
    corrupt = [r for r in rows if r["kind"] == "read"]
    assert len(corrupt) == 3 and {r["date_index"] for r in corrupt} == {0, 1, 2}
    assert all(r["href"].endswith("/B04.tif") and r["item_id"].startswith("S2") for r in corrupt)
    assert all("cloud" in r["reason"] for r in rows if r["kind"] == "patch")
    assert summary.faults == {"read": 3, "missing": 3, "outside": 3, "error": 3, "patch": 3, "retried": 3}


def test_rejected_locations_are_replaced_by_spares_in_order(locations, tmp_path):
    loc = read_locations(locations)
    bad = {f"{loc.lon[i]:.5f}_{loc.lat[i]:.5f}" for i in (1, 4)}

    def rules(iid: str) -> str | None:  # every scene of date 1 of locations 1 and 4 is cloudy
        lonlat = iid.split("_", 1)[1].rsplit("_", 1)[0]
        return "cloudy" if lonlat in bad else None

    summary = run(config(locations, tmp_path / "s.zarr", max_cloud=None), FakeReader(rules))
    assert summary.complete and summary.committed == 6
    s = open_store(tmp_path / "s.zarr")
    assert s.keys() == ["0", "2", "3", "5", "6", "7"]  # the first two spares (ids 6, 7) take the places
    assert summary.replacements == [(1, 6), (4, 7)]
    assert [lid for lid, _ in summary.rejected] == [1, 4]
    assert all("date 0" in why and "patch 3" in why for _, why in summary.rejected)
    # the spares are the sampler's next locations: same seed, n + spares
    more = read_locations(locations).config
    assert more is not None
    from seco.collect.sampling import sample

    ref = sample(dataclasses.replace(more, n=8))
    assert s.meta(4)[0]["lon"] == pytest.approx(ref.lon[6]) and s.meta(5)[0]["lat"] == pytest.approx(ref.lat[7])
    journal = [json.loads(x) for x in (tmp_path / "s.zarr" / STATE_DIR / "journal.jsonl").read_text().splitlines()]
    assert [(j["id"], j["status"]) for j in journal] == [
        (0, "ok"), (1, "rejected"), (2, "ok"), (3, "ok"), (4, "rejected"), (5, "ok"), (6, "ok"), (7, "ok")]


def test_without_spares_rejected_locations_are_dropped_and_reported(locations, tmp_path):
    bad = read_locations(locations)

    def rules(iid: str) -> str | None:
        return "cloudy" if iid.split("_", 1)[1].startswith(f"{bad.lon[0]:.5f}_") else None

    summary = run(config(locations, tmp_path / "s.zarr", spares=0, max_cloud=None), FakeReader(rules))
    assert summary.committed == 5 and summary.exhausted and not summary.complete
    assert "ran out" in summary.describe()


def test_commit_order_does_not_depend_on_completion_order(locations, tmp_path):
    loc = read_locations(locations)
    bad = f"{loc.lon[2]:.5f}_{loc.lat[2]:.5f}"

    def rules(iid: str) -> str | None:
        return "cloudy" if bad in iid else ("corrupt" if iid.startswith("S2") and iid.endswith("01") else None)

    run(config(locations, tmp_path / "serial.zarr", workers=1, max_cloud=None), FakeReader(rules))
    run(config(locations, tmp_path / "threads.zarr", workers=6, max_cloud=None), FakeReader(rules, jitter_s=0.02))
    assert_same_store(tmp_path / "serial.zarr", tmp_path / "threads.zarr")
    a = read_failures(tmp_path / "serial.zarr")
    b = read_failures(tmp_path / "threads.zarr")
    assert a == b


def test_resume_gives_the_uninterrupted_store_and_rereads_nothing_decided(locations, tmp_path):
    loc = read_locations(locations)
    bad = f"{loc.lon[1]:.5f}_{loc.lat[1]:.5f}"

    def rules(iid: str) -> str | None:
        return "cloudy" if bad in iid else None

    run(config(locations, tmp_path / "full.zarr", max_cloud=None), FakeReader(rules))
    part = tmp_path / "part.zarr"
    first = run(config(locations, part, max_cloud=None), FakeReader(rules), stop_after=2)
    assert first.committed == 2 and open_store(part).keys() == ["0", "2"]
    assert remaining(plan_collect(config(locations, part, max_cloud=None), catalog=FakeCatalog())) == 4
    reader = FakeReader(rules)
    second = run(config(locations, part, max_cloud=None, workers=5), reader)  # other workers: allowed
    assert second.resumed_from == 2 and second.complete
    assert_same_store(tmp_path / "full.zarr", part)
    read_again = {c.split("_", 1)[1].rsplit("_", 1)[0] for c in reader.calls}
    assert bad not in read_again  # the journal's rejection is final: not searched or read again
    assert f"{loc.lon[0]:.5f}_{loc.lat[0]:.5f}" not in read_again
    third = run(config(locations, part, max_cloud=None), FakeReader(rules))
    assert third.committed == 6 and third.candidates == 0  # nothing left to do


def test_a_torn_journal_line_is_dropped(locations, tmp_path):
    out = tmp_path / "s.zarr"
    run(config(locations, out), stop_after=3)
    journal = out / STATE_DIR / "journal.jsonl"
    with open(journal, "a") as f:
        f.write('{"v": 1, "order": 3, "id": 3, "sta')  # a crash in the middle of a line
    run(config(locations, out))
    lines = journal.read_text().splitlines()
    assert all(json.loads(x) for x in lines) and len(lines) == 6
    run(config(locations, tmp_path / "full.zarr"))
    assert_same_store(tmp_path / "full.zarr", out)


def test_unreachable_catalog_stops_cleanly_and_a_rerun_continues(locations, tmp_path):
    out = tmp_path / "s.zarr"
    summary = run(config(locations, out, retries=1), catalog=FakeCatalog(fail_searches=-1))
    assert summary.stalled and "503" in summary.stalled and summary.committed == 0
    assert open_store(out).keys() == []
    summary = run(config(locations, out, retries=1), catalog=FakeCatalog(fail_searches=1))  # one retry is enough
    assert summary.complete
    run(config(locations, tmp_path / "full.zarr"))
    assert_same_store(tmp_path / "full.zarr", out)


def test_a_second_writer_is_refused(locations, tmp_path):
    from seco.collect.journal import _locked, lock_path

    out = tmp_path / "s.zarr"
    run(config(locations, out), stop_after=1)
    with _locked(lock_path(out)), pytest.raises(CollectError, match=f"another `seco collect` is writing to {out}"):
        run(config(locations, out))
    assert len(open_store(out)) == 1


# ---------------------------------------------------------------------------------------------- Dask


def test_dask_cluster_gives_the_same_store_as_threads(locations, tmp_path):
    distributed = pytest.importorskip("distributed")
    loc = read_locations(locations)
    bad = f"{loc.lon[3]:.5f}_{loc.lat[3]:.5f}"
    rules = _DaskRules(bad)
    run(config(locations, tmp_path / "threads.zarr", max_cloud=None), FakeReader(rules))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=False, protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        summary = run(config(locations, tmp_path / "dask.zarr", max_cloud=None, scheduler=cluster.scheduler_address),
                      FakeReader(rules, jitter_s=0.02))
    assert summary.complete and summary.replacements == [(int(loc.id[3]), 6)]
    assert_same_store(tmp_path / "threads.zarr", tmp_path / "dask.zarr")


@dataclasses.dataclass(frozen=True)
class _DaskRules:
    bad: str

    def __call__(self, iid: str) -> str | None:
        return "cloudy" if self.bad in iid else None


def test_unreachable_scheduler_is_a_clear_error(locations, tmp_path):
    pytest.importorskip("distributed")
    cfg = config(locations, tmp_path / "s.zarr", scheduler="tcp://127.0.0.1:9")
    with pytest.raises(CollectError, match="Dask scheduler"):
        run(cfg)


# ---------------------------------------------------------------------------------------------- bad input


def _write_custom(path: Path, lon, lat, start, end) -> Path:
    n = len(lon)
    start = np.array(start, dtype="datetime64[ms]").reshape(n, -1)
    end = np.array(end, dtype="datetime64[ms]").reshape(n, -1)
    none = np.full(n, None, dtype=object)
    return write_locations(Locations(id=np.arange(n), lon=np.array(lon, float), lat=np.array(lat, float), city=none,
                                     country=none.copy(), windows=DateWindows(start, start, end)), path)


def test_bad_windows_and_positions_are_refused_before_work(tmp_path):
    ok_start, ok_end = ["2024-01-01"], ["2024-01-10"]
    p = _write_custom(tmp_path / "a.parquet", [1.0], [2.0], ["2024-01-10"], ["2024-01-01"])
    with pytest.raises(ConfigError, match="starts .* after it ends"):
        plan_collect(config(p, tmp_path / "s.zarr"), catalog=FakeCatalog())
    p = _write_custom(tmp_path / "b.parquet", [1.0], [95.0], ok_start, ok_end)
    with pytest.raises(ConfigError, match="invalid position"):
        plan_collect(config(p, tmp_path / "s.zarr"), catalog=FakeCatalog())
    loc = Locations(id=np.arange(1), lon=np.ones(1), lat=np.ones(1), city=np.full(1, None, object),
                    country=np.full(1, None, object))
    write_locations(loc, tmp_path / "c.parquet")
    with pytest.raises(CollectError, match="no date windows"):
        plan_collect(config(tmp_path / "c.parquet", tmp_path / "s.zarr"), catalog=FakeCatalog())
    assert not (tmp_path / "s.zarr").exists()


def test_bad_options_are_refused():
    base = dict(locations="l.parquet", catalog="c", out="o")
    for kw, match in [({"max_cloud": 150}, "max-cloud"), ({"max_nodata": 2.0}, "max-nodata"),
                      ({"policy": "best"}, "policy"), ({"bands": "rgb"}, "bands"), ({"patch_size": 0}, "patch-size"),
                      ({"workers": 0}, "workers"), ({"retries": -1}, "retries"), ({"out": "s3://b/x"}, "local")]:
        with pytest.raises(ConfigError, match=match):
            CollectConfig(**{**base, **kw})


def test_output_that_is_not_a_collect_store_is_refused(locations, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a seco store"):
        plan_collect(config(locations, other), catalog=FakeCatalog())
    from seco.store import create_store

    create_store(tmp_path / "synth.zarr", "all", num_dates=3, patch_size=P).close()
    with pytest.raises(StoreError, match="not written by `seco collect`"):
        plan_collect(config(locations, tmp_path / "synth.zarr"), catalog=FakeCatalog())
    run(config(locations, tmp_path / "s.zarr"), stop_after=1)
    with pytest.raises(CollectError, match="other options .*patch_size"):
        plan_collect(config(locations, tmp_path / "s.zarr", patch_size=P * 2), catalog=FakeCatalog())
    assert (other / "notes.txt").read_text() == "mine"


def test_catalog_problems_are_typed_errors(locations, tmp_path, stac_api):
    with pytest.raises(CatalogError, match="cannot open the STAC API"):
        plan_collect(config(locations, tmp_path / "s.zarr", catalog="http://127.0.0.1:9/", retries=0))
    with pytest.raises(CatalogError, match="lacks assets"):
        plan_collect(config(locations, tmp_path / "s.zarr", catalog=stac_api.base, collection="rgb"))
    with pytest.raises(CatalogError, match="neither a preset"):
        plan_collect(config(locations, tmp_path / "s.zarr", catalog=str(tmp_path / "nope.parquet")))


def test_dry_run_estimate_counts_searches_requests_and_bytes(locations, tmp_path):
    plan = plan_collect(config(locations, tmp_path / "s.zarr", patch_size=264), catalog=FakeCatalog())
    e = estimate(plan, probe=False)
    assert (e.locations, e.dates, e.assets, e.searches) == (6, 3, 13, 18)
    # 264 px: 10 m bands span 264 px of a 1024 px tile -> (1 + 263/1024)^2 tiles; 13 assets x (header + rows)
    assert 18 * 13 * 2 < e.requests - e.searches < 18 * 13 * 3
    assert 18 * 13 * e.bytes_per_tile < e.bytes < 18 * 13 * 2 * e.bytes_per_tile
    assert "nothing was written" in e.describe() and not (tmp_path / "s.zarr").exists()
