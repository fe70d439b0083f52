"""Cost of the radiometric consistency check per collected location (it runs on collect's commit thread).

    .venv/bin/python bench/bench_consistency.py [--patch 264] [--dates 5] [--repeat 50]

Prints ms per location for every pixel (stride 1) and the default sample (stride 2), measured side by side in
one run on the same seeded stack, and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from seco.radiometry.consistency import ConsistencyConfig, check_dates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patch", type=int, default=264)
    ap.add_argument("--dates", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=50)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    imgs = rng.integers(1, 4000, (a.dates, 12, a.patch, a.patch)).astype(np.uint16)  # (T, C, H, W)
    valid = np.ones(a.dates, bool)
    res = {}
    for _ in range(2):  # alternate the two variants twice; keep the best of each (a shared machine)
        for stride in (1, 2):
            cfg = ConsistencyConfig(stride=stride)
            t = time.perf_counter()
            for _ in range(a.repeat):
                check_dates(imgs, valid, [0, 1], cfg)
            ms = (time.perf_counter() - t) / a.repeat * 1e3
            res[stride] = min(ms, res.get(stride, ms))
    print(f"| stride | ms / location (T={a.dates}, {a.patch} px, B02+B03) |\n|---:|---:|")
    for k, v in res.items():
        print(f"| {k} | {v:.1f} |")
    print(f"ratio stride 1 / stride 2: {res[1] / res[2]:.2f}x")


if __name__ == "__main__":
    main()
