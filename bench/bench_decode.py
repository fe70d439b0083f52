"""Store decode benchmark: 12-band, 3-date, 264 px samples per CPU-second in one process, old vs new, one run.

Contenders (each in its own child process, interleaved round by round, best round kept):

* ``old code, old store``: seco as of commit 510f953 (``--old-root``, a ``git worktree add /tmp/seco_old
  510f953``) reading a store in that commit's default layout (blosc-lz4-5 **shuffle**, no checksums);
* ``new code, old store``: this checkout on the same store (an old store keeps reading);
* ``new code, new store``: this checkout on the current default layout (blosc-lz4-5 **noshuffle** + CRC32C
  per chunk), the checksums verified at each (shard, date)'s first read (as in training);
* for each, ``Store.read(i, 3 dates, all bands, out=)`` (the decode itself) and
  ``PretrainDataset.__getitems__`` on batches of 32 (what a DataLoader worker does, uint16 DN).

Then the integrity costs, in this process: the first read of each shard (3 dates) with and without checksum
verification, and what verifying the chunks of *every* read would add (why it is done once per (shard, date)).

    .venv/bin/python -m bench.bench_decode --old-root /tmp/seco_old            # recorded in docs/BENCHMARKS.md
    .venv/bin/python -m bench.bench_decode --imagery real --locations 32        # real Sentinel-2 mosaics
    .venv/bin/python -m bench.bench_decode --codecs   # decode-only table: codec settings x 10 m grid / native
    .venv/bin/python -m bench.bench_decode --native   # 10 m store vs native-resolution store (schema version 2)

``--native`` compares, on the same imagery (a 10 m store and its ``seco store migrate --grid native`` copy):
``Store.read`` of the 10 m store, ``Store.read_packed`` of the native store (what the pre-training ring
decodes; the device unpacks), and ``Store.read`` of the native store (decode, then nearest upsampling on the
CPU into the 10 m grid, what eval/embed get).

Rates are per CPU-second (``time.process_time``): on a shared machine that is what one dedicated core does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# Runs under either checkout (only APIs that both have): prints one JSON line of rates.
CHILD = r'''
import json, sys, time
import numpy as np, numcodecs
numcodecs.blosc.set_nthreads(1)
from seco.store import open_store
store_path, mode, reads, seed, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = open_store(store_path)
n, T, P, C = len(s), s.num_dates, s.patch_size, len(s.bands)
rng = np.random.default_rng(seed)
plan = [(int(rng.integers(n)), sorted(rng.choice(T, 3, replace=False).tolist())) for _ in range(reads)]
best_cpu = best_wall = 0.0
if mode in ("read", "packed"):
    if mode == "read":
        out = np.empty((3, C, P, P), np.uint16)  # (dates, C, H, W): one sample of a batch buffer
        read = s.read
    else:  # the packed form (this checkout only): (dates, L), each band at the grid the store keeps it on
        out = np.empty((3, s.pack_spec().length), np.uint16)
        read = s.read_packed
    for i in range(n):
        read(i, [0, 1, 2], out=out)  # first touch of every shard (and its checksum check) outside the timing
    for _ in range(rounds):
        c, w = time.process_time(), time.perf_counter()
        for i, d in plan:
            read(i, d, out=out)
        best_cpu = max(best_cpu, reads / (time.process_time() - c))
        best_wall = max(best_wall, reads / (time.perf_counter() - w))
else:
    from seco.data.pretrain import PretrainDataset
    ds = PretrainDataset(s, bands="all", num_dates=3, seed=seed, drop_incomplete=True, as_dn=True)
    batches = [rng.integers(len(ds), size=32).tolist() for _ in range(max(reads // 32, 2))]
    for k in range(0, len(ds), 32):
        ds.__getitems__(list(range(k, min(k + 32, len(ds)))))
    for _ in range(rounds):
        c, w = time.process_time(), time.perf_counter()
        for b in batches:
            ds.__getitems__(b)
        k = 32 * len(batches)
        best_cpu = max(best_cpu, k / (time.process_time() - c))
        best_wall = max(best_wall, k / (time.perf_counter() - w))
print(json.dumps({"cpu": best_cpu, "wall": best_wall}))
'''


def make_stores(work: Path, imagery: str, n: int, seed: int, patch: int = 264) -> tuple[Path, Path, str]:
    """(old-layout store, new-default store, description) of the same imagery."""
    from seco.store import StoreLayout
    from seco.store.migrate import migrate_store

    old_layout = StoreLayout(shuffle="shuffle", checksum=False)  # the default of seco 510f953
    new, old = work / f"new-{imagery}.zarr", work / f"old-{imagery}.zarr"
    for p in (new, old):
        if p.exists():
            shutil.rmtree(p)
    if imagery == "synth":
        from seco.synth import make_store

        make_store(new, num_locations=n, patch_size=patch, seed=seed, progress=False, overwrite=True)
        what = f"seco.synth, {n} locations x 5 dates x 12 bands x {patch} px"
    else:
        from bench.bench_store import real_locations, write_seco

        locs, what = real_locations(n, seed)
        write_seco(new, locs, StoreLayout())
    migrate_store(new, old, layout=old_layout, progress=False)
    return old, new, what


def child(root: Path, store: Path, mode: str, reads: int, seed: int, rounds: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", CHILD, str(store), mode, str(reads), str(seed), str(rounds)],
                       env=env, capture_output=True, text=True, cwd=root, check=False)
    if r.returncode != 0:
        raise SystemExit(f"child failed ({root}, {store}, {mode}):\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def integrity_costs(store: Path, seed: int) -> dict[str, float]:
    """First-read rates with and without verification, and the per-read cost of checking the chunks read."""
    import google_crc32c
    import numcodecs

    from seco.store import open_store

    numcodecs.blosc.set_nthreads(1)
    res = {}
    for name, verify in (("first read, verify", True), ("first read, no verify", False)):
        best = 0.0
        for _ in range(3):
            s = open_store(store, verify=verify)  # a fresh reader: every shard is read for the first time
            out = np.empty((3, len(s.bands), s.patch_size, s.patch_size), np.uint16)
            c = time.process_time()
            for i in range(len(s)):
                s.read(i, [0, 2, 4], out=out)
            best = max(best, len(s) / (time.process_time() - c))
        res[name] = best
    # verifying the CRC32C of the 36 chunks a sample decodes, at every read
    s = open_store(store)
    r = s.shard_reader()
    assert r is not None
    L = r.layout
    spans = []
    for i in range(len(s)):
        data = r.map(i)
        index = L.parse_index(data, data.size, i, "")
        spans.append((data, [(int(index[t, b, 0]), int(index[t, b, 1])) for t in (0, 2, 4) for b in range(L.grid[1])
                             if int(index[t, b, 0]) != 2**64 - 1]))
    best = 0.0
    for _ in range(3):
        c = time.process_time()
        for data, chunks in spans:
            for off, n in chunks:
                if google_crc32c.value(data[off : off + n - 4]) != int.from_bytes(data[off + n - 4 : off + n].tobytes(), "little"):
                    raise SystemExit("checksum mismatch in the benchmark store")
        best = max(best, len(spans) / (time.process_time() - c))
    res["crc of the 36 chunks read, per sample"] = best
    return res


def codec_options(n: int, seed: int) -> None:
    """In-memory decode of one 12-band 3-date sample per codec setting, on the 10 m grid and at native resolution."""
    import numcodecs

    from bench.bench_store import real_locations, to_10m

    numcodecs.blosc.set_nthreads(1)
    locs, what = real_locations(n, seed)
    print(f"## Codec options, decode only (in memory, {what}, {n} locations)\n")
    print("| codec | grid | MB/location | CPU ms per 12-band 3-date sample | x lz4-5 shuffle, 10 m |")
    print("|---|---|---:|---:|---:|")
    planes = {"10 m": [np.ascontiguousarray(to_10m(loc)[t, c]) for loc in locs for t in range(5) for c in range(12)],
              "native 10/20/60 m": [np.ascontiguousarray(a[t, c]) for loc in locs for a in loc.values()
                                    for t in range(5) for c in range(a.shape[1])]}
    base = None
    for name, codec in (("blosc-lz4-5 shuffle", numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE)),
                        ("blosc-lz4-5 noshuffle", numcodecs.Blosc("lz4", 5, numcodecs.Blosc.NOSHUFFLE)),
                        ("blosc-lz4-1 noshuffle", numcodecs.Blosc("lz4", 1, numcodecs.Blosc.NOSHUFFLE)),
                        ("blosc-lz4hc-5 shuffle", numcodecs.Blosc("lz4hc", 5, numcodecs.Blosc.SHUFFLE)),
                        ("blosc-zstd-1 shuffle", numcodecs.Blosc("zstd", 1, numcodecs.Blosc.SHUFFLE))):
        for grid, ps in planes.items():
            enc = [bytes(codec.encode(p)) for p in ps]
            outs = [np.empty_like(p) for p in ps]
            best = 1e9
            for _ in range(3):
                c = time.process_time()
                for e, o in zip(enc, outs, strict=True):
                    numcodecs.blosc.decompress(e, o)
                best = min(best, time.process_time() - c)
            ms = best / len(locs) / 5 * 3 * 1e3  # 3 of the 5 dates
            base = base or ms
            print(f"| {name} | {grid} | {sum(map(len, enc)) / len(locs) / 1e6:.2f} | {ms:.2f} | {base / ms:.2f} |")
    # what a native-resolution store would add to Store.read, which returns the 10 m grid: nearest upsampling
    low = [p for p in planes["native 10/20/60 m"] if p.shape[0] < 264]  # the 20 m and 60 m planes
    big = np.empty((264, 264), np.uint16)
    best = 1e9
    for _ in range(3):
        c = time.process_time()
        for p in low:
            r = 264 // p.shape[0]
            big.reshape(p.shape[0], r, 264)[...] = np.repeat(p, r, axis=1)[:, None, :]  # columns, then rows
        best = min(best, time.process_time() - c)
    print(f"\nnearest upsampling of the 8 native 20/60 m bands to the 10 m grid on the CPU: "
          f"{best / len(locs) / 5 * 3 * 1e3:.2f} CPU ms per 12-band 3-date sample\n")


def native_table(work: Path, imagery: str, n: int, seed: int, patch: int, reads: int, rounds: int) -> None:
    """10 m store vs native-resolution store of the same imagery: decode rates per CPU-second and disk."""
    from seco.store import StoreLayout, open_store
    from seco.store.migrate import disk_bytes, migrate_store

    ten, nat = work / f"10m-{imagery}.zarr", work / f"native-{imagery}.zarr"
    for p in (ten, nat):
        if p.exists():
            shutil.rmtree(p)
    if imagery == "synth":
        from seco.synth import make_store

        make_store(ten, num_locations=n, patch_size=patch, seed=seed, progress=False, overwrite=True)
        what = f"seco.synth, {n} locations x 5 dates x 12 bands x {patch} px"
    else:
        from bench.bench_store import real_locations, write_seco

        locs, what = real_locations(n, seed)
        write_seco(ten, locs, StoreLayout())
    migrate_store(ten, nat, layout=StoreLayout(grid="native"), progress=False)  # the same imagery, native grid
    a, b = open_store(ten), open_store(nat)
    for i in range(min(n, 8)):  # what is compared holds the same pixels
        if not np.array_equal(a.read(i), b.read(i)):
            raise SystemExit(f"location {i} differs between the 10 m and the native store")
    mb = {p: disk_bytes(p) / n / 1e6 for p in (ten, nat)}
    spec10, specn = a.pack_spec(), b.pack_spec()
    print(f"# native-grid decode benchmark: {what}; {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; blosc-lz4-5 noshuffle + crc32c\n")
    contenders = [("10 m store, Store.read", ten, "read", spec10.length),
                  ("native store, Store.read_packed", nat, "packed", specn.length),
                  ("native store, Store.read (CPU upsample to 10 m)", nat, "read", spec10.length)]
    rates: dict[str, list[dict[str, float]]] = {}
    for _ in range(rounds):
        for name, store, mode, _ in contenders:
            rates.setdefault(name, []).append(child(ROOT, store, mode, reads, seed, 3))
    best = {k: max(v, key=lambda r: r["cpu"]) for k, v in rates.items()}
    base = best[contenders[0][0]]["cpu"]
    print("| contender (12 bands x 3 dates) | samples per CPU-s (wall) | x 10 m read | CPU ms per sample "
          "| MB per sample out | store MB/location |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, store, _, length in contenders:
        r = best[name]
        print(f"| {name} | {r['cpu']:.0f} ({r['wall']:.0f}) | {r['cpu'] / base:.2f} | {1e3 / r['cpu']:.3f} "
              f"| {3 * length * 2 / 1e6:.2f} | {mb[store]:.2f} |")
    print(f"\npixels per sample: {spec10.length / specn.length:.2f}x fewer in the packed form "
          f"({specn.length} vs {spec10.length} per date)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old-root", default="/tmp/seco_old", help="checkout of seco 510f953 (skipped if absent)")
    ap.add_argument("--imagery", choices=["synth", "real"], default="synth")
    ap.add_argument("--locations", type=int, default=64)
    ap.add_argument("--patch-size", type=int, default=264, help="synth imagery only (smaller: a quick look)")
    ap.add_argument("--reads", type=int, default=300, help="samples per timed round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each child keeps its best of 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--codecs", action="store_true", help="only the in-memory codec options table (real imagery)")
    ap.add_argument("--native", action="store_true",
                    help="only the 10 m store vs native-resolution store table (same imagery, one run)")
    a = ap.parse_args(argv)
    if a.codecs:
        codec_options(min(a.locations, 8), a.seed)
        return
    work = Path(a.workdir or tempfile.mkdtemp(prefix="seco-bench-decode-"))
    work.mkdir(parents=True, exist_ok=True)
    if a.native:
        native_table(work, a.imagery, a.locations, a.seed, a.patch_size, a.reads, a.rounds)
        return
    old_store, new_store, what = make_stores(work, a.imagery, a.locations, a.seed, a.patch_size)
    old_root = Path(a.old_root)
    have_old = (old_root / "seco" / "store" / "reader.py").is_file()

    def mb(p: Path) -> float:
        from seco.store.migrate import disk_bytes

        return disk_bytes(p) / a.locations / 1e6

    print(f"# decode benchmark: {what}; {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"# old store (blosc-lz4-5 shuffle, no checksums) {mb(old_store):.2f} MB/location, "
          f"new store (blosc-lz4-5 noshuffle + crc32c) {mb(new_store):.2f} MB/location\n")
    contenders = ([("old code (510f953), old store", old_root, old_store)] if have_old else []) + [
        ("new code, old store", ROOT, old_store), ("new code, new store", ROOT, new_store)]
    rates: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(a.rounds):
        for mode in ("read", "getitems"):
            for name, root, store in contenders:
                rates.setdefault((name, mode), []).append(child(root, store, mode, a.reads, a.seed, 3))
    best = {k: max(v, key=lambda r: r["cpu"]) for k, v in rates.items()}
    base = contenders[0][0]
    print("| contender | Store.read 12 bands x 3 dates: samples per CPU-s (wall) | x first row "
          "| __getitems__ (batch 32): samples per CPU-s (wall) | x first row |")
    print("|---|---:|---:|---:|---:|")
    for name, _, _ in contenders:
        r, g = best[(name, "read")], best[(name, "getitems")]
        print(f"| {name} | {r['cpu']:.0f} ({r['wall']:.0f}) | {r['cpu'] / best[(base, 'read')]['cpu']:.2f} "
              f"| {g['cpu']:.0f} ({g['wall']:.0f}) | {g['cpu'] / best[(base, 'getitems')]['cpu']:.2f} |")
    if not have_old:
        print(f"\n(no checkout of 510f953 at {old_root}: the first row is the new code on the old store)")
    print("\n## Integrity costs (new store, this process)\n")
    costs = integrity_costs(new_store, a.seed)
    steady = best[("new code, new store", "read")]["cpu"]
    print("| measurement | samples per CPU-s | CPU ms per sample |")
    print("|---|---:|---:|")
    for k, v in costs.items():
        print(f"| {k} | {v:.0f} | {1e3 / v:.3f} |")
    print(f"| steady state (shards already verified; from the table above) | {steady:.0f} | {1e3 / steady:.3f} |")
    extra = (1 / costs["crc of the 36 chunks read, per sample"]) / (1 / steady)
    print(f"\nverifying every read would add {100 * extra:.0f} % to a steady-state read; the first read of a shard "
          f"costs {100 * (costs['first read, no verify'] / costs['first read, verify'] - 1):.0f} % more with "
          "verification (the 3 dates read)")


if __name__ == "__main__":
    main()
