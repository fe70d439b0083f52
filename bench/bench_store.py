"""Store layout benchmark: bytes per location and pre-training read speed.

Compares (1) all 12 bands resampled to the 10 m grid in one array against native-resolution arrays
(10/20/60 m), (2) lossless codecs, (3) zarr v3 sharding (one shard per location) against plain chunks,
and inner chunks per (date, band) against per date. A read is what a pre-training sample does: one random
location, 3 random distinct dates, RGB or all 12 bands.

Imagery: real Sentinel-2 L2A from the BigEarthNet sample in ../shared/data (each date a 3 x 3 mosaic of
randomly rotated 1.2 km patches at their native 10/20/60 m resolutions, cropped to 2.64 km); falls back
to ``seco.synth`` imagery when the folder is absent.

    .venv/bin/python -m bench.bench_store                # the recorded run (docs/STORE.md)
    .venv/bin/python -m bench.bench_store --locations 8 --reads 50   # quick look

Numbers are single-process, warm page cache (the data were just written), best of 3 passes, on whatever
CPU runs it (record the machine and its load next to them).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import tempfile
import time
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec

from seco.bands import BY_NAME, L2A, indices
from seco.store import StoreLayout, create_store, open_store
from seco.store.shard import ShardReader

BEN = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bigearthnet" / "BigEarthNet-v1.0"
T, P = 5, 264
RES = {b: BY_NAME[b].resolution_m for b in L2A}
GROUPS = {r: [b for b in L2A if RES[b] == r] for r in (10, 20, 60)}  # native-resolution band groups


# ------------------------------------------------------------------------------------------------ imagery
def _load_bigearthnet() -> list[dict[str, np.ndarray]] | None:
    patches = sorted(glob.glob(str(BEN / "*")))
    if not patches:
        return None
    import rasterio

    out = []
    for p in patches:
        d = {}
        for b in L2A:
            with rasterio.open(glob.glob(f"{p}/*_{b}.tif")[0]) as r:
                d[b] = r.read(1)
        out.append(d)
    return out


def real_locations(n: int, seed: int) -> tuple[list[dict[int, np.ndarray]], str]:
    """``n`` locations as native-resolution arrays {10: (T, 4, 264, 264), 20: (T, 6, 132, 132), 60: (T, 2, 44, 44)}."""
    rng = np.random.default_rng(seed)
    ben = _load_bigearthnet()
    if ben is None:
        from seco.synth import simulate_location

        locs = []
        for i in range(n):
            x = simulate_location(seed, i, num_dates=T, patch_size=P)["images"]  # (T, 12, P, P) on 10 m
            locs.append({r: x[:, indices(GROUPS[r], L2A), :: r // 10, :: r // 10] for r in (10, 20, 60)})
        return locs, "seco.synth imagery (BigEarthNet sample not found)"
    locs = []
    for _ in range(n):
        loc = {r: np.empty((T, len(GROUPS[r]), P * 10 // r, P * 10 // r), np.uint16) for r in (10, 20, 60)}
        for t in range(T):
            picks = [(int(rng.integers(len(ben))), int(rng.integers(4))) for _ in range(9)]
            for r, bands in GROUPS.items():
                s = P * 10 // r
                for k, b in enumerate(bands):
                    tiles = [np.rot90(ben[p][b], q) for p, q in picks]
                    rows = [np.concatenate(tiles[3 * j : 3 * j + 3], axis=1) for j in range(3)]
                    loc[r][t, k] = np.concatenate(rows, axis=0)[:s, :s]
        locs.append(loc)
    return locs, f"real Sentinel-2 L2A (BigEarthNet sample, {len(ben)} patches, 3x3 mosaics)"


def to_10m(loc: dict[int, np.ndarray]) -> np.ndarray:
    """(T, 12, P, P) in L2A order, 20/60 m bands nearest-upsampled."""
    out = np.empty((T, len(L2A), P, P), np.uint16)
    for r, bands in GROUPS.items():
        up = loc[r].repeat(r // 10, axis=2).repeat(r // 10, axis=3)
        out[:, indices(bands, L2A)] = up
    return out


# ------------------------------------------------------------------------------------------------ sizes
CODECS = {
    "zstd-1": numcodecs.Zstd(1),
    "zstd-3": numcodecs.Zstd(3),
    "zstd-9": numcodecs.Zstd(9),
    "blosc-zstd-1 bitshuffle": numcodecs.Blosc("zstd", 1, numcodecs.Blosc.BITSHUFFLE),
    "blosc-zstd-3 noshuffle": numcodecs.Blosc("zstd", 3, numcodecs.Blosc.NOSHUFFLE),
    "blosc-zstd-3 shuffle": numcodecs.Blosc("zstd", 3, numcodecs.Blosc.SHUFFLE),
    "blosc-zstd-3 bitshuffle": numcodecs.Blosc("zstd", 3, numcodecs.Blosc.BITSHUFFLE),
    "blosc-zstd-5 bitshuffle": numcodecs.Blosc("zstd", 5, numcodecs.Blosc.BITSHUFFLE),
    "blosc-lz4-5 shuffle": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE),
    "blosc-lz4-5 bitshuffle": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.BITSHUFFLE),
}


def size_table(locs: list[dict[int, np.ndarray]], k: int) -> list[tuple[str, float, float, float, float]]:
    """(codec, MB/location 10 m grid, MB/location native, encode CPU ms/location 10 m, decode CPU us/chunk)."""
    rows = []
    sample = locs[:k]
    for name, codec in CODECS.items():
        b10 = bnat = 0
        t0 = time.process_time()
        chunks = []
        for loc in sample:
            x = to_10m(loc)
            for t in range(T):
                for c in range(len(L2A)):
                    e = codec.encode(np.ascontiguousarray(x[t, c]))
                    b10 += len(e)
                    chunks.append(e)
        enc = (time.process_time() - t0) / len(sample)
        for loc in sample:
            for arr in loc.values():
                for t in range(T):
                    for c in range(arr.shape[1]):
                        bnat += len(codec.encode(np.ascontiguousarray(arr[t, c])))
        best = 1e9
        for _ in range(3):
            t0 = time.process_time()
            for e in chunks[:120]:
                codec.decode(e)
            best = min(best, (time.process_time() - t0) / min(120, len(chunks)))
        rows.append((name, b10 / len(sample) / 1e6, bnat / len(sample) / 1e6, enc * 1e3, best * 1e6))
    return rows


# ------------------------------------------------------------------------------------------------ reads
def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.name.endswith(".json"))


def _meta(t: int) -> dict:
    return {"item_id": f"bench-{t}", "datetime": f"2020-0{t + 1}-01T10:00:00Z", "cloud_fraction": 0.0,
            "nodata_fraction": 0.0, "crs": "EPSG:32633", "transform": (10, 0, 0, 0, -10, 0), "lat": 45.0, "lon": 15.0}


def write_seco(path: Path, locs, layout: StoreLayout) -> tuple[float, float]:
    images = [to_10m(loc) for loc in locs]
    t0, c0 = time.perf_counter(), time.process_time()
    with create_store(path, L2A, T, P, layout=layout, commit_every=len(locs), hist_every=10**9) as w:
        for i, x in enumerate(images):
            w.append(f"loc{i}", x, np.ones(T, bool), [_meta(t) for t in range(T)])
    return len(locs) / (time.perf_counter() - t0), len(locs) / (time.process_time() - c0)


def write_native(path: Path, locs, codec: BloscCodec) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    root = zarr.open_group(path, mode="w")
    arrs = {}
    for r, bands in GROUPS.items():
        s = P * 10 // r
        arrs[r] = root.create_array(f"img{r}", shape=(len(locs), T, len(bands), s, s), dtype="uint16",
                                    chunks=(1, 1, 1, s, s), shards=(1, T, len(bands), s, s),
                                    compressors=codec, fill_value=0)
    for i, loc in enumerate(locs):
        for r in GROUPS:
            arrs[r][i] = loc[r]
    return len(locs) / (time.perf_counter() - t0), len(locs) / (time.process_time() - c0)


def time_reads(fn, n: int, reads: int, seed: int, repeat: int = 3) -> tuple[float, float]:
    """(reads per wall second, reads per CPU second), each the best of ``repeat`` passes over one plan.

    The CPU rate is what one dedicated core would do; on a shared machine it is the steadier number.
    """
    rng = np.random.default_rng(seed)
    plan = [(int(rng.integers(n)), sorted(rng.choice(T, 3, replace=False).tolist())) for _ in range(reads)]
    fn(*plan[0])  # open handles
    wall = cpu = 0.0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for i, d in plan:
            fn(i, d)
        wall = max(wall, reads / (time.perf_counter() - t0))
        cpu = max(cpu, reads / max(time.process_time() - c0, 1e-9))
    return wall, cpu


def native_reader(path: Path, fast: bool):
    root = zarr.open_group(path, mode="r")
    arrs = {r: root[f"img{r}"] for r in GROUPS}
    shard = {r: ShardReader.for_array(path / f"img{r}") for r in GROUPS}

    def read(i: int, dates: list[int], bands: list[str]) -> np.ndarray:
        out = np.empty((len(dates), len(bands), P, P), np.uint16)
        for r, group in GROUPS.items():
            want = [(k, group.index(b)) for k, b in enumerate(bands) if b in group]
            if not want:
                continue
            sel = [g for _, g in want]
            x = shard[r].read(i, dates, sel) if fast else arrs[r].oindex[i, dates, sel]
            x = x.repeat(r // 10, axis=2).repeat(r // 10, axis=3) if r > 10 else x
            out[:, [k for k, _ in want]] = x
        return out

    return read


def _rate(r: tuple[float, float], digits: int = 0) -> str:
    return f"{r[0]:.{digits}f} ({r[1]:.{digits}f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locations", type=int, default=32, help="locations per benchmark store")
    ap.add_argument("--reads", type=int, default=300, help="random reads per measurement")
    ap.add_argument("--size-sample", type=int, default=6, help="locations for the codec size table")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="where to write the stores (default: a temp folder)")
    args = ap.parse_args()
    numcodecs.blosc.set_nthreads(1)  # one thread per process, as in DataLoader workers

    locs, source = real_locations(args.locations, args.seed)
    print(f"# store benchmark: {args.locations} locations x {T} dates x 12 bands x {P} px; imagery: {source}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"# raw uint16: 10 m grid {T * 12 * P * P * 2 / 1e6:.2f} MB/location, native "
          f"{sum(a.nbytes for a in locs[0].values()) / 1e6:.2f} MB/location\n")

    print("## Codecs (in-memory, per-chunk; bytes of one location)\n")
    print("| codec | MB/loc, 10 m grid | MB/loc, native | 10 m / native | encode CPU ms/loc | decode CPU us/chunk |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, b10, bnat, enc, dec in size_table(locs, args.size_sample):
        print(f"| {name} | {b10:.2f} | {bnat:.2f} | {b10 / bnat:.2f} | {enc:.0f} | {dec:.0f} |")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="seco-bench-store-"))
    work.mkdir(parents=True, exist_ok=True)
    rgb, allb = ["B04", "B03", "B02"], list(L2A)
    print("\n## Layouts (on disk; reads = 1 random location x 3 random dates, single process)\n")
    print("| layout | codec | MB/loc on disk | files/loc | write loc/s (per CPU-s) | reader | RGB reads/s (per CPU-s) "
          "| 12-band reads/s (per CPU-s) |")
    print("|---|---|---:|---:|---:|---|---:|---:|")
    configs = [
        ("10 m, shard/location, chunk/(date,band)", StoreLayout()),
        ("10 m, shard/location, chunk/date", StoreLayout(inner_chunk="date")),
        ("10 m, no shards, chunk/(date,band)", StoreLayout(sharded=False)),
        ("10 m, shard/location, chunk/(date,band)", StoreLayout(codec="blosc-zstd", clevel=1, shuffle="bitshuffle")),
        ("10 m, shard/location, chunk/(date,band)", StoreLayout(codec="blosc-zstd", clevel=5, shuffle="bitshuffle")),
        ("10 m, shard/location, chunk/(date,band)", StoreLayout(codec="blosc-lz4", clevel=5, shuffle="shuffle")),
        ("10 m, shard/location, chunk/(date,band)", StoreLayout(codec="zstd", clevel=3)),
    ]
    try:
        for k, (name, layout) in enumerate(configs):
            path = work / f"seco{k}.zarr"
            wps = write_seco(path, locs, layout)
            s = open_store(path)
            mb = _du(path / "images") / len(locs) / 1e6
            files = sum(1 for f in (path / "images").rglob("*") if f.is_file()) / len(locs)
            codec = f"{layout.codec}-{layout.clevel}" + (f" {layout.shuffle}" if layout.codec != "zstd" else "")
            readers = [("seco (zarr)", False)] + ([("seco (direct shard)", True)] if s._fast_reader() else [])
            for rname, fast in readers:
                if not fast:
                    s._fast, s._fast_checked = None, True
                else:
                    s._fast_checked = False
                k, rep = (args.reads, 3) if fast else (max(args.reads // 10, 5), 1)  # the zarr path is slow
                r1 = time_reads(lambda i, d, s=s: s.read(i, d, rgb), len(locs), k, args.seed, rep)
                r2 = time_reads(lambda i, d, s=s: s.read(i, d, allb), len(locs), max(k // 3, 5), args.seed, rep)
                print(f"| {name} | {codec} | {mb:.2f} | {files:.0f} | {_rate(wps, 1)} | {rname} | {_rate(r1)} | {_rate(r2)} |")
            shutil.rmtree(path)
        path = work / "native.zarr"
        wps = write_native(path, locs, StoreLayout().compressor())
        mb = _du(path) / len(locs) / 1e6
        files = sum(1 for f in path.rglob("*") if f.is_file() and f.name != "zarr.json") / len(locs)
        for rname, fast in (("zarr + upsample", False), ("direct shard + upsample", True)):
            rd = native_reader(path, fast)
            k, rep = (args.reads, 3) if fast else (max(args.reads // 10, 5), 1)
            r1 = time_reads(lambda i, d, rd=rd: rd(i, d, rgb), len(locs), k, args.seed, rep)
            r2 = time_reads(lambda i, d, rd=rd: rd(i, d, allb), len(locs), max(k // 3, 5), args.seed, rep)
            native_codec = f"{StoreLayout().codec}-{StoreLayout().clevel} {StoreLayout().shuffle}"
            print(f"| native 10/20/60 m arrays, shard/location | {native_codec} | {mb:.2f} | {files:.0f} | "
                  f"{_rate(wps, 1)} | {rname} | {_rate(r1)} | {_rate(r2)} |")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
