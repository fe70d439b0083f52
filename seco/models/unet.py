"""Change detection over a frozen ResNet: feature differences of two dates decoded by a light U-Net.

The design of the SeCo paper (Mañas et al. 2021, OSCD experiment):

- the **encoder** runs both dates through the same frozen ResNet and keeps five feature maps: the raw
  ``conv1`` output (before its BatchNorm and ReLU, as the paper's index-0 feature of the Sequential
  encoder) and the outputs of ``layer1`` .. ``layer4``; each is reduced to the absolute difference of the
  two dates, ``|f(x1) - f(x2)|``;
- the **decoder** starts from the deepest difference and, for each shallower level: upsample x2
  (nearest), 3x3 conv to the skip's channels, concatenate the skip, 3x3 conv (no bias) - BatchNorm - ReLU -
  Dropout2d; then a last x2 upsample and a 1x1 conv to one change logit per pixel.

Shapes for a ResNet-18 and a 96 px input: differences (64, 48), (64, 24), (128, 12), (256, 6), (512, 3);
logits (N, 1, 96, 96). Any input side works (upsampling goes to the skip's exact size); a side that is a
multiple of 32 keeps every level aligned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seco.backbones import get_backbone
from seco.models.resnet import ResNet


class SiameseDifferenceEncoder(nn.Module):
    """``|f(x1) - f(x2)|`` at conv1 (raw) and layer1..layer4 of one frozen ResNet.

    Args:
        backbone: the ResNet; it is put in eval mode and its parameters stop requiring gradients.
    """

    def __init__(self, backbone: ResNet) -> None:
        super().__init__()
        self.backbone = backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.channels = get_backbone(backbone.name).pyramid_channels

    def train(self, mode: bool = True) -> SiameseDifferenceEncoder:
        """The encoder stays in eval mode whatever the caller asks (frozen BatchNorm statistics)."""
        super().train(False)
        return self

    def _pyramid(self, x: Tensor) -> list[Tensor]:
        b = self.backbone
        c0 = b.conv1(x)  # (N, 64, H/2, W/2), raw as in the paper
        c1 = b.layer1(b.maxpool(b.relu(b.bn1(c0))))  # (N, 64e, H/4, W/4)
        c2 = b.layer2(c1)  # (N, 128e, H/8, W/8)
        c3 = b.layer3(c2)  # (N, 256e, H/16, W/16)
        c4 = b.layer4(c3)  # (N, 512e, H/32, W/32)
        return [c0, c1, c2, c3, c4]

    @torch.no_grad()
    def forward(self, x1: Tensor, x2: Tensor) -> list[Tensor]:
        """(N, C, H, W) twice -> five (N, c_i, H_i, W_i) absolute differences, shallow to deep."""
        both = self._pyramid(torch.cat([x1, x2]))  # one pass over 2N images
        n = x1.shape[0]
        return [torch.abs(f[:n] - f[n:]) for f in both]


class ChangeUNet(nn.Module):
    """The decoder (see the module docstring).

    Args:
        channels: channels of the encoder features, shallow to deep (e.g. ``(64, 64, 128, 256, 512)``).
        dropout: Dropout2d rate after each merge (paper: 0.3).
        out_channels: logits per pixel (1 for change / no change).
    """

    def __init__(self, channels: tuple[int, ...], dropout: float = 0.3, out_channels: int = 1) -> None:
        super().__init__()
        self.channels = tuple(channels)
        levels = len(channels) - 1
        self.reduce = nn.ModuleList(
            nn.Conv2d(channels[i + 1], channels[i], kernel_size=3, padding=1) for i in range(levels)
        )
        self.merge = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(2 * channels[i], channels[i], kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(channels[i]),
                nn.ReLU(inplace=True),
                nn.Dropout2d(dropout),
            )
            for i in range(levels)
        )
        self.head = nn.Conv2d(channels[0], out_channels, kernel_size=1)

    def forward(self, feats: list[Tensor], size: tuple[int, int]) -> Tensor:
        """Five differences (shallow to deep) -> (N, out_channels, *size) logits."""
        x = feats[-1]  # (N, c4, H/32, W/32)
        for i in range(len(feats) - 2, -1, -1):
            skip = feats[i]  # (N, c_i, H_i, W_i)
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")  # (N, c_{i+1}, H_i, W_i)
            x = self.reduce[i](x)  # (N, c_i, H_i, W_i)
            x = self.merge[i](torch.cat([x, skip], dim=1))  # (N, c_i, H_i, W_i)
        x = F.interpolate(x, size=size, mode="nearest")  # (N, c0, H, W)
        return self.head(x)  # (N, out, H, W)


class ChangeDetector(nn.Module):
    """Frozen Siamese difference encoder + trainable U-Net decoder: ``(x1, x2) -> (N, 1, H, W)`` logits."""

    def __init__(self, backbone: ResNet, dropout: float = 0.3) -> None:
        super().__init__()
        self.encoder = SiameseDifferenceEncoder(backbone)
        self.decoder = ChangeUNet(self.encoder.channels, dropout)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.decoder(self.encoder(x1, x2), (x1.shape[-2], x1.shape[-1]))
