"""Cost of the safe checkpoint path: writing plain types and reading without executing code.

For a ``ContrastiveModel`` (SeCo, 3 heads, 12 bands, queue 16384) with an SGD optimizer after one step, in
the same run, alternating:

- *save, old*: ``torch.save`` of the checkpoint dict, to a file, fsynced (what ``_save_atomic`` did);
- *save, new*: :func:`seco.train.run_checkpoint.save_run_checkpoint` (``to_safe`` + the same write);
- *load, old*: ``torch.load(weights_only=False)`` (full pickle: what ``load_checkpoint`` did);
- *load, new*: :func:`seco.train.run_checkpoint.load_checkpoint` (``weights_only=True`` + validation + the model shape
  check on the meta device).

    .venv/bin/python -m bench.bench_checkpoint                       # resnet18 and resnet50, 5 repeats
    .venv/bin/python -m bench.bench_checkpoint --backbones resnet18 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from seco.bands import L2A
from seco.models.contrastive import ContrastiveModel
from seco.models.safe_load import to_safe
from seco.train.config import PretrainConfig
from seco.train.run_checkpoint import CKPT_FORMAT, CKPT_VERSION, load_checkpoint, save_run_checkpoint


def _checkpoint(backbone: str, out: Path) -> dict[str, Any]:
    cfg = PretrainConfig(store="s.zarr", out=str(out), backbone=backbone, batch_size=256, queue_size=16384)
    torch.manual_seed(0)
    model = ContrastiveModel(backbone=backbone, in_chans=len(L2A), num_heads=3, queue_size=16384)
    opt = torch.optim.SGD(model.query_parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    for p in model.query_parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # momentum buffers exist, as in any checkpoint after step 1
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return {
        "format": CKPT_FORMAT, "version": CKPT_VERSION, "seco_version": "bench", "config": cfg.to_dict(),
        "step": 1, "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        "sampler": {"epoch": 0, "position": 256, "n": 1000, "batch_size": 256, "seed": 0, "world_size": 1,
                    "drop_last": True},
        "bands": list(L2A), "normalization": {"bands": list(L2A), "mean": [0.1] * len(L2A),
                                              "std": [0.1] * len(L2A), "method": "meanstd"},
        "num_locations": 1000, "loss": 1.0,
    }


def _old_save(obj: dict[str, Any], path: Path) -> None:
    """The former ``_save_atomic``: torch.save to a temp file, fsync, rename."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def _old_load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=False)  # full pickle: the old path


def _time(fn: Any, *args: Any) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--backbones", default="resnet18,resnet50")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    print("| backbone | file MiB | save old s | save new s | new/old | of which to_safe s | load old s | load new s "
          "| new/old |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for backbone in a.backbones.split(","):
            ckpt = _checkpoint(backbone, Path(d))
            p_old, p_new = Path(d) / "old.ckpt", Path(d) / "new.ckpt"
            _old_save(ckpt, p_old)  # warm-up of both paths (page cache, first meta-device model)
            save_run_checkpoint(ckpt, p_new)
            _old_load(p_old)
            load_checkpoint(p_new)
            t: dict[str, list[float]] = {k: [] for k in ("so", "sn", "lo", "ln", "ts")}
            for r in range(a.repeats):  # alternate which path goes first (I/O of the previous write)
                order = [("so", _old_save, ckpt, p_old), ("sn", save_run_checkpoint, ckpt, p_new)]
                for key, fn, *args in order if r % 2 == 0 else order[::-1]:
                    t[key].append(_time(fn, *args))
                order = [("lo", _old_load, p_old), ("ln", load_checkpoint, p_new)]
                for key, fn, *args in order if r % 2 == 0 else order[::-1]:
                    t[key].append(_time(fn, *args))
                t["ts"].append(_time(to_safe, ckpt))
            m = {k: statistics.median(v) for k, v in t.items()}
            mib = p_new.stat().st_size / 2**20
            print(f"| {backbone} | {mib:.0f} | {m['so']:.3f} | {m['sn']:.3f} | {m['sn'] / m['so']:.2f} | "
                  f"{m['ts']:.4f} | {m['lo']:.3f} | {m['ln']:.3f} | {m['ln'] / m['lo']:.2f} |")


if __name__ == "__main__":
    main()
