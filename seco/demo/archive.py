"""Step 1 of the demo: the simulated scene archive, its sites and the date schedule that matches it.

The archive is :func:`seco.synth.archive.make_archive` (seeded COG + STAC, 3 UTM zones x 5 dates x passes 5 days
apart, with clouds, swath edges and a few broken assets) and its stac-geoparquet index.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from seco.errors import ConfigError

#: UTM zones of the demo archive (one site each).
ZONES = (31, 32, 33)
#: Chances of a clear, scattered and overcast scene: fewer clouds than make_archive's default, so that most
#: (site, date) pairs keep a usable pass; the collector still meets clouds, edges and broken assets.
CLOUD_PROBS = (0.85, 0.12, 0.03)
EDGE_PROB = 0.2


def make_or_reuse_archive(root: Path, seed: int, scene_px: int, passes: int) -> dict[str, Any]:
    """Make the demo archive under ``root`` (or reuse a finished one made with the same settings).

    Returns:
        The archive's manifest (:func:`seco.synth.archive.read_manifest`).

    Raises:
        ConfigError: ``root`` holds an archive of other settings, or files that are not a demo archive.
    """
    from seco.synth.archive import DEFAULT_DATES, MANIFEST, PARQUET, make_archive, read_manifest, write_index

    num_scenes = len(ZONES) * len(DEFAULT_DATES) * passes
    want: dict[str, Any] = {"seed": seed, "zones": list(ZONES), "dates": [d.isoformat() for d in DEFAULT_DATES],
                            "num_scenes": num_scenes, "scene_px": scene_px,
                            "cloud_probs": list(CLOUD_PROBS), "edge_prob": EDGE_PROB}
    if (root / MANIFEST).is_file():
        have = read_manifest(root)["config"]
        diff = [k for k, v in want.items() if have.get(k) != v]
        if diff:
            raise ConfigError(f"{root} holds an archive made with other settings ({', '.join(diff)}); remove "
                              "it or give the demo another --out")
        if not (root / PARQUET).is_file():
            write_index(root)  # interrupted between the manifest and the index
        return read_manifest(root)
    if root.exists():  # an interrupted earlier attempt: make_archive needs an empty folder
        _clear_interrupted(root)
    make_archive(root, seed=seed, num_scenes=num_scenes, zones=ZONES, dates=DEFAULT_DATES,
                 scene_px=scene_px, progress=False, cloud_probs=CLOUD_PROBS, edge_prob=EDGE_PROB)
    return read_manifest(root)


def _clear_interrupted(root: Path) -> None:
    """Remove the partial archive an interrupted attempt left in ``root``, refusing any other files."""
    from seco.synth.archive import MANIFEST, NDJSON, PARQUET

    ours = {"collection.json", MANIFEST, PARQUET, NDJSON}
    strays = [p.name for p in root.iterdir() if p.name not in ours and not p.name.startswith("S2")]
    if strays:
        raise ConfigError(f"{root} holds files that are not a demo archive ({', '.join(sorted(strays)[:3])}); "
                          "remove them or give the demo another --out")
    shutil.rmtree(root)


def site_centres(man: dict[str, Any]) -> tuple[tuple[str, float, float], ...]:
    """(name, lon, lat) of the centre of each site's tile."""
    from rasterio.warp import transform

    half = man["config"]["scene_px"] * 5.0  # metres: half the tile side at 10 m
    out = []
    for s in man["sites"]:
        lon, lat = transform(f"EPSG:{s['epsg']}", "EPSG:4326", [s["x0"] + half], [s["y0"] - half])
        out.append((f"tile {s['tile']} (UTM {s['zone']})", float(lon[0]), float(lat[0])))
    return tuple(out)


def date_schedule(man: dict[str, Any]) -> Any:
    """A DateSchedule whose windows are centred on the archive's dates and hold every pass of a date."""
    from seco.collect.dates import DateSchedule
    from seco.synth.archive import REVISIT_DAYS

    dates = [dt.date.fromisoformat(d) for d in man["config"]["dates"]]
    steps = {(b - a).days for a, b in zip(dates, dates[1:], strict=False)}
    if len(steps) > 1:
        raise ConfigError(f"archive dates {dates} are not evenly spaced; the SeCo date schedule needs that")
    passes = -(-man["config"]["num_scenes"] // (len(man["sites"]) * len(dates)))
    return DateSchedule(n_dates=len(dates), step_weeks=(steps.pop() / 7.0) if steps else 12.0,
                        window_days=REVISIT_DAYS * (passes - 1) + 2.0, span_days=1, end=dates[-1])
