"""Weights resolution, band matching by name, normalisation units, and the frozen-backbone guard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seco.backbones import build_backbone
from seco.bands import L1C, L2A, RGB
from seco.data.eurosat import EuroSAT
from seco.errors import BandError, CheckpointError
from seco.eval.backbone import (
    FrozenBackboneError,
    check_unchanged,
    load_backbone,
    load_weights,
    normalization_from_meta,
    resolve_bands,
    snapshot,
)
from seco.models.official import official_normalization
from tests.eval._helpers import fakes, make_export


def test_export_is_read_with_its_bands_and_normalisation(export_l1c_reversed: Path) -> None:
    lb = load_backbone(str(export_l1c_reversed), tuple(L1C))
    assert lb.kind == "export" and lb.bands == tuple(reversed(L1C)) and lb.name == "resnet18"
    assert lb.normalization is not None and lb.normalization.bands == lb.bands
    assert lb.normalization.mean[0] == pytest.approx(0.1) and len(lb.sha256) == 64
    stem = str(export_l1c_reversed.with_suffix(""))  # the stem and the .json load too
    assert load_backbone(stem, tuple(L1C)).sha256 == lb.sha256


def test_band_mismatch_is_refused(export_l1c_reversed: Path) -> None:
    with pytest.raises(BandError, match="missing B10"):
        load_backbone(str(export_l1c_reversed), tuple(L2A))
    with pytest.raises(BandError, match="trained on bands"):
        resolve_bands(tuple(reversed(L1C)), "B02,B03,B04", L1C, "w")
    with pytest.raises(BandError, match="does not have"):
        resolve_bands(tuple(L1C), None, L2A, "w")  # B10 missing from an L2A dataset
    assert resolve_bands(tuple(RGB), None, L1C, "w") == RGB  # the weights' order, not the data's
    assert resolve_bands(tuple(RGB), "B02,B03,B04", L1C, "w") == RGB  # same set in another order is fine
    assert resolve_bands(None, None, L2A, "random") == L2A


def test_data_is_read_in_the_weights_band_order(fake_eurosat: Path, export_l1c_reversed: Path) -> None:
    spec = load_weights(str(export_l1c_reversed))
    bands = resolve_bands(spec.bands, None, L1C, "w")
    img = EuroSAT(fake_eurosat, bands=bands)[0]["image"].numpy()  # (13, 64, 64)
    codes = [int(np.median(fakes.band_code(img[c]))) for c in range(13)]
    assert codes == [L1C.index(b) for b in reversed(L1C)]


def test_plain_state_dict_needs_weights_bands(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_backbone("resnet18", 3, num_classes=1000)  # with fc, as torchvision saves it
    path = tmp_path / "tv_resnet18.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, path)
    with pytest.raises(CheckpointError, match="--weights-bands"):
        load_weights(str(path))
    with pytest.raises(BandError, match="takes 3"):
        load_weights(str(path), weights_bands="B02,B03")
    lb = load_backbone(str(path), RGB, weights_bands="B04,B03,B02")
    assert lb.kind == "state_dict" and lb.normalization is None and lb.bands == RGB
    assert torch.equal(lb.model.conv1.weight, net.conv1.weight)


def test_random_init_is_seeded_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = load_backbone("random", RGB, seed=5).model
    assert torch.equal(torch.rand(1), expected_next)
    b = load_backbone("random", RGB, seed=5).model
    c = load_backbone("random", RGB, seed=6).model
    assert torch.equal(a.conv1.weight, b.conv1.weight) and not torch.equal(a.conv1.weight, c.conv1.weight)


def test_official_normalisation_is_converted_from_dn_to_reflectance() -> None:
    norm, clip = normalization_from_meta(official_normalization())
    d = official_normalization()
    assert norm is not None and clip is not None and norm.bands == RGB
    assert norm.mean[0] == pytest.approx(d["mean"][0] / 10000) and clip[0][1] == pytest.approx(d["clip_dn"][0][1] / 1e4)
    assert 0 < norm.mean[0] < 1  # reflectance units
    norm2, clip2 = normalization_from_meta({"bands": ["B02"], "mean": [0.1], "std": [0.2], "method": "meanstd"})
    assert norm2 is not None and norm2.mean == (0.1,) and clip2 is None


def test_frozen_guard_detects_a_changed_weight_and_batchnorm_drift(tmp_path: Path) -> None:
    net = make_export(tmp_path / "w", RGB)
    model = load_backbone(str(net), RGB).model.eval()
    before = snapshot(model)
    with torch.no_grad():
        model.forward_features(torch.randn(2, 3, 64, 64))
    check_unchanged(before, model)  # eval-mode inference changes nothing
    with torch.no_grad():
        model.layer2[0].conv1.weight[0, 0, 0, 0] += 1e-6
    with pytest.raises(FrozenBackboneError, match="layer2.0.conv1.weight"):
        check_unchanged(before, model)
    model2 = load_backbone(str(net), RGB).model
    before2 = snapshot(model2)
    model2.train()
    with torch.no_grad():
        model2.forward_features(torch.randn(2, 3, 64, 64))  # train-mode BatchNorm updates running stats
    with pytest.raises(FrozenBackboneError, match="running_mean"):
        check_unchanged(before2, model2)
