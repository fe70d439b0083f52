"""The report of ``seco experiment compare --sensors s1+s2``: probes by input, cloudy optics, the issue's goals.

Verdicts use the rule of :mod:`seco.experiment.report` (``a > b`` holds when the mean difference exceeds twice
its standard error over seeds, *reversed* below minus that, *not shown* in between). The goals:

1. S1-only probe: every arm pre-trained with S1 bands beats random init (S1 channels);
2. cloudy optics at 50 % and 100 % overcast S2 dates: every S1 + S2 arm (on S1 + S2 inputs) beats every
   S2-only arm (on S2 inputs);
3. the multi-sensor method against early fusion (``seco-s12@s1+s2`` vs ``seco@s1+s2``) on the S1-only probe,
   two-sided: *holds* means the multi-sensor method is better, *reversed* that early fusion is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seco.experiment.config import RANDOM, CompareConfig, display_name
from seco.experiment.multisensor import CLOUD_FRACTIONS, INPUT_NAMES, INPUTS, native, split_arm
from seco.experiment.report import compare, reproduce, summarize, write_markdown

CLOUD_PCTS = tuple(int(round(100 * f)) for f in CLOUD_FRACTIONS)


def _sensors(arm: str) -> str | None:
    """The input set an arm's backbone takes (None: random init, any)."""
    from seco.bands import parse_bands

    method, bands = split_arm(arm)
    return None if method == RANDOM else native(tuple(parse_bands(bands or "s2")))


def goals(table: dict[str, dict[str, dict[str, Any]]], arms: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per comparison of the three goals that the results can test."""
    rows: list[dict[str, Any]] = []

    def add(goal: str, task_a: str, a: str, task_b: str, b: str) -> None:
        sa, sb = table.get(task_a, {}).get(a), table.get(task_b, {}).get(b)
        if sa is None or sb is None:
            return
        verdict, diff, two_se = compare(sa, sb, ">")
        rows.append({"goal": goal, "a": a, "task_a": task_a, "b": b, "task_b": task_b, "verdict": verdict,
                     "diff": diff, "two_se": two_se, "mean_a": sa["mean"], "mean_b": sb["mean"]})

    trained = [a for a in arms if _sensors(a) is not None]
    for a in trained:
        if "s1" in (_sensors(a) or "").split("+"):
            add("S1-only probe: pre-trained with S1 > random init", "landcover:s1", a, "landcover:s1", RANDOM)
    s12 = [a for a in trained if _sensors(a) == "s1+s2"]
    s2 = [a for a in trained if _sensors(a) == "s2"]
    for task, what in (("cloudy", "cloudy optics"), ("change", "cloudy change detection")):
        for pct in CLOUD_PCTS[1:]:
            goal = f"{what} {pct} %: S1+S2 > S2-only"
            for a in s12:
                for b in s2:
                    add(goal, f"{task}{pct}:s1+s2", a, f"{task}{pct}:s2", b)
            add(goal, f"{task}{pct}:s1+s2", RANDOM, f"{task}{pct}:s2", RANDOM)
    multi = [a for a in s12 if split_arm(a)[0] == "seco-s12"]
    early = [a for a in s12 if split_arm(a)[0] != "seco-s12"]
    for inputs in ("s1", "s2", "s1+s2"):
        for a in multi:
            for b in early:
                add(f"multi-sensor vs early fusion ({INPUT_NAMES[inputs]} probe)", f"landcover:{inputs}", a,
                    f"landcover:{inputs}", b)
    return rows


def _pm(s: dict[str, Any] | None) -> str:
    if s is None:
        return "-"
    return f"{s['mean']:.1f} ± {s['std']:.1f}" if s["n"] > 1 else f"{s['mean']:.1f}"


def _row_name(arm: str, task: str) -> str:
    return f"{display_name(arm)}" + (f" on {INPUT_NAMES[task.split(':')[1]]}" if arm == RANDOM else "")


def tables(cfg: CompareConfig, table: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """The land-cover-by-input and cloudy-optics tables (mean ± std over seeds, %)."""
    lines = [
        "## Land-cover linear probe by input (accuracy, mean ± std over seeds, %)",
        "",
        "A backbone given one sensor gets zeros for the other sensor's (normalised) channels; `-`: the backbone "
        "cannot take that input.",
        "",
        "| method | " + " | ".join(INPUT_NAMES[i] for i in INPUTS) + " |",
        "|---|" + "---:|" * len(INPUTS),
    ]
    for arm in cfg.methods:
        lines.append(f"| {display_name(arm)} | "
                     + " | ".join(_pm(table.get(f"landcover:{i}", {}).get(arm)) for i in INPUTS) + " |")
    for task, title, text in (
        ("cloudy", "Cloudy optics (accuracy, mean ± std over seeds, %)",
         "The same probe on other simulated scenes where a share of the locations' S2 dates (in train, val and "
         "test alike, per class) is overcast with the simulator's own clouds; S1 is unchanged. Each backbone gets "
         "its own inputs (random init: each input set)."),
        ("change", "Cloudy change detection (average precision, mean ± std over seeds, %)",
         "Simulated S1 + S2 city pairs with planted changes and floods, a share of the cities (per split) with "
         "an overcast second S2 date; the OSCD protocol (frozen encoder, U-Net decoder on feature differences)."),
    ):
        lines += _cloud_table(cfg, table, task, title, text)
    return [*lines, ""]


def _cloud_table(cfg: CompareConfig, table: dict[str, dict[str, dict[str, Any]]], task: str, title: str,
                 text: str) -> list[str]:
    """One table of a task scored at every cloud level (empty when the task was not run)."""
    if not any(k.startswith(task) for k in table):
        return []
    lines = [
        "",
        f"## {title}",
        "",
        text,
        "",
        "| method | inputs | " + " | ".join(f"{p} % overcast" for p in CLOUD_PCTS) + " |",
        "|---|---|" + "---:|" * len(CLOUD_PCTS),
    ]
    for arm in cfg.methods:
        for inputs in INPUTS:
            cells = [table.get(f"{task}{p}:{inputs}", {}).get(arm) for p in CLOUD_PCTS]
            if any(c is not None for c in cells):
                lines.append(f"| {display_name(arm)} | {INPUT_NAMES[inputs]} | "
                             + " | ".join(_pm(c) for c in cells) + " |")
    return lines


def write_s12_report(cfg: CompareConfig, results: list[dict[str, Any]], env: dict[str, Any]) -> Path:
    """``results.json`` and ``report.md`` in ``cfg.out``; returns the report's path."""
    out = Path(cfg.out)
    table = summarize(results)
    rows = goals(table, cfg.methods)
    (out / "results.json").write_text(json.dumps({"config": cfg.to_dict(), "env": env, "summary": table,
                                                  "goals": rows, "cells": results}, indent=2))
    seeds = ", ".join(str(s) for s in cfg.seed_list)
    lines = [
        "# seco experiment compare --sensors s1+s2",
        "",
        f"One simulated S1 + S2 store (`{env['store']}`), one budget for every pre-trained arm: ResNet-18, "
        f"{cfg.steps} steps of batch {cfg.batch_size} at {cfg.crop} px, queue {cfg.queue_size}, lr {cfg.lr:g} "
        f"cosine; each arm's bands as named. Seeds {seeds}. Every backbone is frozen and normalised with the "
        "statistics of the evaluation data's own training part (S2 in reflectance, S1 in dB).",
        "",
        *tables(cfg, table),
        "## The issue's goals at this scale",
        "",
        "Verdict rule: `a > b` holds when the mean difference exceeds twice its standard error over seeds, is "
        f"*reversed* when it is below minus that, and is *not shown* in between. With {cfg.seeds} seed(s) per "
        "arm this separates only clear differences. For multi-sensor vs early fusion, *holds* means the "
        "multi-sensor method is better and *reversed* that early fusion is.",
        "",
        "| goal | a | b | a (%) | b (%) | difference (points) | 2 SE | verdict |",
        "|---|---|---|---:|---:|---:|---:|---|",
        *[f"| {r['goal']} | {_row_name(r['a'], r['task_a'])} | {_row_name(r['b'], r['task_b'])} | "
          f"{r['mean_a']:.1f} | {r['mean_b']:.1f} | {r['diff']:+.1f} | {r['two_se']:.1f} | **{r['verdict']}** |"
          for r in rows],
        *reproduce(env, "Settings: `experiment.yaml`; each cell's pre-training `cells/<method>@<bands>-seed<s>/"
                        "pretrain/config.yaml`; every number: `results.json`."),
    ]
    return write_markdown(out / "report.md", lines)
