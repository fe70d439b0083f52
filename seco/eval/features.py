"""Feature extraction through a frozen backbone, in batches, on any device."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from seco.data.normalize import Normalization
from seco.models.resnet import ResNet


@torch.no_grad()
def extract_features(
    model: ResNet,
    batches: Iterable[torch.Tensor],
    normalization: Normalization | None,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    progress: bool = False,
    total: int | None = None,
) -> np.ndarray:
    """Pooled features of every image.

    Args:
        model: the backbone (put in eval mode here; its weights are not changed).
        batches: float reflectance tensors (B, C, H, W), bands in the model's order.
        normalization: applied on the device before the forward pass.

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
