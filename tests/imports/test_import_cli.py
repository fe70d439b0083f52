"""``seco import`` through the real command line: SIGKILL at random moments then rerun, and pre-training on the
imported store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_import import _same_store

from seco.cli import main
from seco.store import open_store

REPO = Path(__file__).resolve().parents[2]


def _committed(store: Path) -> int:
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"]["seco_manifest"]["num_locations"])
    except (OSError, ValueError, KeyError):
        return 0


def _import_cmd(root: Path, out: Path, commit_every: int = 1) -> list[str]:
    return [sys.executable, "-m", "seco", "import", "seco", str(root), "--out", str(out), "--workers", "0",
            "--patch-size", "48", "--commit-every", str(commit_every), "--no-progress"]


@pytest.mark.parametrize("commit_every", [2])  # batched commits like the default (16)
def test_sigkill_at_random_moments_then_rerun_gives_the_same_store(seco_fake, seco_store, tmp_path, commit_every):
    rng = np.random.default_rng(7 + commit_every)
    out = tmp_path / "killed.zarr"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    landed = []
    for _ in range(3):  # bounded number of kills
        proc = subprocess.Popen(_import_cmd(seco_fake.root, out, commit_every), cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        before = _committed(out)
        deadline = time.monotonic() + 60
        while proc.poll() is None and _committed(out) <= before and time.monotonic() < deadline:
            time.sleep(0.01)  # wait for this run's first commit, then kill at a random moment after it
        time.sleep(float(rng.uniform(0.0, 0.08)))  # the rest of the run takes ~0.1-2 s
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        n = _committed(out)
        landed.append(n)
        s = open_store(out)  # what is visible is complete and in order
        assert s.keys() == open_store(seco_store).keys()[: len(s)]
    assert any(0 < n < 7 for n in landed), f"no kill landed mid-run: {landed}"
    r = subprocess.run(_import_cmd(seco_fake.root, out, commit_every), cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "imported 7 of 8" in r.stdout and "000001" in r.stdout
    _same_store(seco_store, out)
    assert not list(out.rglob("*.partial"))
    rep = json.loads((out / "_import" / "report.json").read_text())
    assert [x["location"] for x in rep["skipped"]] == ["000001"]


def test_import_then_pretrain_through_the_cli(seco_fake, tmp_path, capsys):
    store = tmp_path / "seco.zarr"
    assert main(["import", "seco", str(seco_fake.root.parent), "--out", str(store), "--workers", "0",
                 "--patch-size", "48", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "imported 7 of 8 seco s2a locations" in printed and "lossy (JPEG)" in printed
    run = tmp_path / "run"
    assert main(["pretrain", "--store", str(store), "--out", str(run), "--backbone", "resnet18", "--crop", "32",
                 "--batch-size", "4", "--queue-size", "16", "--log-every", "1", "--ckpt-every", "1",
                 "--no-tensorboard", "--no-progress", "--max-steps", "2"]) == 0
    assert (run / "last.ckpt").is_file()
    assert "done: step 2 " in capsys.readouterr().out


def test_seco_import_never_imports_torch(seco_fake, tmp_path):
    args = ["import", "seco", str(seco_fake.root), "--out", str(tmp_path / "s.zarr"), "--workers", "0",
            "--patch-size", "48", "--limit", "1", "--no-progress"]
    code = f"import sys\nfrom seco.cli import main\nrc = main({args!r})\nprint(rc, 'torch' in sys.modules)\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.stdout.strip().splitlines()[-1] == "0 False", r.stderr


def test_a_patch_size_that_fits_no_patch_is_refused_before_any_store(seco_fake, tmp_path):
    """The fake corpus has 48 px patches: --patch-size 36 leaves out every date of every location. Recognised
    from the first locations, before a store exists, with the side to pass; the rerun with it then works."""
    out = tmp_path / "s.zarr"
    args = ["import", "seco", str(seco_fake.root.parent), "--out", str(out), "--workers", "0", "--no-progress"]
    r = subprocess.run([sys.executable, "-m", "seco", *args, "--patch-size", "36"], capture_output=True, text=True,
                       timeout=300, cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert "the corpus' patches are 48 px at 10 m, not --patch-size 36" in r.stderr
    assert "pass --patch-size 48" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    assert main([*args, "--patch-size", "48"]) == 0


def test_an_import_that_imports_nothing_fails_and_locks_nothing_in(tmp_path, capsys):
    """A corpus whose only location is short (2 dates, fewer than --min-dates 3): exit 2 with the reason, and no
    empty store left behind to refuse the rerun with other settings ("created with other settings")."""
    import shutil

    from fakes import make_seco

    fake = make_seco(tmp_path / "corpus" / "seasonal_contrast_100k", locations=2, seed=1)
    shutil.rmtree(fake.root / "000000")  # keep location 1, the short one
    out = tmp_path / "s.zarr"
    args = ["import", "seco", str(fake.root.parent), "--out", str(out), "--workers", "0", "--no-progress",
            "--patch-size", "48"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "nothing was imported: every one of the 1 locations was skipped" in err
    assert "the empty store was removed" in err and not out.exists()
    assert main([*args, "--min-dates", "2"]) == 0
    assert len(open_store(out)) == 1
