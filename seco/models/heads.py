"""Projection heads mapping backbone features to the contrastive embedding space."""

from __future__ import annotations

from torch import nn

from seco.errors import ConfigError


class ProjectionHead(nn.Sequential):
    """MoCo-v2 / SeCo MLP head: Linear(D, H) -> ReLU -> Linear(H, E).

    A ``nn.Sequential`` whose linear layers sit at indices 0 and 2, so the official checkpoint keys
    ``heads_q.<h>.0.*`` / ``heads_q.<h>.2.*`` load without renaming.

    Args:
        in_dim: backbone feature size D (512 for ResNet-18, 2048 for ResNet-50).
        out_dim: embedding size E (128 in the paper).
        hidden_dim: hidden size H; defaults to ``in_dim`` as in the official code.
    """

    def __init__(self, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None):
        hidden = in_dim if hidden_dim is None else hidden_dim
        for label, v in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden_dim", hidden)):
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"projection head {label} must be a positive integer, got {v!r}")
        super().__init__(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
        self.in_dim, self.out_dim = in_dim, out_dim
