"""Collection over HTTP: windowed COG reads through nginx on loopback against downloading whole band files.

A synth scene archive (``seco.synth.archive``: ZSTD COGs with 512 px tiles and overviews, 12 L2A bands + SCL)
is served by nginx on 127.0.0.1 (tests/integration/servers.py); 264 px patches (all bands on the 10 m grid,
harmonised) are read at seeded random places, in the same run, by:

- *windowed HTTP*: ``read_patch`` on the http hrefs -- GDAL range requests for the header and the tiles the
  window touches (what ``seco collect`` does);
- *windowed local*: the same on the files (no HTTP), for reference;
- *naive HTTP*: every band file downloaded whole (one GET each), decoded, cropped and nearest-upsampled.
  Its output is checked equal to the windowed patch.

Bytes: nginx's ``$bytes_sent`` (headers included) of every request, against the compressed bytes of the
tiles each window touches (from the COG tile index, ``BLOCK_SIZE_x_y``). Memory: the RSS of this process
after 100 windowed patches and after all of them.

    .venv/bin/python -m bench.bench_collect                    # the recorded run: 4392 px scenes, 1000 patches
    .venv/bin/python -m bench.bench_collect --patches 200 --naive 5   # quick look

Single thread unless ``--workers``; warm page cache; record the machine's load next to the numbers.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seco.bands import L2A
from seco.collect.catalog import ParquetCatalog
from seco.collect.patches import Patch, dn_shift, harmonize_dn, read_patch
from seco.collect.scene import SCL, SceneItem
from seco.synth.archive import make_archive, read_manifest, write_index
from tests.integration.servers import readable_tmpdir, run_nginx

P = 264
ASSETS = (*L2A, SCL)


@dataclass(frozen=True)
class TileIndex:
    """The tile grid and compressed tile sizes of one COG (full resolution)."""

    transform: tuple[float, ...]
    block: tuple[int, int]  # (width, height)
    sizes: np.ndarray  # (tiles_y, tiles_x) bytes

    @classmethod
    def of(cls, path: Path) -> TileIndex:
        import rasterio

        with rasterio.open(path) as src:
            bw, bh = src.block_shapes[0][1], src.block_shapes[0][0]
            nx, ny = -(-src.width // bw), -(-src.height // bh)
            sizes = np.array([[int(src.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=1) or 0) for x in range(nx)]
                              for y in range(ny)], dtype=np.int64)
            return cls(tuple(src.transform)[:6], (bw, bh), sizes)

    def touched_bytes(self, patch: Patch) -> int:
        """Compressed bytes of the tiles holding the source pixels of ``patch`` (as read_patch samples them)."""
        a, _, c, _, e, f = patch.transform
        ta, _, tc, _, te, tf = self.transform
        centres = np.arange(P) + 0.5
        cols = np.floor((c + centres * a - tc) / ta).astype(np.int64)
        rows = np.floor((f + centres * e - tf) / te).astype(np.int64)
        bw, bh = self.block
        return int(self.sizes[rows.min() // bh: rows.max() // bh + 1, cols.min() // bw: cols.max() // bw + 1].sum())


def naive_http(item: SceneItem, ref: Patch, session) -> tuple[np.ndarray, int]:
    """(C + 1, P, P) from whole-file downloads, cropped to ``ref``'s window; and the bytes downloaded."""
    from rasterio.io import MemoryFile

    a, _, c, _, e, f = ref.transform
    out = np.empty((len(ASSETS), P, P), np.uint16)
    got = 0
    centres = np.arange(P) + 0.5
    for i, band in enumerate(ASSETS):
        r = session.get(item.assets[band], timeout=60)
        r.raise_for_status()
        got += len(r.content)
        with MemoryFile(r.content) as mem, mem.open() as src:
            whole = src.read(1)  # the whole band
            t = src.transform
        cols = np.floor((c + centres * a - t.c) / t.a).astype(np.int64)
        rows = np.floor((f + centres * e - t.f) / t.e).astype(np.int64)
        arr = whole[np.ix_(rows, cols)]
        out[i] = arr if band == SCL else harmonize_dn(arr, dn_shift(item, band))
    return out, got


def _places(sites: list[dict], scene_px: int, n: int, seed: int) -> list[tuple[int, float, float]]:
    """(scene index, lon, lat) of ``n`` random patch centres inside the scenes."""
    from rasterio.warp import transform

    rng = np.random.default_rng(seed)
    site = sites[0]
    cols = rng.integers(0, scene_px - P, n) + P / 2
    rows = rng.integers(0, scene_px - P, n) + P / 2
    lons, lats = transform(f"EPSG:{site['epsg']}", "EPSG:4326", list(site["x0"] + cols * 10.0),
                           list(site["y0"] - rows * 10.0))
    return [(int(k), lo, la) for k, lo, la in zip(rng.integers(0, 2, n), lons, lats, strict=True)]


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def run(scene_px: int, patches: int, naive: int, workers: int, seed: int) -> None:
    import requests

    base = readable_tmpdir("seco-bench-collect-")
    try:
        t = time.perf_counter()
        root = make_archive(base / "archive", seed=seed, zones=(31,), dates=("2022-06-01", "2022-08-24"),
                            scene_px=scene_px, corrupt=0, missing=0, progress=False, overviews=True,
                            cloud_probs=(1.0, 0.0, 0.0), edge_prob=0.0)
        t_make = time.perf_counter() - t
        local = ParquetCatalog(write_index(root, None, parquet="local.parquet", ndjson="local.ndjson"))
        loc_items = local.search([-180, -90, 180, 90], "2000-01-01", "2100-01-01")
        tiles = {(i, b): TileIndex.of(Path(it.assets[b])) for i, it in enumerate(loc_items) for b in ASSETS}
        scene_mb = sum(Path(loc_items[0].assets[b]).stat().st_size for b in ASSETS) / 2**20
        places = _places(read_manifest(root)["sites"], scene_px, patches, seed)

        with run_nginx(base) as web:
            http = ParquetCatalog(write_index(root, f"{web.base}/archive"))
            items = http.search([-180, -90, 180, 90], "2000-01-01", "2100-01-01")
            assert [i.id for i in items] == [i.id for i in loc_items]
            read_patch(items[0], places[0][1], places[0][2], P)  # warm-up: GDAL, PROJ, connections
            gc.collect()
            web.clear_log()

            # windowed over HTTP: throughput, bytes against the tiles touched, RSS after 100 and after all
            touched, rss, marks = 0, {}, {}
            t0 = time.perf_counter()

            def one(job: tuple[int, float, float]) -> int:
                k, lon, lat = job
                p = read_patch(items[k], lon, lat, P)
                return sum(tiles[(k, b)].touched_bytes(p) for b in ASSETS)

            if workers == 1:
                for n, job in enumerate(places, 1):
                    touched += one(job)
                    if n in (100, patches):
                        gc.collect()
                        rss[n], marks[n] = _rss_mib(), time.perf_counter() - t0
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(workers) as pool:
                    for n, tb in enumerate(pool.map(one, places), 1):
                        touched += tb
                        if n in (100, patches):
                            gc.collect()
                            rss[n], marks[n] = _rss_mib(), time.perf_counter() - t0
            t_http = time.perf_counter() - t0
            rows = web.log_rows()
            sent = sum(r[3] for r in rows)
            n_req = len(rows)

            # windowed, local files
            n_local = min(patches, 200)
            t0 = time.perf_counter()
            for k, lon, lat in places[:n_local]:
                read_patch(loc_items[k], lon, lat, P)
            t_local = time.perf_counter() - t0

            # naive over HTTP: whole files, checked equal to the windowed patches
            web.clear_log()
            session = requests.Session()
            t_naive, got = 0.0, 0
            for k, lon, lat in places[:naive]:
                ref = read_patch(loc_items[k], lon, lat, P)
                t0 = time.perf_counter()
                arr, b = naive_http(items[k], ref, session)
                t_naive += time.perf_counter() - t0
                got += b
                np.testing.assert_array_equal(arr[:-1], ref.data)
                np.testing.assert_array_equal(arr[-1], ref.scl)
            naive_sent = web.bytes_sent()

        win_rate, loc_rate, naive_rate = patches / t_http, n_local / t_local, naive / t_naive
        mib = 2**20
        print(f"# collect over HTTP: {P} px patches, 12 L2A bands + SCL, harmonised; scenes {scene_px} px "
              f"({scene_mb:.1f} MiB of COGs each, ZSTD, 512 px tiles, overviews); nginx on 127.0.0.1; "
              f"{workers} thread(s)")
        print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
              f"archive made in {t_make:.0f} s\n")
        print("| method | patches | patches/s | ms/patch | MiB sent/patch | requests/patch | vs windowed HTTP |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        print(f"| windowed, HTTP (read_patch) | {patches} | {win_rate:.2f} | {1000 / win_rate:.0f} | "
              f"{sent / patches / mib:.2f} | {n_req / patches:.1f} | 1.0x |")
        print(f"| windowed, local files | {n_local} | {loc_rate:.2f} | {1000 / loc_rate:.0f} | - | - | "
              f"{loc_rate / win_rate:.1f}x |")
        print(f"| naive, HTTP (whole files) | {naive} | {naive_rate:.2f} | {1000 / naive_rate:.0f} | "
              f"{naive_sent / naive / mib:.2f} | {len(ASSETS)} | {naive_rate / win_rate:.2f}x |")
        print()
        print("| measure | value | target |")
        print("|---|---:|---|")
        print(f"| speed-up of windowed over naive, HTTP | {win_rate / naive_rate:.1f}x | >= 5x |")
        print(f"| bytes sent / compressed bytes of the tiles touched | {sent / touched:.2f} | <= 1.5 |")
        print(f"| compressed tile bytes touched per patch | {touched / patches / mib:.2f} MiB | |")
        if 100 in rss and patches in rss:
            print(f"| RSS after 100 patches | {rss[100]:.0f} MiB | |")
            print(f"| RSS after {patches} patches | {rss[patches]:.0f} MiB "
                  f"({100 * (rss[patches] / rss[100] - 1):+.1f} %) | within 10 % |")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scene-px", type=int, default=4392, help="scene side in 10 m pixels (multiple of 6)")
    ap.add_argument("--patches", type=int, default=1000, help="windowed HTTP patches (RSS after 100 and after all)")
    ap.add_argument("--naive", type=int, default=10, help="naive patches (each downloads every band file)")
    ap.add_argument("--workers", type=int, default=1, help="threads for the windowed HTTP reads")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not 1 <= a.naive <= a.patches or a.patches > 5000:
        ap.error("need 1 <= --naive <= --patches <= 5000")
    run(a.scene_px, a.patches, a.naive, a.workers, a.seed)


if __name__ == "__main__":
    main()
