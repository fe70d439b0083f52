"""A method and a backbone registered from inside a test, with no other module edited: they train, resume and
(the method) export, and every place that lists methods or backbones knows them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from seco.backbones import Backbone, backbone_names, get_backbone, register_backbone
from seco.cli import main
from seco.errors import ConfigError
from seco.experiment.config import CompareConfig, display_name
from seco.methods import (
    Method,
    View,
    ViewRecipe,
    get_method,
    method_names,
    register_method,
    unregister_method,
)
from seco.models.export import load_exported
from seco.train.config import PretrainConfig
from seco.train.loop import pretrain
from seco.train.run_checkpoint import load_checkpoint
from tests.conftest import tiny_pretrain_args

#: Two dates, two subspaces: head 0 pairs the query with an augmented other date, head 1 with an augmented same
#: date and takes head 0's key views as extra negatives (variant to season), as SeCo's head 2 does.
TOY = Method(
    name="toy-2d", display="Toy (2 dates)",
    views=ViewRecipe(2, View(0, False), (View(1, True), View(0, True))),
    extra_negatives_heads=(1,), help="a test method", colour="tab:red",
)


@pytest.fixture
def toy_method() -> Iterator[Method]:
    register_method(TOY)
    try:
        yield TOY
    finally:
        unregister_method(TOY.name)


def _run_cfg(store: Path, out: Path, **kw: object) -> PretrainConfig:
    base: dict[str, object] = dict(
        store=str(store), out=str(out), crop=32, batch_size=4, queue_size=16, log_every=1, ckpt_every=1,
        tensorboard=False, progress=False, device="cpu",
    )
    base.update(kw)
    return PretrainConfig(**base)  # type: ignore[arg-type]


def test_registered_method_trains_resumes_and_exports(toy_method: Method, tiny_store: Path, tmp_path: Path) -> None:
    assert "toy-2d" in method_names() and get_method("TOY-2D") is toy_method
    assert "toy-2d" in CompareConfig(out=str(tmp_path / "e")).methods and display_name("toy-2d") == "Toy (2 dates)"
    out = tmp_path / "run"
    res = pretrain(_run_cfg(tiny_store, out, method="toy-2d", max_steps=2))
    assert res.steps == 2 and res.steps_run == 2
    ckpt = load_checkpoint(out / "last.ckpt")
    assert ckpt["model"]["queue.bank"].shape[0] == 2  # one queue per key view
    assert "heads_q.1.0.weight" in ckpt["model"] and "heads_q.2.0.weight" not in ckpt["model"]
    # resume through the real CLI: its --method choices come from the registry
    args = tiny_pretrain_args(tiny_store, out, "--method", "toy-2d", "--max-steps", "3", "--resume")
    assert main(args) == 0
    assert load_checkpoint(out / "last.ckpt")["step"] == 3
    assert main(["export", str(out / "last.ckpt"), "--out", str(tmp_path / "w" / "toy")]) == 0
    state, meta = load_exported(tmp_path / "w" / "toy.safetensors")
    assert meta["method"] == "toy-2d" and meta["training_steps"] == 3
    assert torch.equal(state["conv1.weight"], load_checkpoint(out / "last.ckpt")["model"]["backbone.conv1.weight"])


def test_method_registry_refuses_bad_records() -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_method(Method("seco", "again", ViewRecipe(1, View(0, True), (View(0, True),))))
    with pytest.raises(ConfigError, match="extra_negatives_heads"):
        Method("bad", "Bad", ViewRecipe(1, View(0, True), (View(0, True),)), extra_negatives_heads=(1,))
    with pytest.raises(ConfigError, match="date 3"):
        ViewRecipe(2, View(3, True), (View(0, True),))
    with pytest.raises(ConfigError, match="seco, moco, moco-tp"):
        get_method("simclr")
    assert get_method("moco_tp").name == "moco-tp"


class TinyNet(nn.Module):
    """A non-ResNet encoder: one conv and global pooling (what a registered builder must provide)."""

    def __init__(self, name: str, in_chans: int, num_classes: int) -> None:
        super().__init__()
        self.name, self.feature_dim = name, 24
        self.conv = nn.Conv2d(in_chans, 24, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(24)

    def forward_features(self, x: Tensor) -> Tensor:
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))  # (N, 24)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)


@pytest.fixture
def tiny_backbone() -> Iterator[Backbone]:
    from seco import backbones

    rec = register_backbone(Backbone("tinynet", 24, (24,), build=TinyNet))
    try:
        yield rec
    finally:
        backbones._REGISTRY.pop("tinynet")


def test_registered_backbone_trains_and_resumes(tiny_backbone: Backbone, tiny_store: Path, tmp_path: Path) -> None:
    assert "tinynet" in backbone_names() and get_backbone("tinynet").feature_dim == 24
    out = tmp_path / "tiny"
    pretrain(_run_cfg(tiny_store, out, backbone="tinynet", method="moco", max_steps=2))
    ckpt = load_checkpoint(out / "last.ckpt")
    assert ckpt["model"]["backbone.conv.weight"].shape == (24, 12, 3, 3)
    res = pretrain(_run_cfg(tiny_store, out, backbone="tinynet", method="moco", max_steps=3), resume=True,
                   given={"max_steps"})
    assert res.steps == 3 and res.steps_run == 1


def test_unknown_backbone_names_the_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="resnet18, resnet50"):
        PretrainConfig(store="s", out=str(tmp_path), backbone="vit_b16")


PLUGIN = '''
from seco.methods import Method, View, ViewRecipe, register_method

register_method(Method(name="plug-3d", display="Plugged (3 dates)",
                       views=ViewRecipe(3, View(0, True), (View(2, True),))))
'''


def test_a_plugin_method_reaches_every_command(tiny_store: Path, tmp_path: Path) -> None:
    """A method registered in the user's own module, named in SECO_PLUGINS: `seco pretrain` trains it and a
    separate `seco export` process exports its checkpoint; without the plugin, export says what to set."""
    import os
    import subprocess
    import sys

    (tmp_path / "myplugin.py").write_text(PLUGIN)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{tmp_path}{os.pathsep}{repo}",
           "SECO_PLUGINS": "myplugin"}
    out = tmp_path / "run"

    def seco(*args: str, **kw: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "seco", *args], env={**env, **kw}, capture_output=True,
                              text=True, timeout=300)

    r = seco(*tiny_pretrain_args(tiny_store, out, "--method", "plug-3d", "--max-steps", "1")[0:])
    assert r.returncode == 0, r.stderr
    r = seco("export", str(out / "last.ckpt"), "--out", str(tmp_path / "w" / "p"))
    assert r.returncode == 0, r.stderr
    assert load_exported(tmp_path / "w" / "p.safetensors")[1]["method"] == "plug-3d"
    r = seco("export", str(out / "last.ckpt"), "--out", str(tmp_path / "w2" / "p"), SECO_PLUGINS="")
    assert r.returncode == 2 and "SECO_PLUGINS" in r.stderr
