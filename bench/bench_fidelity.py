"""Why did ``make demo`` score SeCo below random init on simulated change detection? One factor at a time.

    .venv/bin/python -m bench.bench_fidelity --weights W.safetensors --out /tmp/fidelity [--epochs 4]

``W`` is a seco export (e.g. ``demo_out/weights/seco_resnet18.safetensors``). On one simulated OSCD (the demo's
settings: 8 cities of ~192 px, a quarter for test) it trains the change decoder for the exported backbone and
a random-init ResNet under each candidate cause, switching one thing at a time:

- ``norm``: the weights' own statistics (the export's: its L2A pre-training store) vs the evaluation data's
  own (train cities), for both backbones;
- ``levels``: all five feature differences, the deep ones only (layer1..layer4), conv1 only;
- the task itself: how far a per-pixel logistic regression on the raw band differences gets (no backbone),
  and how large the unlabelled (seasonal, rotation, illumination) change is next to the planted change.

Prints a Markdown table (one row per run: F1, precision, recall over all test pixels) and writes
``<out>/fidelity_investigation.json``. The numbers go into docs/FIDELITY.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def pixel_baseline(root: Path, bands: tuple[str, ...], seed: int, relative: bool = False) -> dict[str, Any]:
    """Per-pixel logistic regression on |ln x2 - ln x1| of every band: how easy is the planted change?

    Also the median spectral change magnitude (L2 norm over bands of the log difference) of changed and
    unchanged pixels: unlabelled seasonal change vs planted change. ``relative``: subtract each city's
    per-band median of ln x2 - ln x1 first (a relative radiometric normalisation: removes what changed the
    whole image, e.g. one date's illumination or haze, before the absolute value).
    """
    from sklearn.linear_model import LogisticRegression

    from seco.data.oscd import OSCD
    from seco.eval.metrics import change_counts

    def load(split: str) -> tuple[np.ndarray, np.ndarray]:
        ds = OSCD(root, bands=bands, split=split)
        xs, ys = [], []
        for i in range(len(ds)):
            c = ds[i]
            d = np.log(c["image2"].numpy() + 1e-4) - np.log(c["image1"].numpy() + 1e-4)  # (C, H, W)
            if relative:
                d = d - np.median(d, axis=(1, 2), keepdims=True)
            d = np.abs(d)
            xs.append(d.reshape(len(bands), -1).T)
            ys.append(c["mask"].numpy().reshape(-1).astype(bool))
        return np.concatenate(xs), np.concatenate(ys)

    xtr, ytr = load("train")
    xte, yte = load("test")
    rng = np.random.default_rng(seed)
    sub = rng.choice(len(xtr), size=min(len(xtr), 60000), replace=False)
    clf = LogisticRegression(max_iter=500, class_weight=None).fit(xtr[sub], ytr[sub])
    pred = clf.predict(xte).astype(bool)
    scores = change_counts(pred, yte).scores()
    mag = np.sqrt((xte**2).sum(axis=1))
    return {
        **{k: scores[k] for k in ("precision", "recall", "f1")},
        "median_change_magnitude_changed": float(np.median(mag[yte])),
        "median_change_magnitude_unchanged": float(np.median(mag[~yte])),
        "p90_change_magnitude_unchanged": float(np.quantile(mag[~yte], 0.9)),
        "changed_fraction_test": float(yte.mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help="a seco export (.safetensors)")
    ap.add_argument("--out", default="fidelity_investigation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=4, help="decoder epochs (the demo: 4)")
    ap.add_argument("--cities", type=int, default=8)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--only", default="", help="comma-separated run names to do (default: all)")
    a = ap.parse_args()

    from seco.eval.backbone import load_weights
    from seco.eval.change import run_change_detection
    from seco.eval.config import ChangeConfig
    from seco.synth.changes import make_change_dataset

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = make_change_dataset(out / "synth_oscd", num_cities=a.cities, size=a.size, seed=a.seed)
    spec = load_weights(a.weights)
    bands = tuple(spec.bands or ())
    runs: list[tuple[str, str, str, str]] = [  # name, weights, norm policy, levels
        ("seco/weights-norm/all", a.weights, "weights", "all"),
        ("random/data-norm/all", "random", "weights", "all"),  # random init has no statistics: data
        ("seco/data-norm/all", a.weights, "data", "all"),
        ("seco/data-norm/deep", a.weights, "data", "layer1,layer2,layer3,layer4"),
        ("random/data-norm/deep", "random", "data", "layer1,layer2,layer3,layer4"),
        ("seco/data-norm/conv1", a.weights, "data", "conv1"),
        ("random/data-norm/conv1", "random", "data", "conv1"),
    ]
    only = {x for x in a.only.split(",") if x}
    path = out / "fidelity_investigation.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if "pixel_baseline" not in results:
        results["pixel_baseline"] = pixel_baseline(data, bands, a.seed)
    for name, w, norm, levels in runs:
        if (only and name not in only) or name in results:
            continue
        t = time.perf_counter()
        cfg = ChangeConfig(root=str(data), weights=w, out=str(out / name.replace("/", "_")), backbone="resnet18",
                           bands=",".join(bands), patch=64, epochs=a.epochs, batch_size=16, seed=a.seed,
                           device="cpu", progress=False)
        m = run_change_detection(cfg, normalization=norm, levels=levels)
        g = m["test"]["all_pixels"]
        results[name] = {k: g[k] for k in ("precision", "recall", "f1")} | {
            "normalization": m["normalization"], "levels": m["levels"], "time_s": time.perf_counter() - t,
            "final_loss": m["train"]["history"][-1]["train_loss"]}
        path.write_text(json.dumps(results, indent=2))
        print(f"{name}: F1 {100 * g['f1']:.1f} % ({time.perf_counter() - t:.0f} s)", flush=True)
    path.write_text(json.dumps(results, indent=2))
    print("| run | F1 | precision | recall |\n|---|---:|---:|---:|")
    for k, r in results.items():
        print(f"| {k} | {100 * r['f1']:.1f} % | {100 * r['precision']:.1f} % | {100 * r['recall']:.1f} % |")
    pb = results["pixel_baseline"]
    print(f"\nchange magnitude |d ln rho| (median): changed {pb['median_change_magnitude_changed']:.3f}, "
          f"unchanged {pb['median_change_magnitude_unchanged']:.3f} (p90 {pb['p90_change_magnitude_unchanged']:.3f})")


if __name__ == "__main__":
    main()
