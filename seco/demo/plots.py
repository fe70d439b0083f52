"""The demo's plots: the collected and rejected candidates per tile, and the linear-probe accuracies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_sites(man: dict[str, Any], coll: dict[str, Any], png: Path) -> None:
    """One panel per tile: its footprint, and the candidates collected, rejected or not needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = set(coll["keys"])
    rejected = {lid for lid, _ in coll["summary"].rejected}
    cands = coll["candidates"]
    centres = coll["centres"]
    sites = man["sites"]
    fig, axes = plt.subplots(1, len(sites), figsize=(4.2 * len(sites), 4.2), squeeze=False)
    for k, ax in enumerate(axes[0]):
        boxes = np.array([s["bbox"] for s in man["scenes"] if s["site"] == sites[k]["index"]])
        w, so, e, n = boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()
        ax.plot([w, e, e, w, w], [so, so, n, n, so], color="0.5", lw=1, label="tile (bbox)")
        near = [c for c in cands if int(np.argmin([(c[1] - x) ** 2 + (c[2] - yy) ** 2 for _, x, yy in centres])) == k]
        for label, sel, kw in (
            ("collected", lambda c: str(c[0]) in keys, dict(c="tab:green", marker="o", s=14)),
            ("rejected", lambda c: c[0] in rejected, dict(c="tab:red", marker="x", s=22)),
            ("spare, not needed", lambda c: str(c[0]) not in keys and c[0] not in rejected,
             dict(c="0.6", marker=".", s=10)),
        ):
            pts = [c for c in near if sel(c)]
            if pts:
                ax.scatter([c[1] for c in pts], [c[2] for c in pts], label=f"{label} ({len(pts)})", **kw)
        ax.set_title(centres[k][0], fontsize=9)
        ax.set_xlabel("longitude")
        ax.set_ylabel("latitude")
        ax.set_aspect(1.0 / max(np.cos(np.radians(centres[k][2])), 0.1))
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)


def plot_probe(results: dict[str, dict[str, float]], png: Path) -> None:
    """Bar chart of the probe's test accuracy per backbone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    names = list(results)
    accs = [100 * results[n]["test_acc"] for n in names]
    bars = ax.bar(names, accs, color=["tab:green", "tab:gray"][: len(names)])
    for b, a in zip(bars, accs, strict=True):
        ax.text(b.get_x() + b.get_width() / 2, a + 1, f"{a:.1f} %", ha="center")
    ax.set_ylim(0, 105)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("linear probe on synth land cover")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
