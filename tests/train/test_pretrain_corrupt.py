"""`seco pretrain` on a store with one damaged location: a clear error by default, or skipped with
`--on-corrupt skip`, and a resumed run still computes exactly what a straight run computes."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seco.cli import main
from seco.train.run_checkpoint import load_checkpoint
from tests.conftest import tiny_pretrain_args as tiny_args
from tests.data.test_pretrain_ring import BAD, damage

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def bad_store(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return damage(request.getfixturevalue("tiny_store"), BAD, tmp_path_factory.mktemp("bad") / "bad.zarr")


@pytest.fixture
def one_thread():
    """In-process runs on one intra-op thread (as the subprocess runs): on a busy 2-core machine, 2 spinning
    threads per run make it several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seco", *args], env=ENV, capture_output=True, text=True)


@pytest.mark.parametrize("workers", ["0", "1"])
def test_damaged_location_stops_with_a_clear_error(bad_store: Path, tmp_path: Path, workers: str) -> None:
    r = _run(tiny_args(bad_store, tmp_path / "run", "--max-steps", "8", "--num-workers", workers))
    assert r.returncode == 2, r.stderr
    msg = r.stderr.strip()
    assert "\n" not in msg and "Traceback" not in msg  # one line
    assert f"location {BAD}" in msg and f"images/c/{BAD}/" in msg and "--on-corrupt skip" in msg


def test_skip_completes_and_resume_is_exact(
    bad_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], one_thread: None
) -> None:
    # in-process runs (the same torch threads for all); constant lr: --max-steps may grow on resume
    common = ("--schedule", "constant", "--on-corrupt", "skip", "--ckpt-every", "4")
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(tiny_args(bad_store, straight, "--max-steps", "8", *common)) == 0
    a = load_checkpoint(straight / "last.ckpt")
    assert [r["location"] for r in a["corrupt_locations"]] == [BAD]
    assert f"/c/{BAD}/" in a["corrupt_locations"][0]["path"]
    rows = list(csv.DictReader((straight / "metrics.csv").open()))
    assert {int(r["skipped_locations"]) for r in rows[-4:]} == {1}

    # half the run in a worker process, stopped at step 4 (a run of 4 steps), resumed without workers to 8;
    # both halves cross the damaged location (16 locations, batch 4: every epoch of 4 steps reads it)
    capsys.readouterr()
    assert main(tiny_args(bad_store, split, "--max-steps", "4", "--num-workers", "1", *common)) == 0
    assert f"skipped damaged location {BAD} " in capsys.readouterr().err
    assert load_checkpoint(split / "last.ckpt")["corrupt_locations"][0]["location"] == BAD
    assert main(tiny_args(bad_store, split, "--max-steps", "8", "--resume", *common)) == 0
    b = load_checkpoint(split / "last.ckpt")
    assert a["step"] == b["step"] == 8
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert b["corrupt_locations"] == a["corrupt_locations"]



def test_too_many_workers_fail_before_work(tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "w"
    r = _run(tiny_args(tiny_store, out, "--max-steps", "1", "--num-workers", "4096"))
    assert r.returncode == 2 and "--num-workers 4096 is more than the" in r.stderr
    assert not out.exists()
