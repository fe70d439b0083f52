"""Per-subspace features (the paper's Figure 2 idea): the backbone and each projection head, side by side.

SeCo's heads are trained to be invariant to different things (:mod:`seco.data.views`): head 0 to the date and
the augmentation, head 1 to the date only, head 2 to the augmentation only (it is *variant* to the date: the
batch's other-date key views are its negatives). For each embedding space
(``backbone``: the pooled features; ``head<i>``: the L2-normalised output of projection head i) this
reports, on the labelled simulated store:

- ``landcover``: linear-probe accuracy (the season-invariant task);
- ``season_consistency``: how much closer a location's embeddings at two different dates are than two
  different locations' (mean cosine similarity of same-location pairs minus that of shuffled pairs, after
  standardising each dimension). High: the space ignores the season; low: it keeps it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from seco.data.splits import stratified_split
from seco.eval.config import DEFAULT_CS
from seco.eval.features import extract_features, image_stats
from seco.eval.probe import linear_probe


def probe_pairs(store: Any, bands: tuple[str, ...], crop: int, seed: int
                ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Two different valid dates per location, centre-cropped: (N, C, crop, crop) twice, and (N,) labels."""
    from seco.bands import indices

    rng = np.random.default_rng([seed, 7])
    names = [store.bands[j] for j in indices(bands, store.bands)]
    xa, xb = [], []
    for i in range(len(store)):
        d = rng.choice(np.flatnonzero(store.valid(i)), size=2, replace=False)
        img = store.read(i, dates=[int(v) for v in d], bands=names)  # (2, C, H, W)
        off = (img.shape[-1] - crop) // 2
        img = torch.from_numpy(img[..., off : off + crop, off : off + crop].astype(np.float32) / 10000.0)
        xa.append(img[0])
        xb.append(img[1])
    return torch.stack(xa), torch.stack(xb), np.asarray(store.labels())


def _heads(ckpt: Path) -> list[torch.nn.Module]:
    """The query projection heads of a training checkpoint, in order."""
    from seco.models.heads import ProjectionHead
    from seco.train.run_checkpoint import load_checkpoint

    sd = load_checkpoint(ckpt)["model"]
    heads: list[torch.nn.Module] = []
    i = 0
    while f"heads_q.{i}.0.weight" in sd:
        w0, w2 = sd[f"heads_q.{i}.0.weight"], sd[f"heads_q.{i}.2.weight"]
        h = ProjectionHead(w0.shape[1], w2.shape[0], hidden_dim=w0.shape[0])
        h.load_state_dict({k.split(".", 2)[2]: v for k, v in sd.items() if k.startswith(f"heads_q.{i}.")})
        heads.append(h.eval())
        i += 1
    return heads


def season_consistency(za: np.ndarray, zb: np.ndarray, seed: int) -> float:
    """Mean cosine of same-location pairs minus that of shuffled pairs, on standardised (N, D) embeddings."""
    z = np.concatenate([za, zb])
    mu, sd = z.mean(axis=0), z.std(axis=0) + 1e-6
    a, b = (za - mu) / sd, (zb - mu) / sd
    a /= np.linalg.norm(a, axis=1, keepdims=True) + 1e-12
    b /= np.linalg.norm(b, axis=1, keepdims=True) + 1e-12
    perm = np.random.default_rng(seed).permutation(len(b))
    return float((a * b).sum(axis=1).mean() - (a * b[perm]).sum(axis=1).mean())


def subspace_scores(weights: str, ckpt: Path, bands: tuple[str, ...], seed: int, xa: torch.Tensor,
                    xb: torch.Tensor, y: np.ndarray, split_seed: int) -> dict[str, dict[str, float]]:
    """``{space: {"landcover": accuracy, "season_consistency": score}}`` for the backbone and every head."""
    from seco.eval.backbone import check_unchanged, load_backbone, snapshot

    lb = load_backbone(weights, bands, "resnet18", seed=seed)
    order = [bands.index(b) for b in lb.bands]
    xa, xb = xa[:, order], xb[:, order]
    parts = stratified_split(y, split_seed, (0.6, 0.2, 0.2))
    tr, va, te = parts["train"], parts["val"], parts["test"]
    norm = image_stats([xa[tr]], lb.bands)
    before = snapshot(lb.model)
    fa = extract_features(lb.model, xa.split(128), norm)  # (N, D)
    fb = extract_features(lb.model, xb.split(128), norm)
    check_unchanged(before, lb.model, "subspace features")
    spaces = {"backbone": (fa, fb)}
    with torch.no_grad():
        for i, h in enumerate(_heads(ckpt)):
            za = torch.nn.functional.normalize(h(torch.from_numpy(fa)), dim=1).numpy()
            zb = torch.nn.functional.normalize(h(torch.from_numpy(fb)), dim=1).numpy()
            spaces[f"head{i}"] = (za, zb)
    out = {}
    for name, (za, zb) in spaces.items():
        r = linear_probe(za[tr], y[tr], za[va], y[va], za[te], y[te], cs=DEFAULT_CS)
        out[name] = {"landcover": r.test_acc, "season_consistency": season_consistency(za, zb, seed)}
    return out
