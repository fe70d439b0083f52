"""ResNet-18 / ResNet-50 for any number of input bands, written in plain torch.

The module tree mirrors torchvision's ``resnet18()`` / ``resnet50()`` (ResNet v1.5: the stride of a
bottleneck sits on its 3x3 convolution), so ``state_dict()`` keys, shapes and dtypes are identical to
torchvision's; only ``conv1.weight`` differs, in its input channels (``in_chans``). A state dict saved from
here therefore loads into ``torchvision.models.resnet18()`` (3 bands) or
``timm.create_model("resnet18", in_chans=C)`` unchanged.

``num_classes=0`` builds a backbone without a classifier (``fc`` is an identity with no parameters), which is
what the contrastive model uses: every parameter then receives a gradient, as DDP requires.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seco.errors import ConfigError

#: Blocks per stage of each supported architecture.
ARCHS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a residual connection (ResNet-50/101)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """A torchvision-layout ResNet with ``in_chans`` input bands.

    Args:
        name: ``"resnet18"`` or ``"resnet50"``.
        in_chans: number of input bands.
        num_classes: size of the ``fc`` classifier; 0 for none (``forward`` then returns features).
    """

    def __init__(self, name: str, in_chans: int, num_classes: int = 1000):
        super().__init__()
        if name not in ARCHS:
            raise ConfigError(f"unknown backbone {name!r}; choose one of {', '.join(sorted(ARCHS))}")
        if not isinstance(in_chans, int) or in_chans < 1:
            raise ConfigError(
                f"in_chans must be a positive integer, got {in_chans!r}; pass the number of bands"
            )
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0 (0 = no classifier), got {num_classes!r}")
        kind, layers = ARCHS[name]
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock if kind == "basic" else Bottleneck
        self.name = name
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.feature_dim = 512 * block.expansion

        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc: nn.Module = nn.Linear(self.feature_dim, num_classes) if num_classes > 0 else nn.Identity()
        del self.inplanes

        # torchvision's initialisation (fc keeps nn.Linear's default).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        mods: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        mods += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ConfigError(
                f"{self.name} expects input (N, {self.in_chans}, H, W), got {tuple(x.shape)}; "
                "check the band list the model was built for"
            )

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        """Multi-scale features for dense heads (e.g. the change-detection U-Net).

        Args:
            x: (N, C, H, W).

        Returns:
            ``[stem, layer1, layer2, layer3, layer4]`` at strides 2, 4, 8, 16, 32 with
            (64, 64, 128, 256, 512) channels for ResNet-18 and (64, 256, 512, 1024, 2048) for ResNet-50.
            ``stem`` is conv1 -> bn1 -> relu, before the max-pool.
        """
        self._check(x)
        stem = self.relu(self.bn1(self.conv1(x)))  # (N, 64, H/2, W/2)
        c1 = self.layer1(self.maxpool(stem))  # (N, 64e, H/4, W/4)
        c2 = self.layer2(c1)  # (N, 128e, H/8, W/8)
        c3 = self.layer3(c2)  # (N, 256e, H/16, W/16)
        c4 = self.layer4(c3)  # (N, 512e, H/32, W/32)
        return [stem, c1, c2, c3, c4]

    def forward_features(self, x: Tensor) -> Tensor:
        """Globally average-pooled features before ``fc``: (N, C, H, W) -> (N, feature_dim).

        A straight chain rather than :meth:`forward_pyramid`: intermediate maps are released as soon as the
        next stage has them, which matters for the key encoder's no-grad passes at 224 px.
        """
        self._check(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 512e, H/32, W/32)
        return torch.flatten(self.avgpool(x), 1)  # (N, D)

    def forward(self, x: Tensor) -> Tensor:
        """Classifier logits (N, num_classes), or features (N, feature_dim) when ``num_classes == 0``."""
        return self.fc(self.forward_features(x))
