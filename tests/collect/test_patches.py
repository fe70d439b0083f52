"""read_patch: grid snapping, windowed reads, nearest upsampling, harmonisation, errors, HTTP, real OSCD data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from seco.bands import L2A
from seco.collect.build import build_catalog
from seco.collect.catalog import ParquetCatalog
from seco.collect.patches import (
    PatchOutsideScene,
    TransientReadError,
    dn_shift,
    harmonize_dn,
    read_patch,
)
from seco.collect.scene import SceneItem
from seco.errors import BandError, CollectError, ConfigError, ReadError
from seco.synth.archive import make_archive, read_manifest, write_index

DATES = ("2021-12-07", "2022-03-01", "2022-05-24")
KW = dict(zones=(31, 32), dates=DATES, scene_px=396, blocksize=256, progress=False)
OSCD_CITY = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "oscd" / (
    "Onera Satellite Change Detection dataset - Images") / "bercy"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return make_archive(tmp_path_factory.mktemp("patches") / "a", seed=5, corrupt=2, missing=1, **KW)


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    """The same surfaces, every scene written with the pre-04.00 baseline (no +1000)."""
    return make_archive(tmp_path_factory.mktemp("patches") / "old", seed=5, corrupt=0, missing=0, baseline="03.01",
                        **KW)


def _items(root: Path, parquet: str = "catalog.parquet") -> dict[str, SceneItem]:
    found = ParquetCatalog(root / parquet).search([-180, -90, 180, 90], "2020-01-01", "2024-01-01")
    return {it.id: it for it in found}


def _clean(root: Path, post04: bool | None = None) -> list[dict]:
    m = read_manifest(root)
    broken = {f["item"] for f in m["faults"]}
    return [s for s in m["scenes"] if s["id"] not in broken and s["nodata_percentage"] == 0
            and (post04 is None or (s["dn_offset"] == 1000) == post04)]


def _site(root: Path, scene: dict) -> dict:
    return read_manifest(root)["sites"][scene["site"]]


def _window(path: Path, transform: tuple[float, ...], size: int) -> np.ndarray:
    """Direct read of the window of a raster that covers a patch grid (same origin, integer factor)."""
    with rasterio.open(path) as src:
        t = src.transform
        f = round(t.a / transform[0])
        c0, r0 = (transform[2] - t.c) / t.a, (transform[5] - t.f) / t.e
        c0i, r0i = int(np.floor(c0)), int(np.floor(r0))
        n = -(-(size + round((c0 - c0i) * f)) // f)
        m = -(-(size + round((r0 - r0i) * f)) // f)
        win = src.read(1, window=Window(c0i, r0i, n, m))
        up = np.repeat(np.repeat(win, f, axis=0), f, axis=1)
        dr, dc = round((r0 - r0i) * f), round((c0 - c0i) * f)
        return up[dr:dr + size, dc:dc + size]


# ---------------------------------------------------------------------------------------------- grid and reads


def test_patch_on_the_10m_grid_equals_direct_reads(archive):
    scene = _clean(archive)[0]
    site = _site(archive, scene)
    item = _items(archive)[scene["id"]]
    lon, lat = site["lon"] + 0.0007, site["lat"] - 0.0004
    p = read_patch(item, lon, lat, size_px=128)
    assert p.data.shape == (12, 128, 128) and p.data.dtype == np.uint16 and p.bands == L2A
    assert p.scl is not None and p.scl.shape == (128, 128) and p.scl.dtype == np.uint8
    assert p.crs == scene["epsg"] and p.item_id == scene["id"]
    a, _, c, _, e, f = p.transform
    assert (a, e) == (10.0, -10.0) and (c - site["x0"]) % 10 == 0 and (site["y0"] - f) % 10 == 0
    assert p.bbox == (c, f - 1280, c + 1280, f)
    assert abs(p.lon - lon) < 1e-4 and abs(p.lat - lat) < 1e-4  # within half a pixel
    assert not p.data.flags.writeable
    d = archive / scene["id"]
    for band, key in (("B02", "blue"), ("B08", "nir"), ("B11", "swir16"), ("B8A", "nir08"), ("B01", "coastal"),
                      ("B09", "nir09")):
        expected = harmonize_dn(_window(d / f"{key}.tif", p.transform, 128), -scene["dn_offset"])
        np.testing.assert_array_equal(p.data[L2A.index(band)], expected)
    np.testing.assert_array_equal(p.scl, _window(d / "scl.tif", p.transform, 128))


def _gradient_item(tmp_path: Path, sizes: dict[str, tuple[int, int]]) -> SceneItem:
    """COGs whose pixel value encodes its (row, col): value = 1 + row * width + col."""
    x0, y0 = 600000.0, 5000040.0
    assets = {}
    for band, (res, n) in sizes.items():
        arr = (1 + np.arange(n)[:, None] * n + np.arange(n)[None, :]).astype(np.uint16)
        path = tmp_path / f"{band}.tif"
        with rasterio.open(path, "w", driver="COG", width=n, height=n, count=1, dtype="uint16", crs="EPSG:32631",
                           transform=Affine(res, 0, x0, 0, -res, y0), nodata=0, blocksize=256) as dst:
            dst.write(arr, 1)
        assets[band] = str(path)
    return SceneItem(id="gradient", datetime=dt.datetime(2020, 6, 1, tzinfo=dt.UTC), cloud_cover=0.0,
                     bbox=(2.0, 45.0, 4.0, 46.0), epsg=32631, assets=assets)


def _lonlat_for(col0: int, row0: int, size: int) -> tuple[float, float]:
    x = 600000.0 + (col0 + size / 2) * 10
    y = 5000040.0 - (row0 + size / 2) * 10
    lon, lat = warp_transform("EPSG:32631", "EPSG:4326", [x], [y])
    return lon[0], lat[0]


@pytest.mark.parametrize(("col0", "row0"), [(0, 0), (7, 3), (13, 29), (90, 85)])
def test_nearest_upsampling_is_exactly_aligned(tmp_path, col0, row0):
    item = _gradient_item(tmp_path, {"B02": (10, 120), "B05": (20, 60), "B01": (60, 20)})
    size = 30
    p = read_patch(item, *_lonlat_for(col0, row0, size), size_px=size, bands=("B02", "B05", "B01"), scl=False)
    r = row0 + np.arange(size)[:, None]
    c = col0 + np.arange(size)[None, :]
    np.testing.assert_array_equal(p.data[0], 1 + r * 120 + c)
    np.testing.assert_array_equal(p.data[1], 1 + (r // 2) * 60 + c // 2)
    np.testing.assert_array_equal(p.data[2], 1 + (r // 6) * 20 + c // 6)
    assert p.transform[2] == 600000.0 + col0 * 10 and p.transform[5] == 5000040.0 - row0 * 10


def test_patch_must_lie_inside_the_scene(tmp_path):
    item = _gradient_item(tmp_path, {"B02": (10, 120), "B05": (20, 59)})  # the 20 m raster is 20 m short
    read_patch(item, *_lonlat_for(90, 90, 30), size_px=30, bands=("B02",), scl=False)  # touches the corner
    with pytest.raises(PatchOutsideScene, match="inside one scene"):
        read_patch(item, *_lonlat_for(91, 90, 30), size_px=30, bands=("B02",), scl=False)
    with pytest.raises(PatchOutsideScene):
        read_patch(item, *_lonlat_for(-1, 0, 30), size_px=30, bands=("B02",), scl=False)
    with pytest.raises(PatchOutsideScene, match="B05"):  # inside the 10 m grid, beyond the 20 m raster
        read_patch(item, *_lonlat_for(90, 0, 30), size_px=30, bands=("B02", "B05"), scl=False)
    with pytest.raises(CollectError):  # what the pipeline catches
        read_patch(item, 10.0, 10.0, size_px=30, bands=("B02",), scl=False)


def test_resolution_20_grid(archive):
    scene = _clean(archive)[0]
    site = _site(archive, scene)
    p = read_patch(_items(archive)[scene["id"]], site["lon"], site["lat"], size_px=64, resolution=20)
    assert p.transform[0] == 20.0 and p.data.shape == (12, 64, 64)
    expected = harmonize_dn(_window(archive / scene["id"] / "swir16.tif", p.transform, 64), -scene["dn_offset"])
    np.testing.assert_array_equal(p.data[L2A.index("B11")], expected)


# ---------------------------------------------------------------------------------------------- harmonisation


def test_harmonised_post_04_scene_equals_pre_04_values(archive, twin):
    scene = _clean(archive, post04=True)[0]
    site = _site(archive, scene)
    new, old = _items(archive)[scene["id"]], _items(twin)[scene["id"]]
    assert new.offsets["B04"] == -0.1 and new.processing_baseline >= "04.00"
    assert not old.offsets and old.processing_baseline == "03.01"
    args = (site["lon"], site["lat"], 128)
    p_new, p_old = read_patch(new, *args), read_patch(old, *args)
    np.testing.assert_array_equal(p_new.data, p_old.data)
    assert p_new.dn_shift == (-1000,) * 12 and p_old.dn_shift == (0,) * 12
    raw = read_patch(new, *args, harmonize=False)
    valid = p_old.data != 0
    np.testing.assert_array_equal(raw.data.astype(int)[valid] - p_old.data[valid], 1000)
    # Planetary Computer style: no raster:bands offset, only s2:processing_baseline >= 04.00
    pc = dataclasses.replace(new, offsets={}, scales={})
    p_pc = read_patch(pc, *args)
    np.testing.assert_array_equal(p_pc.data, p_old.data)
    assert p_pc.dn_shift == (-1000,) * 12


def test_dn_shift_rules():
    base = SceneItem(id="x", datetime=dt.datetime(2022, 6, 1, tzinfo=dt.UTC), cloud_cover=0.0, bbox=(0, 0, 1, 1),
                     epsg=32631, assets={"B02": "x.tif"})
    assert dn_shift(base, "B02") == 0
    assert dn_shift(dataclasses.replace(base, processing_baseline="05.09"), "B02") == -1000
    assert dn_shift(dataclasses.replace(base, processing_baseline="N0400"), "B02") == -1000
    assert dn_shift(dataclasses.replace(base, processing_baseline="02.14"), "B02") == 0
    # raster:bands wins over the baseline, including an explicit 0
    assert dn_shift(dataclasses.replace(base, processing_baseline="05.09", offsets={"B02": 0.0}), "B02") == 0
    assert dn_shift(dataclasses.replace(base, offsets={"B02": -0.1}, scales={"B02": 0.0001}), "B02") == -1000
    with pytest.raises(ReadError, match="scale"):
        dn_shift(dataclasses.replace(base, offsets={"B02": -1000.0}, scales={"B02": 1.0}), "B02")
    with pytest.raises(ReadError, match="processing_baseline"):
        dn_shift(dataclasses.replace(base, processing_baseline="v4"), "B02")


def test_harmonize_keeps_nodata_and_clips_valid_pixels_at_1():
    dn = np.array([0, 1, 999, 1000, 1001, 5000, 65535], np.uint16)
    np.testing.assert_array_equal(harmonize_dn(dn, -1000), [0, 1, 1, 1, 1, 4000, 64535])
    assert harmonize_dn(dn, 0) is dn


# ---------------------------------------------------------------------------------------------- errors


def test_corrupt_truncated_and_missing_assets_raise_read_error(archive):
    m = read_manifest(archive)
    items = _items(archive)
    for fault in m["faults"]:
        scene = next(s for s in m["scenes"] if s["id"] == fault["item"])
        site = _site(archive, scene)
        with pytest.raises(ReadError, match=re.escape(fault["path"])) as err:
            read_patch(items[fault["item"]], site["lon"], site["lat"], size_px=64)
        assert fault["band"] in str(err.value) and not isinstance(err.value, TransientReadError)


def test_missing_asset_key_and_bad_arguments(archive):
    scene = _clean(archive)[0]
    site = _site(archive, scene)
    item = _items(archive)[scene["id"]]
    no_red = dataclasses.replace(item, assets={k: v for k, v in item.assets.items() if k != "B04"})
    with pytest.raises(ReadError, match="no asset for band.*B04"):
        read_patch(no_red, site["lon"], site["lat"])
    with pytest.raises(BandError):
        read_patch(item, site["lon"], site["lat"], bands=("B02", "B99"))
    with pytest.raises(ConfigError, match="size_px"):
        read_patch(item, site["lon"], site["lat"], size_px=0)
    with pytest.raises(ConfigError, match="resolution"):
        read_patch(item, site["lon"], site["lat"], resolution=15)


def test_meta_has_the_store_fields(archive):
    from seco.collect.cloud import cloud_fraction
    from seco.store.schema import FIELD_NAMES, RADIOMETRY_NAMES

    scene = _clean(archive)[0]
    site = _site(archive, scene)
    p = read_patch(_items(archive)[scene["id"]], site["lon"], site["lat"], size_px=32)
    meta = p.meta(cloud_fraction(p))
    assert set(meta) == set(FIELD_NAMES) | set(RADIOMETRY_NAMES)
    assert meta["dn_shift"] == p.dn_shift and len(meta["dn_shift"]) == 12 and meta["dn_rule"] == p.dn_rule[0]
    assert meta["crs"] == f"EPSG:{scene['epsg']}" and meta["item_id"] == scene["id"]
    assert 0.0 <= meta["cloud_fraction"] <= 1.0 and meta["cloud_fraction"] == cloud_fraction(p)


# ---------------------------------------------------------------------------------------------- HTTP


class _RangeServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # GDAL closes idle connections; not an error
        pass


def _serve(root: Path, log: list, state: dict) -> _RangeServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_HEAD(self):  # noqa: N802
            self._reply(head=True)

        def do_GET(self):  # noqa: N802
            self._reply(head=False)

        def _reply(self, head: bool):
            rng = self.headers.get("Range")
            path = root / self.path.split("?")[0].lstrip("/")
            if state.get("fail") and state["fail"] in self.path:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            size = path.stat().st_size
            a, b = 0, size - 1
            if rng:
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
                assert m, f"unsupported Range {rng}"
                a, b = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {a}-{b}/{size}")
            else:
                self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(b - a + 1))
            self.end_headers()
            log.append((self.command, self.path, rng, 0 if head else b - a + 1))
            if not head:
                with open(path, "rb") as fh:
                    fh.seek(a)
                    self.wfile.write(fh.read(b - a + 1))

    server = _RangeServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def test_http_range_reads_equal_local_reads_and_retry_after_failure(archive):
    log: list = []
    state: dict = {}
    server = _serve(archive, log, state)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        write_index(archive, base, parquet="http.parquet", ndjson="http.ndjson")
        scene = _clean(archive)[0]
        site = _site(archive, scene)
        local, remote = _items(archive)[scene["id"]], _items(archive, "http.parquet")[scene["id"]]
        assert remote.assets["B02"].startswith(base)
        args = (site["lon"], site["lat"], 64)
        p_http, p_local = read_patch(remote, *args), read_patch(local, *args)
        np.testing.assert_array_equal(p_http.data, p_local.data)
        np.testing.assert_array_equal(p_http.scl, p_local.scl)
        assert log and all(r[2] for r in log if r[0] == "GET")  # range requests only
        files = {r[1] for r in log}
        total = sum((archive / f.lstrip("/")).stat().st_size for f in files)
        assert sum(r[3] for r in log) < total  # less than the whole files

        # a 503 that survives GDAL's retries is transient; once the server recovers the next read succeeds
        other = _clean(archive)[1]  # files GDAL has not seen yet
        item2 = _items(archive, "http.parquet")[other["id"]]
        site2 = _site(archive, other)
        state["fail"] = f"/{other['id']}/red.tif"
        fast = {"GDAL_HTTP_MAX_RETRY": 1, "GDAL_HTTP_RETRY_DELAY": 0.01}
        with pytest.raises(TransientReadError, match="503"):
            read_patch(item2, site2["lon"], site2["lat"], 64, gdal_env=fast)
        state.clear()
        p2 = read_patch(item2, site2["lon"], site2["lat"], 64, gdal_env=fast)
        np.testing.assert_array_equal(p2.data, read_patch(_items(archive)[other["id"]], site2["lon"], site2["lat"],
                                                          64).data)

        gone = dataclasses.replace(remote, assets={**remote.assets, "B03": f"{base}/nowhere/green.tif"})
        with pytest.raises(ReadError, match="404") as err:
            read_patch(gone, *args)
        assert not isinstance(err.value, TransientReadError)
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def oscd_items(tmp_path_factory) -> list[SceneItem]:
    if not OSCD_CITY.is_dir():
        pytest.skip(f"OSCD sample not found at {OSCD_CITY}; it lives in ../shared/data beside the repository")
    out = tmp_path_factory.mktemp("oscd") / "bercy.parquet"
    report = build_catalog(OSCD_CITY, out)
    assert report.items == 2
    return ParquetCatalog(out).search([-180, -90, 180, 90], "2015-01-01", "2020-01-01")


def test_oscd_real_l1c_patch_equals_direct_rasterio_reads(oscd_items):
    """Real Sentinel-2 L1C (13 bands, EPSG:4326, 10/20/60 m rasters that do not nest exactly)."""
    for item in oscd_items:
        assert item.epsg == 4326 and len(item.bands) == 13
        w, s, e, n = item.bbox
        p = read_patch(item, (w + e) / 2 + 0.003, (s + n) / 2 - 0.002, size_px=200, bands="l1c")
        assert p.data.shape == (13, 200, 200) and p.scl is None and p.crs == 4326
        assert p.nodata_fraction == 0.0 and p.dn_shift == (0,) * 13  # 2016/2017 products: no offset
        for i, band in enumerate(p.bands):
            with rasterio.open(item.assets[band]) as src:
                t = src.transform
                if src.res[0] == pytest.approx(p.transform[0]):  # a 10 m band: the patch is a plain window
                    c0, r0 = round((p.transform[2] - t.c) / t.a), round((p.transform[5] - t.f) / t.e)
                    np.testing.assert_array_equal(p.data[i], src.read(1, window=Window(c0, r0, 200, 200)))
                ref = np.zeros((200, 200), np.uint16)  # GDAL's own nearest-neighbour resampling
                reproject(rasterio.band(src, 1), ref, dst_transform=Affine(*p.transform),
                          dst_crs=src.crs, resampling=Resampling.nearest)
                np.testing.assert_array_equal(p.data[i], ref, err_msg=f"{band} of {item.id}")


def test_patches_and_cloud_never_import_torch():
    import subprocess
    import sys

    code = "import sys\nimport seco.collect.patches, seco.collect.cloud\nprint('torch' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
