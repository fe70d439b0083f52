"""``seco collect --scheduler`` with relative paths, on a real ``dask scheduler`` + ``dask worker`` pair started
here on 127.0.0.1, each in a folder of its own: the locations, the catalog, the S1 catalog and the store are
given relative to the client's folder, which the workers never see. The store must equal the threaded run's."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from seco.cli import main
from seco.collect.build import write_stac_geoparquet
from seco.store import open_store
from seco.synth.archive import make_archive
from tests.collect.test_collect_s1 import _s1_item, _s2_items
from tests.integration.servers import _die_with_parent, archive_locations, free_port, stop, wait_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
P = 32


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    dask = Path(sys.executable).parent / "dask"
    if not dask.exists():
        pytest.skip(f"no dask command beside {sys.executable}")
    d = tmp_path_factory.mktemp("cluster")
    (d / "s").mkdir()
    (d / "w").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    port = free_port()
    log = d / "scheduler.log"
    with open(log, "w") as out:
        sched = subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], cwd=d / "s", env=env, stdout=out, stderr=out,
                                 preexec_fn=_die_with_parent)
    worker = None
    try:
        wait_port(port, sched, "dask scheduler", log)
        with open(d / "worker.log", "w") as out:
            worker = subprocess.Popen([str(dask), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "2",
                                       "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                      cwd=d / "w", env=env, stdout=out, stderr=out, preexec_fn=_die_with_parent)
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout="20s") as c:
            deadline = time.monotonic() + 60
            while not c.nthreads() and time.monotonic() < deadline:
                assert worker.poll() is None, (d / "worker.log").read_text()[-2000:]
                time.sleep(0.2)
            assert c.nthreads(), "the dask worker did not join within 60 s"
        yield f"tcp://127.0.0.1:{port}"
    finally:
        if worker is not None:
            stop(worker)
        stop(sched)


def test_relative_paths_on_a_real_cluster(cluster, tmp_path, monkeypatch) -> None:
    root = make_archive(tmp_path / "a", seed=2, zones=(31,), dates=("2021-06-01",), scene_px=264, blocksize=256,
                        corrupt=0, missing=0, progress=False, cloud_probs=(1.0, 0.0, 0.0), edge_prob=0.0)
    archive_locations(root, tmp_path / "loc.parquet", per_side=2, patch_px=P)
    (s2,) = _s2_items(root)
    (tmp_path / "s1").mkdir()
    s1 = [_s1_item("S1A_ASC", s2["properties"]["datetime"] - dt.timedelta(days=1), s2["assets"]["red"]["href"],
                   tmp_path / "s1", seed=1)]
    write_stac_geoparquet(s1, tmp_path / "s1.parquet")
    monkeypatch.chdir(tmp_path)  # the client's folder; the workers run in theirs
    common = ["collect", "--locations", "loc.parquet", "--catalog", "a/catalog.parquet", "--s1", "rtc",
              "--s1-catalog", "s1.parquet", "--patch-size", str(P), "--max-cloud", "none", "--max-patch-cloud",
              "0.9", "--max-nodata", "0.99", "--no-progress"]
    assert main([*common, "--out", "threads.zarr", "--workers", "2"]) == 0
    assert main([*common, "--out", "dask.zarr", "--scheduler", cluster]) == 0
    a, b = open_store(tmp_path / "threads.zarr"), open_store(tmp_path / "dask.zarr")
    assert len(a) == len(b) == 4 and a.keys() == b.keys()
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        np.testing.assert_array_equal(a.s1.read_raw(i), b.s1.read_raw(i))
        assert a.s1.meta(i) == b.s1.meta(i)
    assert b.s1.valid_mask().all()
