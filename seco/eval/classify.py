"""``seco eval eurosat|bigearthnet``: scene classification with a pre-trained backbone.

One run = one set of weights, one protocol, one or more label fractions:

1. resolve the weights and read the dataset in the weights' bands (matched by name, see
   :mod:`seco.eval.backbone`);
2. choose the input normalisation: the weights' own, else per-band statistics of the train split;
3. ``fast``: features of train / val / test once (cached on disk), then a logistic-regression probe per
   label fraction; ``paper``: the official linear protocol per fraction; ``finetune``: the whole network
   per fraction (see :mod:`seco.eval.train_head`);
4. assert that the loaded backbone did not change (always; fine-tuning trains copies);
5. write ``config.yaml``, ``metrics.json``, ``report.md`` and PNGs into ``cfg.out``.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from seco.data.bigearthnet import FILE_BANDS as BEN_BANDS
from seco.data.bigearthnet import BigEarthNet
from seco.data.eurosat import EuroSAT
from seco.data.splits import rarest_label_strata
from seco.errors import ConfigError, DatasetError
from seco.eval import features as feats_mod
from seco.eval.backbone import (
    InputTransform,
    LoadedBackbone,
    check_unchanged,
    load_weights,
    resolve_device,
    snapshot,
)
from seco.eval.config import ClassifyConfig
from seco.eval.metrics import classification_metrics, multilabel_metrics
from seco.eval.probe import fraction_indices, linear_probe, multilabel_probe
from seco.eval.report import (
    fmt,
    pct_key,
    plot_confusion,
    plot_fraction_curve,
    plot_history,
    plot_per_class,
    write_json,
)
from seco.eval.sensor_input import InputPlan, available_bands, has_s1_source, open_multisensor, plan_inputs
from seco.eval.train_head import HeadConfig, train_head

#: Paper defaults per task: training mini-batch, head dropout (official scripts).
_PAPER_BATCH = {"eurosat": 32, "bigearthnet": 256}
_PAPER_DROPOUT = {"eurosat": 0.0, "bigearthnet": 0.2}
CACHE_VERSION = 1


@dataclass
class Splits:
    """The datasets of one run and what the probes need from them."""

    data: dict[str, Dataset]
    classes: tuple[str, ...]
    multilabel: bool
    test_is_val: bool
    kind: str  # "ms", "rgb" (EuroSAT JPEGs: not reflectance) or "l2a"

    def names(self, split: str) -> list[str]:
        return list(self.data[split].names)  # type: ignore[attr-defined]

    def targets(self, split: str) -> np.ndarray:
        ds = self.data[split]
        return np.asarray(ds.targets if self.multilabel else ds.labels)  # type: ignore[attr-defined]

    def strata(self, split: str) -> np.ndarray:
        t = self.targets(split)
        return rarest_label_strata(t) if self.multilabel else t


def _open_splits(cfg: ClassifyConfig, bands: tuple[str, ...] | str) -> Splits:
    names = ("train", "val", "test") if (not cfg.split_files or "test" in cfg.split_files) else ("train", "val")
    data: dict[str, Dataset] = {}
    for s in names:
        kw: dict[str, Any] = dict(bands=bands, split=s, split_file=cfg.split_files.get(s), seed=cfg.seed)
        if has_s1_source(cfg):
            data[s] = open_multisensor(cfg, tuple(bands), s)
            continue
        assert cfg.root is not None  # the config refuses neither --root nor --s1-root
        if cfg.task == "eurosat":
            data[s] = EuroSAT(cfg.root, **kw)
        else:
            data[s] = BigEarthNet(cfg.root, num_classes=cfg.num_classes, size=cfg.size, exclude=cfg.exclude, **kw)
    sizes = {s: len(d) for s, d in data.items()}  # type: ignore[arg-type]
    empty = [s for s, n in sizes.items() if n == 0]
    if empty:
        fix = ("check the --split-file lists" if cfg.split_files else
               "the dataset is too small for a stratified 60/20/20 split; give lists with --split-file")
        raise DatasetError(f"the {', '.join(empty)} split of {cfg.root or cfg.s1_root} is empty ({sizes}); {fix}")
    test_is_val = "test" not in data
    if test_is_val:
        data["test"] = data["val"]
    first = data["train"]
    kind = getattr(first, "kind", "ms") if cfg.task == "eurosat" else "l2a"
    return Splits(data, tuple(first.classes), cfg.task == "bigearthnet", test_is_val, kind)  # type: ignore[attr-defined]


#: Test patches below which scores are a smoke test rather than a measurement (accuracy's standard error is then
#: above ~5 points).
MIN_TEST = 100


def small_split_warnings(splits: Splits) -> list[str]:
    """Warnings when the test split is too small to mean much: few patches (with the standard error of an
    accuracy there), or, multi-label, classes that never occur in it (macro scores then average over the
    ones that do, and can read 100 where micro reads 19)."""
    out = []
    y = splits.targets("test")
    n = len(y)
    if n < MIN_TEST:
        out.append(f"the test split holds only {n} patch(es): an accuracy there has a standard error of up to "
                   f"{50 / max(n, 1) ** 0.5:.0f} points, so read the scores as a smoke test, not a measurement")
    if splits.multilabel:
        present = int((np.asarray(y).sum(axis=0) > 0).sum())
        if present < len(splits.classes):
            out.append(f"only {present} of the {len(splits.classes)} classes occur in the test split: macro scores "
                       "average over those, micro over every label; they can disagree widely")
    return out


def _available_bands(cfg: ClassifyConfig) -> tuple[str, ...]:
    if cfg.task == "bigearthnet":
        return available_bands(cfg, lambda: BEN_BANDS)
    # a file scan; tells the MS from the RGB release
    return available_bands(cfg, lambda: tuple(EuroSAT(cfg.root, bands="all").bands))  # type: ignore[arg-type]


def _data_parts(cfg: ClassifyConfig) -> dict[str, Any]:
    """What identifies the run's data in cache keys (unchanged keys for runs without S1)."""
    d: dict[str, Any] = {"root": str(Path(cfg.root).resolve()) if cfg.root is not None else None}
    if cfg.s1_root is not None:
        d["s1_root"] = str(Path(cfg.s1_root).resolve())
    return d


def _transform(
    cfg: ClassifyConfig, lb: LoadedBackbone, plan: InputPlan, splits: Splits, cache_root: Path | None
) -> tuple[InputTransform, str, list[str]]:
    """The input transform and a sentence saying where it came from (plus notes for the report)."""
    notes: list[str] = []
    radar = "s1" in plan.sensors
    place: dict[str, Any] = dict(fill_nan=radar)
    if plan.zeroed:
        place.update(positions=plan.positions, channels=len(plan.model_bands))
    units = "; per sensor in its units (S2 reflectance, S1 dB)" if radar and "s2" in plan.sensors else (
        "; S1 in dB" if radar else "")
    if splits.kind == "rgb" and lb.kind == "official" and cfg.normalization != "data":
        notes.append("EuroSAT RGB JPEGs with official weights: pixels / 255 without normalisation, as the "
                     "official main_eurosat.py (ToTensor only).")
        return InputTransform(None), "none (official EuroSAT RGB protocol)", notes
    if cfg.normalization == "weights" and (lb.normalization is None or splits.kind == "rgb"):
        raise ConfigError(f"--normalization weights but weights {cfg.weights!r} carry no normalisation for "
                          f"{'EuroSAT RGB JPEGs' if splits.kind == 'rgb' else 'their bands'}; use --normalization data")
    if lb.normalization is not None and splits.kind != "rgb" and cfg.normalization != "data":
        if not radar and not plan.zeroed:
            return lb.transform, f"weights ({lb.kind})", notes
        norm = lb.normalization.select(plan.data_bands) if plan.zeroed else lb.normalization
        return InputTransform(norm, lb.clip, **place), f"weights ({lb.kind}){units}", notes
    if lb.normalization is not None and cfg.normalization != "data":
        notes.append("EuroSAT RGB JPEGs are a display stretch, not reflectance: the weights' normalisation "
                     "does not apply; per-band statistics of the train split are used instead.")
    train = splits.data["train"]
    parts = {
        "task": cfg.task, **_data_parts(cfg), "split": "train",
        "names": feats_mod.names_digest(splits.names("train")), "bands": list(plan.data_bands),
        "size": cfg.size if cfg.task == "bigearthnet" else 64,
    }
    norm = feats_mod.dataset_stats(
        train, plan.data_bands, cfg.stats_max, cfg.seed, cache_root, parts, cfg.batch_size, cfg.num_workers
    )
    src = f"train split statistics ({min(cfg.stats_max, len(train))} images){units}"  # type: ignore[arg-type]
    if radar or plan.zeroed:
        return InputTransform(norm, **place), src, notes
    return InputTransform(norm), src, notes


def _metrics(splits: Splits, test_scores_or_pred: np.ndarray, scores: bool) -> dict[str, Any]:
    y = splits.targets("test")
    if splits.multilabel:
        return multilabel_metrics(y, test_scores_or_pred, splits.classes)
    pred = test_scores_or_pred.argmax(axis=1) if scores else test_scores_or_pred
    return classification_metrics(y, pred, splits.classes)


def _val_score(splits: Splits):
    y = splits.targets("val")
    if splits.multilabel:
        return lambda s: multilabel_metrics(y, s, splits.classes)["micro_map"]
    return lambda s: float((s.argmax(axis=1) == y).mean())


def _split_features(
    cfg: ClassifyConfig, lb: LoadedBackbone, splits: Splits, transform: InputTransform, cache_root: Path | None,
    device: torch.device,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Features (N, D) of train / val / test through the frozen backbone, from the cache when it holds them;
    and per split whether the cache was hit (``hit``, ``miss`` or ``off``)."""
    cache = feats_mod.FeatureCache(cache_root)
    x: dict[str, np.ndarray] = {}
    cache_info: dict[str, str] = {}
    for s in ("train", "val", "test"):
        if s == "test" and splits.test_is_val:
            x[s], cache_info[s] = x["val"], cache_info["val"]
            continue
        parts = {
            "version": CACHE_VERSION, "weights": lb.sha256, "weights_kind": lb.kind, "backbone": lb.name,
            "task": cfg.task, **_data_parts(cfg), "split": s,
            "split_file": cfg.split_files.get(s), "names": feats_mod.names_digest(splits.names(s)),
            "bands": list(lb.bands), "transform": transform.to_dict(), "bf16": cfg.bf16,
            "size": cfg.size if cfg.task == "bigearthnet" else 64,
        }
        x[s], hit = feats_mod.cached_features(
            cache, parts, splits.names(s), lb.model,
            splits.data[s], transform, cfg.batch_size, cfg.num_workers, device, cfg.bf16, cfg.progress,
        )
        cache_info[s] = ("hit" if hit else "miss") if cache_root is not None else "off"
    return x, cache_info


def _probe_fractions(cfg: ClassifyConfig, splits: Splits, x: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """The ``fast`` protocol on features ``x``: a logistic-regression probe per label fraction (C chosen on val)."""
    train_strata = splits.strata("train")
    y = {s: splits.targets(s) for s in ("train", "val", "test")}
    results: dict[str, dict[str, Any]] = {}
    for pct in cfg.fractions:
        idx = fraction_indices(train_strata, pct, cfg.seed)
        if splits.multilabel:
            r = multilabel_probe(x["train"][idx], y["train"][idx], x["val"], y["val"], x["test"], cfg.cs)
            m = _metrics(splits, r.test_scores, scores=True)
            m.update(val_micro_map=r.val_map, best_c=r.best_c, c_search={str(k): v for k, v in r.search.items()})
        else:
            r2 = linear_probe(x["train"][idx], y["train"][idx], x["val"], y["val"], x["test"], y["test"],
                              cfg.cs, refit=False)
            m = _metrics(splits, r2.test_pred, scores=False)
            m.update(val_accuracy=r2.val_acc, best_c=r2.best_c, c_search={str(k): v for k, v in r2.search.items()})
        m["n_train"] = int(len(idx))
        results[pct_key(pct)] = m
    return results


def _train_fractions(
    cfg: ClassifyConfig, lb: LoadedBackbone, splits: Splits, transform: InputTransform, device: torch.device,
) -> tuple[dict[str, dict[str, Any]], dict[str, list]]:
    """The ``paper`` (linear layer, frozen backbone) or ``finetune`` protocol per label fraction; (metrics,
    training history) per fraction. Fine-tuning trains a copy of the backbone."""
    finetune = cfg.protocol == "finetune"
    train_strata = splits.strata("train")
    results: dict[str, dict[str, Any]] = {}
    history: dict[str, list] = {}
    for pct in cfg.fractions:
        idx = fraction_indices(train_strata, pct, cfg.seed)
        hcfg = HeadConfig(
            num_outputs=len(splits.classes), multilabel=splits.multilabel, epochs=cfg.epochs,
            lr=cfg.lr or (1e-4 if finetune else 1e-3), batch_size=cfg.train_batch_size or _PAPER_BATCH[cfg.task],
            dropout=_PAPER_DROPOUT[cfg.task], finetune=finetune, patience=cfg.patience, seed=cfg.seed,
        )
        model = copy.deepcopy(lb.model) if finetune else lb.model
        r3 = train_head(
            model, transform, Subset(splits.data["train"], idx.tolist()), splits.data["val"],
            splits.data["test"], hcfg, _val_score(splits), device, cfg.bf16, cfg.num_workers,
            cfg.batch_size, cfg.progress,
        )
        m = _metrics(splits, r3.test_scores, scores=True)
        m["val_score"] = _val_score(splits)(r3.val_scores)
        m.update(n_train=int(len(idx)), epochs_run=r3.epochs_run, best_epoch=r3.best_epoch)
        results[pct_key(pct)] = m
        history[pct_key(pct)] = r3.history
    return results, history


def run_classification(cfg: ClassifyConfig) -> dict[str, Any]:
    """Run one evaluation into ``cfg.out`` (see the module docstring) and return its metrics dict.

    Raises:
        SecoError subclasses: bad weights, bands, dataset layout; FrozenBackboneError when the backbone moved.
    """
    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.yaml")
    device = resolve_device(cfg.device)
    spec = load_weights(cfg.weights, cfg.backbone, cfg.weights_bands, cfg.seed)
    plan = plan_inputs(spec.bands, cfg.bands, _available_bands(cfg), cfg.weights)
    splits = _open_splits(cfg, plan.data_bands)
    lb = spec.build(plan.model_bands)
    cache_root = (Path(cfg.cache_dir) if cfg.cache_dir else feats_mod.default_cache_dir()) if cfg.use_cache else None
    transform, norm_source, notes = _transform(cfg, lb, plan, splits, cache_root)
    if plan.note():
        notes.insert(0, plan.note())  # type: ignore[arg-type]
    for w in small_split_warnings(splits):
        print(f"warning: {w}", file=sys.stderr)
        notes.append(f"Warning: {w}.")
    if splits.test_is_val:
        notes.append("No test list was given: the val list is also the test set (the SeCo paper's EuroSAT "
                     "protocol); C / early stopping are then chosen on the reported set.")
    before = snapshot(lb.model)
    timing: dict[str, float] = {"setup_s": time.perf_counter() - t0}
    cache_info: dict[str, str] = {}
    history: dict[str, list] = {}
    t = time.perf_counter()
    if cfg.protocol == "fast":
        x, cache_info = _split_features(cfg, lb, splits, transform, cache_root, device)
        timing["features_s"] = time.perf_counter() - t
        t = time.perf_counter()
        results = _probe_fractions(cfg, splits, x)
        timing["probe_s"] = time.perf_counter() - t
    else:
        results, history = _train_fractions(cfg, lb, splits, transform, device)
        timing["train_s"] = time.perf_counter() - t
    check_unchanged(before, lb.model, f"the {cfg.protocol} protocol")
    timing["total_s"] = time.perf_counter() - t0

    metric = cfg.headline_metric
    largest = pct_key(max(cfg.fractions))
    metrics = {
        "task": cfg.task,
        "protocol": cfg.protocol,
        "weights": cfg.weights,
        "weights_kind": lb.kind,
        "weights_sha256": lb.sha256,
        "backbone": lb.name,
        "bands": list(lb.bands),
        "normalization": norm_source,
        "transform": transform.to_dict(),
        "classes": list(splits.classes),
        "splits": {s: len(splits.data[s]) for s in ("train", "val", "test")}  # type: ignore[arg-type]
        | {"test_is_val": splits.test_is_val},
        "fractions": results,
        "headline": {
            "metric": metric,
            "value": results[largest][metric],
            "fraction": float(max(cfg.fractions)),
            "by_fraction": {k: v[metric] for k, v in results.items()},
        },
        "cache": cache_info,
        "timing": timing,
        "backbone_unchanged": True,
        "device": str(device),
        "notes": notes,
    }
    if "s1" in plan.sensors or plan.zeroed:
        metrics["inputs"] = {"data_bands": list(plan.data_bands), "sensors": list(plan.sensors),
                             "zeroed": list(plan.zeroed), "s1_root": cfg.s1_root}
    if history:
        metrics["history"] = history
    write_json(out / "metrics.json", metrics)
    _figures(cfg, metrics, history, out)
    (out / "report.md").write_text(_report(cfg, metrics))
    return metrics


def _figures(cfg: ClassifyConfig, m: dict[str, Any], history: dict[str, list], out: Path) -> None:
    largest = pct_key(max(cfg.fractions))
    r = m["fractions"][largest]
    title = f"{cfg.task} {cfg.protocol}, {Path(cfg.weights).name}, {largest} % labels"
    if cfg.task == "eurosat":
        plot_confusion(r["confusion_matrix"], m["classes"], out / "confusion_matrix.png", title)
        plot_per_class(r["per_class_accuracy"], out / "per_class_accuracy.png", "test accuracy (%)", title)
    else:
        plot_per_class(r["per_class_ap"], out / "per_class_ap.png", "test average precision (%)", title)
    label = "test accuracy (%)" if cfg.task == "eurosat" else "test micro mAP (%)"
    curve = {float(k): v for k, v in m["headline"]["by_fraction"].items()}
    plot_fraction_curve({f"{cfg.protocol}": curve}, out / "label_fractions.png", label, f"{cfg.task}: label fractions")
    if history:
        plot_history(history[largest], out / "training_loss.png", f"{cfg.protocol} training, {largest} % labels")


def _input_lines(m: dict[str, Any]) -> list[str]:
    """The report's lines on the sensors read (runs with Sentinel-1 or a missing sensor only)."""
    inp = m.get("inputs")
    if not inp:
        return []
    names = {"s2": "Sentinel-2", "s1": "Sentinel-1"}
    lines = [f"- sensors read: {' + '.join(names[s] for s in inp['sensors'])} ({', '.join(inp['data_bands'])})"]
    if inp["zeroed"]:
        lines.append(f"- fed as zeros after normalisation (not in the data): {', '.join(inp['zeroed'])}")
    return lines


def _report(cfg: ClassifyConfig, m: dict[str, Any]) -> str:
    task = {"eurosat": "EuroSAT", "bigearthnet": "BigEarthNet"}[cfg.task]
    proto = {"fast": "fast linear probe (cached features + logistic regression, C on val)",
             "paper": "linear layer through the frozen backbone, the paper's schedule",
             "finetune": "fine-tuning of the whole network, early stopping on val"}[cfg.protocol]
    sp = m["splits"]
    lines = [
        f"# {task}: {proto}",
        "",
        f"- weights: `{cfg.weights}` ({m['weights_kind']}, {m['backbone']}, sha256 `{m['weights_sha256'][:12]}`)",
        f"- bands: {', '.join(m['bands'])}",
        *_input_lines(m),
        f"- normalisation: {m['normalization']}",
        f"- splits: train {sp['train']}, val {sp['val']}, test {sp['test']}"
        + (" (test = val)" if sp["test_is_val"] else ""),
        f"- feature cache: {m['cache'] or 'not used'}; time {m['timing']['total_s']:.1f} s on {m['device']}",
        "- frozen backbone unchanged: yes (checked tensor by tensor)",
        "",
    ]
    largest = pct_key(max(cfg.fractions))
    if cfg.task == "eurosat":
        lines += ["| labels | n train | test accuracy | val accuracy | C |", "|---|---|---|---|---|"]
        for k, r in m["fractions"].items():
            val = r.get("val_accuracy", r.get("val_score"))
            lines.append(f"| {k} % | {r['n_train']} | {fmt(r['accuracy'])} | {fmt(val)} | {r.get('best_c', '-')} |")
        r = m["fractions"][largest]
        lines += ["", f"Per-class test accuracy ({largest} % labels):", "", "| class | accuracy | n |", "|---|---|---|"]
        for (c, v), n in zip(r["per_class_accuracy"].items(), r["support"], strict=True):
            lines.append(f"| {c} | {fmt(v)} | {n} |")
        lines += ["", "![confusion matrix](confusion_matrix.png)", ""]
    else:
        lines += ["| labels | n train | micro mAP | macro mAP | val micro mAP | C |", "|---|---|---|---|---|---|"]
        for k, r in m["fractions"].items():
            val = r.get("val_micro_map", r.get("val_score"))
            lines.append(f"| {k} % | {r['n_train']} | {fmt(r['micro_map'])} | {fmt(r['macro_map'])} | {fmt(val)} "
                         f"| {r.get('best_c', '-')} |")
        r = m["fractions"][largest]
        lines += ["", f"Per-class test AP ({largest} % labels):", "", "| class | AP |", "|---|---|"]
        lines += [f"| {c} | {fmt(v)} |" for c, v in r["per_class_ap"].items()]
        if r["labels_without_positives"]:
            lines += ["", f"No positive in the test set (left out of macro mAP): {', '.join(r['labels_without_positives'])}."]
        lines += ["", "![per-class AP](per_class_ap.png)", ""]
    lines += ["![label fractions](label_fractions.png)", ""]
    if m.get("history"):
        lines += ["![training loss](training_loss.png)", ""]
    if m["notes"]:
        lines += ["Notes:", "", *[f"- {n}" for n in m["notes"]], ""]
    lines += ["Scores in percent. Configuration: `config.yaml`; every number: `metrics.json`.", ""]
    return "\n".join(lines)
