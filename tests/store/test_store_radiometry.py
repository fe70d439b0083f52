"""The optional per-date radiometry record (dn_shift per band, dn_rule): written, read, validated, and absent
(unknown) in stores written before it, which gain it at their next append."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from seco.errors import StoreError
from seco.store import create_store, open_store, open_writer
from seco.store.schema import DN_SHIFT_UNKNOWN
from tests.store.store_helpers import BANDS, P, T, location

OLD = Path(__file__).parent / "data" / "v1_no_checksums.zarr"  # written by seco 510f953, before the record


def with_radiometry(loc: dict, shift: int, rule: str) -> dict:
    metas = [None if m is None else {**m, "dn_shift": (shift,) * len(BANDS), "dn_rule": rule,
                                     "dn_warning": "assumed" if shift == 0 else None}
             for m in loc["dates_meta"]]
    return {**loc, "dates_meta": metas}


def test_written_and_read(tmp_path):
    with create_store(tmp_path / "s", BANDS, T, P) as w:
        w.append(**with_radiometry(location(0), -1000, "earth-search-l2a:boa-offset-not-applied"))
        w.append(**location(1))  # no record given: unknown
    s = open_store(tmp_path / "s")
    m0, m1 = s.meta(0), s.meta(1)
    assert m0[0]["dn_shift"] == (-1000,) * 4 and m0[0]["dn_rule"] == "earth-search-l2a:boa-offset-not-applied"
    assert all(m["dn_shift"] is None and m["dn_rule"] is None and m["dn_warning"] is None for m in m1)
    a = s.meta_array("dn_shift")
    assert a.shape == (2, T, len(BANDS)) and a.dtype == np.int16
    assert (a[0][s.valid(0)] == -1000).all() and (a[1] == DN_SHIFT_UNKNOWN).all()
    assert s.meta_array("dn_rule")[0, 0] == "earth-search-l2a:boa-offset-not-applied"
    assert m0[0]["dn_warning"] is None and s.meta_array("dn_warning").shape == (2, T)


def test_meta_round_trips_into_another_store(tmp_path):
    with create_store(tmp_path / "a", BANDS, T, P) as w:
        w.append(**with_radiometry(location(0), 0, "planetary-computer-l2a:baseline<04.00"))
    a = open_store(tmp_path / "a")
    with create_store(tmp_path / "b", BANDS, T, P) as w:
        w.append(key=a.key(0), images=a.read(0), valid=a.valid(0), dates_meta=a.meta(0))
    assert open_store(tmp_path / "b").meta(0) == a.meta(0) and a.meta(0)[0]["dn_warning"] == "assumed"


@pytest.mark.parametrize("value, match", [
    ((-1000, 0), "dn_shift"),
    (("a", "b", "c", "d"), "dn_shift"),
    ((DN_SHIFT_UNKNOWN,) * 4, "-32767..32767"),
])
def test_bad_shift(tmp_path, value, match):
    loc = location(0)
    loc["dates_meta"][0] = {**loc["dates_meta"][0], "dn_shift": value}
    with create_store(tmp_path / "s", BANDS, T, P) as w, pytest.raises(StoreError, match=match):
        w.append(**loc)


def test_bad_rule_and_unknown_key(tmp_path):
    loc = location(0)
    loc["dates_meta"][0] = {**loc["dates_meta"][0], "dn_rule": 3}
    with create_store(tmp_path / "s", BANDS, T, P) as w:
        with pytest.raises(StoreError, match="dn_rule"):
            w.append(**loc)
        loc["dates_meta"][0] = {**location(0)["dates_meta"][0], "dn_shfit": (0,) * 4}
        with pytest.raises(StoreError, match="dn_shfit"):
            w.append(**loc)


def test_store_written_before_reads_unknown_and_gains_the_record(tmp_path):
    old = open_store(OLD)
    n = len(old)
    assert n >= 1 and all(m["dn_shift"] is None and m["dn_rule"] is None for m in old.meta(0))
    assert (old.meta_array("dn_shift") == DN_SHIFT_UNKNOWN).all()
    assert not (OLD / "meta" / "dn_shift").exists()  # reading never writes
    copy = tmp_path / "old.zarr"
    shutil.copytree(OLD, copy)
    loc = location(99, num_dates=old.num_dates, patch=old.patch_size, bands=len(old.bands))
    metas = [None if m is None else {**m, "dn_shift": (-1000,) * len(old.bands), "dn_rule": "cdse:raster-offset"}
             for m in loc["dates_meta"]]
    with open_writer(copy) as w:
        w.append(**{**loc, "dates_meta": metas})
    s = open_store(copy)
    assert len(s) == n + 1
    assert all(m["dn_shift"] is None for m in s.meta(0))  # the old rows: unknown
    assert s.meta(n)[0]["dn_shift"] == (-1000,) * len(old.bands) and s.meta(n)[0]["dn_rule"] == "cdse:raster-offset"
