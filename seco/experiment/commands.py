"""Command line: ``seco experiment compare`` (see :mod:`seco.experiment.run`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seco.boundary import RERUN_CONTINUES, Output, declare, keep_nonempty
from seco.errors import ConfigError
from seco.experiment.config import S12_METHODS, SCALES, SENSOR_MODES, compared_methods, default_methods

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``seco experiment compare`` to the ``seco`` parser."""
    p = sub.add_parser("experiment", help="controlled experiments: seco experiment compare")
    esub = p.add_subparsers(dest="experiment", required=True)
    c = esub.add_parser(
        "compare",
        help="SeCo vs MoCo-v2 vs MoCo-v2+TP vs random init: one store, one budget, several seeds, land-cover "
             "probe and change detection, one report",
    )
    c.add_argument("--out", required=True, help="experiment folder (rerun into it to continue)")
    c.add_argument("--scale", default="cpu", choices=sorted(SCALES),
                   help="size preset: tiny (tests), cpu (default: 33 min measured on 2 shared cores, docs/FIDELITY.md), "
                        "gpu (one GPU)")
    c.add_argument("--store", help="pre-training store (default: a simulated one in <out>/store)")
    c.add_argument("--methods", default=None,
                   help=f"comma-separated, of {', '.join(compared_methods())} (default {','.join(default_methods())}); "
                        "with --sensors s1+s2 each may name its bands, method@bands (default "
                        f"{','.join(S12_METHODS)})")
    c.add_argument("--sensors", default="s2", choices=SENSOR_MODES,
                   help="s2 (default: the paper's comparison) or s1+s2: an S1 + S2 store, land-cover probes on "
                        "S2-only, S1-only and S1+S2 inputs and the cloudy-optics task (docs/FIDELITY.md "
                        "'Multi-sensor')")
    c.add_argument("--seeds", type=int, default=3, help="seeds per method (default 3)")
    c.add_argument("--seed0", type=int, default=0, help="first seed (default 0)")
    for flag, typ, what in (("--steps", int, "pre-training steps per run"), ("--batch-size", int, "batch"),
                            ("--crop", int, "view size in px"), ("--queue-size", int, "negatives per subspace"),
                            ("--lr", float, "learning rate")):
        c.add_argument(flag, type=typ, help=f"{what} (default: the --scale preset)")
    c.add_argument("--bands", default="all", help="pre-training bands (default all bands of the store)")
    c.add_argument("--eurosat", default=None,
                   help="EuroSAT MS folder for a real land-cover probe (default: ../shared/data/eurosat_ms when "
                        "present; 'none' to skip)")
    c.add_argument("--oscd", default=None,
                   help="OSCD folder for real change detection (default: with --scale gpu ../shared/data/oscd "
                        "when present; on the CPU presets none, since it adds about 3 min per backbone on 2 cores)")
    c.add_argument("--oscd-epochs", type=int, help="decoder epochs on OSCD (default: the --scale preset)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other setting of seco.experiment.config.CompareConfig, e.g. --set cd_cities=4 "
                        "(repeatable)")
    c.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    c.add_argument("--no-progress", dest="progress", action="store_false")
    c.set_defaults(func=_run)
    declare(c, lambda a: [Output(a.out, kind="dir", keep=keep_nonempty)], interrupt=RERUN_CONTINUES)


def _optional_root(value: str | None, default: Path | None) -> str:
    """The folder given, or ``default`` when not given and present; "" for none."""
    if value is None:
        return str(default) if default is not None and default.is_dir() else ""
    return "" if value.lower() == "none" else value


def _settings(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> typed CompareConfig fields.

    Raises:
        ConfigError: not KEY=VALUE, an unknown key, or a value of the wrong type.
    """
    from seco.configio import field_types, parse_text
    from seco.experiment.config import CompareConfig

    kinds = {k: t for k, t in field_types(CompareConfig).items() if k not in ("out", "store", "methods")}
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in kinds:
            raise ConfigError(f"--set {item!r}: use KEY=VALUE with KEY one of {', '.join(sorted(kinds))}")
        try:
            out[key] = parse_text(kinds[key], value)
        except ConfigError as e:
            raise ConfigError(f"--set {item!r}: {e}") from None
    return out


def _run(a: argparse.Namespace) -> int:
    from seco.experiment.config import CompareConfig
    from seco.experiment.run import run_compare

    kw = dict(SCALES[a.scale])
    kw.update(_settings(a.set))
    for name in ("steps", "batch_size", "crop", "queue_size", "lr", "oscd_epochs"):
        v = getattr(a, name)
        if v is not None:
            kw[name] = v
    if a.queue_size is None:  # the preset's queue, rounded to a multiple of the batch
        bs = kw.get("batch_size", CompareConfig.batch_size)
        q = kw.get("queue_size", CompareConfig.queue_size)
        kw["queue_size"] = max(bs, (q // bs) * bs)
    s2 = a.sensors == "s2"  # the real samples are Sentinel-2 tasks: off by default with --sensors s1+s2
    methods = a.methods if a.methods is not None else ",".join(default_methods() if s2 else S12_METHODS)
    cfg = CompareConfig(
        out=a.out, store=a.store, methods=tuple(m for m in methods.split(",") if m.strip()), seeds=a.seeds,
        seed0=a.seed0, bands=a.bands, eurosat=_optional_root(a.eurosat, SHARED / "eurosat_ms" if s2 else None),
        oscd=_optional_root(a.oscd, SHARED / "oscd" if a.scale == "gpu" and s2 else None),
        device=a.device, progress=a.progress, sensors=a.sensors, **kw,
    )
    report = run_compare(cfg)
    print(f"report: {report}")
    return 0
