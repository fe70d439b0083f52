"""The evaluation stage of ``make demo``: the exported SeCo backbone against random init, downstream.

1. EuroSAT linear probe (:func:`seco.experiment.evaluate.probe`: frozen pooled features, logistic regression,
   C on validation), when ``$SECO_EUROSAT_ROOT`` points at a EuroSAT folder. The bands are matched by name:
   12 L2A demo bands are read out of the 13-band multispectral files (B10 left out); the RGB release cannot
   feed multispectral weights and is skipped with that reason.
2. Change detection on a simulated OSCD (:func:`seco.synth.changes.make_change_dataset`, ``<out>/synth_oscd``:
   two seasons per city, planted construction, ponds and clearings) with the paper's protocol
   (:func:`seco.eval.change.run_change_detection`) on a short schedule. Runs in ``<out>/eval_oscd_{seco,random}``.

Random init reads the same bands as the SeCo weights, and **both backbones are normalised alike**, with the
per-band statistics of the evaluation data's own training part (EuroSAT train split, train cities): the
export's statistics come from its L2A pre-training store and do not describe L1C data, and random init has
none. So the two rows differ only in the weights. Every number in the returned Markdown is read from the
runs (``metrics.json`` of the change-detection runs); ``<out>/demo_eval.json`` keeps them.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seco.errors import DatasetError

#: The environment variable naming a EuroSAT folder (either release) for the demo's probe.
EUROSAT_ENV = "SECO_EUROSAT_ROOT"
BACKBONES: tuple[tuple[str, str], ...] = (("seco", "SeCo (this run)"), ("random", "random init"))


@dataclass(frozen=True)
class DemoEvalSettings:
    """Sizes of the demo evaluation.

    Attributes:
        num_cities, size, change_fraction: the simulated OSCD (:func:`seco.synth.changes.make_change_dataset`).
        patch, batch_size, epochs: the change-detection schedule (paper: 96 px, 32, 100 epochs).
        cs: C values the EuroSAT probe searches on validation.
    """

    num_cities: int = 8
    size: int = 192
    change_fraction: float = 0.075
    patch: int = 64
    batch_size: int = 16
    epochs: int = 4
    cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)


#: About 1-2 minutes of change detection on 2 busy CPU cores (2 x ~24 decoder steps).
FULL = DemoEvalSettings()
#: Seconds, for tests: 2 tiny cities, one decoder step per backbone.
QUICK = DemoEvalSettings(num_cities=2, size=64, patch=64, batch_size=4, epochs=1, cs=(0.1, 1.0))


def eurosat_from_env() -> tuple[Path, str] | None:
    """``(root, kind)`` of the EuroSAT folder ``$SECO_EUROSAT_ROOT`` names (kind ``ms`` or ``rgb``), or None.

    Call it early to fail before a long run rather than after it.

    Raises:
        DatasetError: the variable is set but names no EuroSAT folder.
    """
    value = os.environ.get(EUROSAT_ENV, "").strip()
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        raise DatasetError(
            f"{EUROSAT_ENV}={value!r} is not a folder; point it at a EuroSAT folder (the multispectral release "
            f"EuroSATallBands, <root>/<Class>/<Class>_<n>.tif) or unset it to skip the EuroSAT probe"
        )
    from seco.data.eurosat import EuroSAT

    try:
        kind = EuroSAT(root, bands="all").kind
    except DatasetError as e:
        raise DatasetError(f"{EUROSAT_ENV}={value!r}: {e} (or unset {EUROSAT_ENV} to skip the probe)") from e
    return root, kind


def _rel(path: Path, out: Path) -> str:
    """``path`` relative to ``out``, with forward slashes (a Markdown link from the demo report)."""
    return Path(os.path.relpath(path, out)).as_posix()


def _eurosat(out: Path, weights: Path, bands: tuple[str, ...], backbone: str, seed: int, s: DemoEvalSettings,
             device: str, progress: bool) -> dict[str, Any]:
    """Both EuroSAT probes, or the reason they were skipped."""
    found = eurosat_from_env()
    if found is None:
        return {"status": "skipped", "reason": f"{EUROSAT_ENV} is not set; point it at a EuroSAT folder (the "
                                               "multispectral release) to add the linear probe"}
    root, kind = found
    if kind == "rgb":
        return {"status": "skipped", "root": str(root), "kind": kind,
                "reason": f"{EUROSAT_ENV}={root} is the RGB release (B04, B03, B02 JPEGs) and the SeCo weights "
                          f"are multispectral ({len(bands)} bands: {', '.join(bands)}); point it at the "
                          "multispectral release (EuroSATallBands) for the probe"}
    from seco.experiment.evaluate import eurosat_images, probe

    x, y = eurosat_images(str(root), bands)
    res: dict[str, Any] = {"status": "ran", "root": str(root), "kind": kind}
    for key, _ in BACKBONES:
        print(f"    EuroSAT linear probe, {key}")
        t = time.perf_counter()
        r = probe(str(weights) if key == "seco" else "random", bands, seed, x, y, split_seed=seed, cs=s.cs)
        res[key] = {
            "accuracy": r["value"], "val_accuracy": r["val"], "best_c": r["C"], "bands": list(bands),
            "normalization": "EuroSAT train split statistics",
            "splits": {"train": r["n_train"], "val": r["n_val"], "test": r["n_test"]},
            "time_s": time.perf_counter() - t,
        }
    return res


def _oscd(out: Path, weights: Path, bands: tuple[str, ...], backbone: str, seed: int, s: DemoEvalSettings,
          device: str, progress: bool) -> dict[str, Any]:
    """Make the simulated OSCD and run change detection on it with both backbones; the metrics per backbone."""
    from seco.eval.change import run_change_detection
    from seco.eval.config import ChangeConfig
    from seco.synth.changes import make_change_dataset, read_manifest

    t = time.perf_counter()
    data = make_change_dataset(out / "synth_oscd", num_cities=s.num_cities, size=s.size, seed=seed,
                               change_fraction=s.change_fraction, progress=progress)
    man = read_manifest(data)
    res: dict[str, Any] = {"data": _rel(data, out), "cities": man["cities"], "make_s": time.perf_counter() - t,
                           "settings": {"patch": s.patch, "batch_size": s.batch_size, "epochs": s.epochs}}
    for key, _ in BACKBONES:
        run = out / f"eval_oscd_{key}"
        print(f"    change detection on the synthetic OSCD, {key}: {run}")
        cfg = ChangeConfig(
            root=str(data), weights=str(weights) if key == "seco" else "random", out=str(run), backbone=backbone,
            bands=None if key == "seco" else ",".join(bands), patch=s.patch, epochs=s.epochs,
            batch_size=s.batch_size, seed=seed, device=device, progress=progress,
        )
        m = run_change_detection(cfg, normalization="data")
        g, b = m["test"]["all_pixels"], m["test"]["per_batch_average"]
        res[key] = {
            **{k: g[k] for k in ("precision", "recall", "f1", "iou", "tp", "fp", "fn", "tn")},
            "per_batch_f1": b["f1"], "bands": m["bands"], "normalization": m["normalization"],
            "average_precision": m["test"]["threshold_free"]["average_precision"],
            "steps": s.epochs * m["train"]["steps_per_epoch"], "final_loss": m["train"]["history"][-1]["train_loss"],
            "time_s": m["timing"]["total_s"], "run": _rel(run, out),
            "change_maps": [_rel(run / "change_maps" / f"{c}.png", out) for c in m["test"]["cities"]],
        }
    return res


def run_demo_eval(
    out: Path, weights: Path, seed: int = 0, quick: bool = False, *, device: str = "auto", progress: bool = False
) -> dict[str, Any]:
    """Evaluate the exported ``weights`` and random init (see the module docstring) into ``out``.

    Args:
        out: the demo folder; the runs go into sub-folders and the Markdown links are relative to it.
        weights: a seco export (``.safetensors`` / ``.pth`` / ``.json`` or the stem).
        seed: seeds the synthetic OSCD, the random init, the splits and the decoder training.
        quick: tiny sizes (:data:`QUICK`) for tests.
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: progress bars.

    Returns:
        ``eurosat`` (status, reason or metrics per backbone), ``oscd`` (dataset and metrics per backbone),
        ``timing`` and ``markdown``: a ``## Downstream evaluation`` section for the demo report.

    Raises:
        DatasetError: ``$SECO_EUROSAT_ROOT`` names no EuroSAT folder; other SecoErrors from the runs.
    """
    from seco.eval.backbone import load_weights
    from seco.eval.report import write_json

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = QUICK if quick else FULL
    spec = load_weights(str(weights))
    if spec.bands is None:  # pragma: no cover - load_weights gives bands for every file
        raise DatasetError(f"weights {weights} carry no band list; give a seco export")
    bands, backbone = tuple(spec.bands), spec.name
    t = time.perf_counter()
    eurosat = _eurosat(out, Path(weights), bands, backbone, seed, s, device, progress)
    if eurosat["status"] == "skipped":
        print(f"    EuroSAT probe skipped: {eurosat['reason']}")
    t_eurosat = time.perf_counter() - t
    t = time.perf_counter()
    oscd = _oscd(out, Path(weights), bands, backbone, seed, s, device, progress)
    timing = {"eurosat_s": t_eurosat, "oscd_s": time.perf_counter() - t, "total_s": time.perf_counter() - t0}
    result = {"weights": str(weights), "bands": list(bands), "backbone": backbone, "quick": quick,
              "settings": asdict(s), "eurosat": eurosat, "oscd": oscd, "timing": timing}
    result["markdown"] = _markdown(result)
    write_json(out / "demo_eval.json", {k: v for k, v in result.items() if k != "markdown"})
    return result


# ---------------------------------------------------------------------------------------------- Markdown


def _pct(v: Any) -> str:
    """A fraction as a percentage with one decimal, or ``n/a``."""
    from seco.eval.report import fmt

    text = fmt(v, digits=1)
    return text if text == "n/a" else text + " %"


def _markdown(r: dict[str, Any]) -> str:
    """The ``## Downstream evaluation`` section: the normalisation policy, then one subsection per task."""
    lines = [
        "## Downstream evaluation",
        "",
        f"The exported backbone ({r['backbone']}, bands {', '.join(r['bands'])}) against a random-init "
        f"{r['backbone']} reading the same bands; the backbone stays frozen in both tasks (checked). Both are "
        "normalised with the per-band statistics of the evaluation data's own training part (the export's "
        "statistics describe its L2A pre-training store, not L1C EuroSAT / OSCD data; random init has none), "
        "so the rows differ only in the weights.",
        "",
        *_eurosat_lines(r["eurosat"]),
        *_oscd_lines(r["oscd"], r["settings"]),
    ]
    return "\n".join(lines)


def _eurosat_lines(e: dict[str, Any]) -> list[str]:
    """The EuroSAT subsection: the reason it was skipped, or the split and a row per backbone."""
    lines = ["### EuroSAT linear probe", ""]
    if e["status"] == "skipped":
        return [*lines, f"Skipped: {e['reason']}.", ""]
    names = dict(BACKBONES)
    sp = e["seco"]["splits"]
    return [
        *lines,
        f"`{EUROSAT_ENV}` = `{e['root']}` (multispectral release): {len(e['seco']['bands'])} bands matched by "
        f"name out of the 13 in the files; stratified split train {sp['train']} / val {sp['val']} / test "
        f"{sp['test']}; fast protocol: frozen features, logistic regression with C chosen on validation.",
        "",
        "| backbone | test accuracy | val accuracy | C | normalisation | time |",
        "|---|---:|---:|---:|---|---:|",
        *[f"| {names[k]} | {_pct(e[k]['accuracy'])} | {_pct(e[k]['val_accuracy'])} | {e[k]['best_c']:g} | "
          f"{e[k]['normalization']} | {e[k]['time_s']:.0f} s |" for k in names],
        "",
    ]


def _oscd_lines(o: dict[str, Any], s: dict[str, Any]) -> list[str]:
    """The change-detection subsection: the simulated data, the protocol, a row per backbone, the change maps."""
    from seco.eval.report import FN_COLOUR, FP_COLOUR, TP_COLOUR

    names = dict(BACKBONES)
    cities = o["cities"]
    train = [c for c, v in cities.items() if v["split"] == "train"]
    test = [c for c, v in cities.items() if v["split"] == "test"]
    kinds = _changed_pixels(cities)
    changed = sum(kinds.values()) / sum(v["shape"][0] * v["shape"][1] for v in cities.values())
    steps = o["seco"]["steps"]
    lines = [
        "### Change detection on a simulated OSCD (planted changes)",
        "",
        f"`{o['data']}/`: {len(cities)} simulated city pairs in the OSCD layout (13 L1C bands at native 10 / 20 / 60 m, "
        f"about {s['size']} px), train {', '.join(train)}; test {', '.join(test)}. The two dates of a city lie "
        "1.25-1.75 years apart in different seasons, with crop rotation and a per-date illumination change: "
        "none of that is labelled. Planted on the second date, and labelled: "
        + ", ".join(f"{k} {n} px" for k, n in kinds.items())
        + f" ({100 * changed:.1f} % of all pixels).",
        "",
        f"Protocol of the paper (frozen encoder, absolute feature differences at five depths, U-Net decoder, BCE, "
        f"Adam 1e-3) on a short schedule: {s['epochs']} epoch(s) = {steps} step(s) of {s['batch_size']} random "
        f"{s['patch']} px patches (the paper: 100 epochs of 96 px patches), threshold 0.5. Scores of the change "
        "class over all test pixels; the paper's per-batch average beside F1; average precision (AP) does not "
        "depend on the 0.5 threshold, which a short schedule leaves badly calibrated.",
        "",
        "| backbone | precision | recall | F1 | IoU | F1 per-batch (paper) | AP | final loss | time | run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *[f"| {names[k]} | {_pct(o[k]['precision'])} | {_pct(o[k]['recall'])} | {_pct(o[k]['f1'])} | "
          f"{_pct(o[k]['iou'])} | {_pct(o[k]['per_batch_f1'])} | {_pct(o[k]['average_precision'])} | "
          f"{o[k]['final_loss']:.3f} | {o[k]['time_s']:.0f} s | [{o[k]['run']}]({o[k]['run']}/report.md) |"
          for k in names],
        "",
        f"Change maps (date 1 | date 2 | prediction: hits rgb{TP_COLOUR}, false alarms rgb{FP_COLOUR}, misses "
        f"rgb{FN_COLOUR}):",
        "",
    ]
    for k in names:
        lines += [f"![{names[k]}: {Path(p).stem}]({p})" for p in o[k]["change_maps"]]
    return [
        *lines,
        "",
        f"What this shows and does not: a demo-sized run (one pre-training run of minutes, one seed, "
        f"{len(test)} test {'city' if len(test) == 1 else 'cities'}, {steps} decoder step(s)) compares this "
        "backbone with random init under one budget and one normalisation; it is not the paper's OSCD table and "
        "one seed cannot say whether a gap is larger than the run-to-run spread. The controlled comparison "
        "(SeCo, MoCo-v2, MoCo-v2+TP, random init, several seeds) is `seco experiment compare`; findings and "
        "commands in docs/FIDELITY.md.",
        "",
    ]


def _changed_pixels(cities: dict[str, Any]) -> dict[str, int]:
    """Planted changed pixels per change kind, over every city (in the order the kinds first appear)."""
    kinds: dict[str, int] = {}
    for v in cities.values():
        for ch in v["changes"]:
            kinds[ch["kind"]] = kinds.get(ch["kind"], 0) + ch["pixels"]
    return kinds
