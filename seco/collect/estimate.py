"""``seco collect --dry-run``: the requests and bytes a run is expected to need."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from seco.bands import BY_NAME
from seco.collect.plan import Plan
from seco.collect.worker import point_box
from seco.errors import SecoError


@dataclass(frozen=True)
class Estimate:
    """What a run is expected to transfer (``--dry-run``), assuming one scene per date is enough.

    Attributes:
        locations: locations still to collect.
        dates: dates per location.
        assets: band assets read per patch (SCL included for L2A).
        searches: catalog searches.
        requests: HTTP requests (searches + per asset: one header read and one range read per tile row).
        bytes: bytes expected (headers + the compressed tiles each window touches).
        tile_px: COG tile side assumed.
        bytes_per_tile: compressed bytes per tile assumed.
        source: where ``tile_px`` / ``bytes_per_tile`` come from (a probed asset, or defaults).
    """

    locations: int
    dates: int
    assets: int
    searches: int
    requests: int
    bytes: int
    tile_px: int
    bytes_per_tile: float
    source: str

    def describe(self) -> str:
        return (
            f"dry run: {self.locations} locations x {self.dates} dates = {self.locations * self.dates} patches; "
            f"{self.searches} catalog searches; about {self.requests:,} HTTP requests and "
            f"{_human(self.bytes)} ({self.assets} assets per patch, {self.tile_px} px tiles of about "
            f"{_human(self.bytes_per_tile)}, {self.source}); more for scenes rejected by the cloud/nodata "
            "check; nothing was written"
        )


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


HEADER_BYTES = 16384  # GDAL's first read of a COG (the header and tile index)


def _probe(plan: Plan) -> tuple[int, float, str] | None:
    """Tile side and compressed bytes per tile of one B02 asset found near the first locations."""
    import rasterio

    for task in plan.tasks[:3]:
        for start, end in task.windows[:2]:
            try:
                items = plan.catalog.search(point_box(task.lon, task.lat), start, end)
            except SecoError:
                return None
            for it in items:
                href = it.assets.get("B02")
                if not href:
                    continue
                try:
                    with rasterio.open(href) as src:
                        block = int(src.block_shapes[0][0])
                        ntiles = math.ceil(src.width / block) * math.ceil(src.height / block)
                        share = 0.75 if src.overviews(1) else 1.0  # overviews take about 1/4 of a COG
                    size = _size_of(href)
                except Exception:
                    continue
                if size and ntiles:
                    return block, size * share / ntiles, f"probed from {it.id} B02"
    return None


def _size_of(href: str) -> int | None:
    if href.startswith(("http://", "https://")):
        import requests

        r = requests.head(href, timeout=10, allow_redirects=True)
        return int(r.headers["Content-Length"]) if r.ok and "Content-Length" in r.headers else None
    p = Path(href[len("file://"):] if href.startswith("file://") else href)
    return p.stat().st_size if p.is_file() else None


def estimate(plan: Plan, remaining: int | None = None, *, probe: bool = True) -> Estimate:
    """Requests and bytes a run is expected to need (see :class:`Estimate`).

    Per asset of resolution ``r`` the window spans ``w = patch * 10 / r`` native pixels; with tiles of side
    ``b`` at a random offset it touches ``(1 + (w - 1) / b)^2`` tiles in ``1 + (w - 1) / b`` rows.
    """
    n = plan.target if remaining is None else remaining
    cfg = plan.config
    found = _probe(plan) if probe else None
    tile, per_tile, source = found or (1024, 1024 * 1024 * 2 * 0.45, "defaults: 1024 px deflate tiles")
    res = [BY_NAME[b].resolution_m for b in cfg.band_names]
    if cfg.bands == "l2a":
        res.append(20)  # the SCL
    reqs = byts = 0.0
    for r in res:
        w = max(1.0, cfg.patch_size * 10.0 / r)
        rows = 1 + (min(w, tile) - 1) / tile if w <= tile else math.ceil(w / tile) + 1
        reqs += 1 + rows
        byts += HEADER_BYTES + rows * rows * per_tile
    patches = n * plan.num_dates
    searches = patches
    return Estimate(locations=n, dates=plan.num_dates, assets=len(res), searches=searches,
                    requests=int(round(searches + patches * reqs)), bytes=int(round(patches * byts)),
                    tile_px=tile, bytes_per_tile=per_tile, source=source)
