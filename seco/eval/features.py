"""Feature extraction through a frozen backbone, a content-keyed on-disk feature cache, dataset statistics.

Cache: one ``<key>.npz`` (features + item names) and ``<key>.json`` (what the key was made of) per dataset
split, where ``key = sha256`` of a canonical JSON of the weights' content hash, the dataset (task, root,
split, the split's item names), the input transform (bands, normalisation, clip, image size) and the
precision. Any change to one of those is a new key; a hit is checked against the split's item names
before use. Writes are atomic (temporary file + rename), so an interrupted run never leaves a bad entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from seco.data.normalize import Normalization
from seco.fileutil import atomic_open, atomic_write
from seco.models.resnet import ResNet


class Transform(Protocol):
    """Anything with ``apply(x) -> x`` on (B, C, H, W): a Normalization or an InputTransform."""

    def apply(self, x: Tensor) -> Tensor: ...


@torch.no_grad()
def extract_features(
    model: ResNet,
    batches: Iterable[torch.Tensor],
    normalization: Transform | None,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    progress: bool = False,
    total: int | None = None,
) -> np.ndarray:
    """Pooled features of every image.

    Args:
        model: the backbone (put in eval mode here; its weights are not changed).
        batches: float reflectance tensors (B, C, H, W), bands in the model's order.
        normalization: applied on the device before the forward pass (``.apply``).
        device: where to run.
        bf16: autocast the forward pass to bfloat16.
        progress: show a progress bar of ``total`` batches.

    Returns:
        (N, D) float32 features.
    """
    dev = torch.device(device)
    model = model.to(dev).eval()
    out = []
    it = batches
    if progress:
        from tqdm import tqdm

        it = tqdm(batches, total=total, desc="features", unit="batch", leave=False)
    for x in it:
        x = x.to(dev, non_blocking=True).float()
        if normalization is not None:
            x = normalization.apply(x)
        if bf16:
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
                f = model.forward_features(x)
        else:
            f = model.forward_features(x)
        out.append(f.float().cpu().numpy())
    return np.concatenate(out, axis=0) if out else np.zeros((0, model.feature_dim), np.float32)


def stack_images(samples: list[dict[str, Any]]) -> Tensor:
    """DataLoader collate: the ``image`` of every sample dict -> (B, C, H, W)."""
    return torch.stack([s["image"] for s in samples])


def image_batches(dataset: Dataset, batch_size: int, num_workers: int = 0) -> Iterator[Tensor]:
    """(B, C, H, W) image batches of a sample-dict dataset, in dataset order."""
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=stack_images
    )
    yield from loader


def default_cache_dir() -> Path:
    """``$SECO_CACHE_DIR`` or ``~/.cache/seco``."""
    env = os.environ.get("SECO_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "seco"


def cache_key(parts: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``parts``."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def names_digest(names: Iterable[str]) -> str:
    """sha256 of a list of item names (identifies a split's content cheaply)."""
    h = hashlib.sha256()
    for n in names:
        h.update(n.encode())
        h.update(b"\n")
    return h.hexdigest()


class FeatureCache:
    """Features of dataset splits on disk, keyed by content (see the module docstring).

    Args:
        root: cache folder (created on first write); ``None`` disables caching.
    """

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root) / "features" if root is not None else None

    def path(self, key: str) -> Path | None:
        return self.root / f"{key}.npz" if self.root is not None else None

    def load(self, key: str, names: list[str]) -> np.ndarray | None:
        """The cached (N, D) features, or None on a miss (or an entry for other items)."""
        p = self.path(key)
        if p is None or not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                if z["names"].tolist() != list(names):
                    return None
                return np.asarray(z["features"], dtype=np.float32)
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is recomputed and overwritten

    def save(self, key: str, features: np.ndarray, names: list[str], parts: Mapping[str, Any]) -> None:
        p = self.path(key)
        if p is None:
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(p, "wb") as f:
            np.savez(f, features=features.astype(np.float32), names=np.asarray(names, dtype=str))
        atomic_write(p.with_suffix(".json"), json.dumps(dict(parts), indent=2, sort_keys=True, default=str))


def cached_features(
    cache: FeatureCache,
    parts: Mapping[str, Any],
    names: list[str],
    model: ResNet,
    dataset: Dataset,
    transform: Transform | None,
    batch_size: int,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    progress: bool = False,
) -> tuple[np.ndarray, bool]:
    """Features of ``dataset`` from the cache, or computed and stored.

    Args:
        parts: what identifies the features (weights hash, dataset, split, transform); hashed to the key.
        names: the dataset's item names in order (checked against the cached entry).

    Returns:
        ((N, D) float32 features, whether the cache was hit).
    """
    key = cache_key(parts)
    hit = cache.load(key, names)
    if hit is not None:
        return hit, True
    n_batches = (len(dataset) + batch_size - 1) // batch_size  # type: ignore[arg-type]
    feats = extract_features(
        model, image_batches(dataset, batch_size, num_workers), transform, device, bf16, progress, n_batches
    )
    cache.save(key, feats, names, parts)
    return feats, False


def image_stats(images: Iterable[Tensor], bands: tuple[str, ...]) -> Normalization:
    """Per-band mean / std (reflectance) over every pixel of ``images`` ((B, C, H, W) or (C, H, W) tensors).

    Accumulated in float64 (sums of x and x^2 per band), so the result does not depend on batching. NaN (S1 no
    data) are left out, per band; a band without any value gets mean 0, std 1.
    """
    n = np.zeros(len(bands), np.float64)
    s = np.zeros(len(bands), np.float64)
    s2 = np.zeros(len(bands), np.float64)
    for x in images:
        a = x.detach().cpu().double().numpy()
        a = a.reshape(-1, *a.shape[-3:]) if a.ndim >= 3 else a
        a = np.moveaxis(a, -3, 0).reshape(len(bands), -1)  # (C, pixels)
        ok = np.isfinite(a)
        if not ok.all():
            a = np.where(ok, a, 0.0)
        n += ok.sum(axis=1)
        s += a.sum(axis=1)
        s2 += (a * a).sum(axis=1)
    mean = s / np.maximum(n, 1)
    std = np.sqrt(np.maximum(s2 / np.maximum(n, 1) - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)  # a constant band is only centred
    return Normalization(bands, tuple(mean.tolist()), tuple(std.tolist()), method="meanstd")


def dataset_stats(
    dataset: Dataset,
    bands: tuple[str, ...],
    max_images: int,
    seed: int,
    cache_root: str | Path | None,
    parts: Mapping[str, Any],
    batch_size: int = 64,
    num_workers: int = 0,
) -> Normalization:
    """Per-band statistics of a seeded sample of up to ``max_images`` images of ``dataset`` (cached)."""
    key = cache_key({**parts, "max_images": max_images, "seed": seed, "kind": "stats"})
    path = Path(cache_root) / "stats" / f"{key}.json" if cache_root is not None else None
    if path is not None and path.is_file():
        try:
            return Normalization.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass
    n = len(dataset)  # type: ignore[arg-type]
    idx = np.arange(n)
    if n > max_images:
        idx = np.sort(np.random.default_rng(seed).choice(n, max_images, replace=False))
    subset = torch.utils.data.Subset(dataset, idx.tolist())
    norm = image_stats(image_batches(subset, batch_size, num_workers), bands)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(norm.to_dict()))
    return norm
