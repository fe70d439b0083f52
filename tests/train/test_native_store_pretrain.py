"""Pre-training on a native-resolution store computes exactly what it computes on a 10 m grid store.

Both stores hold the same synth data (20 m / 60 m bands are whole blocks from the patch origin): the native
one keeps those bands at their own grid, the loop copies packed batches and upsamples them on the device.
Weights, queues and every logged loss must be bit-identical, with 0 and 2 workers, at a patch size
divisible by 6 (48) and one that is not (50, partial blocks at the far edges), and after SIGKILL + --resume.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seco.cli import main
from seco.store import open_store
from seco.train.run_checkpoint import load_checkpoint
from tests.conftest import sigkill_after_checkpoint
from tests.conftest import tiny_pretrain_args as tiny_args

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
QUICK = ("--ckpt-every", "100", "--plot-every", "100")  # one checkpoint and one plot, at the last step


def _pair(root: Path, patch_size: int) -> tuple[Path, Path]:
    from seco.synth import make_store

    kw = {"num_locations": 16, "num_dates": 5, "patch_size": patch_size, "seed": 3, "progress": False}
    return make_store(root / "m10.zarr", grid="10m", **kw), make_store(root / "native.zarr", grid="native", **kw)


@pytest.fixture(scope="module")
def pair48(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _pair(tmp_path_factory.mktemp("grid48"), 48)


def _losses(out: Path) -> list[str]:
    """Every logged loss, as written (a difference in the last bit shows)."""
    return [r["loss"] for r in csv.DictReader((out / "metrics.csv").open())]


def _assert_same_run(a: Path, b: Path, steps: int) -> None:
    ca, cb = load_checkpoint(a / "last.ckpt"), load_checkpoint(b / "last.ckpt")
    assert ca["step"] == cb["step"] == steps
    assert ca["model"].keys() == cb["model"].keys()
    for k, v in ca["model"].items():
        assert torch.equal(v, cb["model"][k]), k
    assert ca["normalization"] == cb["normalization"]
    la, lb = _losses(a), _losses(b)
    assert len(la) == steps and la == lb


def test_the_two_stores_differ_only_in_layout(pair48: tuple[Path, Path]) -> None:
    m10, native = (open_store(p) for p in pair48)
    assert m10.pack_spec().is_identity and not native.pack_spec().is_identity
    assert native.pack_spec().length < m10.pack_spec().length / 2
    assert (m10.read(5) == native.read(5)).all()


@pytest.mark.parametrize("workers", [0, 2])
def test_native_store_trains_bit_identically(pair48: tuple[Path, Path], tmp_path: Path, workers: int) -> None:
    runs = []
    for store in pair48:
        out = tmp_path / store.stem
        assert main(tiny_args(store, out, "--max-steps", "3", "--num-workers", str(workers), *QUICK)) == 0
        runs.append(out)
    _assert_same_run(*runs, steps=3)


def test_patch_size_not_divisible_by_6_trains_bit_identically(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    stores = _pair(tmp_path_factory.mktemp("grid50"), 50)
    assert open_store(stores[1]).pack_spec().groups[-1].side == 9  # ceil(50 / 6): a partial 60 m block
    runs = []
    for store in stores:
        out = tmp_path / store.stem
        assert main(tiny_args(store, out, "--max-steps", "2", "--num-workers", "0", *QUICK)) == 0
        runs.append(out)
    _assert_same_run(*runs, steps=2)


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seco", *args], env=ENV, capture_output=True, text=True)


def test_sigkill_then_resume_on_a_native_store_equals_the_10m_run(pair48: tuple[Path, Path], tmp_path: Path) -> None:
    m10, native = pair48
    n = 8  # two epochs of 4 batches
    straight = tmp_path / "straight"
    assert _run(tiny_args(m10, straight, "--max-steps", str(n))).returncode == 0

    killed = tmp_path / "killed"
    ckpt = killed / "last.ckpt"
    sigkill_after_checkpoint(tiny_args(native, killed, "--max-steps", str(n)), ckpt, n // 4, ENV)
    step_at_kill = load_checkpoint(ckpt)["step"]
    assert n // 4 <= step_at_kill < n, "the kill must land before the run finished"

    r = _run(tiny_args(native, killed, "--max-steps", str(n), "--resume"))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((killed / "metrics.csv").open()))
    assert [int(x["step"]) for x in rows] == list(range(1, n + 1))
    _assert_same_run(straight, killed, steps=n)
