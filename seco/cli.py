"""The ``seco`` command line: ``seco synth | sample | catalog | collect | pretrain | export | eval | embed | demo``.

Each subcommand validates its input and exits with status 2 and a one-line message on a
:class:`seco.errors.SecoError` or an OS error (read-only or full disk, a file where a folder is expected), before
doing any work where it can; after Ctrl-C it says how to continue and exits with 130. Every command that writes
declares its outputs (:func:`seco.boundary.declare`), and ``main`` claims them for it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from seco import boundary
from seco.backbones import backbone_names
from seco.boundary import RERUN_CONTINUES, Output, declare
from seco.configio import flag_type
from seco.errors import ConfigError, SecoError
from seco.methods import get_method, method_names

Handler = Callable[[argparse.Namespace], int]


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write a simulated multi-temporal Sentinel-2 store (offline, seeded)")
    p.add_argument("--out", required=True, help="the store folder to create")
    p.add_argument("--locations", type=int, default=256, help="number of locations (default 256)")
    p.add_argument("--dates", type=int, default=5, help="dates per location (default 5)")
    p.add_argument("--patch-size", type=int, default=264, help="patch side in 10 m pixels (default 264)")
    p.add_argument("--bands", default="all", help="'all' (12 L2A bands), 'l1c', 'RGB' or a list B02,B03,...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a simulated store made with other settings")
    p.add_argument("--overwrite-real-data", action="store_true",
                   help="with --overwrite: also replace a store synth did not make (imported or collected data)")
    p.add_argument("--grid", choices=["10m", "native"], default="10m",
                   help="store grid: 10m (every band on the 10 m grid, default) or native (20 m / 60 m bands at "
                        "their own resolution: 2.16x fewer pixels to decode; same imagery through Store.read)")
    p.add_argument("--s1", action="store_true",
                   help="also simulate Sentinel-1 (RTC gamma0 VV/VH in dB) of the same locations and dates into an "
                        "S1 group of the store (about 15%% of dates without an S1 pass)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_synth)
    declare(p, lambda a: [Output(a.out, kind="dir", keep=boundary.keep_store)], interrupt=RERUN_CONTINUES)


def _run_synth(a: argparse.Namespace) -> int:
    from seco.bands import parse_bands
    from seco.synth import make_store

    if a.overwrite_real_data and not a.overwrite:
        raise ConfigError("--overwrite-real-data only widens --overwrite; give both to replace a store of real data")
    path = make_store(
        a.out,
        num_locations=a.locations,
        num_dates=a.dates,
        patch_size=a.patch_size,
        bands=parse_bands(a.bands),
        seed=a.seed,
        progress=not a.no_progress,
        overwrite=a.overwrite,
        grid=a.grid,
        overwrite_real_data=a.overwrite_real_data,
        s1=a.s1,
    )
    print(f"wrote {a.locations} locations x {a.dates} dates to {path}" + (" (native grid)" if a.grid == "native" else "")
          + (" with Sentinel-1" if a.s1 else ""))
    return 0


def _int_or_auto(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor an integer") from None


#: Number flags of ``seco pretrain``: a bad value gets the words a ``--config`` file gets ("'eight' is not an integer").
INT, FLOAT = flag_type(int), flag_type(float)
PRETRAIN_FLAGS: dict[str, dict] = {
    "store": dict(help="the seco store to train on (from `seco synth` or `seco collect`)"),
    "out": dict(help="run folder: checkpoints, config.yaml, metrics.csv, curves.png, tensorboard/"),
    "method": {},  # choices and help from the method registry (_registry_flags), read when the parser is built
    "backbone": {},
    "bands": dict(help="'all' (every band of the store, default), 'RGB', or a list like B02,B03,B04,B08"),
    "crop": dict(type=INT, help="view size in px after random resized crop (default 224)"),
    "batch_size": dict(type=INT, help="global batch size over all processes (default 256)"),
    "epochs": dict(type=INT, help="epochs (default 200); ignored when --max-steps is given"),
    "max_steps": dict(type=INT, help="stop after this many optimiser steps"),
    "max_minutes": dict(type=FLOAT, help="stop (cleanly, with a checkpoint) after this many minutes"),
    "lr": dict(type=FLOAT, help="SGD learning rate (default 0.03)"),
    "weight_decay": dict(type=FLOAT, help="default 1e-4"),
    "schedule": dict(choices=["step", "cosine", "constant"], help="lr schedule (default step: /10 at 60%%, 80%%)"),
    "queue_size": dict(type=INT, help="negatives per subspace, a multiple of the global batch (default 16384)"),
    "temperature": dict(type=FLOAT, help="InfoNCE temperature (default 0.07)"),
    "key_momentum": dict(type=FLOAT, help="EMA of the key encoder (default 0.999)"),
    "num_workers": dict(type=_int_or_auto, help="DataLoader worker processes, or auto (default: on CUDA the "
                        "CPUs of this process minus one, on the CPU 0)"),
    "precision": dict(choices=["auto", "fp32", "bf16"], help="auto (default): bf16 autocast on CUDA, fp32 on the "
                      "CPU; fp32 reproduces the paper exactly"),
    "on_corrupt": dict(choices=["fail", "skip"], help="a location whose data cannot be decoded: fail (default, "
                       "naming it and its file) or skip it (logged, kept in the checkpoint)"),
    "device": dict(help="auto (default), cpu, cuda or cuda:N"),
    "seed": dict(type=INT, help="default 0"),
    "log_every": dict(type=INT, help="steps between metric rows (default 10)"),
    "ckpt_every": dict(type=INT, help="steps between checkpoints (default 200)"),
    "plot_every": dict(type=INT, help="steps between curve plots (default 500)"),
}


def _registry_flags() -> dict[str, dict]:
    """``--method`` and ``--backbone`` as the registries hold them now (methods registered by the user too)."""
    methods = "; ".join(f"{n}: {get_method(n).help}" for n in method_names())
    return {
        "method": dict(choices=method_names(), help=f"{methods} (default seco)"),
        "backbone": dict(choices=backbone_names(), help="default resnet18"),
    }


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pre-training (SeCo, MoCo-v2, MoCo-v2+TP)")
    for name, kw in {**PRETRAIN_FLAGS, **_registry_flags()}.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **kw)
    p.add_argument("--config", help="a YAML file of options; command-line flags override it")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--channels-last", dest="channels_last", action="store_const", const=True, default=None,
                   help="channels-last memory format (default on CUDA)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_const", const=False)
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_const", const=False, default=None)
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None)
    p.set_defaults(func=_run_pretrain)
    # the run claims its --out itself (rank 0 only under DDP); main checks it and names it in OS errors
    declare(p, lambda a: [Output(a.out, kind="dir")] if a.out else [], lock=False,
            interrupt="interrupted; rerun with --resume to continue from the last checkpoint")


def _run_pretrain(a: argparse.Namespace) -> int:
    from seco.train.config import resolve
    from seco.train.loop import pretrain

    names = [*PRETRAIN_FLAGS, "channels_last", "tensorboard", "progress"]
    cli = {k: getattr(a, k) for k in names}
    cfg = resolve(cli, a.config)
    given = {k for k, v in cli.items() if v is not None}
    res = pretrain(cfg, resume=a.resume, given=given)
    if os.environ.get("RANK", "0") == "0":
        print(res.summary())
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write the backbone as a torchvision/timm state dict (.safetensors, .pth) + JSON sidecar"
    )
    p.add_argument("checkpoint", nargs="?", help="a seco pretrain checkpoint (last.ckpt)")
    p.add_argument("--from-official", metavar="CKPT", help="convert a checkpoint of the paper's code instead")
    p.add_argument("--bands", help="with --from-official: the band list it was trained on (default RGB); with a "
                                   "seco checkpoint only its own bands (the first convolution's input channels)")
    p.add_argument("--out", required=True, help="output path without extension, e.g. weights/seco_r18; an existing "
                                                "folder (or a path ending in /) gets <run folder name>.* inside it")
    p.add_argument("--per-sensor", action="store_true",
                   help="a run on Sentinel-1 + Sentinel-2 bands: also one backbone per sensor, <out>-s2.* and "
                        "<out>-s1.* (the first convolution cut to its channels; the sidecar's layout says which)")
    p.set_defaults(func=_run_export)
    declare(p, _export_outputs)


def _export_outputs(a: argparse.Namespace) -> list[Output]:
    from seco.train.export_run import EXPORT_SUFFIXES, export_stem

    stem = export_stem(a.out, a.from_official or a.checkpoint or "weights", official=bool(a.from_official))
    stems = [stem, *((Path(f"{stem}-s2"), Path(f"{stem}-s1")) if getattr(a, "per_sensor", False) else ())]
    return [Output(str(s), also=tuple(str(s) + x for x in EXPORT_SUFFIXES)) for s in stems]


def _run_export(a: argparse.Namespace) -> int:
    from seco.train.export_run import export_official, export_run, export_stem

    if bool(a.checkpoint) == bool(a.from_official):
        raise ConfigError("give either a seco checkpoint or --from-official CKPT (exactly one)")
    if a.per_sensor and a.from_official:
        raise ConfigError("--per-sensor splits a seco run on Sentinel-1 + Sentinel-2 bands; the official SeCo "
                          "checkpoints are optical only")
    if a.from_official:
        paths = export_official(a.from_official, export_stem(a.out, a.from_official, official=True), a.bands)
    else:
        paths = export_run(a.checkpoint, export_stem(a.out, a.checkpoint, official=False), bands=a.bands,
                           per_sensor=a.per_sensor)
    for p in paths:
        print(p)
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline end to end: synth scene archive -> sample -> collect -> pretrain -> "
                                    "export -> linear probe -> report")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--minutes", type=float, default=4.0,
                   help="pre-training wall-clock budget in minutes (default 4: the whole demo takes about 7 on 2 cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (small archive, 12 locations, 5 training steps): about a minute, for a first look")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_demo)
    declare(p, lambda a: [Output(a.out, kind="dir", keep=boundary.keep_nonempty)], interrupt=RERUN_CONTINUES)


def _run_demo(a: argparse.Namespace) -> int:
    from seco.demo import QUICK, run_demo

    if a.minutes <= 0:
        raise ConfigError(f"--minutes {a.minutes:g} must be > 0")
    extra = QUICK if a.quick else {}
    report = run_demo(Path(a.out), minutes=a.minutes, seed=a.seed, progress=not a.no_progress, **extra)
    print(f"report: {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from seco import __version__

    parser = argparse.ArgumentParser(
        prog="seco", description="Seasonal Contrast pre-training on multispectral Sentinel-2 imagery"
    )
    parser.add_argument("--version", action="version", version=f"seco {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    from seco.collect.commands import register as add_collect
    from seco.eval.commands import register as add_eval
    from seco.imports.commands import register as add_import

    for add in (_add_synth, add_collect, add_import, _add_pretrain, _add_export, add_eval, _add_demo):
        add(sub)
    from seco.experiment.commands import register as add_experiment

    add_experiment(sub)
    from seco.store.commands import register as add_store

    add_store(sub)
    return parser


_NUMBER_LIST = re.compile(r"^-(\d+\.?\d*|\.\d+)(,-?(\d+\.?\d*|\.\d+))+$")


def _negative_numbers_as_values(argv: list[str]) -> list[str]:
    """``--bbox -180,-90,180,90`` as ``--bbox=-180,-90,180,90``: argparse takes a value that starts with ``-``
    and is not a single number for a flag ("expected one argument")."""
    out: list[str] = []
    for tok in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NUMBER_LIST.match(tok):
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``seco`` command: exit status 0, 1 (a check that found problems), 2 (a one-line error) or 130
    (Ctrl-C). Every command's outputs are claimed for it (:mod:`seco.boundary`): a second process writing the
    same output is refused, and an ``OSError`` (read-only, full disk, a file where a folder is expected)
    becomes one line naming the path and the fix."""
    parser = build_parser()
    args = parser.parse_args(_negative_numbers_as_values(list(sys.argv[1:] if argv is None else argv)))
    command = getattr(args, "seco_command", f"seco {args.command}")
    declared = getattr(args, "seco_outputs", None)
    outputs: list[Output] = []
    try:
        outputs = declared(args) if declared is not None else []
        if not getattr(args, "seco_lock", True):
            boundary.check_outputs(outputs, command)
            return int(args.func(args))
        with boundary.claim_outputs(outputs, command):
            return int(args.func(args))
    except SecoError as e:
        print(f"seco {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno is None and e.filename is None:
            raise  # not an error of the file system (a socket, a library's own): its traceback says more
        print(f"seco {args.command}: error: {boundary.describe_os_error(e, outputs)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: {getattr(args, 'seco_interrupt', boundary.INTERRUPTED)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
