"""``bench/gpu_check.py`` on the CPU: a clear exit without CUDA, and the checks that can run here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench import gpu_check
from bench.gpu_check import TINY, Context


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_without_cuda_it_exits_2_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "torch.cuda.is_available() is False" in err
    assert not (tmp_path / "o").exists()


def test_cpu_runnable_checks_pass(tmp_path: Path) -> None:
    """uint16 unpack / reflectance / views (CPU against NumPy and itself) and the all_gather layout through a
    1-rank gloo group; the GPU-only checks say so instead of crashing; the table renders."""
    ctx = Context(torch.device("cpu"), tmp_path, TINY)
    results = gpu_check.run(ctx, {1, 2, 3, 4, 6})
    by = {r.name.split(". ", 1)[1]: r for r in results}
    assert by["uint16 on CUDA"].ok, by["uint16 on CUDA"].detail
    assert "P=50 factors [1, 2, 6]" in by["uint16 on CUDA"].detail
    assert by["all_gather layout"].ok and "gloo" in by["all_gather layout"].detail
    assert by["pinning"].detail == by["slot race under stress"].detail == "needs CUDA"
    assert "/dev/shm" in by["environment"].detail and "ulimit -l" in by["environment"].detail
    text = gpu_check.render(results, "# header")
    assert text.count("\n| ") == 1 + len(results) and "**FAIL**" in text


@pytest.mark.slow
def test_end_to_end_check_on_cpu(tmp_path: Path) -> None:
    """Check 7's logic (pretrain, resume, metrics, leftovers) with `--device cpu` on a tiny native store."""
    ctx = Context(torch.device("cpu"), tmp_path, TINY)
    ok, detail = gpu_check.check_end_to_end(ctx)
    assert ok, detail
    assert "resumed at 4" in detail and "leftover workers: none" in detail and "batch ring:" in detail
