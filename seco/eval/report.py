"""Run outputs: ``metrics.json``, ``report.md``, PNG figures, change maps, and ``seco eval compare``.

Every run's ``metrics.json`` carries a common ``headline`` entry (``{"metric", "value", "by_fraction"}``) so
that runs of different tasks and protocols can be put side by side by :func:`compare_runs`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seco.errors import ConfigError
from seco.fileutil import atomic_write

#: Colours of the change maps (RGB): true positives, false positives, misses, true negatives.
TP_COLOUR = (0, 200, 0)
FP_COLOUR = (230, 30, 30)
FN_COLOUR = (30, 110, 255)
TN_COLOUR = (0, 0, 0)
PAD_COLOUR = (128, 128, 128)


def _clean(obj: Any) -> Any:
    """NaN/inf -> None, numpy scalars/arrays -> Python, so the JSON is strict."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    """Strict JSON (NaN written as null), atomically."""
    atomic_write(path, json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n")


def pct_key(percent: float) -> str:
    """``100.0`` -> ``"100"``, ``0.5`` -> ``"0.5"``."""
    return f"{percent:g}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fmt(v: Any, pct: bool = True, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{100 * v:.{digits}f}" if pct else f"{v:.{digits}g}"


# ---------------------------------------------------------------- figures


def plot_confusion(cm: Sequence[Sequence[int]], classes: Sequence[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with the counts written in the cells."""
    plt = _plt()
    a = np.asarray(cm, dtype=np.float64)
    norm = a / np.maximum(a.sum(axis=1, keepdims=True), 1)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.8 + 0.55 * k))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    for i in range(k):
        for j in range(k):
            if a[i, j]:
                ax.text(j, i, int(a[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_per_class(values: Mapping[str, float | None], path: Path, xlabel: str, title: str) -> None:
    """Horizontal bars of a per-class score (None drawn as an empty row)."""
    plt = _plt()
    names = list(values)
    vals = [100 * v if v is not None else 0.0 for v in values.values()]
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.3 * len(names)))
    ax.barh(range(len(names)), vals, color="tab:blue")
    for i, v in enumerate(values.values()):
        if v is None:  # undefined (e.g. no positive in the test set), not zero
            ax.text(1, i, "n/a", va="center", fontsize=7, color="gray")
    ax.set_yticks(range(len(names)), [n if len(n) < 45 else n[:42] + "..." for n in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_fraction_curve(curves: Mapping[str, Mapping[float, float]], path: Path, ylabel: str, title: str) -> None:
    """Score against the label fraction (log x axis), one line per named curve."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, pts in curves.items():
        xs = sorted(pts)
        ax.plot(xs, [100 * pts[x] for x in xs], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labels used (% of the train split)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(history: Sequence[Mapping[str, float]], path: Path, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([h["epoch"] for h in history], [h["train_loss"] for h in history])
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def rgb_preview(image: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """(C, H, W) reflectance -> (H, W, 3) uint8: B04/B03/B02 when present (else the first three bands, or
    one band as grey), each stretched between its 2nd and 98th percentile."""
    idx = [list(bands).index(b) for b in ("B04", "B03", "B02") if b in bands]
    if len(idx) < 3:
        idx = list(range(min(3, image.shape[0])))
    if len(idx) < 3:
        idx = [idx[0]] * 3
    rgb = image[idx].astype(np.float64)  # (3, H, W)
    lo = np.percentile(rgb, 2, axis=(1, 2), keepdims=True)
    hi = np.percentile(rgb, 98, axis=(1, 2), keepdims=True)
    out = np.clip((rgb - lo) / np.maximum(hi - lo, 1e-9), 0, 1)
    return (255 * out).astype(np.uint8).transpose(1, 2, 0)


def change_map_rgb(pred: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(H, W) booleans -> (H, W, 3) uint8: TP green, FP red, FN blue, TN black, invalid grey."""
    p = np.asarray(pred).astype(bool)
    m = np.asarray(mask).astype(bool)
    out = np.zeros((*p.shape, 3), np.uint8)
    out[p & m] = TP_COLOUR
    out[p & ~m] = FP_COLOUR
    out[~p & m] = FN_COLOUR
    out[~p & ~m] = TN_COLOUR
    if valid is not None:
        out[~np.asarray(valid).astype(bool)] = PAD_COLOUR
    return out


def save_change_panel(rgb1: np.ndarray, rgb2: np.ndarray, cmap: np.ndarray, path: Path) -> None:
    """Date 1 | date 2 | change map side by side, 4 px white gaps, as a PNG (exact colours, no resampling)."""
    from PIL import Image

    h = rgb1.shape[0]
    gap = np.full((h, 4, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([rgb1, gap, rgb2, gap, cmap], axis=1)).save(path)


# ---------------------------------------------------------------- compare


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``metrics.json``.

    Raises:
        ConfigError: when the folder holds no (readable) metrics.json.
    """
    p = Path(run_dir) / "metrics.json"
    if not p.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a seco eval run folder (no metrics.json); pass run --out folders")
    try:
        m = json.loads(p.read_text())
    except ValueError as e:
        raise ConfigError(f"{p} is not valid JSON ({e}); rerun that evaluation") from e
    if not isinstance(m, dict) or "headline" not in m:
        raise ConfigError(f"{p} has no 'headline' entry; it was not written by seco eval")
    return m


def compare_runs(run_dirs: Sequence[str | Path], out: str | Path) -> tuple[str, Path, Path]:
    """One Markdown table and one plot of several runs.

    Returns:
        (the Markdown text, path of ``compare.md``, path of ``compare.png``).
    """
    if not run_dirs:
        raise ConfigError("give at least one run folder to compare")
    runs = [(Path(d), load_run(d)) for d in run_dirs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fracs = sorted({float(f) for _, m in runs for f in (m["headline"].get("by_fraction") or {})})
    show_fracs = len(fracs) > 1
    head = ["run", "task", "protocol", "weights", "backbone", "metric", "value"]
    head += [f"{pct_key(f)} %" for f in fracs] if show_fracs else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d, m in runs:
        h = m["headline"]
        row = [d.name, m.get("task", "?"), m.get("protocol", "?"), f"`{Path(str(m.get('weights', '?'))).name}`",
               m.get("backbone", "?"), h["metric"], fmt(h.get("value"))]
        if show_fracs:
            bf = h.get("by_fraction") or {}
            row += [fmt(bf.get(pct_key(f))) for f in fracs]
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    extra = [
        "",
        "Values in percent; `value` is the headline metric at the largest label fraction "
        "(EuroSAT: test accuracy; BigEarthNet: test micro mAP; OSCD: F1 of the change class over all test pixels).",
    ]
    md = "\n".join(["# seco eval compare", "", *lines, *extra]) + "\n"
    md_path = out / "compare.md"
    md_path.write_text(md)

    plt = _plt()
    curves = {d.name: m["headline"].get("by_fraction") or {} for d, m in runs}
    multi = {n: c for n, c in curves.items() if len(c) > 1}
    fig, axes = plt.subplots(1, 2 if multi else 1, figsize=(11 if multi else 6, 3.8), squeeze=False)
    ax = axes[0, 0]
    names = [d.name for d, _ in runs]
    vals = [100 * (m["headline"].get("value") or 0.0) for _, m in runs]
    metrics = [m["headline"]["metric"] for _, m in runs]
    colours = {k: f"C{i}" for i, k in enumerate(dict.fromkeys(metrics))}
    ax.bar(range(len(names)), vals, color=[colours[k] for k in metrics])
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("headline metric (%)")
    ax.set_ylim(0, 100)
    for k, c in colours.items():
        ax.bar([], [], color=c, label=k)
    ax.legend(fontsize=7)
    if multi:
        ax2 = axes[0, 1]
        for n, curve in multi.items():
            xs = sorted(float(x) for x in curve)
            ax2.plot(xs, [100 * (curve[pct_key(x)] or 0.0) for x in xs], marker="o", label=n)
        ax2.set_xscale("log")
        ax2.set_xlabel("labels used (% of train)")
        ax2.set_ylabel("headline metric (%)")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7)
    fig.tight_layout()
    png = out / "compare.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return md, md_path, png
