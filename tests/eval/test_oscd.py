"""OSCD change detection: the U-Net over frozen feature differences, and ``seco eval oscd`` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from seco.backbones import build_backbone
from seco.eval.change import PatchSampler, tile_grid
from seco.eval.report import FN_COLOUR, FP_COLOUR, TN_COLOUR, TP_COLOUR
from seco.models.unet import ChangeDetector, ChangeUNet
from tests.eval._helpers import SHARED, fakes


def _detector(name: str = "resnet18", bands: int = 4) -> ChangeDetector:
    torch.manual_seed(0)
    return ChangeDetector(build_backbone(name, bands, num_classes=0), dropout=0.3)


def test_unet_shapes_and_frozen_encoder() -> None:
    m = _detector()
    x1, x2 = torch.randn(2, 4, 96, 96), torch.randn(2, 4, 96, 96)
    feats = m.encoder(x1, x2)
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 48, 48), (64, 24, 24), (128, 12, 12), (256, 6, 6), (512, 3, 3)]
    assert all(torch.all(f == 0) for f in m.encoder(x1, x1))  # same image twice: no difference anywhere
    assert m(x1, x2).shape == (2, 1, 96, 96)
    assert m(torch.randn(1, 4, 50, 70), torch.randn(1, 4, 50, 70)).shape == (1, 1, 50, 70)  # any size
    m.train()
    assert not m.encoder.backbone.training  # stays in eval mode
    assert not any(p.requires_grad for p in m.encoder.parameters())
    chans = (8, 16, 32, 64, 128)  # any channel plan (ResNet-50: 64, 256, 512, 1024, 2048)
    feats = [torch.randn(1, c, 48 // 2**i, 48 // 2**i) for i, c in enumerate(chans)]
    assert ChangeUNet(chans)(feats, (96, 96)).shape == (1, 1, 96, 96)


def test_decoder_learns_a_planted_change_and_only_the_decoder_moves() -> None:
    m = _detector()
    enc_before = {k: v.clone() for k, v in m.encoder.state_dict().items()}
    x1 = torch.randn(4, 4, 32, 32)
    x2 = x1.clone()
    mask = torch.zeros(4, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    x2[:, :, 8:24, 8:24] += 3.0
    opt = torch.optim.Adam(m.decoder.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        m.train()
        loss = F.binary_cross_entropy_with_logits(m(x1, x2), mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(enc_before[k], v) for k, v in m.encoder.state_dict().items())


def test_patch_sampler_and_tile_grid() -> None:
    city = {"x1": torch.arange(2 * 20 * 30.0).reshape(2, 20, 30), "mask": torch.zeros(20, 30, dtype=torch.uint8)}
    city["x2"] = city["x1"] + 1
    city["mask"][5:10, 5:10] = 1
    s = PatchSampler([city], patch=32, seed=0)  # smaller than the patch: padded, padding marked invalid
    x1, x2, mask, valid = s.batch(3)
    assert x1.shape == (3, 2, 32, 32) and mask.shape == valid.shape == (3, 1, 32, 32)
    assert int(valid.sum()) == 3 * 20 * 30 and int(mask.sum()) == 3 * 25
    assert torch.equal(x2 - x1, valid.expand_as(x1).float())  # same flip / rotation for both dates
    assert tile_grid(70, 100, 32) == [(t, c) for t in (0, 32, 64) for c in (0, 32, 64, 96)]


def _panel_counts(png: Path, width: int) -> dict[str, int]:
    a = np.asarray(Image.open(png).convert("RGB"))
    cmap = a[:, -width:]
    out = {}
    for name, colour in (("tp", TP_COLOUR), ("fp", FP_COLOUR), ("fn", FN_COLOUR), ("tn", TN_COLOUR)):
        out[name] = int(np.all(cmap == np.array(colour, np.uint8), axis=-1).sum())
    return out


def test_cli_oscd_on_fakes(run_cli, fake_oscd: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_cli("eval", "oscd", "--root", fake_oscd, "--weights", "random", "--out", out,
                                "--patch", "32", "--epochs", "2", "--batch-size", "4", "--no-progress")
    assert code == 0, err
    assert "F1" in stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["train"]["cities"] == list(fakes.OSCD_TRAIN) and m["test"]["cities"] == list(fakes.OSCD_TEST)
    assert len(m["train"]["history"]) == 2 and m["backbone_unchanged"] is True
    g = m["test"]["all_pixels"]
    sizes = [fakes.oscd_city_size(k) for k in (3, 4)]
    assert g["tp"] + g["fp"] + g["fn"] + g["tn"] == sum(h * w for h, w in sizes)  # every real pixel, no padding
    for key in ("precision", "recall", "f1", "iou"):
        assert 0 <= g[key] <= 1 and 0 <= m["test"]["per_batch_average"][key] <= 1
    for k, city in enumerate(fakes.OSCD_TEST):
        png = out / "change_maps" / f"{city}.png"
        h, w = fakes.oscd_city_size(3 + k)
        assert Image.open(png).size == (3 * w + 8, h)
        counts = _panel_counts(png, w)
        r = m["test"]["per_city"][city]
        assert counts == {"tp": r["tp"], "fp": r["fp"], "fn": r["fn"], "tn": r["tn"]}  # the map is the metric
    for f in ("report.md", "config.yaml", "training_loss.png"):
        assert (out / f).is_file()
    assert "per-batch scores (paper)" in (out / "report.md").read_text()


def test_cli_oscd_with_an_export(run_cli, fake_oscd: Path, export_l1c_reversed: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli("eval", "oscd", "--root", fake_oscd, "--weights", export_l1c_reversed, "--out", out,
                           "--train-cities", "abudhabi", "--test-cities", "dubai", "--patch", "32", "--epochs", "1",
                           "--batch-size", "2", "--no-progress")
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["weights_kind"] == "export" and m["normalization"] == "weights (export)"
    assert m["bands"][0] == "B12" and m["test"]["cities"] == ["dubai"]


def test_cli_oscd_refuses_unlabelled_test_cities(run_cli, tmp_path: Path) -> None:
    root = fakes.write_oscd(tmp_path / "oscd", test_labels=False)
    code, _, err = run_cli("eval", "oscd", "--root", root, "--weights", "random", "--out", tmp_path / "run",
                           "--patch", "32", "--epochs", "1", "--no-progress")
    assert code == 2 and "no change map" in err and "--test-cities" in err
    code, _, err = run_cli("eval", "oscd", "--root", root, "--weights", "random", "--out", tmp_path / "run",
                           "--patch", "40", "--no-progress")
    assert code == 2 and "multiple of 32" in err


@pytest.mark.skipif(not (SHARED / "oscd").is_dir(), reason=f"real OSCD sample not at {SHARED}")
def test_real_oscd_sample(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli("eval", "oscd", "--root", SHARED / "oscd", "--weights", "random", "--out", out,
                           "--train-cities", "bercy", "--test-cities", "rennes", "--bands", "B02,B03,B04,B08",
                           "--epochs", "1", "--batch-size", "8", "--no-progress")
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    g = m["test"]["all_pixels"]
    assert g["tp"] + g["fp"] + g["fn"] + g["tn"] == 339 * 563
    assert g["tp"] + g["fn"] > 0  # rennes has changes
    assert (out / "change_maps" / "rennes.png").is_file()


def test_data_normalisation_policy_and_level_ablation(fake_oscd: Path, export_l1c_reversed: Path,
                                                      tmp_path: Path) -> None:
    """``normalization="data"`` uses the train cities' statistics even for an export; ``levels`` zeroes the rest."""
    from seco.eval.change import run_change_detection
    from seco.eval.config import ChangeConfig

    cfg = ChangeConfig(root=str(fake_oscd), weights=str(export_l1c_reversed), out=str(tmp_path / "run"),
                       train_cities=("abudhabi",), test_cities=("dubai",), patch=32, epochs=1, batch_size=2,
                       progress=False)
    m = run_change_detection(cfg, normalization="data", levels="layer1,layer4")
    assert m["normalization_policy"] == "data" and m["normalization"].startswith("train city statistics")
    assert m["levels"] == ["layer1", "layer4"]
    norm = m["transform"]["normalization"]
    assert norm["mean"] != [0.1 + 0.01 * i for i in range(13)]  # not the export's made-up statistics
    tf = m["test"]["threshold_free"]
    assert 0 <= tf["average_precision"] <= 1 and 0 <= tf["best_f1"] <= 1
    assert "policy `data`" in (tmp_path / "run" / "report.md").read_text()


def test_level_selection_and_threshold_free_scores() -> None:
    from seco.errors import ConfigError
    from seco.eval.change import LevelSelect, parse_levels, threshold_free

    assert parse_levels(None) == parse_levels("all") == (0, 1, 2, 3, 4)
    assert parse_levels("layer4, conv1") == (0, 4) and parse_levels((2, 1)) == (1, 2)
    for bad in ("layer5", "", (7,)):
        with pytest.raises(ConfigError):
            parse_levels(bad)
    m = _detector()
    enc = LevelSelect(m.encoder, (1, 3))
    x1, x2 = torch.randn(1, 4, 64, 64), torch.randn(1, 4, 64, 64)
    full, kept = m.encoder(x1, x2), enc(x1, x2)
    for i, (f, k) in enumerate(zip(full, kept, strict=True)):
        assert torch.equal(k, f) if i in (1, 3) else (k.shape == f.shape and not k.any())
    mask = np.array([0, 0, 1, 1, 0, 1], bool)
    perfect = threshold_free(np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7]), mask)
    assert perfect["average_precision"] == pytest.approx(1.0) and perfect["best_f1"] == pytest.approx(1.0)
    assert 0.5 < perfect["best_threshold"] <= 0.7 + 1e-9
    inverted = threshold_free(np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.3]), mask)
    assert inverted["average_precision"] < 0.6
    assert math.isnan(threshold_free(np.zeros(3), np.zeros(3, bool))["average_precision"])


def test_memory_estimate_scales_with_the_step() -> None:
    """Shapes only (meta device): four times the pixels, four times the memory; twice the batch, twice."""
    from seco.eval.change import training_bytes

    base = training_bytes("resnet18", 13, 128, 4)
    assert 0.95 * 4 * base <= training_bytes("resnet18", 13, 256, 4) <= 1.05 * 4 * base
    assert 0.95 * 2 * base <= training_bytes("resnet18", 13, 128, 8) <= 1.05 * 2 * base
    assert training_bytes("resnet50", 13, 128, 4) > base


def test_cli_oscd_refuses_a_step_that_cannot_fit(run_cli, fake_oscd: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`eval oscd --patch 2048` (about 180 GiB at batch 32) stops before any work with the estimate and a setting
    that fits, instead of being killed by the kernel; here the free memory is set to 2 GiB."""
    import seco.eval.change as change

    monkeypatch.setattr(change, "available_bytes", lambda device: 2 * 2**30)
    out = tmp_path / "run"
    code, _, err = run_cli("eval", "oscd", "--root", fake_oscd, "--weights", "random", "--out", out,
                           "--patch", "2048", "--no-progress")
    assert code == 2
    assert "--patch 2048 with --batch-size 32 needs about" in err and "GiB free" in err
    assert "a smaller --patch" in err and not out.exists()
    code, _, err = run_cli("eval", "oscd", "--root", fake_oscd, "--weights", "random", "--out", out,
                           "--patch", "512", "--no-progress")
    assert code == 2 and "use --batch-size" in err
