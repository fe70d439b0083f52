"""Patch read benchmark: windowed COG reads (``seco.collect.patches.read_patch``) against the naive approach.

Both read the same 264 x 264 px patches (12 L2A bands + SCL on the 10 m grid, harmonised) from a local
synth scene archive (``seco.synth.archive``), in the same run:

- *windowed*: ``read_patch`` -- only the COG tiles the window touches are read and decoded;
- *naive*: every band file read whole, then cropped and nearest-upsampled (what a script without windowed
  reads does). The two outputs are compared for equality on every patch.

    .venv/bin/python -m bench.bench_patches                       # scenes of 1098 and 2196 px, 30 patches each
    .venv/bin/python -m bench.bench_patches --scene-px 1098 --patches 10 --workers 2

Local files, warm page cache (the archive was just written), single process; record the machine's load next
to the numbers. The HTTP variant (nginx on loopback) lives elsewhere.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from seco.bands import BY_NAME, L2A
from seco.collect.catalog import ParquetCatalog
from seco.collect.patches import Patch, dn_shift, harmonize_dn, read_patch
from seco.collect.scene import SCL, SceneItem
from seco.synth.archive import make_archive, read_manifest

P = 264


def _locations(item: SceneItem, site: dict, scene_px: int, n: int, seed: int) -> list[tuple[float, float]]:
    """Random patch centres whose 264 px window lies inside the scene."""
    from rasterio.warp import transform

    rng = np.random.default_rng(seed)
    cols = rng.integers(0, scene_px - P, n) + P / 2
    rows = rng.integers(0, scene_px - P, n) + P / 2
    xs = site["x0"] + cols * 10.0
    ys = site["y0"] - rows * 10.0
    lons, lats = transform(f"EPSG:{site['epsg']}", "EPSG:4326", list(xs), list(ys))
    return list(zip(lons, lats, strict=True))


def naive_patch(item: SceneItem, ref: Patch) -> np.ndarray:
    """(C + 1, P, P): every band file read whole, cropped to ``ref``'s window and nearest-upsampled; SCL last."""
    import rasterio

    a, _, c, _, e, f = ref.transform
    out = np.empty((len(L2A) + 1, P, P), np.uint16)
    for i, band in enumerate((*L2A, SCL)):
        with rasterio.open(item.assets[band]) as src:
            whole = src.read(1)  # the whole file
            t = src.transform
        centres = np.arange(P) + 0.5
        cidx = np.floor((c + centres * a - t.c) / t.a).astype(np.int64)  # nearest source pixel per column
        ridx = np.floor((f + centres * e - t.f) / t.e).astype(np.int64)
        arr = whole[np.ix_(ridx, cidx)]
        out[i] = arr if band == SCL else harmonize_dn(arr, dn_shift(item, band))
    return out


def _run(fn, jobs: list, workers: int) -> float:
    t = time.perf_counter()
    if workers == 1:
        for j in jobs:
            fn(j)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fn, jobs))
    return time.perf_counter() - t


def bench_scene(scene_px: int, patches: int, workers: int, seed: int) -> list[tuple]:
    with tempfile.TemporaryDirectory(prefix="bench_patches_") as tmp:
        t = time.perf_counter()
        root = make_archive(Path(tmp) / "a", seed=seed, zones=(31,), dates=("2022-06-01",), scene_px=scene_px,
                            corrupt=0, missing=0, progress=False, cloud_probs=(1.0, 0.0, 0.0), edge_prob=0.0)
        t_make = time.perf_counter() - t
        m = read_manifest(root)
        (item,) = ParquetCatalog(root / "catalog.parquet").search([-180, -90, 180, 90], "2000-01-01", "2100-01-01")
        locs = _locations(item, m["sites"][0], scene_px, patches, seed)
        mb = sum(p.stat().st_size for p in (root / item.id).glob("*.tif")) / 1e6
        read_patch(item, *locs[0], P)  # warm-up: GDAL, PROJ
        refs = [read_patch(item, lon, lat, P) for lon, lat in locs]
        for ref in refs:  # same pixels both ways
            naive = naive_patch(item, ref)
            np.testing.assert_array_equal(naive[:-1], ref.data)
            np.testing.assert_array_equal(naive[-1], ref.scl)
        t_win = _run(lambda ll: read_patch(item, ll[0], ll[1], P), locs, workers)
        t_naive = _run(lambda ref: naive_patch(item, ref), refs, workers)
        whole_px = sum((scene_px * 10 // BY_NAME[b].resolution_m) ** 2 for b in L2A) + (scene_px // 2) ** 2
        return [
            (scene_px, f"{mb:.1f}", "windowed (read_patch)", workers, patches / t_win, 1000 * t_win / patches, 1.0,
             f"{t_make:.1f}"),
            (scene_px, f"{mb:.1f}", f"naive (whole files, {whole_px / 1e6:.1f} Mpx)", workers, patches / t_naive,
             1000 * t_naive / patches, t_naive / t_win, ""),
        ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scene-px", type=int, nargs="+", default=[1098, 2196], help="scene sizes (multiples of 6)")
    ap.add_argument("--patches", type=int, default=30, help="patches per method and scene size")
    ap.add_argument("--workers", type=int, default=1, help="threads reading patches")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"# patch read benchmark: {P} px, 12 L2A bands + SCL, harmonised; local COGs (ZSTD, 512 px tiles), "
          f"warm page cache")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| scene px | scene MB | method | threads | patches/s | ms/patch | naive / windowed | archive s |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for px in args.scene_px:
        for row in bench_scene(px, args.patches, args.workers, args.seed):
            s, mb, name, w, rate, ms, ratio, make = row
            print(f"| {s} | {mb} | {name} | {w} | {rate:.1f} | {ms:.0f} | {ratio:.1f}x | {make} |", flush=True)


if __name__ == "__main__":
    main()
