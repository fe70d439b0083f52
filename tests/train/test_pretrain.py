"""End-to-end pre-training through the real CLI on a tiny simulated store."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seco.cli import main
from seco.train.run_checkpoint import load_checkpoint
from tests.conftest import sigkill_after_checkpoint
from tests.conftest import tiny_pretrain_args as tiny_args

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.mark.parametrize("method, heads", [("seco", 3), ("moco", 1), ("moco-tp", 1)])
def test_methods_train_and_log(tiny_store: Path, tmp_path: Path, method: str, heads: int) -> None:
    out = tmp_path / method
    assert main(tiny_args(tiny_store, out, "--method", method, "--max-steps", "3")) == 0
    ckpt = load_checkpoint(out / "last.ckpt")
    assert ckpt["step"] == 3
    assert ckpt["model"]["queue.bank"].shape == (heads, 128, 16)
    # the queue was filled by 3 batches of 4 keys: pointer at 12 for every head
    assert ckpt["model"]["queue.ptr"].flatten().tolist() == [12] * heads
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(f"acc/head{h}" in rows[0] for h in range(heads)) and f"acc/head{heads}" not in rows[0]
    assert (out / "curves.png").stat().st_size > 1000
    assert (out / "config.yaml").read_text().count(f"method: {method}") == 1


def test_rgb_subset_and_export(tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "rgb"
    assert main(tiny_args(tiny_store, out, "--bands", "RGB", "--max-steps", "2")) == 0
    ckpt = load_checkpoint(out / "last.ckpt")
    assert ckpt["bands"] == ["B04", "B03", "B02"]
    assert ckpt["model"]["backbone.conv1.weight"].shape[1] == 3
    assert main(["export", str(out / "last.ckpt"), "--out", str(tmp_path / "w" / "r18")]) == 0
    from seco.models.export import load_exported

    state, meta = load_exported(tmp_path / "w" / "r18.safetensors")
    assert meta["bands"] == ["B04", "B03", "B02"] and meta["training_steps"] == 2 and meta["method"] == "seco"
    assert len(meta["normalization"]["mean"]) == 3
    s2 = meta["statistics"]["s2"]  # per sensor (no S1 in this store), over clear pixels, and says so
    assert s2["units"] == "reflectance" and s2["mean"] == meta["normalization"]["mean"] and "s1" not in meta["statistics"]
    assert s2["pixels"].startswith("clear pixels") and s2["pixels"] == meta["normalization"]["pixels"]
    assert torch.equal(state["conv1.weight"], ckpt["model"]["backbone.conv1.weight"])


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seco", *args], env=ENV, capture_output=True, text=True)


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--bands", "B10"], "B10"),
        (["--batch-size", "32", "--queue-size", "64"], "--batch-size 32"),
        (["--queue-size", "10"], "--queue-size 10"),
    ],
)
def test_bad_input_fails_before_work(tiny_store: Path, tmp_path: Path, extra: list[str], needle: str) -> None:
    out = tmp_path / "bad"
    r = _run(tiny_args(tiny_store, out, "--max-steps", "1", *extra))
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    assert not out.exists()


def test_missing_store_and_existing_run(tiny_store: Path, tmp_path: Path) -> None:
    r = _run(tiny_args(tmp_path / "nope.zarr", tmp_path / "o", "--max-steps", "1"))
    assert r.returncode == 2 and "nope.zarr" in r.stderr
    out = tmp_path / "run"
    assert main(tiny_args(tiny_store, out, "--max-steps", "1")) == 0
    r = _run(tiny_args(tiny_store, out, "--max-steps", "2"))
    assert r.returncode == 2 and "--resume" in r.stderr
    r = _run(tiny_args(tiny_store, out, "--max-steps", "2", "--resume", "--lr", "0.5"))
    assert r.returncode == 2 and "--lr" in r.stderr


def test_corrupt_checkpoint_is_a_clear_error(tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(tiny_args(tiny_store, out, "--max-steps", "1")) == 0
    data = (out / "last.ckpt").read_bytes()
    (out / "last.ckpt").write_bytes(data[: len(data) // 2])
    r = _run(tiny_args(tiny_store, out, "--max-steps", "2", "--resume"))
    assert r.returncode == 2 and "corrupt" in r.stderr and "last.ckpt" in r.stderr
    r = _run(["export", str(out / "last.ckpt"), "--out", str(tmp_path / "w")])
    assert r.returncode == 2 and "corrupt" in r.stderr


def test_sigkill_then_resume_equals_straight_run(tiny_store: Path, tmp_path: Path) -> None:
    n = 12  # three epochs of 4 batches: the kill lands mid-epoch or on an epoch boundary
    straight = tmp_path / "straight"
    assert _run(tiny_args(tiny_store, straight, "--max-steps", str(n))).returncode == 0

    killed = tmp_path / "killed"
    ckpt = killed / "last.ckpt"
    sigkill_after_checkpoint(tiny_args(tiny_store, killed, "--max-steps", str(n)), ckpt, n // 4, ENV)
    step_at_kill = load_checkpoint(ckpt)["step"]
    assert n // 4 <= step_at_kill < n, "the kill must land before the run finished"

    r = _run(tiny_args(tiny_store, killed, "--max-steps", str(n), "--resume"))
    assert r.returncode == 0, r.stderr
    a, b = load_checkpoint(straight / "last.ckpt"), load_checkpoint(ckpt)
    assert a["step"] == b["step"] == n
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    rows = list(csv.DictReader((killed / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, n + 1))


def test_augment_settings_from_yaml_change_the_run(tiny_store: Path, tmp_path: Path) -> None:
    y = tmp_path / "aug.yaml"
    y.write_text("augment:\n  jitter_p: 0.0\n  grayscale_p: 0.0\n  blur_p: 0.0\n  flip_p: 0.0\n")
    plain, custom = tmp_path / "plain", tmp_path / "custom"
    assert main(tiny_args(tiny_store, plain, "--max-steps", "2")) == 0
    assert main(tiny_args(tiny_store, custom, "--max-steps", "2", "--config", str(y))) == 0
    a, b = load_checkpoint(plain / "last.ckpt"), load_checkpoint(custom / "last.ckpt")
    assert b["config"]["augment"] == {"jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0, "flip_p": 0.0}
    assert not torch.equal(a["model"]["backbone.conv1.weight"], b["model"]["backbone.conv1.weight"])
