"""Shared pytest fixtures."""

from pathlib import Path

import pytest


@pytest.fixture
def shared_dir() -> Path:
    """The read-only shared material (``../shared`` beside the repository root)."""
    path = Path(__file__).resolve().parents[1].parent / "shared"
    if not path.is_dir():
        pytest.skip(f"shared material not found at {path}; check it out beside the repository")
    return path


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 simulated locations x 5 dates x 12 bands x 48 px (seeded)."""
    from seco.synth import make_store

    path = tmp_path_factory.mktemp("store") / "tiny.zarr"
    make_store(path, num_locations=16, num_dates=5, patch_size=48, seed=3, progress=False)
    return path


def tiny_pretrain_args(store: Path, out: Path, *extra: str) -> list[str]:
    """``seco pretrain`` arguments for a run of a few seconds on :func:`tiny_store`."""
    return [
        "pretrain", "--store", str(store), "--out", str(out), "--backbone", "resnet18", "--crop", "32",
        "--batch-size", "4", "--queue-size", "16", "--log-every", "1", "--ckpt-every", "1",
        "--no-tensorboard", "--no-progress", *extra,
    ]


def sigkill_after_checkpoint(args: list[str], ckpt: Path, min_step: int, env: dict[str, str]) -> None:
    """Start ``python -m seco *args`` and SIGKILL it once ``ckpt`` holds a step >= ``min_step`` (or after 120 s)."""
    import signal
    import subprocess
    import sys
    import time

    import torch

    proc = subprocess.Popen([sys.executable, "-m", "seco", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists():
            try:
                if torch.load(ckpt, weights_only=True)["step"] >= min_step:
                    break
            except Exception:  # noqa: BLE001 - replaced while reading
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def join_gloo(rank: int, init_file: str, world: int) -> None:
    """In a test's spawned rank: one intra-op thread, then the gloo process group through ``init_file``."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)


def same_on_all_ranks(t: "torch.Tensor") -> bool:  # noqa: F821
    """Whether tensor ``t`` holds the same values on every rank of the process group."""
    import torch
    import torch.distributed as dist

    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return all(torch.equal(parts[0], p) for p in parts[1:])
