"""``make demo`` / ``seco demo``: the whole system offline on the built-in simulated archive.

synth store -> SeCo pre-training (a few minutes) -> export -> linear probe on the synth land-cover labels,
SeCo against a random-init backbone -> ``report.md`` with the training curves and the probe results.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from seco.bands import parse_bands


def _probe_images(store, bands: tuple[str, ...], crop: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """One valid date per location, centre-cropped: (N, C, crop, crop) reflectance, and the labels."""
    from seco.bands import indices

    rng = np.random.default_rng(seed)
    idx = indices(bands, store.bands)
    labels = store.labels()
    xs = []
    for i in range(len(store)):
        valid = np.flatnonzero(store.valid(i))
        d = int(rng.choice(valid))
        img = store.read(i, dates=[d], bands=[store.bands[j] for j in idx])[0]  # (C, H, W)
        off = (img.shape[-1] - crop) // 2
        xs.append(torch.from_numpy(img[:, off : off + crop, off : off + crop].astype(np.float32) / 10000.0))
    return torch.stack(xs), np.asarray(labels)


def _split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified 60/20/20 split of indices."""
    rng = np.random.default_rng(seed)
    tr, va, te = [], [], []
    for c in np.unique(labels):
        ids = rng.permutation(np.flatnonzero(labels == c))
        n_tr, n_va = int(round(0.6 * len(ids))), int(round(0.2 * len(ids)))
        tr += list(ids[:n_tr])
        va += list(ids[n_tr : n_tr + n_va])
        te += list(ids[n_tr + n_va :])
    return np.array(tr), np.array(va), np.array(te)


def run_demo(
    out: Path,
    minutes: float = 3.0,
    seed: int = 0,
    locations: int = 512,
    patch_size: int = 96,
    crop: int = 64,
    batch_size: int = 64,
) -> Path:
    """Run the demo into ``out`` and return the path of its Markdown report."""
    from seco.eval.backbone import load_backbone
    from seco.eval.features import extract_features
    from seco.eval.probe import linear_probe
    from seco.store import open_store
    from seco.synth import make_store
    from seco.train.config import PretrainConfig
    from seco.train.export import export_run
    from seco.train.loop import pretrain

    torch.set_num_threads(max(1, torch.get_num_threads()))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    store_path = out / "store"
    print(f"[1/4] synth store: {locations} locations x 5 dates x 12 bands x {patch_size} px")
    make_store(store_path, num_locations=locations, patch_size=patch_size, seed=seed, progress=True)  # resumes
    store = open_store(store_path)
    bands = parse_bands("all", store.bands)

    run = out / "pretrain"
    print(f"[2/4] SeCo pre-training, ResNet-18, {len(bands)} bands, {crop} px views, {minutes:g} min budget")
    cfg = PretrainConfig(
        store=str(store_path), out=str(run), method="seco", backbone="resnet18", bands="all", crop=crop,
        batch_size=batch_size, epochs=1000, max_minutes=minutes, queue_size=4096, schedule="cosine",
        log_every=5, ckpt_every=50, plot_every=50, seed=seed, tensorboard=False,
    )
    res = pretrain(cfg, resume=(run / "last.ckpt").exists())

    print("[3/4] export")
    paths = export_run(res.checkpoint, out / "weights" / "seco_resnet18")
    weights = next(p for p in paths if p.suffix == ".safetensors")

    print("[4/4] linear probe on the synth land-cover labels: SeCo vs random init")
    x, y = _probe_images(store, bands, crop, seed)
    tr, va, te = _split(y, seed)
    results = {}
    for name, w in (("SeCo (this run)", str(weights)), ("random init", "random")):
        lb = load_backbone(w, bands, "resnet18")
        norm = lb.normalization or open_norm(run)
        before = {k: v.clone() for k, v in lb.model.state_dict().items()}
        f = extract_features(lb.model, x.split(128), norm)
        after = lb.model.state_dict()
        if not all(torch.equal(before[k], after[k]) for k in before):
            raise RuntimeError("the frozen backbone changed during feature extraction")
        r = linear_probe(f[tr], y[tr], f[va], y[va], f[te], y[te])
        results[name] = {"test_acc": r.test_acc, "val_acc": r.val_acc, "C": r.best_c}
        print(f"    {name}: test accuracy {100 * r.test_acc:.1f} % (C={r.best_c:g})")
    (out / "probe.json").write_text(json.dumps(results, indent=2))
    _plot_probe(results, out / "probe.png")

    names = store.label_names or [str(c) for c in np.unique(y)]
    lines = [
        "# seco demo report",
        "",
        f"Simulated archive: {len(store)} locations x {store.num_dates} dates x {len(bands)} bands x "
        f"{store.patch_size} px; land-cover classes: {', '.join(names)}.",
        "",
        f"SeCo pre-training: ResNet-18, {res.steps} steps of batch {batch_size} at {crop} px "
        f"({minutes:g} min budget), final loss {res.final_loss:.3f}.",
        "",
        "![training curves](pretrain/curves.png)",
        "",
        "## Linear probe (one date per location, stratified 60/20/20 split, C chosen on validation)",
        "",
        "| backbone | test accuracy | val accuracy | C |",
        "|---|---|---|---|",
        *[
            f"| {n} | {100 * r['test_acc']:.1f} % | {100 * r['val_acc']:.1f} % | {r['C']:g} |"
            for n, r in results.items()
        ],
        "",
        "![probe](probe.png)",
        "",
        f"Exported weights: `{weights.relative_to(out)}` (+ `.pth`, `.json` sidecar with bands and normalisation).",
        "",
        f"Total time: {(time.time() - t0) / 60:.1f} min.",
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def open_norm(run: Path):
    from seco.data.normalize import Normalization

    return Normalization.from_dict(json.loads((run / "normalization.json").read_text()))


def _plot_probe(results: dict, png: Path) -> None:
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
