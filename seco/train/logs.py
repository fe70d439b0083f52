"""Training logs: CSV (always), TensorBoard (optional) and a PNG of the curves."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from seco.fileutil import atomic_open


class MetricsLog:
    """Append-only metrics log of one run, safe to resume.

    Rows are dicts of step -> scalars. On resume, rows with ``step`` beyond the checkpoint are dropped
    so the CSV shows one continuous run.
    """

    def __init__(self, out_dir: Path, tensorboard: bool = True, resume_step: int | None = None) -> None:
        self.path = out_dir / "metrics.csv"
        self.rows: list[dict[str, Any]] = []
        if resume_step is not None and self.path.exists():
            with self.path.open() as f:
                self.rows = [
                    {k: _num(v) for k, v in r.items()} for r in csv.DictReader(f) if int(r["step"]) <= resume_step
                ]
        self._columns: list[str] = list(self.rows[0].keys()) if self.rows else []
        self._rewrite()
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"), purge_step=resume_step)
            except ImportError:  # pragma: no cover - tensorboard is a declared dependency
                self.tb = None

    def _rewrite(self) -> None:
        with atomic_open(self.path, "w", newline="") as f:
            if self._columns:
                w = csv.DictWriter(f, fieldnames=self._columns)
                w.writeheader()
                w.writerows(self.rows)

    def log(self, row: dict[str, Any]) -> None:
        new_cols = [k for k in row if k not in self._columns]
        self.rows.append(row)
        if new_cols:
            self._columns += new_cols
            self._rewrite()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._columns).writerow(row)
        if self.tb is not None:
            step = int(row["step"])
            for k, v in row.items():
                if k != "step" and isinstance(v, int | float) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()

    def plot(self, out_png: Path, title: str = "") -> Path | None:
        """Curves of loss, per-head loss and accuracy, learning rate and throughput."""
        if not self.rows:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = [r["step"] for r in self.rows]
        fig, axes = plt.subplots(2, 2, figsize=(11, 7))
        ax = axes[0][0]
        ax.plot(steps, [r["loss"] for r in self.rows], label="total")
        for k in self._columns:
            if k.startswith("loss/"):
                ax.plot(steps, [r.get(k) for r in self.rows], label=k.split("/", 1)[1], alpha=0.8)
        ax.set_title("InfoNCE loss")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax = axes[0][1]
        for k in self._columns:
            if k.startswith("acc/"):
                ax.plot(steps, [r.get(k) for r in self.rows], label=k.split("/", 1)[1])
        ax.set_title("top-1 accuracy of the positive key (%)")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax = axes[1][0]
        ax.plot(steps, [r["lr"] for r in self.rows])
        ax.set_title("learning rate")
        ax.set_xlabel("step")
        ax = axes[1][1]
        ax.plot(steps, [r["samples_per_s"] for r in self.rows])
        ax.set_title("throughput (samples/s, all ranks)")
        ax.set_xlabel("step")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        try:
            with atomic_open(out_png, "wb") as f:
                fig.savefig(f, dpi=100, format="png")
        finally:
            plt.close(fig)
        return out_png


def _num(v: str) -> Any:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f
