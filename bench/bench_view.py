"""``seco store view`` on a synth store: wall time, peak memory and site size per viewed location.

    .venv/bin/python -m bench.bench_view [--locations 1024] [--patch 264] [--max-locations 200] [--workers 2]

Makes (once, kept in --work) a ``seco synth`` store, then runs ``seco store view`` on it three ways, each in a
fresh process so its peak RSS is its own: a first run, a rerun that finds every page (only the index is
written again), and a run with every location viewed (``--max-locations`` = all). Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import machine, table

PEAK = ("import resource, sys\nfrom seco.cli import main\nrc = main(sys.argv[1:])\n"
        "print('PEAK', max(resource.getrusage(r).ru_maxrss for r in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))\n"
        "sys.exit(rc)")


def run_view(store: Path, out: Path, max_locations: int, workers: int) -> tuple[float, float]:
    """(wall s, peak RSS MiB of the view process or its largest worker)."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", PEAK, "store", "view", str(store), "--out", str(out), "--no-progress",
                        "--max-locations", str(max_locations), "--workers", str(workers)],
                       capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    kib = int(next(x for x in p.stdout.splitlines() if x.startswith("PEAK")).split()[1])
    return wall, kib / 1024


def size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--locations", type=int, default=1024)
    ap.add_argument("--patch", type=int, default=264)
    ap.add_argument("--max-locations", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default="/tmp/seco-bench-view")
    a = ap.parse_args()
    work = Path(a.work)
    store = work / f"synth-{a.locations}-{a.patch}.zarr"
    if not store.is_dir():
        subprocess.run([sys.executable, "-m", "seco", "synth", "--out", str(store), "--locations", str(a.locations),
                        "--patch-size", str(a.patch), "--no-progress"], check=True)
    rows = []
    for name, out, n in (("first run", work / "view", a.max_locations), ("rerun (nothing missing)", work / "view",
                          a.max_locations), ("every location", work / "view-all", a.locations)):
        if name != "rerun (nothing missing)":
            shutil.rmtree(out, ignore_errors=True)
        wall, peak = run_view(store, out, n, a.workers)
        pages = len(list((out / "loc").glob("*.html")))
        rows.append([name, pages, f"{wall:.1f}", f"{peak:.0f}", f"{size(out) / 1e6:.1f}",
                     f"{size(out) / pages / 1e3:.0f}", f"{size(out / 'ql') / pages / 1e3:.0f}"])
    print(f"seco store view, {a.locations}-location synth store ({a.patch} px, 12 bands, 5 dates), "
          f"--workers {a.workers}; {machine()}")
    print(table(["run", "pages", "wall s", "peak RSS MiB (largest process)", "site MB", "kB per location",
                 "of which quicklooks kB"], rows))


if __name__ == "__main__":
    main()
