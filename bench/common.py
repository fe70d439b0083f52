"""Shared helpers for the benchmarks: timing, RSS, and Markdown tables."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence

import psutil


def timeit(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median seconds per call of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def machine() -> str:
    import torch

    return (
        f"{platform.processor() or platform.machine()}, {psutil.cpu_count(logical=True)} logical cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
