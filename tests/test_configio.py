"""seco.configio: the one save/load of every configuration class (keys, types, round trip, old files, CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from seco.collect.config import CollectConfig
from seco.configio import ConfigIO, check_dict, flag_type
from seco.errors import ConfigError
from seco.eval.config import ChangeConfig, ClassifyConfig, EmbedConfig
from seco.experiment.config import CompareConfig
from seco.train.config import PretrainConfig, for_device, resolve

ROOT = Path(__file__).resolve().parents[1]
OLD = Path(__file__).parent / "fixtures" / "old_configs"  # written by PretrainConfig.save etc. before configio


def _configs() -> list[ConfigIO]:
    return [
        for_device(PretrainConfig(store="s.zarr", out="runs/x", bands="B02,B03", lr_milestones=(0.5, 0.9),
                                  max_steps=7, augment={"scale": [0.4, 1.0]}, extra={"note": [1, 2]}), "cpu", 2),
        CompareConfig(out="exp", methods=("seco", "random"), seeds=2),
        ClassifyConfig(task="eurosat", root="r", weights="random", out="o", fractions=(1, 50),
                       split_files={"train": "t", "val": "v"}, exclude=("a",)),
        ChangeConfig(root="oscd", weights="random", out="cd", train_cities=("paris",), test_cities=None),
        EmbedConfig(weights="random", input="x.tif", out="e.parquet", stride=32, scale=None),
        CollectConfig(locations="l.parquet", catalog="earth-search", out="s.zarr", max_cloud=None),
    ]


@pytest.mark.parametrize("cfg", _configs(), ids=lambda c: type(c).__name__)
def test_save_load_round_trip(cfg: ConfigIO, tmp_path: Path) -> None:
    path = cfg.save(tmp_path / "config.yaml")
    again = type(cfg).load(path)
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()
    assert type(cfg).from_dict(cfg.to_dict()) == cfg


def test_to_dict_is_plain() -> None:
    d = PretrainConfig(store="s", out="o", lr_milestones=(0.5, 0.9), augment={"scale": (0.4, 1.0)}).to_dict()
    assert d["lr_milestones"] == [0.5, 0.9] and d["augment"] == {"scale": [0.4, 1.0]}


@pytest.mark.parametrize("name, cls", [("config.yaml", PretrainConfig), ("experiment.yaml", CompareConfig),
                                       ("classify.yaml", ClassifyConfig), ("change.yaml", ChangeConfig)])
def test_configs_saved_before_load(name: str, cls: type[ConfigIO], tmp_path: Path) -> None:
    cfg = cls.load(OLD / name)
    # saving again writes the same file: the format did not change
    assert cfg.save(tmp_path / name).read_text() == (OLD / name).read_text()


def test_old_pretrain_config_values() -> None:
    cfg = PretrainConfig.load(OLD / "config.yaml")
    assert cfg.lr_milestones == (0.6, 0.8) and cfg.num_workers == 0 and cfg.channels_last is False
    assert cfg.augment_config().scale == (0.4, 1.0)
    assert resolve({}, OLD / "config.yaml") == cfg


def test_unknown_and_missing_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        CompareConfig.from_dict({"out": "x", "sedes": 3, "stpes": 2}, source="experiment.yaml")
    msg = str(e.value)
    assert "sedes, stpes (in experiment.yaml)" in msg and "valid keys are" in msg and "seeds" in msg
    with pytest.raises(ConfigError, match=r"missing configuration key\(s\) store, out"):
        PretrainConfig.from_dict({"crop": 64})
    with pytest.raises(ConfigError, match="must be a mapping"):
        PretrainConfig.from_dict(["store", "out"])  # type: ignore[arg-type]
    assert check_dict(PretrainConfig, {"crop": 64}, partial=True) == {"crop": 64}


BASE: dict[type, dict[str, Any]] = {
    PretrainConfig: {"store": "s", "out": "o"},
    ClassifyConfig: {"task": "eurosat", "root": "r", "weights": "random", "out": "o"},
    ChangeConfig: {"root": "r", "weights": "random", "out": "o"},
}


@pytest.mark.parametrize(
    "cls, key, value, message",
    [
        (PretrainConfig, "batch_size", "eight", "batch_size: 'eight' is not an integer"),  # int
        (PretrainConfig, "crop", "32", "crop: '32' is not an integer"),
        (PretrainConfig, "crop", 32.0, "crop: 32.0 is not an integer"),
        (PretrainConfig, "lr", "fast", "lr: 'fast' is not a number"),  # float
        (PretrainConfig, "lr", True, "lr: True is not a number"),
        (PretrainConfig, "max_steps", "ten", "max_steps: 'ten' is not an integer or null"),  # int | None
        (PretrainConfig, "max_minutes", [1], r"max_minutes: \[1\] is not a number or null"),  # float | None
        (PretrainConfig, "bands", 4, "bands: 4 is not a string"),  # str
        (PretrainConfig, "tensorboard", "maybe", "tensorboard: 'maybe' is not true or false"),  # bool
        (PretrainConfig, "tensorboard", 1, "tensorboard: 1 is not true or false"),
        (PretrainConfig, "channels_last", "yes", "channels_last: 'yes' is not true or false or null"),
        (PretrainConfig, "lr_milestones", 0.6, "lr_milestones: 0.6 is not a list of numbers"),  # tuple[float, ...]
        (PretrainConfig, "lr_milestones", [0.6, "x"], r"lr_milestones\[1\]: 'x' is not a number"),
        (PretrainConfig, "augment", [1], r"augment: \[1\] is not a mapping"),  # dict[str, Any]
        (PretrainConfig, "num_workers", 1.5, "num_workers: 1.5 is not an integer or a string"),  # int | str
        (ChangeConfig, "train_cities", "paris", "train_cities: 'paris' is not a list of strings or null"),
        (ClassifyConfig, "split_files", {"train": 3}, "split_files.train: 3 is not a string"),  # dict[str, str]
    ],
)
def test_wrong_types_are_one_line(cls: type[ConfigIO], key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message} \\(in c.yaml\\)$"):
        cls.from_dict({**BASE[cls], key: value}, source="c.yaml")


def test_values_are_converted_to_the_field_types() -> None:
    cfg = PretrainConfig.from_dict({"store": "s", "out": "o", "lr": 1, "max_minutes": 2,
                                    "weight_decay": "1e-4",  # YAML 1.1 reads an exponent without a dot as text
                                    "lr_milestones": [1, 0.9], "num_workers": "auto"})
    assert type(cfg.lr) is float and cfg.lr == 1.0 and type(cfg.max_minutes) is float
    assert cfg.weight_decay == 1e-4 and cfg.lr_milestones == (1.0, 0.9) and cfg.num_workers == "auto"
    assert ClassifyConfig.from_dict({**BASE[ClassifyConfig], "cs": [1, 2]}).cs == (1.0, 2.0)


def test_flags_say_what_config_files_say() -> None:
    from argparse import ArgumentTypeError

    with pytest.raises(ArgumentTypeError, match="^'eight' is not an integer$"):
        flag_type(int)("eight")
    assert flag_type(int | None)("none") is None and flag_type(float)("1e-3") == 1e-3
    assert flag_type(int | str)("auto") == "auto" and flag_type(int | str)("3") == 3


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "seco", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_pretrain_config_of_the_wrong_type_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("batch_size: eight\ncrop: 64\n")
    r = _cli("pretrain", "--config", "bad.yaml", "--store", "none.zarr", "--out", "run", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == "seco pretrain: error: batch_size: 'eight' is not an integer (in bad.yaml)"
    assert not (tmp_path / "run").exists()
    (tmp_path / "bad.yaml").write_text('crop: "32"\n')
    r = _cli("pretrain", "--config", "bad.yaml", "--store", "none.zarr", "--out", "run", cwd=tmp_path)
    assert (r.returncode, r.stderr.strip()) == (2, "seco pretrain: error: crop: '32' is not an integer (in bad.yaml)")
    r = _cli("pretrain", "--store", "none.zarr", "--out", "run", "--batch-size", "eight", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "seco pretrain: error: argument --batch-size: 'eight' is not an integer"
