"""``seco import ssl4eo-s12`` with Sentinel-1 (``--with-s1``) against without, on one generated SSL4EO-S12 v1 tree.

The tree is tests/imports/fakes.py's, in the published layout (uint16 S2 GeoTIFFs, 13 L1C bands at
264/132/44 px; S1 VV/VH float32 dB at 264 px + Earth Engine metadata.json), no broken files. Both imports read
the same S2 files; the S1 one also reads 2 x 264 x 264 float32 per date and writes the S1 group. Runs alternate
(without, with, without, with, ...) and the best of each is reported, so the ratio holds on a busy machine.

    .venv/bin/python -m bench.bench_import_s1                       # 64 locations, 2 rounds
    .venv/bin/python -m bench.bench_import_s1 --locations 8 --rounds 1   # quick look
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _fakes():  # tests/imports/fakes.py (the import tests' generator), importable from the repository root
    here = str(Path(__file__).resolve().parents[1] / "tests" / "imports")
    if here not in sys.path:
        sys.path.insert(0, here)
    import fakes

    return fakes


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(locations: int, rounds: int, workers: int, patch: int) -> list[dict]:
    from seco.imports import ImportConfig, run_import

    tmp = Path(tempfile.mkdtemp(prefix="bench_import_s1_"))
    try:
        t0 = time.monotonic()
        fake = _fakes().make_ssl4eo(tmp / "ssl4eo-s12", locations=locations, seed=0, patch=patch, broken=False,
                                    s1=True)
        print(f"wrote {locations} locations x 4 dates ({patch} px) in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        best: dict[bool, float] = {}
        size: dict[bool, int] = {}
        for r in range(rounds):
            for with_s1 in (False, True):
                out = tmp / f"store_{int(with_s1)}_{r}.zarr"
                t = time.monotonic()
                rep = run_import(ImportConfig("ssl4eo-s12", str(fake.root.parent), str(out), modality="s2c",
                                              workers=workers, patch_size=patch, progress=False, with_s1=with_s1))
                dt = time.monotonic() - t
                assert rep.imported == locations, rep.describe()
                best[with_s1] = min(best.get(with_s1, dt), dt)
                size[with_s1] = _du(out)
                shutil.rmtree(out)
        return [{"s1": w, "seconds": best[w], "loc_per_s": locations / best[w], "store_mb": size[w] / 1e6,
                 "bytes_per_loc": size[w] / locations} for w in (False, True)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locations", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0, help="reader processes (0: in-process, the default here)")
    ap.add_argument("--patch", type=int, default=264)
    a = ap.parse_args(argv)
    rows = run(a.locations, a.rounds, a.workers, a.patch)
    print(f"\nSSL4EO-S12 v1 import, {a.locations} locations x 4 dates, {a.patch} px, workers={a.workers}, "
          f"best of {a.rounds}\n")
    print("| S1 | time (s) | locations/s | store MB | bytes/location |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {'with' if r['s1'] else 'without'} | {r['seconds']:.2f} | {r['loc_per_s']:.2f} | "
              f"{r['store_mb']:.1f} | {r['bytes_per_loc']:.0f} |")
    print(f"\nwith / without: time x{rows[1]['seconds'] / rows[0]['seconds']:.2f}, "
          f"bytes x{rows[1]['bytes_per_loc'] / rows[0]['bytes_per_loc']:.2f}")


if __name__ == "__main__":
    main()
