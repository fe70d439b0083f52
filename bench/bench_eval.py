"""Evaluation benchmark: the fast linear probe against the paper's protocol, and feature-extraction speed.

1. EuroSAT linear evaluation on the real multispectral sample in ../shared/data/eurosat_ms (270 images,
   seeded 60/20/20 split): ``--protocol fast`` (features once + logistic regression, C on val) against
   ``--protocol paper`` (a linear layer trained 100 epochs through the frozen backbone, Adam, lr / 10 at
   60 % and 80 %), same weights, same split, feature cache off: wall time of each whole run, the ratio,
   and the test accuracies.
2. Feature extraction throughput (images / s) of ResNet-18 and ResNet-50 on 13-band 64 px inputs,
   fp32 against bf16 autocast, in memory (no disk reads), batch 64, best of 3 passes.

    .venv/bin/python -m bench.bench_eval                      # the recorded run
    .venv/bin/python -m bench.bench_eval --epochs 10 --batches 3   # quick look

Numbers depend on the machine and its load (printed with them).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from bench.common import machine, table
from seco.backbones import build_backbone
from seco.eval.backbone import resolve_device
from seco.eval.classify import run_classification
from seco.eval.config import ClassifyConfig
from seco.eval.features import extract_features

EUROSAT_MS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "eurosat_ms"


def probe_vs_paper(root: Path, weights: str, epochs: int, device: str) -> list[list[object]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        res = {}
        for proto in ("fast", "paper"):
            cfg = ClassifyConfig(task="eurosat", root=str(root), weights=weights, out=f"{tmp}/{proto}",
                                 protocol=proto, epochs=epochs, use_cache=False, device=device, progress=False)
            t = time.perf_counter()
            m = run_classification(cfg)
            res[proto] = (time.perf_counter() - t, m)
        fast_s, paper_s = res["fast"][0], res["paper"][0]
        for proto, (secs, m) in res.items():
            r = m["fractions"]["100"]
            detail = (f"features {m['timing']['features_s']:.1f} s + probe {m['timing']['probe_s']:.1f} s, "
                      f"C={r['best_c']:g}" if proto == "fast" else f"{epochs} epochs {m['timing']['train_s']:.1f} s")
            rows.append([proto, f"{secs:.1f}", f"{paper_s / secs:.1f}x" if proto == "fast" else "1.0x",
                         f"{100 * r['accuracy']:.2f}", detail])
        rows.append(["paper / fast", f"{paper_s / fast_s:.1f}x", "", "", f"splits {m['splits']}"])
    return rows


def throughput(
    device: str, batches: int, repeats: int = 3, batch: int = 64, bands: int = 13, size: int = 64
) -> list[list[object]]:
    dev = resolve_device(device)
    rows = []
    x = torch.rand(batch, bands, size, size)
    for name in ("resnet18", "resnet50"):
        torch.manual_seed(0)
        model = build_backbone(name, bands, num_classes=0)
        for bf16 in (False, True):
            extract_features(model, [x], None, dev, bf16)  # warm-up
            secs = float("inf")
            for _ in range(repeats):  # best of: the machine is shared, the minimum is the least disturbed
                t = time.perf_counter()
                extract_features(model, [x] * batches, None, dev, bf16)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                secs = min(secs, time.perf_counter() - t)
            rows.append([name, "bf16" if bf16 else "fp32", f"{batches * batch / secs:.0f}", str(dev)])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=EUROSAT_MS, help="EuroSAT folder (default: the real MS sample)")
    ap.add_argument("--weights", default="random", help="weights to evaluate (default random init, ResNet-18)")
    ap.add_argument("--epochs", type=int, default=100, help="epochs of the paper protocol (default 100)")
    ap.add_argument("--batches", type=int, default=10, help="batches of 64 per throughput measurement")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip-probe", action="store_true")
    a = ap.parse_args()
    print(f"machine: {machine()}")
    if not a.skip_probe:
        if not a.root.is_dir():
            print(f"EuroSAT folder {a.root} not found; skipping the probe comparison (give --root)")
        else:
            rows = probe_vs_paper(a.root, a.weights, a.epochs, a.device)
            print(f"\nEuroSAT linear evaluation, {a.root.name}, weights {a.weights}:\n")
            print(table(["protocol", "wall s", "speed-up", "test acc %", "detail"], rows))
    print("\nFeature extraction, 13 bands, 64 px, batch 64:\n")
    print(table(["backbone", "precision", "images/s", "device"], throughput(a.device, a.batches)))


if __name__ == "__main__":
    main()
