"""``seco collect --out s3://...`` against a local S3-compatible server (moto, 127.0.0.1), journal in a local
folder: the store equals the one collected to a local folder, a rerun adds nothing, and SIGKILL at seeded
moments (one of them while the store is being created, which on an object store cannot be atomic) followed
by a rerun gives the uninterrupted store, exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from seco.cli import main
from seco.collect.journal import read_failures
from seco.errors import StoreError
from seco.store import open_store
from tests.integration.s3server import run_moto
from tests.integration.servers import archive_locations, make_test_archive

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--patch-size", "32", "--max-cloud", "60", "--no-progress", "--retries", "1", "--backoff", "0.01",
        "--workers", "2"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    work = tmp_path_factory.mktemp("s3")
    with run_moto(work) as env, pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            if k.startswith("AWS_"):
                mp.setenv(k, v)
        yield env


def _archive_and_locs(base: Path, per_side: int) -> tuple[Path, Path, Path]:
    archive = make_test_archive(base / "archive", scene_px=180)
    locs = archive_locations(archive, base / f"loc{per_side}.parquet", per_side=per_side, patch_px=32)
    local = base / f"local{per_side}.zarr"
    assert main(["collect", "--locations", str(locs), "--catalog", str(archive / "catalog.parquet"),
                 "--out", str(local), *ARGS]) == 0
    return archive, locs, local


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A synth archive, 3 locations (one per site) and their store collected to a local folder."""
    return _archive_and_locs(tmp_path_factory.mktemp("s3data"), 1)


def _args(archive: Path, locs: Path, out: str, journal: Path) -> list[str]:
    return ["collect", "--locations", str(locs), "--catalog", str(archive / "catalog.parquet"), "--out", out,
            "--journal", str(journal), *ARGS]


def _assert_same(local: Path, url: str) -> None:
    a, b = open_store(local), open_store(url)
    assert len(a) > 0 and a.keys() == b.keys() and len(set(b.keys())) == len(b)
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        assert a.meta(i) == b.meta(i)
    np.testing.assert_array_equal(a.valid_mask(), b.valid_mask())
    np.testing.assert_array_equal(a.histogram(), b.histogram())


def test_collect_to_s3_equals_local_and_resumes_as_a_no_op(s3, data, tmp_path, capsys):
    archive, locs, local = data
    url = f"s3://{s3['BUCKET']}/one/store.zarr"
    journal = tmp_path / "journal"
    assert main(_args(archive, locs, url, journal)) == 0
    _assert_same(local, url)
    assert read_failures(journal=journal) == read_failures(local)
    assert json.loads((journal / "store.json").read_text()) == {"store": url}
    assert not (journal / "creating").exists()
    capsys.readouterr()
    assert main(_args(archive, locs, url, journal)) == 0  # everything decided: nothing read, nothing written
    assert "(0 this run" in capsys.readouterr().out
    _assert_same(local, url)


def test_dry_run_on_s3_writes_nothing(s3, data, tmp_path, capsys):
    archive, locs, _ = data
    url = f"s3://{s3['BUCKET']}/dry/store.zarr"
    assert main([*_args(archive, locs, url, tmp_path / "j"), "--dry-run"]) == 0
    assert "dry run: 3 locations" in capsys.readouterr().out
    with pytest.raises(StoreError):
        open_store(url)


def test_a_local_store_with_its_journal_elsewhere(data, tmp_path):
    archive, locs, local = data
    out, journal = tmp_path / "s.zarr", tmp_path / "journal"
    assert main(_args(archive, locs, str(out), journal)) == 0
    _assert_same(local, str(out))
    assert read_failures(journal=journal) == read_failures(local)
    assert not (out / "_collect").exists() and (journal / "journal.jsonl").is_file()
    assert main(_args(archive, locs, str(out), journal)) == 0  # resumes from the same journal
    _assert_same(local, str(out))


def test_bad_object_store_options_exit_2(s3, data, tmp_path, capsys):
    archive, locs, _ = data
    url = f"s3://{s3['BUCKET']}/two/store.zarr"
    args = ["collect", "--locations", str(locs), "--catalog", str(archive / "catalog.parquet"), "--out", url, *ARGS]
    assert main(args) == 2
    assert "give --journal DIR" in capsys.readouterr().err
    journal = tmp_path / "j"
    assert main([*args, "--journal", str(journal)]) == 0
    other = f"s3://{s3['BUCKET']}/three/store.zarr"  # a journal folder belongs to one store
    assert main(_args(archive, locs, other, journal)) == 2
    assert "holds the journal of" in capsys.readouterr().err


def _committed(url: str) -> int:
    """Locations committed in the store at ``url`` now (0 before it exists)."""
    try:
        return len(open_store(url))
    except StoreError:
        return 0


@pytest.mark.parametrize("per_side,n_kills", [
    (1, 2),  # 3 locations: killed while the store is created, then once after a commit
    pytest.param(2, 4, marks=pytest.mark.slow),  # 12 locations, 4 kills (~1 min)
])
def test_sigkill_at_random_moments_on_s3_gives_the_uninterrupted_store(s3, data, tmp_path, per_side, n_kills):
    archive, locs, local = data if per_side == 1 else _archive_and_locs(tmp_path / "data", per_side)
    url = f"s3://{s3['BUCKET']}/killed{per_side}/store.zarr"
    journal = tmp_path / "journal"
    cmd = [sys.executable, "-m", "seco", *_args(archive, locs, url, journal)]
    env = {**os.environ, **{k: v for k, v in s3.items() if k.startswith("AWS_")}}
    rng = random.Random(20261127)
    kills, partial = 0, []
    for k in range(n_kills):  # bounded; the first while the store is being created, the others seeded
        before, more, delay = _committed(url), rng.randint(1, 1 if per_side == 1 else 2), rng.uniform(0.0, 0.15)
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        if k == 0:
            while proc.poll() is None and not (journal / "creating").exists() and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(0.3)  # some of the store's objects are written, not yet the version attributes
        else:
            while proc.poll() is None and _committed(url) < before + more and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(delay)
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        kills += 1
        if k == 0:
            assert (journal / "creating").exists(), "the first kill must land while the store is created"
        else:
            partial.append(len(open_store(url)))
    final = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    n = len(open_store(local))
    assert kills == n_kills and any(0 < p < n for p in partial), (kills, partial, n)
    _assert_same(local, url)
    assert read_failures(journal=journal) == read_failures(local)
