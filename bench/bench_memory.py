"""Peak memory of a real ``seco pretrain`` run: batch 64, 12 bands, 128 px views, ResNet-18, SeCo.

Starts ``python -m seco pretrain`` as a child process on a synth store (or ``--store``) and samples the RSS
of the child and all its descendants (DataLoader workers, if any) every ``--interval`` seconds with psutil;
the peak of their sum is the number compared with the target (issue 2: < 4 GiB). With DataLoader workers,
RSS counts the shared-memory batches in both the worker and the main process; the PSS sum (shared pages
split among the processes that map them) is printed too. The kernel's own peak of
the largest process (``ru_maxrss`` of the waited child) is printed beside it as a cross-check that the
sampling did not miss a short spike. The run uses the CLI defaults otherwise (TensorBoard, curves.png and
the final checkpoint included), so it measures what a user's run holds.

    .venv/bin/python -m bench.bench_memory                       # 3 steps, queue 16384, 0 workers
    .venv/bin/python -m bench.bench_memory --steps 5 --workers 2 # with DataLoader worker processes
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import table

GiB = 2**30
TARGET_GIB = 4.0


def tree_memory(proc: psutil.Process, pss: bool) -> tuple[int, int, int, int]:
    """Over ``proc`` and its descendants: (sum of RSS, sum of PSS or 0, RSS of ``proc`` alone, process count).

    RSS counts a shared page (e.g. a batch a DataLoader worker passes through shared memory) in every
    process that maps it; PSS splits it among them, so the PSS sum is the memory the tree really holds.
    PSS needs ``/proc/PID/smaps_rollup`` (slower to read), so it is sampled only when ``pss`` is True.
    """
    try:
        kids = proc.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0, 0, 0, 0
    rss = total_pss = own = n = 0
    for k, p in enumerate([proc, *kids]):
        try:
            info = p.memory_full_info() if pss else p.memory_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        rss += info.rss
        total_pss += getattr(info, "pss", 0)
        own = info.rss if k == 0 else own
        n += 1
    return rss, total_pss, own, n


def measure(cmd: list[str], interval: float, log: Path, pss_every: int = 4) -> dict[str, float]:
    """Run ``cmd``, sampling its process tree's RSS; returns peaks (bytes), samples, wall seconds, exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    with log.open("wb") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        proc = psutil.Process(child.pid)
        peak = peak_pss = peak_own = procs = samples = 0
        t_peak = 0.0
        tick = time.perf_counter()
        while child.poll() is None:
            total, pss, own, n = tree_memory(proc, pss=samples % pss_every == 0)
            samples += 1
            if total > peak:
                peak, t_peak = total, time.perf_counter() - t0
            peak_pss, peak_own, procs = max(peak_pss, pss), max(peak_own, own), max(procs, n)
            tick += interval  # a fixed period, whatever the sampling itself costs
            time.sleep(max(0.0, tick - time.perf_counter()))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux; max over waited children
    return {
        "peak": peak, "peak_pss": peak_pss, "peak_own": peak_own, "procs": procs, "samples": samples, "t_peak": t_peak, "wall": wall,
        "rc": child.returncode, "ru_maxrss": after * 1024 if after > before else float("nan"),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default=None, help="store to train on (default: a synth store of --locations)")
    ap.add_argument("--locations", type=int, default=64, help="synth locations (>= the batch)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--bands", default="all")
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--queue", type=int, default=16384, help="queue size (a multiple of the batch)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers of the run")
    ap.add_argument("--interval", type=float, default=0.05, help="RSS sampling period in seconds")
    ap.add_argument("--pss-every", type=int, default=4, help="sample PSS every N-th sample (it is slower to read)")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="bench_memory_", dir=a.workdir)
    work = Path(tmp.name)
    if a.store is None:
        from seco.synth import make_store

        store = make_store(work / "store.zarr", num_locations=a.locations, patch_size=264, seed=0, progress=False)
    else:
        store = Path(a.store)
    run_args = [
        "pretrain", "--store", str(store), "--out", str(work / "run"), "--method", "seco", "--backbone", a.backbone,
        "--bands", a.bands, "--crop", str(a.crop), "--batch-size", str(a.batch), "--max-steps", str(a.steps),
        "--queue-size", str(a.queue), "--num-workers", str(a.workers), "--log-every", "1", "--no-progress",
        "--device", "cpu",
    ]
    cmd = [sys.executable, "-m", "seco", *run_args]
    log = work / "pretrain.log"
    res = measure(cmd, a.interval, log, a.pss_every)

    load = os.getloadavg()
    me = " ".join([".venv/bin/python -m bench.bench_memory", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    print(f"`{me}`\n")
    print(f"# Peak memory of `seco pretrain` ({a.backbone}, batch {a.batch}, {a.bands} bands, {a.crop} px, "
          f"{a.steps} steps, queue {a.queue}, {a.workers} workers)\n")
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, load average {load[0]:.1f} on {os.cpu_count()} CPUs; "
          f"{psutil.virtual_memory().total / GiB:.0f} GiB RAM\n")
    print("child: `python -m seco " + " ".join(shlex.quote(x) for x in run_args).replace(str(work), "$TMP") + "`\n")
    ok = res["rc"] == 0 and res["peak"] < TARGET_GIB * GiB
    rows = [
        ("peak RSS, process tree (sampled)", f"{res['peak'] / GiB:.2f} GiB", f"< {TARGET_GIB:.0f} GiB",
         "yes" if ok else "no"),
        ("peak PSS, process tree (sampled; shared pages counted once)", f"{res['peak_pss'] / GiB:.2f} GiB", "", ""),
        ("peak RSS, main process (sampled)", f"{res['peak_own'] / GiB:.2f} GiB", "", ""),
        ("peak RSS, largest process (kernel ru_maxrss)", f"{res['ru_maxrss'] / GiB:.2f} GiB", "", ""),
        ("processes in the tree (max)", str(int(res["procs"])), "", ""),
        ("samples / mean interval (asked)", f"{int(res['samples'])} / {1000 * res['wall'] / max(res['samples'], 1):.0f} ms "
         f"({1000 * a.interval:.0f} ms; PSS every {a.pss_every})", "", ""),
        ("peak reached at / run wall time", f"{res['t_peak']:.1f} s / {res['wall']:.1f} s", "", ""),
        ("exit status", str(res["rc"]), "0", "yes" if res["rc"] == 0 else "no"),
    ]
    print(table(["measure", "value", "target", "met"], rows))
    if res["rc"] != 0:
        print(f"\nthe run failed; its last output:\n```\n{log.read_text()[-3000:]}\n```")
    tmp.cleanup()
    if res["rc"] != 0:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
