"""bench/bench_decode.py runs on a tiny store (old layout vs new, integrity costs) and prints finite rates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_decode_bench_smoke(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.bench_decode", "--old-root", str(tmp_path / "no-old-checkout"),
           "--locations", "4", "--patch-size", "48", "--reads", "8", "--rounds", "1", "--workdir", str(tmp_path)]
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in r.stdout.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert {"new code, old store", "new code, new store", "first read, verify", "first read, no verify"} <= set(rows)
    assert float(rows["new code, new store"][0].split()[0]) > 0
    assert float(rows["first read, verify"][0]) > 0
    assert "no checkout of 510f953" in r.stdout and "verifying every read would add" in r.stdout
