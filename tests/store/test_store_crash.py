"""Crash safety for real: a writer process SIGKILLed at random moments never exposes a partial location,
and rerunning it finishes a store identical to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import crash_writer
import numpy as np
import pytest
from store_helpers import BANDS, P, T, location, stored

from seco.errors import StoreError
from seco.store import create_store, open_store, open_writer

HERE = Path(__file__).resolve().parent
N = 30


def _run(path: Path, commit_every: int, hist_every: int, kill_after: float | None, grid: str = "10m") -> bool:
    """Run the child; with ``kill_after``, SIGKILL it that many seconds after it is ready. True if it finished."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "crash_writer.py"), str(path), str(N), str(commit_every), str(hist_every), grid],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    if kill_after is None:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        return True
    line = proc.stdout.readline()  # "ready" (or "" if it crashed on its own)
    assert line.strip() == "ready", proc.stderr.read()
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    return "done" in out


def _check_visible(path: Path, grid: str = "10m") -> int:
    """Every visible location is complete and exactly what was intended; returns how many."""
    s = open_store(path)
    assert s.keys() == [f"loc-{i:05d}" for i in range(len(s))]  # appended in order, none twice
    labels = s.labels()
    for i in range(len(s)):
        want = crash_writer.intended(i, grid)
        np.testing.assert_array_equal(s.read(i), stored(want))
        np.testing.assert_array_equal(s.valid(i), want["valid"])
        assert [m["item_id"] for m in s.meta(i)] == [m["item_id"] if m else None for m in want["dates_meta"]]
        assert labels[i] == want["label"]
    return len(s)


@pytest.mark.parametrize("commit_every,hist_every,grid", [(1, 4, "10m"), (3, 5, "10m"), (1, 4, "native")])
def test_sigkill_at_random_moments_then_resume(tmp_path, commit_every, hist_every, grid):
    rng = np.random.default_rng(1234 + commit_every)
    path = tmp_path / "crash.zarr"
    seen = []
    for _ in range(4):  # bounded number of kills
        if _run(path, commit_every, hist_every, kill_after=float(rng.uniform(0.0, 0.25)), grid=grid):
            break
        seen.append(_check_visible(path, grid))
    assert any(0 < n < N for n in seen), f"no kill landed mid-run: {seen}"
    assert _run(path, commit_every, hist_every, kill_after=None, grid=grid)
    assert _check_visible(path, grid) == N
    assert not list(path.rglob("*.partial")), "temporary files of killed writes were not swept"

    ref = tmp_path / "ref.zarr"
    crash_writer.run(str(ref), N, commit_every, hist_every, grid)  # the same loop, never interrupted
    a, b = open_store(path), open_store(ref)
    assert a.grid == b.grid == grid and a.keys() == b.keys()
    np.testing.assert_array_equal(a.valid_mask(), b.valid_mask())
    np.testing.assert_array_equal(a.labels(), b.labels())
    np.testing.assert_array_equal(a.histogram(), b.histogram())  # exact: no location counted twice
    np.testing.assert_array_equal(a.clear_histogram(), b.clear_histogram())  # the clear-pixel one too
    for k in ("mean", "std", "p2", "p98"):
        np.testing.assert_array_equal(a.stats()[k], b.stats()[k])
    for i in range(N):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        assert a.meta(i) == b.meta(i)


def test_uncommitted_slot_is_overwritten(tmp_path):
    """What a crash between the shard write and the commit leaves: an orphan shard and a temp file."""
    path = tmp_path / "s.zarr"
    locs = [location(i) for i in range(3)]
    w = create_store(path, BANDS, T, P)
    w.append(locs[0]["key"], locs[0]["images"], locs[0]["valid"], locs[0]["dates_meta"])
    w._shard_writers["images"].write(1, np.full((T, len(BANDS), P, P), 9, np.uint16))  # written, never committed
    shard_dir = path / "images" / "c" / "1" / "0" / "0" / "0"
    (shard_dir / "0.deadbeef.partial").write_bytes(b"torn")
    del w  # the process "dies": no flush, no close
    assert len(open_store(path)) == 1
    w = open_writer(path)
    assert not (shard_dir / "0.deadbeef.partial").exists()
    assert not w.has(locs[1]["key"])
    for loc in locs[1:]:
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    w.close()
    s = open_store(path)
    for i, loc in enumerate(locs):
        np.testing.assert_array_equal(s.read(i), stored(loc))


def test_close_removes_orphan_shards(tmp_path):
    path = tmp_path / "s.zarr"
    w = create_store(path, BANDS, T, P, commit_every=10)
    for i in range(3):
        loc = location(i)
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    del w  # killed with 3 pending locations: their shards exist, nothing is committed
    assert (path / "images" / "c" / "2").is_dir() and len(open_store(path)) == 0
    open_writer(path).close()
    assert not (path / "images" / "c" / "0" / "0" / "0" / "0" / "0").exists()


def test_exist_ok_checks_settings(tmp_path):
    path = tmp_path / "s.zarr"
    create_store(path, BANDS, T, P).close()
    create_store(path, BANDS, T, P, exist_ok=True).close()
    with pytest.raises(StoreError, match=r"other settings: num_dates 3 \(asked 5\)"):
        create_store(path, BANDS, 5, P, exist_ok=True)
