"""Two CPU processes under torchrun (gloo): shuffle-BN, gathered keys, and ranks that stay in sync."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seco.train.run_checkpoint import load_checkpoint

pytestmark = pytest.mark.integration


def test_torchrun_two_cpu_ranks_stay_in_sync(tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
        f"--master_port={port}", "-m", "seco", "pretrain", "--store", str(tiny_store), "--out", str(out),
        "--crop", "32", "--batch-size", "8", "--queue-size", "32", "--max-steps", "3", "--ckpt-every", "1",
        "--log-every", "1", "--no-tensorboard", "--no-progress", "--device", "cpu",
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    sync = json.loads((out / "ddp_sync.json").read_text())
    assert sync["step"] == 3 and len(sync["fingerprints"]) == 2
    assert sync["in_sync"], sync
    ckpt = load_checkpoint(out / "last.ckpt")
    # keys of both ranks were gathered before enqueueing: 3 steps x global batch 8 = 24 keys per queue
    assert ckpt["model"]["queue.ptr"].flatten().tolist() == [24, 24, 24]
