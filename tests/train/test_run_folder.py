"""The run folder of ``seco pretrain``: one run at a time, resume of what is there (and only of that), the end
summary. Driven through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from seco.cli import main
from seco.errors import ConfigError
from seco.fileutil import exclusive_lock
from seco.train.run_checkpoint import load_checkpoint
from seco.train.setup import LOCK_NAME
from tests.conftest import tiny_pretrain_args as tiny_args

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seco", *args], env=ENV, capture_output=True, text=True, timeout=300)


def test_second_run_into_a_held_folder_is_refused_and_corrupts_nothing(tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(tiny_args(tiny_store, out, "--max-steps", "1")) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with exclusive_lock(out / LOCK_NAME, lambda pid: ConfigError(pid)):  # a run in progress: this process
        r = _run(tiny_args(tiny_store, out, "--max-steps", "2", "--resume", "--method", "seco"))
    assert r.returncode == 2, r.stderr
    assert f"another seco pretrain is running in {str(out)!r} (pid {os.getpid()})" in r.stderr
    assert "Traceback" not in r.stderr
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # nothing was touched
    # the holder gone, the same command resumes
    assert main(tiny_args(tiny_store, out, "--max-steps", "2", "--resume")) == 0
    assert load_checkpoint(out / "last.ckpt")["step"] == 2


def test_resume_of_a_folder_without_a_run_says_so(tiny_store: Path, tmp_path: Path) -> None:
    r = _run(tiny_args(tiny_store, tmp_path / "typo", "--max-steps", "1", "--resume"))
    assert r.returncode == 2
    assert "holds no run (no last.ckpt, no config.yaml)" in r.stderr and "--crop" not in r.stderr
    assert not (tmp_path / "typo").exists()
    (tmp_path / "file").write_text("x")
    r = _run(tiny_args(tiny_store, tmp_path / "file", "--max-steps", "1"))
    assert r.returncode == 2 and "is a file" in r.stderr


def test_resume_before_the_first_checkpoint_keeps_the_saved_settings(tiny_store: Path, tmp_path: Path) -> None:
    """Stopped (Ctrl-C) before its first checkpoint: config.yaml is there, last.ckpt is not. --resume starts the
    run over with its own settings (crop 32), not the defaults (crop 224, larger than the 48 px patches)."""
    out = tmp_path / "early"
    assert main(tiny_args(tiny_store, out, "--max-steps", "1")) == 0
    (out / "last.ckpt").unlink()
    r = _run(["pretrain", "--store", str(tiny_store), "--out", str(out), "--resume", "--max-steps", "2",
              "--no-progress", "--no-tensorboard"])
    assert r.returncode == 0, r.stderr
    assert "has no checkpoint yet; the run starts over" in r.stdout
    assert yaml.safe_load((out / "config.yaml").read_text())["crop"] == 32
    assert load_checkpoint(out / "last.ckpt")["step"] == 2


def test_resume_on_other_data_is_refused(tiny_store: Path, tmp_path: Path) -> None:
    from seco.store.migrate import migrate_store
    from seco.synth import make_store

    out = tmp_path / "run"
    assert main(tiny_args(tiny_store, out, "--max-steps", "1")) == 0
    assert load_checkpoint(out / "last.ckpt")["store"]["keys_sha256"]
    other = make_store(tmp_path / "other.zarr", num_locations=16, num_dates=5, patch_size=48, seed=4, progress=False)
    r = _run(tiny_args(other, out, "--max-steps", "2", "--resume"))
    assert r.returncode == 2
    assert "is not the data this run was trained on" in r.stderr and "locations differ" in r.stderr
    # a migrated copy of the run's own store (another path and layout) is the same data
    copy = tmp_path / "copy.zarr"
    migrate_store(tiny_store, copy, progress=False)
    assert main(tiny_args(copy, out, "--max-steps", "2", "--resume")) == 0


def test_end_summary(tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = _run(tiny_args(tiny_store, out, "--max-steps", "2"))
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith("done: step 2 (2 in this run,") and "samples/s" in line and "final loss" in line
    assert str(out / "curves.png") in line and str(out / "last.ckpt") in line
    r = _run(tiny_args(tiny_store, out, "--max-steps", "2", "--resume"))
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith("nothing to do: the run") and "finished at step 2" in line and "nan" not in line
