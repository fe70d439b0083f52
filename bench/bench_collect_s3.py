"""What object stores and network faults cost ``seco collect``, measured side by side in one run.

On one synth archive and one locations file (``--per-side`` squared locations per site, 3 sites, 5 dates):

- *store target*: the same collection into a local folder and into ``s3://`` on moto (an S3-compatible
  server on 127.0.0.1, ``tests/integration/s3server.py``), with the journal in a local folder. Reported: wall
  time of each and the ratio, and the S3 requests per committed location by method (from moto's request
  log): the protocol's cost on any S3, whatever its latency. moto is not AWS: latencies differ, request
  counts do not.
- *faults*: the same collection through the fault-injecting HTTP server (``tests/integration/faulty_http.py``)
  without and with faults (seeded: 12 % of requests, at most 2 per item, 24 in all; 503 / reset / stall
  with a 1 s client timeout), GDAL's own retries off so seco's retry layer does the work: wall time of each,
  faults injected, reads named ``retried`` in the failures table; the two stores are checked equal.

    .venv/bin/python -m bench.bench_collect_s3                 # the recorded run (12 locations)
    .venv/bin/python -m bench.bench_collect_s3 --per-side 1    # quick look (3 locations)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from seco.cli import main
from seco.collect import patches
from seco.collect.journal import read_failures
from seco.store import open_store
from seco.synth.archive import write_index
from tests.integration.faulty_http import FaultPlan, run_faulty_server
from tests.integration.s3server import run_moto
from tests.integration.servers import archive_locations, make_test_archive

ARGS = ["--patch-size", "64", "--max-cloud", "60", "--no-progress", "--retries", "3", "--backoff", "0.05",
        "--backoff-max", "0.2", "--workers", "3"]
PLAN = FaultPlan(share=0.12, seed=7, per_group=2, max_faults=24, stall_s=2.0)


def _collect(locs: Path, catalog: Path, out: str, *extra: str) -> float:
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["collect", "--locations", str(locs), "--catalog", str(catalog), "--out", out, *ARGS, *extra])
    if rc != 0:
        raise SystemExit(f"collect into {out} exited {rc}")
    return time.perf_counter() - t0


def _same(a_path: str, b_path: str) -> int:
    a, b = open_store(a_path), open_store(b_path)
    assert a.keys() == b.keys()
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        assert a.meta(i) == b.meta(i)
    return len(a)


def main_(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-side", type=int, default=2, help="locations per site side (3 sites)")
    a = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="seco-bench-s3-"))
    try:
        archive = make_test_archive(base / "archive", scene_px=360)
        locs = archive_locations(archive, base / "loc.parquet", per_side=a.per_side, patch_px=64)
        catalog = archive / "catalog.parquet"

        local = str(base / "local.zarr")
        t_local = _collect(locs, catalog, local)
        n = len(open_store(local))
        with run_moto(base) as env:
            old = {k: os.environ.get(k) for k in env if k.startswith("AWS_")}
            os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
            try:
                log = base / "moto.log"
                before = log.stat().st_size
                url = f"s3://{env['BUCKET']}/bench/store.zarr"
                t_s3 = _collect(locs, catalog, url, "--journal", str(base / "journal"))
                with open(log, "rb") as fh:
                    fh.seek(before)
                    methods = Counter(re.findall(rb'"(GET|PUT|HEAD|POST|DELETE) /', fh.read()))
                assert _same(local, url) == n
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

        gdal_retry = patches.GDAL_ENV.get("GDAL_HTTP_MAX_RETRY")
        patches.GDAL_ENV["GDAL_HTTP_MAX_RETRY"] = "0"
        try:
            with run_faulty_server(base) as srv:
                clean_idx = write_index(archive, f"{srv.base}/~clean/archive", parquet="c.parquet", ndjson="c.ndjson")
                t_clean = _collect(locs, clean_idx, str(base / "clean.zarr"), "--timeout", "1")
                srv.set_plan(PLAN)
                faulty_idx = write_index(archive, f"{srv.base}/~faulty/archive", parquet="f.parquet",
                                         ndjson="f.ndjson")
                t_faulty = _collect(locs, faulty_idx, str(base / "faulty.zarr"), "--timeout", "1")
                injected = Counter(k for _, k in srv.faults)
        finally:
            if gdal_retry is not None:
                patches.GDAL_ENV["GDAL_HTTP_MAX_RETRY"] = gdal_retry
        _same(str(base / "clean.zarr"), str(base / "faulty.zarr"))
        retried = sum(r["kind"] == "retried" for r in read_failures(base / "faulty.zarr"))

        print(f"{n} locations committed x 5 dates, 64 px patches, 3 worker threads, load average "
              f"{os.getloadavg()[0]:.1f}")
        print("| measure | value |\n|---|---:|")
        print(f"| collect into a local folder | {t_local:.1f} s |")
        print(f"| collect into s3:// (moto on 127.0.0.1) | {t_s3:.1f} s ({t_s3 / t_local:.2f}x local) |")
        per = {m.decode(): c / max(n, 1) for m, c in sorted(methods.items())}
        print(f"| S3 requests per committed location (incl. store creation) | "
              f"{sum(per.values()):.1f} ({', '.join(f'{m} {v:.1f}' for m, v in per.items())}) |")
        print(f"| collect over HTTP, no faults | {t_clean:.1f} s |")
        print(f"| collect over HTTP with faults ({sum(injected.values())} injected: "
              f"{', '.join(f'{k} {v}' for k, v in sorted(injected.items()))}) | {t_faulty:.1f} s "
              f"({t_faulty / t_clean:.2f}x); {retried} reads named `retried`; store equal |")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main_()
