"""Official checkpoint import (safe unpickling, key mapping, errors) and backbone export/load."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch

import seco
from seco.backbones import build_backbone
from seco.errors import CheckpointError
from seco.models.contrastive import ContrastiveModel
from seco.models.export import export_backbone, load_exported
from seco.models.official import (
    backbone_from_official,
    load_official_checkpoint,
    load_official_state_dict,
    to_official_state_dict,
)

torch.set_num_threads(1)

FAKE_PL = "fake_lightning_for_seco_tests"


def _small_model(in_chans: int = 3) -> ContrastiveModel:
    torch.manual_seed(0)
    m = ContrastiveModel("resnet18", in_chans=in_chans, num_heads=3, emb_dim=16, queue_size=8)
    with torch.no_grad():  # make the key side and the queue distinguishable from a fresh copy
        for p in m.backbone_k.parameters():
            p.mul_(0.5)
        m.queue.ptr.fill_(4)
    return m


def _save_lightning_like(obj_factory, path: Path) -> None:
    """torch.save a checkpoint holding classes of a module that is gone when it is read (like Lightning)."""
    mod = types.ModuleType(FAKE_PL)

    class AttributeDict(dict):
        pass

    class ModelCheckpoint:
        pass

    class Evil:
        def __reduce__(self):
            return (open, (str(path.parent / "pwned"), "w"))

    for cls in (AttributeDict, ModelCheckpoint, Evil):
        cls.__module__, cls.__qualname__ = FAKE_PL, cls.__name__
        setattr(mod, cls.__name__, cls)
    sys.modules[FAKE_PL] = mod
    try:
        torch.save(obj_factory(mod), path)
    finally:
        del sys.modules[FAKE_PL]


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ContrastiveModel]:
    path = tmp_path_factory.mktemp("official") / "seco_resnet18_tiny.ckpt"
    model = _small_model()

    def make(mod):
        hp = mod.AttributeDict(
            base_encoder="resnet18",
            emb_dim=16,
            num_negatives=8,
            emb_spaces=3,
            encoder_momentum=0.99,
            softmax_temperature=0.2,
            data_mode="seco",
        )
        return {
            "epoch": 3,
            "global_step": 1234,
            "pytorch-lightning_version": "1.1.8",
            "state_dict": to_official_state_dict(model.state_dict()),
            "hyper_parameters": hp,
            "callbacks": {mod.ModelCheckpoint: {"best_model_score": torch.tensor(1.0)}},
            "trap": mod.Evil(),
        }

    _save_lightning_like(make, path)
    return path, model


def test_official_checkpoint_loads_without_lightning_or_code_execution(official) -> None:
    path, ref = official
    with pytest.raises(Exception):  # noqa: B017 - the plain safe loader refuses it: the fallback is needed
        torch.load(path, weights_only=True)
    model, hp = load_official_checkpoint(path)
    assert not (path.parent / "pwned").exists()  # the pickled open() call was never made
    assert hp["emb_spaces"] == 3 and hp["softmax_temperature"] == 0.2 and hp["global_step"] == 1234
    cfg = model.config
    assert (cfg.backbone, cfg.in_chans, cfg.num_heads, cfg.emb_dim, cfg.queue_size) == (
        "resnet18",
        3,
        3,
        16,
        8,
    )
    assert (cfg.temperature, cfg.momentum, cfg.extra_negatives_heads) == (0.2, 0.99, (1, 2))
    got, want = model.state_dict(), ref.state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)  # key side, queue and pointers included


def test_official_key_mapping() -> None:
    sd = to_official_state_dict(_small_model().state_dict())
    assert (
        "encoder_q.0.weight" in sd and "encoder_q.4.0.conv1.weight" in sd and "encoder_k.7.1.bn2.bias" in sd
    )
    assert "heads_q.2.2.weight" in sd and sd["queue_ptr"].shape == (3, 1)
    mapped = load_official_state_dict(sd)
    assert "backbone.layer1.0.conv1.weight" in mapped and "backbone_k.layer4.1.bn2.bias" in mapped
    assert mapped["queue.ptr"].shape == (3,)


def test_query_only_state_dict_gets_a_copied_key_side() -> None:
    ref = _small_model()
    sd = {
        k: v
        for k, v in to_official_state_dict(ref.state_dict()).items()
        if k.startswith(("encoder_q", "heads_q")) and not k.endswith("num_batches_tracked")
    }
    mapped = load_official_state_dict(sd)
    for k, v in ref.backbone.state_dict().items():
        assert torch.equal(mapped[f"backbone_k.{k}"], v if not k.endswith("num_batches_tracked") else v * 0)
    assert "queue.bank" not in mapped


def test_broken_official_checkpoints_raise_checkpoint_error(official, tmp_path: Path) -> None:
    path, ref = official
    with pytest.raises(CheckpointError, match="does not exist"):
        load_official_checkpoint(tmp_path / "nope.ckpt")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="truncated.ckpt.*truncated or not a checkpoint"):
        load_official_checkpoint(truncated)
    no_sd = tmp_path / "nosd.ckpt"
    torch.save({"model": {}}, no_sd)
    with pytest.raises(
        CheckpointError, match="nosd.ckpt.*expected a dict with 'state_dict'.*found \\['model'\\]"
    ):
        load_official_checkpoint(no_sd)
    foreign = tmp_path / "foreign.ckpt"
    sd = to_official_state_dict(ref.state_dict())
    torch.save({"state_dict": {**sd, "classifier.weight": torch.zeros(2)}, "hyper_parameters": {}}, foreign)
    with pytest.raises(CheckpointError, match="foreign.ckpt.*unexpected key 'classifier.weight'"):
        load_official_checkpoint(foreign)
    wrong_arch = tmp_path / "r50.ckpt"
    torch.save({"state_dict": sd, "hyper_parameters": {"base_encoder": "resnet50"}}, wrong_arch)
    with pytest.raises(CheckpointError, match="base_encoder='resnet50' but the weights are a resnet18"):
        load_official_checkpoint(wrong_arch)


META = {
    "bands": ["B02", "B03", "B04", "B08"],
    "input_size": 64,
    "method": "seco",
    "training_steps": 10,
    "normalization": {
        "bands": ["B02", "B03", "B04", "B08"],
        "mean": [1.0, 2.0, 3.0, 4.0],
        "std": [5.0, 6.0, 7.0, 8.0],
        "method": "meanstd",
    },
}


def test_export_roundtrip_is_torchvision_compatible(shared_dir: Path, tmp_path: Path) -> None:
    ref = json.loads((shared_dir / "reference" / "torchvision_resnet_state_dict_keys.json").read_text())
    torch.manual_seed(0)
    net = build_backbone("resnet18", 4)  # with fc: the export drops it
    paths = export_backbone(net.state_dict(), tmp_path / "w" / "r18", META)
    assert [p.name for p in paths] == ["r18.safetensors", "r18.pth", "r18.json"]
    expected = [
        (k, [s[0], 4, *s[2:]] if k == "conv1.weight" else s)
        for k, s, _ in ref["resnet18"]
        if not k.startswith("fc.")
    ]
    for p in [*paths, tmp_path / "w" / "r18"]:
        sd, meta = load_exported(p)
        assert [(k, list(v.shape)) for k, v in sd.items()] == expected
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in sd.items())
        assert meta["format_version"] == 1 and meta["seco_version"] == seco.__version__
        assert (meta["backbone"], meta["in_chans"], meta["feature_dim"]) == ("resnet18", 4, 512)
        assert meta["bands"] == META["bands"] and meta["normalization"]["std"] == [5.0, 6.0, 7.0, 8.0]
        assert (meta["input_size"], meta["method"], meta["training_steps"]) == (64, "seco", 10)
    fresh = build_backbone("resnet18", 4)  # what torchvision/timm do: strict=False, only fc missing
    res = fresh.load_state_dict(load_exported(paths[1])[0], strict=False)
    assert sorted(res.missing_keys) == ["fc.bias", "fc.weight"] and not res.unexpected_keys
    assert torch.equal(fresh.conv1.weight, net.conv1.weight)


def test_export_rejects_bad_input(tmp_path: Path) -> None:
    model = _small_model(in_chans=4)
    with pytest.raises(CheckpointError, match="pass model.backbone.state_dict"):
        export_backbone(model.state_dict(), tmp_path / "x", META)
    sd = model.backbone.state_dict()
    with pytest.raises(CheckpointError, match="lacks \\['training_steps'\\]"):
        export_backbone(sd, tmp_path / "x", {k: v for k, v in META.items() if k != "training_steps"})
    with pytest.raises(CheckpointError, match="lists 3 bands but the backbone takes 4"):
        export_backbone(sd, tmp_path / "x", {**META, "bands": ["B02", "B03", "B04"]})
    with pytest.raises(CheckpointError, match="says backbone 'resnet50' but the weights are a resnet18"):
        export_backbone(sd, tmp_path / "x", {**META, "backbone": "resnet50"})
    assert not list(tmp_path.iterdir())  # nothing written on error


def test_damaged_export_is_detected(tmp_path: Path) -> None:
    paths = export_backbone(_small_model(in_chans=4).backbone.state_dict(), tmp_path / "r18", META)
    data = bytearray(paths[1].read_bytes())
    data[-100] ^= 0xFF
    paths[1].write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="r18.pth.*sha256"):
        load_exported(paths[1])
    load_exported(paths[0])  # the safetensors copy is intact
    paths[2].unlink()
    with pytest.raises(CheckpointError, match="r18.json.*not found"):
        load_exported(paths[0])


def test_backbone_from_official(official, tmp_path: Path) -> None:
    path, ref = official
    paths = backbone_from_official(path, tmp_path / "seco_r18")
    sd, meta = load_exported(paths[0])
    assert all(torch.equal(v, ref.backbone.state_dict()[k]) for k, v in sd.items())
    assert (
        meta["bands"] == ["B04", "B03", "B02"] and meta["method"] == "seco" and meta["training_steps"] == 1234
    )
    norm = meta["normalization"]
    # red: quantiles 0..129 of uint8(reflectance * 255), ImageNet mean 0.485 / std 0.229, in DN
    assert norm["mean"][0] == pytest.approx(0.485 * 129 * 10000 / 255)
    assert norm["std"][0] == pytest.approx(0.229 * 129 * 10000 / 255)
    assert meta["source_checkpoint"] == path.name


def test_backbone_from_official_needs_meta_beyond_rgb(tmp_path: Path) -> None:
    ckpt = tmp_path / "ms.ckpt"
    torch.save({"state_dict": to_official_state_dict(_small_model(in_chans=12).state_dict())}, ckpt)
    with pytest.raises(CheckpointError, match="takes 12 bands.*Pass meta"):
        backbone_from_official(ckpt, tmp_path / "ms")
    bands = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
    norm = {"mean": [0.0] * 12, "std": [1.0] * 12}
    paths = backbone_from_official(ckpt, tmp_path / "ms", {"bands": bands, "normalization": norm})
    assert load_exported(paths[2])[1]["in_chans"] == 12
