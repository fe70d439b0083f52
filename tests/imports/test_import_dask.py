"""``seco import --scheduler`` on a real Dask cluster: a ``dask scheduler`` and a ``dask worker`` process started
by the test on 127.0.0.1, the worker in another folder than the command, and the corpus given as a relative path.

Before the fix the workers resolved the relative root against their own folder and every location failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from seco.cli import main
from tests.integration.servers import _die_with_parent, free_port, stop, wait_port

pytestmark = pytest.mark.integration


def _dask_binary() -> str:
    here = Path(sys.executable).parent / "dask"
    found = str(here) if here.is_file() else shutil.which("dask")
    if not found:
        pytest.skip("not installed: dask (binary, from dask[distributed]); pip install -c constraints.txt -e '.[dev]'")
    return found


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler and one worker (1 thread) as separate processes, the worker running in its own empty folder."""
    dask = _dask_binary()
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs: list[subprocess.Popen] = []
    try:
        with open(logs / "scheduler.log", "wb") as log:
            procs.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                           "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT, env=env,
                                          cwd=elsewhere, preexec_fn=_die_with_parent))
        wait_port(port, procs[0], "dask scheduler", logs / "scheduler.log")
        with open(logs / "worker.log", "wb") as log:
            procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                           "--no-dashboard", "--host", "127.0.0.1",
                                           "--local-directory", str(elsewhere)], stdout=log,
                                          stderr=subprocess.STDOUT, env=env, cwd=elsewhere,
                                          preexec_fn=_die_with_parent))
        _wait_workers(address, procs[1], logs / "worker.log")
        yield address
    finally:
        for p in reversed(procs):
            stop(p)


def _wait_workers(address: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    from distributed import Client

    with Client(address, timeout="20s", set_as_default=False) as client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError as e:
            raise RuntimeError(f"dask worker did not join within {timeout:.0f} s (exit {proc.poll()}):\n"
                               f"{log.read_text()[-3000:]}") from e


def test_relative_root_is_resolved_before_it_reaches_the_workers(seco_fake, seco_store, dask_cluster, tmp_path,
                                                                 monkeypatch):
    from test_import import _same_store

    monkeypatch.chdir(seco_fake.root.parent)
    rel = os.path.relpath(seco_fake.root)
    assert not Path(rel).is_absolute() and not (tmp_path / "worker-cwd" / rel).exists()
    out = tmp_path / "dask.zarr"
    assert main(["import", "seco", rel, "--out", str(out), "--scheduler", dask_cluster,
                 "--patch-size", str(seco_fake.patch), "--no-progress"]) == 0
    _same_store(seco_store, out)  # every location read by the worker, identical to the in-process import
