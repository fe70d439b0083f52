"""``seco import`` benchmark: import rate, bytes per location, and the pre-training read rate of an imported store.

Corpora are written in the published layouts (docs/IMPORT.md) from **real Sentinel-2 L1C** imagery: 264 px
windows of the OSCD sample in ../shared/data (4 cities, native 10/20/60 m band files, EPSG:4326). A location is
one window; its dates alternate the two OSCD acquisitions (dates 3.. reuse them with the window shifted by 6 px
per date, so pixels differ). The SeCo-like corpus gets the SeCo downloader's treatment (reflectance clipped to
[0, 1], x 255, truncated to uint8, JPEG GeoTIFF); the SSL4EO-like one keeps uint16 DN (uncompressed GeoTIFF).

Measured, within one run so the ratios hold on a busy machine:

1. import rate (locations/s) by reader setting (in-process, N worker processes);
2. bytes per location: the corpus files, the imported store (uint16 DN, the default blosc-lz4 layout), and the
   alternative we did not choose: the same images kept as uint8 (reflectance x 255) with the same codec and
   chunking, encoded in memory;
3. read rate of what a pre-training sample reads (one location, 3 random dates, all bands): the store's reader,
   and the uint8 alternative (decode + 256-entry lookup to DN) against uint16 decoding of the same chunks;
4. the pre-training dataset (``PretrainDataset``, as the training loop builds it) fetching batches from the
   imported store, single process.

    .venv/bin/python -m bench.bench_import                     # the recorded run (docs/BENCHMARKS.md)
    .venv/bin/python -m bench.bench_import --locations 8 --reads 50 --workers 0,2   # quick look
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numcodecs
import numpy as np

from seco.bands import BY_NAME, L1C, L2A
from seco.imports import ImportConfig, run_import
from seco.imports.layouts import file_band_name
from seco.radiometry.corpora import seco_uint8_lut
from seco.store import open_store

OSCD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "oscd" / \
    "Onera Satellite Change Detection dataset - Images"
CITIES = ("bercy", "paris", "rennes", "montpellier")  # norcia is narrower than 264 px
P = 264


def _load(city: str, which: int) -> tuple[dict[str, np.ndarray], object]:
    import rasterio

    out, transform = {}, None
    for b in L1C:
        f = glob.glob(str(OSCD / city / f"imgs_{which}" / f"*_{b}.tif"))[0]
        with rasterio.open(f) as r:
            out[b] = r.read(1)
            if b == "B02":
                transform = r.transform
    return out, transform


def _windows(n: int, seed: int) -> list[tuple[str, int, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        city = CITIES[i % len(CITIES)]
        img, _ = _load(city, 1)
        h, w = img["B01"].shape  # the 60 m grid bounds every band's window
        r6 = int(rng.integers(0, max(1, h - P // 6 - 2)))
        c6 = int(rng.integers(0, max(1, w - P // 6 - 1)))
        out.append((city, r6 * 6, c6 * 6))
    return out


def write_corpora(root: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """Write a SeCo-like and an SSL4EO-S12-like corpus of ``n`` real-imagery locations under ``root``."""
    import rasterio
    from rasterio.transform import Affine

    cache = {(c, k): _load(c, k) for c in CITIES for k in (1, 2)}
    seco, ssl = root / "seco", root / "ssl4eo" / "s2c"
    t0 = datetime(2021, 9, 1, 10, 30, tzinfo=UTC)
    for i, (city, r0, c0) in enumerate(_windows(n, seed)):
        for corpus, T in ((seco, 5), (ssl, 4)):
            for d in range(T):
                bands, tr = cache[(city, 1 + d % 2)]
                shift = 6 * (d // 2)
                when = t0 - timedelta(weeks=12 * d)
                pid = f"{when:%Y%m%dT%H%M%S}_{when:%Y%m%dT%H%M%S}_T31UDQ"
                ddir = corpus / (f"{i:06d}" if corpus == seco else f"{i:07d}") / pid
                ddir.mkdir(parents=True)
                for b in (L2A if corpus == seco else L1C):
                    k = BY_NAME[b].resolution_m // 10
                    rr, cc = (r0 + shift) // k, c0 // k
                    a = bands[b][rr: rr + P // k, cc: cc + P // k]
                    if a.shape != (P // k, P // k):  # the shift ran off the image: take the unshifted window
                        a = bands[b][r0 // k: r0 // k + P // k, cc: cc + P // k]
                    t = tr @ Affine.translation(cc * k, rr * k) @ Affine.scale(k)  # type: ignore[operator]
                    prof = {"driver": "GTiff", "width": a.shape[1], "height": a.shape[0], "count": 1,
                            "crs": "EPSG:4326", "transform": t}
                    if corpus == seco:
                        v = (np.clip(a / 10000.0, 0, 1) * 255).astype(np.uint8)  # the downloader's truncation
                        prof.update(dtype="uint8", compress="JPEG")
                    else:
                        v = a.astype(np.uint16)
                        prof.update(dtype="uint16")
                    with rasterio.open(ddir / f"{file_band_name(b)}.tif", "w", **prof) as f:
                        f.write(v[None])
                meta = {"system:index": pid, "system:time_start": int(when.timestamp() * 1000),
                        "PROCESSING_BASELINE": "02.04"}
                (ddir / "metadata.json").write_text(json.dumps(meta))
    return seco, ssl.parent


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_import_rate(corpus: str, root: Path, out_dir: Path, workers: list[int], modality: str | None) -> list[dict]:
    rows = []
    for w in workers:
        out = out_dir / f"{corpus}-w{w}.zarr"
        p0, t0 = time.process_time(), time.perf_counter()
        rep = run_import(ImportConfig(corpus, str(root), str(out), modality=modality, workers=w, progress=False))
        wall = time.perf_counter() - t0
        # CPU time is only known for the in-process reader (pool workers are forkserver grandchildren)
        cpu = time.process_time() - p0 if w == 0 else None
        rows.append({"corpus": corpus, "workers": rep.workers, "locations": rep.imported, "wall_s": wall,
                     "loc_per_s": rep.imported / wall,
                     "loc_per_cpu_s": None if cpu is None else rep.imported / max(cpu, 1e-9), "store": out})
    return rows


def _noop(_: int) -> int:
    return 0


def pool_startup(workers: int) -> float:
    """Seconds to start a forkserver pool of ``workers`` and get one (empty) task back from each."""
    import concurrent.futures as cf
    import multiprocessing

    t0 = time.perf_counter()
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as ex:
        list(ex.map(_noop, range(workers)))
    return time.perf_counter() - t0


def _chunks(images: np.ndarray, codec: numcodecs.abc.Codec) -> list[bytes]:
    T, C = images.shape[:2]
    return [codec.encode(np.ascontiguousarray(images[t, c])) for t in range(T) for c in range(C)]


def bench_bytes_and_reads(store_path: Path, reads: int, seed: int) -> dict:
    """uint16 store vs the uint8 alternative: bytes per location and 3-date all-band read rates."""
    numcodecs.blosc.set_nthreads(1)
    s = open_store(store_path)
    lut = seco_uint8_lut()
    inv = np.full(10001, 255, dtype=np.uint8)  # DN -> the corpus' uint8 (exact for LUT outputs)
    inv[lut] = np.arange(256, dtype=np.uint8)
    from seco.store.shard import ShardLayout

    layout = ShardLayout.of_array(Path(store_path) / "images")
    assert layout is not None and layout.codec is not None, "a local sharded store with a numcodecs codec"
    c16 = layout.codec  # the codec the store was written with; the uint8 variant gets the same configuration
    c8 = numcodecs.get_codec(c16.get_config())
    enc16, enc8, b16, b8 = [], [], 0, 0
    for i in range(len(s)):
        x = s.read(i)  # (T, C, P, P) uint16 DN
        u8 = inv[np.minimum(x, 10000)]
        assert np.array_equal(lut[u8][s.valid(i)], x[s.valid(i)]), "DN -> uint8 -> DN must round-trip"
        e16, e8 = _chunks(x, c16), _chunks(u8, c8)
        enc16.append(e16)
        enc8.append(e8)
        b16 += sum(len(e) for e in e16)
        b8 += sum(len(e) for e in e8)
    n, T, C = len(s), s.num_dates, len(s.bands)
    rng = np.random.default_rng(seed)
    picks = [(int(rng.integers(0, n)), sorted(rng.choice(T, size=3, replace=False).tolist())) for _ in range(reads)]

    def best(fn) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for i, ds in picks:
                fn(i, ds)
            times.append(time.perf_counter() - t0)
        return reads / min(times)

    out16 = np.empty((P, P), dtype=np.uint16)
    out8 = np.empty((P, P), dtype=np.uint8)

    def dec16(i: int, ds: list[int]) -> None:
        for t in ds:
            for c in range(C):
                c16.decode(enc16[i][t * C + c], out=out16)

    def dec8(i: int, ds: list[int]) -> None:
        for t in ds:
            for c in range(C):
                c8.decode(enc8[i][t * C + c], out=out8)
                np.take(lut, out8, out=out16)  # to DN, as a uint8 store's reader would have to

    def store_read(i: int, ds: list[int]) -> None:
        s.read(i, dates=ds)

    return {
        "locations": n,
        "codec": str(c16),
        "store_disk_mb_per_loc": _du(store_path / "images") / n / 1e6,
        "uint16_mem_mb_per_loc": b16 / n / 1e6,
        "uint8_mem_mb_per_loc": b8 / n / 1e6,
        "reads_store": best(store_read),
        "reads_uint16_mem": best(dec16),
        "reads_uint8_mem": best(dec8),
    }


def bench_writer(store_path: Path, out_dir: Path, rounds: int = 2) -> dict[int, float]:
    """CPU ms per append of the single writer by ``commit_every`` (1 vs 16), rounds interleaved."""
    from seco.store import create_store

    s = open_store(store_path)
    locs = [(s.key(i), s.read(i), s.valid(i), s.meta(i)) for i in range(len(s))]
    cost: dict[int, list[float]] = {1: [], 16: []}
    for r in range(rounds):
        for ce in cost:
            w = create_store(out_dir / f"w{ce}-{r}.zarr", list(s.bands), num_dates=s.num_dates,
                             patch_size=s.patch_size, commit_every=ce)
            p0 = time.process_time()
            for key, img, valid, meta in locs:
                w.append(key, img, valid, meta)
            w.close()
            cost[ce].append((time.process_time() - p0) / len(locs) * 1000)
    return {ce: min(v) for ce, v in cost.items()}


def bench_dataset(store_path: Path, batches: int, batch: int, seed: int) -> float:
    from seco.data.pretrain import PretrainDataset

    ds = PretrainDataset(str(store_path), bands="all", num_dates=3, seed=seed, drop_incomplete=True, as_dn=True)
    rng = np.random.default_rng(seed)
    idx = [rng.integers(0, len(ds), size=batch).tolist() for _ in range(batches)]
    get = getattr(ds, "__getitems__", None)
    t0 = time.perf_counter()
    for b in idx:
        if get is not None:
            get(b)
        else:
            [ds[i] for i in b]
    return batches * batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locations", type=int, default=24)
    ap.add_argument("--workers", default="0,1,2", help="reader settings to time, comma-separated (0: in-process)")
    ap.add_argument("--reads", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if not OSCD.is_dir():
        raise SystemExit(f"the OSCD sample is not at {OSCD}; this benchmark needs ../shared/data")
    workers = [int(w) for w in a.workers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench_import_"))
    try:
        t0 = time.perf_counter()
        seco_root, ssl_root = write_corpora(tmp / "corpora", a.locations, a.seed)
        print(f"import benchmark: {a.locations} locations, real Sentinel-2 L1C windows (OSCD sample), P = {P}")
        print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} (shared machine); corpora written in {time.perf_counter() - t0:.0f} s\n")
        print(f"corpus files: SeCo-like (uint8 JPEG, 5 dates) {_du(seco_root) / a.locations / 1e6:.2f} MB/location; "
              f"SSL4EO-like s2c (uint16, 4 dates) {_du(ssl_root) / a.locations / 1e6:.2f} MB/location\n")
        rows = bench_import_rate("seco", seco_root, tmp, workers, None)
        rows += bench_import_rate("ssl4eo-s12", ssl_root, tmp, workers, "s2c")
        starts = {w: pool_startup(w) for w in workers if w > 0}
        print("pool start-up (forkserver, included in the wall times below): "
              + ", ".join(f"{w} process(es) {t:.1f} s" for w, t in starts.items()) + "\n")
        print("| corpus | readers | locations | wall s | locations/s | locations per CPU-s |")
        print("|---|---|---:|---:|---:|---:|")
        for r in rows:
            per_cpu = "-" if r["loc_per_cpu_s"] is None else f"{r['loc_per_cpu_s']:.2f}"
            print(f"| {r['corpus']} | {r['workers']} | {r['locations']} | {r['wall_s']:.1f} | {r['loc_per_s']:.2f} | "
                  f"{per_cpu} |")
        seco_store = rows[0]["store"]
        m = bench_bytes_and_reads(seco_store, a.reads, a.seed)
        print(f"\nSeCo import, {m['locations']} locations x 5 dates x 12 bands, 3 random dates x 12 bands per read "
              f"(best of 3, single process, Blosc 1 thread; codec {m['codec']}):\n")
        print("| kept as | MB/location | reads/s (in-memory chunks) | ratio |")
        print("|---|---:|---:|---:|")
        print(f"| uint16 DN (chosen; store on disk {m['store_disk_mb_per_loc']:.2f} MB) | "
              f"{m['uint16_mem_mb_per_loc']:.2f} | {m['reads_uint16_mem']:.0f} | 1.00 |")
        print(f"| uint8 x 255 + lookup to DN (alternative) | {m['uint8_mem_mb_per_loc']:.2f} | "
              f"{m['reads_uint8_mem']:.0f} | {m['reads_uint8_mem'] / m['reads_uint16_mem']:.2f} |")
        print(f"\nstore reader (seco.store, on disk): {m['reads_store']:.0f} reads/s")
        wr = bench_writer(seco_store, tmp)
        print(f"single writer, CPU per appended location (best of 2 interleaved rounds): commit every 1: "
              f"{wr[1]:.0f} ms, every 16 (the default): {wr[16]:.0f} ms ({wr[1] / wr[16]:.2f}x)")
        ds_rate = bench_dataset(seco_store, batches=20, batch=16, seed=a.seed)
        print(f"PretrainDataset (3 dates, 12 bands, as_dn, single process): {ds_rate:.0f} samples/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
