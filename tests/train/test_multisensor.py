"""Pre-training on Sentinel-1 + Sentinel-2: early fusion (any method on s1 / s1+s2 bands) and the multi-sensor
method seco-s12 (a registry record): trains, exports both sensors' statistics, resumes bit-exactly after SIGKILL,
and runs under DDP (gloo, two CPU ranks)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seco.cli import main
from seco.models.export import load_exported
from seco.train.run_checkpoint import load_checkpoint
from tests.conftest import sigkill_after_checkpoint
from tests.conftest import tiny_pretrain_args as tiny_args

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def s1_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 simulated locations x 5 dates x 12 bands + VV, VH x 48 px (seeded)."""
    from seco.synth import make_store

    path = tmp_path_factory.mktemp("s1store") / "s12.zarr"
    make_store(path, num_locations=16, num_dates=5, patch_size=48, seed=3, progress=False, s1=True)
    return path


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seco", *args], env=ENV, capture_output=True, text=True,
                          timeout=300)


def test_seco_s12_trains_and_exports_both_sensors(s1_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(tiny_args(s1_store, out, "--method", "seco-s12", "--bands", "s1+s2", "--max-steps", "3")) == 0
    ckpt = load_checkpoint(out / "last.ckpt")
    assert ckpt["step"] == 3 and ckpt["model"]["queue.bank"].shape[0] == 4  # four subspaces
    norm = json.loads((out / "normalization.json").read_text())
    assert norm["bands"][-2:] == ["VV", "VH"] and norm["units"][-1] == "dB" and norm["mean"][-2] < -5
    assert main(["export", str(out / "last.ckpt"), "--out", str(tmp_path / "w")]) == 0
    state, meta = load_exported(tmp_path / "w.safetensors")
    assert state["conv1.weight"].shape[1] == 14 and meta["bands"][-2:] == ["VV", "VH"]
    stats = meta["statistics"]
    assert stats["s1"]["units"] == "dB" and stats["s2"]["units"] == "reflectance"


def test_any_method_trains_on_radar_alone(s1_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(tiny_args(s1_store, out, "--method", "moco", "--bands", "s1", "--max-steps", "2")) == 0
    assert json.loads((out / "normalization.json").read_text())["bands"] == ["VV", "VH"]


@pytest.mark.parametrize(("extra", "needle"), [
    (["--method", "seco-s12", "--bands", "all"], "--bands s1+s2"),
    (["--method", "seco", "--bands", "s1+s2"], None),  # early fusion: fine
])
def test_multi_sensor_method_needs_both_sensors(s1_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                extra: list[str], needle: str | None) -> None:
    code = main(tiny_args(s1_store, tmp_path / "run", *extra, "--max-steps", "1"))
    if needle is None:
        assert code == 0
    else:
        assert code == 2 and needle in capsys.readouterr().err


def test_radar_bands_on_an_optical_store_are_one_line(tiny_store: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(tiny_args(tiny_store, tmp_path / "run", "--bands", "s1+s2", "--max-steps", "1")) == 2
    err = capsys.readouterr().err
    assert "VV" in err and "not available" in err and len(err.strip().splitlines()) == 1


def test_seco_s12_sigkill_then_resume_equals_straight_run(s1_store: Path, tmp_path: Path) -> None:
    n = 8
    extra = ("--method", "seco-s12", "--bands", "s1+s2", "--max-steps", str(n))
    straight = tmp_path / "straight"
    assert _run(tiny_args(s1_store, straight, *extra)).returncode == 0
    killed = tmp_path / "killed"
    ckpt = killed / "last.ckpt"
    sigkill_after_checkpoint(tiny_args(s1_store, killed, *extra), ckpt, n // 4, ENV)
    assert n // 4 <= load_checkpoint(ckpt)["step"] < n, "the kill must land before the run finished"
    r = _run(tiny_args(s1_store, killed, *extra, "--resume"))
    assert r.returncode == 0, r.stderr
    a, b = load_checkpoint(straight / "last.ckpt"), load_checkpoint(ckpt)
    assert a["step"] == b["step"] == n
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


@pytest.mark.integration
def test_seco_s12_under_ddp_two_cpu_ranks_stay_in_sync(s1_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**ENV, "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={port}", "-m", "seco", "pretrain", "--store", str(s1_store), "--out", str(out),
           "--method", "seco-s12", "--bands", "s1+s2", "--crop", "32", "--batch-size", "8", "--queue-size", "32",
           "--max-steps", "2", "--ckpt-every", "1", "--log-every", "1", "--no-tensorboard", "--no-progress",
           "--device", "cpu"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    sync = json.loads((out / "ddp_sync.json").read_text())
    assert sync["in_sync"] and len(sync["fingerprints"]) == 2, sync
    assert load_checkpoint(out / "last.ckpt")["model"]["queue.ptr"].flatten().tolist() == [16] * 4


def test_per_sensor_export_computes_what_the_fused_backbone_does_on_one_sensor(s1_store: Path, tmp_path: Path) -> None:
    """`seco export --per-sensor`: <out>-s2 / <out>-s1 with conv1 cut to their channels give exactly the fused
    backbone's features when the other sensor's channels are 0 (their normalised mean): how the single-sensor
    views trained it."""
    from seco.models.resnet import ResNet

    out = tmp_path / "run"
    assert main(tiny_args(s1_store, out, "--method", "seco-s12", "--bands", "s1+s2", "--max-steps", "2")) == 0
    assert main(["export", str(out / "last.ckpt"), "--out", str(tmp_path / "w"), "--per-sensor"]) == 0
    fused_sd, fused = load_exported(tmp_path / "w.json")
    assert fused["layout"] == "fused" and fused["in_chans"] == 14
    x = torch.randn(2, 14, 32, 32, generator=torch.Generator().manual_seed(0))

    def features(sd: dict[str, torch.Tensor], inp: torch.Tensor) -> torch.Tensor:
        m = ResNet("resnet18", in_chans=inp.shape[1]).eval()
        m.load_state_dict(sd, strict=False)
        with torch.no_grad():
            return m.forward_features(inp)

    for sensor, chans in (("s2", slice(0, 12)), ("s1", slice(12, 14))):
        sd, meta = load_exported(tmp_path / f"w-{sensor}.json")
        assert meta["layout"] == "per-sensor" and meta["sensor"] == sensor and meta["in_chans"] == len(range(14)[chans])
        assert set(meta["statistics"]) == {sensor} and meta["normalization"]["bands"] == meta["bands"]
        zeroed = torch.zeros_like(x)
        zeroed[:, chans] = x[:, chans]
        torch.testing.assert_close(features(sd, x[:, chans]), features(fused_sd, zeroed), atol=1e-5, rtol=1e-5)


def test_per_sensor_export_of_a_single_sensor_run_is_one_line(tiny_store: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(tiny_args(tiny_store, out, "--max-steps", "1")) == 0
    capsys.readouterr()
    assert main(["export", str(out / "last.ckpt"), "--out", str(tmp_path / "w"), "--per-sensor"]) == 2
    assert "--per-sensor" in capsys.readouterr().err and not (tmp_path / "w.json").exists()
