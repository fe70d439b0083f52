"""``seco experiment compare``: every method x seed on one store and one budget, then every task, then a report.

Layout of ``<out>``::

    experiment.yaml            the CompareConfig (a rerun must match it)
    store/                     the simulated pre-training store (when --store is not given)
    data/probe_store/          labelled simulated land cover for the linear probe
    data/synth_oscd/           simulated OSCD (planted changes)
    cells/<method>-seed<s>/    pretrain/ (config.yaml, last.ckpt, metrics.csv), weights/, change/, oscd/,
                               result.json (written last: a cell with it is finished and never redone)
    results.json, report.md, *.png

A run that dies continues where it stopped: finished cells are kept, a half-trained cell resumes its
pre-training from ``last.ckpt``. A rerun with ``--oscd DIR`` into an experiment run without OSCD adds the
OSCD tasks to every finished cell (the other settings must match).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from seco.errors import ConfigError, DatasetError
from seco.experiment.config import CompareConfig
from seco.fileutil import atomic_write

OSCD_LABELLED = ("bercy", "paris", "rennes")
#: Settings of the OSCD task, which a rerun may add to an experiment run without it.
OSCD_KEYS = ("oscd", "oscd_test", "oscd_epochs")


def check(cfg: CompareConfig) -> dict[str, Any]:
    """Every check that can fail on the user's input, before any work; what the run needs to know.

    Raises:
        ConfigError: a store smaller than the batch or the crop, bands it lacks, or an experiment folder
            holding other settings.
        DatasetError: a missing store, EuroSAT or OSCD folder.
    """
    from seco.bands import L2A, S1_BANDS, parse_bands
    from seco.errors import StoreError
    from seco.experiment.multisensor import arm_bands

    info: dict[str, Any] = {}
    if cfg.store is not None:
        from seco.store import open_store

        try:
            st = open_store(cfg.store)
        except StoreError as e:
            raise DatasetError(f"--store {cfg.store}: {e}") from e
        n, patch, have = len(st), st.patch_size, st.readable_bands
        what = f"--store {cfg.store}"
        if cfg.sensors == "s1+s2" and st.s1 is None:
            raise ConfigError(f"--store {cfg.store} has no Sentinel-1 group; --sensors s1+s2 needs an S1 + S2 store "
                              "(seco synth --s1, seco collect --s1) or no --store")
    else:
        n, patch, have = cfg.synth_locations, cfg.synth_patch, (*L2A, *(S1_BANDS if cfg.sensors == "s1+s2" else ()))
        what = f"the simulated store ({cfg.synth_locations} locations)"
    if n < cfg.batch_size:
        raise ConfigError(f"{what} holds {n} locations, fewer than one batch of {cfg.batch_size}; lower "
                          "--batch-size or use a bigger store")
    if patch < cfg.crop:
        raise ConfigError(f"{what} has {patch} px patches, smaller than --crop {cfg.crop}; lower --crop")
    info["bands"] = parse_bands(cfg.bands, have)
    info["arm_bands"] = arm_bands(cfg, have)
    if cfg.eurosat and not Path(cfg.eurosat).is_dir():
        raise DatasetError(f"--eurosat {cfg.eurosat} is not a folder; give the EuroSAT MS folder or leave it out")
    if cfg.oscd:
        root = Path(cfg.oscd)
        from seco.data.oscd import IMAGES_DIR

        if not (root / IMAGES_DIR).is_dir():
            raise DatasetError(f"--oscd {cfg.oscd} has no folder {IMAGES_DIR!r}; give the OSCD folder or leave it out")
        if cfg.oscd_test not in OSCD_LABELLED:
            raise ConfigError(f"--set oscd_test={cfg.oscd_test} must name a labelled city: {', '.join(OSCD_LABELLED)}")
    saved = Path(cfg.out) / "experiment.yaml"
    if saved.is_file():
        old = CompareConfig.load(saved)
        keys = set(cfg.comparable()) | set(old.comparable())
        diff = sorted(k for k in keys if old.comparable().get(k) != cfg.comparable().get(k))
        if not old.oscd and cfg.oscd:  # adding OSCD to an experiment run without it: finished cells get it too
            diff = [k for k in diff if k not in OSCD_KEYS]
        if diff:
            raise ConfigError(f"{cfg.out} holds an experiment with other settings ({', '.join(diff)}); give "
                              "another --out or the same settings to continue it")
    return info


def _data(cfg: CompareConfig, out: Path) -> dict[str, Path]:
    """The pre-training store and the evaluation data (made once, reused on a rerun)."""
    from seco.synth import make_store
    from seco.synth.changes import make_change_dataset

    paths: dict[str, Path] = {}
    s1 = cfg.sensors == "s1+s2"
    if cfg.store is None:
        paths["store"] = make_store(out / "store", num_locations=cfg.synth_locations, patch_size=cfg.synth_patch,
                                    seed=1000 + cfg.seed0, progress=cfg.progress, s1=s1)
    else:
        paths["store"] = Path(cfg.store)
    paths["probe"] = make_store(out / "data" / "probe_store", num_locations=cfg.probe_locations,
                                patch_size=cfg.probe_patch, seed=2000 + cfg.seed0, progress=cfg.progress, s1=s1)
    if s1:  # the tasks of seco.experiment.multisensor: change detection only with radar, floods and clouds
        if cfg.s12_change:
            from seco.experiment.multisensor import CHANGE_FLOODS, CLOUD_FRACTIONS

            for f in CLOUD_FRACTIONS:
                pct = int(round(100 * f))
                paths[f"change{pct}"] = make_change_dataset(
                    out / "data" / f"synth_oscd_s12_cloud{pct}", num_cities=cfg.cd_cities, size=cfg.cd_size,
                    seed=3000 + cfg.seed0, s1=True, flood_fraction=CHANGE_FLOODS, cloud_fraction=f)
        return paths
    paths["change"] = make_change_dataset(out / "data" / "synth_oscd", num_cities=cfg.cd_cities, size=cfg.cd_size,
                                          seed=3000 + cfg.seed0)
    return paths


def _pretrain(cfg: CompareConfig, method: str, seed: int, store: Path, cell: Path,
              bands: str | None = None) -> dict[str, Any]:
    """Pre-train one cell (resuming a half-done run) and export it; the weights path and training facts."""
    from seco.train.config import PretrainConfig
    from seco.train.export_run import export_run
    from seco.train.loop import pretrain

    run = cell / "pretrain"
    pc = PretrainConfig(
        store=str(store), out=str(run), method=method, backbone="resnet18", bands=bands or cfg.bands, crop=cfg.crop,
        batch_size=cfg.batch_size, epochs=100000, max_steps=cfg.steps, queue_size=cfg.queue_size, lr=cfg.lr,
        schedule="cosine", log_every=max(1, min(10, cfg.steps)), ckpt_every=max(1, min(50, cfg.steps)),
        plot_every=10**9, seed=seed, tensorboard=False, progress=cfg.progress, device=cfg.device,
    )
    t = time.perf_counter()
    if run.is_dir() and not (run / "last.ckpt").exists():  # stopped before its first checkpoint: nothing to keep
        shutil.rmtree(run)
    res = pretrain(pc, resume=(run / "last.ckpt").exists())
    paths = export_run(res.checkpoint, cell / "weights" / f"{method}_resnet18")
    weights = next(p for p in paths if p.suffix == ".safetensors")
    return {"weights": str(weights), "steps": res.steps, "final_loss": res.final_loss,
            "pretrain_s": time.perf_counter() - t}


def run_cell(cfg: CompareConfig, method: str, seed: int, paths: dict[str, Path], data: dict[str, Any],
             bands: tuple[str, ...]) -> dict[str, Any]:
    """Pre-train (unless random) and evaluate one (method, seed); writes and returns ``result.json``."""
    from seco.experiment import evaluate as ev
    from seco.experiment.config import RANDOM, display_name

    cell = Path(cfg.out) / "cells" / f"{method}-seed{seed}"
    done = cell / "result.json"
    if done.is_file():
        result = json.loads(done.read_text())
        added = _subspaces(cfg, result, cell, data, bands)  # a cell finished before subspaces were asked for
        if cfg.oscd and "oscd" not in result["tasks"]:  # ... or before OSCD was
            print(f"[cell] {display_name(method)}, seed {seed}: adding OSCD", flush=True)
            t = time.perf_counter()
            result["tasks"].update(_oscd(cfg, result["train"]["weights"], bands, seed, cell))
            result["oscd_added_s"] = time.perf_counter() - t
            added = True
        if added:
            _write(done, result)
        return result
    cell.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"[cell] {display_name(method)}, seed {seed}", flush=True)
    if method == RANDOM:
        train: dict[str, Any] = {"weights": "random", "steps": 0, "final_loss": None, "pretrain_s": 0.0}
    else:
        train = _pretrain(cfg, method, seed, paths["store"], cell)
    w = train["weights"]
    tasks: dict[str, Any] = {}
    tasks["landcover"] = ev.probe(w, bands, seed, data["probe_x"], data["probe_y"], split_seed=cfg.seed0)
    if "eurosat_x" in data:
        tasks["eurosat"] = ev.probe(w, bands, seed, data["eurosat_x"], data["eurosat_y"], split_seed=cfg.seed0)
    tasks["change"] = ev.change(w, bands, seed, paths["change"], cell / "change", cfg.cd_epochs, cfg.cd_patch,
                                cfg.cd_batch, cfg.device)
    tasks["change_ap"] = {"value": tasks["change"]["average_precision"]}
    if cfg.oscd:
        tasks.update(_oscd(cfg, w, bands, seed, cell))
    result = {"method": method, "seed": seed, "train": train, "tasks": tasks, "cell_s": time.perf_counter() - t0}
    _subspaces(cfg, result, cell, data, bands)
    _write(done, result)  # last: a cell with result.json is finished
    line = ", ".join(f"{k} {100 * v['value']:.1f} %" for k, v in tasks.items())
    print(f"    {line} ({result['cell_s']:.0f} s)", flush=True)
    return result


def run_s12_cell(cfg: CompareConfig, arm: str, seed: int, paths: dict[str, Path], data: Any,
                 arm_bands: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """One (arm, seed) of ``--sensors s1+s2``: pre-train (unless random) and score every task of
    :mod:`seco.experiment.multisensor`; writes and returns ``result.json`` (a cell with it is never redone)."""
    from seco.experiment.config import RANDOM, display_name
    from seco.experiment.multisensor import evaluate_cell, split_arm

    cell = Path(cfg.out) / "cells" / f"{arm}-seed{seed}"
    done = cell / "result.json"
    if done.is_file():
        result: dict[str, Any] = json.loads(done.read_text())
        if cfg.s12_change and not any(k.startswith("change") for k in result["tasks"]):  # asked for later
            print(f"[cell] {display_name(arm)}, seed {seed}: adding change detection", flush=True)
            result["tasks"].update(change_tasks(cfg, result["train"]["weights"], arm_bands.get(arm), seed, paths,
                                                cell))
            _write(done, result)
        return result
    cell.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"[cell] {display_name(arm)}, seed {seed}", flush=True)
    method, bands = split_arm(arm)
    if method == RANDOM:
        train: dict[str, Any] = {"weights": "random", "steps": 0, "final_loss": None, "pretrain_s": 0.0}
    else:
        train = _pretrain(cfg, method, seed, paths["store"], cell, bands=bands)
    tasks = evaluate_cell(train["weights"], arm_bands.get(arm), seed, data, split_seed=cfg.seed0)
    if cfg.s12_change:
        tasks.update(change_tasks(cfg, train["weights"], arm_bands.get(arm), seed, paths, cell))
    result = {"method": arm, "seed": seed, "train": train, "tasks": tasks, "cell_s": time.perf_counter() - t0}
    _write(done, result)  # last: a cell with result.json is finished
    line = ", ".join(f"{k} {100 * v['value']:.1f} %" for k, v in tasks.items())
    print(f"    {line} ({result['cell_s']:.0f} s)", flush=True)
    return result


def change_tasks(cfg: CompareConfig, weights: str, bands: tuple[str, ...] | None, seed: int,
                 paths: dict[str, Path], cell: Path) -> dict[str, Any]:
    """``change<P>:<inputs>`` (average precision) on the S1 + S2 city pairs with ``P`` % of the cities overcast,
    on the backbone's own inputs (random init: each input set)."""
    from seco.experiment import evaluate as ev
    from seco.experiment.multisensor import CLOUD_FRACTIONS, INPUTS, names_of, native

    tasks: dict[str, Any] = {}
    for inputs in INPUTS:
        if bands is not None and native(bands) != inputs:
            continue
        b = bands if bands is not None else names_of(inputs)
        for f in CLOUD_FRACTIONS:
            pct = int(round(100 * f))
            m = ev.change(weights, b, seed, paths[f"change{pct}"], cell / f"change{pct}-{inputs}", cfg.cd_epochs,
                          cfg.cd_patch, cfg.cd_batch, cfg.device)
            tasks[f"change{pct}:{inputs}"] = {**m, "f1": m["value"], "value": m["average_precision"]}
    return tasks


def _oscd(cfg: CompareConfig, weights: str, bands: tuple[str, ...], seed: int, cell: Path) -> dict[str, Any]:
    """The real OSCD tasks (F1 at 0.5, average precision) of one cell's backbone."""
    from seco.experiment import evaluate as ev

    train_c = tuple(c for c in OSCD_LABELLED if c != cfg.oscd_test)
    oscd = ev.change(weights, bands, seed, Path(cfg.oscd), cell / "oscd", cfg.oscd_epochs, 96, 32, cfg.device,
                     train_cities=train_c, test_cities=(cfg.oscd_test,))
    return {"oscd": oscd, "oscd_ap": {"value": oscd["average_precision"]}}


def _write(path: Path, result: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(result, indent=2))


def _subspaces(cfg: CompareConfig, result: dict[str, Any], cell: Path, data: dict[str, Any],
               bands: tuple[str, ...]) -> bool:
    """Add per-subspace scores to a pre-trained cell's result (when asked for and missing); True if added."""
    if not cfg.subspaces or result["method"] == "random" or "subspaces" in result:
        return False
    from seco.experiment.subspaces import subspace_scores

    xa, xb, y = data["pairs"]
    result["subspaces"] = subspace_scores(result["train"]["weights"], cell / "pretrain" / "last.ckpt", bands,
                                          result["seed"], xa, xb, y, split_seed=cfg.seed0)
    return True


def run_compare(cfg: CompareConfig) -> Path:
    """Run (or continue) the whole comparison; returns the report's path. See the module docstring."""
    from seco.experiment import evaluate as ev
    from seco.experiment.report import write_report
    from seco.store import open_store

    info = check(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "experiment.yaml")
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    paths = _data(cfg, out)
    bands = info["bands"]
    if cfg.sensors == "s1+s2":
        from seco.experiment.multisensor import load_data
        from seco.experiment.report_s12 import write_s12_report

        s12 = load_data(paths["probe"], cfg)
        res12 = [run_s12_cell(cfg, m, s, paths, s12, info["arm_bands"]) for m, s in cfg.cells()]
        return write_s12_report(cfg, res12, _env(t0, load0, bands, paths))
    x, y = ev.probe_images(open_store(paths["probe"]), bands, min(cfg.crop, cfg.probe_patch), seed=cfg.seed0)
    data: dict[str, Any] = {"probe_x": x, "probe_y": y}
    if cfg.eurosat:
        data["eurosat_x"], data["eurosat_y"] = ev.eurosat_images(cfg.eurosat, bands)
    if cfg.subspaces:
        from seco.experiment.subspaces import probe_pairs

        data["pairs"] = probe_pairs(open_store(paths["probe"]), bands, min(cfg.crop, cfg.probe_patch), cfg.seed0)
    results = [run_cell(cfg, m, s, paths, data, bands) for m, s in cfg.cells()]
    return write_report(cfg, results, _env(t0, load0, bands, paths))


def _env(t0: float, load0: float, bands: tuple[str, ...], paths: dict[str, Path]) -> dict[str, Any]:
    """The machine and time facts of a report."""
    return {"cpus": os.cpu_count(), "load_start": load0, "load_end": os.getloadavg()[0],
            "total_s": time.perf_counter() - t0, "bands": list(bands), "store": str(paths["store"])}
