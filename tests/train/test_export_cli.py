"""`seco export --from-official`: the paper's checkpoint format through the command line."""

import os
import stat
from pathlib import Path

import pytest
import torch

from seco.cli import main
from seco.models.contrastive import ContrastiveModel
from seco.models.export import load_exported
from seco.models.official import to_official_state_dict


def _official_ckpt(path: Path) -> ContrastiveModel:
    torch.manual_seed(1)
    m = ContrastiveModel("resnet18", in_chans=3, num_heads=3, emb_dim=16, queue_size=8)
    hp = {"base_encoder": "resnet18", "emb_dim": 16, "num_negatives": 8, "emb_spaces": 3}
    torch.save({"state_dict": to_official_state_dict(m.state_dict()), "hyper_parameters": hp}, path)
    return m


def test_from_official_cli(tmp_path: Path) -> None:
    m = _official_ckpt(tmp_path / "official.ckpt")
    assert main(["export", "--from-official", str(tmp_path / "official.ckpt"), "--out", str(tmp_path / "w")]) == 0
    state, meta = load_exported(tmp_path / "w.pth")
    assert meta["bands"] == ["B04", "B03", "B02"] and meta["normalization"] is not None
    assert torch.equal(state["layer4.1.bn2.weight"], m.backbone.layer4[1].bn2.weight)
    assert not any(k.startswith("fc.") for k in state)


def test_exported_files_get_the_mode_of_a_plain_open(tmp_path: Path) -> None:
    _official_ckpt(tmp_path / "official.ckpt")
    old = os.umask(0o027)  # safetensors alone creates 0600; every export file gets what open(path, "w") gives
    try:
        assert main(["export", "--from-official", str(tmp_path / "official.ckpt"), "--out", str(tmp_path / "w")]) == 0
    finally:
        os.umask(old)
    modes = {s: stat.S_IMODE((tmp_path / f"w{s}").stat().st_mode) for s in (".safetensors", ".pth", ".json")}
    assert modes == dict.fromkeys(modes, 0o666 & ~0o027)


def test_export_needs_exactly_one_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", "--out", str(tmp_path / "w")]) == 2
    assert "exactly one" in capsys.readouterr().err
