"""Steps 5 and 6 of the demo: SeCo pre-training on the collected store under a wall-clock budget, and the export."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from seco.errors import ConfigError

#: The settings a saved run must share with this demo to be continued (any other difference is refused).
GIVEN = frozenset({"store", "method", "backbone", "bands", "crop", "batch_size", "queue_size", "seed", "schedule"})


def pretrain_on_collected(out: Path, store: Path, seed: int, minutes: float, crop: int, batch_size: int,
                          queue_size: int, max_steps: int | None, progress: bool) -> dict[str, Any]:
    """Pre-train SeCo (ResNet-18, all bands) on ``store`` into ``out/pretrain``, continuing a run left there.

    Returns:
        ``run`` (folder), ``checkpoint``, ``steps``, ``final_loss`` and ``max_steps``.

    Raises:
        ConfigError: ``out/pretrain`` holds a run of other settings.
    """
    from seco.train.config import PretrainConfig
    from seco.train.loop import pretrain

    run = out / "pretrain"
    print(f"[5/9] SeCo pre-training on the collected store: ResNet-18, {crop} px views, {minutes:g} min budget")
    cfg = PretrainConfig(
        store=str(store), out=str(run), method="seco", backbone="resnet18", bands="all", crop=crop,
        batch_size=batch_size, epochs=1000, max_steps=max_steps, max_minutes=minutes, queue_size=queue_size,
        schedule="cosine", log_every=5, ckpt_every=50, plot_every=50, seed=seed, tensorboard=False,
        progress=progress,
    )
    resume = (run / "last.ckpt").exists()
    if resume:
        _refuse_other_settings(run, cfg)
    res = pretrain(cfg, resume=resume, given=set(GIVEN))
    loss = res.final_loss
    if not math.isfinite(loss):  # a resumed run that had nothing left to do: its last logged loss
        loss = _last_logged_loss(run, loss)
    return {"run": run, "checkpoint": res.checkpoint, "steps": res.steps, "final_loss": loss, "max_steps": max_steps}


def _refuse_other_settings(run: Path, cfg: Any) -> None:
    """Refuse to continue a saved run on another store or with other settings (it is never silently continued)."""
    if not (run / "config.yaml").is_file():
        return
    import yaml

    saved = yaml.safe_load((run / "config.yaml").read_text()) or {}
    diff = [k for k in sorted(GIVEN) if str(saved.get(k)) != str(getattr(cfg, k))]
    if diff:
        raise ConfigError(f"{run} holds a pre-training run with other settings ({', '.join(diff)}), e.g. from "
                          "an earlier demo; remove it or give the demo another --out")


def _last_logged_loss(run: Path, default: float) -> float:
    """The loss of the last row of ``run/metrics.csv``, or ``default`` when it has none."""
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["loss"]) if rows else default


def export_weights(checkpoint: Path, out: Path) -> tuple[list[Path], Path]:
    """Export ``checkpoint`` as ``out/weights/seco_resnet18.*``: every written path, and the ``.safetensors`` one."""
    from seco.train.export_run import export_run

    print("[6/9] export")
    paths = export_run(checkpoint, out / "weights" / "seco_resnet18")
    return paths, next(p for p in paths if p.suffix == ".safetensors")
