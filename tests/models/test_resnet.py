"""ResNet-18/50: torchvision-identical state dicts, shapes, channels_last, initialisation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from seco.backbones import build_backbone
from seco.errors import ConfigError

torch.set_num_threads(1)


def _reference(shared_dir: Path) -> dict:
    path = shared_dir / "reference" / "torchvision_resnet_state_dict_keys.json"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("in_chans", [3, 12])
def test_state_dict_matches_torchvision(shared_dir: Path, name: str, in_chans: int) -> None:
    ref = _reference(shared_dir)[name]
    sd = build_backbone(name, in_chans).state_dict()
    ours = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in sd.items()]
    expected = [
        (k, [shape[0], in_chans, *shape[2:]] if k == "conv1.weight" else shape, dtype)
        for k, shape, dtype in ref
    ]
    assert ours == expected  # same keys, same order, same shapes and dtypes


def test_no_classifier_has_no_fc_keys(shared_dir: Path) -> None:
    ref = _reference(shared_dir)["resnet18"]
    sd = build_backbone("resnet18", 12, num_classes=0).state_dict()
    assert list(sd) == [k for k, _, _ in ref if not k.startswith("fc.")]


def test_unknown_backbone_and_bad_channels_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="vit_b16.*resnet18"):
        build_backbone("vit_b16", 12)
    with pytest.raises(ConfigError, match="in_chans"):
        build_backbone("resnet18", 0)
    m = build_backbone("resnet18", 12)
    with pytest.raises(ConfigError, match=r"\(N, 12, H, W\).*\(2, 3, 32, 32\)"):
        m.forward_features(torch.zeros(2, 3, 32, 32))


def test_forward_shapes_resnet18() -> None:
    m = build_backbone("resnet18", 12).eval()
    x = torch.randn(2, 12, 64, 64)
    with torch.no_grad():
        assert m.feature_dim == 512
        assert m.forward_features(x).shape == (2, 512)
        assert m(x).shape == (2, 1000)
        pyr = m.forward_pyramid(x)
    assert [tuple(t.shape) for t in pyr] == [
        (2, 64, 32, 32),
        (2, 64, 16, 16),
        (2, 128, 8, 8),
        (2, 256, 4, 4),
        (2, 512, 2, 2),
    ]
    assert (pyr[0] >= 0).all()  # stem is after the ReLU


def test_forward_shapes_resnet50_without_classifier() -> None:
    m = build_backbone("resnet50", 4, num_classes=0).eval()
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        assert m.feature_dim == 2048
        assert m(x).shape == (1, 2048)  # no fc: forward returns features
        pyr = m.forward_pyramid(x)
    assert [tuple(t.shape) for t in pyr] == [
        (1, 64, 16, 16),
        (1, 256, 8, 8),
        (1, 512, 4, 4),
        (1, 1024, 2, 2),
        (1, 2048, 1, 1),
    ]


def test_features_are_the_pooled_last_stage() -> None:
    m = build_backbone("resnet18", 3, num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = m.forward_features(x)
        assert torch.allclose(feats, m.forward_pyramid(x)[-1].mean(dim=(2, 3)), atol=1e-6)
        assert torch.allclose(m(x), m.fc(feats))


def test_channels_last_gives_the_same_output() -> None:
    torch.manual_seed(0)
    m = build_backbone("resnet18", 12).eval()
    x = torch.randn(2, 12, 64, 64)
    with torch.no_grad():
        ref = m.forward_features(x)
        m_cl = m.to(memory_format=torch.channels_last)
        out = m_cl.forward_features(x.contiguous(memory_format=torch.channels_last))
        pyr = m_cl.forward_pyramid(x.contiguous(memory_format=torch.channels_last))
    assert m_cl.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert pyr[1].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_initialisation_follows_torchvision() -> None:
    torch.manual_seed(0)
    m = build_backbone("resnet18", 12)
    w = m.layer3[0].conv1.weight  # (256, 128, 3, 3): kaiming normal, fan_out = 256 * 9
    assert w.std().item() == pytest.approx(math.sqrt(2.0 / (256 * 9)), rel=0.05)
    assert abs(w.mean().item()) < 0.1 * w.std().item()
    w1 = m.conv1.weight  # (64, 12, 7, 7): fan_out = 64 * 49, independent of the band count
    assert w1.std().item() == pytest.approx(math.sqrt(2.0 / (64 * 49)), rel=0.05)
    for bn in (m.bn1, m.layer4[1].bn2):
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
