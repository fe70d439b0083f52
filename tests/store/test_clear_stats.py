"""Clear-sky statistics: the stored mask, its records, the exact clear histogram, old stores (seco.store.clear)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from store_helpers import BANDS, P, T, location

from seco.errors import StoreError
from seco.store import create_store, open_store, open_writer
from seco.store.clear import band_test as clear_test
from seco.store.migrate import migrate_store

OLD = Path(__file__).parent / "data" / "v1_no_checksums.zarr"  # written by seco 510f953, before clear masks


def _mask(i: int) -> np.ndarray:
    """A caller's clear mask of location ``i``: a random blob of 'cloud' per date."""
    rng = np.random.default_rng([99, i])
    return rng.random((T, P, P)) > rng.uniform(0.1, 0.7, size=(T, 1, 1))


def _numpy_stats(locs: list[dict], masks: list[np.ndarray]) -> dict[str, np.ndarray]:
    per_band: list[list[np.ndarray]] = [[] for _ in BANDS]
    for loc, m in zip(locs, masks, strict=True):
        v = loc["valid"]
        x, mm = loc["images"][v], m[v] & ~(loc["images"][v] == 0).any(axis=1)
        for c in range(len(BANDS)):
            per_band[c].append(x[:, c][mm])
    vals = [np.concatenate(v).astype(np.float64) for v in per_band]
    return {"mean": np.array([v.mean() for v in vals]), "std": np.array([v.std() for v in vals]),
            "p2": np.array([np.percentile(v, 2) for v in vals]), "p98": np.array([np.percentile(v, 98) for v in vals])}


def _write(path: Path, n: int, masks: bool = True, hist_every: int = 256, close: bool = True) -> list[dict]:
    locs = [location(i) for i in range(n)]
    w = create_store(path, BANDS, T, P, hist_every=hist_every)
    for i, loc in enumerate(locs):
        rule = "scl" if i % 2 else ["truth:synth"] * T
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"],
                 clear=_mask(i) if masks else None, clear_rule=rule if masks else None)
    if close:
        w.close()
    return locs


def test_clear_stats_equal_numpy_over_the_masked_pixels(tmp_path):
    locs = _write(tmp_path / "s.zarr", n=5)
    s = open_store(tmp_path / "s.zarr")
    assert s.has_clear
    ref = _numpy_stats(locs, [_mask(i) for i in range(5)])
    got, default = s.stats(pixels="clear"), s.stats()
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-12, err_msg=k)
        np.testing.assert_array_equal(default[k], got[k])  # clear is the default of a store that has masks
    valid_mean = s.stats(pixels="valid")["mean"]
    assert not np.allclose(valid_mean, got["mean"])  # two different pixel sets
    # the stored mask: the caller's, without nodata pixels and invalid dates
    for i, loc in enumerate(locs):
        want = _mask(i) & ~(loc["images"] == 0).any(axis=1) & loc["valid"][:, None, None]
        np.testing.assert_array_equal(s.clear_mask(i), want)
        frac = s.meta_array("clear_fraction")[i]
        np.testing.assert_allclose(frac[loc["valid"]], want[loc["valid"]].mean(axis=(1, 2)))
        assert np.isnan(frac[~loc["valid"]]).all()
    rules = s.meta_array("clear_rule")
    v = s.valid_mask()
    n_scl, n_truth = int((rules[v] == "scl").sum()), int((rules[v] == "truth:synth").sum())
    assert n_scl + n_truth == v.sum() and (rules[~v] == "").all()
    method = s.stats_method()
    assert method.startswith("clear pixels") and f"SCL on {100 * n_scl / v.sum():.1f} %" in method
    assert "truth:synth" in method and "valid pixels" in s.stats_method("valid")


def test_band_test_masks_a_bright_cloud_and_snow_but_not_water():
    bands = ("B02", "B03", "B04", "B08", "B11")
    ground = np.array([500, 800, 700, 3000, 2000], np.uint16)  # vegetation-like, reflectance x 10000
    img = np.broadcast_to(ground[None, :, None, None], (1, 5, 20, 20)).copy()
    img[0, :, :5, :5] = np.array([5000, 5200, 5300, 5500, 4000])[:, None, None]  # thick cloud: bright, NDSI ~0.13
    img[0, :, 5:10, :5] = np.array([8000, 8200, 8100, 7800, 600])[:, None, None]  # fresh snow: bright, NDSI 0.86
    img[0, :, 10:15, :5] = np.array([1500, 1800, 1700, 1900, 300])[:, None, None]  # shaded snow: blue < 0.2
    img[0, :, 15:, :5] = np.array([600, 500, 300, 100, 50])[:, None, None]  # water: NDSI 0.82 but dark green
    img[0, :, :2, 18:] = 0  # nodata
    mask, rule = clear_test(img, bands)
    assert rule == "test:blue>0.2|ndsi>0.4&green>0.1"
    m = mask[0]
    assert not m[:15, :5].any()  # cloud and both snows
    assert m[15:, :5].all()  # water is clear
    assert not m[:2, 18:].any() and m[5:, 10:].all()  # nodata out, ground in
    # without B11 the shaded snow passes (what the test misses), bright snow still fails the blue test
    m3, rule3 = clear_test(img[:, :4], bands[:4])
    assert rule3 == "test:blue>0.2" and m3[0, 10:15, :5].all() and not m3[0, 5:10, :5].any()
    # without B02 no test: every non-zero pixel counts
    m0, rule0 = clear_test(img[:, 1:], bands[1:])
    assert rule0 == "none" and m0[0, :15, :5].all() and not m0[0, :2, 18:].any()


def test_writer_tests_the_bands_when_no_mask_is_given(tmp_path):
    locs = _write(tmp_path / "s.zarr", n=4, masks=False)
    s = open_store(tmp_path / "s.zarr")
    masks = [clear_test(np.where(loc["valid"][:, None, None, None], loc["images"], 0), BANDS)[0] for loc in locs]
    ref = _numpy_stats(locs, masks)
    np.testing.assert_allclose(s.stats()["std"], ref["std"], rtol=1e-12)
    assert set(s.meta_array("clear_rule")[s.valid_mask()]) == {"test:blue>0.2"}
    assert "test 'blue>0.2' on 100.0 %" in s.stats_method()


def test_resume_after_a_kill_gives_the_same_clear_histogram(tmp_path):
    """hist_every large and the writer never closed (what SIGKILL leaves): the clear histogram is recomputed
    from the stored masks, by readers and by the next writer, exactly."""
    path = tmp_path / "killed.zarr"
    locs = _write(path, n=4, hist_every=1000, close=False)
    s = open_store(path)
    assert len(s) == 4 and s.clear_histogram().sum() > 0  # nothing saved yet: all read back
    np.testing.assert_allclose(s.stats()["mean"], _numpy_stats(locs, [_mask(i) for i in range(4)])["mean"],
                               rtol=1e-12)
    w = open_writer(path, hist_every=1000)
    for i in range(4, 6):
        loc = location(i)
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], clear=_mask(i),
                 clear_rule="scl" if i % 2 else ["truth:synth"] * T)
    w.close()
    _write(tmp_path / "ref.zarr", n=6)
    a, b = open_store(path), open_store(tmp_path / "ref.zarr")
    np.testing.assert_array_equal(a.clear_histogram(), b.clear_histogram())
    np.testing.assert_array_equal(a.histogram(), b.histogram())
    assert not list(path.rglob("*.partial"))


def test_old_store_reports_valid_pixel_statistics_and_says_so(tmp_path):
    s = open_store(OLD)
    assert not s.has_clear and s.clear_mask(0) is None and s.clear_histogram() is None
    for k, v in s.stats(pixels="valid").items():
        np.testing.assert_array_equal(s.stats()[k], v)
    assert "written before seco recorded clear-sky masks" in s.stats_method()
    with pytest.raises(StoreError, match="pixels='valid'"):
        s.stats(pixels="clear")
    assert np.isnan(s.meta_array("clear_fraction")).all()
    # a writer appending to it starts no partial clear histogram
    copy = tmp_path / "old.zarr"
    shutil.copytree(OLD, copy)
    loc = location(50, num_dates=s.num_dates, patch=s.patch_size)
    with open_writer(copy) as w:
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], clear=np.ones((3, 24, 24), bool))
    s2 = open_store(copy)
    assert len(s2) == len(s) + 1 and not s2.has_clear and "written before" in s2.stats_method()
    assert not (copy / "masks").exists()


def test_migrate_carries_the_masks(tmp_path):
    _write(tmp_path / "a.zarr", n=3)
    migrate_store(tmp_path / "a.zarr", tmp_path / "b.zarr", progress=False)
    a, b = open_store(tmp_path / "a.zarr"), open_store(tmp_path / "b.zarr")
    np.testing.assert_array_equal(a.clear_histogram(), b.clear_histogram())
    np.testing.assert_array_equal(a.meta_array("clear_rule"), b.meta_array("clear_rule"))


def test_bad_clear_arguments_are_refused(tmp_path):
    w = create_store(tmp_path / "s.zarr", BANDS, T, P)
    loc = location(0)
    args = (loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    with pytest.raises(StoreError, match="clear must be a bool array of shape"):
        w.append(*args, clear=np.ones((T, P, P), np.uint8))
    with pytest.raises(StoreError, match="clear_rule"):
        w.append(*args, clear=np.ones((T, P, P), bool), clear_rule=["scl"])
    with pytest.raises(StoreError, match="without a clear mask"):
        w.append(*args, clear_rule="scl")
    w.append(*args)
    w.close()
    with pytest.raises(StoreError, match="pixels='dirty' is unknown"):
        open_store(tmp_path / "s.zarr").stats(pixels="dirty")


def test_store_info_says_which_statistics_it_reports(tmp_path, capsys):
    import json

    from seco.cli import main

    _write(tmp_path / "s.zarr", n=2)
    assert main(["store", "info", str(tmp_path / "s.zarr"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["band_stats_pixels"] == open_store(tmp_path / "s.zarr").stats_method()
    assert main(["store", "info", str(OLD)]) == 0
    out = capsys.readouterr().out
    assert "over the valid pixels" in out and "written before seco recorded clear-sky masks" in out


def test_a_store_without_any_clear_pixel_falls_back_to_valid_statistics_and_says_so(tmp_path):
    w = create_store(tmp_path / "s.zarr", BANDS, T, P)
    locs = [location(i) for i in range(2)]
    for loc in locs:  # every pixel cloudy
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], clear=np.zeros((T, P, P), bool))
    w.close()
    s = open_store(tmp_path / "s.zarr")
    for k, v in s.stats(pixels="valid").items():
        np.testing.assert_array_equal(s.stats()[k], v)
    assert s.stats_method().startswith("valid pixels") and "leave no pixel in band(s) B02, B03, B04, B08" in s.stats_method()
    with pytest.raises(StoreError, match="no valid non-zero pixel"):
        s.stats(pixels="clear")


def test_store_check_finds_a_damaged_clear_mask(tmp_path) -> None:
    """The masks carry a CRC32C (stores with checksums); `seco store check` reads every location's mask."""
    from store_helpers import BANDS, P, T, location

    from seco.store import create_store
    from seco.store.check import check_store

    path = tmp_path / "s.zarr"
    with create_store(path, BANDS, T, P) as w:
        for i in range(3):
            loc = location(i)
            w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    assert check_store(path, workers=1, progress=False).ok
    chunk = path / "masks" / "clear" / "c" / "1" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    report = check_store(path, workers=1, progress=False)
    assert report.bad_locations == [1] and "masks/clear" in report.findings[0].path
