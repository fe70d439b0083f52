"""The downstream tasks of ``seco experiment compare``, one backbone at a time, under one normalisation policy.

Every backbone (pre-trained or random) is normalised with the statistics of the evaluation data's own
training part (``data`` policy): an export's statistics come from its pre-training store, which may differ
from the evaluation data (L2A vs L1C, another simulator seed), and random init has none; using the data's
own for everyone makes the backbone the only difference between rows.

- ``landcover``: linear probe (logistic regression, C on validation) on pooled features of a labelled
  simulated store (one valid date per location, centre crop, stratified 60/20/20 split);
- ``eurosat``: the same probe on the real EuroSAT MS sample, bands matched by name;
- ``change``: the paper's OSCD protocol (frozen encoder, feature differences, U-Net decoder) on a simulated
  OSCD with planted changes;
- ``oscd``: the same on the real OSCD sample (one labelled city held out for testing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from seco.data.splits import stratified_split
from seco.eval.backbone import check_unchanged, load_backbone, snapshot
from seco.eval.config import DEFAULT_CS
from seco.eval.features import extract_features, image_stats
from seco.eval.probe import linear_probe

#: Tasks, their metric and whether the paper's argument says seasonal invariance helps (True) or the
#: task needs sensitivity to change over time (False).
TASKS: dict[str, dict[str, Any]] = {
    "landcover": {"title": "land cover, simulated (linear probe)", "metric": "accuracy", "invariant": True},
    "eurosat": {"title": "EuroSAT MS sample (linear probe)", "metric": "accuracy", "invariant": True},
    "change": {"title": "change detection, simulated pairs (U-Net on feature differences)", "metric": "F1",
               "invariant": False},
    "change_ap": {"title": "change detection, simulated pairs (threshold-free)", "metric": "average precision",
                  "invariant": False},
    "oscd": {"title": "OSCD sample (U-Net on feature differences)", "metric": "F1", "invariant": False},
    "oscd_ap": {"title": "OSCD sample (threshold-free)", "metric": "average precision", "invariant": False},
}


def probe_images(store: Any, bands: tuple[str, ...], crop: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """One valid date per location, centre-cropped: (N, C, crop, crop) reflectance, and (N,) labels."""
    from seco.bands import indices

    rng = np.random.default_rng(seed)
    idx = indices(bands, store.bands)
    xs = []
    for i in range(len(store)):
        d = int(rng.choice(np.flatnonzero(store.valid(i))))
        img = store.read(i, dates=[d], bands=[store.bands[j] for j in idx])[0]  # (C, H, W)
        off = (img.shape[-1] - crop) // 2
        xs.append(torch.from_numpy(img[:, off : off + crop, off : off + crop].astype(np.float32) / 10000.0))
    return torch.stack(xs), np.asarray(store.labels())


def eurosat_images(root: str, bands: tuple[str, ...]) -> tuple[torch.Tensor, np.ndarray]:
    """Every image of a EuroSAT MS folder: (N, C, 64, 64) reflectance in ``bands`` order, (N,) labels."""
    from seco.data.eurosat import EuroSAT
    from seco.errors import DatasetError

    ds = EuroSAT(root, bands=bands)
    if ds.kind != "ms":
        raise DatasetError(f"--eurosat {root} is the RGB release; the comparison needs the multispectral one")
    return torch.stack([ds.load(i) for i in range(len(ds))]), ds.labels


def probe(weights: str, bands: tuple[str, ...], seed: int, x: torch.Tensor, y: np.ndarray, split_seed: int,
          cs: tuple[float, ...] | None = None) -> dict[str, Any]:
    """Linear-probe accuracy of a frozen backbone on (x, y), normalised with the train split's statistics."""
    lb = load_backbone(weights, bands, "resnet18", seed=seed)
    if lb.bands != bands:  # read in the weights' order
        x = x[:, [bands.index(b) for b in lb.bands]]
    parts = stratified_split(y, split_seed, (0.6, 0.2, 0.2))
    tr, va, te = parts["train"], parts["val"], parts["test"]
    norm = image_stats([x[tr]], lb.bands)
    before = snapshot(lb.model)
    f = extract_features(lb.model, x.split(128), norm)  # (N, D)
    check_unchanged(before, lb.model, "linear probe")
    r = linear_probe(f[tr], y[tr], f[va], y[va], f[te], y[te], cs=cs or DEFAULT_CS)
    return {"value": r.test_acc, "val": r.val_acc, "C": r.best_c, "n_train": len(tr), "n_val": len(va),
            "n_test": len(te)}


def change(weights: str, bands: tuple[str, ...], seed: int, root: Path, out: Path, epochs: int, patch: int,
           batch: int, device: str, train_cities: tuple[str, ...] | None = None,
           test_cities: tuple[str, ...] | None = None) -> dict[str, Any]:
    """F1 (all test pixels) of the paper's change-detection protocol, ``data`` normalisation."""
    from seco.eval.change import run_change_detection
    from seco.eval.config import ChangeConfig

    cfg = ChangeConfig(root=str(root), weights=weights, out=str(out), backbone="resnet18", bands=",".join(bands),
                       patch=patch, epochs=epochs, batch_size=batch, seed=seed, device=device, progress=False,
                       train_cities=train_cities, test_cities=test_cities)
    m = run_change_detection(cfg, normalization="data")
    g, b, tf = m["test"]["all_pixels"], m["test"]["per_batch_average"], m["test"]["threshold_free"]
    return {"value": g["f1"], "precision": g["precision"], "recall": g["recall"], "iou": g["iou"],
            "per_batch_f1": b["f1"], "average_precision": tf["average_precision"], "best_f1": tf["best_f1"],
            "steps": epochs * m["train"]["steps_per_epoch"], "time_s": m["timing"]["total_s"]}
