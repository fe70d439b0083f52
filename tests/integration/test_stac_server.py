"""``seco collect`` against real servers on 127.0.0.1, and on real Sentinel-2 imagery (OSCD).

- stac-fastapi-pgstac on PostgreSQL 15 + PostGIS with pgstac (``pypgstac migrate``), holding the items of a
  synth archive (``pypgstac load``) whose COGs nginx serves with HTTP range requests: collect through the
  API and over HTTP must give exactly the store that the local stac-geoparquet + local files give, while
  transferring a fraction of the files.
- ``seco catalog build`` over ../shared/data/oscd, then ``seco collect`` around those cities.

The servers are started by the test run (tests/integration/servers.py) and skipped only when their
binaries or packages are not installed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import requests

from seco.cli import main
from seco.collect.journal import read_failures
from seco.collect.sampling import Locations, read_locations, write_locations
from seco.store import open_store
from seco.synth.archive import read_manifest, write_index
from tests.integration.servers import archive_locations, served_archive, stac_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

ARGS = ["--patch-size", "64", "--max-cloud", "60", "--no-progress", "--workers", "4", "--retries", "2",
        "--backoff", "0.05"]


def test_collect_through_stac_fastapi_pgstac_and_nginx(stac_server, served_archive, tmp_path):  # noqa: F811
    archive, web = served_archive
    landing = requests.get(stac_server, timeout=10).json()
    assert any("item-search" in c for c in landing["conformsTo"])
    locs = archive_locations(archive, tmp_path / "loc.parquet", per_side=2)

    web.clear_log()
    api_store = tmp_path / "api.zarr"
    assert main(["collect", "--locations", str(locs), "--catalog", stac_server, "--collection", "sentinel-2-l2a",
                 "--out", str(api_store), *ARGS]) == 0
    rows = web.log_rows()

    local_index = write_index(archive, None, parquet="local.parquet", ndjson="local.ndjson")
    local_store = tmp_path / "local.zarr"
    assert main(["collect", "--locations", str(locs), "--catalog", str(local_index), "--out", str(local_store),
                 *ARGS]) == 0

    a, b = open_store(api_store), open_store(local_store)
    assert len(a) > 0 and a.keys() == b.keys()
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        # the same radiometry, decided by the rule of each source: the API's items (hrefs on a web server that
        # is no known provider) by the generic STAC rule, the local index's (file paths) by the local one
        ma, mb = a.meta(i), b.meta(i)
        for da, db in zip(ma, mb, strict=True):
            if da.get("dn_rule") is not None:
                assert da["dn_rule"].startswith("stac:") and db["dn_rule"].startswith("local:")
                assert da["dn_rule"].split(":", 1)[1] == db["dn_rule"].split(":", 1)[1]
        drop = ("dn_rule",)
        assert [{k: v for k, v in d.items() if k not in drop} for d in ma] == \
            [{k: v for k, v in d.items() if k not in drop} for d in mb]
    # the same faults and rejected dates, seen over HTTP (a garbage/truncated COG; a 404 for a deleted asset).
    # Scenes passed over may differ: pgstac matches the footprint, the local index only the bbox
    def faults(store: Path) -> list[tuple]:
        return sorted((r["location_id"], r["date_index"], str(r["item_id"]), r["kind"]) for r in read_failures(store)
                      if r["kind"] in ("read", "missing", "transient", "window"))

    assert faults(api_store) == faults(local_store)
    missing = {f["path"].rsplit("/archive/", 1)[1] for f in read_manifest(archive)["faults"] if f["kind"] == "missing"}
    assert all(r[2] == 404 for r in rows if r[1].split("/archive/", 1)[-1] in missing)

    # COGs are read with HTTP range requests only, never downloaded whole
    gets = [r for r in rows if r[1].endswith(".tif") and r[0] == "GET"]
    assert gets and all(r[4].startswith("bytes=") for r in gets)
    assert {r[2] for r in gets} <= {206, 404}


def _oscd_locations(images: Path, out: Path) -> Path:
    """The centre of each OSCD city's B02 raster, with a +-2 day window around each of its two dates."""
    import rasterio

    cities = sorted(p for p in images.iterdir() if (p / "dates.txt").is_file())
    lon, lat, starts, ends, names = [], [], [], [], []
    for c in cities:
        b02 = next((c / "imgs_1").glob("*B02.tif"))
        with rasterio.open(b02) as src:
            w, s, e, n = src.bounds
        lon.append((w + e) / 2)
        lat.append((s + n) / 2)
        dates = dict(line.split(":") for line in (c / "dates.txt").read_text().split("\n") if ":" in line)
        days = [dt.datetime.strptime(dates[k].strip(), "%Y%m%d") for k in ("date_1", "date_2")]
        starts.append([np.datetime64(d - dt.timedelta(days=2), "ms") for d in days])
        ends.append([np.datetime64(d + dt.timedelta(days=2), "ms") for d in days])
        names.append(c.name)
    from seco.collect.dates import DateWindows

    start, end = np.array(starts), np.array(ends)
    loc = Locations(id=np.arange(len(cities)), lon=np.array(lon), lat=np.array(lat), city=np.array(names, object),
                    country=np.full(len(cities), None, object), windows=DateWindows(start, start, end))
    return write_locations(loc, out)


def test_collect_real_oscd_imagery(shared_dir, tmp_path, capsys):
    images = shared_dir / "data" / "oscd" / "Onera Satellite Change Detection dataset - Images"
    if not images.is_dir():
        pytest.skip(f"OSCD sample not found at {images}")
    cat = tmp_path / "oscd.parquet"
    assert main(["catalog", "build", str(images), "--out", str(cat)]) == 0
    assert "indexed 10 scenes" in capsys.readouterr().out  # 5 cities x 2 dates
    locs = _oscd_locations(images, tmp_path / "loc.parquet")
    out = tmp_path / "oscd.zarr"
    assert main(["collect", "--locations", str(locs), "--catalog", str(cat), "--out", str(out), "--bands", "l1c",
                 "--max-cloud", "none", "--max-patch-cloud", "1", "--patch-size", "128", "--no-progress",
                 "--workers", "2"]) == 0
    s = open_store(out)
    loc = read_locations(locs)
    assert len(s) == len(loc) == 5 and s.bands[10] == "B10" and s.num_dates == 2
    import rasterio

    for i, key in enumerate(s.keys()):
        city = loc.city[int(key)]
        for t, m in enumerate(s.meta(i)):
            assert city in m["item_id"] and f"imgs_{t + 1}" in m["item_id"]
            b02 = next((images / city / f"imgs_{t + 1}").glob("*B02.tif"))
            with rasterio.open(b02) as src:  # the patch is a window of the B02 grid (EPSG:4326 here)
                a, _, c, _, e, f = m["transform"]
                col, row = round((c - src.transform.c) / a), round((f - src.transform.f) / e)
                direct = src.read(1, window=((row, row + 128), (col, col + 128)))
            np.testing.assert_array_equal(s.read(i, dates=[t], bands=["B02"])[0, 0], direct)
            assert m["crs"] == "EPSG:4326" and 0.0 <= m["cloud_fraction"] <= 1.0
