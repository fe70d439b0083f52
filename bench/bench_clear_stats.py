"""Clear-sky statistics (issue 20, item 6): what they change, and what the mask costs at write time.

1. On a ``seco synth`` store with clouds (default cloud, nodata and missing-date rates), per-band mean and std in
   reflectance of B02, B03, B04 over every valid pixel against the clear pixels (the simulator's own cloud /
   shadow / snow truth, ``truth:synth``) and against the writer's band test (``blue>0.2|ndsi>0.4&green>0.1``,
   what a store without a mask gets): the analogue of docs/FIDELITY.md's 0.226 vs 0.038 for B02.
2. What a model normalised with the store's statistics sees on clear evaluation data: the simulated OSCD cities of
   ``make demo`` (``seco.synth.changes``, 8 cities of 192 px, both dates) normalised with the store's valid and
   clear statistics, per band mean and std (1 and 0 with the data's own statistics; docs/FIDELITY.md measured
   std 0.17 for B02 with the all-pixel ones).
3. Write cost: the same simulated locations appended, in interleaved rounds (best of ``--rounds``), to a store
   without the clear part (the writer's clear recording switched off, as for a store written before it), with the
   caller's mask, and with the band test; wall time per location and bytes of the mask and its records per
   location beside the image bytes.

    .venv/bin/python -m bench.bench_clear_stats              # the recorded run (< 1 minute on 2 cores)
    .venv/bin/python -m bench.bench_clear_stats --locations 8 --rounds 1
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import machine, table
from seco.bands import L2A
from seco.store import create_store, open_store
from seco.synth import make_store, nodata_on_band_grids, simulate_location

BANDS3 = ("B02", "B03", "B04")


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def statistics(n: int, patch: int, work: Path) -> list[list[object]]:
    """Per-band mean/std (reflectance) of B02..B04: valid pixels, clear (truth), clear (band test)."""
    path = make_store(work / "synth.zarr", num_locations=n, num_dates=5, patch_size=patch, seed=0, progress=False)
    s = open_store(path)
    valid, truth = s.stats(BANDS3, pixels="valid"), s.stats(BANDS3, pixels="clear")
    # the band test on the same pixels: write the same locations without the truth mask
    w = create_store(work / "test.zarr", L2A, 5, patch)
    for i in range(len(s)):
        w.append(s.key(i), s.read(i), s.valid(i), s.meta(i))
    w.close()
    t = open_store(work / "test.zarr")
    test = t.stats(BANDS3)
    share = {name: float(np.nanmean(st.meta_array("clear_fraction")[st.valid_mask()])) for name, st in
             (("truth", s), ("test", t))}
    rows = []
    for k, b in enumerate(BANDS3):
        rows.append([b, *(f"{st[q][k] / 1e4:.3f}" for st in (valid, truth, test) for q in ("mean", "std"))])
    print(f"stats_method (truth): {s.stats_method()}\nstats_method (test):  {t.stats_method()}")
    print(f"mean clear fraction of valid dates: truth {share['truth']:.3f}, band test {share['test']:.3f}")
    return rows


def on_cities(store: Path, work: Path) -> list[list[object]]:
    """Per band: the cities' mean and std after normalising with the store's valid / clear statistics."""
    from seco.data.oscd import OSCD
    from seco.synth.changes import make_change_dataset

    root = make_change_dataset(work / "oscd", num_cities=8, size=192, seed=0, bands=L2A)
    ds = OSCD(root, bands=L2A, split=None)
    x = np.concatenate([ds[i][k].numpy().reshape(len(L2A), -1) for i in range(len(ds)) for k in ("image1", "image2")],
                       axis=1).astype(np.float64)  # (C, pixels), reflectance
    s = open_store(store)
    rows = []
    norms = {p: s.stats(pixels=p) for p in ("valid", "clear")}
    for k, b in enumerate(L2A):
        cells = [b, f"{x[k].mean():.3f}", f"{x[k].std():.3f}"]
        for p in ("valid", "clear"):
            m, sd = norms[p]["mean"][k] / 1e4, norms[p]["std"][k] / 1e4
            z = (x[k] - m) / sd
            cells += [f"{z.mean():+.2f}", f"{z.std():.2f}"]
        rows.append(cells)
    return rows


def write_cost(n: int, patch: int, rounds: int, work: Path) -> list[list[object]]:
    """Append time per location and mask bytes per location: no clear part / caller's mask / band test."""
    locs = []
    for i in range(n):
        loc = simulate_location(1, i, 5, patch)
        nodata_on_band_grids(loc["images"], loc["valid"], loc["dates_meta"], L2A)
        locs.append(loc)
    best: dict[str, float] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for _ in range(rounds):
        for mode in ("none", "mask", "test"):
            path = work / f"w-{mode}.zarr"
            shutil.rmtree(path, ignore_errors=True)
            w = create_store(path, L2A, 5, patch, commit_every=16)
            if mode == "none":
                w._clear.enabled = False  # noqa: SLF001 - what a store written before clear masks does
            t0 = time.perf_counter()
            for loc in locs:
                kw = {"clear": loc["clear"], "clear_rule": "truth:synth"} if mode == "mask" else {}
                w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], **kw)
            w.close()
            dt = (time.perf_counter() - t0) / n
            best[mode] = min(best.get(mode, np.inf), dt)
            clear_bytes = _du(path / "masks") + _du(path / "meta" / "clear_fraction") + _du(path / "meta" / "clear_rule")
            sizes[mode] = (clear_bytes, _du(path / "images"))
    base = best["none"]
    return [[mode, f"{best[mode] * 1e3:.1f}", f"{best[mode] / base:.2f}", f"{sizes[mode][0] / n / 1e3:.2f}",
             f"{sizes[mode][1] / n / 1e6:.2f}", f"{100 * sizes[mode][0] / max(sizes[mode][1], 1):.2f}"]
            for mode in ("none", "mask", "test")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--locations", type=int, default=48, help="locations of the statistics store")
    ap.add_argument("--patch", type=int, default=96, help="patch side of the statistics store")
    ap.add_argument("--write-locations", type=int, default=16, help="locations per write-cost round (264 px)")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        t0 = time.perf_counter()
        rows = statistics(a.locations, a.patch, work)
        print(table(["band", "valid mean", "valid std", "clear mean (truth)", "clear std (truth)",
                     "clear mean (test)", "clear std (test)"], rows))
        rows = on_cities(work / "synth.zarr", work)
        print(table(["band", "cities mean", "cities std", "mean z (valid stats)", "std z (valid stats)",
                     "mean z (clear stats)", "std z (clear stats)"], rows))
        rows = write_cost(a.write_locations, 264, a.rounds, work)
        print(table(["clear part", "ms / location", "x none", "mask+records kB / loc", "images MB / loc",
                     "% of images"], rows))
        print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
