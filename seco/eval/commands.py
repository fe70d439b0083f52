"""Command line of evaluation and embedding: ``seco eval eurosat|bigearthnet|oscd|compare`` and ``seco embed``.

``register(sub)`` adds both subcommands to the ``seco`` parser (``seco.cli.main`` runs them): 0 on success,
2 with a one-line message on a :class:`seco.errors.SecoError`.
"""

from __future__ import annotations

import argparse

from seco.backbones import backbone_names
from seco.boundary import Output, declare
from seco.errors import ConfigError

WEIGHTS_HELP = (
    "a seco export (.safetensors/.pth/.json or their stem), official:CKPT (a checkpoint of the paper's code), "
    "a torchvision/timm ResNet state dict (with --weights-bands), or 'random'"
)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from e


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _split_file(text: str) -> tuple[str, str]:
    split, eq, path = text.partition("=")
    if not eq or not path:
        raise argparse.ArgumentTypeError(f"--split-file {text!r}: use SPLIT=PATH, e.g. train=eurosat-train.txt")
    return split.strip(), path.strip()


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="dataset folder in its official layout")
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--weights-bands", help="input bands of a plain state dict, in order, e.g. B04,B03,B02")
    p.add_argument("--backbone", default="resnet18", choices=backbone_names(), help="for --weights random")
    p.add_argument("--bands", help="bands to use (default: the weights' bands; all bands for random)")
    p.add_argument("--out", required=True, help="run folder: metrics.json, report.md, config.yaml, PNGs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--bf16", action="store_true", help="run the backbone in bfloat16 autocast")
    p.add_argument("--stats-max", type=int, default=2000,
                   help="images sampled for the normalisation when the weights carry none (default 2000)")
    p.add_argument("--no-progress", dest="progress", action="store_false")


def _run_folder(a: argparse.Namespace) -> list[Output]:
    return [Output(a.out, kind="dir")]


def _add_classify(sub: argparse._SubParsersAction, task: str, help_: str) -> None:
    p = sub.add_parser(task, help=help_)
    _common(p)
    root = next(a for a in p._actions if a.dest == "root")
    root.required = False
    root.help = ("dataset folder in its official layout: the Sentinel-2 release"
                 + (" (EuroSAT MS); may be left out for --bands s1 with --s1-root" if task == "eurosat" else
                    " (the folder holding BigEarthNet-v1.0/), or a reBEN folder (metadata.parquet, BigEarthNet-S1/, "
                    "BigEarthNet-S2/: both sensors); may be left out for --bands s1 with --s1-root"))
    p.add_argument("--s1-root", help=(
        "the Sentinel-1 release read beside --root: EuroSAT-SAR (<Class>/<Class>_<n>.tif or Copernicus-Bench "
        "eurosat_s1/)" if task == "eurosat" else
        "the Sentinel-1 release read beside --root: BigEarthNet-S1-v1.0/ (or the folder holding it)")
        + "; then --bands s1, s2 or s1+s2 (S2 channels first) all see the same patches")
    p.add_argument("--normalization", default="auto", choices=["auto", "weights", "data"],
                   help="auto: the weights' own if they carry one, else train-split statistics (default); weights; "
                        "data: train-split statistics per band (S2 reflectance, S1 dB)")
    p.add_argument("--protocol", default="fast", choices=["fast", "paper", "finetune"],
                   help="fast: cached features + logistic regression (default); paper: linear layer trained "
                        "100 epochs through the frozen backbone; finetune: whole network, early stopping")
    p.add_argument("--fractions", type=_floats, default=(100.0,), help="label fractions in %%, e.g. 1,10,50,100")
    p.add_argument("--split-file", type=_split_file, action="append", default=[], metavar="SPLIT=PATH",
                   help="a published split list, repeated per split (train=..., val=..., test=...)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    p.add_argument("--train-batch-size", type=int, help="paper/finetune mini-batch (default 32 EuroSAT, 256 BigEarthNet)")
    p.add_argument("--epochs", type=int, default=100, help="paper/finetune epochs (default 100)")
    p.add_argument("--lr", type=float, help="paper/finetune Adam lr (default 1e-3 paper, 1e-4 finetune)")
    p.add_argument("--patience", type=int, default=10, help="finetune: epochs without val improvement (default 10)")
    p.add_argument("--cs", type=_floats, default=None, help="fast probe: C values searched on val")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--cache-dir", help="feature cache (default $SECO_CACHE_DIR or ~/.cache/seco)")
    p.add_argument("--no-cache", dest="use_cache", action="store_false", help="neither read nor write the cache")
    if task == "bigearthnet":
        p.add_argument("--size", type=int, default=120, help="grid side in px (default 120, the 10 m grid)")
        p.add_argument("--num-classes", type=int, default=19, choices=[19, 43])
        p.add_argument("--exclude", action="append", default=[], help="list of patches to leave out (repeatable)")
    p.set_defaults(func=_run_classify, task=task)
    declare(p, _run_folder)


def _run_classify(a: argparse.Namespace) -> int:
    from seco.eval.classify import run_classification
    from seco.eval.config import DEFAULT_CS, ClassifyConfig
    from seco.eval.report import fmt

    split_files = dict(a.split_file)
    if len(split_files) != len(a.split_file):
        raise ConfigError("--split-file names the same split twice; give each of train, val, test once")
    cfg = ClassifyConfig(
        task=a.task, root=a.root, weights=a.weights, out=a.out, weights_bands=a.weights_bands, backbone=a.backbone,
        bands=a.bands, protocol=a.protocol, fractions=a.fractions, split_files=split_files, seed=a.seed,
        batch_size=a.batch_size, train_batch_size=a.train_batch_size, epochs=a.epochs, lr=a.lr,
        patience=a.patience, cs=a.cs or DEFAULT_CS, device=a.device, bf16=a.bf16, num_workers=a.num_workers,
        cache_dir=a.cache_dir, use_cache=a.use_cache, size=getattr(a, "size", 120),
        num_classes=getattr(a, "num_classes", 19), exclude=tuple(getattr(a, "exclude", ())),
        stats_max=a.stats_max, progress=a.progress, s1_root=a.s1_root, normalization=a.normalization,
    )
    m = run_classification(cfg)
    h = m["headline"]
    per = ", ".join(f"{k} %: {fmt(v)}" for k, v in h["by_fraction"].items())
    print(f"{a.task} {a.protocol}: test {h['metric']} {per} -> {a.out}/report.md")
    return 0


def _add_oscd(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("oscd", help="OSCD change detection: frozen encoder feature differences + U-Net decoder")
    _common(p)
    p.add_argument("--train-cities", type=_names, help="default: the cities of train.txt")
    p.add_argument("--test-cities", type=_names, help="default: the cities of test.txt (their labels must exist)")
    p.add_argument("--patch", type=int, default=96, help="training patch / test tile side (default 96)")
    p.add_argument("--epochs", type=int, default=100, help="default 100 (the paper)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--gamma", type=float, default=0.95, help="ExponentialLR decay per epoch (default 0.95)")
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--threshold", type=float, default=0.5)
    p.set_defaults(func=_run_oscd)
    declare(p, _run_folder)


def _run_oscd(a: argparse.Namespace) -> int:
    from seco.eval.change import run_change_detection
    from seco.eval.config import ChangeConfig
    from seco.eval.report import fmt

    cfg = ChangeConfig(
        root=a.root, weights=a.weights, out=a.out, weights_bands=a.weights_bands, backbone=a.backbone,
        bands=a.bands, train_cities=a.train_cities, test_cities=a.test_cities, patch=a.patch, epochs=a.epochs,
        batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay, gamma=a.gamma, dropout=a.dropout,
        threshold=a.threshold, seed=a.seed, device=a.device, bf16=a.bf16, stats_max=a.stats_max,
        progress=a.progress,
    )
    m = run_change_detection(cfg)
    g = m["test"]["all_pixels"]
    print(f"oscd: precision {fmt(g['precision'])}, recall {fmt(g['recall'])}, F1 {fmt(g['f1'])}, "
          f"IoU {fmt(g['iou'])} -> {a.out}/report.md")
    return 0


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="several runs side by side: one Markdown table and one plot")
    p.add_argument("runs", nargs="+", help="run folders (--out of seco eval)")
    p.add_argument("--out", default="seco_compare", help="folder for compare.md and compare.png")
    p.set_defaults(func=_run_compare)
    declare(p, _run_folder)


def _run_compare(a: argparse.Namespace) -> int:
    from seco.eval.report import compare_runs

    md, md_path, png = compare_runs(a.runs, a.out)
    print(md)
    print(f"wrote {md_path} and {png}")
    return 0


def _add_embed(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="one embedding per patch of a GeoTIFF -> GeoParquet (or a dense GeoTIFF)")
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--weights-bands", help="input bands of a plain state dict, in order")
    p.add_argument("--backbone", default="resnet18", choices=backbone_names(), help="for --weights random")
    p.add_argument("--input", required=True, help="a GeoTIFF, or a folder of *.tif")
    p.add_argument("--out", help="GeoParquet file: one row per patch, WKB footprint in the raster's CRS")
    p.add_argument("--dense", help="feature GeoTIFF, one pixel per patch cell (a folder for a folder input)")
    p.add_argument("--bands", help="the file's band names in file order, when its band descriptions lack them")
    p.add_argument("--patch", type=int, default=64, help="patch side in pixels (default 64)")
    p.add_argument("--stride", type=int, help="step between patches (default: --patch)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--scale", type=float, help="reflectance = (DN + offset) / scale (default 10000 for integer "
                                               "files, 1 for float files)")
    p.add_argument("--offset", type=float, default=0.0, help="e.g. -1000 for L2A processing baseline >= 04.00")
    p.add_argument("--s1-input", help="a Sentinel-1 GeoTIFF (VV/VH) on the grid of --input (S2): embed the pair")
    p.add_argument("--s1-units", default="db", choices=["db", "linear"],
                   help="units of the S1 values: db (default, what the weights take) or linear power "
                        "(converted with 10*log10; non-positive values become no data)")
    p.add_argument("--device", default="auto")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_run_embed)
    declare(p, lambda a: [*([Output(a.out, kind="file")] if a.out else []),
                          *([Output(a.dense, "--dense")] if a.dense else [])])


def _run_embed(a: argparse.Namespace) -> int:
    from seco.eval.config import EmbedConfig
    from seco.eval.embed import run_embed

    cfg = EmbedConfig(
        weights=a.weights, input=a.input, out=a.out, dense=a.dense, weights_bands=a.weights_bands,
        backbone=a.backbone, bands=a.bands, patch=a.patch, stride=a.stride, batch_size=a.batch_size,
        scale=a.scale, offset=a.offset, s1_input=a.s1_input, s1_units=a.s1_units, device=a.device, bf16=a.bf16,
        progress=a.progress,
    )
    res = run_embed(cfg)
    print(f"embedded {res['patches']} patches of {res['files']} file(s): " + ", ".join(res["outputs"]))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` (with eurosat, bigearthnet, oscd, compare) and ``embed`` to the ``seco`` subparsers."""
    ev = sub.add_parser("eval", help="evaluate a backbone: EuroSAT, BigEarthNet, OSCD; compare runs")
    tasks = ev.add_subparsers(dest="task_command", required=True)
    _add_classify(tasks, "eurosat", "EuroSAT scene classification (multi-class)")
    _add_classify(tasks, "bigearthnet", "BigEarthNet multi-label classification (19 or 43 classes)")
    _add_oscd(tasks)
    _add_compare(tasks)
    _add_embed(sub)
