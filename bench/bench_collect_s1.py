"""Collection with Sentinel-1 against without, on the local scene archive: time and bytes per location.

A ``seco synth`` scene archive with S1 RTC passes (``make_archive(..., s1=True)``: PC-style items, float32 linear
gamma0 COGs, two slices per pass) is collected twice per round into fresh stores, with and without ``--s1 rtc``,
the two interleaved round by round so that load changes hit both alike (the first round warms the page cache and
is not counted). Per location: wall time of ``seco collect`` (in-process, ``--workers 1``) and the bytes of the
finished store; S1 coverage of the S2 dates.

    .venv/bin/python -m bench.bench_collect_s1                  # the recorded run (docs/BENCHMARKS.md)
    .venv/bin/python -m bench.bench_collect_s1 --per-side 2 --rounds 2   # quick look
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import machine, table
from seco.cli import main as seco
from seco.store import open_store
from seco.store.migrate import disk_bytes
from seco.synth.archive import make_archive
from tests.integration.servers import archive_locations

DATES = ("2021-03-01", "2021-06-01", "2021-09-01")
P = 264


def collect(root: Path, locs: Path, out: Path, s1: bool) -> float:
    """Wall seconds of one ``seco collect`` into ``out``."""
    args = ["collect", "--locations", str(locs), "--catalog", str(root / "catalog.parquet"), "--out", str(out),
            "--patch-size", str(P), "--max-cloud", "none", "--max-patch-cloud", "0.9", "--max-nodata", "0.99",
            "--workers", "1", "--no-progress", *(("--s1", "rtc") if s1 else ())]
    t = time.perf_counter()
    if seco(args) != 0:
        raise SystemExit(f"seco collect failed: {' '.join(args)}")
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-side", type=int, default=3, help="locations per side of each site (default 3: 9)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up round")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_collect_s1_"))
    try:
        root = make_archive(tmp / "archive", seed=3, zones=(31,), dates=DATES, scene_px=1056, blocksize=256,
                            corrupt=0, missing=0, progress=False, edge_prob=0.0, s1=True)
        locs = archive_locations(root, tmp / "locations.parquet", per_side=a.per_side, patch_px=P)
        times: dict[bool, list[float]] = {False: [], True: []}
        sizes: dict[bool, float] = {}
        coverage = 0.0
        for r in range(a.rounds + 1):
            for s1 in (False, True) if r % 2 == 0 else (True, False):
                out = tmp / f"store-{int(s1)}-{r}.zarr"
                sec = collect(root, locs, out, s1)
                st = open_store(out)
                n = len(st)
                if r > 0:
                    times[s1].append(sec / n)
                sizes[s1] = disk_bytes(out) / n
                if s1:
                    coverage = st.s1.coverage()["fraction"] if st.s1 is not None else 0.0
                shutil.rmtree(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    best = {k: min(v) for k, v in times.items()}
    print(f"{machine()}; {n} locations x {len(DATES)} dates, {P} px, 12 L2A bands; best of {a.rounds} rounds, "
          "interleaved")
    print(table(["collect", "s / location", "time ratio", "MB / location", "bytes ratio", "S1 coverage"], [
        ("S2 only", best[False], 1.0, sizes[False] / 1e6, 1.0, "-"),
        ("S2 + `--s1 rtc`", best[True], best[True] / best[False], sizes[True] / 1e6, sizes[True] / sizes[False],
         f"{100 * coverage:.0f} %"),
    ]))


if __name__ == "__main__":
    main()
