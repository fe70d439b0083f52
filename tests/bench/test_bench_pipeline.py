"""bench/bench_pipeline.py runs every stage end to end on a tiny store and prints finite rates."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pipeline_bench_smoke(tiny_store: Path, tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "bench.bench_pipeline", "--quiet", "--store", str(tiny_store), "--work", str(tmp_path),
        "--batch-size", "4", "--crop", "32", "--steps", "3", "--warm", "1", "--rounds", "1", "--decode-batches", "1",
        "--loader-batches", "1", "--workers", "1", "--threads", "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # the given 10 m store and its copy on the native grid, side by side
    assert "copied" in r.stdout and "_native.zarr" in r.stdout
    final = r.stdout.split("| stage | path | 10m samples/s | native samples/s | native / 10m | note |")[-1]
    rows = [line.split("|")[1:-1] for line in final.splitlines() if line.startswith("| ") and "---" not in line]
    stages = {row[0].strip() for row in rows}
    assert {"decode, 1 process", "loader, 1 workers", "copy + unpack + views", "step only", "end to end",
            "end to end / step only"} <= stages
    assert {row[1].strip() for row in rows if row[0].strip() == "decode, 1 process"} == {
        "read -> 10 m grid buffer", "read_packed -> ring slot"}
    for row in rows:
        if "n/a" not in row[1]:
            for rate in (float(row[2]), float(row[3])):
                assert math.isfinite(rate) and rate > 0, row
    assert "x step only" in final and "efficiency" in final
