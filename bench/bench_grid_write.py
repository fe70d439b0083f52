"""Writing native-resolution stores: ``seco synth``, ``seco import`` and ``seco collect`` with ``--grid native``
against ``--grid 10m``, side by side in one run (the ratios hold on a busy machine).

For each producer, the same input is written to a 10 m store and to a native store in interleaved rounds
(best of ``--rounds``): wall time and disk MB per location; the synth and import pairs are checked equal through
``Store.read`` (collect pairs differ by design: the native windows are snapped to the 60 m grid). Inputs:

- synth: ``make_store`` (12 L2A bands, 5 dates, 264 px);
- import: the SeCo-like corpus of ``bench.bench_import`` (real Sentinel-2 L1C windows of the OSCD sample in
  ../shared/data, uint8 JPEG GeoTIFFs, native 10/20/60 m files), read in-process;
- collect: a ``seco.synth.archive`` COG archive (local files), 264 px patches, 2 reader threads; the native
  run reads windows snapped to the 60 m grid (``read_patch(align=6)``).

    .venv/bin/python -m bench.bench_grid_write                  # the recorded run (docs/BENCHMARKS.md)
    .venv/bin/python -m bench.bench_grid_write --synth 8 --import-locations 4 --rounds 1   # quick look
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seco.store import open_store

P = 264


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _same(a: Path, b: Path) -> int:
    sa, sb = open_store(a), open_store(b)
    assert sa.keys() == sb.keys() and len(sa) > 0, (len(sa), len(sb))
    assert set(sb.grid_factors.values()) == {1, 2, 6}, sb.grid_factors
    for i in range(len(sa)):
        if not np.array_equal(sa.read(i), sb.read(i)):
            raise AssertionError(f"location {i} of {b} differs from {a} through Store.read")
    return len(sa)


def _pair(name: str, write: Callable[[Path, str], None], work: Path, rounds: int, check: bool = True) -> dict:
    """Write 10 m and native stores ``rounds`` times, interleaved; best wall time of each; ``check``: the two
    stores must read back equal."""
    best = {"10m": float("inf"), "native": float("inf")}
    paths: dict[str, Path] = {}
    for r in range(rounds):
        for grid in (("10m", "native") if r % 2 == 0 else ("native", "10m")):
            out = work / f"{name}-{grid}-{r}.zarr"
            t0 = time.perf_counter()
            write(out, grid)
            best[grid] = min(best[grid], time.perf_counter() - t0)
            if grid in paths:
                shutil.rmtree(paths[grid], ignore_errors=True)
            paths[grid] = out
    n = _same(paths["10m"], paths["native"]) if check else len(open_store(paths["native"]))
    return {"name": name, "n": n, "wall": best,
            "mb": {g: _du(paths[g]) / n / 1e6 for g in paths}}


def writer_cpu(work: Path, src_path: Path, rounds: int) -> dict[str, float]:
    """CPU ms per appended location of the single store writer (its block check and per-array encode
    included), the same imagery appended to a 10 m and a native store, interleaved, best of ``rounds``."""
    from seco.store import StoreLayout, create_store

    src = open_store(src_path)
    n = len(src)
    items = []
    for i in range(n):
        metas = [None if not m["valid"] else {k: v for k, v in m.items() if k != "valid"} for m in src.meta(i)]
        items.append((src.key(i), src.read(i), src.valid_mask()[i], metas))
    best = {"10m": float("inf"), "native": float("inf")}
    for r in range(rounds):
        for grid in (("10m", "native") if r % 2 == 0 else ("native", "10m")):
            out = work / f"writer-{grid}-{r}.zarr"
            w = create_store(out, src.bands, src.num_dates, src.patch_size, layout=StoreLayout(grid=grid),
                             commit_every=16)
            t0 = time.process_time()
            for key, img, valid, metas in items:
                w.append(key, img, valid, metas)
            w.close()
            best[grid] = min(best[grid], (time.process_time() - t0) / n * 1000)
            shutil.rmtree(out, ignore_errors=True)
    return best


def _locations(archive: Path, out: Path, per_side: int) -> Path:
    """A per_side x per_side grid of 264 px patch centres inside each site of the archive, one window per date."""
    from tests.integration.servers import archive_locations

    return archive_locations(archive, out, per_side=per_side, patch_px=P)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth", type=int, default=24, help="synth locations (5 dates x 12 bands x 264 px)")
    ap.add_argument("--import-locations", type=int, default=12, help="SeCo-like corpus locations (needs OSCD)")
    ap.add_argument("--scene-px", type=int, default=1200, help="collect archive scene side (2 sites x 3 dates)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per producer (best is kept)")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_grid_write_"))
    rows = []
    try:
        print(f"native vs 10 m store writes; {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load "
              f"average {os.getloadavg()[0]:.1f} (shared machine); best of {a.rounds} interleaved rounds\n")
        from seco.synth import make_store

        rows.append(_pair("synth (make_store)", lambda out, grid: make_store(
            out, num_locations=a.synth, num_dates=5, patch_size=P, seed=0, progress=False, grid=grid), tmp, a.rounds))

        from bench.bench_import import OSCD, write_corpora

        if OSCD.is_dir() and a.import_locations > 0:
            from seco.imports import ImportConfig, run_import

            seco_root, _ = write_corpora(tmp / "corpora", a.import_locations, 0)
            rows.append(_pair("import seco (in-process)", lambda out, grid: run_import(ImportConfig(
                "seco", str(seco_root), str(out), workers=0, patch_size=P, progress=False, grid=grid)),
                tmp, a.rounds))
        else:
            print(f"(import skipped: no OSCD sample at {OSCD})")

        from seco.collect.config import CollectConfig
        from seco.collect.pipeline import collect
        from seco.synth.archive import make_archive

        arch = make_archive(tmp / "archive", seed=1, zones=(31, 32), dates=("2021-06-01", "2021-08-24", "2021-11-16"),
                            scene_px=a.scene_px, blocksize=512, corrupt=0, missing=0, progress=False,
                            cloud_probs=(1.0, 0.0, 0.0), edge_prob=0.0)
        locs = _locations(arch, tmp / "loc.parquet", per_side=max(1, a.scene_px * 10 // (P * 10 + 20)))
        rows.append(_pair("collect (local COGs, 2 threads)", lambda out, grid: collect(CollectConfig(
            locations=str(locs), catalog=str(arch / "catalog.parquet"), out=str(out), patch_size=P, max_cloud=None,
            workers=2, progress=False, grid=grid)), tmp, a.rounds, check=False))

        print("| producer | locations | 10 m: s | native: s | native / 10 m time | 10 m: MB/loc | native: MB/loc | "
              "disk ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            w, m = r["wall"], r["mb"]
            print(f"| {r['name']} | {r['n']} | {w['10m']:.2f} | {w['native']:.2f} | {w['native'] / w['10m']:.2f} | "
                  f"{m['10m']:.2f} | {m['native']:.2f} | {m['10m'] / m['native']:.2f} |")
        synth_src = tmp / "writer-src.zarr"
        make_store(synth_src, num_locations=min(a.synth, 16), num_dates=5, patch_size=P, seed=0, progress=False)
        wc = writer_cpu(tmp, synth_src, max(a.rounds, 3))
        print(f"\nsingle writer, CPU per appended location (12 bands x 5 dates x {P} px, synth imagery, commit every "
              f"16): 10 m {wc['10m']:.1f} ms, native {wc['native']:.1f} ms ({wc['native'] / wc['10m']:.2f}x)")
        print("\nsynth and import pairs read back equal through Store.read; collect pairs differ by design (the "
              "native run's windows are snapped to the 60 m grid, up to 30 m away)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
