"""How to store Sentinel-1 dB: uint16 codes of 0.01 dB (what the store does) against float16 and float32.

For each encoding: bytes per location (5 dates x VV, VH x 264 x 264, Blosc-LZ4 + CRC32C shards like the store's
images), decode time per location into float32 dB, and the error against the float32 dB it was made from
(max and RMS). The data are speckled backscatter: a smooth per-pixel field with the published GRD statistics
(VV -12.6 +- 5.2 dB, VH -20.3 +- 5.9 dB) times Gamma(L, 1/L) intensity speckle with L = 4.4 looks (IW GRD), so
the compressibility is that of real speckle, not of a smooth image; about 3 % of the pixels are no data (a
swath edge).

    .venv/bin/python -m bench.bench_s1_encoding                 # the recorded run (docs/BENCHMARKS.md)
    .venv/bin/python -m bench.bench_s1_encoding --locations 8   # quick look
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec

from seco.store.s1 import decode_db, encode_db

T, C, P = 5, 2, 264


def speckled_db(rng: np.random.Generator) -> np.ndarray:
    """(T, 2, P, P) float32 dB with NaN no data: a smooth field with speckle of 4.4 looks."""
    yy, xx = np.mgrid[0:P, 0:P] / P
    out = np.empty((T, C, P, P), np.float32)
    for c, (mean, std) in enumerate(((-12.6, 5.2), (-20.3, 5.9))):
        for t in range(T):
            k = rng.normal(size=4)
            field = mean + 0.8 * std * np.tanh(k[0] * np.sin(6 * xx + k[1]) + k[2] * np.cos(5 * yy + k[3]))
            speckle = rng.gamma(4.4, 1 / 4.4, size=(P, P))
            out[t, c] = field + 10 * np.log10(speckle)
    out[:, :, :, -8:] = np.nan
    return out


def _write(root: Path, name: str, data: list[np.ndarray], dtype: str, fill: object) -> int:
    """Write (N, T, C, P, P) with the store's sharding and codecs; bytes on disk."""
    arr = zarr.create_array(root / name, shape=(len(data), T, C, P, P), dtype=dtype, fill_value=fill,
                            chunks=(1, 1, 1, P, P), shards=(1, T, C, P, P),
                            compressors=(BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle",
                                                    typesize=np.dtype(dtype).itemsize), Crc32cCodec()))
    for i, x in enumerate(data):
        arr[i] = x
    return sum(p.stat().st_size for p in (root / name).rglob("*") if p.is_file() and p.name != "zarr.json")


def _decode_time(root: Path, name: str, n: int, to_db) -> float:
    arr = zarr.open_array(root / name, mode="r")
    t = time.perf_counter()
    for i in range(n):
        to_db(arr[i])
    return (time.perf_counter() - t) / n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--locations", type=int, default=32)
    a = ap.parse_args(argv)
    numcodecs.blosc.set_nthreads(1)
    rng = np.random.default_rng(0)
    ref = [speckled_db(rng) for _ in range(a.locations)]
    encodings = {
        "uint16, 0.01 dB (store)": ("uint16", 0, encode_db, decode_db),
        "float16 dB": ("float16", np.nan, lambda x: x.astype(np.float16), lambda x: x.astype(np.float32)),
        "float32 dB": ("float32", np.nan, lambda x: x, lambda x: x),
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench_s1_"))
    rows = []
    try:
        for label, (dtype, fill, enc, dec) in encodings.items():
            name = dtype
            nbytes = _write(tmp, name, [enc(x) for x in ref], dtype, fill)
            err = np.concatenate([(dec(enc(x)) - x)[np.isfinite(x)].ravel() for x in ref[:4]]).astype(np.float64)
            best = min(_decode_time(tmp, name, a.locations, dec) for _ in range(3))
            rows.append((label, nbytes / a.locations / 1e6, best * 1e3, float(np.abs(err).max()),
                         float(np.sqrt(np.mean(err**2)))))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base_mb, base_ms = rows[-1][1], rows[-1][2]
    print(f"{a.locations} locations x {T} dates x VV,VH x {P} px; Blosc-LZ4 + CRC32C shards; decode = zarr read + "
          "conversion to float32 dB, best of 3")
    print("| encoding | MB / location | size / float32 | decode ms / location | decode / float32 | max error dB | "
          "RMS error dB |")
    print("|---|---|---|---|---|---|---|")
    for label, mb, ms, emax, erms in rows:
        print(f"| {label} | {mb:.3f} | {mb / base_mb:.2f} | {ms:.1f} | {ms / base_ms:.2f} | {emax:.4f} | {erms:.4f} |")


if __name__ == "__main__":
    main()
