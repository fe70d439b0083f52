"""Every misuse of the store raises a typed seco error that names the value and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from store_helpers import BANDS, P, T, location

from seco.errors import BandError, ConfigError, SecoError, StoreError, StoreVersionError
from seco.store import StoreIndexError, StoreLayout, create_store, open_store, open_writer


@pytest.fixture
def writer(tmp_path):
    w = create_store(tmp_path / "s.zarr", BANDS, T, P, label_names=["a", "b"])
    yield w
    w.close()


def test_missing_path(tmp_path):
    with pytest.raises(StoreError) as e:
        open_store(tmp_path / "nope.zarr")
    msg = str(e.value)
    assert "nope.zarr" in msg and "does not exist" in msg and "seco synth" in msg and "seco collect" in msg


def test_not_a_store(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "x.txt").write_text("hi")
    with pytest.raises(StoreError, match="not a seco store.*seco synth"):
        open_store(tmp_path / "folder")
    zarr.open_group(tmp_path / "plain.zarr", mode="w").attrs["x"] = 1
    with pytest.raises(StoreError, match="Zarr group but not a seco store"):
        open_store(tmp_path / "plain.zarr")
    with pytest.raises(StoreError, match="not a seco store"):
        open_writer(tmp_path / "folder")


def test_wrong_version(tmp_path):
    create_store(tmp_path / "s.zarr", BANDS, T, P).close()
    g = zarr.open_group(tmp_path / "s.zarr", mode="r+")
    g.attrs["seco_store_version"] = 99
    for opener in (open_store, open_writer):
        with pytest.raises(StoreVersionError) as e:
            opener(tmp_path / "s.zarr")
        msg = str(e.value)
        assert "version 99" in msg and "versions 1, 2 and 3" in msg and "re-create" in msg
    assert issubclass(StoreVersionError, StoreError)


def test_create_refuses_existing_and_foreign_folders(tmp_path):
    create_store(tmp_path / "s.zarr", BANDS, T, P).close()
    with pytest.raises(StoreError, match="already exists.*open_writer"):
        create_store(tmp_path / "s.zarr", BANDS, T, P)
    create_store(tmp_path / "s.zarr", BANDS, T, P, overwrite=True).close()  # a seco store may be replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(StoreError, match="not a seco store"):
        create_store(tmp_path / "mine", BANDS, T, P, overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_bad_configuration(tmp_path):
    with pytest.raises(BandError, match="B13"):
        create_store(tmp_path / "a", ["B02", "B13"])
    with pytest.raises(ConfigError, match="num_dates"):
        create_store(tmp_path / "b", BANDS, num_dates=0)
    with pytest.raises(ConfigError, match="patch_size"):
        create_store(tmp_path / "c", BANDS, patch_size=-3)
    with pytest.raises(ConfigError, match="duplicates"):
        create_store(tmp_path / "d", BANDS, label_names=["x", "x"])
    with pytest.raises(ConfigError, match="JSON"):
        create_store(tmp_path / "e", BANDS, attrs={"f": object()})
    with pytest.raises(ConfigError, match="codec"):
        StoreLayout(codec="jpeg")
    assert not (tmp_path / "a").exists()


def test_append_wrong_dtype_and_shape(writer):
    loc = location(0)
    with pytest.raises(StoreError, match=r"dtype float32.*uint16.*astype\(np.uint16\)"):
        writer.append("k", loc["images"].astype(np.float32), loc["valid"], loc["dates_meta"])
    with pytest.raises(StoreError, match=r"shape \(3, 3, 24, 24\).*\(3, 4, 24, 24\).*B02, B03, B04, B08"):
        writer.append("k", loc["images"][:, :3], loc["valid"], loc["dates_meta"])
    with pytest.raises(StoreError, match="numpy array"):
        writer.append("k", loc["images"].tolist(), loc["valid"], loc["dates_meta"])
    with pytest.raises(StoreError, match=r"valid must be a bool array of shape \(3,\)"):
        writer.append("k", loc["images"], [1, 1, 1], loc["dates_meta"])
    with pytest.raises(StoreError, match="no valid date"):
        writer.append("k", loc["images"], np.zeros(T, bool), loc["dates_meta"])
    assert len(writer) == 0 and not writer.has("k")


def test_append_bad_metadata(writer):
    loc = location(0)
    metas = [dict(m) for m in loc["dates_meta"]]
    with pytest.raises(StoreError, match="2 entries.*3 dates"):
        writer.append("k", loc["images"], loc["valid"], metas[:2])
    bad = [dict(m) for m in metas]
    del bad[1]["crs"]
    with pytest.raises(StoreError, match="date 1: a valid date needs metadata crs"):
        writer.append("k", loc["images"], loc["valid"], bad)
    bad = [dict(m) for m in metas]
    bad[0]["cloud_fraction"] = 45.0
    with pytest.raises(StoreError, match="cloud_fraction 45.0 outside 0..1; give a fraction, not a percentage"):
        writer.append("k", loc["images"], loc["valid"], bad)
    bad = [dict(m) for m in metas]
    bad[2]["cloud_cover"] = 0.1
    with pytest.raises(StoreError, match="unknown metadata key.*cloud_cover"):
        writer.append("k", loc["images"], loc["valid"], bad)
    bad = [dict(m) for m in metas]
    bad[0]["datetime"] = "yesterday"
    with pytest.raises(StoreError, match="'yesterday' is not ISO 8601"):
        writer.append("k", loc["images"], loc["valid"], bad)
    bad = [dict(m) for m in metas]
    bad[0]["transform"] = (1, 2, 3)
    with pytest.raises(StoreError, match="6 finite numbers"):
        writer.append("k", loc["images"], loc["valid"], bad)
    assert len(writer) == 0


def test_append_label_and_key_errors(writer):
    loc = location(0)
    args = (loc["images"], loc["valid"], loc["dates_meta"])
    with pytest.raises(StoreError, match=r"label 2 out of range.*0..1 \(a, b\)"):
        writer.append("k", *args, label=2)
    with pytest.raises(StoreError, match="non-empty string"):
        writer.append("", *args)
    writer.append("k", *args, label=1)
    with pytest.raises(StoreError, match=r"key 'k' is already in the store \(location 0\).*has\(key\)"):
        writer.append("k", *args)
    writer.close()
    with pytest.raises(StoreError, match="closed"):
        writer.append("k2", *args)


def test_read_errors(tmp_path):
    with create_store(tmp_path / "s.zarr", ("B04", "B03", "B02"), T, P) as w:
        loc = location(0, bands=3)
        w.append("k", loc["images"], loc["valid"], loc["dates_meta"])
    s = open_store(tmp_path / "s.zarr")
    with pytest.raises(BandError, match="B08 not available.*B04, B03, B02"):
        s.read(0, bands=["B08"])
    with pytest.raises(BandError, match="B08"):
        s.stats(["B08"])
    with pytest.raises(StoreIndexError, match="location 1 out of range; the store has 1"):
        s.read(1)
    with pytest.raises(IndexError):  # also a plain IndexError, so iteration protocols stop on it
        s.meta(5)
    with pytest.raises(StoreIndexError, match=r"date index\(es\) \[3\] out of range"):
        s.read(0, dates=[0, 3])
    with pytest.raises(StoreError, match="unknown metadata field 'cloud'"):
        s.meta_array("cloud")
    empty = tmp_path / "e.zarr"
    create_store(empty, BANDS, T, P).close()
    with pytest.raises(StoreError, match="no locations yet"):
        open_store(empty).stats()


def test_errors_are_seco_errors():
    assert issubclass(StoreIndexError, SecoError) and issubclass(StoreIndexError, IndexError)
