"""Run every benchmark (``bench/bench_*.py``) with quick settings and print their tables (``make bench``).

Each module runs as ``python -m bench.<name> <quick args>`` in its own process, one after the other (so they
do not compete for the CPU), with a time limit. A module that fails or times out is reported and the others
still run; the exit status is 1 if any failed. Each module's stdout (its Markdown tables) is echoed live and
saved to ``bench/out/run_all/<name>.md``, its stderr (progress) to ``<name>.err``.

    .venv/bin/python -m bench.run_all                       # every module, quick settings
    .venv/bin/python -m bench.run_all --only loader,memory  # some of them
    .venv/bin/python -m bench.run_all --full                # each module's own defaults (the recorded runs)

Quick settings only shorten the runs (fewer rounds, reads, sizes); the numbers for docs/BENCHMARKS.md come
from each module's default run, whose command line it prints at the top of its output.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

#: Arguments that make each module's run short (a few minutes at most on 2 cores). Modules not listed run with
#: their defaults.
QUICK: dict[str, list[str]] = {
    "bench_store": ["--locations", "8", "--reads", "60", "--size-sample", "2"],
    "bench_patches": ["--scene-px", "1098", "--patches", "10"],
    "bench_step": ["--sizes", "128,64", "--steps", "2"],
    "bench_loader": ["--rounds", "3"],
    "bench_memory": ["--steps", "2"],
    "bench_eval": ["--epochs", "10", "--batches", "3"],
    "bench_collect": ["--patches", "200", "--naive", "5"],
    "bench_checkpoint": ["--repeats", "2"],
    "bench_decode": ["--locations", "16", "--rounds", "1"],
    "bench_import": ["--locations", "8"],
    "bench_clear_stats": ["--locations", "12", "--write-locations", "4", "--rounds", "1"],
    "bench_pipeline": ["--quiet", "--threads", "1", "--locations", "16", "--batch-size", "4", "--rounds", "1",
                       "--decode-batches", "2", "--loader-batches", "4", "--steps", "4", "--warm", "1"],
}

#: Modules that measure something the user brings (their required arguments): left out of ``make bench``; run
#: them directly, as their docstrings show.
NEEDS_INPUT: dict[str, str] = {
    "bench_fidelity": "needs --weights (a seco export); run it directly, see docs/FIDELITY.md",
}


def modules() -> list[str]:
    """The benchmark modules present, in name order."""
    return sorted(p.stem for p in BENCH.glob("bench_*.py"))


def _select(names: list[str], spec: str | None) -> list[str]:
    if not spec:
        return []
    want = [s.strip() for s in spec.split(",") if s.strip()]
    full = [w if w.startswith("bench_") else f"bench_{w}" for w in want]
    unknown = [w for w in full if w not in names]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(names)}")
    return full


def run_one(name: str, args: list[str], timeout: float, out_dir: Path) -> tuple[str, float]:
    """Run one module, echoing its stdout; returns (status, seconds)."""
    cmd = [sys.executable, "-m", f"bench.{name}", *args]
    md, err = out_dir / f"{name}.md", out_dir / f"{name}.err"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    print(f"\n## {name}\n\n$ {' '.join(shlex.quote(c) for c in ['python', *cmd[1:]])}\n", flush=True)
    with md.open("w") as fo, err.open("w") as fe:
        # own session: on timeout the module and everything it started (e.g. a `seco pretrain` child) are stopped
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=fe, text=True, env=env,
                                start_new_session=True)

        def pump() -> None:  # echo and save stdout line by line
            assert proc.stdout is not None
            for line in proc.stdout:
                fo.write(line)
                sys.stdout.write(line)
                sys.stdout.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the process group we created for this module, by its id
            rc = proc.wait()
        except KeyboardInterrupt:  # the child is in its own session: Ctrl-C does not reach it by itself
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        reader.join(timeout=10)
    secs = time.perf_counter() - t0
    if timed_out:
        status = f"timed out after {timeout:.0f} s"
    elif rc != 0:
        status = f"failed (exit {rc})"
    else:
        status = "ok"
    if status != "ok":
        tail = err.read_text()[-2000:]
        print(f"\n**{name}: {status}**; last lines of {err.relative_to(ROOT)}:\n```\n{tail}\n```", flush=True)
    return status, secs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=None, help="comma-separated modules to run (e.g. loader,memory)")
    ap.add_argument("--skip", default=None, help="comma-separated modules to leave out")
    ap.add_argument("--full", action="store_true", help="run each module with its own defaults, not quick ones")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds per module before it is stopped")
    ap.add_argument("--list", action="store_true", help="list the modules and their quick arguments, then exit")
    a = ap.parse_args(argv)

    names = modules()
    if a.list:
        for n in names:
            print(n, " ".join(QUICK.get(n, [])))
        return
    chosen = _select(names, a.only) or [n for n in names if n not in NEEDS_INPUT]
    for n in (n for n in names if n in NEEDS_INPUT and n not in chosen):
        print(f"left out: {n}: {NEEDS_INPUT[n]}")
    bad = [n for n in chosen if n in NEEDS_INPUT]
    if bad:
        raise SystemExit(f"{', '.join(bad)}: {'; '.join(NEEDS_INPUT[n] for n in bad)}")
    skip = set(_select(names, a.skip))
    chosen = [n for n in chosen if n not in skip]
    out_dir = BENCH / "out" / "run_all"
    out_dir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(f"# seco benchmarks ({'full' if a.full else 'quick'} settings)\n\n{time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {load[0]:.1f} on {os.cpu_count()} CPUs; modules: {', '.join(chosen)}", flush=True)
    rows = []
    for name in chosen:
        args = [] if a.full else QUICK.get(name, [])
        status, secs = run_one(name, args, a.timeout, out_dir)
        rows.append((name, " ".join(args) or "(defaults)", status, f"{secs:.0f}", str((out_dir / f"{name}.md").relative_to(ROOT))))
    print("\n## Summary\n")
    print(table(["benchmark", "arguments", "status", "seconds", "output"], rows))
    if any(r[2] != "ok" for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
