from pathlib import Path

import pytest

from seco.errors import ConfigError
from seco.train.config import PretrainConfig, resolve


def test_yaml_then_flags_override(tmp_path: Path) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("store: s.zarr\nout: runs/x\nbatch-size: 32\nlr: 0.1\nmethod: moco\n")
    cfg = resolve({"lr": 0.05, "method": None}, y)
    assert cfg.batch_size == 32
    assert cfg.lr == 0.05
    assert cfg.method == "moco"
    assert cfg.queue_size == 16384  # the paper's default survives


def test_saved_config_round_trips(tmp_path: Path) -> None:
    cfg = PretrainConfig(store="s", out="o", bands="B02,B03", lr_milestones=(0.5, 0.9), max_steps=7)
    cfg.save(tmp_path / "config.yaml")
    again = resolve({}, tmp_path / "config.yaml")
    assert again == cfg


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"method": "simclr"}, "simclr"),
        ({"backbone": "vit"}, "vit"),
        ({"crop": 8}, "--crop 8"),
        ({"batch_size": 1}, "--batch-size 1"),
        ({"precision": "fp8"}, "fp8"),
        ({"key_momentum": 1.0}, "--key-momentum 1.0"),
    ],
)
def test_bad_values_are_named(kw: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("-", r"\-").replace(".", r"\.")):
        PretrainConfig(store="s", out="o", **kw)


def test_unknown_yaml_key_and_missing_required(tmp_path: Path) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("store: s\nout: o\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        resolve({}, y)
    with pytest.raises(ConfigError, match="--store is required"):
        resolve({"out": "o"})
    with pytest.raises(ConfigError, match="does not exist"):
        resolve({}, tmp_path / "nope.yaml")


def test_augment_overrides_from_yaml(tmp_path: Path) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("store: s\nout: o\ncrop: 96\naugment:\n  jitter_p: 0.5\n  scale: [0.4, 1.0]\n")
    aug = resolve({}, y).augment_config()
    assert aug.size == 96 and aug.jitter_p == 0.5 and aug.scale == (0.4, 1.0) and aug.blur_p == 0.5
    with pytest.raises(ConfigError, match="hue"):
        PretrainConfig(store="s", out="o", augment={"hue": 0.1})
    with pytest.raises(ConfigError, match="flip_p"):
        PretrainConfig(store="s", out="o", augment={"flip_p": 2.0})
