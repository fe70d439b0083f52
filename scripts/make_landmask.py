"""Build the bundled land mask ``seco/resources/land_mask.npz`` from the GLOBE-derived mask on PyPI.

Source: the ``global-land-mask`` package (code MIT, Todd Karin) ships a 30 arc-second (1/120 degree) boolean
ocean mask extracted from NOAA's GLOBE digital elevation model (GLOBE Task Team, 1999: cells flagged -500 are
ocean). GLOBE's unrestricted version has no copyright or distribution restrictions. This script coarsens it
by majority vote to a ``resolution`` degree grid (default 0.1: 1800 x 3600 cells) and stores the cells as
packed bits. Lakes count as land, as in GLOBE.

Usage (a dev/script dependency only; seco itself reads the bundled file)::

    pip install global-land-mask==1.0.0
    python scripts/make_landmask.py [--resolution 0.1] [--out seco/resources/land_mask.npz]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.resources
from pathlib import Path

import numpy as np

GLOBE_CELLS_PER_DEGREE = 120


def coarsen(ocean: np.ndarray, factor: int, threshold: float = 0.5) -> np.ndarray:
    """Majority-vote land mask of ``factor x factor`` blocks of a fine ocean mask.

    Args:
        ocean: (H, W) bool, True over ocean; row 0 at the north edge.
        factor: fine cells per coarse cell along each axis.
        threshold: a coarse cell is land when at least this fraction of its fine cells is land.

    Returns:
        (H // factor, W // factor) bool, True over land.
    """
    rows, cols = ocean.shape[0] // factor, ocean.shape[1] // factor
    land = np.empty((rows, cols), dtype=bool)
    need = threshold * factor * factor
    for r in range(rows):  # one band at a time keeps memory to the fine mask itself
        band = ocean[r * factor : (r + 1) * factor, : cols * factor]
        ocean_count = band.reshape(factor, cols, factor).sum(axis=(0, 2))  # (cols,)
        land[r] = (factor * factor - ocean_count) >= need
    return land


def main() -> None:
    """Write the coarse packed-bit land mask."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=float, default=0.1, help="cell size in degrees (a multiple of 1/120)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "seco/resources/land_mask.npz")
    args = ap.parse_args()

    factor = round(args.resolution * GLOBE_CELLS_PER_DEGREE)
    if factor < 1 or abs(factor / GLOBE_CELLS_PER_DEGREE - args.resolution) > 1e-9:
        raise SystemExit(f"--resolution {args.resolution} is not a multiple of 1/120 degree; try 0.1 or 0.25")
    version = importlib.metadata.version("global-land-mask")
    src = importlib.resources.files("global_land_mask") / "globe_combined_mask_compressed.npz"
    with importlib.resources.as_file(src) as path, np.load(path) as z:
        lat, lon = z["lat"], z["lon"]
        if not (np.isclose(lat[0], 90) and np.isclose(lon[0], -180) and lat[1] < lat[0]):
            raise SystemExit(f"unexpected GLOBE grid origin lat[0]={lat[0]} lon[0]={lon[0]}")
        ocean = z["mask"]  # (21600, 43200) bool, True = ocean
    land = coarsen(ocean, factor)
    del ocean
    rows, cols = land.shape
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        bits=np.packbits(land, axis=1),  # (rows, ceil(cols / 8)) uint8, big-endian bit order
        rows=np.int32(rows),
        cols=np.int32(cols),
        resolution_deg=np.float64(args.resolution),
        west=np.float64(-180.0),
        north=np.float64(90.0),
        source=np.str_(
            f"global-land-mask=={version} (GLOBE, NOAA NGDC 1999), majority vote of "
            f"{factor}x{factor} 30-arc-second cells"
        ),
    )
    area_w = np.cos(np.deg2rad(90 - (np.arange(rows) + 0.5) * args.resolution))[:, None]
    frac = float((land * area_w).sum() / (area_w.sum() * cols))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): {rows}x{cols} cells, "
          f"land fraction of the sphere {frac:.3f}")


if __name__ == "__main__":
    main()
