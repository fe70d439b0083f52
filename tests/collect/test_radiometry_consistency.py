"""Radiometric consistency check: dark-object statistics per date, on arrays and on a collected synth archive
with one planted mislabeled item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seco.cli import main
from seco.collect.dn_warnings import INCONSISTENT
from seco.collect.journal import read_failures
from seco.errors import ConfigError
from seco.radiometry.consistency import (
    ConsistencyConfig,
    check_dates,
    check_location,
    check_store,
    dark_objects,
)
from seco.store import open_store
from seco.synth.archive import make_archive, read_manifest
from tests.integration.servers import archive_locations


def stack(levels, T=5, n=40, seed=0) -> np.ndarray:
    """(T, 2, n, n) DN: a dark-object floor of ``levels[t]`` plus a bright surface."""
    rng = np.random.default_rng(seed)
    out = np.empty((T, 2, n, n), np.uint16)
    for t in range(T):
        base = rng.integers(2000, 4000, (2, n, n))
        base[:, : n // 4] = levels[t] + rng.integers(0, 60, (2, n // 4, n))  # a quarter is dark (water)
        out[t] = base
    return out


def test_clean_stack_is_not_flagged():
    imgs = stack([300, 420, 250, 380, 330])
    assert check_dates(imgs, np.ones(5, bool), [0, 1]) == []


def test_offset_kept_and_removed_twice():
    imgs = stack([300, 420, 1350, 380, 330])
    (f,) = check_dates(imgs, np.ones(5, bool), [0, 1])
    assert f.date == 2 and f.kind == "offset-kept" and 900 < f.difference < 1100
    # removed twice: a harmonised date shifted by -1000 again, clipped to 1
    imgs = stack([300, 420, 350, 380, 330])
    bad = np.clip(imgs[3].astype(int) - 1000, 1, None).astype(np.uint16)
    imgs[3] = bad
    (f,) = check_dates(imgs, np.ones(5, bool), [0, 1])
    assert f.date == 3 and f.kind == "offset-removed-twice" and f.clipped > 0.2 and f.statistic == 1


def test_invalid_and_sparse_dates_are_ignored():
    imgs = stack([300, 420, 1350, 380, 330])
    valid = np.array([True, True, False, True, True])
    assert check_dates(imgs, valid, [0, 1]) == []  # the bright date is invalid
    imgs[1:] = 0  # one usable date: nothing to compare with
    assert check_dates(imgs, np.ones(5, bool), [0, 1]) == []
    stat, clipped, usable = dark_objects(imgs, np.ones(5, bool), [0, 1])
    assert usable.tolist() == [True, False, False, False, False] and np.isnan(stat[1:]).all()


def test_far_off_dates_are_left_alone():
    """3000 DN brighter is snow or cloud, not an offset error."""
    assert check_dates(stack([300, 3300, 350, 380, 330]), np.ones(5, bool), [0, 1]) == []


def test_bad_config():
    with pytest.raises(ConfigError, match="tolerance"):
        ConsistencyConfig(tolerance=1200)
    with pytest.raises(ConfigError, match="min_dates"):
        ConsistencyConfig(min_dates=1)


@pytest.mark.parametrize("kind", ["flag-true", "flag-false"])
def test_collected_store_flags_exactly_the_planted_date(kind, tmp_path: Path, capsys):
    root = make_archive(tmp_path / "a", seed=4, zones=(31, 32), scene_px=264, blocksize=256, corrupt=0, missing=0,
                        progress=False, cloud_probs=(1.0, 0.0, 0.0), edge_prob=0.0, mislabel=kind)
    planted = read_manifest(root)["mislabeled"]
    assert planted["kind"] == kind
    locs = archive_locations(root, tmp_path / "loc.parquet", per_side=2, patch_px=64)
    assert main(["collect", "--locations", str(locs), "--catalog", str(root / "catalog.parquet"), "--out",
                 str(tmp_path / "s.zarr"), "--patch-size", "64", "--max-cloud", "60", "--no-progress"]) == 0
    store = open_store(tmp_path / "s.zarr")
    carrying = {(i, t) for i in range(len(store)) for t, m in enumerate(store.meta(i))
                if m["item_id"] == planted["item"]}
    assert carrying, "the planted item was not collected; the test archive changed"
    findings = check_store(store)
    assert {(f.location, f.date) for f in findings} == carrying
    assert {f.item_id for f in findings} == {planted["item"]}
    assert {f.kind for f in findings} == {"offset-kept" if kind == "flag-true" else "offset-removed-twice"}
    assert all(planted["item"] in f.message() for f in findings)
    # the store recorded what was applied and why: the lying flag's rule, not a guess
    rule, shift = (("earth-search-l2a:boa-offset-applied", 0) if kind == "flag-true"
                   else ("earth-search-l2a:boa-offset-not-applied", -1000))
    assert {(f.dn_rule, f.dn_shift) for f in findings} == {(rule, (shift,) * 12)}
    others = {m["dn_rule"] for i in range(len(store)) for t, m in enumerate(store.meta(i))
              if m["valid"] and (i, t) not in carrying}
    assert others and all(r in ("local:raster-offset", "local:baseline<04.00") for r in others), others
    # collect flagged the same dates already, in its failures table and its report
    rows = [r for r in read_failures(tmp_path / "s.zarr") if r["kind"] == INCONSISTENT]
    assert {(r["location_id"], r["date_index"]) for r in rows} == {(int(store.key(i)), t) for i, t in carrying}
    assert {r["item_id"] for r in rows} == {planted["item"]}
    assert f"{len(carrying)} date(s) ~1000 DN off" in capsys.readouterr().out
    # plugged into `seco store check` (seco.store.check takes any per-location check)
    from seco.store.check import check_store as store_check

    rep = store_check(tmp_path / "s.zarr", checks={"radiometry": check_location})
    assert {(f.location, f.check, f.severity) for f in rep.findings} == {
        (i, "radiometry", "warning") for i, _ in carrying}
    assert all(planted["item"] in f.problem for f in rep.findings)


def test_mislabel_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="mislabel"):
        make_archive(tmp_path / "x", zones=(31,), dates=("2022-03-01",), scene_px=264, mislabel="wrong",
                     progress=False, corrupt=0, missing=0)


def test_radiometry_failures_rows():
    from seco.collect.dn_warnings import RULE_WARNING, describe_warnings, radiometry_failures
    from seco.collect.records import LocationResult, LocationTask

    imgs = stack([300, 420, 1350, 380, 330])
    metas = [{"item_id": f"it{t}", "dn_rule": "local:baseline>=04.00" if t == 4 else "local:raster-offset",
              "dn_warning": "no offset metadata" if t == 4 else None} for t in range(5)]
    task = LocationTask(order=0, id=7, lon=0.0, lat=0.0, windows=(), spare=False)
    r = LocationResult(task=task, status="ok", images=imgs, valid=np.ones(5, bool), dates_meta=metas)
    rows = radiometry_failures(r, ("B02", "B03"))
    assert [(f.location_id, f.date_index, f.kind, f.item_id) for f in rows] == [
        (7, 4, RULE_WARNING, "it4"), (7, 2, INCONSISTENT, "it2")]
    assert not any(f.is_fault for f in rows)
    assert radiometry_failures(r, ("B04", "B08"))[1:] == []  # no B02/B03: only the rule warning
    assert radiometry_failures(LocationResult(task=task, status="rejected"), ("B02", "B03")) == []
    assert "1 date(s) ~1000 DN off" in describe_warnings({INCONSISTENT: 1, RULE_WARNING: 1}) and describe_warnings({}) is None


def test_stride_sample_agrees_with_every_pixel():
    imgs = stack([300, 420, 1350, 380, 330], n=64)
    full = check_dates(imgs, np.ones(5, bool), [0, 1], ConsistencyConfig(stride=1))
    sampled = check_dates(imgs, np.ones(5, bool), [0, 1])
    assert [(f.date, f.kind) for f in full] == [(f.date, f.kind) for f in sampled] == [(2, "offset-kept")]
    assert abs(full[0].difference - sampled[0].difference) < 50
    with pytest.raises(ConfigError, match="stride"):
        ConsistencyConfig(stride=0)
