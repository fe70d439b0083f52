"""The report of ``seco experiment compare``: mean +/- std per method and task, the paper beside it, verdicts.

A verdict compares two methods' seed means with the standard error of their difference
(``se = sqrt(s_a^2 / n_a + s_b^2 / n_b)``, sample std over seeds):

- ``a > b`` **holds** when ``mean_a - mean_b > 2 se``; **not shown** when the difference is within
  ``2 se`` either way (the seeds cannot tell them apart); **reversed** when ``mean_b - mean_a > 2 se``;
- ``a >= b`` holds unless reversed (*holds (within noise)* when the seeds cannot tell them apart).

With 3 seeds this is a coarse test (about a 90 % two-sided interval); the report says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from seco.experiment.config import RANDOM, CompareConfig, colour, display_name
from seco.experiment.evaluate import TASKS
from seco.methods import get_method, method_names

#: The paper's OSCD F1 of a random-init backbone (Mañas et al. 2021, Table 4; each method's own is in its
#: record, ``seco.methods.Method.paper_oscd_f1``), and the paper's ordering on land cover (BigEarthNet, EuroSAT
#: linear probes: SeCo > MoCo-v2+TP > MoCo-v2 > random init).
PAPER_RANDOM_OSCD_F1 = 29.44
PAPER_LANDCOVER_ORDER = ("seco", "moco-tp", "moco", "random")
PAPER_CHANGE_ORDER = ("seco", "moco", "moco-tp", "random")

#: The paper's qualitative claims: (text, a, relation, b, task kind); ``ssl`` means every pre-trained method.
CLAIMS: tuple[tuple[str, str, str, str, bool], ...] = (
    ("SSL > random init on land cover", "ssl", ">", "random", True),
    ("SeCo >= MoCo-v2+TP on land cover", "seco", ">=", "moco-tp", True),
    ("SeCo > MoCo-v2+TP on change detection", "seco", ">", "moco-tp", False),
)


def paper_oscd_f1() -> dict[str, float]:
    """The paper's OSCD F1 of every registered method that has one, and of random init."""
    known = {m: get_method(m).paper_oscd_f1 for m in method_names()}
    return {**{m: v for m, v in known.items() if v is not None}, RANDOM: PAPER_RANDOM_OSCD_F1}


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """task -> method -> {mean, std, n, values} in percent."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for r in results:
        for task, v in r["tasks"].items():
            table.setdefault(task, {}).setdefault(r["method"], {"values": []})["values"].append(100 * v["value"])
    for per in table.values():
        for s in per.values():
            a = np.asarray(s["values"], np.float64)
            s.update(mean=float(a.mean()), std=float(a.std(ddof=1)) if len(a) > 1 else float("nan"), n=len(a))
    return table


def compare(a: dict[str, Any], b: dict[str, Any], relation: str) -> tuple[str, float, float]:
    """(verdict, mean difference, 2 x its standard error) of ``a relation b`` (see the module docstring)."""
    diff = a["mean"] - b["mean"]
    if a["n"] < 2 or b["n"] < 2:
        return "not tested (one seed)", diff, float("nan")
    two_se = 2.0 * math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    if -diff > two_se:
        return "reversed", diff, two_se
    if diff > two_se:
        return "holds", diff, two_se
    if relation == ">=":
        return "holds (within noise)", diff, two_se
    return "not shown (within noise)", diff, two_se


def verdicts(table: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (claim, task, pair) that the results can test."""
    rows = []
    for text, a, rel, b, invariant in CLAIMS:
        for task, per in table.items():
            if TASKS[task]["invariant"] != invariant or b not in per:
                continue
            lhs = [m for m in per if m != RANDOM] if a == "ssl" else [a]
            for m in lhs:
                if m not in per:
                    continue
                v, d, two_se = compare(per[m], per[b], rel)
                rows.append({"claim": text, "task": task, "a": m, "b": b, "relation": rel, "verdict": v,
                             "diff": d, "two_se": two_se})
    return rows


def _pm(s: dict[str, Any] | None) -> str:
    if s is None:
        return "-"
    return f"{s['mean']:.1f} ± {s['std']:.1f}" if s["n"] > 1 else f"{s['mean']:.1f}"


def _rank(per: dict[str, dict[str, Any]]) -> str:
    return " > ".join(display_name(m) for m in sorted(per, key=lambda m: -per[m]["mean"]))


def plot(table: dict[str, dict[str, dict[str, Any]]], methods: tuple[str, ...], png: Path) -> None:
    """One panel per task: mean +/- std bars, each seed a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(table)
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        per = table[task]
        ms = [m for m in methods if m in per]
        x = np.arange(len(ms))
        ax.bar(x, [per[m]["mean"] for m in ms], yerr=[0 if per[m]["n"] < 2 else per[m]["std"] for m in ms],
               color=[colour(m) for m in ms], alpha=0.75, capsize=3)
        for i, m in enumerate(ms):
            ax.scatter(np.full(per[m]["n"], i), per[m]["values"], color="k", s=10, zorder=3)
        ax.set_xticks(x, [display_name(m) for m in ms], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(f"{TASKS[task]['metric']} (%)")
        ax.set_title(TASKS[task]["title"], fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _subspace_lines(results: list[dict[str, Any]]) -> list[str]:
    """The per-subspace section (backbone and each head of the pre-trained methods), if scored."""
    acc: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in results:
        for space, v in r.get("subspaces", {}).items():
            d = acc.setdefault((r["method"], space), {"landcover": [], "season_consistency": []})
            d["landcover"].append(100 * v["landcover"])
            d["season_consistency"].append(v["season_consistency"])
    if not acc:
        return []

    def pm(vals: list[float], digits: int) -> str:
        a = np.asarray(vals)
        return f"{a.mean():.{digits}f} ± {a.std(ddof=1):.{digits}f}" if len(a) > 1 else f"{a.mean():.{digits}f}"

    return [
        "## Per-subspace features (the paper's Figure 2 idea)",
        "",
        "Each embedding space of the pre-trained methods on the labelled simulated store: the pooled backbone "
        "features and each projection head's (L2-normalised) output. *Land cover*: linear-probe accuracy (%). "
        "*Season consistency*: mean cosine similarity of one location's embeddings at two different dates "
        "minus that of two different locations (standardised dimensions); high = the space ignores the season. "
        "SeCo's heads 0 and 1 are trained to be invariant to the date (season), head 2 to be variant to it "
        "(its positive is the same date, the other dates of the batch are its negatives).",
        "",
        "| method | space | land cover (%) | season consistency |",
        "|---|---|---:|---:|",
        *[f"| {display_name(m)} | {space} | {pm(v['landcover'], 1)} | {pm(v['season_consistency'], 3)} |"
          for (m, space), v in acc.items()],
        "",
    ]


def reproduce(env: dict[str, Any], settings: str) -> list[str]:
    """The report's closing "Reproduce" section: where the settings are, and the machine, load and time."""
    return [
        "",
        "## Reproduce",
        "",
        settings,
        "",
        f"{env['cpus']} CPUs, load average {env['load_start']:.1f} at the start and {env['load_end']:.1f} at the "
        f"end; {env['total_s'] / 60:.1f} min this invocation (finished cells of an earlier one are reused).",
        "",
    ]


def write_markdown(path: Path, lines: list[str]) -> Path:
    """``lines`` joined into the Markdown file ``path``."""
    path.write_text("\n".join(lines))
    return path


def write_report(cfg: CompareConfig, results: list[dict[str, Any]], env: dict[str, Any]) -> Path:
    """``results.json``, ``comparison.png`` and ``report.md`` in ``cfg.out``; returns the report's path."""
    out = Path(cfg.out)
    table = summarize(results)
    rows = verdicts(table)
    (out / "results.json").write_text(json.dumps({"config": cfg.to_dict(), "env": env, "summary": table,
                                                  "verdicts": rows, "cells": results}, indent=2))
    plot(table, cfg.methods, out / "comparison.png")
    seeds = ", ".join(str(s) for s in cfg.seed_list)
    steps = {r["method"]: r["train"]["steps"] for r in results if r["method"] != RANDOM}
    lines = [
        "# seco experiment compare",
        "",
        f"One store (`{env['store']}`, bands {', '.join(env['bands'])}), one budget for every pre-trained method: "
        f"ResNet-18, {cfg.steps} steps of batch {cfg.batch_size} at {cfg.crop} px, queue {cfg.queue_size}, "
        f"lr {cfg.lr:g} cosine (steps done: {', '.join(f'{display_name(m)} {s}' for m, s in steps.items()) or '-'}). "
        f"Seeds {seeds} (the seed sets the pre-training, or the random init). Every backbone is frozen and "
        "normalised with the statistics of the evaluation data's own training part (one policy for all).",
        "",
        "## Results (mean ± std over seeds, %)",
        "",
        "| task | " + " | ".join(display_name(m) for m in cfg.methods) + " | ranking here | paper |",
        "|---|" + "---:|" * len(cfg.methods) + "---|---|",
    ]
    for task, per in table.items():
        paper = ("OSCD F1: " + ", ".join(f"{display_name(m)} {v}" for m, v in paper_oscd_f1().items())
                 if not TASKS[task]["invariant"] else
                 " > ".join(display_name(m) for m in PAPER_LANDCOVER_ORDER) + " (BigEarthNet, EuroSAT)")
        lines.append(f"| {TASKS[task]['title']} ({TASKS[task]['metric']}) | "
                     + " | ".join(_pm(per.get(m)) for m in cfg.methods) + f" | {_rank(per)} | {paper} |")
    lines += [
        "",
        "![comparison](comparison.png)",
        "",
        "## The paper's claims at this scale",
        "",
        "Verdict rule: `a > b` holds when the mean difference exceeds twice its standard error over seeds, is "
        "*reversed* when it is below minus that, and is *not shown* in between; `a >= b` holds unless reversed. "
        f"With {cfg.seeds} seed(s) per method this separates only clear differences.",
        "",
        "| claim | task | comparison | difference (points) | 2 SE | verdict |",
        "|---|---|---|---:|---:|---|",
        *[f"| {r['claim']} | {r['task']} | {display_name(r['a'])} {r['relation']} {display_name(r['b'])} | "
          f"{r['diff']:+.1f} | {r['two_se']:.1f} | **{r['verdict']}** |" for r in rows],
        "",
        *_subspace_lines(results),
        "## What these numbers do and do not show",
        "",
        "- They compare methods under one small budget on simulated data (and the real samples where listed); "
        "they are not the paper's numbers, which come from 1M images, 200 epochs and the full benchmarks.",
        "- A claim that is *not shown* here is not refuted: the budget may be too small for the methods to "
        "separate, or the simulated tasks too easy or too hard for the differences to matter.",
        f"- Change detection trains the decoder for {cfg.cd_epochs} epoch(s) on simulated pairs"
        + (f" and {cfg.oscd_epochs} epoch(s) on the OSCD sample (the paper: 100)" if cfg.oscd else "")
        + "; probes use one frozen feature vector per image.",
        *reproduce(env, "Settings: `experiment.yaml`; each cell's pre-training `cells/<method>-seed<s>/pretrain/"
                        "config.yaml`, each change-detection run's `config.yaml` and `metrics.json`; every number: "
                        "`results.json`."),
    ]
    return write_markdown(out / "report.md", lines)
